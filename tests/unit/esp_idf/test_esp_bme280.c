/* The ESP-IDF port's BME280 compensation against the datasheet: Bosch's
 * worked example (BMP280 datasheet section 3.12, the same temperature and
 * pressure formulas) and, over the whole input range, the floating-point
 * formulas of the BME280 datasheet (section 8.1) written out here
 * independently of the integer code under test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "iotd_esp/bme280_comp.h"

/* The calibration of the datasheet's worked example, plus typical humidity
 * trimming values. */
static iotd_esp_bme280_calib example(void)
{
    iotd_esp_bme280_calib c = {
        .t1 = 27504,
        .t2 = 26435,
        .t3 = -1000,
        .p1 = 36477,
        .p2 = -10685,
        .p3 = 3024,
        .p4 = 2855,
        .p5 = 140,
        .p6 = -7,
        .p7 = 15500,
        .p8 = -14600,
        .p9 = 6000,
        .h1 = 75,
        .h2 = 370,
        .h3 = 0,
        .h4 = 301,
        .h5 = 50,
        .h6 = 30,
    };
    return c;
}

/* BME280 datasheet section 8.1, double precision. */
static double ref_temp(const iotd_esp_bme280_calib *c, int32_t adc_t, double *t_fine)
{
    double v1 = ((double)adc_t / 16384.0 - (double)c->t1 / 1024.0) * (double)c->t2;
    double d = (double)adc_t / 131072.0 - (double)c->t1 / 8192.0;
    double v2 = d * d * (double)c->t3;
    *t_fine = v1 + v2;
    return (v1 + v2) / 5120.0;
}

static double ref_press(const iotd_esp_bme280_calib *c, int32_t adc_p, double t_fine)
{
    double v1 = t_fine / 2.0 - 64000.0;
    double v2 = v1 * v1 * (double)c->p6 / 32768.0;
    v2 = v2 + v1 * (double)c->p5 * 2.0;
    v2 = v2 / 4.0 + (double)c->p4 * 65536.0;
    v1 = ((double)c->p3 * v1 * v1 / 524288.0 + (double)c->p2 * v1) / 524288.0;
    v1 = (1.0 + v1 / 32768.0) * (double)c->p1;
    double p = 1048576.0 - (double)adc_p;
    p = (p - v2 / 4096.0) * 6250.0 / v1;
    v1 = (double)c->p9 * p * p / 2147483648.0;
    v2 = p * (double)c->p8 / 32768.0;
    return p + (v1 + v2 + (double)c->p7) / 16.0;
}

static double ref_hum(const iotd_esp_bme280_calib *c, int32_t adc_h, double t_fine)
{
    double h = t_fine - 76800.0;
    h = ((double)adc_h - ((double)c->h4 * 64.0 + (double)c->h5 / 16384.0 * h)) *
        ((double)c->h2 / 65536.0 *
         (1.0 + (double)c->h6 / 67108864.0 * h * (1.0 + (double)c->h3 / 67108864.0 * h)));
    h = h * (1.0 - (double)c->h1 * h / 524288.0);
    if (h > 100.0)
        h = 100.0;
    if (h < 0.0)
        h = 0.0;
    return h;
}

static double absd(double x)
{
    return x < 0 ? -x : x;
}

static void datasheet_example(void **state)
{
    (void)state;
    iotd_esp_bme280_calib c = example();
    int32_t t_fine = 0;
    uint32_t p = 0;

    assert_int_equal(iotd_esp_bme280_temp(&c, 519888, &t_fine), 2508); /* 25.08 degC */
    assert_int_equal(t_fine, 128422);
    assert_true(iotd_esp_bme280_press(&c, 415148, t_fine, &p));
    /* The datasheet prints 25767236 (100653.27 Pa, the floating-point
     * result); the 64-bit integer formula lands within 0.02 Pa of it. */
    assert_in_range(p, 25767236 - 8, 25767236 + 8);
}

static void parses_registers(void **state)
{
    (void)state;
    /* dig_T1 = 27504 (0x6B70), dig_T2 = 26435 (0x6743), dig_T3 = -1000
     * (0xFC18), dig_P1 = 36477 (0x8E7D), dig_P9 = 6000 (0x1770), dig_H1 = 75. */
    uint8_t tp[IOTD_ESP_BME280_CALIB_TP_LEN] = {0x70, 0x6B, 0x43, 0x67, 0x18, 0xFC, 0x7D, 0x8E};
    tp[22] = 0x70;
    tp[23] = 0x17;
    tp[25] = 75;
    /* dig_H2 = 370, dig_H3 = 0, dig_H4 = -349 (0xEA3), dig_H5 = -30 (0xFE2),
     * dig_H6 = -2: 0xE5 holds H4's low nibble (3) and H5's (2). */
    const uint8_t h[IOTD_ESP_BME280_CALIB_H_LEN] = {0x72, 0x01, 0x00, 0xEA, 0x23, 0xFE, 0xFE};
    iotd_esp_bme280_calib c;

    iotd_esp_bme280_calib_parse(&c, tp, h);
    assert_int_equal(c.t1, 27504);
    assert_int_equal(c.t2, 26435);
    assert_int_equal(c.t3, -1000);
    assert_int_equal(c.p1, 36477);
    assert_int_equal(c.p9, 6000);
    assert_int_equal(c.h1, 75);
    assert_int_equal(c.h2, 370);
    assert_int_equal(c.h3, 0);
    assert_int_equal(c.h4, -349);
    assert_int_equal(c.h5, -30);
    assert_int_equal(c.h6, -2);

    /* 0xF7..0xFE of the example reading: adc_P 415148, adc_T 519888, adc_H 25000. */
    const uint8_t d[IOTD_ESP_BME280_DATA_LEN] = {0x65, 0x5A, 0xC0, 0x7E, 0xED, 0x00, 0x61, 0xA8};
    iotd_esp_bme280_raw r;
    iotd_esp_bme280_raw_parse(&r, d);
    assert_int_equal(r.adc_p, 415148);
    assert_int_equal(r.adc_t, 519888);
    assert_int_equal(r.adc_h, 25000);
}

static void matches_float_formulas(void **state)
{
    (void)state;
    iotd_esp_bme280_calib cals[3] = {example(), example(), example()};
    cals[1].h2 = 363;
    cals[1].h4 = -349;
    cals[1].h5 = -30;
    cals[1].h6 = 30;
    cals[2].h1 = 0;
    cals[2].h3 = 200;
    cals[2].h6 = -20;

    for (size_t k = 0; k < 3; k++) {
        const iotd_esp_bme280_calib *c = &cals[k];
        /* adc_T from about -44 to +87 degC for this calibration. */
        for (int32_t adc_t = 300000; adc_t <= 720000; adc_t += 4200) {
            double fine_d;
            double t_ref = ref_temp(c, adc_t, &fine_d);
            int32_t fine;
            int32_t t = iotd_esp_bme280_temp(c, adc_t, &fine);
            assert_true(absd((double)t / 100.0 - t_ref) <= 0.01);
            assert_true(absd((double)fine - fine_d) <= 2.5);

            for (int32_t adc_p = 200000; adc_p <= 700000; adc_p += 25000) {
                uint32_t p;
                assert_true(iotd_esp_bme280_press(c, adc_p, fine, &p));
                assert_true(absd((double)p / 256.0 - ref_press(c, adc_p, fine_d)) <= 0.25);
            }
            for (int32_t adc_h = 0; adc_h <= 65535; adc_h += 1285) {
                uint32_t h = iotd_esp_bme280_hum(c, adc_h, fine);
                assert_true(h <= 102400);
                assert_true(absd((double)h / 1024.0 - ref_hum(c, adc_h, fine_d)) <= 0.02);
            }
        }
    }
}

static void converts_to_device_units(void **state)
{
    (void)state;
    /* The datasheet's own examples: 24674867 / 256 = 96386.2 Pa and
     * 47445 / 1024 = 46.333 %RH. */
    assert_int_equal(iotd_esp_bme280_pa_tenths(24674867), 963862);
    assert_int_equal(iotd_esp_bme280_rh_hundredths(47445), 4633);
    assert_int_equal(iotd_esp_bme280_rh_hundredths(102400), 10000); /* 100.00 %RH */
    assert_int_equal(iotd_esp_bme280_rh_hundredths(0), 0);
    assert_int_equal(iotd_esp_bme280_pa_tenths(UINT32_MAX), 167772160); /* no overflow */
}

static void humidity_is_clamped(void **state)
{
    (void)state;
    iotd_esp_bme280_calib c = example();
    int32_t fine;

    (void)iotd_esp_bme280_temp(&c, 519888, &fine);
    assert_int_equal(iotd_esp_bme280_hum(&c, 0, fine), 0);
    assert_int_equal(iotd_esp_bme280_hum(&c, 0xFFFF, fine), 102400); /* 100 %RH */
}

static void garbage_is_refused_not_undefined(void **state)
{
    (void)state;
    iotd_esp_bme280_calib c = example();
    int32_t fine;
    uint32_t p = 0;

    (void)iotd_esp_bme280_temp(&c, 519888, &fine);
    c.p1 = 0; /* the datasheet's division-by-zero case */
    assert_false(iotd_esp_bme280_press(&c, 415148, fine, &p));
    assert_false(iotd_esp_bme280_press(&c, 0x100000, fine, &p)); /* not 20 bits */

    /* A bus that reads all ones: nothing may overflow (UBSan checks this
     * run); pressure is refused or finite, humidity stays in range. */
    uint8_t ones[IOTD_ESP_BME280_CALIB_TP_LEN];
    uint8_t hones[IOTD_ESP_BME280_CALIB_H_LEN];
    memset(ones, 0xFF, sizeof(ones));
    memset(hones, 0xFF, sizeof(hones));
    iotd_esp_bme280_calib_parse(&c, ones, hones);
    for (int32_t adc = 0; adc <= 0xFFFFF; adc += 0x3FFF) {
        (void)iotd_esp_bme280_temp(&c, adc, &fine);
        (void)iotd_esp_bme280_press(&c, adc, fine, &p);
        assert_true(iotd_esp_bme280_hum(&c, adc & 0xFFFF, fine) <= 102400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(datasheet_example),
        cmocka_unit_test(parses_registers),
        cmocka_unit_test(matches_float_formulas),
        cmocka_unit_test(converts_to_device_units),
        cmocka_unit_test(humidity_is_clamped),
        cmocka_unit_test(garbage_is_refused_not_undefined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
