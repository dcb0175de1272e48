/* Internal to the ESP-IDF port: what its source files share. */
#ifndef IOTD_ESP_PORT_INTERNAL_H
#define IOTD_ESP_PORT_INTERNAL_H

#include "iotd_esp/port.h"

/* A core message (or the gateway's body in it) as it reaches the console,
 * escaped; longer ones are cut. */
#define IOTD_ESP_LOG_MSG_MAX 160

/* Creates esp->http from the configuration (https.c). */
iotd_status iotd_esp__http_create(iotd_esp *esp, const iotd_esp_config *cfg);

/* Cleans esp->http up, if it exists. */
void iotd_esp__http_destroy(iotd_esp *esp);

#endif
