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
        cmocka_unit_test(readonly_refuses_writes),
        cmocka_unit_test(lock_is_reported),
        cmocka_unit_test(garbage_is_corrupt),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
