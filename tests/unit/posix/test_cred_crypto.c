/* The device credentials' cryptography (ports/mbedtls/cred_crypto.c)
 * against the real OpenSSL command line: keys made here, requests that
 * `openssl req -verify` accepts with the right subject, certificates that
 * `openssl x509 -req` signs from them, and certs-only PKCS#7 made by
 * `openssl crl2pkcs7 -nocrl -certfile`, as an EST server answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iotd_mbedtls/cred_crypto.h"

static char dir[64];
static uint8_t key[IOTD_MBEDTLS_KEY_DER_MAX];
static size_t key_len;

static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void path_of(char *buf, size_t cap, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static size_t read_file(const char *name, uint8_t *buf, size_t cap)
{
    char path[128];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    assert_true(feof(f));
    fclose(f);
    return n;
}

static void write_file(const char *name, const void *data, size_t len)
{
    char path[128];
    path_of(path, sizeof(path), name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A CSR for the key, signed by a fresh CA as dev.pem, then the PKCS#7
 * (device certificate first, CA after) in p7.der. */
static void issue(const char *device_id)
{
    uint8_t csr[1024];
    size_t n = 0;
    assert_int_equal(iotd_mbedtls_csr(key, key_len, device_id, csr, sizeof(csr), &n), IOTD_OK);
    write_file("csr.der", csr, n);
    run("cd %s && openssl req -inform DER -in csr.der -out csr.pem 2>/dev/null", dir);
    run("cd %s && openssl x509 -req -in csr.pem -CA ca.pem -CAkey ca.key -days 90 -out dev.pem "
        "2>/dev/null",
        dir);
    run("cd %s && openssl crl2pkcs7 -nocrl -certfile dev.pem -certfile ca.pem -outform DER "
        "-out p7.der",
        dir);
    run("cd %s && openssl x509 -in dev.pem -outform DER -out dev.der", dir);
}

static void keys_are_p256_and_fresh(void **st)
{
    (void)st;
    uint8_t other[IOTD_MBEDTLS_KEY_DER_MAX];
    size_t n = 0;
    assert_int_equal(iotd_mbedtls_key_generate(other, sizeof(other), &n), IOTD_OK);
    assert_true(n == key_len);
    assert_true(memcmp(other, key, n) != 0);
    write_file("key.der", key, key_len);
    run("cd %s && openssl ec -inform DER -in key.der -noout -text 2>/dev/null | grep -q prime256v1",
        dir);
    assert_int_equal(iotd_mbedtls_key_generate(other, 40, &n), IOTD_ENOSPC);
}

static void request_verifies_with_the_device_subject(void **st)
{
    (void)st;
    uint8_t csr[1024];
    size_t n = 0;
    assert_int_equal(iotd_mbedtls_csr(key, key_len, "sim-0042", csr, sizeof(csr), &n), IOTD_OK);
    write_file("csr.der", csr, n);
    run("cd %s && openssl req -inform DER -in csr.der -noout -verify 2>/dev/null", dir);
    run("cd %s && openssl req -inform DER -in csr.der -noout -subject -nameopt RFC2253 | "
        "grep -qx 'subject=OU=device,O=IoT Telemetry,CN=sim-0042'",
        dir);
    /* Its public key is the key's. */
    write_file("key.der", key, key_len);
    run("cd %s && openssl req -inform DER -in csr.der -noout -pubkey > a.pub && "
        "openssl ec -inform DER -in key.der -pubout 2>/dev/null > b.pub && cmp -s a.pub b.pub",
        dir);
}

static void request_refuses_bad_input(void **st)
{
    (void)st;
    uint8_t csr[1024];
    size_t n = 0;
    assert_int_equal(iotd_mbedtls_csr(key, key_len, "a,O=evil", csr, sizeof(csr), &n), IOTD_EINVAL);
    assert_int_equal(iotd_mbedtls_csr(key, key_len, "", csr, sizeof(csr), &n), IOTD_EINVAL);
    assert_int_equal(iotd_mbedtls_csr(key, 10, "dev", csr, sizeof(csr), &n), IOTD_EINVAL);
    assert_int_equal(iotd_mbedtls_csr(key, key_len, "dev", csr, 64, &n), IOTD_ENOSPC);
}

static void openssl_pkcs7_gives_the_certificates_in_order(void **st)
{
    (void)st;
    static uint8_t p7[8192], dev[4096];
    const uint8_t *cert = NULL;
    size_t cert_len = 0;
    issue("sim-0007");
    size_t n = read_file("p7.der", p7, sizeof(p7));
    size_t dev_len = read_file("dev.der", dev, sizeof(dev));
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, n, 0, &cert, &cert_len), IOTD_OK);
    assert_int_equal(cert_len, dev_len);
    assert_memory_equal(cert, dev, dev_len);
    assert_int_equal(iotd_mbedtls_cert_matches_key(cert, cert_len, key, key_len), IOTD_OK);
    iotd_cert_info info;
    assert_int_equal(iotd_mbedtls_cert_validity(cert, cert_len, &info), IOTD_OK);
    assert_int_equal(info.not_after - info.not_before, 90 * 86400);
    int64_t now = (int64_t)time(NULL);
    assert_true(info.not_before <= now && info.not_before > now - 300);
    /* The second is the CA's: another key. */
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, n, 1, &cert, &cert_len), IOTD_OK);
    assert_int_equal(iotd_mbedtls_cert_matches_key(cert, cert_len, key, key_len), IOTD_EINVAL);
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, n, 2, &cert, &cert_len), IOTD_ENOENT);
}

static void damaged_pkcs7_is_refused(void **st)
{
    (void)st;
    static uint8_t p7[8192];
    const uint8_t *cert = NULL;
    size_t cert_len = 0;
    issue("sim-0008");
    size_t n = read_file("p7.der", p7, sizeof(p7));
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, n / 2, 0, &cert, &cert_len), IOTD_ECORRUPT);
    p7[14] ^= 1; /* inside the signedData OID */
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, n, 0, &cert, &cert_len), IOTD_ECORRUPT);
    assert_int_equal(iotd_mbedtls_cert_validity(p7, 20, &(iotd_cert_info){0, 0}), IOTD_ECORRUPT);
    /* A certificate (not a PKCS#7) is not taken for one. */
    size_t d = read_file("dev.der", p7, sizeof(p7));
    assert_int_equal(iotd_mbedtls_pkcs7_cert(p7, d, 0, &cert, &cert_len), IOTD_ECORRUPT);
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/iotd-ccrypto.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (iotd_mbedtls_key_generate(key, sizeof(key), &key_len) != IOTD_OK)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl ecparam -name prime256v1 -genkey -noout -out ca.key && "
             "openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 30 -out ca.pem",
             dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_are_p256_and_fresh),
        cmocka_unit_test(request_verifies_with_the_device_subject),
        cmocka_unit_test(request_refuses_bad_input),
        cmocka_unit_test(openssl_pkcs7_gives_the_certificates_in_order),
        cmocka_unit_test(damaged_pkcs7_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
