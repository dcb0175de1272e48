/* The firmware manifest's rules: the writer and the parser agree, every
 * spelling other than the one the format allows is malformed (with the line
 * at fault), the signature is checked before any field is believed, and each
 * policy refusal happens at its edge and not before. The crypto here is a
 * fake that makes any change to the signed bytes, or another key, fail the
 * signature; the real ones (OpenSSL, mbedTLS) are tested with the programs
 * that use them. */
#include "core_test.h"

#include <string.h>

#include "iotd/manifest.h"

#define NOT_AFTER_2027 1811808000 /* 2027-06-01T00:00:00Z */
#define NOW_2026       1796428800 /* 2026-12-05T00:00:00Z */

/* ---- a fake crypto service ------------------------------------------------------ */

typedef struct fake_crypto {
    bool fail_hash;
    bool fail_verify;
} fake_crypto;

/* Not SHA-256: a mix in which every input byte moves every output byte. */
static iotd_status fake_sha256(void *ctx, const void *data, size_t len, uint8_t out[32])
{
    const fake_crypto *fc = ctx;
    const uint8_t *p = data;
    uint32_t h = 2166136261u;

    if (fc->fail_hash)
        return IOTD_EIO;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    for (size_t i = 0; i < 32; i++) {
        h = (h ^ (uint32_t)i) * 16777619u;
        out[i] = (uint8_t)(h >> 24);
    }
    return IOTD_OK;
}

/* A fake signature by pub of digest: the digest, then pub's first 32
 * coordinate bytes. */
static void fake_sign(const uint8_t pub[65], const uint8_t digest[32], uint8_t sig[64])
{
    memcpy(sig, digest, 32);
    memcpy(sig + 32, pub + 1, 32);
}

static iotd_status fake_verify(void *ctx, const uint8_t pub[65], const uint8_t digest[32],
                               const uint8_t sig[64])
{
    const fake_crypto *fc = ctx;
    uint8_t want[64];

    if (fc->fail_verify)
        return IOTD_EIO;
    fake_sign(pub, digest, want);
    return memcmp(want, sig, 64) == 0 ? IOTD_OK : IOTD_EINVAL;
}

static fake_crypto fc;
static const iotd_manifest_crypto crypto = {&fc, fake_sha256, fake_verify};

/* Two trusted keys, so a rotation is the normal case. */
static iotd_manifest_key keys[2];

static void make_keys(void)
{
    for (size_t k = 0; k < 2; k++) {
        keys[k].pub[0] = 0x04;
        for (size_t i = 1; i < 65; i++)
            keys[k].pub[i] = (uint8_t)(i * 7 + k * 101);
        CT_EQ(iotd_manifest_key_id(&crypto, keys[k].pub, keys[k].id), IOTD_OK);
    }
}

/* ---- building manifests ------------------------------------------------------ */

static char text[IOTD_MANIFEST_MAX + 64];
static size_t text_len;

static void set(char *dst, const char *s)
{
    memcpy(dst, s, strlen(s) + 1);
}

static void release(iotd_manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->manifest_version = 1;
    m->sequence = 42;
    set(m->vendor_id, "example-vendor");
    set(m->class_id, "esp32c3-sensor");
    set(m->version, "1.4.2+build.7");
    m->secure_version = 3;
    m->image_size = 1048576;
    for (size_t i = 0; i < 32; i++)
        m->image_digest[i] = (uint8_t)(0xa0 + i);
    set(m->image_uri, "/v1/firmware/images/esp32c3-sensor-1.4.2.bin");
    m->has_not_after = true;
    m->not_after = NOT_AFTER_2027;
}

/* Signs the manifest text as it stands, with key k (its ID is already in
 * the text); the signature line is put at text_len. */
static void sign_text(size_t signed_len, size_t k)
{
    uint8_t digest[32], sig[64];
    CT_EQ(fake_sha256(&fc, text, signed_len, digest), IOTD_OK);
    fake_sign(keys[k].pub, digest, sig);
    text_len = signed_len;
    CT_EQ(iotd_manifest_append_signature(sig, text, sizeof(text), &text_len), IOTD_OK);
}

/* m written and signed by key `signer`, naming key `named` as its signer. */
static void write_signed(const iotd_manifest *m, size_t named, size_t signer)
{
    iotd_manifest w = *m;
    size_t len = 0;
    memcpy(w.key_id, keys[named].id, IOTD_MANIFEST_KEY_ID_LEN);
    CT_EQ(iotd_manifest_format_signed_part(&w, text, sizeof(text), &len), IOTD_OK);
    sign_text(len, signer);
}

/* Replaces the first `from` in text by `to` (the signature is then stale
 * unless re-signed). */
static void replace(const char *from, const char *to)
{
    char *at = strstr(text, from);
    size_t fl = strlen(from), tl = strlen(to);
    CT_TRUE(at != NULL);
    CT_TRUE(text_len - fl + tl < sizeof(text));
    memmove(at + tl, at + fl, text_len - (size_t)(at - text) - fl + 1);
    memcpy(at, to, tl);
    text_len = text_len - fl + tl;
}

static iotd_manifest_policy device_policy(void)
{
    iotd_manifest_policy p;
    memset(&p, 0, sizeof(p));
    p.keys = keys;
    p.n_keys = 2;
    p.vendor_id = "example-vendor";
    p.class_id = "esp32c3-sensor";
    p.last_sequence = 41;
    p.secure_version = 3;
    p.slot_size = 1048576;
    p.has_now = true;
    p.now = NOT_AFTER_2027;
    return p;
}

static iotd_manifest_result verify(const iotd_manifest_policy *p)
{
    static iotd_manifest got;
    return iotd_manifest_verify(text, text_len, p, &crypto, &got);
}

/* ---- tests ----------------------------------------------------------------------- */

static void writes_the_documented_form(void **state)
{
    (void)state;
    iotd_manifest m;
    release(&m);
    write_signed(&m, 0, 0);
    static const char *const lines[] = {
        "manifest-version: 1\n",
        "sequence-number: 42\n",
        "vendor-id: example-vendor\n",
        "class-id: esp32c3-sensor\n",
        "version: 1.4.2+build.7\n",
        "secure-version: 3\n",
        "image-size: 1048576\n",
        "image-digest: sha-256:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n",
        "image-uri: /v1/firmware/images/esp32c3-sensor-1.4.2.bin\n",
        "not-after: 2027-06-01T00:00:00Z\n",
        "signing-key-id: ",
        "signature: ecdsa-p256-sha256:",
    };
    const char *at = text;
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        CT_TRUE(strncmp(at, lines[i], strlen(lines[i])) == 0);
        at = strchr(at, '\n') + 1;
    }
    CT_EQ((size_t)(at - text), text_len);
    CT_EQ(text[text_len - 1], '\n');
}

static void parses_what_it_writes(void **state)
{
    (void)state;
    iotd_manifest m, got;
    unsigned line = 99;
    release(&m);
    write_signed(&m, 1, 1);
    CT_EQ(iotd_manifest_parse(text, text_len, &got, &line), IOTD_MANIFEST_OK);
    CT_EQ(line, 0);
    CT_EQ(got.manifest_version, 1);
    CT_EQ(got.sequence, 42);
    CT_STR_EQ(got.vendor_id, m.vendor_id);
    CT_STR_EQ(got.class_id, m.class_id);
    CT_STR_EQ(got.version, m.version);
    CT_EQ(got.secure_version, 3);
    CT_EQ(got.image_size, 1048576);
    CT_MEM_EQ(got.image_digest, m.image_digest, 32);
    CT_STR_EQ(got.image_uri, m.image_uri);
    CT_TRUE(got.has_not_after);
    CT_EQ(got.not_after, NOT_AFTER_2027);
    CT_MEM_EQ(got.key_id, keys[1].id, 8);
    CT_EQ(text[got.signed_len], 's'); /* the signature line starts there */

    /* not-after is optional, and the writer of the parsed fields writes the
     * same bytes again. */
    m.has_not_after = false;
    write_signed(&m, 0, 0);
    CT_EQ(iotd_manifest_parse(text, text_len, &got, NULL), IOTD_MANIFEST_OK);
    CT_FALSE(got.has_not_after);
    static char again[IOTD_MANIFEST_MAX];
    size_t len = 0;
    CT_EQ(iotd_manifest_format_signed_part(&got, again, sizeof(again), &len), IOTD_OK);
    CT_EQ(len, got.signed_len);
    CT_MEM_EQ(again, text, len);
}

static void verifies_a_good_release(void **state)
{
    (void)state;
    iotd_manifest m;
    release(&m);
    iotd_manifest_policy p = device_policy();
    /* Every limit at its edge is still accepted. */
    write_signed(&m, 0, 0);
    CT_EQ(verify(&p), IOTD_MANIFEST_OK);
    write_signed(&m, 1, 1); /* the second trusted key */
    CT_EQ(verify(&p), IOTD_MANIFEST_OK);
    /* No device constraints: a release checked by the signing tool. */
    iotd_manifest_policy any;
    memset(&any, 0, sizeof(any));
    any.keys = keys;
    any.n_keys = 2;
    CT_EQ(verify(&any), IOTD_MANIFEST_OK);
    /* A device whose clock is not set does not judge not-after. */
    p.now = NOT_AFTER_2027 + 1;
    p.has_now = false;
    CT_EQ(verify(&p), IOTD_MANIFEST_OK);
}

static void refuses_by_policy(void **state)
{
    (void)state;
    iotd_manifest m;
    release(&m);
    write_signed(&m, 0, 0);
    iotd_manifest_policy p = device_policy();

    p.vendor_id = "other-vendor";
    CT_EQ(verify(&p), IOTD_MANIFEST_WRONG_VENDOR);
    p = device_policy();
    p.class_id = "esp32c3-sensor2";
    CT_EQ(verify(&p), IOTD_MANIFEST_WRONG_CLASS);
    p = device_policy();
    p.last_sequence = 42; /* equal is old: a sequence number is never reused */
    CT_EQ(verify(&p), IOTD_MANIFEST_OLD_SEQUENCE);
    p = device_policy();
    p.secure_version = 4;
    CT_EQ(verify(&p), IOTD_MANIFEST_ROLLBACK);
    p = device_policy();
    p.slot_size = 1048575;
    CT_EQ(verify(&p), IOTD_MANIFEST_TOO_LARGE);
    p = device_policy();
    p.now = NOT_AFTER_2027 + 1;
    CT_EQ(verify(&p), IOTD_MANIFEST_EXPIRED);
    p = device_policy();
    p.now = NOW_2026;
    CT_EQ(verify(&p), IOTD_MANIFEST_OK);
}

static void checks_the_signature_before_the_fields(void **state)
{
    (void)state;
    iotd_manifest m;
    release(&m);
    iotd_manifest_policy p = device_policy();

    /* One byte of the signed part changed: the signature fails, and the
     * wrong class in the changed text is not what is reported. */
    write_signed(&m, 0, 0);
    replace("class-id: esp32c3-sensor\n", "class-id: esp32c3-sensoR\n");
    CT_EQ(verify(&p), IOTD_MANIFEST_BAD_SIGNATURE);
    write_signed(&m, 0, 0);
    replace("image-size: 1048576", "image-size: 1048577");
    CT_EQ(verify(&p), IOTD_MANIFEST_BAD_SIGNATURE);

    /* Signed by key 1 while naming key 0. */
    write_signed(&m, 0, 1);
    CT_EQ(verify(&p), IOTD_MANIFEST_BAD_SIGNATURE);

    /* A key that is not trusted (removed from the table). */
    write_signed(&m, 1, 1);
    p.n_keys = 1;
    CT_EQ(verify(&p), IOTD_MANIFEST_UNKNOWN_KEY);
    p.n_keys = 0;
    CT_EQ(verify(&p), IOTD_MANIFEST_UNKNOWN_KEY);

    /* The crypto service failing is not a verdict on the manifest. */
    p = device_policy();
    fc.fail_verify = true;
    CT_EQ(verify(&p), IOTD_MANIFEST_CRYPTO_ERROR);
    fc.fail_verify = false;
    fc.fail_hash = true;
    CT_EQ(verify(&p), IOTD_MANIFEST_CRYPTO_ERROR);
    fc.fail_hash = false;
    CT_EQ(verify(&p), IOTD_MANIFEST_OK);
}

typedef struct bad_case {
    const char *from, *to;
    unsigned line; /* at fault; 0: the whole text */
} bad_case;

static void one_spelling_only(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"manifest-version: 1\n", "manifest-version: 1\r\n", 1},
        {"manifest-version: 1\n", "manifest-version:1\n", 1},
        {"manifest-version: 1\n", "manifest-version:  1\n", 1},
        {"manifest-version: 1\n", "manifest-version: x\n", 1},
        {"manifest-version: 1\n", "Manifest-Version: 1\n", 1},
        {"sequence-number: 42\n", "sequence-number: 042\n", 2},
        {"sequence-number: 42\n", "sequence-number: 0\n", 2},
        {"sequence-number: 42\n", "sequence-number: +42\n", 2},
        {"sequence-number: 42\n", "sequence-number: 9223372036854775808\n", 2},
        {"sequence-number: 42\n", "", 2},                             /* missing */
        {"vendor-id: example-vendor\n", "vendor-id: .vendor\n", 3},   /* ID rule */
        {"vendor-id: example-vendor\n", "vendor-id: exa\tmple\n", 3}, /* control */
        {"class-id: esp32c3-sensor\n", "class-id: esp32c3/sensor\n", 4},
        {"vendor-id: example-vendor\nclass-id: esp32c3-sensor\n", /* order */
         "class-id: esp32c3-sensor\nvendor-id: example-vendor\n", 3},
        {"version: 1.4.2+build.7\n", "version: 1.4.2 beta\n", 5},
        {"version: 1.4.2+build.7\n", "version: 1.4.2+build.7\nversion: 2\n", 6}, /* twice */
        {"secure-version: 3\n", "secure-version: 4294967296\n", 6},
        {"image-size: 1048576\n", "image-size: 0\n", 7},
        {"image-digest: sha-256:a0", "image-digest: sha-256:A0", 8},
        {"image-digest: sha-256:a0", "image-digest: sha-512:a0", 8},
        {"bebf\n", "be\n", 8},
        {"image-uri: /v1", "image-uri: v1", 9},
        {"image-uri: /v1/", "image-uri: /v1/../", 9},
        {"image-uri: /v1/", "image-uri: /v1//", 9},
        {"image-uri: /v1/", "image-uri: /v1/%2e/", 9},
        {"not-after: 2027-06-01T00:00:00Z", "not-after: 2027-02-30T00:00:00Z", 10},
        {"not-after: 2027-06-01T00:00:00Z", "not-after: 2027-06-01T00:00:00+00:00", 10},
        {"not-after: 2027-06-01T00:00:00Z", "not-after: 2027-06-01 00:00:00Z", 10},
        {"not-after: 2027-06-01T00:00:00Z\n", "not-after: 2027-06-01T00:00:00Z\nx-extra: 1\n",
         11}, /* an unknown name */
        {"signature: ecdsa-p256-sha256:", "signature: ecdsa-p384-sha384:", 12},
    };
    iotd_manifest m, got;
    release(&m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned line = 99;
        write_signed(&m, 0, 0);
        replace(cases[i].from, cases[i].to);
        CT_EQ(iotd_manifest_parse(text, text_len, &got, &line), IOTD_MANIFEST_MALFORMED);
        CT_EQ(line, cases[i].line);
    }

    /* The end of the text. */
    unsigned line = 99;
    write_signed(&m, 0, 0);
    CT_EQ(iotd_manifest_parse(text, text_len - 1, &got, &line), IOTD_MANIFEST_MALFORMED);
    CT_EQ(line, 12); /* the signature line is not ended */
    text[text_len] = '\n';
    CT_EQ(iotd_manifest_parse(text, text_len + 1, &got, &line), IOTD_MANIFEST_MALFORMED);
    CT_EQ(line, 13); /* a byte after the signature */
    CT_EQ(iotd_manifest_parse(text, 0, &got, &line), IOTD_MANIFEST_MALFORMED);
    CT_EQ(line, 0);
    CT_EQ(iotd_manifest_parse(NULL, 10, &got, &line), IOTD_MANIFEST_MALFORMED);
    /* A NUL inside a value cannot shorten what is checked. */
    write_signed(&m, 0, 0);
    *strstr(text, "sensor\n") = '\0';
    CT_EQ(iotd_manifest_parse(text, text_len, &got, &line), IOTD_MANIFEST_MALFORMED);
    CT_EQ(line, 4);

    /* Too long, however well formed the start. */
    static char big[IOTD_MANIFEST_MAX + 2];
    memset(big, 'a', sizeof(big));
    CT_EQ(iotd_manifest_parse(big, sizeof(big), &got, &line), IOTD_MANIFEST_MALFORMED);
    CT_EQ(line, 0);
}

static void another_format_version(void **state)
{
    (void)state;
    iotd_manifest m, got;
    release(&m);
    write_signed(&m, 0, 0);
    replace("manifest-version: 1\n", "manifest-version: 2\n");
    CT_EQ(iotd_manifest_parse(text, text_len, &got, NULL), IOTD_MANIFEST_UNSUPPORTED);
    CT_EQ(got.manifest_version, 2);
    iotd_manifest_policy p = device_policy();
    CT_EQ(verify(&p), IOTD_MANIFEST_UNSUPPORTED);
}

static void writer_refuses_bad_fields(void **state)
{
    (void)state;
    iotd_manifest m;
    static char buf[IOTD_MANIFEST_MAX];
    size_t len = 0;

    release(&m);
    m.sequence = 0;
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);
    release(&m);
    set(m.class_id, "a/b");
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);
    release(&m);
    set(m.image_uri, "/a/../b");
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);
    release(&m);
    m.image_size = 0;
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);
    release(&m);
    m.manifest_version = 2;
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);
    release(&m);
    m.not_after = -1;
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_EINVAL);

    /* Out of room: refused, never cut short. */
    release(&m);
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, 100, &len), IOTD_ENOSPC);
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_OK);
    uint8_t sig[64] = {0};
    size_t full = len;
    CT_EQ(iotd_manifest_append_signature(sig, buf, len + 10, &len), IOTD_ENOSPC);
    CT_EQ(len, full);
    CT_EQ(iotd_manifest_append_signature(sig, buf, sizeof(buf), &len), IOTD_OK);
    CT_EQ(len, full + strlen("signature: ecdsa-p256-sha256:\n") + 128);

    /* The latest time the format can write. */
    release(&m);
    m.not_after = INT64_C(253402300799);
    CT_EQ(iotd_manifest_format_signed_part(&m, buf, sizeof(buf), &len), IOTD_OK);
    CT_TRUE(strstr(buf, "not-after: 9999-12-31T23:59:59Z\n") != NULL);
}

static void result_names_are_stable(void **state)
{
    (void)state;
    CT_STR_EQ(iotd_manifest_result_name(IOTD_MANIFEST_OK), "ok");
    CT_STR_EQ(iotd_manifest_result_name(IOTD_MANIFEST_BAD_SIGNATURE), "bad_signature");
    CT_STR_EQ(iotd_manifest_result_name(IOTD_MANIFEST_OLD_SEQUENCE), "old_sequence");
    CT_STR_EQ(iotd_manifest_result_name(IOTD_MANIFEST_CRYPTO_ERROR), "crypto_error");
    CT_STR_EQ(iotd_manifest_result_name(IOTD_MANIFEST_RESULT_COUNT), "?");
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(writes_the_documented_form),
        CT_TEST(parses_what_it_writes),
        CT_TEST(verifies_a_good_release),
        CT_TEST(refuses_by_policy),
        CT_TEST(checks_the_signature_before_the_fields),
        CT_TEST(one_spelling_only),
        CT_TEST(another_format_version),
        CT_TEST(writer_refuses_bad_fields),
        CT_TEST(result_names_are_stable),
    };
    make_keys();
    return CT_RUN(tests);
}
