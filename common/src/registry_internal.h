/* What the registry's modules share: the handle and the helpers that turn
 * SQLite results into records and statuses. Not for callers outside
 * common/src. */
#ifndef IOT_REGISTRY_INTERNAL_H
#define IOT_REGISTRY_INTERNAL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/registry.h"

struct iot_registry {
    sqlite3 *db;
    int version;       /* schema version of the file */
    int upgraded_from; /* the version this open upgraded, 0 if none */
    char path[512];
};

/* Maps an SQLite failure to a status with a message naming the file;
 * `doing` completes "... failed while <doing>". */
iot_status iot__registry_fail(iot_registry *reg, int rc, const char *doing, iot_err *err);

/* IOT_ESTATE, saying a write open upgrades it, if the file is older than
 * `version` (it was opened read-only). */
iot_status iot__registry_need(iot_registry *reg, int version, iot_err *err);

/* Copies src with every byte outside printable ASCII replaced by '?'. */
void iot__registry_printable(char *dst, size_t size, const char *src);

/* Copies a text column ("" for NULL) into dst. */
void iot__registry_text(char *dst, size_t size, sqlite3_stmt *st, int col);

/* Fills rec from a row whose columns are those of IOT__RECORD_COLUMNS. */
iot_status iot__registry_row(iot_registry *reg, sqlite3_stmt *st, iot_cert_record *rec,
                             iot_err *err);

/* The 16 columns iot__registry_row reads, for a certificates row of a
 * schema 5 file, and for a replaced certificate (state 'revoked' from the
 * time it was replaced, reason "superseded"). */
#define IOT__RECORD_FIELDS                                                                         \
    "SELECT name, kind, role, serial, fingerprint, not_before, not_after, created, state,"         \
    " revoked_at, revoke_reason, "
#define IOT__CERT_COLUMNS IOT__RECORD_FIELDS "spki, class_id, issuer, '', 0 FROM certificates "
#define IOT__SUPERSEDED_FIELDS                                                                     \
    "SELECT name, kind, '', serial, fingerprint, not_before, not_after, created, 'revoked',"       \
    " replaced_at, 'superseded', "
#define IOT__SUPERSEDED_COLUMNS                                                                    \
    IOT__SUPERSEDED_FIELDS "spki, '', issuer, successor, grace_until FROM superseded "

/* Binds ?1 (text, or int64 when text is NULL) and calls fn on each row of
 * sql; a non-zero return from fn stops the walk and is returned. */
iot_status iot__registry_walk(iot_registry *reg, const char *sql, const char *text, int64_t num,
                              iot_registry_fn fn, void *ctx, iot_err *err);

/* One key, one identity: IOT_EEXIST, naming the holder, if rec->spki is
 * the key of a certificate of another name. */
iot_status iot__registry_check_new_key(iot_registry *reg, const iot_cert_record *rec, iot_err *err);

#endif
