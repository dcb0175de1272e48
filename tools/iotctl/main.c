/* iotctl: the administrator's tool for the project's PKI and device registry.
 *
 *   iotctl [--dir DIR] GROUP COMMAND [OPTIONS] [ARGS]
 *
 * One table below lists every command with its synopsis and help, so the
 * dispatcher, `iotctl --help` and `iotctl GROUP COMMAND --help` cannot
 * disagree.
 */
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
    {"pki", "init", cmd_pki_init, "[--cn NAME] [--days N] [--crl-days N]",
     "Create the root CA (ECDSA P-256, SHA-256), an empty registry and a signed CRL.\n"
     "Refuses, changing nothing, if the directory already holds any part of a PKI.",
     "  --cn NAME              CA common name (default \"IoT Telemetry Root CA\")\n"
     "  --days N               CA validity in days (default 3650)\n"
     "  --crl-days N           CRL validity in days (default 30)\n"},
    {"cert", "server", cmd_cert_server, "NAME (--dns HOST | --ip ADDR)... [--days N] [--out DIR]",
     "Issue a TLS server certificate (for the gateway or the broker) with DNS and IP\n"
     "subjectAltNames. Writes key.pem (0600), cert.pem and ca.pem to DIR/servers/NAME.",
     "  --dns HOST             a DNS name the server is reached by (repeatable)\n"
     "  --ip ADDR              an IPv4/IPv6 address the server is reached by (repeatable)\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("397")},
    {"cert", "client", cmd_cert_client,
     "NAME --role gateway|operator|consumer [--days N] [--out DIR]",
     "Issue a TLS client certificate: 'gateway' for the gateway's own MQTT connection,\n"
     "'operator' or 'consumer' for people and applications. The broker uses NAME as the\n"
     "username in its ACL. Writes key.pem (0600), cert.pem and ca.pem to DIR/clients/NAME.",
     "  --role ROLE            gateway, operator or consumer (required)\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("397")},
    {"cert", "list", cmd_cert_list, "[--json]",
     "List server and client certificates with state, expiry and days left.",
     "  --json                 machine-readable output\n"},
    {"cert", "show", cmd_cert_show, "NAME [--json]",
     "Show one server or client certificate's record.",
     "  --json                 machine-readable output\n"},
    {"cert", "revoke", cmd_cert_revoke, "NAME [--reason REASON]",
     "Revoke a server or client certificate and regenerate the signed CRL.",
     "  --reason REASON        unspecified (default), key-compromise, affiliation-changed,\n"
     "                         superseded or cessation-of-operation\n"},
    {"device", "add", cmd_device_add, "ID [--csr FILE] [--days N] [--out DIR]",
     "Enroll a device. Without --csr, create its key and certificate (development flow);\n"
     "with --csr, sign the request the device made itself (production flow: the key never\n"
     "leaves the device). The CSR must be ECDSA P-256 with CN=ID. The ID is 1-64 characters\n"
     "of [A-Za-z0-9._-], not starting with '.'. Files go to DIR/devices/ID.",
     "  --csr FILE             sign this PEM or DER certificate signing request\n"
     "  --out DIR              write the files to DIR instead\n" VALIDITY_HELP("825")},
    {"device", "renew", cmd_device_renew, "ID [--csr FILE] [--days N] [--out DIR]",
     "Give an enrolled device a new certificate under the same ID, so its topic and its\n"
     "reading sequence stay the same: before it expires, or after its key was replaced.\n"
     "The old certificate is revoked (reason superseded) in the regenerated CRL, and its\n"
     "files move to DIR/devices/ID/superseded-SERIAL/. Without --csr a new key is made\n"
     "here; with --csr the device's new request is signed. Push crl.pem and registry.db to\n"
     "the gateway and install the new certificate on the device: the old one stops working\n"
     "as soon as the gateway has the new registry.",
     "  --csr FILE             sign this PEM or DER certificate signing request\n"
     "  --out DIR              write the files to DIR instead (the old files stay)\n" VALIDITY_HELP(
         "825")},
    {"device", "revoke", cmd_device_revoke, "ID [--reason REASON]",
     "Mark a device revoked in the registry and regenerate the signed CRL.",
     "  --reason REASON        unspecified (default), key-compromise, affiliation-changed,\n"
     "                         superseded or cessation-of-operation\n"},
    {"device", "list", cmd_device_list, "[--json]",
     "List devices with state, expiry and days left.",
     "  --json                 machine-readable output\n"},
    {"device", "show", cmd_device_show, "ID [--json]",
     "Show one device's record: state, serial, SHA-256 fingerprint, validity.",
     "  --json                 machine-readable output\n"},
    {"crl", "update", cmd_crl_update, "[--days N]",
     "Regenerate the signed CRL with a new number and validity. Run it before the\n"
     "current CRL's next-update time (daily from cron is a good habit).",
     "  --days N               CRL validity in days (default 30)\n"},
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

static void print_overview(FILE *out)
{
    fprintf(out, "usage: iotctl [--dir DIR] GROUP COMMAND [OPTIONS] [ARGS]\n\n"
                 "Manages the telemetry system's certificate authority, the certificates of the\n"
                 "gateway, the broker and operators, and the registry of enrolled devices.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < cli_command_count; i++) {
        const char *summary = cli_commands[i].summary;
        size_t first_line = strcspn(summary, "\n");
        fprintf(out, "  %-6s %-7s %.*s\n", cli_commands[i].group, cli_commands[i].name,
                (int)first_line, summary);
    }
    fprintf(out, "\nGlobal options:\n"
                 "  --dir DIR   the PKI directory (default: $IOTCTL_DIR, else ./pki)\n"
                 "  --help      this text; 'iotctl GROUP COMMAND --help' for one command\n"
                 "  --version   the program version\n\n"
                 "Exit status: 0 success, 1 the command failed, 2 the command line is wrong.\n");
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
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_overview(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("iotctl %s (%s)\n", IOT_VERSION, OpenSSL_version(OPENSSL_VERSION));
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            ctx.dir = argv[++i];
        } else if (strncmp(argv[i], "--dir=", 6) == 0) {
            ctx.dir = argv[i] + 6;
        } else {
            fprintf(stderr, "iotctl: unknown or incomplete global option '%s'\n\n", argv[i]);
            print_overview(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc - i < 2) {
        if (argc - i == 1)
            fprintf(stderr, "iotctl: '%s' needs a command\n\n", argv[i]);
        print_overview(stderr);
        return CLI_EXIT_USAGE;
    }
    const cli_command *cmd = cmd_find(argv[i], argv[i + 1]);
    if (cmd == NULL) {
        fprintf(stderr, "iotctl: unknown command '%s %s'\n\n", argv[i], argv[i + 1]);
        print_overview(stderr);
        return CLI_EXIT_USAGE;
    }
    /* The command sees argv[0] = its name, then its own options. */
    int sub_argc = argc - i - 1;
    char **sub_argv = argv + i + 1;
    optind = 1;
    return cmd->run(&ctx, sub_argc, sub_argv);
}
