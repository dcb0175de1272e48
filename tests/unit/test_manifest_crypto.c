/* The manifest's OpenSSL crypto: SHA-256, P-256 verification from a raw
 * point and r || s (a published vector, tampering, points off the curve),
 * r || s signing, and the trusted-keys file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "iot/manifest_crypto.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-mcrypto.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void unhex(const char *hex, uint8_t *out)
{
    for (size_t i = 0; hex[2 * i] != '\0'; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void sha256_abc(void **state)
{
    (void)state;
    const iotd_manifest_crypto *c = iot_manifest_crypto_openssl();
    uint8_t d[32], want[32];
    unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want);
    assert_int_equal(c->sha256(c->ctx, "abc", 3, d), IOTD_OK);
    assert_memory_equal(d, want, 32);
}

/* RFC 6979 A.2.5: P-256, SHA-256, message "sample". */
static void verifies_rfc6979_vector(void **state)
{
    (void)state;
    const iotd_manifest_crypto *c = iot_manifest_crypto_openssl();
    uint8_t pub[65], sig[64], d[32];
    pub[0] = 0x04;
    unhex("60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
          "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299",
          pub + 1);
    unhex("efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
          "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8",
          sig);
    assert_int_equal(c->sha256(c->ctx, "sample", 6, d), IOTD_OK);
    assert_int_equal(c->p256_verify(c->ctx, pub, d, sig), IOTD_OK);
    sig[63] ^= 1;
    assert_int_equal(c->p256_verify(c->ctx, pub, d, sig), IOTD_EINVAL);
    sig[63] ^= 1;
    d[0] ^= 0x80;
    assert_int_equal(c->p256_verify(c->ctx, pub, d, sig), IOTD_EINVAL);
}

static void refuses_bad_points_and_zero_signature(void **state)
{
    (void)state;
    const iotd_manifest_crypto *c = iot_manifest_crypto_openssl();
    uint8_t pub[65] = {0x04}, sig[64] = {0}, d[32] = {0};
    assert_int_equal(c->p256_verify(c->ctx, pub, d, sig), IOTD_EINVAL); /* not on the curve */
    pub[0] = 0x02;
    assert_int_equal(c->p256_verify(c->ctx, pub, d, sig), IOTD_EINVAL);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    iotd_manifest_key row;
    assert_int_equal(iot_manifest_key_row(key, &row, NULL), IOT_OK);
    assert_int_equal(c->p256_verify(c->ctx, row.pub, d, sig), IOTD_EINVAL); /* r = s = 0 */
    memset(sig, 0xff, sizeof(sig)); /* r, s above the group order */
    assert_int_equal(c->p256_verify(c->ctx, row.pub, d, sig), IOTD_EINVAL);
    EVP_PKEY_free(key);
}

static void signs_r_s_that_verify(void **state)
{
    (void)state;
    const iotd_manifest_crypto *c = iot_manifest_crypto_openssl();
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    iotd_manifest_key row, other_row;
    uint8_t sig[64], d[32];
    assert_int_equal(iot_manifest_key_row(key, &row, NULL), IOT_OK);
    assert_int_equal(iot_manifest_key_row(other, &other_row, NULL), IOT_OK);
    assert_int_equal(row.pub[0], 0x04);
    /* Many signatures: r or s with a leading zero byte must still be 32 bytes. */
    for (int i = 0; i < 64; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "message %d", i);
        assert_int_equal(iot_manifest_sign(key, msg, (size_t)n, sig, NULL), IOT_OK);
        assert_int_equal(c->sha256(c->ctx, msg, (size_t)n, d), IOTD_OK);
        assert_int_equal(c->p256_verify(c->ctx, row.pub, d, sig), IOTD_OK);
        assert_int_equal(c->p256_verify(c->ctx, other_row.pub, d, sig), IOTD_EINVAL);
    }
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void refuses_other_curves(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    iotd_manifest_key row;
    iot_err err = {0};
    assert_int_equal(iot_manifest_key_row(key, &row, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "P-256"));
    EVP_PKEY_free(key);
}

/* Writes keys[0..n) as PUBLIC KEY blocks, then extra verbatim. */
static void write_keys(const char *path, EVP_PKEY **keys, size_t n, const char *extra)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_PUBKEY(f, keys[i]), 1);
    fputs(extra, f);
    fclose(f);
}

static void loads_trusted_keys(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/trusted.pem", dir);
    EVP_PKEY *keys[2] = {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                         EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")};
    iotd_manifest_key rows[4], want;
    size_t n = 9;
    iot_err err = {0};
    write_keys(path, keys, 2, "");
    assert_int_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(iot_manifest_key_row(keys[i], &want, NULL), IOT_OK);
        assert_memory_equal(&rows[i], &want, sizeof(want));
    }
    assert_int_equal(iot_manifest_keys_load(path, rows, 1, &n, &err), IOT_ENOMEM);
    assert_int_equal(n, 0);

    write_keys(path, keys, 0, "");
    assert_int_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    write_keys(path, keys, 0, "not a key\n");
    assert_int_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_ECORRUPT);
    assert_non_null(strstr(err.msg, "no PEM public key"));

    EVP_PKEY *twice[2] = {keys[0], keys[0]};
    write_keys(path, twice, 2, "");
    assert_int_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "repeats"));

    /* A private key in the trusted set is refused, not skipped. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, keys[0], NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    assert_int_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "not a PUBLIC KEY"));

    write_keys(path, keys, 1, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    assert_int_not_equal(iot_manifest_keys_load(path, rows, 4, &n, &err), IOT_OK);
    assert_non_null(strstr(err.msg, "block 2"));
    EVP_PKEY_free(keys[0]);
    EVP_PKEY_free(keys[1]);
}

/* The whole round: the core's writer, our signature, the core's verifier. */
static void manifest_round_trip(void **state)
{
    (void)state;
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    iotd_manifest_key row;
    assert_int_equal(iot_manifest_key_row(key, &row, NULL), IOT_OK);
    iotd_manifest m = {
        .manifest_version = 1, .sequence = 42, .secure_version = 3, .image_size = 1000};
    snprintf(m.vendor_id, sizeof(m.vendor_id), "acme");
    snprintf(m.class_id, sizeof(m.class_id), "sensor");
    snprintf(m.version, sizeof(m.version), "1.0.0");
    snprintf(m.image_uri, sizeof(m.image_uri), "/v1/firmware/images/x");
    memcpy(m.key_id, row.id, sizeof(m.key_id));
    char text[IOTD_MANIFEST_MAX];
    size_t len = 0;
    assert_int_equal(iotd_manifest_format_signed_part(&m, text, sizeof(text), &len), IOTD_OK);
    assert_int_equal(iot_manifest_sign(key, text, len, m.signature, NULL), IOT_OK);
    assert_int_equal(iotd_manifest_append_signature(m.signature, text, sizeof(text), &len),
                     IOTD_OK);
    iotd_manifest_policy policy = {.keys = &row, .n_keys = 1};
    iotd_manifest out;
    assert_int_equal(iotd_manifest_verify(text, len, &policy, iot_manifest_crypto_openssl(), &out),
                     IOTD_MANIFEST_OK);
    text[30] ^= 1;
    assert_int_not_equal(
        iotd_manifest_verify(text, len, &policy, iot_manifest_crypto_openssl(), &out),
        IOTD_MANIFEST_OK);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_abc),
        cmocka_unit_test(verifies_rfc6979_vector),
        cmocka_unit_test(refuses_bad_points_and_zero_signature),
        cmocka_unit_test(signs_r_s_that_verify),
        cmocka_unit_test(refuses_other_curves),
        cmocka_unit_test(loads_trusted_keys),
        cmocka_unit_test(manifest_round_trip),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
