/* A key made on the device and a certificate request for it (production
 * provisioning, CONFIG_IOTD_CSR_ON_DEVICE). */
#ifndef FW_CSR_H
#define FW_CSR_H

#include <stddef.h>

#include "esp_err.h"

/* Loads the device's key from NVS (namespace "devkey"), or makes an ECDSA
 * P-256 key and stores it there first. Call with the radio on: the
 * hardware RNG is then a true random source. */
esp_err_t csr_key(char *key_pem, size_t cap);

/* Writes a PEM certificate request for CN=device_id, signed with key_pem. */
esp_err_t csr_request(const char *device_id, const char *key_pem, char *out, size_t cap);

#endif
