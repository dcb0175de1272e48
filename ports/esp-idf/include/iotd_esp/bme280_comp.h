/* BME280 calibration decoding and compensation, in integer arithmetic.
 *
 * The formulas are Bosch's (BME280 datasheet BST-BME280-DS002, section 4.2.3
 * "Compensation formulas" and section 4.2.2 "Trimming parameter readout"):
 * the 32-bit temperature and humidity and the 64-bit pressure variants. They
 * are evaluated here with 64-bit intermediates and an explicit floor shift,
 * so the results equal the datasheet's for every value a working sensor
 * produces, while garbage from a bad bus read cannot overflow (undefined
 * behaviour) but is reported as an error. No ESP-IDF dependency: the host
 * tests build this file as it is.
 */
#ifndef IOTD_ESP_BME280_COMP_H
#define IOTD_ESP_BME280_COMP_H

#include <stdbool.h>
#include <stdint.h>

#define IOTD_ESP_BME280_CALIB_TP_REG 0x88 /* dig_T1 .. dig_H1: 26 bytes */
#define IOTD_ESP_BME280_CALIB_TP_LEN 26
#define IOTD_ESP_BME280_CALIB_H_REG  0xE1 /* dig_H2 .. dig_H6: 7 bytes */
#define IOTD_ESP_BME280_CALIB_H_LEN  7
#define IOTD_ESP_BME280_DATA_REG     0xF7 /* press, temp, hum: 8 bytes */
#define IOTD_ESP_BME280_DATA_LEN     8

typedef struct iotd_esp_bme280_calib {
    uint16_t t1;
    int16_t t2, t3;
    uint16_t p1;
    int16_t p2, p3, p4, p5, p6, p7, p8, p9;
    uint8_t h1;
    int16_t h2;
    uint8_t h3;
    int16_t h4, h5; /* 12-bit signed values spread over three registers */
    int8_t h6;
} iotd_esp_bme280_calib;

typedef struct iotd_esp_bme280_raw {
    int32_t adc_p; /* 20 bits; 0x80000 when the measurement was skipped */
    int32_t adc_t; /* 20 bits; 0x80000 when skipped */
    int32_t adc_h; /* 16 bits; 0x8000 when skipped */
} iotd_esp_bme280_raw;

void iotd_esp_bme280_calib_parse(iotd_esp_bme280_calib *c,
                                 const uint8_t tp[IOTD_ESP_BME280_CALIB_TP_LEN],
                                 const uint8_t h[IOTD_ESP_BME280_CALIB_H_LEN]);

void iotd_esp_bme280_raw_parse(iotd_esp_bme280_raw *r,
                               const uint8_t data[IOTD_ESP_BME280_DATA_LEN]);

/* Temperature in 0.01 degC (2508 is 25.08 degC); *t_fine receives the fine
 * temperature the pressure and humidity formulas need. */
int32_t iotd_esp_bme280_temp(const iotd_esp_bme280_calib *c, int32_t adc_t, int32_t *t_fine);

/* Pressure in Pa as unsigned Q24.8 (25767233 is 100653.25 Pa). False when
 * the calibration divides by zero or the arithmetic would overflow: the
 * calibration or the reading is not from a working sensor. */
bool iotd_esp_bme280_press(const iotd_esp_bme280_calib *c, int32_t adc_p, int32_t t_fine,
                           uint32_t *q24_8);

/* Relative humidity in %RH as unsigned Q22.10 (47445 is 46.333 %RH),
 * clamped to 0..100 %RH as the datasheet does. */
uint32_t iotd_esp_bme280_hum(const iotd_esp_bme280_calib *c, int32_t adc_h, int32_t t_fine);

/* Q24.8 Pa to tenths of a pascal, and Q22.10 %RH to hundredths of a
 * percent, rounded to nearest: the mantissas the device sends. */
int32_t iotd_esp_bme280_pa_tenths(uint32_t q24_8);
int32_t iotd_esp_bme280_rh_hundredths(uint32_t q22_10);

#endif
