/* Stand-in for ESP-IDF esp_system.h (components/esp_system). */
#pragma once

void esp_restart(void) __attribute__((__noreturn__));
