/* The update port on esp_ota_ops (include/iotd_esp/update.h).
 *
 * Opening the slot, ESP-IDF v5.2.2: esp_ota_resume() does not exist there
 * (it came in a later release), and an esp_ota_begin() handle cannot
 * continue an image begun before a reset: esp_ota_begin(size) erases the
 * whole image's sectors, OTA_WITH_SEQUENTIAL_WRITES makes every write
 * erase ahead of itself and forbids esp_ota_write_with_offset (an assert),
 * and esp_ota_end() refuses a handle nothing was written through. So:
 *   - a new image (offset 0): esp_ota_begin(slot, size), chunks with
 *     esp_ota_write_with_offset, closed by esp_ota_end();
 *   - a resumed one: the sectors from the resume offset to the end of the
 *     image are erased with esp_partition_erase_range (the bytes before it
 *     stay as written), chunks go through esp_partition_write, and there
 *     is no handle to close.
 * Both are activated by esp_ota_set_boot_partition(), which checks the
 * image (esp_image_verify, ESP_IMAGE_VERIFY: the same check as
 * esp_ota_end's) and, with anti-rollback, its secure version against the
 * eFuse before it writes otadata; with rollback enabled the new entry is
 * ESP_OTA_IMG_NEW, which the bootloader boots once as pending
 * verification. esp_partition_write and esp_ota_write_with_offset are the
 * same flash write (the latter only counts bytes for esp_ota_end), and both
 * encrypt when the slot is encrypted. What esp_ota_begin checks besides
 * erasing is checked here for both: the slot is not the running one, and
 * the running image is not on trial.
 *
 * With flash encryption a write must be a multiple of 16 bytes at a
 * 16-byte offset. Chunks are multiples of the flash sector, and an app
 * image from esptool is a multiple of 16 bytes, so only the image size
 * needs checking: slot_begin refuses another size, on every board, so a
 * bench board behaves as a production one.
 */
#include "iotd_esp/update.h"

#include <string.h>

#include "esp_app_desc.h"
#include "esp_log.h"

static const char *TAG = "iotd";

#define ENCRYPTED_WRITE_ALIGN 16u

/* The slot that is not running, or NULL when the table has none. */
static const esp_partition_t *other_slot(void)
{
    const esp_partition_t *run = esp_ota_get_running_partition();
    const esp_partition_t *next = esp_ota_get_next_update_partition(NULL);

    return next != NULL && next != run ? next : NULL;
}

bool iotd_esp_update_running_on_trial(void)
{
    const esp_partition_t *run = esp_ota_get_running_partition();
    esp_ota_img_states_t state;

    return run != NULL && esp_ota_get_state_partition(run, &state) == ESP_OK &&
           state == ESP_OTA_IMG_PENDING_VERIFY;
}

static uint32_t round_up(uint32_t v, uint32_t to)
{
    return (v + to - 1u) / to * to;
}

/* ---- the inactive slot ---------------------------------------------------------- */

static uint32_t slot_capacity(void *ctx)
{
    const esp_partition_t *slot = other_slot();

    (void)ctx;
    return slot == NULL ? 0 : slot->size;
}

/* Drops a handle of an earlier slot_begin in this boot. */
static void close_slot(iotd_esp_update *u)
{
    if (u->has_handle)
        (void)esp_ota_abort(u->handle);
    u->has_handle = false;
    u->slot_open = false;
}

static bool begin_args_ok(const esp_partition_t *slot, uint32_t size, uint32_t resume)
{
    if (slot == NULL || slot->erase_size == 0 || size == 0 || size > slot->size || resume > size)
        return false;
    if (size % ENCRYPTED_WRITE_ALIGN != 0) {
        ESP_LOGW(TAG,
                 "update.bad_image_size: %u bytes is not a multiple of 16, as an app "
                 "image from esptool is",
                 (unsigned)size);
        return false;
    }
    return resume == size || resume % slot->erase_size == 0;
}

static iotd_status begin_new(iotd_esp_update *u, const esp_partition_t *slot, uint32_t size)
{
    esp_err_t err = esp_ota_begin(slot, size, &u->handle);

    if (err == ESP_ERR_OTA_ROLLBACK_INVALID_STATE)
        return IOTD_ESTATE;
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "update.slot_begin_failed: esp_ota_begin: %s", esp_err_to_name(err));
        return IOTD_EIO;
    }
    u->has_handle = true;
    return IOTD_OK;
}

/* Erases whole sectors from the resume offset to the end of the image:
 * the part of a chunk written before the reset, so it can be written
 * again. Nothing when resuming at the end (the image is complete). */
static iotd_status begin_resumed(const esp_partition_t *slot, uint32_t size, uint32_t resume)
{
    uint32_t from = round_up(resume, slot->erase_size);
    uint32_t to = round_up(size, slot->erase_size);

    if (to <= from)
        return IOTD_OK;
    esp_err_t err = esp_partition_erase_range(slot, from, to - from);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "update.slot_begin_failed: erase: %s", esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}

static iotd_status slot_begin(void *ctx, uint32_t image_size, uint32_t resume_offset)
{
    iotd_esp_update *u = ctx;
    const esp_partition_t *slot = other_slot();
    iotd_status st;

    close_slot(u);
    if (!begin_args_ok(slot, image_size, resume_offset))
        return IOTD_EINVAL;
    if (iotd_esp_update_running_on_trial())
        return IOTD_ESTATE; /* as esp_ota_begin refuses: confirm the running image first */
    if (resume_offset == 0)
        st = begin_new(u, slot, image_size);
    else
        st = begin_resumed(slot, image_size, resume_offset);
    if (st != IOTD_OK)
        return st;
    u->slot = slot;
    u->image_size = image_size;
    u->slot_open = true;
    return IOTD_OK;
}

static iotd_status slot_write(void *ctx, uint32_t offset, const void *data, size_t len)
{
    iotd_esp_update *u = ctx;
    esp_err_t err;

    if (!u->slot_open)
        return IOTD_ESTATE;
    if (offset > u->image_size || len > u->image_size - offset)
        return IOTD_EINVAL;
    if (len == 0)
        return IOTD_OK;
    if (u->has_handle)
        err = esp_ota_write_with_offset(u->handle, data, len, offset);
    else
        err = esp_partition_write(u->slot, offset, data, len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "update.slot_write_failed: at %u: %s", (unsigned)offset,
                 esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}

static iotd_status slot_read(void *ctx, uint32_t offset, void *buf, size_t len)
{
    iotd_esp_update *u = ctx;
    const esp_partition_t *slot = u->slot_open ? u->slot : other_slot();

    if (slot == NULL || offset > slot->size || len > slot->size - offset)
        return IOTD_EINVAL;
    /* Decrypts when the slot is encrypted, as it was encrypted on writing. */
    esp_err_t err = esp_partition_read(slot, offset, buf, len);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "update.slot_read_failed: at %u: %s", (unsigned)offset, esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}

/* The image checks of esp_ota_end and esp_ota_set_boot_partition are the
 * platform's verdict on the image; anything else is a failure to act. */
static iotd_status image_status(const char *what, esp_err_t err)
{
    if (err == ESP_OK)
        return IOTD_OK;
    ESP_LOGE(TAG, "update.activate_failed: %s: %s", what, esp_err_to_name(err));
    if (err == ESP_ERR_OTA_VALIDATE_FAILED || err == ESP_ERR_OTA_SMALL_SEC_VER)
        return IOTD_ECORRUPT;
    return IOTD_EIO;
}

static iotd_status slot_activate(void *ctx)
{
    iotd_esp_update *u = ctx;
    iotd_status st = IOTD_ESTATE;

    if (!u->slot_open)
        goto out;
    u->slot_open = false;
    if (u->has_handle) {
        /* Frees the handle whatever it returns. */
        u->has_handle = false;
        st = image_status("esp_ota_end", esp_ota_end(u->handle));
        if (st != IOTD_OK)
            goto out;
    }
    /* ESP_ERR_OTA_SMALL_SEC_VER: the image's secure version is below the
     * eFuse floor; ESP-IDF has erased the slot. */
    st = image_status("esp_ota_set_boot_partition", esp_ota_set_boot_partition(u->slot));
out:
    return st;
}

/* ---- the running image ------------------------------------------------------------ */

static bool on_trial(void *ctx)
{
    (void)ctx;
    return iotd_esp_update_running_on_trial();
}

static iotd_status confirm(void *ctx)
{
    (void)ctx;
    /* Also raises the eFuse secure-version floor to this image's (with
     * anti-rollback), once the otadata entry says valid. */
    esp_err_t err = esp_ota_mark_app_valid_cancel_rollback();
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "update.confirm_failed: %s", esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}

iotd_status iotd_esp_update_roll_back(void)
{
    /* Restarts into the previous image on success. */
    esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot();
    if (err == ESP_OK)
        return IOTD_OK;
    ESP_LOGE(TAG, "update.reject_failed: %s", esp_err_to_name(err));
    return err == ESP_ERR_OTA_ROLLBACK_FAILED ? IOTD_ESTATE : IOTD_EIO;
}

static iotd_status reject(void *ctx)
{
    (void)ctx;
    return iotd_esp_update_roll_back();
}

static iotd_status copy_info(const esp_app_desc_t *d, iotd_fw_info *out)
{
    const char *end = memchr(d->version, '\0', sizeof(d->version));

    if (end == NULL || (size_t)(end - d->version) > IOTD_MANIFEST_FW_VERSION_MAX)
        return IOTD_EIO;
    memcpy(out->version, d->version, (size_t)(end - d->version) + 1u);
    out->secure_version = d->secure_version;
    return IOTD_OK;
}

/* The other slot's image: none while it is being written, nor one the
 * bootloader or a self-test has given up on. */
static iotd_status previous_info(const iotd_esp_update *u, iotd_fw_info *out)
{
    const esp_partition_t *slot = other_slot();
    esp_ota_img_states_t state;
    esp_app_desc_t d;

    if (slot == NULL || u->slot_open)
        return IOTD_ENOENT;
    if (esp_ota_get_state_partition(slot, &state) == ESP_OK &&
        (state == ESP_OTA_IMG_INVALID || state == ESP_OTA_IMG_ABORTED))
        return IOTD_ENOENT;
    esp_err_t err = esp_ota_get_partition_description(slot, &d);
    if (err == ESP_ERR_NOT_FOUND)
        return IOTD_ENOENT;
    if (err != ESP_OK)
        return IOTD_EIO;
    return copy_info(&d, out);
}

static iotd_status fw_info(void *ctx, bool previous, iotd_fw_info *out)
{
    iotd_esp_update *u = ctx;

    memset(out, 0, sizeof(*out));
    if (previous)
        return previous_info(u, out);
    /* version is PROJECT_VER; secure_version is
     * CONFIG_BOOTLOADER_APP_SECURE_VERSION (0 without anti-rollback). */
    return copy_info(esp_app_get_description(), out);
}

/* ---- the network and SHA-256 ------------------------------------------------------ */

static iotd_status https_get(void *ctx, const char *path, uint32_t range_start, uint32_t range_len,
                             void *buf, size_t cap, iotd_get_result *result)
{
    iotd_esp_update *u = ctx;

    return iotd_esp_https_get(u->esp, path, range_start, range_len, buf, cap, result);
}

static void sha_drop(iotd_esp_update *u)
{
    if (u->sha_active)
        mbedtls_sha256_free(&u->sha);
    u->sha_active = false;
}

static iotd_status sha256_begin(void *ctx)
{
    iotd_esp_update *u = ctx;

    sha_drop(u);
    mbedtls_sha256_init(&u->sha);
    u->sha_active = true;
    if (mbedtls_sha256_starts(&u->sha, 0) != 0) {
        sha_drop(u);
        return IOTD_EIO;
    }
    return IOTD_OK;
}

static iotd_status sha256_update(void *ctx, const void *data, size_t len)
{
    iotd_esp_update *u = ctx;

    if (!u->sha_active)
        return IOTD_EIO;
    if (mbedtls_sha256_update(&u->sha, data, len) != 0) {
        sha_drop(u);
        return IOTD_EIO;
    }
    return IOTD_OK;
}

static iotd_status sha256_finish(void *ctx, uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    iotd_esp_update *u = ctx;

    if (!u->sha_active)
        return IOTD_EIO;
    int rc = mbedtls_sha256_finish(&u->sha, out);
    sha_drop(u);
    return rc == 0 ? IOTD_OK : IOTD_EIO;
}

iotd_status iotd_esp_update_init(iotd_esp_update *u, iotd_esp *esp, iotd_update_port *port)
{
    memset(u, 0, sizeof(*u));
    memset(port, 0, sizeof(*port));
    if (other_slot() == NULL) {
        ESP_LOGE(TAG, "update.no_slot: the partition table has no OTA app slot besides the "
                      "running app (firmware/esp32/partitions.csv has two)");
        return IOTD_EINVAL;
    }
    u->esp = esp;
    port->ctx = u;
    port->slot_capacity = slot_capacity;
    port->slot_begin = slot_begin;
    port->slot_write = slot_write;
    port->slot_read = slot_read;
    port->slot_activate = slot_activate;
    port->on_trial = on_trial;
    port->confirm = confirm;
    port->reject = reject;
    port->fw_info = fw_info;
    port->https_get = https_get;
    port->sha256_begin = sha256_begin;
    port->sha256_update = sha256_update;
    port->sha256_finish = sha256_finish;
    return IOTD_OK;
}
