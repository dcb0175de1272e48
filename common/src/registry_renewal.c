/* Renewals under the same name: the replaced certificates, the grace a
 * replaced certificate may keep until its successor is used, and the DER of
 * the certificates the gateway issued. */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "iot/registry.h"
#include "registry_internal.h"

/* A serial names one certificate forever, the replaced ones included. */
static iot_status check_serial_unused(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    static const char taken[] = "SELECT 1 FROM certificates WHERE serial = ?1"
                                " UNION ALL SELECT 1 FROM superseded WHERE serial = ?1";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, taken, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, rec->serial, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return iot_err_set(err, IOT_EEXIST, "serial %s is already in registry %s", rec->serial,
                           reg->path);
    if (rc != SQLITE_DONE)
        return iot__registry_fail(reg, rc, "renewing", err);
    return IOT_OK;
}

/* The outcome of one statement of a renewal; a serial the registry knows
 * already is refused by name. */
static iot_status renew_status(iot_registry *reg, const iot_cert_record *rec, int rc, iot_err *err)
{
    if (rc == SQLITE_DONE)
        return IOT_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return iot_err_set(err, IOT_EEXIST, "serial %s is already in registry %s", rec->serial,
                           reg->path);
    return iot__registry_fail(reg, rc, "renewing", err);
}

/* The current certificate of rec's name joins the superseded ones, with
 * rec as its successor. */
static iot_status keep_superseded(iot_registry *reg, const iot_cert_record *rec, int64_t now,
                                  int64_t grace_until, iot_err *err)
{
    static const char keep[] = "INSERT INTO superseded (serial, name, kind, fingerprint,"
                               " not_before, not_after, created, replaced_at, spki, issuer,"
                               " successor, grace_until, der)"
                               " SELECT serial, name, kind, fingerprint, not_before, not_after,"
                               " created, ?1, spki, issuer, ?3, ?4, der FROM certificates"
                               " WHERE name = ?2";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, keep, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, rec->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rec->serial, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, grace_until > now ? grace_until : 0);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return renew_status(reg, rec, rc, err);
}

static iot_status replace_current(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    static const char update[] = "UPDATE certificates SET serial = ?1, fingerprint = ?2,"
                                 " not_before = ?3, not_after = ?4, spki = ?6, issuer = ?7,"
                                 " der = NULL WHERE name = ?5";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, update, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, rec->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, rec->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, rec->not_before);
        sqlite3_bind_int64(st, 4, rec->not_after);
        sqlite3_bind_text(st, 5, rec->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, rec->spki, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, rec->issuer, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return renew_status(reg, rec, rc, err);
}

iot_status iot_registry_renew_with_grace(iot_registry *reg, const iot_cert_record *rec, int64_t now,
                                         int64_t grace_until, iot_err *err)
{
    iot_status s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    iot_cert_record old;
    s = iot_registry_get_by_name(reg, rec->name, &old, err);
    if (s != IOT_OK)
        return s;
    if (old.kind != rec->kind)
        return iot_err_set(err, IOT_ENOENT, "'%s' is %s %s certificate, not %s %s", rec->name,
                           iot_cert_kind_article(old.kind), iot_cert_kind_name(old.kind),
                           iot_cert_kind_article(rec->kind), iot_cert_kind_name(rec->kind));
    if (old.revoked)
        return iot_err_set(err, IOT_ESTATE, "%s '%s' is revoked; it cannot be renewed",
                           iot_cert_kind_name(old.kind), rec->name);
    s = iot__registry_check_new_key(reg, rec, err);
    if (s != IOT_OK)
        return s;
    s = check_serial_unused(reg, rec, err);
    if (s != IOT_OK)
        return s;
    s = keep_superseded(reg, rec, now, grace_until, err);
    if (s != IOT_OK)
        return s;
    return replace_current(reg, rec, err);
}

iot_status iot_registry_renew(iot_registry *reg, const iot_cert_record *rec, int64_t now,
                              iot_err *err)
{
    return iot_registry_renew_with_grace(reg, rec, now, 0, err);
}

/* Runs a statement whose ?1 is text and ?2 an integer; *changes (may be
 * NULL) is the number of rows it changed. */
static iot_status run_text_int(iot_registry *reg, const char *sql, const char *text, int64_t num,
                               const char *doing, int *changes, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, num);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return iot__registry_fail(reg, rc, doing, err);
    if (changes != NULL)
        *changes = sqlite3_changes(reg->db);
    return IOT_OK;
}

iot_status iot_registry_end_grace(iot_registry *reg, const char *successor, int64_t now, int *ended,
                                  iot_err *err)
{
    if (ended != NULL)
        *ended = 0;
    iot_status s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    return run_text_int(reg,
                        "UPDATE superseded SET grace_until = ?2 WHERE successor = ?1 AND"
                        " grace_until > ?2",
                        successor, now, "ending a grace period", ended, err);
}

iot_status iot_registry_foreach_in_grace(iot_registry *reg, int64_t now, iot_registry_fn fn,
                                         void *ctx, iot_err *err)
{
    if (reg->version < 5)
        return IOT_OK; /* no grace before schema 5 */
    return iot__registry_walk(reg,
                              "SELECT name, kind, '', serial, fingerprint, not_before, not_after,"
                              " created, 'active', 0, '', spki, '', issuer, successor,"
                              " grace_until FROM superseded WHERE grace_until > ?1 ORDER BY serial",
                              NULL, now, fn, ctx, err);
}

iot_status iot_registry_set_der(iot_registry *reg, const char *serial, const void *der, size_t len,
                                iot_err *err)
{
    iot_status s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    static const char *const sql[] = {
        "UPDATE certificates SET der = ?2 WHERE serial = ?1",
        "UPDATE superseded SET der = ?2 WHERE serial = ?1",
    };
    int changed = 0;
    for (size_t i = 0; i < 2 && changed == 0; i++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(reg->db, sql[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st, 2, der, (int)len, SQLITE_TRANSIENT);
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return iot__registry_fail(reg, rc, "keeping a certificate", err);
        changed = sqlite3_changes(reg->db);
    }
    if (changed == 0)
        return iot_err_set(err, IOT_ENOENT, "registry %s has no certificate with serial %s",
                           reg->path, serial);
    return IOT_OK;
}

iot_status iot_registry_get_der(iot_registry *reg, const char *serial, void *buf, size_t cap,
                                size_t *len, iot_err *err)
{
    *len = 0;
    if (reg->version < 5)
        return iot_err_set(err, IOT_ENOENT, "registry %s keeps no certificates", reg->path);
    static const char sql[] = "SELECT der FROM certificates WHERE serial = ?1 AND der IS NOT NULL"
                              " UNION ALL SELECT der FROM superseded WHERE serial = ?1 AND"
                              " der IS NOT NULL";
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE) {
        s = iot_err_set(err, IOT_ENOENT, "registry %s keeps no certificate with serial %s",
                        reg->path, serial);
    } else if (rc != SQLITE_ROW) {
        s = iot__registry_fail(reg, rc, "reading a kept certificate", err);
    } else {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (n > cap)
            s = iot_err_set(err, IOT_ENOMEM, "certificate %s is %zu bytes; the buffer holds %zu",
                            serial, n, cap);
        else if (n > 0)
            memcpy(buf, sqlite3_column_blob(st, 0), n);
        if (s == IOT_OK)
            *len = n;
    }
    sqlite3_finalize(st);
    return s;
}
