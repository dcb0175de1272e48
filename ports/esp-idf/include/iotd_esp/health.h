/* The ESP32's part of the health report (iotd/health.h): the running
 * image's version and secure_version (its app description), the boot
 * count (counted at each start in the port's key-value store, key
 * "boot.count"), the reset reason (esp_reset_reason), the free heap's
 * low-water mark (esp_get_minimum_free_heap_size) and the expiry of the
 * certificate in use (parsed from its PEM at each report). */
#ifndef IOTD_ESP_HEALTH_H
#define IOTD_ESP_HEALTH_H

#include <stdint.h>

#include "iotd/health.h"
#include "iotd_esp/port.h"

typedef struct iotd_esp_health {
    uint32_t boot_count;
    const char *reset_reason; /* an IOTD_RESET_* name */
    const char *cert_pem;     /* the certificate in use: a buffer renewal rewrites in place */
} iotd_esp_health;

/* The name the health report gives an esp_reset_reason_t value. */
const char *iotd_esp_reset_reason_name(int reason);

/* Counts this start and reads why it happened; esp must be initialised. */
void iotd_esp_health_open(iotd_esp_health *h, iotd_esp *esp, const char *cert_pem);

/* iotd_health_fill_fn, ctx = the iotd_esp_health. */
void iotd_esp_health_fill(void *ctx, iotd_health_info *out);

#endif
