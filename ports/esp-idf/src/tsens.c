/* The chip's internal temperature sensor (driver/temperature_sensor.h,
 * ESP-IDF 5.0 and later; in 5.3 the driver moved to the esp_driver_tsens
 * component, same header and calls). */
#include "esp_log.h"
#include "driver/temperature_sensor.h"

#include "iotd_esp/sensors.h"

static const char *TAG = "iotd";

iotd_status iotd_esp_tsens_open(iotd_esp_tsens *t)
{
    /* The sensor has several ranges with different accuracy; -10..80 degC
     * covers a powered board indoors and outdoors in most climates. */
    temperature_sensor_config_t cfg = TEMPERATURE_SENSOR_CONFIG_DEFAULT(-10, 80);
    temperature_sensor_handle_t h = NULL;
    esp_err_t err = temperature_sensor_install(&cfg, &h);

    t->handle = NULL;
    if (err != ESP_OK)
        goto out;
    err = temperature_sensor_enable(h);
    if (err != ESP_OK)
        (void)temperature_sensor_uninstall(h);
out:
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "sensor.tsens_unavailable: %s", esp_err_to_name(err));
        return IOTD_EIO;
    }
    t->handle = h;
    return IOTD_OK;
}

iotd_status iotd_esp_tsens_read(void *ctx, iotd_value *out)
{
    iotd_esp_tsens *t = ctx;
    float celsius = 0.0f;

    if (t->handle == NULL ||
        temperature_sensor_get_celsius((temperature_sensor_handle_t)t->handle, &celsius) != ESP_OK)
        return IOTD_EIO;
    /* The driver hands out a float; the core takes fixed point. Anything
     * outside the configured range is a failed conversion. */
    if (!(celsius >= -10.0f && celsius <= 80.0f))
        return IOTD_EIO;
    out->mantissa = (int32_t)(celsius * 10.0f + (celsius >= 0.0f ? 0.5f : -0.5f));
    out->exp10 = -1;
    return IOTD_OK;
}
