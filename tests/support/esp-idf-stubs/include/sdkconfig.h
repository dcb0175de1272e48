/* Stand-in for the sdkconfig.h idf.py generates from Kconfig: the values
 * the sources read, at their Kconfig defaults. Booleans that are off are
 * absent, as in the generated file; the check turns them on with -D. Every
 * CONFIG_IOTD_ name here must exist in firmware/esp32/main/Kconfig.projbuild
 * (the check verifies it). */
#pragma once

#define CONFIG_LWIP_SNTP_MAX_SERVERS 1
/* firmware/esp32/sdkconfig.defaults turns it on; the port requires it. */
#define CONFIG_ESP_TLS_CLIENT_SESSION_TICKETS 1

#ifndef CONFIG_SOC_TEMP_SENSOR_SUPPORTED
#define CONFIG_SOC_TEMP_SENSOR_SUPPORTED 1
#endif

#define CONFIG_IOTD_WIFI_SSID          ""
#define CONFIG_IOTD_WIFI_PASSWORD      ""
#define CONFIG_IOTD_GATEWAY_URL        "https://gateway.example.org:8443"
#define CONFIG_IOTD_SNTP_SERVER        "pool.ntp.org"
#define CONFIG_IOTD_DEVICE_ID          ""
#define CONFIG_IOTD_SAMPLE_INTERVAL_S  60
#define CONFIG_IOTD_QUEUE_CAPACITY     128
#define CONFIG_IOTD_HTTP_TIMEOUT_MS    10000
#define CONFIG_IOTD_HTTP_REUSE_IDLE_MS 5000
#define CONFIG_IOTD_WIFI_WAIT_S        15

#ifndef CONFIG_IOTD_ENROLL
#define CONFIG_IOTD_ENROLL 1
#endif
#if CONFIG_IOTD_ENROLL
#define CONFIG_IOTD_ENROLL_BACKOFF_MAX_S 3600
#endif

#define CONFIG_IOTD_FW_TRUSTED_KEYS_FILE "trusted-keys.pem"
#define CONFIG_IOTD_FW_VENDOR_ID         "example-vendor"
#define CONFIG_IOTD_FW_CLASS_ID          "esp32-sensor"
#if !CONFIG_IOTD_FW_UPDATE_WINDOW && !CONFIG_IOTD_FW_UPDATE_OFF
#define CONFIG_IOTD_FW_UPDATE_AUTO 1
#endif
#define CONFIG_IOTD_FW_WINDOW_START_H    2
#define CONFIG_IOTD_FW_WINDOW_END_H      5
#define CONFIG_IOTD_FW_CHECK_INTERVAL_S  3600
#define CONFIG_IOTD_FW_SELF_TEST_S       300
#define CONFIG_IOTD_HEALTH_INTERVAL_S    3600
#define CONFIG_IOTD_FACTORY_RESET_GPIO   9
#define CONFIG_IOTD_FACTORY_RESET_HOLD_S 10

#if CONFIG_IOTD_DEEP_SLEEP
#define CONFIG_IOTD_DEEP_SLEEP_MIN_S 30
#endif

#if CONFIG_IOTD_BME280
#define CONFIG_IOTD_BME280_I2C_PORT 0
#define CONFIG_IOTD_BME280_SDA_GPIO 4
#define CONFIG_IOTD_BME280_SCL_GPIO 5
#define CONFIG_IOTD_BME280_ADDRESS  0x76
#endif

#if !CONFIG_IOTD_IDENTITY_EMBEDDED
#define CONFIG_IOTD_IDENTITY_NVS 1
#endif
