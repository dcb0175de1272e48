/* The configuration's contact with the file system: reading the file from
 * a path, and checking the files it names. The option table, the parser
 * and every rule over values are gateway/lib/config.h, on memory. */
#ifndef GW_CONFIG_FILES_H
#define GW_CONFIG_FILES_H

#include "config.h"

/* Reads the file at `path` (at most GW_CONFIG_FILE_MAX bytes) and parses
 * it over the defaults, then gw_config_validate and gw_config_check_files
 * with warn (may be NULL): what the daemon checks before it starts. */
iot_status gw_config_load(const char *path, gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                          iot_err *err);

/* Checks the files a configuration that passed gw_config_validate names:
 * the certificates, keys, CRL and registry are regular files the gateway
 * can read, the outbox's directory exists, the key files and the admin
 * token file are closed to group and others. Errors are located like
 * gw_config_validate's. A key file group or others may access is refused
 * unless development_mode is set; then it is reported through `warn`
 * (may be NULL). The admin token file is refused in any mode. */
iot_status gw_config_check_files(const gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                                 iot_err *err);

#endif
