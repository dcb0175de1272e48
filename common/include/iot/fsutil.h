/* File helpers with the safety rules the project relies on:
 * - new files appear atomically (temp file, fsync, no-replace rename) and
 *   never overwrite an existing file;
 * - private keys are created 0600 and refused when group/other can read them;
 * - reads are capped so a hostile or mistaken file cannot exhaust memory.
 */
#ifndef IOT_FSUTIL_H
#define IOT_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "iot/status.h"

/* Creates `path` with exactly `data` and `mode`. Fails with IOT_EEXIST if
 * the path exists, leaving it untouched. Durable on return (file and
 * directory fsynced). */
iot_status iot_file_create(const char *path, const void *data, size_t len, mode_t mode,
                           iot_err *err);

/* Atomically replaces (or creates) `path`; readers see the old or the new
 * content, never a mix. For public, regenerated files such as a CRL. */
iot_status iot_file_replace(const char *path, const void *data, size_t len, mode_t mode,
                            iot_err *err);

/* Reads a whole file of at most `max` bytes into a malloc'd, NUL-terminated
 * buffer (*out, *out_len excludes the NUL). The caller frees *out. */
iot_status iot_file_read(const char *path, size_t max, char **out, size_t *out_len, iot_err *err);

/* Refuses a private key file that group or others may access. */
iot_status iot_key_mode_check(const char *path, iot_err *err);

/* Checks a directory or file whose replacement by another local user would
 * break the PKI (the PKI directory, the CA key, the registry, the CRL): it
 * must belong to the effective user or to root, and group and others must
 * not be able to write it; with `no_access`, not even to read or enter it.
 * IOT_EPERM with a message that names `what` and `path` and gives the
 * chmod or chown command that fixes it; IOT_ENOENT if it does not exist. */
iot_status iot_owner_mode_check(const char *what, const char *path, bool no_access, iot_err *err);

/* mkdir -p with `mode` for the directories it creates. */
iot_status iot_mkdir_p(const char *path, mode_t mode, iot_err *err);

/* True if path exists (any type). */
int iot_path_exists(const char *path);

/* Joins dir and name into buf; IOT_ENOMEM if it does not fit. */
iot_status iot_path_join(char *buf, size_t size, const char *dir, const char *name, iot_err *err);

#endif
