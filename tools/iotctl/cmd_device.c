/* iotctl device add|revoke|list|show: device enrollment and its lifecycle. */
#include <stdio.h>

#include "cmds.h"
#include "issue.h"
#include "listing.h"

int cmd_device_add(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("device", "add");
    static const struct option opts[] = {{"csr", required_argument, NULL, 'c'},
                                         {"days", required_argument, NULL, 'd'},
                                         {"not-before", required_argument, NULL, 'b'},
                                         {"not-after", required_argument, NULL, 'a'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    issue_request req = {.kind = IOT_KIND_DEVICE, .role = "device"};
    req.profile.type = PKI_PROFILE_CLIENT;
    cli_validity_opts validity = {0};
    int c;
    while ((c = cmd_getopt(argc, argv, opts)) != -1) {
        switch (c) {
        case 'c':
            req.csr_path = optarg;
            break;
        case 'd':
            validity.days = optarg;
            break;
        case 'b':
            validity.not_before = optarg;
            break;
        case 'a':
            validity.not_after = optarg;
            break;
        case 'o':
            req.out_dir = optarg;
            break;
        case 'h':
            return cli_help(self);
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(self, optind == argc ? "missing device ID" : "too many arguments");
    req.name = argv[optind];
    iot_err err = {0};
    if (cli_validity(ctx, &validity, CLI_DEFAULT_DEVICE_DAYS, &req.profile.not_before,
                     &req.profile.not_after, &err) != IOT_OK)
        return cli_usage(self, "%s", err.msg);
    return issue_identity(ctx, &req);
}

int cmd_device_revoke(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("device", "revoke");
    static const struct option opts[] = {{"reason", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *reason = "unspecified";
    int c;
    while ((c = cmd_getopt(argc, argv, opts)) != -1) {
        switch (c) {
        case 'r':
            if (pki_reason_code(optarg) < 0)
                return cli_usage(self, "--reason '%s' is not one of: %s", optarg, pki_reason_names);
            reason = optarg;
            break;
        case 'h':
            return cli_help(self);
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind + 1 != argc)
        return cli_usage(self, optind == argc ? "missing device ID" : "too many arguments");
    return revoke_identity(ctx, IOT_KIND_DEVICE, argv[optind], reason);
}

int cmd_device_list(cli_ctx *ctx, int argc, char **argv)
{
    return listing_run(ctx, cmd_find("device", "list"), IOT_KIND_DEVICE, argc, argv);
}

int cmd_device_show(cli_ctx *ctx, int argc, char **argv)
{
    return listing_show(ctx, cmd_find("device", "show"), IOT_KIND_DEVICE, argc, argv);
}
