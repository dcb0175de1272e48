/* The firmware update port (iotd/update_port.h) on ESP-IDF 5.x: the
 * inactive app slot through esp_ota_ops and esp_partition, the running
 * image's trial state, the HTTPS client of iotd_esp for ranged GETs, and
 * SHA-256 from mbedTLS (the chip's SHA accelerator behind it).
 *
 * Needs a partition table with otadata and two OTA app slots, and
 * CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, without which a new image never
 * boots on trial and a bad one could not undo itself (README.md of this
 * component has the mapping and what each failure does).
 *
 * Written against ESP-IDF v5.2.2, which has no esp_ota_resume(): a
 * download resumed after a reset is written with esp_partition_erase_range
 * and esp_partition_write, and activated by esp_ota_set_boot_partition(),
 * which checks the image itself (src/update.c says why that is the same
 * as esp_ota_end).
 */
#ifndef IOTD_ESP_UPDATE_H
#define IOTD_ESP_UPDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "esp_ota_ops.h"
#include "esp_partition.h"
#include "mbedtls/sha256.h"

#include "iotd/update_port.h"
#include "iotd_esp/port.h"

/* The port's state. Fields are private. */
typedef struct iotd_esp_update {
    iotd_esp *esp; /* its HTTPS client serves https_get */
    const esp_partition_t *slot;
    uint32_t image_size;
    bool slot_open;  /* slot_begin succeeded in this boot */
    bool has_handle; /* opened with esp_ota_begin: esp_ota_end closes it */
    esp_ota_handle_t handle;
    mbedtls_sha256_context sha;
    bool sha_active;
} iotd_esp_update;

/* Fills *port with the functions of this port and ctx = u. esp is an
 * initialised iotd_esp (iotd_esp_init) that outlives u. IOTD_EINVAL when
 * there is no OTA app slot to update into (a table without otadata and two
 * OTA slots) or the running app is not in an OTA slot. */
iotd_status iotd_esp_update_init(iotd_esp_update *u, iotd_esp *esp, iotd_update_port *port);

/* The running image's trial, for the application's own use before or
 * without the update state machine (an image that must stop before its
 * self-test gives up its trial rather than wait for a reset): the same
 * calls as the port's on_trial and reject. */
bool iotd_esp_update_running_on_trial(void);
iotd_status iotd_esp_update_roll_back(void); /* restarts on success */

#endif
