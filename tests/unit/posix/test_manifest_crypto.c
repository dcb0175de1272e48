/* The mbedTLS crypto service of the firmware manifest (ports/mbedtls,
 * compiled into the POSIX port) against signatures made by the real
 * OpenSSL command line: keys from `openssl ecparam`, public keys as
 * `openssl ec -conv_form uncompressed` writes them, signatures from
 * `openssl dgst -sha256 -sign` (DER, turned into r || s here with
 * mbedTLS's ASN.1 reader). Then whole manifests signed that way go through
 * iotd_manifest_verify. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/asn1.h>
#include <mbedtls/bignum.h>

#include "iotd_mbedtls/manifest_crypto.h"

static char dir[64];
static uint8_t pub_a[IOTD_MANIFEST_PUBKEY_LEN]; /* key a.pem */
static uint8_t pub_b[IOTD_MANIFEST_PUBKEY_LEN]; /* key b.pem */
static iotd_manifest_crypto crypto;

/* Runs a shell command built from fmt; the test fails if it fails. */
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
    assert_true(feof(f)); /* the whole file fitted */
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

/* A new P-256 key KEY.pem and its public key as an uncompressed point:
 * the last 65 bytes of the SubjectPublicKeyInfo in DER. */
static void make_key(const char *key, uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN])
{
    uint8_t der[256];
    run("openssl ecparam -name prime256v1 -genkey -noout -out %s/%s.pem", dir, key);
    run("openssl ec -in %s/%s.pem -pubout -conv_form uncompressed -outform DER -out %s/%s.pub "
        "2>/dev/null",
        dir, key, dir, key);
    char name[32];
    snprintf(name, sizeof(name), "%s.pub", key);
    size_t n = read_file(name, der, sizeof(der));
    assert_int_equal(n, 91); /* P-256 SPKI: 26 bytes of algorithm and framing, the point */
    memcpy(pub, der + n - IOTD_MANIFEST_PUBKEY_LEN, IOTD_MANIFEST_PUBKEY_LEN);
    assert_int_equal(pub[0], 0x04);
}

/* Signs the file NAME with KEY.pem: the DER ECDSA-Sig-Value OpenSSL
 * writes, as r || s. */
static void sign_file(const char *key, const char *name, uint8_t sig[IOTD_MANIFEST_SIG_LEN])
{
    uint8_t der[128];
    run("openssl dgst -sha256 -sign %s/%s.pem -out %s/sig.der %s/%s", dir, key, dir, dir, name);
    size_t n = read_file("sig.der", der, sizeof(der));
    unsigned char *p = der;
    const unsigned char *end = der + n;
    size_t seq_len = 0;
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    assert_int_equal(
        mbedtls_asn1_get_tag(&p, end, &seq_len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE),
        0);
    assert_ptr_equal(p + seq_len, end);
    assert_int_equal(mbedtls_asn1_get_mpi(&p, end, &r), 0);
    assert_int_equal(mbedtls_asn1_get_mpi(&p, end, &s), 0);
    assert_ptr_equal(p, end);
    assert_int_equal(mbedtls_mpi_write_binary(&r, sig, 32), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&s, sig + 32, 32), 0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
}

static void digest_of(const void *data, size_t len, uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    assert_int_equal(crypto.sha256(crypto.ctx, data, len, out), IOTD_OK);
}

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/iotd-mcrypto.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    crypto = iotd_mbedtls_manifest_crypto();
    make_key("a", pub_a);
    make_key("b", pub_b);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char msg[] = "firmware image 1.4.2, 1048576 bytes";

static void sha256_matches_known_vectors(void **st)
{
    (void)st;
    /* FIPS 180-2, appendix B.1, and the empty message. */
    static const uint8_t abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const uint8_t empty[32] = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14,
                                      0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
                                      0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c,
                                      0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    uint8_t out[32];
    digest_of("abc", 3, out);
    assert_memory_equal(out, abc, 32);
    digest_of("", 0, out);
    assert_memory_equal(out, empty, 32);
    assert_null(crypto.ctx);
}

static void openssl_signature_verifies(void **st)
{
    (void)st;
    uint8_t sig[64], digest[32];
    write_file("msg", msg, strlen(msg));
    sign_file("a", "msg", sig);
    digest_of(msg, strlen(msg), digest);
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_OK);
}

static void changed_byte_is_refused(void **st)
{
    (void)st;
    uint8_t sig[64], digest[32];
    write_file("msg", msg, strlen(msg));
    sign_file("a", "msg", sig);

    char other[sizeof(msg)];
    memcpy(other, msg, sizeof(msg));
    other[19] = '3'; /* "1.4.2" -> "1.4.3" */
    digest_of(other, strlen(other), digest);
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);

    digest_of(msg, strlen(msg), digest);
    sig[40] ^= 0x01; /* a bit of s */
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);
    sig[40] ^= 0x01;
    sig[3] ^= 0x80; /* a bit of r */
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);
    sig[3] ^= 0x80;
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_OK);
}

static void another_key_is_refused(void **st)
{
    (void)st;
    uint8_t sig[64], digest[32];
    write_file("msg", msg, strlen(msg));
    sign_file("b", "msg", sig);
    digest_of(msg, strlen(msg), digest);
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_b, digest, sig), IOTD_OK);
}

static void key_off_the_curve_is_refused(void **st)
{
    (void)st;
    uint8_t sig[64], digest[32], pub[65];
    write_file("msg", msg, strlen(msg));
    sign_file("a", "msg", sig);
    digest_of(msg, strlen(msg), digest);

    /* y's last bit changed: x has two points, (x, y) and (x, p - y), and
     * p - y has the other parity, so (x, y ^ 1) is on the curve only if it
     * is p - y, which no generated key is. */
    memcpy(pub, pub_a, sizeof(pub));
    pub[64] ^= 0x01;
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub, digest, sig), IOTD_EINVAL);

    /* A coordinate not below the field prime. */
    memset(pub + 1, 0xff, 64);
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub, digest, sig), IOTD_EINVAL);

    /* All zero: neither a point nor the uncompressed form. */
    memset(pub, 0, sizeof(pub));
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub, digest, sig), IOTD_EINVAL);

    /* The right point with the compressed prefix. */
    memcpy(pub, pub_a, sizeof(pub));
    pub[0] = 0x02;
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub, digest, sig), IOTD_EINVAL);
}

static void signature_out_of_range_is_refused(void **st)
{
    (void)st;
    uint8_t sig[64], digest[32];
    digest_of(msg, strlen(msg), digest);
    memset(sig, 0, sizeof(sig)); /* r = s = 0 */
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);
    memset(sig, 0xff, sizeof(sig)); /* r, s above the group order */
    assert_int_equal(crypto.p256_verify(crypto.ctx, pub_a, digest, sig), IOTD_EINVAL);
}

/* ---- whole manifests ----------------------------------------------------- */

static char text[IOTD_MANIFEST_MAX];
static size_t text_len;

static void set(char *dst, size_t cap, const char *s)
{
    assert_true(strlen(s) < cap);
    memcpy(dst, s, strlen(s) + 1);
}

/* A release named as signed by key `named` and signed with KEY.pem by
 * OpenSSL. */
static void write_release(const uint8_t named[IOTD_MANIFEST_KEY_ID_LEN], const char *key)
{
    iotd_manifest m;
    uint8_t sig[64];
    memset(&m, 0, sizeof(m));
    m.manifest_version = IOTD_MANIFEST_VERSION;
    m.sequence = 42;
    set(m.vendor_id, sizeof(m.vendor_id), "example-vendor");
    set(m.class_id, sizeof(m.class_id), "esp32c3-sensor");
    set(m.version, sizeof(m.version), "1.4.2");
    m.secure_version = 3;
    m.image_size = 1048576;
    for (size_t i = 0; i < sizeof(m.image_digest); i++)
        m.image_digest[i] = (uint8_t)(0xa0 + i);
    set(m.image_uri, sizeof(m.image_uri), "/v1/firmware/images/esp32c3-sensor-1.4.2.bin");
    memcpy(m.key_id, named, IOTD_MANIFEST_KEY_ID_LEN);
    assert_int_equal(iotd_manifest_format_signed_part(&m, text, sizeof(text), &text_len), IOTD_OK);
    write_file("manifest.signed", text, text_len);
    sign_file(key, "manifest.signed", sig);
    assert_int_equal(iotd_manifest_append_signature(sig, text, sizeof(text), &text_len), IOTD_OK);
}

static void manifest_signed_by_openssl_verifies(void **st)
{
    (void)st;
    iotd_manifest_key keys[2];
    memcpy(keys[0].pub, pub_b, sizeof(pub_b));
    memcpy(keys[1].pub, pub_a, sizeof(pub_a));
    assert_int_equal(iotd_manifest_key_id(&crypto, keys[0].pub, keys[0].id), IOTD_OK);
    assert_int_equal(iotd_manifest_key_id(&crypto, keys[1].pub, keys[1].id), IOTD_OK);
    /* The key ID is the first 8 bytes of SHA-256 of the point: the same as
     * OpenSSL's digest of the point's bytes. */
    write_file("a.point", pub_a, sizeof(pub_a));
    run("openssl dgst -sha256 -binary -out %s/a.point.sha256 %s/a.point", dir, dir);
    uint8_t want[64];
    assert_int_equal(read_file("a.point.sha256", want, sizeof(want)), 32);
    assert_memory_equal(keys[1].id, want, IOTD_MANIFEST_KEY_ID_LEN);

    iotd_manifest_policy policy = {
        .keys = keys,
        .n_keys = 2,
        .vendor_id = "example-vendor",
        .class_id = "esp32c3-sensor",
        .last_sequence = 41,
        .secure_version = 3,
        .slot_size = 1920 * 1024,
    };
    iotd_manifest got;
    write_release(keys[1].id, "a");
    assert_int_equal(iotd_manifest_verify(text, text_len, &policy, &crypto, &got),
                     IOTD_MANIFEST_OK);
    assert_string_equal(got.version, "1.4.2");
    assert_int_equal(got.secure_version, 3);

    /* One byte of the signed part changed: the sequence number 42 -> 43
     * (still a well-formed manifest, and a newer one). */
    char *at = strstr(text, "sequence-number: 42\n");
    assert_non_null(at);
    at[18] = '3';
    assert_int_equal(iotd_manifest_verify(text, text_len, &policy, &crypto, &got),
                     IOTD_MANIFEST_BAD_SIGNATURE);

    /* Signed with key b but naming key a. */
    write_release(keys[1].id, "b");
    assert_int_equal(iotd_manifest_verify(text, text_len, &policy, &crypto, &got),
                     IOTD_MANIFEST_BAD_SIGNATURE);

    /* Key b alone trusted: the same release names an unknown key. */
    write_release(keys[1].id, "a");
    policy.n_keys = 1;
    assert_int_equal(iotd_manifest_verify(text, text_len, &policy, &crypto, &got),
                     IOTD_MANIFEST_UNKNOWN_KEY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_known_vectors),
        cmocka_unit_test(openssl_signature_verifies),
        cmocka_unit_test(changed_byte_is_refused),
        cmocka_unit_test(another_key_is_refused),
        cmocka_unit_test(key_off_the_curve_is_refused),
        cmocka_unit_test(signature_out_of_range_is_refused),
        cmocka_unit_test(manifest_signed_by_openssl_verifies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
