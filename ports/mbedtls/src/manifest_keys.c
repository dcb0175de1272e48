/* The trusted signing keys from a PEM bundle (include/iotd_mbedtls/manifest_keys.h).
 *
 * Each "PUBLIC KEY" block is parsed by mbedTLS (which also checks that the
 * point is on its curve) and written back as DER: a P-256 key in the only
 * form iotctl writes is then exactly the SubjectPublicKeyInfo below, the
 * 65-byte uncompressed point at its end, so the comparison with that fixed
 * prefix checks the algorithm and the curve without walking ASN.1 here. */
#include "iotd_mbedtls/manifest_keys.h"

#include <string.h>

#include <mbedtls/pk.h>

static const char PEM_BEGIN[] = "-----BEGIN ";
static const char PUB_BEGIN[] = "-----BEGIN PUBLIC KEY-----";
static const char PUB_END[] = "-----END PUBLIC KEY-----";

/* SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0 unused
 * bits, then the point } }: 26 bytes, then 65 of the point. */
static const unsigned char P256_SPKI_PREFIX[] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
#define SPKI_LEN (sizeof(P256_SPKI_PREFIX) + IOTD_MANIFEST_PUBKEY_LEN)

/* The next PEM block at or after *pos, BEGIN line to END line: IOTD_OK with
 * *start and *len; IOTD_ENOENT when there is none; IOTD_EINVAL when it is
 * not a PUBLIC KEY, has no END line or is too long. */
static iotd_status next_block(const char **pos, const char **start, size_t *len)
{
    const char *b = strstr(*pos, PEM_BEGIN);

    if (b == NULL)
        return IOTD_ENOENT;
    if (strncmp(b, PUB_BEGIN, sizeof(PUB_BEGIN) - 1) != 0)
        return IOTD_EINVAL;
    const char *e = strstr(b, PUB_END);
    if (e == NULL)
        return IOTD_EINVAL;
    e += sizeof(PUB_END) - 1;
    *start = b;
    *len = (size_t)(e - b);
    *pos = e;
    return *len < IOTD_MBEDTLS_KEY_PEM_MAX ? IOTD_OK : IOTD_EINVAL;
}

/* The key of one block (len < IOTD_MBEDTLS_KEY_PEM_MAX) into row. */
static iotd_status parse_block(const char *block, size_t len, const iotd_manifest_crypto *crypto,
                               iotd_manifest_key *row)
{
    unsigned char text[IOTD_MBEDTLS_KEY_PEM_MAX];
    unsigned char der[SPKI_LEN + 32];
    mbedtls_pk_context pk;
    iotd_status st = IOTD_EINVAL;

    mbedtls_pk_init(&pk);
    /* mbedTLS reads PEM only from a NUL-terminated buffer whose length
     * counts the NUL. */
    memcpy(text, block, len);
    text[len] = '\0';
    if (mbedtls_pk_parse_public_key(&pk, text, len + 1) != 0)
        goto out;
    /* Written at the end of der; the length is returned. */
    if (mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der)) != (int)SPKI_LEN)
        goto out;
    const unsigned char *spki = der + sizeof(der) - SPKI_LEN;
    if (memcmp(spki, P256_SPKI_PREFIX, sizeof(P256_SPKI_PREFIX)) != 0)
        goto out;
    memcpy(row->pub, spki + sizeof(P256_SPKI_PREFIX), IOTD_MANIFEST_PUBKEY_LEN);
    st = iotd_manifest_key_id(crypto, row->pub, row->id) == IOTD_OK ? IOTD_OK : IOTD_EIO;
out:
    mbedtls_pk_free(&pk);
    return st;
}

static bool seen(const iotd_manifest_key *keys, size_t n, const iotd_manifest_key *row)
{
    for (size_t i = 0; i < n; i++) {
        if (memcmp(keys[i].pub, row->pub, sizeof(row->pub)) == 0)
            return true;
    }
    return false;
}

iotd_status iotd_mbedtls_manifest_keys(const char *pem, const iotd_manifest_crypto *crypto,
                                       iotd_manifest_key *keys, size_t cap, size_t *n,
                                       size_t *block)
{
    const char *pos = pem;
    size_t count = 0, index = 0;
    iotd_status st;

    for (;;) {
        const char *start = NULL;
        size_t len = 0;
        st = next_block(&pos, &start, &len);
        if (st == IOTD_ENOENT)
            break;
        index++;
        if (st == IOTD_OK)
            st = count == cap ? IOTD_ENOSPC : parse_block(start, len, crypto, &keys[count]);
        if (st == IOTD_OK && seen(keys, count, &keys[count]))
            st = IOTD_EINVAL;
        if (st != IOTD_OK)
            goto out;
        count++;
    }
    st = count == 0 ? IOTD_ENOENT : IOTD_OK;
    index = 0;
out:
    *n = st == IOTD_OK ? count : 0;
    if (block != NULL)
        *block = index;
    return st;
}
