/* The option table below is the single description of the configuration:
 * the parser, the defaults, the validator, the example file and the option
 * reference in docs/configuration.md are all produced from it. This file
 * works on memory only; reading the file and checking the files it names
 * is gateway/src/config_files.c, which asks the table which paths to check
 * (gw__config_paths). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brokers.h"
#include "config_parse.h"
#include "proxyv2.h"
#include "iotd/protocol.h"

#define GW__LINE_MAX 1024
#define GW__SHOWN    64 /* room for a sanitised value in a message */

typedef enum gw__type {
    GW__STRING,
    GW__PATH,
    GW__LISTEN,
    GW__INT,
    GW__SIZE,
    GW__DURATION,
    GW__DOUBLE,
    GW__BOOL,
    GW__ENUM,
} gw__type;

/* How the value is stored; derived from the field's C type, so a table
 * entry whose type does not match its field does not compile. */
typedef enum gw__store {
    GW__ST_STR,
    GW__ST_BOOL,
    GW__ST_INT,
    GW__ST_I64,
    GW__ST_SIZE,
    GW__ST_DOUBLE,
} gw__store;

enum {
    GW__REQUIRED = 1u << 0, /* no default: the file must set it */
    GW__FILE = 1u << 1,     /* names a regular file the gateway must be able to read */
    GW__KEY = 1u << 2,      /* a private key: group and others must have no access */
    GW__DIR_OF = 1u << 3,   /* the directory holding this path must exist */
    GW__EMPTY_OK = 1u << 4, /* "" is allowed and means off or automatic */
    GW__ZERO_OFF = 1u << 5, /* 0 is allowed below `min` and means off */
    GW__WHOLE_S = 1u << 6,  /* durations: whole seconds only */
};

typedef const char *(*gw__check_fn)(const char *value);

typedef struct gw__option {
    const char *key;
    gw__type type;
    gw__store store;
    size_t offset;
    size_t cap; /* size of the field; for strings the buffer size */
    unsigned flags;
    const char *def;  /* default, in file syntax; NULL for required keys */
    int64_t min, max; /* INT; SIZE in bytes; DURATION in ms */
    double dmin, dmax;
    int64_t scale; /* DURATION: milliseconds per stored unit (0 means 1) */
    const char *const *choices;
    gw__check_fn check;
    const char *allowed; /* STRING: what `check` accepts, for messages and docs */
    const char *example; /* REQUIRED: placeholder value shown in the example file */
    const char *section; /* non-NULL on the first option of a section */
    const char *help;    /* one to three lines */
} gw__option;

#define GW__STORE(f)                                                                               \
    _Generic(((gw_config *)0)->f,                                                                  \
        char *: GW__ST_STR,                                                                        \
        bool: GW__ST_BOOL,                                                                         \
        int: GW__ST_INT,                                                                           \
        int64_t: GW__ST_I64,                                                                       \
        size_t: GW__ST_SIZE,                                                                       \
        double: GW__ST_DOUBLE)
#define GW__FIELD(f)                                                                               \
    .offset = offsetof(gw_config, f), .cap = sizeof(((gw_config *)0)->f), .store = GW__STORE(f)

#define GW__S  1000
#define GW__M  (60 * GW__S)
#define GW__H  (60 * GW__M)
#define GW__D  (24 * (int64_t)GW__H)
#define GW__KB 1024

static const char *const gw__log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const gw__mqtt_protocols[] = {"5", "3.1.1", NULL};
static const char *const gw__acknowledge[] = {"stored", "confirmed", NULL};

static const gw__option gw__options[] = {
    {.key = "device_listen",
     .type = GW__LISTEN,
     GW__FIELD(device_listen),
     .def = "0.0.0.0:8443",
     .section = "Device listener (HTTPS, mutual TLS)",
     .help = "Address and port of the HTTPS listener for devices.\n"
             "0.0.0.0:PORT or [::]:PORT listens on every address."},
    {.key = "device_tls",
     .type = GW__BOOL,
     GW__FIELD(device_tls),
     .def = "yes",
     .help = "Serve devices over TLS. \"no\" makes the device listener plaintext\n"
             "HTTP and is refused unless development_mode = yes."},
    {.key = "require_client_cert",
     .type = GW__BOOL,
     GW__FIELD(require_client_cert),
     .def = "yes",
     .help = "Require a device certificate signed by client_ca. \"no\" takes the\n"
             "device ID from the X-Device-Id header and is refused unless\n"
             "development_mode = yes."},
    {.key = "tls_cert",
     .type = GW__PATH,
     GW__FIELD(tls_cert),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/tls/cert.pem",
     .help = "Server certificate of the gateway (PEM), presented to devices."},
    {.key = "tls_key",
     .type = GW__PATH,
     GW__FIELD(tls_key),
     .flags = GW__REQUIRED | GW__FILE | GW__KEY,
     .example = "/etc/iotgw/tls/key.pem",
     .help = "Private key of tls_cert (PEM); refused if group or others may\n"
             "access it."},
    {.key = "client_ca",
     .type = GW__PATH,
     GW__FIELD(client_ca),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/tls/ca.pem",
     .help = "CA certificate that signs the device certificates (iotctl ca.crt)."},
    {.key = "crl_file",
     .type = GW__PATH,
     GW__FIELD(crl_file),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/tls/crl.pem",
     .help = "Certificate revocation list written by iotctl (crl.pem)."},
    {.key = "registry",
     .type = GW__PATH,
     GW__FIELD(registry),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/registry.db",
     .help = "Device registry written by iotctl (registry.db); the gateway only\n"
             "reads it."},
    {.key = "workers",
     .type = GW__INT,
     GW__FIELD(workers),
     .def = "0",
     .min = 0,
     .max = 256,
     .help = "Event-loop threads serving devices; 0 starts one per CPU core."},
    {.key = "request_timeout",
     .type = GW__DURATION,
     GW__FIELD(request_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 10 * GW__M,
     .help = "How long a device connection may stay silent (in the TLS\n"
             "handshake, in a request, or idle between requests) before it is\n"
             "closed, so that silent clients cannot hold connections."},
    {.key = "tls_session_lifetime",
     .type = GW__DURATION,
     GW__FIELD(tls_session_lifetime_s),
     .def = "2h",
     .flags = GW__WHOLE_S | GW__ZERO_OFF,
     .min = GW__S,
     .max = 7 * GW__D,
     .scale = GW__S,
     .help = "How long a device may resume its TLS session (session tickets, TLS\n"
             "1.2 and 1.3, no early data) instead of a full handshake. A resumed\n"
             "session is admitted like a new one: its certificate is checked\n"
             "against the registry and CRL in force, so a revoked or renewed\n"
             "certificate cannot resume. Ticket keys live in memory only and\n"
             "rotate every lifetime. 0 turns resumption off."},
    {.key = "max_connections",
     .type = GW__INT,
     GW__FIELD(max_connections),
     .def = "20000",
     .min = 1,
     .max = 1000000,
     .help = "Device connections open at the same time; handshakes beyond it\n"
             "are refused with a TLS alert and counted as over_capacity."},
    {.key = "max_connections_per_address",
     .type = GW__INT,
     GW__FIELD(max_connections_per_address),
     .def = "256",
     .min = 0,
     .max = 1000000,
     .help = "Device connections one client address may hold at the same time\n"
             "(an IPv6 address counts by its /64 prefix), so that one host cannot\n"
             "take every max_connections slot. A connection beyond it is closed\n"
             "at once and counted as over_capacity. Raise it when many devices\n"
             "reach the gateway through one NAT address; 0 removes the cap."},
    {.key = "max_connections_per_device",
     .type = GW__INT,
     GW__FIELD(max_connections_per_device),
     .def = "4",
     .min = 0,
     .max = 1000000,
     .help = "Connections one device (one certificate's device ID) may hold at the\n"
             "same time; a handshake beyond it is refused and counted as\n"
             "over_capacity. A device needs one; 0 removes the cap."},
    {.key = "max_buffered_bytes",
     .type = GW__SIZE,
     GW__FIELD(max_buffered_bytes),
     .def = "256MiB",
     .min = 1024 * GW__KB,
     .max = (int64_t)64 * 1024 * 1024 * GW__KB,
     .help = "Bytes of requests being received, over all device connections,\n"
             "that the gateway buffers at most. The connection whose bytes would\n"
             "go beyond it is closed and counted as over_capacity, so that many\n"
             "slow uploads cannot exhaust memory. See docs/gateway.md, Memory."},
    {.key = "connection_rate_per_address",
     .type = GW__DOUBLE,
     GW__FIELD(connection_rate_per_address),
     .def = "20",
     .dmin = 0,
     .dmax = 100000,
     .help = "New connections per second one client address (an IPv6 /64) may\n"
             "open on average, so that one host cannot spend the gateway's CPU\n"
             "on handshakes. A connection beyond it is closed before its\n"
             "handshake and counted as rate_limited. 0 removes the limit."},
    {.key = "connection_burst_per_address",
     .type = GW__DOUBLE,
     GW__FIELD(connection_burst_per_address),
     .def = "200",
     .dmin = 1,
     .dmax = 1000000,
     .help = "New connections one address may open at once above that average,\n"
             "for example devices behind one NAT address reconnecting after an\n"
             "outage."},
    {.key = "proxy_protocol_from",
     .type = GW__STRING,
     GW__FIELD(proxy_protocol_from),
     .def = "",
     .flags = GW__EMPTY_OK,
     .check = gw_proxy_from_check,
     .allowed = "IP addresses or CIDR prefixes separated by spaces or commas, at most 32, "
                "or \"\" (off)",
     .help = "Addresses of the TCP balancers (HAProxy with send-proxy-v2) in front\n"
             "of the device listener. A connection from one of them must start with\n"
             "a PROXY protocol v2 header, whose client address then counts for the\n"
             "per-address limits and the logs; a PROXY header from any other address,\n"
             "or none from a balancer, is refused as proxy_header_refused. \"\" looks\n"
             "for no header (one then fails the TLS handshake as tls_protocol).\n"
             "See docs/deploy.md, Several gateways behind HAProxy."},
    {.key = "reload_interval",
     .type = GW__DURATION,
     GW__FIELD(reload_interval_ms),
     .def = "2s",
     .flags = GW__ZERO_OFF,
     .min = 100,
     .max = GW__D,
     .help = "How often the registry and the CRL are checked for changes;\n"
             "0 reloads them on SIGHUP only."},
    {.key = "admin_listen",
     .type = GW__LISTEN,
     GW__FIELD(admin_listen),
     .def = "127.0.0.1:9100",
     .flags = GW__EMPTY_OK,
     .section = "Admin listener (plain HTTP)",
     .help = "Address of the admin listener (/healthz, /metrics); \"\" disables\n"
             "it. It is plain HTTP: a non-loopback address is refused unless\n"
             "admin_remote = yes, which needs admin_token_file."},
    {.key = "admin_remote",
     .type = GW__BOOL,
     GW__FIELD(admin_remote),
     .def = "no",
     .help = "Allow admin_listen on an address other than loopback. Every request\n"
             "must then carry the token of admin_token_file, and the gateway logs\n"
             "a warning at start. Prefer a loopback listener behind a TLS proxy."},
    {.key = "admin_token_file",
     .type = GW__PATH,
     GW__FIELD(admin_token_file),
     .def = "",
     .flags = GW__EMPTY_OK,
     .help = "File holding the admin listener's bearer token (one line, at least\n"
             "32 characters; refused if group or others may access it). When set,\n"
             "/healthz and /metrics answer 401 without \"Authorization: Bearer\n"
             "<token>\". Required with admin_remote = yes."},
    {.key = "admin_max_connections",
     .type = GW__INT,
     GW__FIELD(admin_max_connections),
     .def = "16",
     .min = 1,
     .max = 1024,
     .help = "Connections the admin listener serves at once; more are closed at\n"
             "once."},
    {.key = "max_body",
     .type = GW__SIZE,
     GW__FIELD(max_body),
     .def = "16KiB",
     .min = 256,
     .max = 1024 * GW__KB,
     .section = "Payload limits",
     .help = "Largest request body accepted; larger ones get 413."},
    {.key = "max_depth",
     .type = GW__INT,
     GW__FIELD(max_depth),
     .def = IOTD_PROTOCOL_STR(IOTD_PROTOCOL_DEPTH_MAX),
     .min = 1,
     .max = 32,
     .help = "Deepest JSON nesting accepted in a request body."},
    {.key = "max_records",
     .type = GW__INT,
     GW__FIELD(max_records),
     .def = IOTD_PROTOCOL_STR(IOTD_PROTOCOL_RECORDS_MAX),
     .min = 1,
     .max = 10000,
     .help = "Records accepted in one request."},
    {.key = "max_readings",
     .type = GW__INT,
     GW__FIELD(max_readings),
     .def = IOTD_PROTOCOL_STR(IOTD_PROTOCOL_READINGS_MAX),
     .min = 1,
     .max = 10000,
     .help = "Readings accepted in one request."},
    {.key = "past_window",
     .type = GW__DURATION,
     GW__FIELD(past_window_ms),
     .def = "7d",
     .min = GW__S,
     .max = 365 * GW__D,
     .help = "How far in the past the time of a reading may lie."},
    {.key = "future_window",
     .type = GW__DURATION,
     GW__FIELD(future_window_ms),
     .def = "5m",
     .min = 0,
     .max = GW__D,
     .help = "How far in the future the time of a reading may lie (clock skew)."},
    {.key = "rate_limit",
     .type = GW__DOUBLE,
     GW__FIELD(rate_limit),
     .def = "10",
     .dmin = 0,
     .dmax = 1000,
     .section = "Per-device rate limit (token bucket)",
     .help = "Requests per second each device may make on average; 0 disables\n"
             "the limit."},
    {.key = "rate_burst",
     .type = GW__DOUBLE,
     GW__FIELD(rate_burst),
     .def = "20",
     .dmin = 0,
     .dmax = 10000,
     .help = "Requests a device may make at once above the average (bucket\n"
             "size); at least 1 when rate_limit is not 0."},
    {.key = "outbox",
     .type = GW__PATH,
     GW__FIELD(outbox),
     .def = "/var/lib/iotgw/outbox.db",
     .flags = GW__DIR_OF,
     .section = "Durable outbox",
     .help = "SQLite file of the durable outbox; its directory must exist."},
    {.key = "outbox_max",
     .type = GW__INT,
     GW__FIELD(outbox_max),
     .def = "1000000",
     .min = 1,
     .max = 1000000000,
     .help = "Readings the outbox holds at most; when it is full, devices get\n"
             "503 with Retry-After."},
    {.key = "outbox_max_bytes",
     .type = GW__SIZE,
     GW__FIELD(outbox_max_bytes),
     .def = "1GiB",
     .min = 64 * GW__KB,
     .max = (int64_t)1024 * 1024 * 1024 * 1024,
     .help = "Bytes of readings (their stored messages) the outbox holds at most;\n"
             "beyond it devices get 503 with Retry-After, as for outbox_max."},
    {.key = "outbox_device_share",
     .type = GW__INT,
     GW__FIELD(outbox_device_share),
     .def = "10",
     .min = 1,
     .max = 100,
     .help = "Percentage of outbox_max and of outbox_max_bytes that one device\n"
             "may hold, so that during a broker outage one device cannot fill the\n"
             "outbox for all: beyond it that device alone gets 503\n"
             "outbox_device_share_full. 100 turns the share off."},
    {.key = "retry_after",
     .type = GW__DURATION,
     GW__FIELD(retry_after_s),
     .def = "5s",
     .flags = GW__WHOLE_S,
     .min = GW__S,
     .max = GW__H,
     .scale = GW__S,
     .help = "Retry-After sent with 503 responses."},
    {.key = "acknowledge",
     .type = GW__ENUM,
     GW__FIELD(acknowledge),
     .def = "stored",
     .choices = gw__acknowledge,
     .help = "When a device gets its 200. stored: once the reading is synced to\n"
             "the outbox, which survives a crash of the process or the machine,\n"
             "not the loss of its disk. confirmed: once the broker has also\n"
             "acknowledged it (PUBACK; with RabbitMQ, after its quorum queues\n"
             "have it on a majority of nodes), so losing this gateway's disk\n"
             "loses nothing acknowledged; each request waits a round trip to the\n"
             "broker more (docs/gateway.md, What a 200 means)."},
    {.key = "confirm_timeout",
     .type = GW__DURATION,
     GW__FIELD(confirm_timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 10 * GW__M,
     .help = "With acknowledge = confirmed, how long a request waits for the\n"
             "broker: then it gets 503 not_confirmed (the reading stays stored\n"
             "and is delivered; the device's resend is recognised)."},
    {.key = "rollouts",
     .type = GW__PATH,
     GW__FIELD(rollouts),
     .def = "",
     .flags = GW__EMPTY_OK | GW__DIR_OF,
     .example = "/var/lib/iotgw/rollouts.db",
     .section = "Firmware updates",
     .help = "Rollout file shared with iotctl (iotctl rollout ... --db PATH): the\n"
             "gateway offers releases from it, records device reports, starts\n"
             "waves and pauses rollouts; it must be able to write the file and\n"
             "its directory. \"\" turns firmware updates off (devices are told\n"
             "there is nothing for them). Needs firmware_dir."},
    {.key = "firmware_dir",
     .type = GW__PATH,
     GW__FIELD(firmware_dir),
     .def = "",
     .flags = GW__EMPTY_OK,
     .example = "/var/lib/iotgw/firmware",
     .help = "Directory of released firmware as iotctl keeps it (PKI/firmware,\n"
             "or a copy): images/DIGEST.bin and the trusted signing keys\n"
             "trusted-keys.pem. Every manifest is verified with those keys\n"
             "before a device is offered it. Needs rollouts."},
    {.key = "est_ca_cert",
     .type = GW__PATH,
     GW__FIELD(est_ca_cert),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE,
     .example = "/etc/iotgw/est/issuer.pem",
     .section = "Enrollment (EST, RFC 7030)",
     .help = "Certificate of the issuing CA (iotctl ca intermediate NAME: an\n"
             "intermediate the root signed, recorded in the registry as an issuer).\n"
             "Setting it and est_ca_key turns enrollment on: devices get and renew\n"
             "their certificates at /.well-known/est/, and the gateway writes the\n"
             "registry. \"\" turns enrollment off. The root key is never needed."},
    {.key = "est_ca_key",
     .type = GW__PATH,
     GW__FIELD(est_ca_key),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE | GW__KEY,
     .example = "/etc/iotgw/est/issuer.key",
     .help = "Private key of est_ca_cert; refused if group or others may access it.\n"
             "Needs est_ca_cert."},
    {.key = "est_bootstrap_ca",
     .type = GW__PATH,
     GW__FIELD(est_bootstrap_ca),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE,
     .example = "/etc/iotgw/est/bootstrap-ca.pem",
     .help = "Certificate of the bootstrap (factory) CA (iotctl bootstrap init). A\n"
             "client certificate it signed may only ask for a first enrollment\n"
             "(simpleenroll), never send readings. \"\": no bootstrap certificates."},
    {.key = "est_cert_lifetime",
     .type = GW__DURATION,
     GW__FIELD(est_cert_lifetime_s),
     .def = "90d",
     .flags = GW__WHOLE_S,
     .min = GW__H,
     .max = 825 * GW__D,
     .scale = GW__S,
     .help = "Lifetime of a device certificate the gateway issues (never past the\n"
             "issuing CA's own expiry). Devices renew at about two thirds of it."},
    {.key = "est_renewal_grace",
     .type = GW__DURATION,
     GW__FIELD(est_renewal_grace_s),
     .def = "7d",
     .flags = GW__WHOLE_S,
     .min = 0,
     .max = 90 * GW__D,
     .scale = GW__S,
     .help = "How long a renewed device's previous certificate keeps working\n"
             "unless the new one is used first, so that a device that lost the\n"
             "answer can ask again."},
    {.key = "est_require_approval",
     .type = GW__BOOL,
     GW__FIELD(est_require_approval),
     .def = "no",
     .help = "First enrollments wait (202 with Retry-After) until an operator runs\n"
             "iotctl enroll approve DEVICE (or deny)."},
    {.key = "est_retry_after",
     .type = GW__DURATION,
     GW__FIELD(est_retry_after_s),
     .def = "60s",
     .flags = GW__WHOLE_S,
     .min = GW__S,
     .max = GW__D,
     .scale = GW__S,
     .help = "Retry-After sent with 202 while an enrollment waits for approval."},
    {.key = "est_max_failures",
     .type = GW__INT,
     GW__FIELD(est_max_failures),
     .def = "10",
     .min = 1,
     .max = 100000,
     .help = "Refused enrollments (401 and 403) one address may have within\n"
             "est_failure_window; beyond it the address gets 429 with Retry-After\n"
             "until the window ends."},
    {.key = "est_failure_window",
     .type = GW__DURATION,
     GW__FIELD(est_failure_window_s),
     .def = "10m",
     .flags = GW__WHOLE_S,
     .min = GW__S,
     .max = GW__D,
     .scale = GW__S,
     .help = "The window est_max_failures counts in."},
    {.key = "cert_expiry_warning",
     .type = GW__DURATION,
     GW__FIELD(cert_expiry_warning_s),
     .def = "30d",
     .flags = GW__WHOLE_S,
     .min = GW__H,
     .max = 365 * GW__D,
     .scale = GW__S,
     .help = "A device whose certificate expires within this time and has no\n"
             "renewal in progress is counted in iotgw_devices_cert_expiring."},
    {.key = "security_events",
     .type = GW__BOOL,
     GW__FIELD(security_events),
     .def = "yes",
     .section = "Security event stream",
     .help = "Publish every security-relevant event (refused handshakes and\n"
             "requests, revoked or unknown devices, rate limits, replays,\n"
             "enrollment, reloads, update failures) as one JSON document on\n"
             "security/<gateway>/<type> over a second MQTT connection, kept in\n"
             "its own outbox until the broker has it (docs/security-events.md)."},
    {.key = "security_outbox",
     .type = GW__PATH,
     GW__FIELD(security_outbox),
     .def = "",
     .flags = GW__EMPTY_OK | GW__DIR_OF,
     .example = "/var/lib/iotgw/security-events.db",
     .help = "SQLite file of the security events' outbox; empty: security-events.db\n"
             "in the directory of outbox."},
    {.key = "security_outbox_max",
     .type = GW__INT,
     GW__FIELD(security_outbox_max),
     .def = "100000",
     .min = 100,
     .max = 100000000,
     .help = "Security events the outbox holds at most while the broker is away;\n"
             "beyond it events are counted in iotgw_security_events_lost_total and\n"
             "logged, never dropped silently."},
    {.key = "security_event_window",
     .type = GW__DURATION,
     GW__FIELD(security_event_window_ms),
     .def = "60s",
     .min = GW__S,
     .max = GW__H,
     .help = "Noise control: after an event of one type from one source (a device,\n"
             "an address), repeats within this window are counted, not published,\n"
             "and published as one summary with the count when it ends."},
    {.key = "fleet_inventory",
     .type = GW__PATH,
     GW__FIELD(fleet_inventory),
     .def = "",
     .flags = GW__EMPTY_OK | GW__DIR_OF,
     .example = "/var/lib/iotgw/fleet.db",
     .section = "Fleet inventory",
     .help = "SQLite file of the fleet inventory (each device's last contact and\n"
             "last health report, served on the admin listener's /fleet); empty:\n"
             "fleet.db in the directory of outbox."},
    {.key = "device_silent_after",
     .type = GW__DURATION,
     GW__FIELD(device_silent_after_s),
     .def = "2h",
     .flags = GW__WHOLE_S,
     .min = GW__M,
     .max = 30 * GW__D,
     .scale = GW__S,
     .help = "A device of the inventory not heard from for this long counts in\n"
             "iotgw_devices_silent (alert IotgwDevicesSilent)."},
    {.key = "shared_state",
     .type = GW__STRING,
     GW__FIELD(shared_state),
     .def = "",
     .flags = GW__EMPTY_OK,
     .check = gw_brokers_check,
     .allowed = "up to 8 of HOST, HOST:PORT or [IPv6]:PORT, separated by spaces",
     .example = "10.0.0.21:2379 10.0.0.22:2379 10.0.0.23:2379",
     .section = "Shared state (several gateways)",
     .help = "The members of the etcd cluster that gateways behind one balancer\n"
             "share (docs/cluster.md, Shared state): enrollment tokens, the\n"
             "certificates issued and revoked, and rollout reports. Empty: this\n"
             "gateway keeps them alone. Port 2379 when none is given; always TLS\n"
             "with shared_state_cert."},
    {.key = "shared_state_ca",
     .type = GW__PATH,
     GW__FIELD(shared_state_ca),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE,
     .example = "/etc/iotgw/etcd/ca.pem",
     .help = "Root of the shared state's own PKI, which signs the etcd members'\n"
             "certificates and the gateways' (iotctl --dir DIR pki init; never the\n"
             "devices' CA: etcd admits whatever it signs)."},
    {.key = "shared_state_cert",
     .type = GW__PATH,
     GW__FIELD(shared_state_cert),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE,
     .example = "/etc/iotgw/etcd/cert.pem",
     .help = "Client certificate of the gateway at etcd, from the shared state's\n"
             "PKI (iotctl --dir DIR cert client NAME --role gateway)."},
    {.key = "shared_state_key",
     .type = GW__PATH,
     GW__FIELD(shared_state_key),
     .def = "",
     .flags = GW__EMPTY_OK | GW__FILE | GW__KEY,
     .example = "/etc/iotgw/etcd/key.pem",
     .help = "Private key of shared_state_cert; refused if group or others may\n"
             "access it."},
    {.key = "shared_state_poll",
     .type = GW__DURATION,
     GW__FIELD(shared_state_poll_ms),
     .def = "1s",
     .min = 100,
     .max = GW__M,
     .help = "How often what other gateways shared (tokens, certificates,\n"
             "revocations, rollout reports) is read."},
    {.key = "mqtt_host",
     .type = GW__STRING,
     GW__FIELD(mqtt_host),
     .flags = GW__REQUIRED,
     .check = gw_brokers_check,
     .allowed = "up to 8 of HOST, HOST:PORT or [IPv6]:PORT, separated by spaces",
     .example = "broker.example.org",
     .section = "MQTT forwarder",
     .help = "The MQTT broker: a host name or IP address, or several (the nodes of\n"
             "a broker cluster), tried in order: the forwarder stays with the\n"
             "first that takes it and moves on to the next when it fails. Each\n"
             "broker's certificate must name its own host."},
    {.key = "mqtt_port",
     .type = GW__INT,
     GW__FIELD(mqtt_port),
     .def = "8883",
     .min = 1,
     .max = 65535,
     .help = "TCP port of the broker's TLS listener, for the mqtt_host entries\n"
             "that name none."},
    {.key = "mqtt_protocol",
     .type = GW__ENUM,
     GW__FIELD(mqtt_protocol),
     .def = "5",
     .choices = gw__mqtt_protocols,
     .help = "MQTT version: 5 (Mosquitto), or 3.1.1 for brokers that speak only\n"
             "that (RabbitMQ's MQTT plugin). With 3.1.1 a broker cannot refuse\n"
             "one publish: it closes the connection, and the reading stays in\n"
             "the outbox (docs/gateway.md, MQTT 3.1.1)."},
    {.key = "mqtt_ca",
     .type = GW__PATH,
     GW__FIELD(mqtt_ca),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/mqtt/ca.pem",
     .help = "CA certificate that signs the broker's certificate."},
    {.key = "mqtt_cert",
     .type = GW__PATH,
     GW__FIELD(mqtt_cert),
     .flags = GW__REQUIRED | GW__FILE,
     .example = "/etc/iotgw/mqtt/cert.pem",
     .help = "Client certificate of the gateway at the broker\n"
             "(iotctl cert client NAME --role gateway)."},
    {.key = "mqtt_key",
     .type = GW__PATH,
     GW__FIELD(mqtt_key),
     .flags = GW__REQUIRED | GW__FILE | GW__KEY,
     .example = "/etc/iotgw/mqtt/key.pem",
     .help = "Private key of mqtt_cert; refused if group or others may access it."},
    {.key = "mqtt_client_id",
     .type = GW__STRING,
     GW__FIELD(mqtt_client_id),
     .def = "",
     .flags = GW__EMPTY_OK,
     .check = gw__check_client_id,
     .allowed = "up to 127 characters of [A-Za-z0-9._-]",
     .help = "MQTT client identifier; empty means iotgw-<hostname>."},
    {.key = "topic_prefix",
     .type = GW__STRING,
     GW__FIELD(topic_prefix),
     .def = "telemetry",
     .check = gw__check_topic_prefix,
     .allowed = "1-127 characters: segments of [A-Za-z0-9._-] joined by single '/'",
     .help = "First topic levels of every message:\n"
             "<topic_prefix>/<device-id>/telemetry."},
    {.key = "mqtt_keepalive",
     .type = GW__DURATION,
     GW__FIELD(mqtt_keepalive_ms),
     .def = "30s",
     .flags = GW__WHOLE_S,
     .min = 5 * GW__S,
     .max = 65535 * (int64_t)GW__S,
     .help = "MQTT keep-alive interval."},
    {.key = "mqtt_inflight",
     .type = GW__INT,
     GW__FIELD(mqtt_inflight),
     .def = "256",
     .min = 1,
     .max = 65535,
     .help = "QoS 1 messages sent and not yet acknowledged, at most."},
    {.key = "mqtt_max_packet",
     .type = GW__SIZE,
     GW__FIELD(mqtt_max_packet),
     .def = "64KiB",
     .min = GW__KB,
     .max = 256 * 1024 * GW__KB,
     .help = "Largest MQTT packet the broker accepts (Mosquitto's max_packet_size;\n"
             "deploy/broker/mosquitto.conf sets 64 KiB). A reading whose message\n"
             "would not fit is refused at ingest with 413 reading_too_large, so no\n"
             "stored reading can be one the broker refuses."},
    {.key = "reconnect_min",
     .type = GW__DURATION,
     GW__FIELD(reconnect_min_ms),
     .def = "500ms",
     .min = 10,
     .max = GW__H,
     .help = "Shortest delay before reconnecting to the broker."},
    {.key = "reconnect_max",
     .type = GW__DURATION,
     GW__FIELD(reconnect_max_ms),
     .def = "30s",
     .min = 100,
     .max = GW__D,
     .help = "Longest delay between reconnection attempts; not below\n"
             "reconnect_min."},
    {.key = "log_level",
     .type = GW__ENUM,
     GW__FIELD(log_level),
     .def = "info",
     .choices = gw__log_levels,
     .section = "Operations",
     .help = "Least severe messages written to the log."},
    {.key = "development_mode",
     .type = GW__BOOL,
     GW__FIELD(development_mode),
     .def = "no",
     .help = "Accept the insecure settings device_tls = no, require_client_cert = no\n"
             "and key files readable by others, each reported as a warning.\n"
             "Never in production."},
};

#define GW__N_OPTIONS (sizeof(gw__options) / sizeof(gw__options[0]))
_Static_assert(GW__N_OPTIONS <= GW_CONFIG_OPTIONS_MAX,
               "gw_config.set_line has no room for every option: raise GW_CONFIG_OPTIONS_MAX");

/* ------------------------------------------------------------------------ */
/* field access                                                              */

static void *gw__field(gw_config *cfg, const gw__option *o)
{
    return (char *)cfg + o->offset;
}

static const void *gw__cfield(const gw_config *cfg, const gw__option *o)
{
    return (const char *)cfg + o->offset;
}

static int64_t gw__get_int(const gw_config *cfg, const gw__option *o)
{
    const void *f = gw__cfield(cfg, o);
    int64_t scale = o->scale > 0 ? o->scale : 1;
    switch (o->store) {
    case GW__ST_INT:
        return *(const int *)f;
    case GW__ST_I64:
        /* Saturate instead of overflowing on a hand-built struct. */
        if (*(const int64_t *)f > INT64_MAX / scale || *(const int64_t *)f < INT64_MIN / scale)
            return *(const int64_t *)f > 0 ? INT64_MAX : INT64_MIN;
        return *(const int64_t *)f * scale;
    case GW__ST_SIZE:
        return *(const size_t *)f > (size_t)INT64_MAX ? INT64_MAX : (int64_t) * (const size_t *)f;
    default:
        return 0;
    }
}

/* The value is within the table's bounds, so it fits the field. */
static void gw__set_int(gw_config *cfg, const gw__option *o, int64_t v)
{
    void *f = gw__field(cfg, o);
    int64_t scale = o->scale > 0 ? o->scale : 1;
    if (o->store == GW__ST_INT)
        *(int *)f = (int)v;
    else if (o->store == GW__ST_I64)
        *(int64_t *)f = v / scale;
    else if (o->store == GW__ST_SIZE)
        *(size_t *)f = (size_t)v;
}

/* ------------------------------------------------------------------------ */
/* what a value may be                                                       */

static const char *gw__type_name(const gw__option *o)
{
    static const char *const names[] = {
        [GW__STRING] = "string", [GW__PATH] = "path",    [GW__LISTEN] = "address",
        [GW__INT] = "integer",   [GW__SIZE] = "size",    [GW__DURATION] = "duration",
        [GW__DOUBLE] = "number", [GW__BOOL] = "boolean", [GW__ENUM] = "choice",
    };
    return names[o->type];
}

/* The range of a numeric option, with its units. */
static void gw__describe_range(const gw__option *o, char *buf, size_t size)
{
    char lo[32];
    char hi[32];
    const char *off = (o->flags & GW__ZERO_OFF) ? "0 (off), or " : "";
    switch (o->type) {
    case GW__INT:
        snprintf(buf, size, "%s%lld to %lld", off, (long long)o->min, (long long)o->max);
        return;
    case GW__SIZE:
        gw__format_size(o->min, lo, sizeof(lo));
        gw__format_size(o->max, hi, sizeof(hi));
        snprintf(buf, size, "%s%s to %s (units B, KiB, MiB, GiB)", off, lo, hi);
        return;
    case GW__DURATION:
        gw__format_duration(o->min, lo, sizeof(lo));
        gw__format_duration(o->max, hi, sizeof(hi));
        snprintf(buf, size, "%s%s to %s (units %s)", off, lo, hi,
                 (o->flags & GW__WHOLE_S) ? "ms, s, m, h, d; whole seconds" : "ms, s, m, h, d");
        return;
    default:
        snprintf(buf, size, "%s%g to %g", off, o->dmin, o->dmax);
        return;
    }
}

/* The choices of an enumerated option, comma separated. */
static void gw__describe_choices(const gw__option *o, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (const char *const *c = o->choices; *c != NULL && used < size; c++) {
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", *c);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

/* One phrase, used in error messages, the example file and the docs. */
static void gw__describe(const gw__option *o, char *buf, size_t size)
{
    switch (o->type) {
    case GW__STRING:
        snprintf(buf, size, "%s", o->allowed);
        return;
    case GW__PATH:
        snprintf(buf, size, "a file path of at most %zu bytes", o->cap - 1);
        return;
    case GW__LISTEN:
        snprintf(buf, size, "host:port or [IPv6]:port, port 1-65535%s",
                 (o->flags & GW__EMPTY_OK) ? ", or \"\" (off)" : "");
        return;
    case GW__BOOL:
        snprintf(buf, size, "yes or no (also true/false, on/off)");
        return;
    case GW__ENUM:
        gw__describe_choices(o, buf, size);
        return;
    case GW__INT:
    case GW__SIZE:
    case GW__DURATION:
    case GW__DOUBLE:
        gw__describe_range(o, buf, size);
        return;
    }
}

static bool gw__in_range(const gw__option *o, int64_t v)
{
    if (v == 0 && (o->flags & GW__ZERO_OFF))
        return true;
    return v >= o->min && v <= o->max;
}

static bool gw__in_drange(const gw__option *o, double v)
{
    if (v == 0 && (o->flags & GW__ZERO_OFF))
        return true;
    return v >= o->dmin && v <= o->dmax;
}

/* Checks the value held in cfg; the parser and the validator share it so
 * that a file and a struct built in code obey the same rules. */
static const char *gw__check_value(const gw_config *cfg, const gw__option *o)
{
    const void *f = gw__cfield(cfg, o);
    if (o->store == GW__ST_STR) {
        const char *s = f;
        if (strnlen(s, o->cap) == o->cap)
            return "not terminated";
        if (s[0] == '\0')
            return (o->flags & GW__EMPTY_OK) ? NULL : "must not be empty";
        if (o->type == GW__LISTEN)
            return gw__check_listen(s);
        if (o->check != NULL)
            return o->check(s);
        if (o->type == GW__ENUM) {
            for (const char *const *c = o->choices; *c != NULL; c++) {
                if (strcmp(s, *c) == 0)
                    return NULL;
            }
            return "not one of the choices";
        }
        return NULL;
    }
    if (o->store == GW__ST_DOUBLE) {
        double v = *(const double *)f;
        return gw__in_drange(o, v) ? NULL : "out of range";
    }
    if (o->store == GW__ST_BOOL)
        return NULL;
    return gw__in_range(o, gw__get_int(cfg, o)) ? NULL : "out of range";
}

static bool gw__is_integer(const gw__option *o)
{
    return o->type == GW__INT || o->type == GW__SIZE || o->type == GW__DURATION;
}

/* The text of an integer, size or duration option as a number. */
static const char *gw__parse_integer(const gw__option *o, const char *text, int64_t *v)
{
    const char *bad = NULL;
    switch (o->type) {
    case GW__SIZE:
        bad = gw__parse_size(text, v);
        break;
    case GW__DURATION:
        bad = gw__parse_duration(text, v);
        if (bad == NULL && (o->flags & GW__WHOLE_S) && *v % GW__S != 0)
            bad = "not a whole number of seconds";
        break;
    default:
        bad = gw__parse_int(text, v);
        break;
    }
    return bad;
}

/* Converts the text of a value into cfg's field. */
static const char *gw__store_text(gw_config *cfg, const gw__option *o, const char *text, char *why,
                                  size_t why_size)
{
    if (o->type == GW__DOUBLE)
        return gw__parse_double(text, gw__field(cfg, o));
    if (o->type == GW__BOOL)
        return gw__parse_bool(text, gw__field(cfg, o));
    size_t len = strlen(text);
    if (len >= o->cap) {
        snprintf(why, why_size, "too long (%zu bytes, at most %zu)", len, o->cap - 1);
        return why;
    }
    memcpy(gw__field(cfg, o), text, len + 1);
    return NULL;
}

/* Converts the text of a value into cfg, then checks it. */
static const char *gw__set_value(gw_config *cfg, const gw__option *o, const char *text, char *why,
                                 size_t why_size)
{
    if (!gw__is_integer(o)) {
        const char *bad = gw__store_text(cfg, o, text, why, why_size);
        return bad != NULL ? bad : gw__check_value(cfg, o);
    }
    int64_t v = 0;
    const char *bad = gw__parse_integer(o, text, &v);
    if (bad != NULL)
        return bad;
    /* Range first: only in-range values are guaranteed to fit the field. */
    if (!gw__in_range(o, v))
        return "out of range";
    gw__set_int(cfg, o, v);
    return gw__check_value(cfg, o);
}

static const gw__option *gw__find(const char *key)
{
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        if (strcmp(gw__options[i].key, key) == 0)
            return &gw__options[i];
    }
    return NULL;
}

static const char *gw__suggest(const char *key)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        size_t d = gw__edit_distance(key, gw__options[i].key);
        if (d < best_d) {
            best_d = d;
            best = gw__options[i].key;
        }
    }
    size_t limit = strlen(key) / 4 > 2 ? strlen(key) / 4 : 2;
    return best_d <= limit ? best : NULL;
}

void gw_config_defaults(gw_config *cfg)
{
    char why[128];
    memset(cfg, 0, sizeof(*cfg));
    /* The defaults are written in file syntax and go through the parser,
     * so the example file shows exactly what the daemon uses. */
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        if (gw__options[i].def != NULL)
            (void)gw__set_value(cfg, &gw__options[i], gw__options[i].def, why, sizeof(why));
    }
}

/* ------------------------------------------------------------------------ */
/* parsing                                                                   */

typedef struct gw__parser {
    char origin[128];
    unsigned line;
    unsigned seen[GW__N_OPTIONS]; /* line that set each key; 0 = not set */
    gw_config cfg;
    iot_err *err;
} gw__parser;

static bool gw__is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool gw__is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* The key of a line, if it has a well-formed one, so that errors found
 * before the line is split can still name it. */
static void gw__line_key(const char *line, size_t len, char *key, size_t size)
{
    size_t i = 0;
    key[0] = '\0';
    while (i < len && gw__is_blank(line[i]))
        i++;
    size_t start = i;
    while (i < len && gw__is_key_char(line[i]))
        i++;
    size_t n = i - start;
    while (i < len && gw__is_blank(line[i]))
        i++;
    if (n == 0 || n >= size || i >= len || line[i] != '=')
        return;
    memcpy(key, line + start, n);
    key[n] = '\0';
}

static iot_status gw__line_error(gw__parser *p, const char *line, size_t len, const char *what)
{
    char key[48];
    gw__line_key(line, len, key, sizeof(key));
    if (key[0] != '\0')
        return iot_err_set(p->err, IOT_EINVAL, "%s in the line of '%s' at %s:%u", what, key,
                           p->origin, p->line);
    return iot_err_set(p->err, IOT_EINVAL, "%s at %s:%u", what, p->origin, p->line);
}

/* Refuses bytes that would hide text from a reader or a terminal. */
static iot_status gw__check_bytes(gw__parser *p, const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\0')
            return gw__line_error(p, line, len, "NUL byte");
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            char what[80];
            snprintf(what, sizeof(what),
                     "control character 0x%02x in column %zu (only tab is "
                     "allowed)",
                     c, i + 1);
            return gw__line_error(p, line, len, what);
        }
    }
    return IOT_OK;
}

/* Copies n bytes of a value into out, cut to size. */
static void gw__copy_value(const char *s, size_t n, char *out, size_t size)
{
    memcpy(out, s, n < size ? n : size - 1);
    out[n < size ? n : size - 1] = '\0';
}

/* A quoted value: s[i] is the opening quote; only a comment may follow the
 * closing one. */
static iot_status gw__split_quoted(gw__parser *p, const char *key, const char *s, size_t len,
                                   size_t i, char *out, size_t size)
{
    const char *close = memchr(s + i + 1, '"', len - i - 1);
    if (close == NULL)
        return iot_err_set(p->err, IOT_EINVAL,
                           "unterminated quote in the value of '%s' at %s:%u; a quoted value "
                           "ends with '\"' on the same line",
                           key, p->origin, p->line);
    size_t n = (size_t)(close - (s + i + 1));
    size_t j = (size_t)(close - s) + 1;
    while (j < len && gw__is_blank(s[j]))
        j++;
    if (j < len && s[j] != '#') {
        char shown[GW__SHOWN];
        gw__sanitize(s + j, len - j, shown, sizeof(shown));
        return iot_err_set(p->err, IOT_EINVAL,
                           "unexpected text '%s' after the quoted value of '%s' at %s:%u", shown,
                           key, p->origin, p->line);
    }
    gw__copy_value(s + i + 1, n, out, size);
    return IOT_OK;
}

/* Splits the text after '=' into the value; quotes keep '#' and blanks. */
static iot_status gw__split_value(gw__parser *p, const char *key, const char *s, size_t len,
                                  char *out, size_t size)
{
    size_t i = 0;
    while (i < len && gw__is_blank(s[i]))
        i++;
    if (i < len && s[i] == '"')
        return gw__split_quoted(p, key, s, len, i, out, size);
    size_t end = i;
    while (end < len && s[end] != '#')
        end++;
    while (end > i && gw__is_blank(s[end - 1]))
        end--;
    if (memchr(s + i, '"', end - i) != NULL)
        return iot_err_set(p->err, IOT_EINVAL,
                           "stray '\"' in the value of '%s' at %s:%u; quote the whole value", key,
                           p->origin, p->line);
    gw__copy_value(s + i, end - i, out, size);
    return IOT_OK;
}

static iot_status gw__parse_line(gw__parser *p, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && gw__is_blank(line[i]))
        i++;
    if (i == len || line[i] == '#')
        return IOT_OK;
    const char *eq = memchr(line, '=', len);
    char shown[GW__SHOWN];
    if (eq == NULL) {
        gw__sanitize(line + i, len - i, shown, sizeof(shown));
        return iot_err_set(p->err, IOT_EINVAL, "missing '=' at %s:%u in '%s'; expected key = value",
                           p->origin, p->line, shown);
    }
    size_t kend = (size_t)(eq - line);
    while (kend > i && gw__is_blank(line[kend - 1]))
        kend--;
    char key[GW__LINE_MAX + 1];
    memcpy(key, line + i, kend - i);
    key[kend - i] = '\0';
    gw__sanitize(key, kend - i, shown, sizeof(shown));
    if (key[0] == '\0')
        return iot_err_set(p->err, IOT_EINVAL, "missing key before '=' at %s:%u", p->origin,
                           p->line);
    const gw__option *o = gw__find(key);
    if (o == NULL) {
        const char *hint = gw__suggest(key);
        if (hint != NULL)
            return iot_err_set(p->err, IOT_EINVAL, "unknown key '%s' at %s:%u; did you mean '%s'?",
                               shown, p->origin, p->line, hint);
        return iot_err_set(p->err, IOT_EINVAL,
                           "unknown key '%s' at %s:%u; every key is listed in iotgw.conf.example",
                           shown, p->origin, p->line);
    }
    size_t idx = (size_t)(o - gw__options);
    if (p->seen[idx] != 0)
        return iot_err_set(p->err, IOT_EINVAL,
                           "duplicate key '%s' at %s:%u; it was already set at line %u", o->key,
                           p->origin, p->line, p->seen[idx]);
    p->seen[idx] = p->line;

    char value[GW__LINE_MAX + 1];
    const char *rest = eq + 1;
    iot_status st =
        gw__split_value(p, o->key, rest, len - (size_t)(rest - line), value, sizeof(value));
    if (st != IOT_OK)
        return st;
    char why[96];
    const char *bad = gw__set_value(&p->cfg, o, value, why, sizeof(why));
    if (bad == NULL)
        return IOT_OK;
    char allowed[160];
    gw__describe(o, allowed, sizeof(allowed));
    gw__sanitize(value, strlen(value), shown, sizeof(shown));
    return iot_err_set(p->err, IOT_EINVAL, "invalid value '%s' for '%s' at %s:%u: %s; allowed: %s",
                       shown, o->key, p->origin, p->line, bad, allowed);
}

/* One line of the file, without its line end. */
static iot_status gw__parse_one(gw__parser *p, const char *line, size_t n)
{
    if (n > GW__LINE_MAX)
        return gw__line_error(p, line, n, "line longer than 1024 bytes");
    iot_status st = gw__check_bytes(p, line, n);
    if (st != IOT_OK)
        return st;
    return gw__parse_line(p, line, n);
}

static iot_status gw__parse_lines(gw__parser *p, const char *text, size_t len)
{
    iot_status st = IOT_OK;
    size_t pos = 0;
    /* A byte order mark, as some Windows editors write, is not a key. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len && st == IOT_OK) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL ? 1 : 0);
        p->line++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        st = gw__parse_one(p, line, n);
    }
    return st;
}

iot_status gw_config_parse(const char *text, size_t len, const char *origin, gw_config *cfg,
                           iot_err *err)
{
    iot_status st = IOT_OK;
    gw__parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory parsing the configuration");
    p->err = err;
    origin = origin != NULL ? origin : "config";
    gw__sanitize(origin, strlen(origin), p->origin, sizeof(p->origin));
    if (text == NULL && len > 0) {
        st = iot_err_set(err, IOT_EINVAL, "no text given for %s", p->origin);
        goto out;
    }
    if (len > GW_CONFIG_FILE_MAX) {
        st = iot_err_set(err, IOT_ENOMEM, "%s is %zu bytes; the limit is %d", p->origin, len,
                         GW_CONFIG_FILE_MAX);
        goto out;
    }
    gw_config_defaults(&p->cfg);
    st = gw__parse_lines(p, text, len);
    if (st != IOT_OK)
        goto out;
    /* Validation errors name the line that set the value at fault. */
    snprintf(p->cfg.origin, sizeof(p->cfg.origin), "%s", p->origin);
    for (size_t i = 0; i < GW__N_OPTIONS; i++)
        p->cfg.set_line[i] = p->seen[i];
    *cfg = p->cfg;
out:
    free(p);
    return st;
}

/* ------------------------------------------------------------------------ */
/* validation                                                                */

static void gw__warn(gw_config_warn_fn warn, void *ctx, const char *key, const char *message)
{
    if (warn != NULL)
        warn(ctx, key, message);
}

void gw__config_where(const gw_config *cfg, const char *key, char *buf, size_t size)
{
    const gw__option *o = gw__find(key);
    unsigned line = o != NULL ? cfg->set_line[o - gw__options] : 0;
    buf[0] = '\0';
    if (strnlen(cfg->origin, sizeof(cfg->origin)) == sizeof(cfg->origin) || cfg->origin[0] == '\0')
        return;
    if (line > 0)
        snprintf(buf, size, "%s:%u: ", cfg->origin, line);
    else
        snprintf(buf, size, "%s: ", cfg->origin);
}

/* The line that set `key`, 0 for its default. */
static unsigned gw__line_of(const gw_config *cfg, const char *key)
{
    const gw__option *o = gw__find(key);
    return o != NULL ? cfg->set_line[o - gw__options] : 0;
}

/* " (KEY is set at line N)" or " (KEY is its default)", for the second
 * key of a rule between two keys; "" in a struct the parser did not make. */
static void gw__line_note(const gw_config *cfg, const char *key, char *buf, size_t size)
{
    unsigned line = gw__line_of(cfg, key);
    if (cfg->origin[0] == '\0')
        buf[0] = '\0';
    else if (line > 0)
        snprintf(buf, size, " (%s is set at line %u)", key, line);
    else
        snprintf(buf, size, " (%s is its default)", key);
}

/* A validation error about `key`, located where the file set it. */
iot_status gw__config_invalid(const gw_config *cfg, iot_err *err, iot_status status,
                              const char *key, const char *fmt, ...)
{
    char where[GW_PATH_MAX + 16];
    char what[IOT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    gw__config_where(cfg, key, where, sizeof(where));
    return iot_err_set(err, status, "%s%s", where, what);
}

static iot_status gw__check_fields(const gw_config *cfg, iot_err *err)
{
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        const gw__option *o = &gw__options[i];
        const char *s = gw__cfield(cfg, o);
        if ((o->flags & GW__REQUIRED) && o->store == GW__ST_STR && strnlen(s, o->cap) == 0)
            return gw__config_invalid(cfg, err, IOT_EINVAL, o->key,
                                      "required key '%s' is not set (%s)", o->key,
                                      gw__type_name(o));
        const char *bad = gw__check_value(cfg, o);
        if (bad != NULL) {
            char allowed[160];
            gw__describe(o, allowed, sizeof(allowed));
            return gw__config_invalid(cfg, err, IOT_EINVAL, o->key,
                                      "invalid value for '%s': %s; allowed: %s", o->key, bad,
                                      allowed);
        }
    }
    return IOT_OK;
}

/* A balancer list that takes in everyone lets any client claim any address
 * (escaping its per-address limits, writing another address in the logs):
 * allowed, but said. */
static void gw__warn_proxy_from(const gw_config *cfg, gw_config_warn_fn warn, void *ctx)
{
    gw_proxy_from from;
    char why[160];
    if (!gw_proxy_from_parse(cfg->proxy_protocol_from, &from, why, sizeof(why)))
        return; /* refused with its reason by the field check */
    for (size_t i = 0; i < from.n; i++) {
        if (from.net[i].prefix == 0) {
            gw__warn(warn, ctx, "proxy_protocol_from",
                     "proxy_protocol_from takes PROXY headers from every address (a /0 prefix): "
                     "any client can claim any address, past the per-address limits; list "
                     "the balancers' addresses");
            return;
        }
    }
}

static iot_status gw__check_security(const gw_config *cfg, gw_config_warn_fn warn, void *ctx,
                                     iot_err *err)
{
    char note[64];
    if (!cfg->device_tls && cfg->require_client_cert) {
        gw__line_note(cfg, "require_client_cert", note, sizeof(note));
        return gw__config_invalid(
            cfg, err, IOT_EINVAL, "device_tls",
            "device_tls = no cannot be combined with require_client_cert = yes%s: "
            "a plaintext listener has no client certificates",
            note);
    }
    if (!cfg->device_tls) {
        if (!cfg->development_mode)
            return gw__config_invalid(
                cfg, err, IOT_EPERM, "device_tls",
                "device_tls = no (plaintext device listener) is refused unless "
                "development_mode = yes");
        gw__warn(warn, ctx, "device_tls",
                 "device_tls = no: devices talk to the gateway in plaintext HTTP");
    }
    if (!cfg->require_client_cert) {
        if (!cfg->development_mode)
            return gw__config_invalid(
                cfg, err, IOT_EPERM, "require_client_cert",
                "require_client_cert = no is refused unless development_mode = yes");
        gw__warn(warn, ctx, "require_client_cert",
                 "require_client_cert = no: devices are not authenticated and the device ID "
                 "is taken from the X-Device-Id header");
    }
    gw__warn_proxy_from(cfg, warn, ctx);
    return IOT_OK;
}

/* The admin listener is plain HTTP without a cap on who connects: off
 * loopback it needs an explicit yes and a token (whose file
 * gw_config_check_files protects like a key). */
static iot_status gw__check_admin(const gw_config *cfg, iot_err *err)
{
    if (cfg->admin_listen[0] != '\0' && !gw__listen_is_loopback(cfg->admin_listen) &&
        !cfg->admin_remote)
        return gw__config_invalid(
            cfg, err, IOT_EPERM, "admin_listen",
            "admin_listen %s is not a loopback address: the admin listener is "
            "plain HTTP; use 127.0.0.1:PORT, or set admin_remote = yes with "
            "admin_token_file",
            cfg->admin_listen);
    if (cfg->admin_remote && cfg->admin_token_file[0] == '\0')
        return gw__config_invalid(
            cfg, err, IOT_EPERM, "admin_remote",
            "admin_remote = yes needs admin_token_file: an admin listener off "
            "loopback must authenticate its clients");
    return IOT_OK;
}

/* Firmware updates need both the rollout file and the released images. */
static iot_status gw__check_updates(const gw_config *cfg, iot_err *err)
{
    bool rollouts = cfg->rollouts[0] != '\0';
    if (rollouts == (cfg->firmware_dir[0] != '\0'))
        return IOT_OK;
    return gw__config_invalid(cfg, err, IOT_EINVAL, rollouts ? "rollouts" : "firmware_dir",
                              "rollouts and firmware_dir go together: set both to serve "
                              "firmware updates, or neither");
}

/* Enrollment needs the issuing CA's certificate and key together; a
 * bootstrap CA only means something with enrollment on. */
static iot_status gw__check_est(const gw_config *cfg, iot_err *err)
{
    bool cert = cfg->est_ca_cert[0] != '\0';
    if (cert != (cfg->est_ca_key[0] != '\0'))
        return gw__config_invalid(cfg, err, IOT_EINVAL, cert ? "est_ca_cert" : "est_ca_key",
                                  "est_ca_cert and est_ca_key go together: set both to serve "
                                  "enrollment, or neither");
    if (!cert && cfg->est_bootstrap_ca[0] != '\0')
        return gw__config_invalid(cfg, err, IOT_EINVAL, "est_bootstrap_ca",
                                  "est_bootstrap_ca needs enrollment on (est_ca_cert and "
                                  "est_ca_key)");
    return IOT_OK;
}

/* etcd is reached with mutual TLS only: the CA, certificate and key come
 * with the member list, and mean nothing without it. */
static iot_status gw__check_shared_state(const gw_config *cfg, iot_err *err)
{
    bool on = cfg->shared_state[0] != '\0';
    const char *files[] = {"shared_state_ca", "shared_state_cert", "shared_state_key"};
    const char *values[] = {cfg->shared_state_ca, cfg->shared_state_cert, cfg->shared_state_key};
    for (size_t i = 0; i < 3; i++) {
        if (on && values[i][0] == '\0')
            return gw__config_invalid(cfg, err, IOT_EINVAL, files[i],
                                      "shared_state needs shared_state_ca, shared_state_cert and "
                                      "shared_state_key: etcd is reached with mutual TLS");
        if (!on && values[i][0] != '\0')
            return gw__config_invalid(cfg, err, IOT_EINVAL, files[i],
                                      "%s means nothing without shared_state (the etcd members)",
                                      files[i]);
    }
    return IOT_OK;
}

/* Of two keys bound by a rule, the one to name first: the one the file
 * set (the later line when it set both). */
static const char *gw__blame(const gw_config *cfg, const char *a, const char *b)
{
    return gw__line_of(cfg, b) > gw__line_of(cfg, a) ? b : a;
}

static iot_status gw__check_limits(const gw_config *cfg, iot_err *err)
{
    char note[64];
    if (cfg->reconnect_min_ms > cfg->reconnect_max_ms) {
        char lo[32];
        char hi[32];
        const char *at = gw__blame(cfg, "reconnect_min", "reconnect_max");
        const char *other = strcmp(at, "reconnect_min") == 0 ? "reconnect_max" : "reconnect_min";
        gw__format_duration(cfg->reconnect_min_ms, lo, sizeof(lo));
        gw__format_duration(cfg->reconnect_max_ms, hi, sizeof(hi));
        gw__line_note(cfg, other, note, sizeof(note));
        return gw__config_invalid(
            cfg, err, IOT_EINVAL, at,
            "reconnect_min (%s) is greater than reconnect_max (%s); it must not "
            "be%s",
            lo, hi, note);
    }
    if (cfg->rate_limit > 0 && cfg->rate_burst < 1) {
        const char *at = gw__blame(cfg, "rate_burst", "rate_limit");
        const char *other = strcmp(at, "rate_burst") == 0 ? "rate_limit" : "rate_burst";
        gw__line_note(cfg, other, note, sizeof(note));
        return gw__config_invalid(
            cfg, err, IOT_EINVAL, at,
            "rate_burst is %g but must be at least 1 when rate_limit is on (%g)%s", cfg->rate_burst,
            cfg->rate_limit, note);
    }
    return IOT_OK;
}

/* What the daemon will open for an option, from its flags. */
static unsigned gw__need_of(const gw__option *o)
{
    unsigned need = 0;
    if (o->flags & GW__FILE)
        need |= GW__NEED_READ;
    if (o->flags & GW__KEY)
        need |= GW__NEED_PRIVATE;
    if (o->flags & GW__DIR_OF)
        need |= GW__NEED_DIR;
    return need;
}

size_t gw__config_paths(const gw_config *cfg, gw__config_path *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < GW__N_OPTIONS && n < max; i++) {
        unsigned need = gw__need_of(&gw__options[i]);
        const char *path = gw__cfield(cfg, &gw__options[i]);
        /* A file option left "" (off) names no file to check. */
        bool off =
            (gw__options[i].flags & GW__EMPTY_OK) && (need & GW__NEED_READ) && path[0] == '\0';
        if (need == 0 || off)
            continue;
        out[n].key = gw__options[i].key;
        out[n].path = gw__cfield(cfg, &gw__options[i]);
        out[n].need = need;
        n++;
    }
    return n;
}

iot_status gw_config_validate(const gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                              iot_err *err)
{
    iot_status st = gw__check_fields(cfg, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_security(cfg, warn, warn_ctx, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_limits(cfg, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_admin(cfg, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_updates(cfg, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_est(cfg, err);
    if (st != IOT_OK)
        goto out;
    st = gw__check_shared_state(cfg, err);
out:
    return st;
}

/* ------------------------------------------------------------------------ */
/* example file and documentation                                            */

typedef struct gw__sink {
    char *buf;
    size_t size;
    size_t len; /* what the whole text needs, even past `size` */
} gw__sink;

__attribute__((format(printf, 2, 3))) static void gw__put(gw__sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool room = s->len < s->size;
    int n = vsnprintf(room ? s->buf + s->len : NULL, room ? s->size - s->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
}

static iot_status gw__sink_done(const gw__sink *s, size_t *written)
{
    if (written != NULL)
        *written = s->len;
    if (s->len >= s->size)
        return IOT_ENOMEM;
    return IOT_OK;
}

/* Writes each line of `text` after `prefix`. */
static void gw__put_lines(gw__sink *s, const char *prefix, const char *text)
{
    while (*text != '\0') {
        const char *nl = strchr(text, '\n');
        int n = nl != NULL ? (int)(nl - text) : (int)strlen(text);
        if (n == 0)
            gw__put(s, "%.*s\n", (int)strcspn(prefix, " "), prefix); /* no trailing blank */
        else
            gw__put(s, "%s%.*s\n", prefix, n, text);
        text += n + (nl != NULL ? 1 : 0);
    }
}

/* A value as it is written in the file: quoted when empty or when it holds
 * characters the unquoted form would lose. */
static void gw__put_value(gw__sink *s, const char *v)
{
    if (v[0] == '\0' || strpbrk(v, "# \t") != NULL)
        gw__put(s, "\"%s\"", v);
    else
        gw__put(s, "%s", v);
}

iot_status gw_config_write_example(char *buf, size_t size, size_t *written)
{
    gw__sink s = {.buf = buf, .size = buf != NULL ? size : 0};
    gw__put_lines(&s, "# ",
                  "iotgw.conf: configuration of the iotgw gateway daemon.\n"
                  "\n"
                  "Format: one \"key = value\" per line; '#' starts a comment; values may\n"
                  "be quoted with \"...\" (no escapes). Durations take a unit (ms, s, m, h,\n"
                  "d), sizes take B, KiB, MiB or GiB; booleans are yes or no.\n"
                  "Optional keys are shown commented out with their default. The\n"
                  "required keys are set to placeholders: replace them.\n"
                  "\n"
                  "Check a file with: iotgw --check-config /etc/iotgw/iotgw.conf\n"
                  "This file is generated from the option table of the gateway\n"
                  "(gen_config_example); docs/configuration.md explains every rule.");
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        const gw__option *o = &gw__options[i];
        char allowed[160];
        gw__describe(o, allowed, sizeof(allowed));
        if (o->section != NULL)
            gw__put(&s, "\n# === %s ===\n", o->section);
        gw__put(&s, "\n");
        gw__put_lines(&s, "# ", o->help);
        if (o->flags & GW__REQUIRED) {
            gw__put(&s, "# Required. Allowed: %s.\n%s = ", allowed, o->key);
            gw__put_value(&s, o->example);
        } else {
            gw__put(&s, "# Allowed: %s.\n#%s = ", allowed, o->key);
            gw__put_value(&s, o->def);
        }
        gw__put(&s, "\n");
    }
    return gw__sink_done(&s, written);
}

/* Markdown cell text: line breaks become spaces, '|' is escaped. */
static void gw__put_cell(gw__sink *s, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '\n')
            gw__put(s, " ");
        else if (*p == '|')
            gw__put(s, "\\|");
        else
            gw__put(s, "%c", *p);
    }
}

iot_status gw__config_write_markdown(char *buf, size_t size, size_t *written)
{
    gw__sink s = {.buf = buf, .size = buf != NULL ? size : 0};
    for (size_t i = 0; i < GW__N_OPTIONS; i++) {
        const gw__option *o = &gw__options[i];
        if (o->section != NULL) {
            gw__put(&s, "%s### %s\n\n", i == 0 ? "" : "\n", o->section);
            gw__put(&s, "| key | type | default | allowed | meaning |\n");
            gw__put(&s, "|---|---|---|---|---|\n");
        }
        char allowed[160];
        gw__describe(o, allowed, sizeof(allowed));
        gw__put(&s, "| `%s` | %s | ", o->key, gw__type_name(o));
        if (o->flags & GW__REQUIRED)
            gw__put(&s, "**required**");
        else if (o->def[0] == '\0')
            gw__put(&s, "`\"\"`");
        else
            gw__put(&s, "`%s`", o->def);
        gw__put(&s, " | ");
        gw__put_cell(&s, allowed);
        gw__put(&s, " | ");
        gw__put_cell(&s, o->help);
        gw__put(&s, " |\n");
    }
    return gw__sink_done(&s, written);
}
