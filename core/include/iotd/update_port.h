/* The port contract for firmware updates: the inactive firmware slot, the
 * running image's state, ranged HTTPS downloads and streaming SHA-256.
 *
 * A struct of its own beside iotd_port, so a platform without updates fills
 * nothing new. The slot functions follow ESP-IDF's esp_ota_ops, so the
 * ESP32 port is a thin mapping:
 *
 *   slot_begin     esp_ota_begin (offset 0); after a reset (offset > 0) the
 *                  rest of the partition is erased and written directly
 *                  (ESP-IDF 5.2 has no esp_ota_resume; ports/esp-idf/README.md)
 *   slot_write     esp_ota_write_with_offset
 *   slot_read      esp_partition_read on esp_ota_get_next_update_partition
 *   slot_activate  esp_ota_end, then esp_ota_set_boot_partition
 *   confirm        esp_ota_mark_app_valid_cancel_rollback
 *   reject         esp_ota_mark_app_invalid_rollback_and_reboot
 *   on_trial       esp_ota_get_state_partition(running) == ESP_OTA_IMG_PENDING_VERIFY
 *
 * With CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE, a new image boots once "on
 * trial"; a reset before confirm makes the bootloader return to the
 * previous image. The core relies on that: an image that cannot reach its
 * confirmation never becomes permanent.
 *
 * slot_read, on_trial, fw_info, https_get and the SHA-256 functions change
 * nothing that survives a reset; what the others leave is said at each.
 *
 * The same rules as iotd_port: every function is called from the core's
 * thread, never re-entrantly; the port and everything it points to outlive
 * the iotd_update that uses it. All function pointers are required.
 */
#ifndef IOTD_UPDATE_PORT_H
#define IOTD_UPDATE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/manifest.h"
#include "iotd/status.h"

/* A firmware image as the platform describes it (esp_app_desc_t). */
typedef struct iotd_fw_info {
    char version[IOTD_MANIFEST_FW_VERSION_MAX + 1]; /* the manifest's "version" */
    uint32_t secure_version;                        /* its anti-rollback counter */
} iotd_fw_info;

/* What the HTTPS service reports about a ranged GET. */
typedef struct iotd_get_result {
    int status;             /* HTTP status code */
    size_t body_len;        /* body bytes stored, at most cap */
    bool truncated;         /* the body was longer than cap; the rest was dropped */
    bool has_range;         /* a valid "Content-Range: bytes first-last/total" came */
    uint32_t range_start;   /* first */
    uint32_t range_len;     /* last - first + 1 */
    uint32_t range_total;   /* total; 0 when the server sent "*" */
    bool has_retry_after;   /* a Retry-After header came */
    uint32_t retry_after_s; /* its value in seconds */
} iotd_get_result;

typedef struct iotd_update_port {
    void *ctx; /* passed as the first argument of every function below */

    /* ---- the inactive slot ------------------------------------------------ */

    /* Bytes an image in the inactive slot may have; 0 when there is no
     * slot to update into. */
    uint32_t (*slot_capacity)(void *ctx);

    /* Opens the inactive slot for an image of image_size bytes, once per
     * boot before the first slot_write or slot_activate. resume_offset 0
     * starts a new image (erasing as needed); resume_offset > 0 continues
     * one begun before a reset: bytes [0, resume_offset) are kept as
     * written, the rest may be written (and erased as needed). The caller
     * passes a multiple of its chunk size (a multiple of the flash sector
     * on the ESP32). IOTD_OK; IOTD_EINVAL when image_size exceeds the
     * capacity or resume_offset exceeds image_size; IOTD_ESTATE when the
     * running image is on trial (esp_ota_begin refuses then: confirm it
     * first); IOTD_EIO when the flash failed. Power loss during it changes
     * nothing but the inactive slot. */
    iotd_status (*slot_begin)(void *ctx, uint32_t image_size, uint32_t resume_offset);

    /* Writes len bytes at offset of the open image. IOTD_OK means they
     * survive power loss. Writing the same bytes again over a range (a
     * resumed download re-writes the chunk that was in progress) must
     * succeed. IOTD_EINVAL outside the image; IOTD_ESTATE when slot_begin
     * was not called in this boot; IOTD_EIO when the flash failed. Power
     * lost during a write leaves those bytes undefined, no others. */
    iotd_status (*slot_write)(void *ctx, uint32_t offset, const void *data, size_t len);

    /* Reads len bytes at offset of the inactive slot, as written, to check
     * its digest. IOTD_OK; IOTD_EINVAL outside the slot; IOTD_EIO. */
    iotd_status (*slot_read)(void *ctx, uint32_t offset, void *buf, size_t len);

    /* Closes the image (image_size bytes written since slot_begin) and
     * selects it for the next boot, on trial. IOTD_OK means the selection
     * survives power loss: the next boot runs the new image once. The
     * platform's reboot is the caller's. IOTD_ECORRUPT when the platform's
     * own image check refused it (esp_ota_end's ESP_ERR_OTA_VALIDATE_FAILED);
     * IOTD_ESTATE when no image was opened in this boot; IOTD_EIO. On any
     * error, and on power loss during it, the boot selection is either
     * unchanged or the new image on trial: never the new image confirmed. */
    iotd_status (*slot_activate)(void *ctx);

    /* ---- the running image ---------------------------------------------- */

    /* True when the running image booted on trial and is neither confirmed
     * nor rejected yet (ESP_OTA_IMG_PENDING_VERIFY). */
    bool (*on_trial)(void *ctx);

    /* Makes the running image permanent. IOTD_OK means it survives power
     * loss: no later reset rolls it back. IOTD_EIO otherwise (it stays on
     * trial). */
    iotd_status (*confirm)(void *ctx);

    /* Marks the running image bad and boots the previous one. Does not
     * return on success on the ESP32; a platform that restarts later
     * returns IOTD_OK, and the next boot runs the previous image (this
     * survives power loss). IOTD_ESTATE when there is no previous image;
     * IOTD_EIO. On error the running image stays on trial. */
    iotd_status (*reject)(void *ctx);

    /* The running image (previous false) or the one in the other slot
     * (previous true). IOTD_OK; IOTD_ENOENT when that slot holds no valid
     * image; IOTD_EIO. */
    iotd_status (*fw_info)(void *ctx, bool previous, iotd_fw_info *out);

    /* ---- the network ------------------------------------------------------ */

    /* HTTPS GET of path from the gateway, over the device's mutual TLS.
     * range_len 0: the whole resource; otherwise "Range: bytes=
     * range_start-(range_start + range_len - 1)". Stores up to cap body
     * bytes in buf and fills result. IOTD_OK when a response arrived,
     * whatever its status; IOTD_ENET when none did (DNS, connect, TLS,
     * timeout, the connection dropped mid-body). */
    iotd_status (*https_get)(void *ctx, const char *path, uint32_t range_start, uint32_t range_len,
                             void *buf, size_t cap, iotd_get_result *result);

    /* ---- SHA-256 ---------------------------------------------------------- */

    /* One streaming hash at a time, in a context the port owns. begin
     * discards any hash in progress; finish writes the digest of every
     * byte passed to update since begin. IOTD_OK, or IOTD_EIO when the
     * service failed (the digest is then not to be used). */
    iotd_status (*sha256_begin)(void *ctx);
    iotd_status (*sha256_update)(void *ctx, const void *data, size_t len);
    iotd_status (*sha256_finish)(void *ctx, uint8_t out[IOTD_MANIFEST_DIGEST_LEN]);
} iotd_update_port;

#endif
