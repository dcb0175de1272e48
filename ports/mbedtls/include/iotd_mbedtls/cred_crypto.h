/* The device credentials' cryptography (iotd/cred_port.h) done by mbedTLS:
 * P-256 key generation, the PKCS#10 request, reading the certs-only PKCS#7
 * that EST answers with, a certificate's validity and whether it belongs
 * to a key.
 *
 * One source for the POSIX port (Debian's mbedTLS 2.28) and the ESP-IDF
 * port (mbedTLS 3.x). mbedTLS 2.28 has no PKCS#7 module and 3.x's parses
 * signed data only, so the certs-only form is walked with mbedTLS's ASN.1
 * reader. Keys are stored as DER (SEC1 ECPrivateKey, at most
 * IOTD_MBEDTLS_KEY_DER_MAX bytes). mbedTLS allocates from the heap during
 * each call and frees it before returning; nothing is kept between calls.
 */
#ifndef IOTD_MBEDTLS_CRED_CRYPTO_H
#define IOTD_MBEDTLS_CRED_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "iotd/cred_port.h"
#include "iotd/status.h"

#define IOTD_MBEDTLS_KEY_DER_MAX 160
/* The longest device ID put into a request's subject. */
#define IOTD_MBEDTLS_DEVICE_ID_MAX 64

/* A new P-256 key pair from mbedTLS's entropy source and CTR-DRBG, as DER
 * into der (cap bytes), its length in *len. IOTD_ENOSPC when cap is short;
 * IOTD_EIO when the entropy source or mbedTLS failed. */
iotd_status iotd_mbedtls_key_generate(uint8_t *der, size_t cap, size_t *len);

/* A PKCS#10 request (DER) for the key: subject CN=device_id, O=IoT
 * Telemetry, OU=device, signed with ECDSA-SHA256. device_id is 1 to
 * IOTD_MBEDTLS_DEVICE_ID_MAX characters of [A-Za-z0-9._-]. IOTD_EINVAL for
 * another ID or a key that does not parse; IOTD_ENOSPC when cap is short;
 * IOTD_EIO when signing failed. */
iotd_status iotd_mbedtls_csr(const uint8_t *key, size_t key_len, const char *device_id,
                             uint8_t *der, size_t cap, size_t *len);

/* The index-th certificate (from 0) of a certs-only PKCS#7 (RFC 2315
 * SignedData, DER): *cert points into p7. IOTD_ENOENT past the last;
 * IOTD_ECORRUPT when p7 is not such a structure. */
iotd_status iotd_mbedtls_pkcs7_cert(const uint8_t *p7, size_t len, size_t index,
                                    const uint8_t **cert, size_t *cert_len);

/* notBefore and notAfter of a DER certificate, in Unix seconds.
 * IOTD_ECORRUPT when it does not parse. */
iotd_status iotd_mbedtls_cert_validity(const uint8_t *cert, size_t len, iotd_cert_info *info);

/* IOTD_OK when the certificate's public key is the key's; IOTD_EINVAL when
 * it is another; IOTD_ECORRUPT when either does not parse. */
iotd_status iotd_mbedtls_cert_matches_key(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                                          size_t key_len);

#endif
