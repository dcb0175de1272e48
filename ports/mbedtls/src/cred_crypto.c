/* See iotd_mbedtls/cred_crypto.h. */
#include "iotd_mbedtls/cred_crypto.h"

#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

/* 1.2.840.113549.1.7.2, PKCS#7 signedData */
static const uint8_t OID_SIGNED_DATA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02};

#define PUBKEY_DER_MAX 128
#define SUBJECT_MAX    (IOTD_MBEDTLS_DEVICE_ID_MAX + 40)

/* ---- random numbers ---------------------------------------------------------- */

typedef struct rng {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} rng;

static int rng_start(rng *r)
{
    static const unsigned char pers[] = "iotd-cred";
    mbedtls_entropy_init(&r->entropy);
    mbedtls_ctr_drbg_init(&r->drbg);
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->entropy, pers,
                                 sizeof(pers) - 1u);
}

static void rng_end(rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->entropy);
}

/* mbedTLS writes DER at the end of the buffer; move it to the start. */
static iotd_status take_der(int ret, uint8_t *buf, size_t cap, size_t *len)
{
    if (ret == MBEDTLS_ERR_ASN1_BUF_TOO_SMALL)
        return IOTD_ENOSPC;
    if (ret <= 0)
        return IOTD_EIO;
    memmove(buf, buf + cap - (size_t)ret, (size_t)ret);
    *len = (size_t)ret;
    return IOTD_OK;
}

static int parse_key(mbedtls_pk_context *pk, const uint8_t *key, size_t len, rng *r)
{
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    return mbedtls_pk_parse_key(pk, key, len, NULL, 0, mbedtls_ctr_drbg_random, &r->drbg);
#else
    (void)r;
    return mbedtls_pk_parse_key(pk, key, len, NULL, 0);
#endif
}

/* ---- keys ---------------------------------------------------------------------- */

iotd_status iotd_mbedtls_key_generate(uint8_t *der, size_t cap, size_t *len)
{
    rng r;
    mbedtls_pk_context pk;
    iotd_status st = IOTD_EIO;
    mbedtls_pk_init(&pk);
    if (rng_start(&r) != 0 || mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)))
        goto out;
    if (mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random,
                            &r.drbg) != 0)
        goto out;
    st = take_der(mbedtls_pk_write_key_der(&pk, der, cap), der, cap, len);
out:
    mbedtls_pk_free(&pk);
    rng_end(&r);
    return st;
}

static bool device_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= IOTD_MBEDTLS_DEVICE_ID_MAX)
            return false;
    }
    return n > 0;
}

/* "CN=<id>,O=IoT Telemetry,OU=device" (no stdio in the device build). */
static bool subject_of(const char *device_id, char *out, size_t cap)
{
    static const char pre[] = "CN=", post[] = ",O=IoT Telemetry,OU=device";
    size_t n = strlen(device_id);
    if (sizeof(pre) - 1 + n + sizeof(post) > cap)
        return false;
    memcpy(out, pre, sizeof(pre) - 1);
    memcpy(out + sizeof(pre) - 1, device_id, n);
    memcpy(out + sizeof(pre) - 1 + n, post, sizeof(post));
    return true;
}

iotd_status iotd_mbedtls_csr(const uint8_t *key, size_t key_len, const char *device_id,
                             uint8_t *der, size_t cap, size_t *len)
{
    rng r;
    mbedtls_pk_context pk;
    mbedtls_x509write_csr csr;
    char subject[SUBJECT_MAX];
    iotd_status st = IOTD_EINVAL;
    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&csr);
    if (rng_start(&r) != 0) {
        st = IOTD_EIO;
        goto out;
    }
    if (!device_id_ok(device_id) || parse_key(&pk, key, key_len, &r) != 0)
        goto out;
    if (!subject_of(device_id, subject, sizeof(subject)) ||
        mbedtls_x509write_csr_set_subject_name(&csr, subject))
        goto out;
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    mbedtls_x509write_csr_set_key(&csr, &pk);
    st = take_der(mbedtls_x509write_csr_der(&csr, der, cap, mbedtls_ctr_drbg_random, &r.drbg), der,
                  cap, len);
out:
    mbedtls_x509write_csr_free(&csr);
    mbedtls_pk_free(&pk);
    rng_end(&r);
    return st;
}

/* ---- PKCS#7 certs-only ------------------------------------------------------------ */

/* Moves *p to the content of SignedData's certificates [0] and sets *end
 * to its end. */
static int pkcs7_certs(unsigned char **p, const unsigned char *end, const unsigned char **cend)
{
    size_t n = 0;
    int v = 0;
    const int seq = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE;
    const int set = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET;
    const int ctx0 = MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_CONTEXT_SPECIFIC | 0;
    if (mbedtls_asn1_get_tag(p, end, &n, seq) || mbedtls_asn1_get_tag(p, end, &n, MBEDTLS_ASN1_OID))
        return -1;
    if (n != sizeof(OID_SIGNED_DATA) || memcmp(*p, OID_SIGNED_DATA, n) != 0)
        return -1;
    *p += n;
    if (mbedtls_asn1_get_tag(p, end, &n, ctx0) || mbedtls_asn1_get_tag(p, end, &n, seq) ||
        mbedtls_asn1_get_int(p, end, &v))
        return -1;
    /* digestAlgorithms SET, encapContentInfo SEQUENCE: skipped. */
    if (mbedtls_asn1_get_tag(p, end, &n, set))
        return -1;
    *p += n;
    if (mbedtls_asn1_get_tag(p, end, &n, seq))
        return -1;
    *p += n;
    if (mbedtls_asn1_get_tag(p, end, &n, ctx0))
        return -1;
    *cend = *p + n;
    return 0;
}

iotd_status iotd_mbedtls_pkcs7_cert(const uint8_t *p7, size_t len, size_t index,
                                    const uint8_t **cert, size_t *cert_len)
{
    unsigned char *p = (unsigned char *)(uintptr_t)p7;
    const unsigned char *end = p7 + len, *cend = NULL;
    if (pkcs7_certs(&p, end, &cend) != 0)
        return IOTD_ECORRUPT;
    for (size_t i = 0; p < cend; i++) {
        unsigned char *start = p;
        size_t n = 0;
        if (mbedtls_asn1_get_tag(&p, cend, &n, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return IOTD_ECORRUPT;
        p += n;
        if (i == index) {
            *cert = start;
            *cert_len = (size_t)(p - start);
            return IOTD_OK;
        }
    }
    return IOTD_ENOENT;
}

/* ---- certificates ------------------------------------------------------------------- */

/* Days from 1970-01-01 to the civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t unix_of(const mbedtls_x509_time *t)
{
    return days_from_civil(t->year, t->mon, t->day) * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}

iotd_status iotd_mbedtls_cert_validity(const uint8_t *cert, size_t len, iotd_cert_info *info)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    iotd_status st = IOTD_ECORRUPT;
    if (mbedtls_x509_crt_parse_der(&crt, cert, len) == 0) {
        info->not_before = unix_of(&crt.valid_from);
        info->not_after = unix_of(&crt.valid_to);
        st = IOTD_OK;
    }
    mbedtls_x509_crt_free(&crt);
    return st;
}

iotd_status iotd_mbedtls_cert_matches_key(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                                          size_t key_len)
{
    rng r;
    mbedtls_x509_crt crt;
    mbedtls_pk_context pk;
    unsigned char a[PUBKEY_DER_MAX], b[PUBKEY_DER_MAX];
    iotd_status st = IOTD_ECORRUPT;
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&pk);
    if (rng_start(&r) != 0 || mbedtls_x509_crt_parse_der(&crt, cert, cert_len) != 0 ||
        parse_key(&pk, key, key_len, &r) != 0)
        goto out;
    int na = mbedtls_pk_write_pubkey_der(&crt.pk, a, sizeof(a));
    int nb = mbedtls_pk_write_pubkey_der(&pk, b, sizeof(b));
    if (na <= 0 || nb <= 0)
        goto out;
    st = na == nb && memcmp(a + sizeof(a) - (size_t)na, b + sizeof(b) - (size_t)nb, (size_t)na) == 0
             ? IOTD_OK
             : IOTD_EINVAL;
out:
    mbedtls_pk_free(&pk);
    mbedtls_x509_crt_free(&crt);
    rng_end(&r);
    return st;
}
