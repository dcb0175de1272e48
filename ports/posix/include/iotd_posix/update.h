/* Firmware updates for one simulated device: the update port contract
 * (iotd/update_port.h) over files in the device's state directory,
 * behaving as ESP-IDF's esp_ota_ops with app rollback
 * (CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE) does on the ESP32.
 *
 *   slot0, slot1   the two OTA slots, each up to slot_capacity bytes
 *                  (the file holds the bytes written; the rest reads as
 *                  erased flash, 0xFF)
 *   otadata.kv     the boot selection: which slot boots and each slot's
 *                  state (new, pending_verify, valid, invalid), replaced
 *                  atomically through the key-value store (kv.h)
 *
 * The factory image is not a file: the simulator says what it is
 * (iotd_posix_update_config.factory). iotd_posix_update_boot plays the
 * bootloader at each device start: a new image boots once on trial; an
 * image still on trial at the next start (reset before confirmation) is
 * marked invalid and the previous one boots; with no bootable slot the
 * factory image runs.
 *
 * A simulated image starts with a text header that says what it is:
 *
 *   iotsim-image 1
 *   version: 1.4.2
 *   secure-version: 3
 *   self-test: pass
 *   <empty line>
 *
 * followed by filler bytes up to the image's size. version is required
 * (the manifest's rule: 1-32 of [A-Za-z0-9._+-]); secure-version (default
 * 0) and self-test (pass or fail, default pass) are optional; each name
 * at most once, no other name; the header is at most
 * IOTD_POSIX_IMAGE_HEADER_MAX bytes. slot_activate refuses an image
 * without a valid header (IOTD_ECORRUPT), as esp_ota_end refuses one that
 * is not an app image.
 */
#ifndef IOTD_POSIX_UPDATE_H
#define IOTD_POSIX_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/sha256.h>

#include "iot/status.h"
#include "iotd/port.h"
#include "iotd/update_port.h"
#include "iotd_posix/https.h"
#include "iotd_posix/kv.h"

#define IOTD_POSIX_SLOT_DEFAULT     (1024u * 1024u) /* bytes per slot, as an ESP32-C3 OTA slot */
#define IOTD_POSIX_IMAGE_HEADER_MAX 256
#define IOTD_POSIX_IMAGE_MAKE_MAX   (64u * 1024u * 1024u) /* iotd_posix_image_make's largest */
#define IOTD_POSIX_FACTORY          (-1) /* the running "slot" when the factory image runs */

/* What a simulated image's header says. */
typedef struct iotd_posix_image {
    char version[IOTD_MANIFEST_FW_VERSION_MAX + 1];
    uint32_t secure_version;
    bool self_test_pass; /* false: the simulated self-test fails */
} iotd_posix_image;

/* A slot's state in otadata (esp_ota_img_states_t). */
typedef enum iotd_posix_slot_state {
    IOTD_POSIX_SLOT_EMPTY = 0,      /* nothing bootable: never written, or being written */
    IOTD_POSIX_SLOT_NEW,            /* activated; boots next, on trial */
    IOTD_POSIX_SLOT_PENDING_VERIFY, /* booted on trial, not confirmed yet */
    IOTD_POSIX_SLOT_VALID,          /* confirmed */
    IOTD_POSIX_SLOT_INVALID,        /* rejected, or reset while on trial */
} iotd_posix_slot_state;

typedef struct iotd_posix_update_config {
    iotd_posix_kv *kv;         /* required: the device's state directory */
    iotd_posix_https *https;   /* the gateway; NULL: https_get answers IOTD_ENET */
    const iotd_port *log_port; /* events go to its log function; NULL: none */
    uint32_t slot_capacity;    /* bytes per slot; 0: IOTD_POSIX_SLOT_DEFAULT */
    iotd_posix_image factory;  /* the image that runs when no slot is bootable */
} iotd_posix_update_config;

/* What the bootloader did at this start. */
typedef struct iotd_posix_boot {
    int slot;               /* IOTD_POSIX_FACTORY, 0 or 1 */
    bool on_trial;          /* a new image, booted once to be confirmed */
    bool rolled_back;       /* the selected image was on trial or unbootable: the previous runs */
    iotd_posix_image image; /* what runs */
} iotd_posix_boot;

/* One device's update port. The fields are private. */
typedef struct iotd_posix_update {
    iotd_posix_update_config cfg;
    int boot;         /* otadata: the slot that boots next */
    uint8_t state[2]; /* otadata: each slot's iotd_posix_slot_state */
    int running;      /* the slot this start booted */
    iotd_posix_image image;
    int fd;              /* the slot opened by slot_begin in this boot, or -1 */
    uint32_t image_size; /* given to slot_begin */
    mbedtls_sha256_context sha;
    bool sha_active;
} iotd_posix_update;

/* Prepares u over the configuration (copied). Touches no file. */
void iotd_posix_update_init(iotd_posix_update *u, const iotd_posix_update_config *cfg);

/* The bootloader: reads otadata, decides what runs (see above), stores
 * what changed, and fills out. IOTD_EIO when otadata cannot be read or
 * stored (the factory image is then reported, nothing changed). Call once
 * per device start, before the update port is used. */
iotd_status iotd_posix_update_boot(iotd_posix_update *u, iotd_posix_boot *out);

/* Fills port with this platform's functions and ctx = u. */
void iotd_posix_update_port(iotd_posix_update *u, iotd_update_port *port);

/* Closes the open slot and ends a hash in progress. */
void iotd_posix_update_close(iotd_posix_update *u);

/* A slot's state in otadata as last read or stored. */
iotd_posix_slot_state iotd_posix_update_slot_state(const iotd_posix_update *u, int slot);

/* The header of the image in slot 0 or 1, whatever its state:
 * IOTD_ENOENT when the slot holds none (empty, or not a valid header). */
iotd_status iotd_posix_update_slot_image(const iotd_posix_update *u, int slot,
                                         iotd_posix_image *out);

/* "empty", "new", "pending_verify", "valid", "invalid". */
const char *iotd_posix_slot_state_name(iotd_posix_slot_state s);

/* ---- the simulated image format ---------------------------------------------------- */

/* Reads the header at the start of an image (len bytes of it, the filler
 * may follow). IOTD_OK; IOTD_ECORRUPT when it is not a valid header. */
iotd_status iotd_posix_image_parse(const void *data, size_t len, iotd_posix_image *out);

/* Writes the header for img into buf. IOTD_OK and *len (a NUL follows);
 * IOTD_EINVAL for a version outside the rule; IOTD_ENOSPC when cap is
 * short (IOTD_POSIX_IMAGE_HEADER_MAX is enough). */
iotd_status iotd_posix_image_header(const iotd_posix_image *img, char *buf, size_t cap,
                                    size_t *len);

/* Writes a whole image of size bytes to path (replaced atomically, mode
 * 0644): the header, then filler derived from the header, so images of
 * different versions differ throughout. The error names the file or the
 * value at fault: size below the header's length or above
 * IOTD_POSIX_IMAGE_MAKE_MAX, a bad version. */
iot_status iotd_posix_image_make(const char *path, const iotd_posix_image *img, uint32_t size,
                                 iot_err *err);

#endif
