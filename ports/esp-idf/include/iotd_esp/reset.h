/* The factory reset's port contract (iotd/reset.h) on the ESP32: what the
 * device holds of its owner lives in NVS.
 *
 *   erase_credentials  the credential slots' namespace (keys and
 *                      certificates, iotd_esp/cred.h), the namespace of a
 *                      key made on the device, and the whole provisioned
 *                      identity partition (erased, then left for
 *                      re-provisioning), and the TLS session kept
 *                      in RTC memory (iotd_esp/session.h)
 *   erase_settings     the settings' namespace (Wi-Fi, gateway, device ID,
 *                      enrollment token)
 *   erase_storage      every key of the core's namespace (sequence record,
 *                      offline queue, update state) but the reset marker,
 *                      then the marker
 *
 * With NVS encryption on, erased entries cannot be read back from flash
 * either; without it, NVS marks them erased and the page is reclaimed. */
#ifndef IOTD_ESP_RESET_H
#define IOTD_ESP_RESET_H

#include "iotd/reset.h"

typedef struct iotd_esp_reset {
    const char *cred_namespace;     /* "cred" */
    const char *devkey_namespace;   /* "devkey"; NULL: none */
    const char *identity_partition; /* "ident"; NULL: none */
    const char *settings_namespace; /* "cfg" */
    const char *kv_namespace;       /* the core's, "iotd" */
} iotd_esp_reset;

/* Fills out with ctx = r, which must outlive its use. */
void iotd_esp_reset_port(iotd_esp_reset *r, iotd_reset_port *out);

#endif
