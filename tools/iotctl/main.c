/* iotctl: the administrator's tool for the project's PKI and device registry.
 *
 *   iotctl [--dir DIR] [--registry PATH] GROUP COMMAND [OPTIONS] [ARGS]
 *
 * One table below lists every command with its synopsis and help, so the
 * dispatcher, `iotctl --help` and `iotctl GROUP COMMAND --help` cannot
 * disagree.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cmds.h"
#include "iot/process.h"

#define VALIDITY_HELP(days)                                                                        \
    "  --days N               validity in days (default " days ")\n"                               \
    "  --not-before DATE      start of validity (default: 5 minutes ago)\n"                        \
    "  --not-after DATE       end of validity instead of --days\n"                                 \
    "                         DATE is YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"

const cli_command cli_commands[] = {
    {"pki", "init", cmd_pki_init, "Create the root CA, an empty registry and a signed CRL.",
     "[--cn NAME] [--days N] [--crl-days N]",
     "Create the root CA (ECDSA P-256, SHA-256), an empty registry and a signed CRL.\n"
     "Refuses, changing nothing, if the directory already holds any part of a PKI.",
     "  --cn NAME              CA common name (default \"IoT Telemetry Root CA\")\n"
     "  --days N               CA validity in days (default 3650)\n"
     "  --crl-days N           CRL validity in days (default 30)\n"},
    {"cert", "server", cmd_cert_server,
     "Issue a TLS server certificate for the gateway or the broker.",
     "NAME (--dns HOST | --ip ADDR)... [--also-client] [--days N] [--out DIR]",
     "Issue a TLS server certificate (for the gateway or the broker) with DNS and IP\n"
     "subjectAltNames. Writes key.pem (0600), cert.pem and ca.pem to DIR/servers/NAME.\n"
     "--also-client adds the clientAuth extended key usage next to serverAuth, for a\n"
     "server that is also its peers' client with the same certificate (etcd members).",
     "  --dns HOST             a DNS name the server is reached by (repeatable)\n"
     "  --ip ADDR              an IPv4/IPv6 address the server is reached by (repeatable)\n"
     "  --also-client          also a TLS client certificate (EKU serverAuth, clientAuth)\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("397")},
    {"cert", "client", cmd_cert_client,
     "Issue a TLS client certificate for the gateway or a person.",
     "NAME --role gateway|operator|consumer|console [--days N] [--out DIR]",
     "Issue a TLS client certificate: 'gateway' for the gateway's own MQTT connection,\n"
     "'operator' or 'consumer' for people and applications. The subject is\n"
     "CN=NAME,OU=ROLE,O=IoT Telemetry; the broker takes it whole as the username, so its\n"
     "ACL grants rights to NAME in ROLE only (iotctl prints the ACL's user line). Writes\n"
     "key.pem (0600), cert.pem and ca.pem to DIR/clients/NAME.",
     "  --role ROLE            gateway, operator, consumer or console (required)\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("397")},
    {"cert", "list", cmd_cert_list, "List server and client certificates with state and expiry.",
     "[--json]", "List server and client certificates with state, expiry and days left.",
     "  --json                 machine-readable output\n"},
    {"cert", "show", cmd_cert_show, "Show one server or client certificate's record.",
     "NAME [--json]", "Show one server or client certificate's record.",
     "  --json                 machine-readable output\n"},
    {"cert", "revoke", cmd_cert_revoke,
     "Revoke a server or client certificate; regenerate the CRL.",
     "NAME [--reason REASON] [--dry-run]",
     "Revoke a server or client certificate and regenerate the signed CRL. Revocation\n"
     "cannot be undone, and the name is never used again: --dry-run shows first what\n"
     "would be revoked.\n\n"
     "Once crl.pem is installed: a client certificate (consumer, operator,\n"
     "gateway-mqtt) is refused by the broker from its next handshake after SIGHUP; a\n"
     "broker certificate is refused by the gateway's forwarder on its next connection;\n"
     "a gateway certificate is refused only by clients given the CRL (iotsim --crl).\n"
     "ESP32 devices have no CRL and trust a revoked gateway certificate until it\n"
     "expires: keep it short-lived (--days) and rotate it. Revocation does not stop a\n"
     "server that still holds the key from presenting it (docs/pki.md).",
     "  --reason REASON        unspecified (default), key-compromise, affiliation-changed,\n"
     "                         superseded or cessation-of-operation\n"
     "  --dry-run              check and show what would be revoked; change nothing\n"},
    {"device", "add", cmd_device_add, "Enroll a device: sign its CSR, or make its key here.",
     "ID [--csr FILE] [--class C] [--days N] [--out DIR]",
     "Enroll a device. Without --csr, create its key and certificate (development flow);\n"
     "with --csr, sign the request the device made itself (production flow: the key never\n"
     "leaves the device). The CSR must be ECDSA P-256 with CN=ID. The ID is 1-64 characters\n"
     "of [A-Za-z0-9._-], not starting with '.'. Files go to DIR/devices/ID.",
     "  --csr FILE             sign this PEM or DER certificate signing request\n"
     "  --class C              the device's class: the class-id of the firmware it takes\n"
     "                         (1-64 of [A-Za-z0-9._-], first a letter or digit); rollouts\n"
     "                         select devices by it ('rollout create --class')\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("90")},
    {"device", "renew", cmd_device_renew,
     "Give an enrolled device a new certificate under the same ID.",
     "ID [--csr FILE] [--days N] [--out DIR]",
     "Give an enrolled device a new certificate under the same ID, so its topic and its\n"
     "reading sequence stay the same: before it expires, or after its key was replaced.\n"
     "The old certificate is revoked (reason superseded) in the regenerated CRL, and its\n"
     "files move to DIR/devices/ID/superseded-SERIAL/. Without --csr a new key is made\n"
     "here; with --csr the device's new request is signed. Push crl.pem and registry.db to\n"
     "the gateway and install the new certificate on the device: the old one stops working\n"
     "as soon as the gateway has the new registry.",
     "  --csr FILE             sign this PEM or DER certificate signing request\n"
     "  --out DIR              write the files to DIR instead (the old files stay)\n" VALIDITY_HELP(
         "90")},
    {"device", "revoke", cmd_device_revoke, "Revoke a device's certificate; regenerate the CRL.",
     "ID [--reason REASON] [--dry-run]",
     "Mark a device revoked in the registry and regenerate the signed CRL. Revocation\n"
     "cannot be undone, and the ID is never enrolled again: --dry-run shows first what\n"
     "would be revoked.",
     "  --reason REASON        unspecified (default), key-compromise, affiliation-changed,\n"
     "                         superseded or cessation-of-operation\n"
     "  --dry-run              check and show what would be revoked; change nothing\n"},
    {"device", "list", cmd_device_list, "List devices with state, expiry, days left and class.",
     "[--json]", "List devices with state, expiry, days left and class.",
     "  --json                 machine-readable output\n"},
    {"device", "show", cmd_device_show,
     "Show one device's record: state, serial, validity, history.", "ID [--json]",
     "Show one device's record: class, state, serial, SHA-256 fingerprint, validity.",
     "  --json                 machine-readable output\n"},
    {"device", "set-class", cmd_device_set_class, "Set or clear an enrolled device's class.",
     "ID CLASS",
     "Set the class of an active device: the class-id (manifest field) of the firmware\n"
     "it takes, 1-64 of [A-Za-z0-9._-], first a letter or digit. An empty CLASS (\"\")\n"
     "clears it. Rollouts created afterwards with --class see the change; rollouts\n"
     "already created keep their devices.",
     ""},
    {"crl", "update", cmd_crl_update, "Regenerate the signed CRL before it expires.", "[--days N]",
     "Regenerate the signed CRL with a new number and validity. Run it before the\n"
     "current CRL's next-update time (daily from cron is a good habit).",
     "  --days N               CRL validity in days (default 30)\n"},
    {"bootstrap", "init", cmd_bootstrap_init,
     "Create the factory's bootstrap CA, apart from the project CA.", "[--days N]",
     "Create DIR/bootstrap/ca.key and ca.crt: a CA of its own whose certificates let\n"
     "a device ask the gateway for its first certificate (EST simpleenroll) and for\n"
     "nothing else. The key belongs in the factory; the gateway needs only ca.crt.",
     "  --days N               CA validity in days (default 3650)\n"},
    {"bootstrap", "issue", cmd_bootstrap_issue, "Issue a device's factory bootstrap certificate.",
     "ID [--days N] [--out DIR]",
     "Make a key and a bootstrap certificate (CN=ID, OU=bootstrap) for the device to\n"
     "be, in DIR/bootstrap/devices/ID (or --out). The gateway enrolls it once, for\n"
     "a new key the device makes itself; the registry is not changed here.",
     "  --days N               validity in days (default 3650, never beyond the CA)\n"
     "  --out DIR              where to write key.pem and cert.pem\n"},
    {"ca", "intermediate", cmd_ca_intermediate,
     "Issue an intermediate CA that signs enrolled devices.", "NAME [--days N] [--out DIR]",
     "Make a key and an intermediate CA certificate (CN=NAME, OU=issuer, pathlen 0)\n"
     "signed by the root, and record it in the registry as an issuer. Writes\n"
     "DIR/issuers/NAME.key (0600) and DIR/issuers/NAME.pem; the gateway signs the\n"
     "certificates of enrolling devices with them (est_ca_key, est_ca_cert). Needs\n"
     "ca.key. To rotate, make another under a new NAME and give it to the gateway; the\n"
     "old one keeps working until revoked ('ca revoke').",
     "  --days N               validity in days (default 365, never beyond the root)\n"
     "  --out DIR              write NAME.key and NAME.pem to DIR instead\n"},
    {"ca", "list", cmd_ca_list, "List intermediate CAs with serial, state and expiry.", "[--json]",
     "List the intermediate CAs (issuers) of the registry with serial, state and expiry.",
     "  --json                 machine-readable output\n"},
    {"ca", "revoke", cmd_ca_revoke, "Revoke an intermediate CA; regenerate the CRL.",
     "NAME [--reason REASON] [--dry-run]",
     "Mark an intermediate CA revoked in the registry and regenerate the root's signed\n"
     "CRL, which lists it. Needs ca.key. The gateway then signs nothing with it\n"
     "(issuer_revoked) and refuses the devices whose certificates it signed: give the\n"
     "gateway a new intermediate first, and let devices enroll again. Revocation cannot\n"
     "be undone.",
     "  --reason REASON        unspecified (default), key-compromise, affiliation-changed,\n"
     "                         superseded or cessation-of-operation\n"
     "  --dry-run              check and show what would be revoked; change nothing\n"},
    {"token", "create", cmd_token_create, "Create a one-time enrollment token for a new device.",
     "--device ID [--ttl 1h|30m|7d|SECONDS] [--registry PATH]",
     "Create a token that lets the new device ID enroll once (EST simpleenroll with\n"
     "HTTP Basic ID:TOKEN). The token is printed alone on the first line of stdout and\n"
     "never again; the registry keeps only its SHA-256, and 'token list' names it by\n"
     "its id (tok-...). An ID already in the registry, or one with a usable token, is\n"
     "refused. Needs no CA key: run it on the registry the gateway uses.",
     "  --device ID            the device to be (1-64 of [A-Za-z0-9._-])\n"
     "  --ttl T                lifetime: 30m, 1h, 7d or seconds, at most 90d (default 7d)\n"
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"token", "list", cmd_token_list, "List enrollment tokens by id, device and state.",
     "[--json] [--registry PATH]",
     "List enrollment tokens, newest first: id, device, state (unused, used, expired,\n"
     "revoked), creation and expiry, and the certificate a used one produced. The\n"
     "tokens themselves are not kept and never shown.",
     "  --json                 machine-readable output\n"
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"token", "revoke", cmd_token_revoke, "Revoke an unused enrollment token.",
     "TOKEN-ID [--registry PATH]",
     "Revoke an unused token by its id (tok-..., from 'token list'): the device can no\n"
     "longer enroll with it. A used or revoked token is refused.",
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"enroll", "list", cmd_enroll_list, "List enrollment requests that needed a decision.",
     "[--json] [--pending] [--registry PATH]",
     "List the first enrollments the gateway held for an operator's decision\n"
     "(est_require_approval), pending ones first: device, state (pending, approved,\n"
     "denied, issued), method (token or bootstrap), when, the token id or bootstrap\n"
     "serial, and the address the request came from.",
     "  --json                 machine-readable output\n"
     "  --pending              only the requests that wait for a decision\n"
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"enroll", "approve", cmd_enroll_approve, "Approve a device's pending enrollment.",
     "ID [--registry PATH]",
     "Approve the pending enrollment of device ID: the device's next request (it asks\n"
     "again after the Retry-After the gateway gave it) gets its certificate. Needs no\n"
     "CA key: run it on the registry the gateway uses.",
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"enroll", "deny", cmd_enroll_deny, "Deny a device's pending enrollment.",
     "ID [--registry PATH]",
     "Deny the pending enrollment of device ID: its requests are refused from now on\n"
     "(403 denied). Needs no CA key: run it on the registry the gateway uses.",
     "  --registry PATH        the gateway's registry (default DIR/registry.db)\n"},
    {"firmware key", "create", cmd_firmware_key_create,
     "Create a firmware signing key, trusted from now.", "--name NAME",
     "Create a firmware signing key, apart from the TLS CA: the private key goes to\n"
     "DIR/firmware/keys/NAME.key (0600, never printed), the public key beside it, and\n"
     "the key joins the trusted set DIR/firmware/trusted-keys.pem that verifiers are\n"
     "given. Prints the key ID, the first 8 bytes of SHA-256 of the public point.\n"
     "More than one key may be trusted at once (docs/firmware.md: rotating a key).",
     "  --name NAME            the key's name: 1-64 of [A-Za-z0-9._-], used once\n"},
    {"firmware key", "list", cmd_firmware_key_list, "List firmware signing keys and their state.",
     "[--json]",
     "List every firmware signing key made here with its key ID, creation time and\n"
     "state: trusted (in DIR/firmware/trusted-keys.pem) or retired.",
     "  --json                 machine-readable output\n"},
    {"firmware key", "retire", cmd_firmware_key_retire,
     "Stop trusting a signing key; keep it on record.", "--name NAME",
     "Remove a signing key from the trusted set: manifests it signed no longer verify\n"
     "once verifiers have the new DIR/firmware/trusted-keys.pem. Its files and its\n"
     "keyring entry are kept for the record; it cannot sign again.",
     "  --name NAME            the key to retire\n"},
    {"firmware", "sign", cmd_firmware_sign, "Sign a firmware image's manifest.",
     "--image FILE --vendor V --class C --version X --secure-version N --key NAME\n"
     "       [--not-after DATE] [--uri PATH] [--sequence N] --out MANIFEST",
     "Write the signed manifest of a firmware image (format: core/include/iotd/manifest.h):\n"
     "its size and SHA-256 from the image, the next fleet-wide sequence number (kept in\n"
     "DIR/firmware/sequence, never reused), signed with a trusted key; the file written\n"
     "is read back and verified before success is reported.",
     "  --image FILE           the image to release (at most 32 MiB)\n"
     "  --vendor V             vendor-id: 1-64 of [A-Za-z0-9._-], first a letter or digit\n"
     "  --class C              class-id, the kind of device: the same rule\n"
     "  --version X            the release's version: 1-32 of [A-Za-z0-9._+-]\n"
     "  --secure-version N     anti-rollback counter, 0..4294967295: devices refuse\n"
     "                         an image below theirs\n"
     "  --key NAME             the trusted signing key ('firmware key list')\n"
     "  --not-after DATE       devices refuse it after DATE (YYYY-MM-DD or\n"
     "                         YYYY-MM-DDTHH:MM:SSZ, UTC); default: no end\n"
     "  --uri PATH             image-uri (default /v1/firmware/images/<SHA-256>)\n"
     "  --sequence N           this sequence number, if above every one used\n"
     "  --out MANIFEST         the manifest file to write (never overwritten)\n"},
    {"firmware", "verify", cmd_firmware_verify,
     "Verify a manifest (and its image) with the trusted keys.",
     "--manifest M [--image FILE] [--class C] [--vendor V]",
     "Verify a manifest with the verifier the devices and the gateway run, against the\n"
     "keys trusted in DIR/firmware/trusted-keys.pem and the current time; with --image,\n"
     "check the image's size and SHA-256 too. Prints every field and the verdict;\n"
     "exits 1 on any refusal, naming the reason.",
     "  --manifest M           the manifest file\n"
     "  --image FILE           the image it describes\n"
     "  --class C              require this class-id\n"
     "  --vendor V             require this vendor-id\n"},
    {"firmware", "add", cmd_firmware_add, "Verify a release and store it in the PKI directory.",
     "--manifest M --image FILE",
     "Verify a manifest and its image, then store both in DIR/firmware/images/ named by\n"
     "the image's SHA-256. A sequence number already stored, or an image already\n"
     "stored, is refused.",
     "  --manifest M           the signed manifest\n"
     "  --image FILE           the image it describes\n"},
    {"firmware", "list", cmd_firmware_list, "List stored firmware releases by sequence number.",
     "[--json]",
     "List the releases stored by 'firmware add', by sequence number, with their\n"
     "verdict under today's trusted keys (a release signed by a key retired since\n"
     "shows unknown_key).",
     "  --json                 machine-readable output\n"},
    {"firmware", "show", cmd_firmware_show, "Show one stored firmware release.",
     "SHA256 | --sequence N [--json]",
     "Show one stored release: every field of its manifest, its verdict and its files.\n"
     "SHA256 is the image's SHA-256 or its first 8 or more digits.",
     "  --sequence N           the release with this sequence number\n"
     "  --json                 machine-readable output\n"},
    {"rollout", "create", cmd_rollout_create, "Roll a stored release out to devices in waves.",
     "NAME --firmware REF (--devices ID,... | --class C | --all) [--canary N]\n"
     "       [--waves P,P,...] [--max-per-minute N] [--success-percent P]\n"
     "       [--failure-percent P] [--min-reports N] [--security] [--seed N] [--db PATH]",
     "Create a staged rollout of a release stored by 'firmware add'. The manifest is\n"
     "verified again with the trusted keys and the image's size and SHA-256 checked\n"
     "before anything is written. The devices (active ones of the registry) are put in\n"
     "a random order: the first N form the canary wave 0, the rest are split by the\n"
     "cumulative percentages of --waves. The gateway offers the release to a wave's\n"
     "devices once the waves before it have reached --success-percent confirmations,\n"
     "and pauses the rollout when failures reach --failure-percent of at least\n"
     "--min-reports final reports (docs/firmware.md: Rollouts).",
     "  --firmware REF         the release: its sequence number, its version, or 8+\n"
     "                         hex digits of its image SHA-256 ('firmware list')\n"
     "  --devices ID,...       these enrolled, active devices\n"
     "  --class C              every active device of class C (the manifest's class-id)\n"
     "  --all                  every active device\n"
     "  --canary N             devices in the canary wave (default 1; 0: none)\n"
     "  --waves P,P,...        cumulative percentages of the other devices, increasing,\n"
     "                         the last 100, at most 10 (default 10,50,100)\n"
     "  --max-per-minute N     devices started per minute (default 0: no cap)\n"
     "  --success-percent P    confirmations that start the next wave (default 90)\n"
     "  --failure-percent P    failures that pause the rollout (default 10)\n"
     "  --min-reports N        final reports before failures are judged (default 5)\n"
     "  --security             mark it a security update\n"
     "  --seed N               the random order's seed (default: from the clock)\n"
     "  --db PATH              the rollout file (default DIR/rollouts.db)\n"},
    {"rollout", "pause", cmd_rollout_pause, "Pause a running rollout.", "NAME [--db PATH]",
     "Pause a running rollout: no device is started; devices already started keep\n"
     "their offer so they can finish, confirm or roll back.",
     "  --db PATH              the rollout file (default DIR/rollouts.db)\n"},
    {"rollout", "resume", cmd_rollout_resume, "Resume a paused rollout.", "NAME [--db PATH]",
     "Resume a paused rollout (paused by an operator or by the failure threshold):\n"
     "devices are started again, and a wave earned by confirmations made while paused\n"
     "starts. The next failure report judges the threshold again.",
     "  --db PATH              the rollout file (default DIR/rollouts.db)\n"},
    {"rollout", "abort", cmd_rollout_abort, "Abort a rollout for good.", "NAME [--db PATH]",
     "Abort a running or paused rollout: nothing more is offered and its image is no\n"
     "longer served. An aborted rollout stays aborted; create a new one to try again.",
     "  --db PATH              the rollout file (default DIR/rollouts.db)\n"},
    {"rollout", "status", cmd_rollout_status, "Show rollouts, or one rollout in detail.",
     "[NAME] [--devices] [--json] [--db PATH]",
     "Without NAME, list every rollout: state, release, wave, device counts. With NAME,\n"
     "show its state, pause reason, release, devices per state and per wave and, with\n"
     "--devices (always in --json), each device's wave, state, reason and offset.",
     "  --devices              list each device (with NAME)\n"
     "  --json                 machine-readable output\n"
     "  --db PATH              the rollout file (default DIR/rollouts.db)\n"},
/* iotctl incident: the vulnerability and incident register (CRA Art. 14). */
#define INCIDENT_COMMON                                                                            \
    "  --registry PATH        the registry (default DIR/registry.db)\n"                            \
    "  --now WHEN             the clock, for tests and audits (also $IOTCTL_NOW): Unix\n"          \
    "                         seconds or YYYY-MM-DD[THH:MM:SSZ]\n"
#define INCIDENT_FIELDS                                                                            \
    "  --title TEXT           what happened, one line\n"                                           \
    "  --description TEXT     nature of the vulnerability/exploit or incident, impact\n"           \
    "  --severity S           low, medium, high or critical\n"                                     \
    "  --exploited            a vulnerability is actively exploited (Art. 14(1))\n"                \
    "  --severe               an incident is severe (Art. 14(3), (5))\n"                           \
    "  --not-reportable       neither: kept in the register with no deadlines\n"                   \
    "  --malicious M          suspected unlawful or malicious acts: yes, no, unknown\n"            \
    "  --aware-at WHEN        when it became known (default now); starts the clock\n"              \
    "  --fixed-at WHEN        a corrective or mitigating measure is available\n"                   \
    "  --devices LIST         affected devices; --versions LIST affected versions\n"               \
    "  --member-states LIST   Member States where the product is made available\n"                 \
    "  --corrective TEXT      corrective or mitigating measures taken or made available\n"         \
    "  --user-measures TEXT   what users can do; --actor TEXT malicious actor\n"                   \
    "  --root-cause TEXT      threat type or root cause; --sensitivity TEXT\n"                     \
    "  --cve ID               CVE or other identifier; --note TEXT adds a dated note\n"            \
    "  WHEN is now, Unix seconds or YYYY-MM-DD[THH:MM:SSZ] (UTC)\n"
    {"incident", "open", cmd_incident_open, "Record a vulnerability or incident; start its clock.",
     "--kind vulnerability|incident --title TEXT --severity S [FIELDS] [--registry PATH]",
     "Record a vulnerability or an incident in the register and print its id alone on\n"
     "stdout. An actively exploited vulnerability (--exploited) or a severe incident\n"
     "(--severe) must be reported under CRA Art. 14: early warning within 24 hours of\n"
     "becoming aware, notification within 72 hours, final report 14 days after a fix\n"
     "is available (vulnerability) or one month after the notification (incident).\n"
     "The deadlines are printed on stderr.",
     "  --kind K               vulnerability or incident\n" INCIDENT_FIELDS INCIDENT_COMMON},
    {"incident", "update", cmd_incident_update,
     "Change a register entry or record a submitted report.",
     "ID [FIELDS] [--submitted TYPE [--submitted-at WHEN]] [--registry PATH]",
     "Change the fields of an open entry, or record that a report was submitted on\n"
     "the single reporting platform (TYPE: early-warning, notification, final or\n"
     "user-notice), at --submitted-at or now. Every change is kept in its history.",
     INCIDENT_FIELDS
     "  --submitted TYPE       early-warning, notification, final or user-notice\n"
     "  --submitted-at WHEN    when it was submitted (default now)\n" INCIDENT_COMMON},
    {"incident", "close", cmd_incident_close, "Close a register entry.",
     "ID [--note TEXT] [--registry PATH]",
     "Close an entry: it has no open deadlines from then on and can no longer be\n"
     "changed. Reports that were required and never submitted are named on stderr.",
     "  --note TEXT            why, kept in its history\n" INCIDENT_COMMON},
    {"incident", "list", cmd_incident_list, "List register entries and overdue reports.",
     "[--all] [--overdue] [--json] [--registry PATH]",
     "List the open entries (--all: the closed ones too) with kind, state, severity,\n"
     "the next report deadline and the number of reports overdue. With --overdue, only\n"
     "the entries with overdue reports, and exit status 3 if there are any (for cron).",
     "  --all                  include closed entries\n"
     "  --overdue              only entries with overdue reports; exit 3 if any\n"
     "  --json                 machine-readable output\n" INCIDENT_COMMON},
    {"incident", "show", cmd_incident_show, "Show a register entry with deadlines and history.",
     "ID [--json] [--registry PATH]",
     "Show one entry: its fields, each report's deadline, state and submission time,\n"
     "its notes and its history.",
     "  --json                 machine-readable output\n" INCIDENT_COMMON},
    {"incident", "report", cmd_incident_report, "Draft a CRA Art. 14 report for an entry.",
     "ID --type early-warning|notification|final|user-notice [--json] [--registry PATH]",
     "Draft a report as Markdown (or JSON) with the information Art. 14(2) (a\n"
     "vulnerability) or 14(4) (an incident) asks for, or the information to users of\n"
     "Art. 14(8), ready to check and submit by hand on the single reporting platform.\n"
     "Fields the register does not hold yet are marked [to be completed].",
     "  --type TYPE            early-warning, notification, final or user-notice\n"
     "  --json                 machine-readable output\n" INCIDENT_COMMON},
    {"vuln", "scan", cmd_vuln_scan, "Match OSV advisories against the SBOMs and the fleet.",
     "--advisories DIR --sbom FILE... [--inventory FILE] [--vex FILE] [--json]",
     "Read the OSV advisories (*.json) in DIR and match them, offline, against the\n"
     "CycloneDX SBOMs the build writes (build/<dir>/sbom/): Debian packages by name or\n"
     "source package in Debian version order, ESP-IDF and our own components by purl\n"
     "in SemVer order. Per advisory: the affected components with their installed and\n"
     "fixed versions and, with --inventory, the devices whose reported firmware is the\n"
     "version of an affected firmware SBOM. A CycloneDX VEX statement (analysis.state\n"
     "not_affected or false_positive) suppresses a match, shown with its reason.\n"
     "Exit status: 0 nothing affected, 1 something affected, 2 usage or input error.",
     "  --advisories DIR       a directory of OSV JSON advisories (each at most 1 MiB)\n"
     "  --sbom FILE            a CycloneDX SBOM; repeat for each (at most 16)\n"
     "  --inventory FILE       the fleet inventory (the gateway's GET /fleet)\n"
     "  --vex FILE             a CycloneDX VEX document of advisories that do not apply\n"
     "  --json                 machine-readable output\n"},
    {"operator", "add", cmd_operator_add, "Add a console operator with a password.",
     "NAME [--password-file FILE] [--file PATH]",
     "Add an operator of the fleet console (iotconsole). The password is read from\n"
     "one line of stdin, or of --password-file, never from the command line; it must\n"
     "have 12 to 256 characters, 6 of them different, and not contain NAME. It is\n"
     "stored hashed with scrypt (N=2^15, r=8, p=1, recorded with the hash) in the\n"
     "operators file, mode 0600.",
     "  --password-file FILE   read the password from FILE's first line\n"
     "  --file PATH            the operators file (default DIR/operators)\n"},
    {"operator", "remove", cmd_operator_remove, "Remove a console operator.", "NAME [--file PATH]",
     "Remove an operator from the operators file: the console refuses the operator's\n"
     "logins and ends its sessions at their next request.",
     "  --file PATH            the operators file (default DIR/operators)\n"},
    {"operator", "list", cmd_operator_list, "List console operators.", "[--file PATH]",
     "List the operators of the fleet console, one name a line.",
     "  --file PATH            the operators file (default DIR/operators)\n"},
};
const size_t cli_command_count = sizeof(cli_commands) / sizeof(cli_commands[0]);

const cli_command *cmd_find(const char *group, const char *name)
{
    for (size_t i = 0; i < cli_command_count; i++)
        if (strcmp(cli_commands[i].group, group) == 0 && strcmp(cli_commands[i].name, name) == 0)
            return &cli_commands[i];
    return NULL;
}

int cmd_getopt(int argc, char **argv, const struct option *opts)
{
    /* Build the short-option string from the table: "+:" stops at the first
     * positional argument's end and reports missing values as ':'. */
    char shorts[64] = "+:";
    size_t n = 2;
    for (const struct option *o = opts; o->name != NULL && n + 2 < sizeof(shorts); o++) {
        shorts[n++] = (char)o->val;
        if (o->has_arg == required_argument)
            shorts[n++] = ':';
    }
    shorts[n] = '\0';
    opterr = 0;
    return getopt_long(argc, argv, shorts + 1, opts, NULL);
}

int cmd_bad_option(const cli_command *cmd, int argc, char **argv, int c)
{
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage(cmd, "option '%s' needs a value", arg);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

static bool group_exists(const char *group)
{
    for (size_t i = 0; i < cli_command_count; i++)
        if (strcmp(cli_commands[i].group, group) == 0)
            return true;
    return false;
}

/* Edit distance with adjacent transpositions (optimal string alignment),
 * so "devcie" is one step from "device". Words longer than the table's
 * names are simply far from all of them. */
#define WORD_MAX 32
typedef size_t osa_table[WORD_MAX + 1][WORD_MAX + 1];

/* d[i][j]: the cheapest of a deletion, an insertion, a substitution and,
 * for two swapped neighbours, a transposition. */
static size_t osa_cell(osa_table d, const char *a, const char *b, size_t i, size_t j)
{
    size_t best = d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
    if (d[i - 1][j] + 1 < best)
        best = d[i - 1][j] + 1;
    if (d[i][j - 1] + 1 < best)
        best = d[i][j - 1] + 1;
    if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
        d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
    return best;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, WORD_MAX + 1), lb = strnlen(b, WORD_MAX + 1);
    if (la > WORD_MAX || lb > WORD_MAX)
        return SIZE_MAX;
    osa_table d;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++)
            d[i][j] = osa_cell(d, a, b, i, j);
    return d[la][lb];
}

/* The group (group == NULL) or the command of `group` nearest to `word`,
 * if it is near enough to be a typo: at most 2 edits, and fewer than half
 * of the word's letters. NULL otherwise. */
static const char *closest(const char *word, const char *group)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < cli_command_count; i++) {
        if (group != NULL && strcmp(cli_commands[i].group, group) != 0)
            continue;
        const char *cand = group == NULL ? cli_commands[i].group : cli_commands[i].name;
        size_t d = edit_distance(word, cand);
        if (d < best_d) {
            best_d = d;
            best = cand;
        }
    }
    size_t len = strnlen(word, WORD_MAX + 1);
    return best != NULL && best_d <= 2 && best_d * 2 < len ? best : NULL;
}

static void print_overview(FILE *out)
{
    fprintf(out, "usage: iotctl [--dir DIR] [--registry PATH] GROUP COMMAND [OPTIONS] [ARGS]\n\n"
                 "Manages the telemetry system's certificate authority and its intermediates,\n"
                 "the certificates of the gateway, the broker and operators, the registry of\n"
                 "enrolled devices with their enrollment tokens and approvals, the firmware\n"
                 "signing keys and releases, staged firmware rollouts, and the matching of\n"
                 "vulnerability advisories against the software bills of materials.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < cli_command_count; i++) {
        char words[2 * WORD_MAX + 2];
        snprintf(words, sizeof(words), "%s %s", cli_commands[i].group, cli_commands[i].name);
        fprintf(out, "  %-15s  %s\n", words, cli_commands[i].brief);
    }
    fprintf(out, "\nGlobal options:\n"
                 "  --dir DIR        the PKI directory (default: $IOTCTL_DIR, else ./pki)\n"
                 "  --registry PATH  the registry instead of DIR/registry.db: the gateway's\n"
                 "                   when it enrolls devices (default: $IOTCTL_REGISTRY)\n"
                 "  --help           this text; 'iotctl GROUP COMMAND --help' for one command\n"
                 "  --version        the program version\n\n"
                 "Exit status: 0 success, 1 the command failed, 2 the command line is wrong.\n");
}

/* The global options before the group: returns -1 to go on, with *next
 * the index of the first word after them, else the exit status. */
static int parse_global(int argc, char **argv, cli_ctx *ctx, int *next)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_overview(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("iotctl %s (%s)\n", IOT_VERSION, OpenSSL_version(OPENSSL_VERSION));
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            ctx->dir = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0) {
            ctx->dir = argv[i] + 6;
        } else if (strcmp(argv[i], "--registry") == 0 && i + 1 < argc) {
            ctx->registry = argv[++i];
        } else if (strncmp(argv[i], "--registry=", 11) == 0) {
            ctx->registry = argv[i] + 11;
        } else {
            fprintf(stderr, "iotctl: unknown or incomplete global option '%s'\n\n", argv[i]);
            print_overview(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    *next = i;
    return -1;
}

/* The command that words (GROUP COMMAND ...) name, NULL after saying why
 * there is none. */
static const cli_command *find_command(int n, char **words)
{
    if (n == 0) {
        print_overview(stderr);
        return NULL;
    }
    if (!group_exists(words[0])) {
        const char *near = closest(words[0], NULL);
        fprintf(stderr, "iotctl: unknown command '%s'", words[0]);
        if (near != NULL)
            fprintf(stderr, "; did you mean '%s'?", near);
        fputs("\n\n", stderr);
        print_overview(stderr);
        return NULL;
    }
    if (n < 2) {
        fprintf(stderr, "iotctl: '%s' needs a command\n\n", words[0]);
        print_overview(stderr);
        return NULL;
    }
    const cli_command *cmd = cmd_find(words[0], words[1]);
    if (cmd == NULL) {
        const char *near = closest(words[1], words[0]);
        fprintf(stderr, "iotctl: unknown command '%s %s'", words[0], words[1]);
        if (near != NULL)
            fprintf(stderr, "; did you mean '%s %s'?", words[0], near);
        fputs("\n\n", stderr);
        print_overview(stderr);
    }
    return cmd;
}

int main(int argc, char **argv)
{
    /* First of all: the CA key and device keys pass through this process's
     * memory, which must never end up in a core file. */
    iot_err harden_err = {0};
    if (iot_harden_process(&harden_err) != IOT_OK)
        return cli_fail(&harden_err);
    cli_ctx ctx = {.dir = getenv("IOTCTL_DIR"), .now = time(NULL)};
    if (ctx.dir == NULL || ctx.dir[0] == '\0')
        ctx.dir = "pki";
    ctx.registry = getenv("IOTCTL_REGISTRY");
    if (ctx.registry != NULL && ctx.registry[0] == '\0')
        ctx.registry = NULL;
    int i = 1;
    int rc = parse_global(argc, argv, &ctx, &i);
    if (rc >= 0)
        return rc;
    /* A group of two words ("firmware key") is one word from here on. */
    char group[WORD_MAX + 1];
    if (argc - i >= 2 && snprintf(group, sizeof(group), "%s %s", argv[i], argv[i + 1]) > 0 &&
        strlen(argv[i]) + strlen(argv[i + 1]) < WORD_MAX && group_exists(group)) {
        argv[i + 1] = group;
        i++;
    }
    const cli_command *cmd = find_command(argc - i, argv + i);
    if (cmd == NULL)
        return CLI_EXIT_USAGE;
    /* The command sees argv[0] = its name, then its own options. */
    int sub_argc = argc - i - 1;
    char **sub_argv = argv + i + 1;
    optind = 1;
    return cmd->run(&ctx, sub_argc, sub_argv);
}
