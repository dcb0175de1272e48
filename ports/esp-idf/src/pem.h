/* What the EST transport needs between the credential slots (DER in NVS)
 * and esp_http_client (NUL-terminated PEM) and for the token request:
 * PEM armour of a certificate chain and of a key, and the value of an
 * HTTP Basic Authorization header. Every output has a cap. No ESP-IDF
 * dependency: the host tests build this file as it is.
 */
#ifndef IOTD_ESP_PEM_H
#define IOTD_ESP_PEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The PEM of the longest chain a slot holds (IOTD_ESP_CRED_CHAIN_MAX bytes
 * of DER, up to four certificates), and of a P-256 key. */
#define IOTD_ESP_PEM_CHAIN_MAX 3200
#define IOTD_ESP_PEM_KEY_MAX   320

/* "Basic " and the base64 of "DEVICE-ID:TOKEN": a device ID of up to 64
 * characters and a token of up to IOTD_ESP_TOKEN_MAX - 1. */
#define IOTD_ESP_TOKEN_MAX 128
#define IOTD_ESP_AUTH_MAX  280

/* The length of the DER SEQUENCE at the start of p[0..n) (a certificate),
 * header included; 0 when p does not start with a definite-length
 * SEQUENCE that fits in n. */
size_t iotd_esp__der_seq_len(const uint8_t *p, size_t n);

/* Each certificate of a chain (DER certificates one after the other) as a
 * "CERTIFICATE" PEM block, lines of 64 characters, into out (cap bytes,
 * NUL-terminated). False (and out empty, when cap > 0) when the chain is
 * empty, a certificate's length is wrong or the text does not fit. */
bool iotd_esp__pem_chain(const uint8_t *der, size_t len, char *out, size_t cap);

/* An ECPrivateKey (RFC 5915, DER) as an "EC PRIVATE KEY" PEM block.
 * False (and out empty) when len is 0, der is not one whole SEQUENCE or
 * the text does not fit. */
bool iotd_esp__pem_key(const uint8_t *der, size_t len, char *out, size_t cap);

/* "Basic " + base64("user:password") (RFC 7617). False (and out empty)
 * when user is empty or holds a colon or a control character, password is
 * empty or holds a control character, or the value does not fit. */
bool iotd_esp__basic_auth(char *out, size_t cap, const char *user, const char *password);

#endif
