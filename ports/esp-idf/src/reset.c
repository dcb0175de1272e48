/* See iotd_esp/reset.h. NVS calls: nvs_open, nvs_erase_all, nvs_erase_key,
 * nvs_commit, nvs_entry_find/next/info, nvs_flash_erase_partition. */
#include "iotd_esp/reset.h"
#include "iotd_esp/session.h"

#include <string.h>

#include "nvs.h"
#include "nvs_flash.h"

#define KEYS_PER_PASS 16

static iotd_status erase_namespace(const char *ns)
{
    nvs_handle_t h;
    esp_err_t err = nvs_open(ns, NVS_READWRITE, &h);
    if (err == ESP_ERR_NVS_NOT_FOUND)
        return IOTD_OK; /* never written */
    if (err != ESP_OK)
        return IOTD_EIO;
    err = nvs_erase_all(h);
    if (err == ESP_OK)
        err = nvs_commit(h);
    nvs_close(h);
    return err == ESP_OK ? IOTD_OK : IOTD_EIO;
}

static iotd_status erase_credentials(void *ctx)
{
    const iotd_esp_reset *r = ctx;
    /* The TLS session, in RTC memory, was made with these credentials. */
    iotd_esp_session_erase();
    iotd_status st = erase_namespace(r->cred_namespace);
    if (st == IOTD_OK && r->devkey_namespace != NULL)
        st = erase_namespace(r->devkey_namespace);
    if (st == IOTD_OK && r->identity_partition != NULL) {
        esp_err_t err = nvs_flash_erase_partition(r->identity_partition);
        st = err == ESP_OK || err == ESP_ERR_NOT_FOUND ? IOTD_OK : IOTD_EIO;
    }
    return st;
}

static iotd_status erase_settings(void *ctx)
{
    return erase_namespace(((const iotd_esp_reset *)ctx)->settings_namespace);
}

/* Up to KEYS_PER_PASS keys of the namespace other than the marker. */
static size_t keys_left(const char *ns, char keys[KEYS_PER_PASS][NVS_KEY_NAME_MAX_SIZE])
{
    nvs_iterator_t it = NULL;
    size_t n = 0;
    esp_err_t err = nvs_entry_find(NVS_DEFAULT_PART_NAME, ns, NVS_TYPE_ANY, &it);
    while (err == ESP_OK && n < KEYS_PER_PASS) {
        nvs_entry_info_t info;
        nvs_entry_info(it, &info);
        if (strcmp(info.key, IOTD_RESET_MARKER_KEY) != 0)
            memcpy(keys[n++], info.key, NVS_KEY_NAME_MAX_SIZE);
        err = nvs_entry_next(&it);
    }
    nvs_release_iterator(it);
    return n;
}

static iotd_status erase_storage(void *ctx)
{
    const iotd_esp_reset *r = ctx;
    char keys[KEYS_PER_PASS][NVS_KEY_NAME_MAX_SIZE];
    nvs_handle_t h;
    esp_err_t err = nvs_open(r->kv_namespace, NVS_READWRITE, &h);
    if (err == ESP_ERR_NVS_NOT_FOUND)
        return IOTD_OK;
    if (err != ESP_OK)
        return IOTD_EIO;
    /* Everything but the marker, pass by pass (the iterator is not kept
     * across erasures), then the marker alone. */
    for (size_t n = keys_left(r->kv_namespace, keys); err == ESP_OK && n > 0;
         n = keys_left(r->kv_namespace, keys)) {
        for (size_t i = 0; err == ESP_OK && i < n; i++)
            err = nvs_erase_key(h, keys[i]);
        if (err == ESP_OK)
            err = nvs_commit(h);
    }
    if (err == ESP_OK) {
        err = nvs_erase_key(h, IOTD_RESET_MARKER_KEY);
        if (err == ESP_ERR_NVS_NOT_FOUND)
            err = ESP_OK;
    }
    if (err == ESP_OK)
        err = nvs_commit(h);
    nvs_close(h);
    return err == ESP_OK ? IOTD_OK : IOTD_EIO;
}

void iotd_esp_reset_port(iotd_esp_reset *r, iotd_reset_port *out)
{
    out->ctx = r;
    out->erase_credentials = erase_credentials;
    out->erase_settings = erase_settings;
    out->erase_storage = erase_storage;
}
