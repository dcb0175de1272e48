/* See iotd_esp/health.h. */
#include "iotd_esp/health.h"

#include <string.h>

#include "esp_app_desc.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "mbedtls/x509_crt.h"

#include "iotd_mbedtls/cred_crypto.h"

#define BOOT_KEY "boot.count"

const char *iotd_esp_reset_reason_name(int reason)
{
    switch ((esp_reset_reason_t)reason) {
    case ESP_RST_POWERON:
        return IOTD_RESET_POWER_ON;
    case ESP_RST_SW:
        return IOTD_RESET_SOFTWARE;
    case ESP_RST_DEEPSLEEP:
        return IOTD_RESET_DEEP_SLEEP;
    case ESP_RST_EXT:
        return IOTD_RESET_EXTERNAL;
    case ESP_RST_PANIC:
        return IOTD_RESET_PANIC;
    case ESP_RST_INT_WDT:
    case ESP_RST_TASK_WDT:
    case ESP_RST_WDT:
        return IOTD_RESET_WATCHDOG;
    case ESP_RST_BROWNOUT:
        return IOTD_RESET_BROWNOUT;
    default:
        return IOTD_RESET_UNKNOWN;
    }
}

void iotd_esp_health_open(iotd_esp_health *h, iotd_esp *esp, const char *cert_pem)
{
    uint8_t b[4] = {0};
    size_t len = 0;
    uint32_t n = 0;
    if (iotd_esp_kv_get(esp, BOOT_KEY, b, sizeof(b), &len) == IOTD_OK && len == sizeof(b))
        n = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    n++;
    b[0] = (uint8_t)n;
    b[1] = (uint8_t)(n >> 8);
    b[2] = (uint8_t)(n >> 16);
    b[3] = (uint8_t)(n >> 24);
    (void)iotd_esp_kv_set(esp, BOOT_KEY, b, sizeof(b));
    h->boot_count = n;
    h->reset_reason = iotd_esp_reset_reason_name((int)esp_reset_reason());
    h->cert_pem = cert_pem;
}

static int64_t not_after(const char *pem)
{
    mbedtls_x509_crt crt;
    iotd_cert_info info = {0, 0};
    if (pem == NULL)
        return 0;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)pem, strlen(pem) + 1u) == 0 &&
        iotd_mbedtls_cert_validity(crt.raw.p, crt.raw.len, &info) != IOTD_OK)
        info.not_after = 0;
    mbedtls_x509_crt_free(&crt);
    return info.not_after;
}

void iotd_esp_health_fill(void *ctx, iotd_health_info *out)
{
    const iotd_esp_health *h = ctx;
    const esp_app_desc_t *app = esp_app_get_description();
    out->firmware = app->version;
    out->secure_version = app->secure_version;
    out->boot_count = h->boot_count;
    out->reset_reason = h->reset_reason;
    out->heap_min = (int64_t)esp_get_minimum_free_heap_size();
    out->cert_not_after = not_after(h->cert_pem);
    const esp_partition_t *running = esp_ota_get_running_partition();
    out->slot = running != NULL ? running->label : NULL;
}
