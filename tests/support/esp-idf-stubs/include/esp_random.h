/* Stand-in for ESP-IDF esp_random.h (components/esp_hw_support). */
#pragma once
#include <stddef.h>
#include <stdint.h>

uint32_t esp_random(void);
void esp_fill_random(void *buf, size_t len);
