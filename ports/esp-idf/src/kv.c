/* The core's key-value records in NVS, one namespace.
 *
 * The core needs (iotd/port.h): a set that returned IOTD_OK survives power
 * loss, and a set torn by power loss leaves that key old, new or garbage
 * but never touches another key. NVS gives more than that. It is a log of
 * CRC-checked entries: an update writes the new entry, then marks the old
 * one erased, and at start-up it completes or rolls back whatever a power
 * loss interrupted, so a key holds its old or its new value, never a mix,
 * and other keys are not rewritten ("Non-Volatile Storage Library":
 * Security, Tampering, and Robustness; Internals). nvs_commit() is called
 * after every set because the API only promises durability after it, even
 * though the current implementation writes at once.
 */
#include <string.h>

#include "esp_log.h"
#include "nvs.h"

#include "port_internal.h"

static const char *TAG = "iotd";

/* iotd/port.h: blobs of at most 64 bytes, keys of at most 15 characters
 * (NVS_KEY_NAME_MAX_SIZE - 1). */
#define KV_BLOB_MAX 64
#define KV_KEY_MAX  15

static bool key_is_valid(const char *key)
{
    size_t n = key != NULL ? strlen(key) : 0;
    return n > 0 && n <= KV_KEY_MAX;
}

iotd_status iotd_esp_kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    iotd_esp *esp = ctx;
    size_t n = cap;
    esp_err_t err;

    if (!key_is_valid(key))
        return IOTD_EINVAL;
    /* With a buffer, NVS wants a non-zero length; with cap 0 ask for the
     * size instead, so "present but larger than cap" still reads as such. */
    err = nvs_get_blob(esp->kv, key, cap > 0 ? buf : NULL, &n);
    if (err == ESP_OK && cap == 0 && n > 0)
        return IOTD_ENOSPC;
    switch (err) {
    case ESP_OK:
        *len = n;
        return IOTD_OK;
    case ESP_ERR_NVS_NOT_FOUND:
        return IOTD_ENOENT;
    case ESP_ERR_NVS_INVALID_LENGTH:
        return IOTD_ENOSPC;
    default:
        ESP_LOGE(TAG, "kv.get_failed: %s: %s", key, esp_err_to_name(err));
        return IOTD_EIO;
    }
}

iotd_status iotd_esp_kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    iotd_esp *esp = ctx;
    esp_err_t err;

    if (!key_is_valid(key) || len > KV_BLOB_MAX)
        return IOTD_EINVAL;
    err = nvs_set_blob(esp->kv, key, data, len);
    if (err != ESP_OK)
        goto out;
    err = nvs_commit(esp->kv);
out:
    if (err != ESP_OK) {
        /* ESP_ERR_NVS_NOT_ENOUGH_SPACE: the partition is too small for the
         * queue capacity configured (firmware/esp32/README.md, sizing). */
        ESP_LOGE(TAG, "kv.set_failed: %s: %s", key, esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}
