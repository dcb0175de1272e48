/* The key and certificate slots of the credential port (iotd/cred_port.h)
 * on NVS, for the ESP32.
 *
 * Two slots, "0" and "1", each a key blob (DER, ECPrivateKey) and a
 * certificate blob (the device certificate's DER, then its CAs' DER, one
 * after the other), and one u8 "active" naming the active slot; the other
 * is the candidate. commit writes "active" only: one NVS entry, which
 * power loss leaves old or new (see kv.c), so the switch is atomic.
 * Keys are made by mbedTLS (ports/mbedtls) from the hardware RNG; use an
 * encrypted NVS partition (CONFIG_NVS_ENCRYPTION) so they are not readable
 * from flash.
 *
 * No allocation of ours: every blob is read into the buffers inside
 * iotd_esp_cred (mbedTLS allocates during key generation and signing, and
 * frees before returning). The EST transport (est_request, probe) is the
 * application's choice: iotd_esp/est.h fills those two pointers of the
 * iotd_cred_port with esp_http_client, using iotd_esp_cred_load for the
 * identity.
 */
#ifndef IOTD_ESP_CRED_H
#define IOTD_ESP_CRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nvs.h"

#include "iotd/cred_port.h"
#include "iotd_mbedtls/cred_crypto.h"

#define IOTD_ESP_CRED_CHAIN_MAX 2048 /* DER of the device certificate and its CAs */

typedef struct iotd_esp_cred {
    nvs_handle_t nvs;
    const char *device_id; /* outlives this */
    uint8_t key[IOTD_MBEDTLS_KEY_DER_MAX];
    size_t key_len;
    uint8_t chain[IOTD_ESP_CRED_CHAIN_MAX];
    size_t chain_len;
    void *transport; /* the EST transport's state (iotd_esp/est.h), or NULL */
} iotd_esp_cred;

/* Opens the NVS namespace (default partition) that holds the slots. */
iotd_status iotd_esp_cred_open(iotd_esp_cred *c, const char *nvs_namespace, const char *device_id);
void iotd_esp_cred_close(iotd_esp_cred *c);

/* Fills the key and slot functions of out; est_request and probe stay NULL
 * for the application to fill. */
void iotd_esp_cred_port(iotd_esp_cred *c, iotd_cred_port *out);

/* Loads a slot's key and certificate chain into c->key and c->chain (for
 * the application's TLS client). IOTD_ENOENT when the slot has no
 * certificate. */
iotd_status iotd_esp_cred_load(iotd_esp_cred *c, iotd_cred_slot slot);

/* A slot's chain and key as NUL-terminated PEM ("CERTIFICATE" blocks, one
 * "EC PRIVATE KEY" block), for esp_http_client. IOTD_ENOENT when the slot
 * has no certificate or key; IOTD_ECORRUPT when they do not fit the
 * buffers or are not DER. c->key is wiped afterwards. */
iotd_status iotd_esp_cred_load_pem(iotd_esp_cred *c, iotd_cred_slot slot, char *cert_pem,
                                   size_t cert_cap, char *key_pem, size_t key_cap);

#endif
