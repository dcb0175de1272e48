/* The TLS session record kept across deep sleep: its binding to the
 * device's certificate, CA and CRL, and the record's checks. The hash is a
 * stand-in (four FNV-1a lanes), so the test runs where no SHA-256 is: it
 * shows which bytes the binding covers, not the hash's strength. */
#include "core_test.h"

#include "iotd/tls_session.h"

typedef struct fake_hash {
    uint64_t lane[4];
    int calls;
    int fail_at; /* the call (begin = 1) that fails with IOTD_EIO; 0: none */
} fake_hash;

static fake_hash fh;

static iotd_status call(void)
{
    return ++fh.calls == fh.fail_at ? IOTD_EIO : IOTD_OK;
}

static iotd_status h_begin(void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 4; i++)
        fh.lane[i] = 14695981039346656037ull + (uint64_t)i;
    return call();
}

static iotd_status h_update(void *ctx, const void *data, size_t len)
{
    const uint8_t *p = data;
    (void)ctx;
    for (size_t n = 0; n < len; n++)
        for (int i = 0; i < 4; i++)
            fh.lane[i] = (fh.lane[i] ^ p[n]) * 1099511628211ull;
    return call();
}

static iotd_status h_finish(void *ctx, uint8_t out[IOTD_TLS_BINDING_LEN])
{
    (void)ctx;
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++)
            out[i * 8 + b] = (uint8_t)(fh.lane[i] >> (8 * b));
    return call();
}

static const iotd_sha256_ops HASH = {NULL, h_begin, h_update, h_finish};

static const char CERT[] = "device certificate, serial 1";
static const char RENEWED[] = "device certificate, serial 2";
static const char CA[] = "project CA";
static const char CRL[] = "CRL number 7";
static const char CRL_NEW[] = "CRL number 8";

static iotd_status bind(const char *cert, const char *ca, const char *crl,
                        uint8_t out[IOTD_TLS_BINDING_LEN])
{
    iotd_tls_binder b;
    iotd_tls_bind_begin(&b, &HASH);
    iotd_tls_bind_add(&b, IOTD_TLS_PART_OWN_CERT, cert, strlen(cert));
    iotd_tls_bind_add(&b, IOTD_TLS_PART_CA, ca, strlen(ca));
    if (crl != NULL)
        iotd_tls_bind_add(&b, IOTD_TLS_PART_CRL, crl, strlen(crl));
    return iotd_tls_bind_finish(&b, out);
}

static void binding_follows_certificate_ca_and_crl(void **state)
{
    uint8_t a[32], again[32], other[32];
    (void)state;
    memset(&fh, 0, sizeof(fh));
    CT_EQ(bind(CERT, CA, CRL, a), IOTD_OK);
    CT_EQ(bind(CERT, CA, CRL, again), IOTD_OK);
    CT_MEM_EQ(a, again, 32);
    CT_EQ(bind(RENEWED, CA, CRL, other), IOTD_OK);
    CT_TRUE(memcmp(a, other, 32) != 0);
    CT_EQ(bind(CERT, CA, CRL_NEW, other), IOTD_OK);
    CT_TRUE(memcmp(a, other, 32) != 0);
    CT_EQ(bind(CERT, "another CA", CRL, other), IOTD_OK);
    CT_TRUE(memcmp(a, other, 32) != 0);
    CT_EQ(bind(CERT, CA, NULL, other), IOTD_OK);
    CT_TRUE(memcmp(a, other, 32) != 0);
}

/* Kind and length enter the hash: the same bytes cut differently, or
 * under another kind, bind differently. */
static void binding_frames_each_part(void **state)
{
    uint8_t a[32], b[32];
    iotd_tls_binder x;
    (void)state;
    memset(&fh, 0, sizeof(fh));
    CT_EQ(bind("AB", "C", NULL, a), IOTD_OK);
    CT_EQ(bind("A", "BC", NULL, b), IOTD_OK);
    CT_TRUE(memcmp(a, b, 32) != 0);
    iotd_tls_bind_begin(&x, &HASH);
    iotd_tls_bind_add(&x, IOTD_TLS_PART_OWN_CERT, "AB", 2);
    iotd_tls_bind_add(&x, IOTD_TLS_PART_CRL, "C", 1);
    CT_EQ(iotd_tls_bind_finish(&x, b), IOTD_OK);
    CT_TRUE(memcmp(a, b, 32) != 0);
}

static void binding_fails_with_the_hash(void **state)
{
    uint8_t out[32], zero[32] = {0};
    (void)state;
    for (int at = 1; at <= 5; at++) {
        memset(&fh, 0, sizeof(fh));
        fh.fail_at = at;
        memset(out, 0xa5, sizeof(out));
        CT_EQ(bind(CERT, CA, NULL, out), IOTD_EIO);
        CT_MEM_EQ(out, zero, 32);
    }
    iotd_tls_binder x;
    iotd_tls_bind_begin(&x, NULL);
    CT_EQ(iotd_tls_bind_finish(&x, out), IOTD_EINVAL);
    memset(&fh, 0, sizeof(fh));
    iotd_tls_bind_begin(&x, &HASH);
    iotd_tls_bind_add(&x, IOTD_TLS_PART_CA, NULL, 3);
    CT_EQ(iotd_tls_bind_finish(&x, out), IOTD_EINVAL);
}

#define SLOT 128
static const uint8_t SESSION[] = "serialized session: master secret and ticket";
#define SESSION_LEN (sizeof(SESSION) - 1)

static uint8_t slot[SLOT];
static uint8_t binding[32];

static void packed(void)
{
    size_t n = 0;
    memset(&fh, 0, sizeof(fh));
    CT_EQ(bind(CERT, CA, CRL, binding), IOTD_OK);
    memset(slot, 0, sizeof(slot));
    CT_EQ(iotd_tls_record_pack(binding, SESSION, SESSION_LEN, slot, sizeof(slot), &n), IOTD_OK);
    CT_EQ(n, SESSION_LEN + IOTD_TLS_RECORD_OVERHEAD);
    CT_EQ(n, iotd_tls_record_size(SESSION_LEN));
}

static iotd_status open_slot(const uint8_t *b, size_t max)
{
    const uint8_t *s = NULL;
    size_t n = 99;
    iotd_status st = iotd_tls_record_open(slot, sizeof(slot), b, max, &s, &n);
    if (st == IOTD_OK) {
        CT_EQ(n, SESSION_LEN);
        CT_MEM_EQ(s, SESSION, SESSION_LEN);
    } else {
        CT_TRUE(s == NULL);
        CT_EQ(n, 0);
    }
    return st;
}

static void record_opens_under_its_binding(void **state)
{
    (void)state;
    packed();
    CT_EQ(open_slot(binding, SLOT), IOTD_OK);
    CT_EQ(open_slot(binding, SESSION_LEN), IOTD_OK);
}

/* Serialized straight into the slot, then packed around it. */
static void record_packs_in_place(void **state)
{
    size_t n = 0;
    (void)state;
    packed();
    uint8_t copy[SLOT];
    memcpy(copy, slot, sizeof(copy));
    memset(slot, 0, sizeof(slot));
    memcpy(slot + IOTD_TLS_RECORD_HEAD, SESSION, SESSION_LEN);
    CT_EQ(iotd_tls_record_pack(binding, slot + IOTD_TLS_RECORD_HEAD, SESSION_LEN, slot,
                               sizeof(slot), &n),
          IOTD_OK);
    CT_MEM_EQ(slot, copy, sizeof(copy));
}

static void record_refused_after_renewal_or_new_crl(void **state)
{
    uint8_t other[32];
    (void)state;
    packed();
    CT_EQ(bind(RENEWED, CA, CRL, other), IOTD_OK);
    CT_EQ(open_slot(other, SLOT), IOTD_ESTATE);
    CT_EQ(bind(CERT, CA, CRL_NEW, other), IOTD_OK);
    CT_EQ(open_slot(other, SLOT), IOTD_ESTATE);
}

/* Every single flipped bit of the record is caught, wherever it is. */
static void damaged_record_is_refused(void **state)
{
    (void)state;
    packed();
    size_t len = iotd_tls_record_size(SESSION_LEN);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            slot[i] ^= (uint8_t)(1u << bit);
            iotd_status st = open_slot(binding, SLOT);
            /* A magic of 0 reads as "no record": still not offered. */
            CT_TRUE(st == IOTD_ECORRUPT || (i < 4 && st == IOTD_ENOENT));
            slot[i] ^= (uint8_t)(1u << bit);
        }
    }
    CT_EQ(open_slot(binding, SLOT), IOTD_OK);
    /* A slot shorter than the record it claims. */
    const uint8_t *s;
    size_t n;
    CT_EQ(iotd_tls_record_open(slot, len - 1, binding, SLOT, &s, &n), IOTD_ECORRUPT);
    CT_EQ(iotd_tls_record_open(slot, 3, binding, SLOT, &s, &n), IOTD_ECORRUPT);
}

static void empty_slot_has_no_record(void **state)
{
    (void)state;
    memset(slot, 0, sizeof(slot));
    CT_EQ(open_slot(binding, SLOT), IOTD_ENOENT);
}

static void oversize_is_refused(void **state)
{
    size_t n = 7;
    (void)state;
    packed();
    /* Longer than the reader accepts. */
    CT_EQ(open_slot(binding, SESSION_LEN - 1), IOTD_ECORRUPT);
    /* Too long for the slot: nothing a later open takes for a record. */
    memset(slot, 0xff, sizeof(slot));
    CT_EQ(iotd_tls_record_pack(binding, SESSION, SESSION_LEN, slot,
                               iotd_tls_record_size(SESSION_LEN) - 1, &n),
          IOTD_ENOSPC);
    CT_EQ(n, 0);
    CT_EQ(open_slot(binding, SLOT), IOTD_ENOENT);
    CT_EQ(iotd_tls_record_size(SIZE_MAX), 0);
    CT_EQ(iotd_tls_record_pack(binding, NULL, 0, slot, sizeof(slot), &n), IOTD_EINVAL);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(binding_follows_certificate_ca_and_crl),
        CT_TEST(binding_frames_each_part),
        CT_TEST(binding_fails_with_the_hash),
        CT_TEST(record_opens_under_its_binding),
        CT_TEST(record_packs_in_place),
        CT_TEST(record_refused_after_renewal_or_new_crl),
        CT_TEST(damaged_record_is_refused),
        CT_TEST(empty_slot_has_no_record),
        CT_TEST(oversize_is_refused),
    };
    return CT_RUN(tests);
}
