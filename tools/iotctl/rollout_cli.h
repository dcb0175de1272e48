/* What the rollout commands share: where the rollout file is. */
#ifndef IOTCTL_ROLLOUT_CLI_H
#define IOTCTL_ROLLOUT_CLI_H

#include "cli.h"

/* The rollout file in the PKI directory; the gateway is given the same
 * path (docs/firmware.md: Rollouts). */
#define ROLLOUT_DB_NAME "rollouts.db"

/* --db, else DIR/rollouts.db, into path (CLI_PATH_MAX). */
iot_status rollout_db_path(const cli_ctx *ctx, const char *db_opt, char *path, iot_err *err);

#endif
