/* iotd_manifest_crypto with mbedTLS (include/iotd_mbedtls/manifest_crypto.h).
 * The signature arrives as r || s, not DER, so it is verified with the
 * group, point and numbers directly (mbedtls_ecdsa_verify) rather than
 * through mbedtls_pk, which would need it re-encoded. */
#include "iotd_mbedtls/manifest_crypto.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#define SIG_HALF (IOTD_MANIFEST_SIG_LEN / 2)

static iotd_status sha256_digest(void *ctx, const void *data, size_t len,
                                 uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    int rc;

    (void)ctx;
#if MBEDTLS_VERSION_NUMBER >= 0x03000000
    rc = mbedtls_sha256(data, len, out, 0);
#else
    rc = mbedtls_sha256_ret(data, len, out, 0);
#endif
    return rc == 0 ? IOTD_OK : IOTD_EIO;
}

/* An mbedTLS error is a verdict on the input (EINVAL) unless it says that
 * mbedTLS could not do the work (EIO): out of memory, or a hardware
 * accelerator's own failure, which has no code of its own. */
static iotd_status status_of(int rc)
{
    switch (rc) {
    case 0:
        return IOTD_OK;
    case MBEDTLS_ERR_ECP_VERIFY_FAILED:
    case MBEDTLS_ERR_ECP_BAD_INPUT_DATA:
    case MBEDTLS_ERR_ECP_INVALID_KEY:
    case MBEDTLS_ERR_ECP_FEATURE_UNAVAILABLE:
    case MBEDTLS_ERR_MPI_BAD_INPUT_DATA:
        return IOTD_EINVAL;
    default:
        return IOTD_EIO;
    }
}

static iotd_status p256_verify(void *ctx, const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN],
                               const uint8_t digest[IOTD_MANIFEST_DIGEST_LEN],
                               const uint8_t sig[IOTD_MANIFEST_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r;
    mbedtls_mpi s;
    iotd_status st = IOTD_EIO;
    int rc;

    (void)ctx;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    rc = mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1);
    if (rc != 0)
        goto out; /* P-256 compiled out, or no memory: not the key's fault */
    /* Only the uncompressed form is a key here (iotd/manifest.h); mbedTLS
     * would refuse other lengths, but say so plainly. */
    st = IOTD_EINVAL;
    if (pub[0] != 0x04)
        goto out;
    /* read_binary checks only the coordinates' size; check_pubkey
     * refuses a point that is not on the curve. */
    rc = mbedtls_ecp_point_read_binary(&grp, &q, pub, IOTD_MANIFEST_PUBKEY_LEN);
    if (rc == 0)
        rc = mbedtls_ecp_check_pubkey(&grp, &q);
    if (rc == 0)
        rc = mbedtls_mpi_read_binary(&r, sig, SIG_HALF);
    if (rc == 0)
        rc = mbedtls_mpi_read_binary(&s, sig + SIG_HALF, SIG_HALF);
    if (rc == 0)
        rc = mbedtls_ecdsa_verify(&grp, digest, IOTD_MANIFEST_DIGEST_LEN, &q, &r, &s);
    st = status_of(rc);
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return st;
}

iotd_manifest_crypto iotd_mbedtls_manifest_crypto(void)
{
    iotd_manifest_crypto c = {NULL, sha256_digest, p256_verify};
    return c;
}
