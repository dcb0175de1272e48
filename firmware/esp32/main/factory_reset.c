/* See factory_reset.h. */
#include "factory_reset.h"

#include <stdbool.h>
#include <string.h>

#include "driver/gpio.h"
#include "esp_log.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs.h"
#include "sdkconfig.h"

#include "identity.h"
#include "iotd/reset.h"
#include "iotd_esp/port.h"
#include "iotd_esp/reset.h"

static const char *TAG = "iotd";

#define POLL_MS 100

/* The button held low for the whole hold time, from power-on. */
static bool button_held(void)
{
#if CONFIG_IOTD_FACTORY_RESET_GPIO >= 0
    const gpio_num_t pin = (gpio_num_t)CONFIG_IOTD_FACTORY_RESET_GPIO;
    gpio_reset_pin(pin);
    gpio_set_direction(pin, GPIO_MODE_INPUT);
    gpio_pullup_en(pin);
    vTaskDelay(pdMS_TO_TICKS(POLL_MS)); /* let the pull-up settle */
    if (gpio_get_level(pin) != 0)
        return false;
    ESP_LOGW(TAG, "reset.button: keep holding for %d s to erase this device",
             CONFIG_IOTD_FACTORY_RESET_HOLD_S);
    for (int t = 0; t < CONFIG_IOTD_FACTORY_RESET_HOLD_S * 1000; t += POLL_MS) {
        if (gpio_get_level(pin) != 0) {
            ESP_LOGI(TAG, "reset.cancelled: the button was released");
            return false;
        }
        vTaskDelay(pdMS_TO_TICKS(POLL_MS));
    }
    return true;
#else
    return false;
#endif
}

void factory_reset_at_boot(const char *kv_namespace)
{
    iotd_esp esp;
    memset(&esp, 0, sizeof(esp));
    if (nvs_open(kv_namespace, NVS_READWRITE, &esp.kv) != ESP_OK)
        return; /* the core reports its storage itself */
    iotd_port port;
    memset(&port, 0, sizeof(port));
    port.ctx = &esp;
    port.kv_get = iotd_esp_kv_get;
    port.kv_set = iotd_esp_kv_set;
    bool pending = iotd_factory_reset_pending(&port);
    if (pending || button_held()) {
        iotd_esp_reset r = {.cred_namespace = "cred",
                            .devkey_namespace = "devkey",
                            .identity_partition = IDENTITY_PARTITION,
                            .settings_namespace = "cfg",
                            .kv_namespace = kv_namespace};
        iotd_reset_port rp;
        iotd_esp_reset_port(&r, &rp);
        ESP_LOGW(TAG, "reset.start: %s", pending ? "finishing a reset cut short" : "button");
        iotd_status st = iotd_factory_reset(&port, &rp);
        nvs_close(esp.kv);
        if (st == IOTD_OK)
            ESP_LOGW(TAG, "reset.done: keys, certificates, readings and settings erased");
        else
            ESP_LOGE(TAG, "reset.incomplete: %s; it goes on at the next boot", iotd_strerror(st));
        esp_restart();
    }
    nvs_close(esp.kv);
}
