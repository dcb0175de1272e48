#include "iot/manifest_crypto.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "iot/fsutil.h"

#define P256_COORD_LEN 32

static iotd_status sha256(void *ctx, const void *data, size_t len,
                          uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    (void)ctx;
    unsigned int n = 0;
    bool ok =
        EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == IOTD_MANIFEST_DIGEST_LEN;
    ERR_clear_error();
    return ok ? IOTD_OK : IOTD_EIO;
}

/* A public key from its raw point; NULL when it is not a point of the
 * curve (OpenSSL decodes it with the on-curve check). */
static EVP_PKEY *pubkey_from_raw(const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN])
{
    uint8_t point[IOTD_MANIFEST_PUBKEY_LEN];
    char group[] = "prime256v1";
    EVP_PKEY *key = NULL;
    memcpy(point, pub, sizeof(point));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(pctx);
    return key;
}

/* r || s as the DER ECDSA-Sig-Value that libcrypto verifies; 0 on failure. */
static int sig_to_der(const uint8_t sig[IOTD_MANIFEST_SIG_LEN], unsigned char **der)
{
    int len = 0;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r_bn = BN_bin2bn(sig, P256_COORD_LEN, NULL);
    BIGNUM *s_bn = BN_bin2bn(sig + P256_COORD_LEN, P256_COORD_LEN, NULL);
    if (s == NULL || r_bn == NULL || s_bn == NULL || ECDSA_SIG_set0(s, r_bn, s_bn) != 1)
        goto out;
    r_bn = NULL; /* owned by s now */
    s_bn = NULL;
    len = i2d_ECDSA_SIG(s, der);
    if (len < 0)
        len = 0;
out:
    BN_free(r_bn);
    BN_free(s_bn);
    ECDSA_SIG_free(s);
    return len;
}

static iotd_status p256_verify(void *ctx, const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN],
                               const uint8_t digest[IOTD_MANIFEST_DIGEST_LEN],
                               const uint8_t sig[IOTD_MANIFEST_SIG_LEN])
{
    (void)ctx;
    iotd_status st = IOTD_EIO;
    unsigned char *der = NULL;
    EVP_PKEY_CTX *vctx = NULL;
    EVP_PKEY *key = pubkey_from_raw(pub);
    if (key == NULL) {
        st = IOTD_EINVAL;
        goto out;
    }
    int der_len = sig_to_der(sig, &der);
    vctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (der_len == 0 || vctx == NULL || EVP_PKEY_verify_init(vctx) != 1 ||
        EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()) != 1)
        goto out;
    /* 0 is a signature that does not verify, below 0 one libcrypto could
     * not even check (r or s out of range): neither is a valid one. */
    st = EVP_PKEY_verify(vctx, der, (size_t)der_len, digest, IOTD_MANIFEST_DIGEST_LEN) == 1
             ? IOTD_OK
             : IOTD_EINVAL;
out:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return st;
}

const iotd_manifest_crypto *iot_manifest_crypto_openssl(void)
{
    static const iotd_manifest_crypto crypto = {
        .ctx = NULL, .sha256 = sha256, .p256_verify = p256_verify};
    return &crypto;
}

iot_status iot_manifest_pubkey_raw(EVP_PKEY *key, uint8_t out[IOTD_MANIFEST_PUBKEY_LEN],
                                   iot_err *err)
{
    char group[32] = "";
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        ERR_clear_error();
        return iot_err_set(err, IOT_EINVAL, "the key is not an ECDSA P-256 key");
    }
    /* The coordinates, not the encoded point: a key read from a file keeps
     * the point format (maybe compressed) it was written with. */
    BIGNUM *x = NULL, *y = NULL;
    iot_status st = IOT_OK;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, out + 1, P256_COORD_LEN) != P256_COORD_LEN ||
        BN_bn2binpad(y, out + 1 + P256_COORD_LEN, P256_COORD_LEN) != P256_COORD_LEN)
        st = iot_err_set(err, IOT_ECRYPTO, "cannot read the P-256 public key's point");
    out[0] = 0x04;
    BN_free(x);
    BN_free(y);
    ERR_clear_error();
    return st;
}

iot_status iot_manifest_key_row(EVP_PKEY *key, iotd_manifest_key *row, iot_err *err)
{
    iot_status st = iot_manifest_pubkey_raw(key, row->pub, err);
    if (st != IOT_OK)
        return st;
    if (iotd_manifest_key_id(iot_manifest_crypto_openssl(), row->pub, row->id) != IOTD_OK)
        return iot_err_set(err, IOT_ECRYPTO, "cannot compute the key ID (SHA-256 failed)");
    return IOT_OK;
}

/* The next PEM block of bio as a P-256 key row; IOT_ENOENT at the end. */
static iot_status read_key_block(BIO *bio, const char *path, size_t index, iotd_manifest_key *row,
                                 iot_err *err)
{
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    EVP_PKEY *key = NULL;
    iot_status st = IOT_OK;
    if (PEM_read_bio(bio, &name, &header, &data, &len) != 1) {
        unsigned long e = ERR_peek_last_error();
        st = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE
                 ? IOT_ENOENT
                 : iot_err_set(err, IOT_ECORRUPT,
                               "%s: PEM block %zu is damaged; restore the file from the PKI "
                               "directory",
                               path, index + 1);
        goto out;
    }
    if (strcmp(name, "PUBLIC KEY") != 0) {
        st = iot_err_set(err, IOT_EINVAL, "%s: PEM block %zu is a %s, not a PUBLIC KEY", path,
                         index + 1, name);
        goto out;
    }
    const unsigned char *p = data;
    key = d2i_PUBKEY(NULL, &p, len);
    if (key == NULL || p != data + len) {
        st = iot_err_set(err, IOT_EINVAL, "%s: PEM block %zu is not a valid public key", path,
                         index + 1);
        goto out;
    }
    st = iot_manifest_key_row(key, row, err);
    if (st != IOT_OK)
        iot_err_wrap(err, "%s: PEM block %zu", path, index + 1);
out:
    EVP_PKEY_free(key);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    ERR_clear_error();
    return st;
}

static bool key_seen(const iotd_manifest_key *keys, size_t n, const iotd_manifest_key *row)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(keys[i].pub, row->pub, sizeof(row->pub)) == 0)
            return true;
    return false;
}

static bool blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return false;
    return true;
}

iot_status iot_manifest_keys_load(const char *path, iotd_manifest_key *keys, size_t cap, size_t *n,
                                  iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    *n = 0;
    iot_status st = iot_file_read(path, IOT_MANIFEST_KEYS_FILE_MAX, &text, &len, err);
    if (st != IOT_OK)
        return st;
    bio = BIO_new_mem_buf(text, (int)len);
    if (bio == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    for (size_t i = 0;; i++) {
        iotd_manifest_key row;
        st = read_key_block(bio, path, i, &row, err);
        if (st == IOT_ENOENT) {
            st = IOT_OK;
            break;
        }
        if (st != IOT_OK)
            goto out;
        if (key_seen(keys, *n, &row)) {
            st = iot_err_set(err, IOT_EINVAL, "%s: PEM block %zu repeats an earlier key", path,
                             i + 1);
            goto out;
        }
        if (*n == cap) {
            st = iot_err_set(err, IOT_ENOMEM, "%s holds more than %zu keys", path, cap);
            goto out;
        }
        keys[(*n)++] = row;
    }
    /* An empty file trusts no key (every key retired); text without a key
     * is a damaged or mistaken file, which must not silently do the same. */
    if (*n == 0 && !blank(text, len))
        st = iot_err_set(err, IOT_ECORRUPT,
                         "%s holds text but no PEM public key; restore it from iotctl's "
                         "firmware directory",
                         path);
out:
    if (st != IOT_OK)
        *n = 0;
    BIO_free(bio);
    free(text);
    return st;
}

iot_status iot_manifest_sign(EVP_PKEY *key, const void *data, size_t len,
                             uint8_t sig[IOTD_MANIFEST_SIG_LEN], iot_err *err)
{
    unsigned char der[128];
    size_t der_len = sizeof(der);
    const unsigned char *p = der;
    ECDSA_SIG *s = NULL;
    iot_status st = IOT_ECRYPTO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, data, len) != 1) {
        iot_err_set(err, IOT_ECRYPTO, "cannot sign with the P-256 key");
        goto out;
    }
    s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (s == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, P256_COORD_LEN) != P256_COORD_LEN ||
        BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + P256_COORD_LEN, P256_COORD_LEN) != P256_COORD_LEN) {
        iot_err_set(err, IOT_ECRYPTO, "the signature is not a P-256 (r, s) pair");
        goto out;
    }
    st = IOT_OK;
out:
    ECDSA_SIG_free(s);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return st;
}

void iot_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    out[2 * len] = '\0';
}
