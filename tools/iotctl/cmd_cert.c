/* iotctl cert server|client|list|revoke: identities other than devices. */
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "cmds.h"
#include "iot/identity.h"
#include "issue.h"
#include "listing.h"

static const char *const CLIENT_ROLES[] = {"gateway", "operator", "consumer", "console"};

static bool role_is_valid(const char *role)
{
    for (size_t i = 0; i < sizeof(CLIENT_ROLES) / sizeof(CLIENT_ROLES[0]); i++)
        if (strcmp(role, CLIENT_ROLES[i]) == 0)
            return true;
    return false;
}

int cmd_cert_server(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("cert", "server");
    static const struct option opts[] = {
        {"dns", required_argument, NULL, 'n'},   {"ip", required_argument, NULL, 'i'},
        {"also-client", no_argument, NULL, 'c'}, CMD_ISSUE_OPTIONS,
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    issue_request req = {.kind = IOT_KIND_SERVER, .role = "server"};
    req.profile.type = PKI_PROFILE_SERVER;
    cli_validity_opts validity = {0};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'n') {
            if (!iot_dns_name_is_valid(optarg))
                return cli_usage(self, "--dns '%s' is not a valid DNS name", optarg);
            if (req.profile.n_dns == PKI_MAX_SANS)
                return cli_usage(self, "at most %d --dns names", PKI_MAX_SANS);
            req.profile.dns[req.profile.n_dns++] = optarg;
        } else if (c == 'i') {
            if (req.profile.n_ips == PKI_MAX_SANS)
                return cli_usage(self, "at most %d --ip addresses", PKI_MAX_SANS);
            req.profile.ips[req.profile.n_ips++] = optarg;
        } else if (c == 'c') {
            req.profile.also_client = true;
        } else if (c == 'h') {
            return cli_help(self);
        } else if (!cmd_issue_option(c, &validity, &req)) {
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind < argc && req.profile.n_dns == 0 && req.profile.n_ips == 0)
        return cli_usage(self, "a server certificate needs at least one --dns or --ip");
    return cmd_issue(ctx, self, argc, argv, &req, &validity, CLI_DEFAULT_SERVER_DAYS, "NAME");
}

int cmd_cert_client(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("cert", "client");
    static const struct option opts[] = {{"role", required_argument, NULL, 'r'},
                                         CMD_ISSUE_OPTIONS,
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    issue_request req = {.kind = IOT_KIND_CLIENT};
    req.profile.type = PKI_PROFILE_CLIENT;
    cli_validity_opts validity = {0};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'r') {
            if (!role_is_valid(optarg))
                return cli_usage(
                    self, "--role '%s' is not one of gateway, operator, consumer, console", optarg);
            req.role = optarg;
        } else if (c == 'h') {
            return cli_help(self);
        } else if (!cmd_issue_option(c, &validity, &req)) {
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind < argc && req.role == NULL)
        return cli_usage(self, "--role is required (gateway, operator, consumer or console)");
    return cmd_issue(ctx, self, argc, argv, &req, &validity, CLI_DEFAULT_CLIENT_DAYS, "NAME");
}

int cmd_cert_list(cli_ctx *ctx, int argc, char **argv)
{
    return listing_run(ctx, cmd_find("cert", "list"), -1, argc, argv);
}

int cmd_cert_show(cli_ctx *ctx, int argc, char **argv)
{
    return listing_show(ctx, cmd_find("cert", "show"), -1, argc, argv);
}

/* The registry record of name, looked up so that one command revokes
 * servers and clients. */
static iot_status lookup_cert(cli_ctx *ctx, const char *name, iot_cert_record *rec, iot_err *err)
{
    iot_registry *reg = NULL;
    char db[CLI_PATH_MAX];
    iot_status st = iot_id_check("certificate name", name, err);
    if (st != IOT_OK)
        return st;
    st = cli_check_pki(ctx, err);
    if (st != IOT_OK)
        return st;
    st = cli_path(ctx, db, "registry.db", err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_open(db, IOT_REGISTRY_READONLY, &reg, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_get_by_name(reg, name, rec, err);
out:
    iot_registry_close(reg);
    return st;
}

int cmd_cert_revoke(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *reason = NULL;
    bool dry_run = false;
    int rc = cmd_parse_revoke(cmd_find("cert", "revoke"), argc, argv, &name, &reason, &dry_run);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iot_cert_record rec;
    if (lookup_cert(ctx, name, &rec, &err) != IOT_OK)
        return cli_fail(&err);
    if (rec.kind == IOT_KIND_DEVICE || rec.kind == IOT_KIND_ISSUER) {
        iot_err_set(&err, IOT_EINVAL, "'%s' is %s; use 'iotctl %s revoke %s'", name,
                    rec.kind == IOT_KIND_DEVICE ? "a device" : "an intermediate CA",
                    rec.kind == IOT_KIND_DEVICE ? "device" : "ca", name);
        return cli_fail(&err);
    }
    rc = revoke_identity(ctx, rec.kind, name, reason, dry_run);
    if (rc == CLI_EXIT_OK && !dry_run && rec.kind == IOT_KIND_SERVER) {
        char until[32] = "?";
        time_t t = (time_t)rec.not_after;
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(until, sizeof(until), "%Y-%m-%d %H:%M UTC", &tm);
        printf("note: ESP32 devices do not check the CRL; they trust '%s' until it expires "
               "(%s)\n",
               name, until);
    }
    return rc;
}
