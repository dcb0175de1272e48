/* The trusted-key bundle reader (ports/mbedtls, iotd_mbedtls_manifest_keys) with the host's
 * mbedTLS: iotctl's trusted-keys.pem form in, key rows and IDs out, and every kind of block
 * that must not become a trust anchor refused with the block named. The keys and IDs were made
 * with openssl (the key ID as docs/firmware.md computes it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "iotd_mbedtls/manifest_crypto.h"
#include "iotd_mbedtls/manifest_keys.h"

#define K1                                                                                         \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEE1zPRjTy+FL61n/6jrhRvKuT6z9r\n"                           \
    "klq+iLPcPyHm/y/o0YErx0BRoO6ktHk6lUvYXcbw+ul5ThqUsFWp2uCc9w==\n"                               \
    "-----END PUBLIC KEY-----\n"
#define K2                                                                                         \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/TrCtVQsolziv8Bd/7bu3RJggGjY\n"                           \
    "Nh0hBJvrO/cHZCitSZ0jlSWq7z53V8ngckm/1czPi7rKi+EjiGFHlaShvw==\n"                               \
    "-----END PUBLIC KEY-----\n"
/* K1 with one character of the point's X changed: no longer on the curve. */
#define K1_OFF_CURVE                                                                               \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEE1zPRjTy+FL61n/6jrhRvKuT6z9s\n"                           \
    "klq+iLPcPyHm/y/o0YErx0BRoO6ktHk6lUvYXcbw+ul5ThqUsFWp2uCc9w==\n"                               \
    "-----END PUBLIC KEY-----\n"
#define P384                                                                                       \
    "-----BEGIN PUBLIC KEY-----\n"                                                                 \
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEMjckRKV78HWC7Av/k7pt8Xkf+k7HBXaR\n"                           \
    "RYhbhPj+WQFVlPcidY4Oi2qNz5bwNEPbwDqRVdHVHacFe6klwNeNIlkGNgPf+q4M\n"                           \
    "fIq6T4jtj5akhOe0eduZxU4dLczaKt6Q\n"                                                           \
    "-----END PUBLIC KEY-----\n"
/* Only the lines matter: a private key's block is refused before its body is read. */
#define PRIVATE                                                                                    \
    "-----BEGIN PRIVATE KEY-----\n"                                                                \
    "AAAA\n"                                                                                       \
    "-----END PRIVATE KEY-----\n"
#define CERTIFICATE                                                                                \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "AAAA\n"                                                                                       \
    "-----END CERTIFICATE-----\n"

static const uint8_t K1_PUB[IOTD_MANIFEST_PUBKEY_LEN] = {
    0x04, 0x13, 0x5c, 0xcf, 0x46, 0x34, 0xf2, 0xf8, 0x52, 0xfa, 0xd6, 0x7f, 0xfa,
    0x8e, 0xb8, 0x51, 0xbc, 0xab, 0x93, 0xeb, 0x3f, 0x6b, 0x92, 0x5a, 0xbe, 0x88,
    0xb3, 0xdc, 0x3f, 0x21, 0xe6, 0xff, 0x2f, 0xe8, 0xd1, 0x81, 0x2b, 0xc7, 0x40,
    0x51, 0xa0, 0xee, 0xa4, 0xb4, 0x79, 0x3a, 0x95, 0x4b, 0xd8, 0x5d, 0xc6, 0xf0,
    0xfa, 0xe9, 0x79, 0x4e, 0x1a, 0x94, 0xb0, 0x55, 0xa9, 0xda, 0xe0, 0x9c, 0xf7,
};
static const uint8_t K1_ID[IOTD_MANIFEST_KEY_ID_LEN] = {0xa2, 0x6f, 0xf6, 0xfc,
                                                        0x9d, 0xdd, 0xe9, 0x3e};
static const uint8_t K2_ID[IOTD_MANIFEST_KEY_ID_LEN] = {0x72, 0xd5, 0x2a, 0xe8,
                                                        0xd1, 0x3f, 0xe1, 0x35};

static iotd_manifest_crypto s_crypto;

/* Reads pem into 4 rows; the status, with *n and *block. */
static iotd_status load(const char *pem, iotd_manifest_key keys[4], size_t *n, size_t *block)
{
    memset(keys, 0xee, 4 * sizeof(*keys));
    *n = 99;
    *block = 99;
    return iotd_mbedtls_manifest_keys(pem, &s_crypto, keys, 4, n, block);
}

static void expect_refused(const char *pem, iotd_status want, size_t want_block)
{
    iotd_manifest_key keys[4];
    size_t n, block;

    assert_int_equal(load(pem, keys, &n, &block), want);
    assert_int_equal(n, 0);
    assert_int_equal(block, want_block);
}

static void reads_one_key_with_its_id(void **state)
{
    (void)state;
    iotd_manifest_key keys[4];
    size_t n, block;

    assert_int_equal(load(K1, keys, &n, &block), IOTD_OK);
    assert_int_equal(n, 1);
    assert_int_equal(block, 0);
    assert_memory_equal(keys[0].pub, K1_PUB, sizeof(K1_PUB));
    assert_memory_equal(keys[0].id, K1_ID, sizeof(K1_ID));
    assert_int_equal(keys[1].id[0], 0xee); /* nothing written past the rows read */
}

static void reads_a_bundle_with_text_around_the_blocks(void **state)
{
    (void)state;
    iotd_manifest_key keys[4];
    size_t n, block;

    assert_int_equal(
        load("# trusted keys\n" K1 "\n\nrelease-2028:\n" K2 "trailing words", keys, &n, &block),
        IOTD_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(keys[0].id, K1_ID, sizeof(K1_ID));
    assert_memory_equal(keys[1].id, K2_ID, sizeof(K2_ID));
    /* No final newline, as a file cut after END. */
    assert_int_equal(load(K1 K2 "-----END PUBLIC KEY-----", keys, &n, &block), IOTD_OK);
    assert_int_equal(n, 2);
}

static void refuses_what_is_not_a_p256_public_key(void **state)
{
    (void)state;
    expect_refused(PRIVATE, IOTD_EINVAL, 1);
    expect_refused(K1 PRIVATE, IOTD_EINVAL, 2); /* a private key next to a good one */
    expect_refused(K1 CERTIFICATE, IOTD_EINVAL, 2);
    expect_refused(K1 K2 P384, IOTD_EINVAL, 3); /* another curve */
    expect_refused(K1_OFF_CURVE, IOTD_EINVAL, 1);
    expect_refused("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n",
                   IOTD_EINVAL, 1);
    expect_refused("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", IOTD_EINVAL, 1);
}

static void refuses_damaged_repeated_and_oversized_blocks(void **state)
{
    (void)state;
    char big[IOTD_MBEDTLS_KEY_PEM_MAX + 64];
    static const char head[] = "-----BEGIN PUBLIC KEY-----\n";
    static const char tail[] = "\n-----END PUBLIC KEY-----\n";

    expect_refused(K1 K2 K1, IOTD_EINVAL, 3); /* the same key twice */
    expect_refused(K1 "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n",
                   IOTD_EINVAL, 2); /* no END line */
    expect_refused("-----BEGIN PUBLIC KEY-", IOTD_EINVAL, 1);
    memset(big, 'A', sizeof(big));
    memcpy(big, head, sizeof(head) - 1);
    memcpy(big + sizeof(big) - sizeof(tail), tail, sizeof(tail)); /* with its NUL */
    expect_refused(big, IOTD_EINVAL, 1);
}

static void says_when_there_is_no_key_or_too_many(void **state)
{
    (void)state;
    iotd_manifest_key keys[1];
    size_t n = 99, block = 99;

    expect_refused("", IOTD_ENOENT, 0);
    expect_refused("no PEM here\n", IOTD_ENOENT, 0);
    expect_refused("-----END PUBLIC KEY-----\n", IOTD_ENOENT, 0);
    assert_int_equal(iotd_mbedtls_manifest_keys(K1 K2, &s_crypto, keys, 1, &n, &block),
                     IOTD_ENOSPC);
    assert_int_equal(n, 0);
    assert_int_equal(block, 2);
    assert_int_equal(iotd_mbedtls_manifest_keys(K1, &s_crypto, keys, 1, &n, NULL), IOTD_OK);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_one_key_with_its_id),
        cmocka_unit_test(reads_a_bundle_with_text_around_the_blocks),
        cmocka_unit_test(refuses_what_is_not_a_p256_public_key),
        cmocka_unit_test(refuses_damaged_repeated_and_oversized_blocks),
        cmocka_unit_test(says_when_there_is_no_key_or_too_many),
    };
    s_crypto = iotd_mbedtls_manifest_crypto();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
