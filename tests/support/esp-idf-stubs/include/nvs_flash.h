/* Stand-in for ESP-IDF nvs_flash.h (components/nvs_flash), 5.x. */
#pragma once
#include <stdint.h>
#include "esp_err.h"
#include "esp_partition.h"

#define NVS_KEY_SIZE 32

typedef struct {
    uint8_t eky[NVS_KEY_SIZE];
    uint8_t tky[NVS_KEY_SIZE];
} nvs_sec_cfg_t;

esp_err_t nvs_flash_init(void);
esp_err_t nvs_flash_init_partition(const char *partition_label);
esp_err_t nvs_flash_erase_partition(const char *part_name);
esp_err_t nvs_flash_secure_init_partition(const char *partition_label, nvs_sec_cfg_t *cfg);
esp_err_t nvs_flash_read_security_cfg(const esp_partition_t *partition, nvs_sec_cfg_t *cfg);

/* The key protection schemes of 5.1+ (NVS Security Provider). */
typedef esp_err_t (*nvs_flash_generate_keys_t)(const void *scheme_data, nvs_sec_cfg_t *cfg);
typedef esp_err_t (*nvs_flash_read_cfg_t)(const void *scheme_data, nvs_sec_cfg_t *cfg);
typedef struct {
    int scheme_id;
    void *scheme_data;
    nvs_flash_generate_keys_t nvs_flash_key_gen;
    nvs_flash_read_cfg_t nvs_flash_read_cfg;
} nvs_sec_scheme_t;

nvs_sec_scheme_t *nvs_flash_get_default_security_scheme(void);
esp_err_t nvs_flash_read_security_cfg_v2(nvs_sec_scheme_t *scheme_cfg, nvs_sec_cfg_t *cfg);
