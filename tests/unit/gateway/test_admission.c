/* The admission snapshot (registry + CRL) on files made by the real iotctl:
 * who is admitted, and what a CRL that cannot be used does to it.
 *
 * Also what enrollment changes in the snapshot at once (add_issued,
 * end_grace) and the issuer check.
 *
 * The gateway reads copies (reg.db, crl.pem in the test directory) so each
 * test decides which registry and which CRL the gateway sees, and when. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "gw_test.h"
#include "admission.h"
#include "iot/pki.h"
#include "metrics.h"

static char dir[64];
static char pki[96];
static char reg_copy[128];
static char crl_copy[128];
static char ca_path[128];

static void iotctl(const char *args)
{
    assert_int_equal(gwt_sh("%s --dir %s %s >/dev/null", IOTCTL, pki, args), 0);
}

/* The registry as iotctl left it, for the gateway to read. */
static void publish_registry(void)
{
    assert_int_equal(
        gwt_sh("cp %s/registry.db %s && rm -f %s-wal %s-shm", pki, reg_copy, reg_copy, reg_copy),
        0);
}

/* The CRL iotctl wrote last, for the gateway to read. */
static void publish_crl(void)
{
    assert_int_equal(gwt_sh("cp %s/crl.pem %s", pki, crl_copy), 0);
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(cert);
    return cert;
}

static gw_admission_verdict check_device(gw_admission *id, const char *name,
                                         char out[IOT_ID_MAX + 1])
{
    char path[256];
    snprintf(path, sizeof(path), "%s/devices/%s/cert.pem", pki, name);
    X509 *cert = load_cert(path);
    gw_admission_verdict v = gw_admission_check(id, cert, out);
    X509_free(cert);
    return v;
}

static gw_admission *open_identity(void)
{
    gw_admission_options opt = {reg_copy, crl_copy, ca_path, 0};
    gw_admission *id = NULL;
    iot_err err = {0};
    assert_int_equal(gw_admission_open(&opt, &id, &err), IOT_OK);
    assert_non_null(id);
    return id;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-gwid.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(pki, sizeof(pki), "%s/pki", dir);
    snprintf(reg_copy, sizeof(reg_copy), "%s/reg.db", dir);
    snprintf(crl_copy, sizeof(crl_copy), "%s/crl.pem", dir);
    snprintf(ca_path, sizeof(ca_path), "%s/ca.crt", pki);
    if (gwt_sh("%s --dir %s pki init >/dev/null", IOTCTL, pki) != 0)
        return -1;
    const char *devices[] = {"dev-a", "dev-b", "dev-c"};
    for (size_t i = 0; i < sizeof(devices) / sizeof(devices[0]); i++)
        if (gwt_sh("%s --dir %s device add %s >/dev/null", IOTCTL, pki, devices[i]) != 0)
            return -1;
    if (gwt_sh("%s --dir %s cert server broker --dns localhost >/dev/null", IOTCTL, pki) != 0)
        return -1;
    /* A device of another PKI: its serial is in no registry of ours. */
    if (gwt_sh("%s --dir %s/other pki init >/dev/null && %s --dir %s/other device add stranger "
               ">/dev/null",
               IOTCTL, dir, IOTCTL, dir) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return gwt_sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

static void test_admission(void **state)
{
    (void)state;
    iotctl("device revoke dev-b");
    publish_registry();
    publish_crl();
    gw_admission *id = open_identity();
    char device[IOT_ID_MAX + 1];

    assert_int_equal(check_device(id, "dev-a", device), GW_ADMISSION_OK);
    assert_string_equal(device, "dev-a");

    assert_int_equal(check_device(id, "dev-b", device), GW_ADMISSION_REVOKED);
    assert_string_equal(device, "");

    char path[256];
    snprintf(path, sizeof(path), "%s/other/devices/stranger/cert.pem", dir);
    X509 *stranger = load_cert(path);
    assert_int_equal(gw_admission_check(id, stranger, device), GW_ADMISSION_UNKNOWN);
    X509_free(stranger);

    snprintf(path, sizeof(path), "%s/servers/broker/cert.pem", pki);
    X509 *server = load_cert(path);
    assert_int_equal(gw_admission_check(id, server, device), GW_ADMISSION_NOT_DEVICE);
    X509_free(server);

    assert_int_equal(gw_admission_check_name(id, "dev-a"), GW_ADMISSION_OK);
    assert_int_equal(gw_admission_check_name(id, "dev-b"), GW_ADMISSION_REVOKED);
    assert_int_equal(gw_admission_check_name(id, "nobody"), GW_ADMISSION_UNKNOWN);
    gw_admission_close(id);
}

/* A CRL that cannot be used fails closed: the registry's revocations are
 * applied all the same, the CRL in force stays and is reported stale. */
static void test_bad_crl_keeps_registry_revocations(void **state)
{
    (void)state;
    publish_registry();
    publish_crl();
    gw_admission *id = open_identity();
    char device[IOT_ID_MAX + 1];
    assert_int_equal(check_device(id, "dev-c", device), GW_ADMISSION_OK);
    assert_int_equal(gw_gauge_get(GW_G_CRL_STALE), 0);
    uint64_t failures = gw_metric_get(GW_M_CRL_LOAD_FAILURES);
    uint64_t generation = gw_admission_generation(id);

    iotctl("device revoke dev-c");
    publish_registry();
    assert_int_equal(gwt_sh("echo 'not a CRL' > %s", crl_copy), 0);
    iot_err err = {0};
    assert_int_equal(gw_admission_reload(id, &err), IOT_OK);

    assert_int_equal(check_device(id, "dev-c", device), GW_ADMISSION_REVOKED);
    assert_int_equal(check_device(id, "dev-a", device), GW_ADMISSION_OK);
    assert_int_equal(gw_gauge_get(GW_G_CRL_STALE), 1);
    assert_int_equal(gw_metric_get(GW_M_CRL_LOAD_FAILURES), failures + 1);
    assert_true(gw_admission_generation(id) != generation);
    gw_admission_close(id);

    /* At startup there is no CRL in force to keep: the gateway does not start. */
    gw_admission_options opt = {reg_copy, crl_copy, ca_path, 0};
    gw_admission *none = NULL;
    assert_int_not_equal(gw_admission_open(&opt, &none, &err), IOT_OK);
    assert_null(none);
}

/* The registry copy stays from before the revocation, so only the CRL can
 * revoke dev-c: putting back the older CRL would un-revoke it, and must be
 * refused. */
static void test_older_crl_refused(void **state)
{
    (void)state;
    char v1[128];
    snprintf(v1, sizeof(v1), "%s/crl-v1.pem", dir);
    publish_registry();
    publish_crl();
    assert_int_equal(gwt_sh("cp %s %s", crl_copy, v1), 0);
    gw_admission *id = open_identity();
    char device[IOT_ID_MAX + 1];
    assert_int_equal(check_device(id, "dev-c", device), GW_ADMISSION_OK);

    iotctl("device revoke dev-c");
    publish_crl();
    iot_err err = {0};
    bool reloaded = false;
    assert_int_equal(gw_admission_reload_if_changed(id, &reloaded, &err), IOT_OK);
    assert_true(reloaded);
    assert_int_equal(check_device(id, "dev-c", device), GW_ADMISSION_REVOKED);
    assert_int_equal(gw_gauge_get(GW_G_CRL_STALE), 0);

    uint64_t failures = gw_metric_get(GW_M_CRL_LOAD_FAILURES);
    assert_int_equal(gwt_sh("cp %s %s", v1, crl_copy), 0);
    assert_int_equal(gw_admission_reload(id, &err), IOT_OK);
    assert_int_equal(check_device(id, "dev-c", device), GW_ADMISSION_REVOKED);
    assert_int_equal(gw_gauge_get(GW_G_CRL_STALE), 1);
    assert_int_equal(gw_metric_get(GW_M_CRL_LOAD_FAILURES), failures + 1);

    /* Nothing changed since that reload: no new snapshot. */
    uint64_t generation = gw_admission_generation(id);
    assert_int_equal(gw_admission_reload_if_changed(id, &reloaded, &err), IOT_OK);
    assert_false(reloaded);
    assert_int_equal(gw_admission_generation(id), generation);
    gw_admission_close(id);
}

/* The record iotctl made for `name`, read from its certificate. */
static iot_cert_record record_of(const char *name, const char *issuer)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/devices/%s/cert.pem", pki, name);
    X509 *cert = load_cert(path);
    pki_cert_facts f;
    iot_err err = {0};
    assert_int_equal(pki_cert_facts_get(cert, &f, &err), IOT_OK);
    X509_free(cert);
    iot_cert_record r = {
        .kind = IOT_KIND_DEVICE, .not_before = f.not_before, .not_after = f.not_after};
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.serial, sizeof(r.serial), "%s", f.serial);
    snprintf(r.fingerprint, sizeof(r.fingerprint), "%s", f.fingerprint);
    snprintf(r.issuer, sizeof(r.issuer), "%s", issuer);
    return r;
}

static gw_admission_verdict check_facts(gw_admission *id, const char *path, gw_admission_facts *f)
{
    char device[IOT_ID_MAX + 1];
    X509 *cert = load_cert(path);
    gw_admission_verdict v = gw_admission_check_facts(id, cert, device, f);
    X509_free(cert);
    return v;
}

/* What enrollment does to the snapshot without waiting for a reload: an
 * issued certificate is admitted at once; a renewal puts the predecessor
 * in grace, the successor's use ends it; a certificate of an issuer the
 * registry does not have is refused. */
static void test_enrollment_changes(void **state)
{
    (void)state;
    publish_registry();
    publish_crl();
    gw_admission *id = open_identity();
    iot_err err = {0};
    char device[IOT_ID_MAX + 1];
    char old_path[256], new_path[256];
    iotctl("device add dev-d");
    assert_int_equal(check_device(id, "dev-d", device), GW_ADMISSION_UNKNOWN);
    iot_cert_record first = record_of("dev-d", "");
    assert_int_equal(gw_admission_add_issued(id, &first, true, &err), IOT_OK);
    assert_int_equal(check_device(id, "dev-d", device), GW_ADMISSION_OK);
    snprintf(old_path, sizeof(old_path), "%s/old-dev-d.pem", dir);
    snprintf(new_path, sizeof(new_path), "%s/devices/dev-d/cert.pem", pki);
    assert_int_equal(gwt_sh("cp %s %s", new_path, old_path), 0);
    iotctl("device renew dev-d");
    iot_cert_record second = record_of("dev-d", "");
    assert_int_equal(gw_admission_add_issued(id, &second, true, &err), IOT_OK);
    gw_admission_facts f;
    assert_int_equal(check_facts(id, old_path, &f), GW_ADMISSION_OK);
    assert_true(f.in_grace);
    assert_int_equal(check_facts(id, new_path, &f), GW_ADMISSION_OK);
    assert_true(f.ends_grace);
    assert_int_equal(gw_gauge_get(GW_G_CERTS_IN_GRACE), 1);
    assert_int_equal(gw_admission_end_grace(id, "dev-d", &err), IOT_OK);
    assert_int_equal(check_facts(id, old_path, &f), GW_ADMISSION_REVOKED);
    assert_int_equal(check_facts(id, new_path, &f), GW_ADMISSION_OK);
    assert_false(f.ends_grace);
    assert_int_equal(gw_gauge_get(GW_G_CERTS_IN_GRACE), 0);
    iotctl("device add dev-e");
    iot_cert_record foreign = record_of("dev-e", "DEADBEEF");
    assert_int_equal(gw_admission_add_issued(id, &foreign, true, &err), IOT_OK);
    assert_int_equal(check_device(id, "dev-e", device), GW_ADMISSION_ISSUER_REVOKED);
    assert_string_equal(gw_admission_verdict_name(GW_ADMISSION_ISSUER_REVOKED), "issuer_revoked");
    gw_admission_close(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrollment_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_crl_keeps_registry_revocations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_crl_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
