/* iotctl device add|renew|revoke|list|show|set-class: device enrollment
 * and its lifecycle. */
#include <stdio.h>

#include "cmds.h"
#include "iot/registry.h"
#include "issue.h"
#include "listing.h"

/* device add and device renew take the same options: a CSR or a key made
 * here, validity, output directory; add also the class. */
static int device_issue(cli_ctx *ctx, const char *command, bool renew, int argc, char **argv)
{
    const cli_command *self = cmd_find("device", command);
    static const struct option add_opts[] = {{"class", required_argument, NULL, 'C'},
                                             {"csr", required_argument, NULL, 'c'},
                                             CMD_ISSUE_OPTIONS,
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    /* A renewal keeps the class ('device set-class' changes it): no --class. */
    const struct option *opts = renew ? add_opts + 1 : add_opts;
    issue_request req = {.kind = IOT_KIND_DEVICE, .role = "device", .renew = renew};
    req.profile.type = PKI_PROFILE_CLIENT;
    cli_validity_opts validity = {0};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'c')
            req.csr_path = optarg;
        else if (c == 'C')
            req.class_id = optarg;
        else if (c == 'h')
            return cli_help(self);
        else if (!cmd_issue_option(c, &validity, &req))
            return cmd_bad_option(self, argc, argv, c);
    }
    return cmd_issue(ctx, self, argc, argv, &req, &validity, CLI_DEFAULT_DEVICE_DAYS, "device ID");
}

int cmd_device_add(cli_ctx *ctx, int argc, char **argv)
{
    return device_issue(ctx, "add", false, argc, argv);
}

int cmd_device_renew(cli_ctx *ctx, int argc, char **argv)
{
    return device_issue(ctx, "renew", true, argc, argv);
}

int cmd_device_revoke(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL, *reason = NULL;
    bool dry_run = false;
    int rc = cmd_parse_revoke(cmd_find("device", "revoke"), argc, argv, &name, &reason, &dry_run);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    return revoke_identity(ctx, IOT_KIND_DEVICE, name, reason, dry_run);
}

int cmd_device_list(cli_ctx *ctx, int argc, char **argv)
{
    return listing_run(ctx, cmd_find("device", "list"), IOT_KIND_DEVICE, argc, argv);
}

int cmd_device_show(cli_ctx *ctx, int argc, char **argv)
{
    return listing_show(ctx, cmd_find("device", "show"), IOT_KIND_DEVICE, argc, argv);
}

int cmd_device_set_class(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("device", "set-class");
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'h')
            return cli_help(self);
        return cmd_bad_option(self, argc, argv, c);
    }
    if (argc - optind != 2)
        return cli_usage(self, argc - optind < 2 ? "give a device ID and a class"
                                                 : "too many "
                                                   "arguments");
    const char *id = argv[optind], *class_id = argv[optind + 1];
    iot_err err = {0};
    iot_registry *reg = NULL;
    char db[CLI_PATH_MAX];
    iot_status st = iot_id_check("device ID", id, &err);
    if (st == IOT_OK)
        st = cli_check_pki(ctx, &err);
    if (st == IOT_OK)
        st = cli_path(ctx, db, "registry.db", &err);
    if (st == IOT_OK)
        st = iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err);
    if (st == IOT_OK)
        st = iot_registry_set_class(reg, id, class_id, &err);
    iot_registry_close(reg);
    if (st != IOT_OK)
        return cli_fail(&err);
    if (class_id[0] != '\0')
        printf("device %s: class %s\n", id, class_id);
    else
        printf("device %s: class cleared\n", id);
    return CLI_EXIT_OK;
}
