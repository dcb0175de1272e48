/* The firmware manifest verifier's cryptography (iotd_manifest_crypto,
 * iotd/manifest.h) done by mbedTLS: SHA-256 and ECDSA P-256 verification.
 *
 * One source for every port that has mbedTLS: the POSIX port (Debian's
 * mbedTLS 2.28) and the ESP-IDF port (mbedTLS 3.x). It uses the legacy
 * API both versions have; the one call whose name differs is chosen by
 * MBEDTLS_VERSION_NUMBER. Stateless and allocation-free on our side
 * (mbedTLS allocates its big numbers from the heap, freed before return),
 * so the same value may be used from any thread.
 */
#ifndef IOTD_MBEDTLS_MANIFEST_CRYPTO_H
#define IOTD_MBEDTLS_MANIFEST_CRYPTO_H

#include "iotd/manifest.h"

/* The crypto service to hand to iotd_manifest_verify() and
 * iotd_manifest_key_id(). Its ctx is NULL.
 *   sha256:      IOTD_OK, or IOTD_EIO when mbedTLS (or the SHA hardware
 *                behind it) fails.
 *   p256_verify: IOTD_OK for a valid signature; IOTD_EINVAL when the
 *                signature does not verify, r or s is out of range, or
 *                the public key is not an uncompressed point on P-256;
 *                IOTD_EIO when mbedTLS itself failed (out of memory). */
iotd_manifest_crypto iotd_mbedtls_manifest_crypto(void);

#endif
