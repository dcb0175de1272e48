/* scrypt password hashes through EVP_KDF, with the parameters kept in the
 * stored form (pwhash.h). */
#include "pwhash.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SALT_LEN 16
#define HASH_LEN 32
#define N_MAX    (UINT64_C(1) << 20)
#define R_MAX    32
#define P_MAX    4

const ic_scrypt_params IC_SCRYPT_DEFAULT = {.n = UINT64_C(1) << 15, .r = 8, .p = 1};

const char *ic_password_weak(const char *name, const char *pw, size_t len)
{
    if (len < IC_PASSWORD_MIN)
        return "shorter than 12 characters";
    if (len > IC_PASSWORD_MAX)
        return "longer than 256 characters";
    bool seen[256] = {false};
    size_t distinct = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pw[i];
        if (c < 0x20 || c == 0x7f)
            return "holds a control character";
        distinct += !seen[c];
        seen[c] = true;
    }
    if (distinct < 6)
        return "fewer than 6 different characters";
    size_t nlen = strlen(name);
    if (nlen >= 3 && nlen <= len) {
        for (size_t i = 0; i + nlen <= len; i++)
            if (strncasecmp(pw + i, name, nlen) == 0)
                return "contains the operator's name";
    }
    return NULL;
}

static bool is_pow2(uint64_t n)
{
    return n > 1 && (n & (n - 1)) == 0;
}

static bool params_ok(const ic_scrypt_params *p)
{
    return is_pow2(p->n) && p->n <= N_MAX && p->r >= 1 && p->r <= R_MAX && p->p >= 1 &&
           p->p <= P_MAX;
}

static iot_status derive(const char *pw, size_t len, const ic_scrypt_params *prm,
                         const unsigned char *salt, unsigned char out[HASH_LEN], iot_err *err)
{
    iot_status st = IOT_OK;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL) {
        st = iot_err_set(err, IOT_ECRYPTO, "scrypt is not available in this OpenSSL");
        goto out;
    }
    uint64_t n = prm->n;
    uint32_t r = prm->r, p = prm->p;
    /* OpenSSL's default cap is 32 MiB, exactly our default's need plus
     * nothing: raise it to what the accepted maximum needs. */
    uint64_t maxmem = 128 * (uint64_t)R_MAX * (N_MAX + 2 * P_MAX + 1);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pw, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_LEN),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(ctx, out, HASH_LEN, params) != 1)
        st = iot_err_set(err, IOT_ECRYPTO, "scrypt failed (out of memory?)");
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return st;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool from_hex(const char *s, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[2 * i + (size_t)k];
            unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                         : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                                                  : 16u;
            if (d > 15)
                return false;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    return true;
}

iot_status ic_pwhash_make_salted(const char *pw, size_t len, const ic_scrypt_params *params,
                                 const unsigned char salt[16], char out[IC_PWHASH_MAX],
                                 iot_err *err)
{
    if (!params_ok(params))
        return iot_err_set(err, IOT_EINVAL, "scrypt parameters out of range");
    unsigned char hash[HASH_LEN];
    iot_status st = derive(pw, len, params, salt, hash, err);
    if (st != IOT_OK)
        return st;
    char salt_hex[2 * SALT_LEN + 1], hash_hex[2 * HASH_LEN + 1];
    to_hex(salt, SALT_LEN, salt_hex);
    to_hex(hash, HASH_LEN, hash_hex);
    OPENSSL_cleanse(hash, sizeof(hash));
    int n = snprintf(out, IC_PWHASH_MAX, "scrypt$%" PRIu64 "$%" PRIu32 "$%" PRIu32 "$%s$%s",
                     params->n, params->r, params->p, salt_hex, hash_hex);
    if (n < 0 || n >= IC_PWHASH_MAX)
        return iot_err_set(err, IOT_EINVAL, "password hash does not fit");
    return IOT_OK;
}

iot_status ic_pwhash_make(const char *pw, size_t len, const ic_scrypt_params *params,
                          char out[IC_PWHASH_MAX], iot_err *err)
{
    unsigned char salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1)
        return iot_err_set(err, IOT_ECRYPTO, "no random bytes for the salt");
    return ic_pwhash_make_salted(pw, len, params, salt, out, err);
}

/* Parses "scrypt$N$r$p$SALT$HASH"; false if anything is off. */
static bool parse(const char *s, ic_scrypt_params *prm, unsigned char salt[SALT_LEN],
                  unsigned char hash[HASH_LEN])
{
    char salt_hex[2 * SALT_LEN + 2], hash_hex[2 * HASH_LEN + 2];
    uint64_t n = 0;
    uint32_t r = 0, p = 0;
    int used = 0;
    if (strlen(s) >= IC_PWHASH_MAX ||
        sscanf(s, "scrypt$%" SCNu64 "$%" SCNu32 "$%" SCNu32 "$%33[0-9a-f]$%65[0-9a-f]%n", &n, &r,
               &p, salt_hex, hash_hex, &used) != 5 ||
        s[used] != '\0' || strlen(salt_hex) != 2 * SALT_LEN || strlen(hash_hex) != 2 * HASH_LEN)
        return false;
    prm->n = n;
    prm->r = r;
    prm->p = p;
    return params_ok(prm) && from_hex(salt_hex, SALT_LEN, salt) &&
           from_hex(hash_hex, HASH_LEN, hash);
}

bool ic_pwhash_valid(const char *stored)
{
    ic_scrypt_params prm;
    unsigned char salt[SALT_LEN], hash[HASH_LEN];
    return parse(stored, &prm, salt, hash);
}

bool ic_pwhash_verify(const char *pw, size_t len, const char *stored)
{
    ic_scrypt_params prm;
    unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    iot_err err = {0};
    if (len > IC_PASSWORD_MAX || !parse(stored, &prm, salt, want))
        return false;
    if (derive(pw, len, &prm, salt, got, &err) != IOT_OK)
        return false;
    bool ok = CRYPTO_memcmp(got, want, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}
