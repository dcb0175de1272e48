#include "iotd_esp/bme280_comp.h"

/* Floor division by 2^n, which is what the datasheet's ">>" on a signed
 * value means with every compiler Bosch targets; written out so the result
 * does not depend on the implementation-defined shift of negative values. */
static int64_t asr(int64_t v, unsigned n)
{
    if (v >= 0)
        return v >> n;
    return -((-(v + 1)) >> n) - 1;
}

static uint16_t u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static int16_t s16le(const uint8_t *p)
{
    return (int16_t)u16le(p);
}

void iotd_esp_bme280_calib_parse(iotd_esp_bme280_calib *c,
                                 const uint8_t tp[IOTD_ESP_BME280_CALIB_TP_LEN],
                                 const uint8_t h[IOTD_ESP_BME280_CALIB_H_LEN])
{
    /* Datasheet table 16: 0x88..0x9F little-endian words, 0xA0 unused,
     * 0xA1 dig_H1; 0xE1/0xE2 dig_H2, 0xE3 dig_H3, then dig_H4 = 0xE4[7:0]
     * and 0xE5[3:0], dig_H5 = 0xE6[7:0] and 0xE5[7:4], 0xE7 dig_H6. */
    c->t1 = u16le(&tp[0]);
    c->t2 = s16le(&tp[2]);
    c->t3 = s16le(&tp[4]);
    c->p1 = u16le(&tp[6]);
    c->p2 = s16le(&tp[8]);
    c->p3 = s16le(&tp[10]);
    c->p4 = s16le(&tp[12]);
    c->p5 = s16le(&tp[14]);
    c->p6 = s16le(&tp[16]);
    c->p7 = s16le(&tp[18]);
    c->p8 = s16le(&tp[20]);
    c->p9 = s16le(&tp[22]);
    c->h1 = tp[25];
    c->h2 = s16le(&h[0]);
    c->h3 = h[2];
    /* The most significant byte carries the sign of the 12-bit value. */
    c->h4 = (int16_t)((int16_t)(int8_t)h[3] * 16 + (h[4] & 0x0F));
    c->h5 = (int16_t)((int16_t)(int8_t)h[5] * 16 + (h[4] >> 4));
    c->h6 = (int8_t)h[6];
}

void iotd_esp_bme280_raw_parse(iotd_esp_bme280_raw *r, const uint8_t d[IOTD_ESP_BME280_DATA_LEN])
{
    r->adc_p = (int32_t)((uint32_t)d[0] << 12 | (uint32_t)d[1] << 4 | (uint32_t)d[2] >> 4);
    r->adc_t = (int32_t)((uint32_t)d[3] << 12 | (uint32_t)d[4] << 4 | (uint32_t)d[5] >> 4);
    r->adc_h = (int32_t)((uint32_t)d[6] << 8 | (uint32_t)d[7]);
}

int32_t iotd_esp_bme280_temp(const iotd_esp_bme280_calib *c, int32_t adc_t, int32_t *t_fine)
{
    int64_t t1 = c->t1;
    int64_t x = asr(adc_t, 3) - t1 * 2;
    int64_t var1 = asr(x * c->t2, 11);
    int64_t y = asr(adc_t, 4) - t1;
    int64_t var2 = asr(asr(y * y, 12) * c->t3, 14);
    /* |var1| and |var2| stay below 2^22 for any 20-bit reading and any
     * calibration, so t_fine fits its 32 bits. */
    int64_t fine = var1 + var2;

    *t_fine = (int32_t)fine;
    return (int32_t)asr(fine * 5 + 128, 8);
}

static bool mul(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

static bool add(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* The datasheet's BME280_compensate_P_int64, every product and sum checked.
 * The first part only depends on the calibration and t_fine. */
static bool press_divisor(const iotd_esp_bme280_calib *c, int32_t t_fine, int64_t *div,
                          int64_t *offset)
{
    int64_t v1 = (int64_t)t_fine - 128000;
    int64_t sq, a, b;

    /* var2 = var1*var1*P6 + ((var1*P5) << 17) + (P4 << 35) */
    if (!mul(v1, v1, &sq) || !mul(sq, c->p6, &a) || !mul(v1, c->p5, &b) ||
        !mul(b, (int64_t)1 << 17, &b) || !add(a, b, &a) ||
        !add(a, (int64_t)c->p4 * ((int64_t)1 << 35), offset))
        return false;
    /* var1 = ((var1*var1*P3) >> 8) + ((var1*P2) << 12) */
    if (!mul(sq, c->p3, &a) || !mul(v1, c->p2, &b) || !mul(b, (int64_t)1 << 12, &b) ||
        !add(asr(a, 8), b, &a))
        return false;
    /* var1 = (((1 << 47) + var1) * P1) >> 33 */
    if (!add((int64_t)1 << 47, a, &a) || !mul(a, c->p1, &a))
        return false;
    *div = asr(a, 33);
    return *div != 0; /* the datasheet returns 0 here to avoid dividing by zero */
}

bool iotd_esp_bme280_press(const iotd_esp_bme280_calib *c, int32_t adc_p, int32_t t_fine,
                           uint32_t *q24_8)
{
    int64_t div, var2, p, a, b;

    if (adc_p < 0 || adc_p > 0xFFFFF || !press_divisor(c, t_fine, &div, &var2))
        return false;
    /* p = (((1048576 - adc_P) << 31) - var2) * 3125 / var1 */
    p = 1048576 - (int64_t)adc_p;
    if (!mul(p, (int64_t)1 << 31, &a) || !add(a, -var2, &a) || !mul(a, 3125, &a))
        return false;
    p = a / div;
    /* var1 = (P9 * (p >> 13) * (p >> 13)) >> 25; var2 = (P8 * p) >> 19 */
    if (!mul(c->p9, asr(p, 13), &a) || !mul(a, asr(p, 13), &a) || !mul(c->p8, p, &b))
        return false;
    /* p = ((p + var1 + var2) >> 8) + (P7 << 4) */
    if (!add(p, asr(a, 25), &p) || !add(p, asr(b, 19), &p))
        return false;
    p = asr(p, 8) + (int64_t)c->p7 * 16;
    if (p < 0 || p > (int64_t)UINT32_MAX)
        return false;
    *q24_8 = (uint32_t)p;
    return true;
}

uint32_t iotd_esp_bme280_hum(const iotd_esp_bme280_calib *c, int32_t adc_h, int32_t t_fine)
{
    int64_t v = (int64_t)t_fine - 76800;
    int64_t a = (int64_t)adc_h * 16384 - (int64_t)c->h4 * 1048576 - (int64_t)c->h5 * v + 16384;
    int64_t b = asr(asr(v * c->h6, 10) * (asr(v * c->h3, 11) + 32768), 10) + 2097152;

    a = asr(a, 15);
    b = asr(b * c->h2 + 8192, 14);
    v = a * b; /* both factors stay below 2^30 for 16-bit readings */
    /* The datasheet computes this in 32 bits; a working sensor stays far
     * inside that range (the result is clamped to 100 %RH = 419430400 just
     * below), and clamping here keeps the square below from overflowing. */
    if (v > INT32_MAX)
        v = INT32_MAX;
    if (v < INT32_MIN)
        v = INT32_MIN;
    v = v - asr(asr(asr(v, 15) * asr(v, 15), 7) * c->h1, 4);
    if (v < 0)
        v = 0;
    if (v > 419430400)
        v = 419430400;
    return (uint32_t)(v >> 12);
}

int32_t iotd_esp_bme280_pa_tenths(uint32_t q24_8)
{
    return (int32_t)(((uint64_t)q24_8 * 10u + 128u) / 256u);
}

int32_t iotd_esp_bme280_rh_hundredths(uint32_t q22_10)
{
    return (int32_t)(((uint64_t)q22_10 * 100u + 512u) / 1024u);
}
