/* iotctl device add|renew|revoke|list|show: device enrollment and its
 * lifecycle. */
#include <stdio.h>

#include "cmds.h"
#include "issue.h"
#include "listing.h"

/* device add and device renew take the same options: a CSR or a key made
 * here, validity, output directory. */
static int device_issue(cli_ctx *ctx, const char *command, bool renew, int argc, char **argv)
{
    const cli_command *self = cmd_find("device", command);
    static const struct option opts[] = {{"csr", required_argument, NULL, 'c'},
                                         CMD_ISSUE_OPTIONS,
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    issue_request req = {.kind = IOT_KIND_DEVICE, .role = "device", .renew = renew};
    req.profile.type = PKI_PROFILE_CLIENT;
    cli_validity_opts validity = {0};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'c')
            req.csr_path = optarg;
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
