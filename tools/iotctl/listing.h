/* Reading the registry out: `list` and `show`, as a table for people or as
 * JSON (--json) for scripts. JSON field names are a stable interface. */
#ifndef IOTCTL_LISTING_H
#define IOTCTL_LISTING_H

#include "cli.h"

/* kind: an iot_cert_kind, or -1 for every kind but devices. */
int listing_run(cli_ctx *ctx, const cli_command *self, int kind, int argc, char **argv);
int listing_show(cli_ctx *ctx, const cli_command *self, int kind, int argc, char **argv);

#endif
