/* The trusted firmware signing keys from a PEM bundle, for the manifest
 * verifier's key table (iotd_manifest_key, iotd/manifest.h).
 *
 * The bundle is what `iotctl firmware key create` keeps as
 * DIR/firmware/trusted-keys.pem: one "PUBLIC KEY" block (a
 * SubjectPublicKeyInfo) per trusted ECDSA P-256 key. It is read as the
 * gateway's reader (iot_manifest_keys_load, OpenSSL) reads it: text
 * around the blocks is ignored; a block of another kind, a key that is not
 * P-256, a damaged or a repeated block refuses the whole bundle, so a
 * private key or a certificate given by mistake never becomes a trust
 * anchor and no key is silently left out.
 *
 * mbedTLS 2.28 and 3.x (the same calls in both); no allocation on our side.
 */
#ifndef IOTD_MBEDTLS_MANIFEST_KEYS_H
#define IOTD_MBEDTLS_MANIFEST_KEYS_H

#include <stddef.h>

#include "iotd/manifest.h"
#include "iotd/status.h"

/* The longest PEM block read, in bytes: a P-256 public key's is 178. */
#define IOTD_MBEDTLS_KEY_PEM_MAX 512

/* Reads the NUL-terminated bundle pem into keys (cap rows) and their IDs
 * (iotd_manifest_key_id with crypto). IOTD_OK and *n >= 1 rows;
 * IOTD_ENOENT: no PEM block at all; IOTD_EINVAL: a block that is not a
 * P-256 "PUBLIC KEY", is damaged, repeats an earlier key, has no END line
 * or is longer than IOTD_MBEDTLS_KEY_PEM_MAX; IOTD_ENOSPC: more than cap
 * keys; IOTD_EIO: the SHA-256 of a key ID failed. On error *n is 0 and
 * *block (if not NULL) is the 1-based block at fault (0 when none is). */
iotd_status iotd_mbedtls_manifest_keys(const char *pem, const iotd_manifest_crypto *crypto,
                                       iotd_manifest_key *keys, size_t cap, size_t *n,
                                       size_t *block);

#endif
