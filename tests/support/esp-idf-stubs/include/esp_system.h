/* Stand-in for ESP-IDF esp_system.h (components/esp_system). */
#pragma once

void esp_restart(void) __attribute__((__noreturn__));

#include <stdint.h>

typedef enum {
    ESP_RST_UNKNOWN,
    ESP_RST_POWERON,
    ESP_RST_EXT,
    ESP_RST_SW,
    ESP_RST_PANIC,
    ESP_RST_INT_WDT,
    ESP_RST_TASK_WDT,
    ESP_RST_WDT,
    ESP_RST_DEEPSLEEP,
    ESP_RST_BROWNOUT,
    ESP_RST_SDIO,
} esp_reset_reason_t;

esp_reset_reason_t esp_reset_reason(void);
uint32_t esp_get_minimum_free_heap_size(void);
