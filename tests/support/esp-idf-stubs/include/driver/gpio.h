/* Stand-in for ESP-IDF driver/gpio.h (components/esp_driver_gpio), 5.x. */
#pragma once
#include "esp_err.h"

typedef int gpio_num_t;

typedef enum {
    GPIO_MODE_DISABLE = 0,
    GPIO_MODE_INPUT = 1,
    GPIO_MODE_OUTPUT = 2,
} gpio_mode_t;

esp_err_t gpio_reset_pin(gpio_num_t gpio_num);
esp_err_t gpio_set_direction(gpio_num_t gpio_num, gpio_mode_t mode);
esp_err_t gpio_pullup_en(gpio_num_t gpio_num);
int gpio_get_level(gpio_num_t gpio_num);
