/* A Bosch BME280 on I2C, in forced mode (BME280 datasheet BST-BME280-DS002:
 * section 5.4 registers, 3.3.3 forced mode, 9.1 measurement time).
 *
 * Uses the I2C master driver of ESP-IDF 5.2 (driver/i2c_master.h:
 * i2c_new_master_bus, i2c_master_bus_add_device, i2c_master_transmit,
 * i2c_master_transmit_receive). ESP-IDF 5.1 has only the legacy driver
 * (driver/i2c.h), so this file refuses to build there.
 */
#include <string.h>

#include "esp_idf_version.h"
#include "esp_log.h"
#include "esp_timer.h"
#include "driver/i2c_master.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#include "iotd_esp/sensors.h"

#if ESP_IDF_VERSION < ESP_IDF_VERSION_VAL(5, 2, 0)
#error "the BME280 option needs the I2C master driver of ESP-IDF 5.2 or later"
#endif

static const char *TAG = "iotd";

#define REG_CHIP_ID   0xD0
#define REG_RESET     0xE0
#define REG_CTRL_HUM  0xF2
#define REG_STATUS    0xF3
#define REG_CTRL_MEAS 0xF4
#define REG_CONFIG    0xF5

#define CHIP_ID_BME280   0x60 /* a BMP280 answers 0x56..0x58 and has no humidity */
#define RESET_WORD       0xB6
#define STATUS_MEASURING 0x08
#define STATUS_IM_UPDATE 0x01
/* osrs_h = x1; osrs_t = x1, osrs_p = x1, mode = forced (01). */
#define CTRL_HUM_X1         0x01
#define CTRL_MEAS_X1_FORCED ((1u << 5) | (1u << 2) | 0x01u)

#define SKIPPED_20BIT 0x80000 /* the value a skipped temperature or pressure reads */
#define SKIPPED_16BIT 0x8000

#define XFER_TIMEOUT_MS 50
/* 9.3 ms at most for x1/x1/x1 (datasheet 9.1); polled in 5 ms steps. */
#define MEASURE_POLLS   6
#define MEASURE_STEP_MS 5

static void wait_ms(uint32_t ms)
{
    TickType_t t = pdMS_TO_TICKS(ms);
    vTaskDelay(t > 0 ? t : 1);
}

static esp_err_t read_regs(iotd_esp_bme280 *b, uint8_t reg, uint8_t *buf, size_t len)
{
    return i2c_master_transmit_receive((i2c_master_dev_handle_t)b->dev, &reg, 1, buf, len,
                                       XFER_TIMEOUT_MS);
}

static esp_err_t write_reg(iotd_esp_bme280 *b, uint8_t reg, uint8_t value)
{
    const uint8_t msg[2] = {reg, value};
    return i2c_master_transmit((i2c_master_dev_handle_t)b->dev, msg, sizeof(msg), XFER_TIMEOUT_MS);
}

/* Identifies the chip, resets it and reads its calibration. */
static iotd_status find_sensor(iotd_esp_bme280 *b)
{
    uint8_t id = 0, status = STATUS_IM_UPDATE;
    uint8_t tp[IOTD_ESP_BME280_CALIB_TP_LEN], h[IOTD_ESP_BME280_CALIB_H_LEN];

    b->ready = false;
    if (read_regs(b, REG_CHIP_ID, &id, 1) != ESP_OK || id != CHIP_ID_BME280)
        return IOTD_EIO;
    if (write_reg(b, REG_RESET, RESET_WORD) != ESP_OK)
        return IOTD_EIO;
    /* Start-up takes 2 ms; the calibration is copied from NVM meanwhile. */
    for (int i = 0; i < MEASURE_POLLS && (status & STATUS_IM_UPDATE) != 0; i++) {
        wait_ms(MEASURE_STEP_MS);
        if (read_regs(b, REG_STATUS, &status, 1) != ESP_OK)
            return IOTD_EIO;
    }
    if ((status & STATUS_IM_UPDATE) != 0 ||
        read_regs(b, IOTD_ESP_BME280_CALIB_TP_REG, tp, sizeof(tp)) != ESP_OK ||
        read_regs(b, IOTD_ESP_BME280_CALIB_H_REG, h, sizeof(h)) != ESP_OK ||
        write_reg(b, REG_CONFIG, 0x00) != ESP_OK) /* no IIR filter: each reading stands alone */
        return IOTD_EIO;
    iotd_esp_bme280_calib_parse(&b->calib, tp, h);
    b->ready = true;
    return IOTD_OK;
}

iotd_status iotd_esp_bme280_open(iotd_esp_bme280 *b, const iotd_esp_bme280_config *cfg)
{
    i2c_master_bus_handle_t bus = NULL;
    i2c_master_dev_handle_t dev = NULL;
    iotd_status st;

    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    const i2c_master_bus_config_t bus_cfg = {
        .i2c_port = cfg->i2c_port,
        .sda_io_num = (gpio_num_t)cfg->sda_gpio,
        .scl_io_num = (gpio_num_t)cfg->scl_gpio,
        .clk_source = I2C_CLK_SRC_DEFAULT,
        .glitch_ignore_cnt = 7,
        .flags.enable_internal_pullup = cfg->pullups,
    };
    const i2c_device_config_t dev_cfg = {
        .dev_addr_length = I2C_ADDR_BIT_LEN_7,
        .device_address = cfg->address,
        .scl_speed_hz = cfg->scl_hz,
    };
    esp_err_t err = i2c_new_master_bus(&bus_cfg, &bus);
    if (err != ESP_OK)
        goto out;
    err = i2c_master_bus_add_device(bus, &dev_cfg, &dev);
    if (err != ESP_OK)
        (void)i2c_del_master_bus(bus);
out:
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "sensor.bme280_bus_failed: I2C port %d, SDA %d, SCL %d: %s", cfg->i2c_port,
                 cfg->sda_gpio, cfg->scl_gpio, esp_err_to_name(err));
        return IOTD_EINVAL;
    }
    b->bus = bus;
    b->dev = dev;
    st = find_sensor(b);
    if (st != IOTD_OK)
        ESP_LOGW(TAG, "sensor.bme280_absent: no BME280 at address 0x%02x; retrying at each reading",
                 (unsigned)cfg->address);
    return st;
}

/* Starts a forced measurement and reads its data once the sensor is done;
 * false when the sensor does not answer or never finishes. */
static bool read_measurement(iotd_esp_bme280 *b, uint8_t data[IOTD_ESP_BME280_DATA_LEN])
{
    uint8_t status = STATUS_MEASURING;
    bool ok = false;

    /* ctrl_hum takes effect only with the following ctrl_meas write. */
    if (write_reg(b, REG_CTRL_HUM, CTRL_HUM_X1) != ESP_OK ||
        write_reg(b, REG_CTRL_MEAS, (uint8_t)CTRL_MEAS_X1_FORCED) != ESP_OK)
        goto out;
    for (int i = 0; i < MEASURE_POLLS && (status & STATUS_MEASURING) != 0; i++) {
        wait_ms(MEASURE_STEP_MS);
        if (read_regs(b, REG_STATUS, &status, 1) != ESP_OK)
            goto out;
    }
    ok = (status & STATUS_MEASURING) == 0 &&
         read_regs(b, IOTD_ESP_BME280_DATA_REG, data, IOTD_ESP_BME280_DATA_LEN) == ESP_OK;
out:
    return ok;
}

/* One forced measurement into b->raw and b->t_fine. */
static iotd_status measure(iotd_esp_bme280 *b)
{
    uint8_t data[IOTD_ESP_BME280_DATA_LEN];

    b->have_sample = false;
    if (!b->ready && find_sensor(b) != IOTD_OK)
        return IOTD_EIO;
    if (!read_measurement(b, data)) {
        /* Unplugged or reset: identify it again before trusting the calibration. */
        b->ready = false;
        return IOTD_EIO;
    }
    iotd_esp_bme280_raw_parse(&b->raw, data);
    if (b->raw.adc_t == SKIPPED_20BIT)
        return IOTD_EIO;
    (void)iotd_esp_bme280_temp(&b->calib, b->raw.adc_t, &b->t_fine);
    b->have_sample = true;
    b->sampled_ms = (uint64_t)esp_timer_get_time() / 1000u;
    return IOTD_OK;
}

static iotd_status sample(iotd_esp_bme280 *b)
{
    uint64_t now = (uint64_t)esp_timer_get_time() / 1000u;

    if (b->have_sample && now - b->sampled_ms < IOTD_ESP_BME280_FRESH_MS)
        return IOTD_OK;
    return measure(b);
}

iotd_status iotd_esp_bme280_read_temperature(void *ctx, iotd_value *out)
{
    iotd_esp_bme280 *b = ctx;

    if (sample(b) != IOTD_OK)
        return IOTD_EIO;
    out->mantissa = iotd_esp_bme280_temp(&b->calib, b->raw.adc_t, &b->t_fine);
    out->exp10 = -2;
    return IOTD_OK;
}

iotd_status iotd_esp_bme280_read_humidity(void *ctx, iotd_value *out)
{
    iotd_esp_bme280 *b = ctx;

    if (sample(b) != IOTD_OK || b->raw.adc_h == SKIPPED_16BIT)
        return IOTD_EIO;
    out->mantissa =
        iotd_esp_bme280_rh_hundredths(iotd_esp_bme280_hum(&b->calib, b->raw.adc_h, b->t_fine));
    out->exp10 = -2;
    return IOTD_OK;
}

iotd_status iotd_esp_bme280_read_pressure(void *ctx, iotd_value *out)
{
    iotd_esp_bme280 *b = ctx;
    uint32_t q24_8;

    if (sample(b) != IOTD_OK || b->raw.adc_p == SKIPPED_20BIT ||
        !iotd_esp_bme280_press(&b->calib, b->raw.adc_p, b->t_fine, &q24_8))
        return IOTD_EIO;
    out->mantissa = iotd_esp_bme280_pa_tenths(q24_8);
    out->exp10 = -1;
    return IOTD_OK;
}
