/* The commands of iotctl, one function each, and the option-parsing glue
 * they share. The table that binds names to functions is in main.c. */
#ifndef IOTCTL_CMDS_H
#define IOTCTL_CMDS_H

#include <getopt.h>

#include "cli.h"

int cmd_pki_init(cli_ctx *ctx, int argc, char **argv);
int cmd_crl_update(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_server(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_client(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_show(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_list(cli_ctx *ctx, int argc, char **argv);
int cmd_cert_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_device_add(cli_ctx *ctx, int argc, char **argv);
int cmd_device_revoke(cli_ctx *ctx, int argc, char **argv);
int cmd_device_list(cli_ctx *ctx, int argc, char **argv);
int cmd_device_show(cli_ctx *ctx, int argc, char **argv);

const cli_command *cmd_find(const char *group, const char *name);

/* getopt_long without getopt's own messages: unknown options come back as
 * '?' and missing values as ':' for cmd_bad_option to report. */
int cmd_getopt(int argc, char **argv, const struct option *opts);
int cmd_bad_option(const cli_command *cmd, int argc, char **argv, int c);

#endif
