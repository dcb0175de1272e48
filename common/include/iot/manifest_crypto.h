/* The firmware manifest's cryptography on OpenSSL 3 (iotd/manifest.h):
 * the iotd_manifest_crypto that the gateway and iotctl hand to the one
 * verifier, the trusted signing keys read from a PEM file, and the
 * signing side's r || s signature.
 */
#ifndef IOT_MANIFEST_CRYPTO_H
#define IOT_MANIFEST_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "iot/status.h"
#include "iotd/manifest.h"

/* A trusted-keys file holds at most this many keys, in at most this many
 * bytes: a handful are trusted at once while one is rotated out. */
#define IOT_MANIFEST_KEYS_MAX      64
#define IOT_MANIFEST_KEYS_FILE_MAX (64 * 1024)

/* SHA-256 and ECDSA P-256 verification with libcrypto. Stateless: the one
 * instance serves every thread. */
const iotd_manifest_crypto *iot_manifest_crypto_openssl(void);

/* The uncompressed point (0x04 X Y) of a P-256 key, public or private;
 * IOT_EINVAL for a key of another type or curve. */
iot_status iot_manifest_pubkey_raw(EVP_PKEY *key, uint8_t out[IOTD_MANIFEST_PUBKEY_LEN],
                                   iot_err *err);

/* A P-256 key's ID (iotd_manifest_key_id) and its raw point in one row. */
iot_status iot_manifest_key_row(EVP_PKEY *key, iotd_manifest_key *row, iot_err *err);

/* Reads the trusted signing keys: every "PUBLIC KEY" PEM block of the file
 * at path, each a P-256 key, into keys (cap rows); *n is how many. An
 * empty file is an empty set. A block that is not a P-256 public key, the
 * same key twice, more than cap keys or a file larger than
 * IOT_MANIFEST_KEYS_FILE_MAX is refused as a whole, naming the file. */
iot_status iot_manifest_keys_load(const char *path, iotd_manifest_key *keys, size_t cap, size_t *n,
                                  iot_err *err);

/* Signs len bytes at data with a P-256 private key: ECDSA over SHA-256,
 * the signature as r || s (32 bytes each, big-endian), the manifest's
 * encoding. */
iot_status iot_manifest_sign(EVP_PKEY *key, const void *data, size_t len,
                             uint8_t sig[IOTD_MANIFEST_SIG_LEN], iot_err *err);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void iot_hex(const uint8_t *bytes, size_t len, char *out);

#endif
