/* The registry: uniqueness across kinds, revocation, corruption, locking. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "iot/registry.h"

static char dir[64];
static char db[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-registry.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof(db), "%s/registry.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static iot_cert_record record(const char *name, iot_cert_kind kind, const char *serial)
{
    iot_cert_record r = {0};
    snprintf(r.name, sizeof(r.name), "%s", name);
    r.kind = kind;
    snprintf(r.serial, sizeof(r.serial), "%s", serial);
    snprintf(r.fingerprint, sizeof(r.fingerprint), "%064d", 0);
    r.not_before = 1000;
    r.not_after = 2000;
    r.created = 1000;
    return r;
}

static void create_add_get(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_create(db, &reg, &err), IOT_OK);
    iot_cert_record r = record("dev-1", IOT_KIND_DEVICE, "0A");
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_OK);
    iot_cert_record got;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-1", &got, &err), IOT_OK);
    assert_string_equal(got.serial, "0A");
    assert_int_equal(got.kind, IOT_KIND_DEVICE);
    assert_false(got.revoked);
    assert_int_equal(iot_registry_get_by_serial(reg, "0A", &got, &err), IOT_OK);
    assert_string_equal(got.name, "dev-1");
    assert_int_equal(iot_registry_get_by_name(reg, "nobody", &got, &err), IOT_ENOENT);
    iot_registry_close(reg);
    /* create refuses an existing file */
    assert_int_equal(iot_registry_create(db, &reg, &err), IOT_EEXIST);
}

static void names_are_unique_across_kinds(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    iot_cert_record r = record("dev-1", IOT_KIND_CLIENT, "0B");
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_EEXIST);
    assert_non_null(strstr(err.msg, "device"));
    r = record("gw", IOT_KIND_CLIENT, "0A"); /* serial already used */
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_EEXIST);
    iot_registry_close(reg);
}

static int count_revoked(const iot_cert_record *rec, void *ctx)
{
    (void)rec;
    (*(int *)ctx)++;
    return 0;
}

static void revoke_once(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    assert_int_equal(iot_registry_revoke(reg, IOT_KIND_SERVER, "dev-1", "", 1500, &err),
                     IOT_ENOENT);
    assert_int_equal(iot_registry_revoke(reg, IOT_KIND_DEVICE, "dev-1", "superseded", 1500, &err),
                     IOT_OK);
    assert_int_equal(iot_registry_revoke(reg, IOT_KIND_DEVICE, "dev-1", "", 1600, &err),
                     IOT_ESTATE);
    iot_cert_record got;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-1", &got, &err), IOT_OK);
    assert_true(got.revoked);
    assert_int_equal(got.revoked_at, 1500);
    assert_string_equal(got.revoke_reason, "superseded");
    int n = 0;
    assert_int_equal(iot_registry_foreach_revoked(reg, count_revoked, &n, &err), IOT_OK);
    assert_int_equal(n, 1);
    uint64_t a = 0, b = 0;
    assert_int_equal(iot_registry_next_crl_number(reg, &a, &err), IOT_OK);
    assert_int_equal(iot_registry_next_crl_number(reg, &b, &err), IOT_OK);
    assert_int_equal(b, a + 1);
    iot_registry_close(reg);
}

typedef struct revoked_list {
    int n;
    char serials[4][IOT_SERIAL_HEX_MAX + 1];
    char reasons[4][32];
} revoked_list;

static int collect_revoked(const iot_cert_record *rec, void *ctx)
{
    revoked_list *l = ctx;
    if (l->n < 4) {
        snprintf(l->serials[l->n], sizeof(l->serials[0]), "%s", rec->serial);
        snprintf(l->reasons[l->n], sizeof(l->reasons[0]), "%s", rec->revoke_reason);
    }
    l->n++;
    return 0;
}

/* Renewal keeps the name, replaces serial and fingerprint, and lists the
 * old serial for the CRL as superseded; a revoked or unknown name, another
 * kind, or a serial already in use are refused and change nothing. */
static void renew_same_name(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    iot_cert_record r = record("dev-r", IOT_KIND_DEVICE, "1A");
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_OK);
    iot_cert_record next = record("dev-r", IOT_KIND_DEVICE, "1B");
    snprintf(next.fingerprint, sizeof(next.fingerprint), "%064d", 1);
    next.not_after = 9000;
    assert_int_equal(iot_registry_renew(reg, &next, 1700, &err), IOT_OK);
    iot_cert_record got;
    assert_int_equal(iot_registry_get_by_name(reg, "dev-r", &got, &err), IOT_OK);
    assert_string_equal(got.serial, "1B");
    assert_int_equal(got.not_after, 9000);
    assert_false(got.revoked);
    assert_int_equal(iot_registry_get_by_serial(reg, "1A", &got, &err), IOT_ENOENT);

    revoked_list l = {0};
    assert_int_equal(iot_registry_foreach_revoked(reg, collect_revoked, &l, &err), IOT_OK);
    assert_int_equal(l.n, 2); /* dev-1, revoked above, and dev-r's old certificate */
    assert_string_equal(l.serials[1], "1A");
    assert_string_equal(l.reasons[1], "superseded");
    revoked_list h = {0};
    assert_int_equal(iot_registry_foreach_superseded(reg, "dev-r", collect_revoked, &h, &err),
                     IOT_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.serials[0], "1A");
    memset(&h, 0, sizeof(h));
    assert_int_equal(iot_registry_foreach_superseded(reg, "dev-1", collect_revoked, &h, &err),
                     IOT_OK);
    assert_int_equal(h.n, 0); /* revoked, never renewed */

    iot_cert_record bad = record("dev-r", IOT_KIND_CLIENT, "1C");
    assert_int_equal(iot_registry_renew(reg, &bad, 1800, &err), IOT_ENOENT);
    bad = record("nobody", IOT_KIND_DEVICE, "1D");
    assert_int_equal(iot_registry_renew(reg, &bad, 1800, &err), IOT_ENOENT);
    bad = record("dev-1", IOT_KIND_DEVICE, "1E");
    assert_int_equal(iot_registry_renew(reg, &bad, 1800, &err), IOT_ESTATE);
    bad = record("dev-r", IOT_KIND_DEVICE, "1B"); /* its own current serial */
    assert_int_equal(iot_registry_renew(reg, &bad, 1800, &err), IOT_EEXIST);
    memset(&l, 0, sizeof(l));
    assert_int_equal(iot_registry_foreach_revoked(reg, collect_revoked, &l, &err), IOT_OK);
    assert_int_equal(l.n, 2);
    iot_registry_close(reg);
}

static char key_a[IOT_FPR_HEX_LEN + 1];

static int count_record(const iot_cert_record *rec, void *ctx)
{
    if (strcmp(rec->spki, key_a) == 0)
        (*(int *)ctx)++;
    return 0;
}

/* One key, one identity: a key recorded for one name is refused for any
 * other, whether that certificate is active, revoked or replaced; the
 * name's own key may serve again. Shared keys from elsewhere are listed. */
static void one_key_one_identity(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    memset(key_a, 'a', IOT_FPR_HEX_LEN);
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    iot_cert_record a = record("key-a", IOT_KIND_DEVICE, "2A");
    memcpy(a.spki, key_a, sizeof(a.spki));
    assert_int_equal(iot_registry_add(reg, &a, &err), IOT_OK);
    iot_cert_record b = record("key-b", IOT_KIND_DEVICE, "2B");
    memcpy(b.spki, key_a, sizeof(b.spki));
    assert_int_equal(iot_registry_add(reg, &b, &err), IOT_EEXIST);
    assert_non_null(strstr(err.msg, "one key, one identity"));
    assert_non_null(strstr(err.msg, "key-a"));
    b.kind = IOT_KIND_CLIENT; /* another kind does not help */
    assert_int_equal(iot_registry_add(reg, &b, &err), IOT_EEXIST);

    iot_cert_record got;
    assert_int_equal(iot_registry_find_key(reg, key_a, NULL, &got, &err), IOT_OK);
    assert_string_equal(got.name, "key-a");
    assert_string_equal(got.spki, key_a);
    assert_int_equal(iot_registry_find_key(reg, key_a, "key-a", &got, &err), IOT_ENOENT);

    /* A renewal with the same key keeps it; the replaced row keeps it too. */
    iot_cert_record again = record("key-a", IOT_KIND_DEVICE, "2C");
    memcpy(again.spki, key_a, sizeof(again.spki));
    assert_int_equal(iot_registry_renew(reg, &again, 1700, &err), IOT_OK);
    iot_cert_record fresh = record("key-a", IOT_KIND_DEVICE, "2D");
    memset(fresh.spki, 'f', IOT_FPR_HEX_LEN);
    assert_int_equal(iot_registry_renew(reg, &fresh, 1800, &err), IOT_OK);
    /* key_a now lives only in key-a's replaced certificates. */
    assert_int_equal(iot_registry_add(reg, &b, &err), IOT_EEXIST);
    assert_int_equal(iot_registry_find_key(reg, key_a, "key-b", &got, &err), IOT_OK);
    assert_string_equal(got.revoke_reason, "superseded");
    /* A renewal of another name with that key is refused as well. */
    iot_cert_record other = record("key-o", IOT_KIND_DEVICE, "2E");
    memset(other.spki, 'e', IOT_FPR_HEX_LEN);
    assert_int_equal(iot_registry_add(reg, &other, &err), IOT_OK);
    memcpy(other.serial, "2F", 3);
    memcpy(other.spki, key_a, sizeof(other.spki));
    assert_int_equal(iot_registry_renew(reg, &other, 1900, &err), IOT_EEXIST);

    /* Nothing is shared so far; then a row written by other means. */
    int n = 0;
    assert_int_equal(iot_registry_foreach_shared_key(reg, count_record, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    iot_registry_close(reg);
    sqlite3 *raw = NULL;
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO certificates (name, kind, serial, fingerprint, not_before, not_after,"
             " state, created, spki) VALUES ('key-old', 'device', '30', '', 0, 1, 'active', 0,"
             " '%s')",
             key_a);
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_READONLY, &reg, &err), IOT_OK);
    n = 0;
    assert_int_equal(iot_registry_foreach_shared_key(reg, count_record, &n, &err), IOT_OK);
    assert_int_equal(n, 3); /* key-old, and key-a's two replaced certificates */
    iot_registry_close(reg);
}

static int collect_serials(const iot_cert_record *rec, void *ctx)
{
    char *out = ctx;
    size_t used = strlen(out);
    snprintf(out + used, 64 - used, "%s%s", used ? "," : "", rec->serial);
    return 0;
}

/* A registry of schema 2 (no key fingerprints) is read as it is, and a
 * write open upgrades it to the current schema in place: its rows then wait for their keys. */
static void schema2_is_upgraded(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "%s/v2.db", dir);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            raw,
            "PRAGMA application_id=1229935698; PRAGMA user_version=2;"
            "CREATE TABLE certificates (name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL CHECK (kind"
            " IN ('device','server','client')), role TEXT NOT NULL DEFAULT '', serial TEXT NOT"
            " NULL UNIQUE, fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL, not_after"
            " INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN ('active','revoked')),"
            " created INTEGER NOT NULL, revoked_at INTEGER NOT NULL DEFAULT 0, revoke_reason TEXT"
            " NOT NULL DEFAULT '');"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            "INSERT INTO meta VALUES ('crl_number', 0);"
            "CREATE TABLE superseded (serial TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL, kind"
            " TEXT NOT NULL, fingerprint TEXT NOT NULL, not_before INTEGER NOT NULL, not_after"
            " INTEGER NOT NULL, created INTEGER NOT NULL, replaced_at INTEGER NOT NULL);"
            "INSERT INTO certificates (name, kind, serial, fingerprint, not_before, not_after,"
            " state, created) VALUES ('old-1', 'device', '41', 'f1', 0, 1, 'active', 0);"
            "INSERT INTO superseded VALUES ('40', 'old-1', 'device', 'f0', 0, 1, 0, 5);",
            NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(raw);

    iot_registry *reg = NULL;
    iot_err err = {0};
    iot_cert_record got;
    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_READONLY, &reg, &err), IOT_OK);
    assert_int_equal(iot_registry_upgraded_from(reg), 0);
    assert_int_equal(iot_registry_get_by_name(reg, "old-1", &got, &err), IOT_OK);
    assert_string_equal(got.spki, "");
    assert_int_equal(iot_registry_find_key(reg, "f1", NULL, &got, &err), IOT_ENOENT);
    int n = 0;
    assert_int_equal(iot_registry_foreach_shared_key(reg, count_record, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(iot_registry_foreach_unkeyed(reg, count_record, &n, &err), IOT_ESTATE);
    iot_registry_close(reg);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2); /* a read-only open changes nothing */
    sqlite3_finalize(st);
    sqlite3_close(raw);

    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    assert_int_equal(iot_registry_upgraded_from(reg), 2);
    assert_int_equal(iot_registry_set_class(reg, "old-1", "sensor", &err), IOT_OK);
    char serials[64] = "";
    assert_int_equal(iot_registry_foreach_unkeyed(reg, collect_serials, serials, &err), IOT_OK);
    assert_string_equal(serials, "40,41");
    char k1[IOT_FPR_HEX_LEN + 1];
    memset(k1, '1', IOT_FPR_HEX_LEN);
    k1[IOT_FPR_HEX_LEN] = '\0';
    assert_int_equal(iot_registry_begin(reg, &err), IOT_OK);
    assert_int_equal(iot_registry_set_key(reg, "41", k1, &err), IOT_OK);
    assert_int_equal(iot_registry_set_key(reg, "40", k1, &err), IOT_OK);
    assert_int_equal(iot_registry_set_key(reg, "41", k1, &err), IOT_ENOENT); /* already set */
    assert_int_equal(iot_registry_commit(reg, &err), IOT_OK);
    serials[0] = '\0';
    assert_int_equal(iot_registry_foreach_unkeyed(reg, collect_serials, serials, &err), IOT_OK);
    assert_string_equal(serials, "");
    assert_int_equal(iot_registry_find_key(reg, k1, "new", &got, &err), IOT_OK);
    assert_string_equal(got.serial, "41"); /* the active certificate before the replaced one */
    iot_cert_record dup = record("new", IOT_KIND_DEVICE, "42");
    memcpy(dup.spki, k1, sizeof(dup.spki));
    assert_int_equal(iot_registry_add(reg, &dup, &err), IOT_EEXIST);
    iot_registry_close(reg);
    /* The next open finds schema 4 and upgrades nothing. */
    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    assert_int_equal(iot_registry_upgraded_from(reg), 0);
    iot_registry_close(reg);
}

/* A device's class: set at enrollment or later, read back by every
 * getter, following the manifest's class-id rule; devices only. */
static void device_class(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    iot_cert_record r = record("cls-1", IOT_KIND_DEVICE, "5A");
    snprintf(r.class_id, sizeof(r.class_id), "esp32c3-sensor");
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_OK);
    iot_cert_record got;
    assert_int_equal(iot_registry_get_by_name(reg, "cls-1", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "esp32c3-sensor");
    assert_int_equal(iot_registry_get_by_serial(reg, "5A", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "esp32c3-sensor");

    static const char *const bad[] = {"-lead", ".dot", "a/b", "sp ace"};
    for (size_t i = 0; i < 4; i++) {
        iot_cert_record b = record("cls-bad", IOT_KIND_DEVICE, "5B");
        snprintf(b.class_id, sizeof(b.class_id), "%s", bad[i]);
        assert_int_equal(iot_registry_add(reg, &b, &err), IOT_EINVAL);
        assert_non_null(strstr(err.msg, "class"));
        assert_int_equal(iot_registry_set_class(reg, "cls-1", bad[i], &err), IOT_EINVAL);
    }
    char long_class[IOT_CLASS_ID_MAX + 2];
    memset(long_class, 'a', sizeof(long_class) - 1);
    long_class[sizeof(long_class) - 1] = '\0';
    assert_int_equal(iot_registry_set_class(reg, "cls-1", long_class, &err), IOT_EINVAL);
    long_class[IOT_CLASS_ID_MAX] = '\0'; /* 64: the longest allowed */
    assert_true(iot_class_id_is_valid(long_class));
    iot_cert_record c = record("cls-client", IOT_KIND_CLIENT, "5C");
    snprintf(c.class_id, sizeof(c.class_id), "sensor");
    assert_int_equal(iot_registry_add(reg, &c, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "only devices"));
    c.class_id[0] = '\0';
    assert_int_equal(iot_registry_add(reg, &c, &err), IOT_OK);
    assert_int_equal(iot_registry_set_class(reg, "cls-client", "sensor", &err), IOT_ENOENT);

    assert_int_equal(iot_registry_set_class(reg, "cls-1", "gateway_2.x", &err), IOT_OK);
    assert_int_equal(iot_registry_get_by_name(reg, "cls-1", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "gateway_2.x");
    /* A renewal keeps the class. */
    iot_cert_record next = record("cls-1", IOT_KIND_DEVICE, "5D");
    assert_int_equal(iot_registry_renew(reg, &next, 1700, &err), IOT_OK);
    assert_int_equal(iot_registry_get_by_name(reg, "cls-1", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "gateway_2.x");
    assert_int_equal(iot_registry_set_class(reg, "cls-1", "", &err), IOT_OK); /* clears it */
    assert_int_equal(iot_registry_get_by_name(reg, "cls-1", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "");
    assert_int_equal(iot_registry_set_class(reg, "nobody", "sensor", &err), IOT_ENOENT);
    assert_non_null(strstr(err.msg, "nobody"));
    assert_int_equal(iot_registry_revoke(reg, IOT_KIND_DEVICE, "cls-1", "", 1800, &err), IOT_OK);
    assert_int_equal(iot_registry_set_class(reg, "cls-1", "sensor", &err), IOT_ENOENT);
    iot_registry_close(reg);
}

typedef struct class_walk {
    int n;
    char classes[128];
} class_walk;

static int collect_class(const iot_cert_record *rec, void *ctx)
{
    class_walk *w = ctx;
    size_t used = strlen(w->classes);
    snprintf(w->classes + used, sizeof(w->classes) - used, "%s=%s;", rec->name, rec->class_id);
    w->n++;
    return 0;
}

/* What schemas 5 and 6 added, removed to make an older file from a new
 * one. */
#define STRIP_V5                                                                                   \
    "DROP TABLE incident_events; DROP TABLE incidents;"                                            \
    "DROP TABLE tokens; DROP TABLE enrollments; DROP INDEX superseded_successor;"                  \
    "ALTER TABLE superseded DROP COLUMN issuer; ALTER TABLE superseded DROP COLUMN successor;"     \
    "ALTER TABLE superseded DROP COLUMN grace_until; ALTER TABLE superseded DROP COLUMN der;"      \
    "ALTER TABLE certificates DROP COLUMN issuer; ALTER TABLE certificates DROP COLUMN der;"

/* A registry of schema 3 has no classes: read as it is, '' for each; a
 * write open adds the column. */
static void schema3_is_upgraded(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "%s/v3.db", dir);
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_create(path, &reg, &err), IOT_OK);
    iot_cert_record r = record("v3-dev", IOT_KIND_DEVICE, "6A");
    assert_int_equal(iot_registry_add(reg, &r, &err), IOT_OK);
    iot_registry_close(reg);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  STRIP_V5 "ALTER TABLE certificates DROP COLUMN class_id;"
                                           " PRAGMA user_version=3;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);

    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_READONLY, &reg, &err), IOT_OK);
    iot_cert_record got;
    assert_int_equal(iot_registry_get_by_name(reg, "v3-dev", &got, &err), IOT_OK);
    assert_string_equal(got.class_id, "");
    class_walk w = {0};
    assert_int_equal(iot_registry_foreach(reg, IOT_KIND_DEVICE, collect_class, &w, &err), IOT_OK);
    assert_string_equal(w.classes, "v3-dev=;");
    assert_int_equal(iot_registry_set_class(reg, "v3-dev", "sensor", &err), IOT_ESTATE);
    iot_registry_close(reg);

    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    assert_int_equal(iot_registry_upgraded_from(reg), 3);
    assert_int_equal(iot_registry_set_class(reg, "v3-dev", "sensor", &err), IOT_OK);
    iot_cert_record r2 = record("v4-dev", IOT_KIND_DEVICE, "6B");
    snprintf(r2.class_id, sizeof(r2.class_id), "meter");
    assert_int_equal(iot_registry_add(reg, &r2, &err), IOT_OK);
    memset(&w, 0, sizeof(w));
    assert_int_equal(iot_registry_foreach(reg, IOT_KIND_DEVICE, collect_class, &w, &err), IOT_OK);
    assert_string_equal(w.classes, "v3-dev=sensor;v4-dev=meter;");
    iot_registry_close(reg);
}

static void readonly_refuses_writes(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_READONLY, &reg, &err), IOT_OK);
    iot_cert_record r = record("dev-2", IOT_KIND_DEVICE, "0C");
    assert_int_not_equal(iot_registry_add(reg, &r, &err), IOT_OK);
    iot_registry_close(reg);
}

static void lock_is_reported(void **state)
{
    (void)state;
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
    iot_registry *reg = NULL;
    iot_err err = {0};
    iot_status st = iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err);
    if (st == IOT_OK) {
        iot_registry_set_busy_timeout(reg, 50);
        st = iot_registry_begin(reg, &err);
    }
    assert_int_equal(st, IOT_EBUSY);
    assert_non_null(strstr(err.msg, "locked by another process"));
    iot_registry_close(reg);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
}

static void garbage_is_corrupt(void **state)
{
    (void)state;
    char path[160];
    snprintf(path, sizeof(path), "%s/garbage.db", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database ", f);
    fclose(f);
    iot_registry *reg = NULL;
    iot_err err = {0};
    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_READONLY, &reg, &err), IOT_ECORRUPT);
    assert_null(reg);
    /* A valid SQLite file that is not a registry is refused too. */
    snprintf(path, sizeof(path), "%s/other.db", dir);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_READONLY, &reg, &err), IOT_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a device registry"));
    snprintf(path, sizeof(path), "%s/missing.db", dir);
    assert_int_equal(iot_registry_open(path, IOT_REGISTRY_READONLY, &reg, &err), IOT_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_add_get),
        cmocka_unit_test(names_are_unique_across_kinds),
        cmocka_unit_test(revoke_once),
        cmocka_unit_test(renew_same_name),
        cmocka_unit_test(one_key_one_identity),
        cmocka_unit_test(schema2_is_upgraded),
        cmocka_unit_test(device_class),
        cmocka_unit_test(schema3_is_upgraded),
        cmocka_unit_test(readonly_refuses_writes),
        cmocka_unit_test(lock_is_reported),
        cmocka_unit_test(garbage_is_corrupt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
