/* Sensors for the core's sensor table (iotd_sensor rows): the chip's own
 * temperature sensor and a Bosch BME280 on I2C.
 *
 * Each read function matches iotd_sensor_read_fn and takes the sensor
 * object as ctx. Values are fixed point, as the core wants them.
 */
#ifndef IOTD_ESP_SENSORS_H
#define IOTD_ESP_SENSORS_H

#include <stdbool.h>
#include <stdint.h>

#include "iotd/port.h"
#include "iotd/status.h"
#include "iotd_esp/bme280_comp.h"

/* ---- The internal temperature sensor (driver/temperature_sensor.h) ----
 * Present on the ESP32-S2, -S3, -C2, -C3, -C6 and -H2, not on the original
 * ESP32 (SOC_TEMP_SENSOR_SUPPORTED; the component builds tsens.c only
 * where it is set). It measures the die, which runs warmer than the air
 * around it while the radio is on: a health value, not a room temperature. */

typedef struct iotd_esp_tsens {
    void *handle; /* temperature_sensor_handle_t */
} iotd_esp_tsens;

/* Installs and enables the sensor for -10..80 degC. IOTD_EIO on failure. */
iotd_status iotd_esp_tsens_open(iotd_esp_tsens *t);

/* Degrees Celsius in tenths ({mantissa, -1}); unit "Cel". */
iotd_status iotd_esp_tsens_read(void *ctx, iotd_value *out);

/* ---- BME280 on I2C (driver/i2c_master.h, ESP-IDF 5.2 and later) ----
 * Forced mode, oversampling x1 on every channel: the sensor sleeps between
 * readings. One measurement serves the three rows of a reading: a read
 * function measures again only when the last measurement is older than
 * IOTD_ESP_BME280_FRESH_MS, so temperature, humidity and pressure of a
 * reading belong together whatever their order in the table. */

#define IOTD_ESP_BME280_FRESH_MS 500

typedef struct iotd_esp_bme280_config {
    int i2c_port; /* I2C controller, 0 on single-controller chips */
    int sda_gpio; /* GPIO numbers */
    int scl_gpio;
    uint8_t address; /* 0x76 (SDO to GND) or 0x77 (SDO to VDDIO) */
    uint32_t scl_hz; /* 100000 is safe with the usual breakout boards */
    bool pullups;    /* enable the chip's weak pull-ups (boards usually have their own) */
} iotd_esp_bme280_config;

typedef struct iotd_esp_bme280 {
    iotd_esp_bme280_config cfg;
    void *bus;  /* i2c_master_bus_handle_t */
    void *dev;  /* i2c_master_dev_handle_t */
    bool ready; /* calibration read: the sensor answered as a BME280 */
    iotd_esp_bme280_calib calib;
    bool have_sample;
    uint64_t sampled_ms; /* esp_timer time of the last measurement */
    int32_t t_fine;
    iotd_esp_bme280_raw raw;
} iotd_esp_bme280;

/* Creates the I2C bus and device and reads the calibration. When the sensor
 * does not answer (absent, wrong address, a BMP280) it returns IOTD_EIO but
 * keeps the bus: each later read tries to find the sensor again. IOTD_EINVAL
 * when the bus itself cannot be created (bad pins or port). */
iotd_status iotd_esp_bme280_open(iotd_esp_bme280 *b, const iotd_esp_bme280_config *cfg);

/* Hundredths of a degree Celsius ({mantissa, -2}), unit "Cel". */
iotd_status iotd_esp_bme280_read_temperature(void *ctx, iotd_value *out);

/* Hundredths of a percent relative humidity ({mantissa, -2}), unit "%RH". */
iotd_status iotd_esp_bme280_read_humidity(void *ctx, iotd_value *out);

/* Tenths of a pascal ({mantissa, -1}), unit "Pa". */
iotd_status iotd_esp_bme280_read_pressure(void *ctx, iotd_value *out);

#endif
