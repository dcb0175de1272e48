/* Synthetic sensors: values stay in each quantity's physical range at any
 * time of day and any noise, follow the daily cycle and the drift, and a
 * device's noise is bounded, centred and repeatable from its seed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "iotd_posix/sensors.h"

static const double T0 = 1795564800.0; /* 2026-11-25T00:00:00Z */

static double as_double(iotd_value v)
{
    return (double)v.mantissa * pow(10.0, v.exp10);
}

static void values_stay_in_range(void **st)
{
    (void)st;
    static const double Z[] = {-IOTD_POSIX_NOISE_Z_MAX, -1.0, 0.0, 1.0, IOTD_POSIX_NOISE_Z_MAX};
    for (unsigned k = 0; k < IOTD_POSIX_SENSOR_KINDS; k++) {
        const iotd_posix_curve *c = iotd_posix_curve_default((iotd_posix_sensor_kind)k);
        assert_non_null(c);
        /* Every device's mean is within spread; check the extremes too. */
        for (int m = -1; m <= 1; m++) {
            iotd_posix_curve dev = *c;
            dev.mean += m * c->spread;
            /* Three days, so a draining battery has gone some way. */
            for (double t = T0; t < T0 + 3 * 86400.0; t += 420.0) {
                for (size_t z = 0; z < sizeof(Z) / sizeof(Z[0]); z++) {
                    iotd_value v = iotd_posix_curve_value(&dev, t, T0, Z[z]);
                    assert_int_equal(v.exp10, c->exp10);
                    double x = as_double(v);
                    assert_true(x >= c->min && x <= c->max);
                    /* Within the curve's own band, not just the clamp. */
                    double band = fabs(c->amplitude) + c->noise * IOTD_POSIX_NOISE_Z_MAX +
                                  fabs(c->drift_per_day) * 3.0 + c->spread + pow(10.0, c->exp10);
                    assert_true(fabs(x - c->mean) <= band);
                }
            }
        }
    }
}

static void clamps_to_the_physical_range(void **st)
{
    (void)st;
    iotd_posix_curve c = *iotd_posix_curve_default(IOTD_POSIX_HUMIDITY);
    c.mean = 150.0;
    iotd_value v = iotd_posix_curve_value(&c, T0, T0, 0.0);
    assert_int_equal(v.mantissa, 1000); /* 100.0 %RH */
    c.mean = -50.0;
    v = iotd_posix_curve_value(&c, T0, T0, 0.0);
    assert_int_equal(v.mantissa, 0);
    c.mean = NAN;
    v = iotd_posix_curve_value(&c, T0, T0, 0.0);
    assert_int_equal(v.mantissa, 0);
}

static void follows_the_day_and_the_drift(void **st)
{
    (void)st;
    const iotd_posix_curve *t = iotd_posix_curve_default(IOTD_POSIX_TEMPERATURE);
    double peak = as_double(iotd_posix_curve_value(t, T0 + t->peak_hour * 3600.0, T0, 0.0));
    double trough =
        as_double(iotd_posix_curve_value(t, T0 + (t->peak_hour - 12.0) * 3600.0, T0, 0.0));
    assert_true(fabs(peak - (t->mean + t->amplitude)) < 0.011);
    assert_true(fabs(trough - (t->mean - t->amplitude)) < 0.011);

    const iotd_posix_curve *h = iotd_posix_curve_default(IOTD_POSIX_HUMIDITY);
    double h_at_t_peak = as_double(iotd_posix_curve_value(h, T0 + t->peak_hour * 3600.0, T0, 0.0));
    assert_true(h_at_t_peak < h->mean); /* dry afternoons */

    const iotd_posix_curve *b = iotd_posix_curve_default(IOTD_POSIX_BATTERY);
    double day0 = as_double(iotd_posix_curve_value(b, T0, T0, 0.0));
    double day10 = as_double(iotd_posix_curve_value(b, T0 + 10 * 86400.0, T0, 0.0));
    assert_true(day10 < day0);
    assert_true(fabs((day0 - day10) - 10.0 * -b->drift_per_day) < 0.11);
}

static void noise_is_bounded_centred_and_seeded(void **st)
{
    (void)st;
    static iotd_posix_synth a, b, c;
    iotd_posix_curve curves[IOTD_POSIX_SENSOR_KINDS];
    for (unsigned k = 0; k < IOTD_POSIX_SENSOR_KINDS; k++)
        curves[k] = *iotd_posix_curve_default((iotd_posix_sensor_kind)k);
    iotd_posix_synth_init(&a, curves, IOTD_POSIX_SENSOR_KINDS, 42);
    iotd_posix_synth_init(&b, curves, IOTD_POSIX_SENSOR_KINDS, 42);
    iotd_posix_synth_init(&c, curves, IOTD_POSIX_SENSOR_KINDS, 43);
    double sum = 0, sq = 0;
    int same_as_other_seed = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double x = iotd_posix_synth_noise(&a);
        assert_true(x == iotd_posix_synth_noise(&b));
        same_as_other_seed += x == iotd_posix_synth_noise(&c);
        assert_true(fabs(x) <= IOTD_POSIX_NOISE_Z_MAX);
        sum += x;
        sq += x * x;
    }
    assert_true(same_as_other_seed < 10);
    double mean = sum / n;
    double sd = sqrt(sq / n - mean * mean);
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(sd - 1.0) < 0.02);
    /* Two seeds, two devices: their means differ within the spread. */
    assert_true(a.chan[0].curve.mean != c.chan[0].curve.mean);
    assert_true(fabs(a.chan[0].curve.mean - curves[0].mean) <= curves[0].spread);
}

static void sensor_table_reads(void **st)
{
    (void)st;
    static iotd_posix_synth s;
    iotd_posix_curve curves[2] = {*iotd_posix_curve_default(IOTD_POSIX_PRESSURE),
                                  *iotd_posix_curve_default(IOTD_POSIX_TEMPERATURE)};
    iotd_posix_synth_init(&s, curves, 2, 7);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.table[0].name, "pressure");
    assert_string_equal(s.table[0].unit, "Pa");
    assert_string_equal(s.table[1].name, "temperature");
    assert_string_equal(s.table[1].unit, "Cel");
    for (int i = 0; i < 1000; i++) {
        iotd_value v;
        assert_int_equal(s.table[0].read(s.table[0].ctx, &v), IOTD_OK);
        assert_true(as_double(v) >= curves[0].min && as_double(v) <= curves[0].max);
        assert_int_equal(s.table[1].read(s.table[1].ctx, &v), IOTD_OK);
        assert_int_equal(v.exp10, -2);
    }
    s.off = true;
    iotd_value v;
    assert_int_not_equal(s.table[0].read(s.table[0].ctx, &v), IOTD_OK);

    iotd_posix_sensor_kind k;
    assert_true(iotd_posix_sensor_kind_parse("battery", &k));
    assert_int_equal(k, IOTD_POSIX_BATTERY);
    assert_false(iotd_posix_sensor_kind_parse("Battery", &k));
    assert_null(iotd_posix_curve_default(IOTD_POSIX_SENSOR_KINDS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_stay_in_range),
        cmocka_unit_test(clamps_to_the_physical_range),
        cmocka_unit_test(follows_the_day_and_the_drift),
        cmocka_unit_test(noise_is_bounded_centred_and_seeded),
        cmocka_unit_test(sensor_table_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
