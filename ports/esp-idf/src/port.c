/* Port set-up and the small services: randomness, log. The clock is in
 * clock.c, so the HTTPS client can read it without depending on this file,
 * which depends on the HTTPS client. */
#include "iotd_esp/port.h"

#include <string.h>

#include "esp_log.h"
#include "esp_random.h"
#include "iotd_esp/session.h"

#include "port_internal.h"
#include "text.h"

static const char *TAG = "iotd";

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool config_is_valid(const iotd_esp_config *cfg)
{
    if (cfg->gateway_url == NULL || !starts_with(cfg->gateway_url, "https://") ||
        strlen(cfg->gateway_url) >= IOTD_ESP_URL_MAX / 2)
        return false;
    if (cfg->ca_pem == NULL || cfg->ca_pem[0] == '\0' || cfg->cert_pem == NULL ||
        cfg->cert_pem[0] == '\0' || cfg->key_pem == NULL || cfg->key_pem[0] == '\0')
        return false;
    /* An NVS namespace is at most 15 characters. */
    return cfg->kv_namespace != NULL && cfg->kv_namespace[0] != '\0' &&
           strlen(cfg->kv_namespace) <= 15 && cfg->timeout_ms > 0;
}

iotd_status iotd_esp_init(iotd_esp *esp, const iotd_esp_config *cfg, iotd_port *port)
{
    iotd_status st = IOTD_EINVAL;

    memset(esp, 0, sizeof(*esp));
    memset(port, 0, sizeof(*port));
    if (!config_is_valid(cfg)) {
        ESP_LOGE(TAG, "port.config_invalid: the gateway URL must be https:// and the CA, "
                      "certificate and key must be present");
        goto out;
    }
    esp->base_url = cfg->gateway_url;
    esp->reuse_idle_ms = cfg->reuse_idle_ms;
    esp->uptime_base_ms = cfg->uptime_base_ms;

    st = IOTD_EIO;
    esp_err_t err = nvs_open(cfg->kv_namespace, NVS_READWRITE, &esp->kv);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "kv.open_failed: NVS namespace %s: %s", cfg->kv_namespace,
                 esp_err_to_name(err));
        goto out;
    }
    esp->kv_open = true;
    if (iotd_esp__http_create(esp, cfg) != IOTD_OK)
        goto out;

    port->ctx = esp;
    port->https_post = iotd_esp_https_post;
    port->wall_time = iotd_esp_wall_time;
    port->uptime_ms = iotd_esp_uptime_ms;
    port->sleep_ms = iotd_esp_sleep_ms;
    port->kv_get = iotd_esp_kv_get;
    port->kv_set = iotd_esp_kv_set;
    port->random_u32 = iotd_esp_random_u32;
    port->log = iotd_esp_log;
    st = IOTD_OK;
out:
    if (st != IOTD_OK)
        iotd_esp_deinit(esp);
    return st;
}

iotd_status iotd_esp_set_identity(iotd_esp *esp, const iotd_esp_config *cfg)
{
    if (!config_is_valid(cfg)) {
        ESP_LOGE(TAG, "port.config_invalid: the new identity needs a certificate and a key");
        return IOTD_EINVAL;
    }
    iotd_esp_disconnect(esp);
    iotd_esp__http_destroy(esp);
    /* The old certificate's session is never offered again (its binding
     * no longer matches); erased at once all the same. */
    iotd_esp_session_erase();
    esp->base_url = cfg->gateway_url;
    return iotd_esp__http_create(esp, cfg);
}

void iotd_esp_deinit(iotd_esp *esp)
{
    iotd_esp__http_destroy(esp);
    if (esp->kv_open) {
        nvs_close(esp->kv);
        esp->kv_open = false;
    }
}

uint32_t iotd_esp_random_u32(void *ctx)
{
    (void)ctx;
    /* Jitter only; with Wi-Fi on the RNG is true random anyway. */
    return esp_random();
}

void iotd_esp_log(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    (void)ctx;
    char safe[IOTD_ESP_LOG_MSG_MAX];

    iotd_esp__escape(msg, safe, sizeof(safe));
    switch (level) {
    case IOTD_LOG_ERROR:
        ESP_LOGE(TAG, "%s: %s", event, safe);
        break;
    case IOTD_LOG_WARN:
        ESP_LOGW(TAG, "%s: %s", event, safe);
        break;
    case IOTD_LOG_INFO:
        ESP_LOGI(TAG, "%s: %s", event, safe);
        break;
    case IOTD_LOG_DEBUG:
        ESP_LOGD(TAG, "%s: %s", event, safe);
        break;
    }
}
