/* SenML output is the contract with the gateway: every byte is checked
 * against hand-written packs in the form docs/protocol.md shows. */
#include "core_test.h"

#include "iotd/senml.h"

static const iotd_sensor sensors[] = {
    {"temperature", "Cel", NULL, NULL},
    {"humidity", "%RH", NULL, NULL},
};
#define N_SENSORS (sizeof(sensors) / sizeof(sensors[0]))

static char buf[2048];

static iotd_reading reading1(uint32_t seq, uint32_t time, int32_t mantissa, int8_t exp10)
{
    iotd_reading r;
    memset(&r, 0, sizeof(r));
    r.seq = seq;
    r.time = time;
    r.count = 1;
    r.values[0].sensor = 0;
    r.values[0].value.mantissa = mantissa;
    r.values[0].value.exp10 = exp10;
    return r;
}

static iotd_reading reading2(uint32_t seq, uint32_t time, int32_t t10, int32_t h10)
{
    iotd_reading r = reading1(seq, time, t10, -1);
    r.count = 2;
    r.values[1].sensor = 1;
    r.values[1].value.mantissa = h10;
    r.values[1].value.exp10 = -1;
    return r;
}

/* Encodes one pack of the given readings into buf; returns its length. */
static size_t encode(const iotd_reading *rs, size_t n, uint32_t dropped)
{
    iotd_senml enc;
    size_t len = 0;
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "dev-001", dropped), IOTD_OK);
    for (size_t i = 0; i < n; i++)
        CT_EQ(iotd_senml_add(&enc, &rs[i], sensors, N_SENSORS), IOTD_OK);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_OK);
    return len;
}

static void expect_pack(size_t len, const char *want)
{
    CT_EQ(len, strlen(want));
    buf[len] = '\0';
    CT_STR_EQ(buf, want);
}

static void single_reading_within_budget(void **state)
{
    (void)state;
    iotd_reading r = reading1(42, 1764086400u, 215, -1);
    size_t len = encode(&r, 1, 0);
    expect_pack(len, "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
                     "\"v\":21.5,\"seq\":42}]");
    CT_TRUE(len <= 120);

    /* The budget holds for a longer ID, the largest seq and a signed value. */
    iotd_senml enc;
    r = reading1(UINT32_MAX, 1764086400u, -1225, -2);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "sensor-0042", 0), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_OK);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_OK);
    expect_pack(len, "[{\"bn\":\"sensor-0042:\",\"bt\":1764086400,\"n\":\"temperature\","
                     "\"u\":\"Cel\",\"v\":-12.25,\"seq\":4294967295}]");
    CT_TRUE(len <= 120);
}

static void protocol_example_batch(void **state)
{
    (void)state;
    iotd_reading rs[2] = {reading2(42, 1764086400u, 215, 402), reading2(43, 1764086460u, 216, 401)};
    size_t len = encode(rs, 2, 0);
    expect_pack(len, "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
                     "\"v\":21.5,\"seq\":42},"
                     "{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.2},"
                     "{\"t\":60,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.6,\"seq\":43},"
                     "{\"t\":60,\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.1}]");
}

static void dropped_count_rides_on_the_first_record(void **state)
{
    (void)state;
    iotd_reading rs[2] = {reading1(7, 1764086400u, 1, 0), reading1(8, 1764086400u, 2, 0)};
    size_t len = encode(rs, 2, 3);
    expect_pack(len, "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
                     "\"v\":1,\"seq\":7,\"dropped\":3},"
                     "{\"n\":\"temperature\",\"u\":\"Cel\",\"v\":2,\"seq\":8}]");
}

static void readings_without_wall_time_resolve_to_now(void **state)
{
    (void)state;
    iotd_reading none = reading1(5, 0, 10, 0);
    expect_pack(encode(&none, 1, 0),
                "[{\"bn\":\"dev-001:\",\"n\":\"temperature\",\"u\":\"Cel\",\"v\":10,\"seq\":5}]");

    /* Known then unknown: bt + t must come to 0. */
    iotd_reading a[2] = {reading1(5, 1764086400u, 10, 0), reading1(6, 0, 11, 0)};
    expect_pack(encode(a, 2, 0),
                "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
                "\"v\":10,\"seq\":5},"
                "{\"t\":-1764086400,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":11,\"seq\":6}]");

    /* Unknown then known: no base time, so t is absolute. */
    iotd_reading b[2] = {reading1(5, 0, 10, 0), reading1(6, 1764086430u, 11, 0)};
    expect_pack(encode(b, 2, 0),
                "[{\"bn\":\"dev-001:\",\"n\":\"temperature\",\"u\":\"Cel\",\"v\":10,\"seq\":5},"
                "{\"t\":1764086430,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":11,\"seq\":6}]");

    /* A clock stepped back between readings gives a negative offset. */
    iotd_reading c[2] = {reading1(5, 1764086400u, 10, 0), reading1(6, 1764086370u, 11, 0)};
    expect_pack(encode(c, 2, 0),
                "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
                "\"v\":10,\"seq\":5},"
                "{\"t\":-30,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":11,\"seq\":6}]");
}

static void fixed_point_values_are_exact(void **state)
{
    (void)state;
    static const struct {
        int32_t m;
        int8_t e;
        const char *text;
    } cases[] = {
        {0, 0, "0"},
        {0, -3, "0"},
        {0, 5, "0"},
        {7, 0, "7"},
        {-1, 0, "-1"},
        {215, -1, "21.5"},
        {2150, -2, "21.5"},
        {100, -2, "1"},
        {-1010, -1, "-101"},
        {-5, -3, "-0.005"},
        {1, -9, "0.000000001"},
        {123456789, -9, "0.123456789"},
        {1013250, -1, "101325"},
        {101325, -3, "101.325"},
        {12, 3, "12000"},
        {INT32_MAX, 0, "2147483647"},
        {INT32_MIN, -9, "-2.147483648"},
        {INT32_MIN, 9, "-2147483648000000000"},
        {INT32_MAX, 9, "2147483647000000000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        iotd_reading r = reading1(1, 0, cases[i].m, cases[i].e);
        size_t len = encode(&r, 1, 0);
        buf[len] = '\0';
        const char *v = strstr(buf, "\"v\":");
        const char *end = strstr(buf, ",\"seq\"");
        CT_TRUE(v != NULL && end != NULL);
        v += 4;
        CT_EQ((size_t)(end - v), strlen(cases[i].text));
        CT_MEM_EQ(v, cases[i].text, strlen(cases[i].text));
    }
}

static void full_buffer_keeps_what_fits(void **state)
{
    (void)state;
    static const char one[] = "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\","
                              "\"u\":\"Cel\",\"v\":21.5,\"seq\":42}]";
    iotd_reading r1 = reading1(42, 1764086400u, 215, -1);
    iotd_reading r2 = reading1(43, 1764086400u, 216, -1);
    iotd_senml enc;
    size_t len = 0;

    /* Exactly room for one reading and the bracket. */
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(one) - 1, "dev-001", 0), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &r1, sensors, N_SENSORS), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &r2, sensors, N_SENSORS), IOTD_ENOSPC);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_OK);
    CT_EQ(len, sizeof(one) - 1);
    CT_MEM_EQ(buf, one, len);

    /* One byte less: nothing fits, and an empty pack cannot be closed. */
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(one) - 2, "dev-001", 0), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &r1, sensors, N_SENSORS), IOTD_ENOSPC);
    CT_EQ(enc.len, 0);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_ESTATE);

    /* A refused second reading must not change the base time. */
    iotd_reading late = reading1(43, 1764090000u, 216, -1);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(one) + 20, "dev-001", 0), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &late, sensors, N_SENSORS), IOTD_OK);
    CT_EQ(enc.base_time, 1764090000u);
}

static void invalid_input_is_refused(void **state)
{
    (void)state;
    iotd_senml enc;
    size_t len = 0;
    char long_id[IOTD_PROTOCOL_DEVICE_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';

    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "", 0), IOTD_EINVAL);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "a/b", 0), IOTD_EINVAL);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), ".x", 0), IOTD_EINVAL);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "a\"b", 0), IOTD_EINVAL);
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), long_id, 0), IOTD_EINVAL);
    long_id[IOTD_PROTOCOL_DEVICE_ID_MAX] = '\0';
    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), long_id, 0), IOTD_OK);
    CT_EQ(iotd_senml_begin(&enc, buf, 1, "dev-001", 0), IOTD_EINVAL);

    CT_EQ(iotd_senml_begin(&enc, buf, sizeof(buf), "dev-001", 0), IOTD_OK);
    iotd_reading r = reading1(0, 0, 1, 0);
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_EINVAL); /* seq 0 */
    r = reading1(1, 0, 1, 10);
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_EINVAL); /* exponent */
    r = reading1(1, 0, 1, -10);
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_EINVAL);
    r = reading1(1, 0, 1, 0);
    r.values[0].sensor = N_SENSORS;
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_EINVAL); /* no such sensor */
    r = reading1(1, 0, 1, 0);
    r.count = 0;
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_EINVAL);

    static const iotd_sensor bad_name[] = {{"_hidden", "Cel", NULL, NULL}};
    static const iotd_sensor bad_unit[] = {{"t", "C\"", NULL, NULL}};
    r = reading1(1, 0, 1, 0);
    CT_EQ(iotd_senml_add(&enc, &r, bad_name, 1), IOTD_EINVAL);
    CT_EQ(iotd_senml_add(&enc, &r, bad_unit, 1), IOTD_EINVAL);
    CT_EQ(enc.len, 0);

    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_OK);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_OK);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_ESTATE);
    CT_EQ(iotd_senml_add(&enc, &r, sensors, N_SENSORS), IOTD_ESTATE);
}

static void worst_case_reading_fits_the_computed_bound(void **state)
{
    (void)state;
    static const iotd_sensor wide[IOTD_MAX_VALUES] = {
        {"abcdefghijabcdefghijabcdefghij00", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij01", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij02", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij03", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij04", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij05", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij06", "abcdefghijabcdef", NULL, NULL},
        {"abcdefghijabcdefghijabcdefghij07", "abcdefghijabcdef", NULL, NULL},
    };
    char id[IOTD_PROTOCOL_DEVICE_ID_MAX + 1];
    memset(id, 'd', IOTD_PROTOCOL_DEVICE_ID_MAX);
    id[IOTD_PROTOCOL_DEVICE_ID_MAX] = '\0';
    iotd_reading r;
    memset(&r, 0, sizeof(r));
    r.seq = UINT32_MAX;
    r.time = UINT32_MAX;
    r.count = IOTD_MAX_VALUES;
    for (uint8_t i = 0; i < IOTD_MAX_VALUES; i++) {
        r.values[i].sensor = i;
        r.values[i].value.mantissa = INT32_MIN;
        r.values[i].value.exp10 = IOTD_EXP10_MAX;
    }
    size_t max = iotd_senml_reading_max(id, wide, IOTD_MAX_VALUES);
    CT_TRUE(max <= sizeof(buf));
    iotd_senml enc;
    size_t len = 0;
    CT_EQ(iotd_senml_begin(&enc, buf, max, id, UINT32_MAX), IOTD_OK);
    CT_EQ(iotd_senml_add(&enc, &r, wide, IOTD_MAX_VALUES), IOTD_OK);
    CT_EQ(iotd_senml_finish(&enc, &len), IOTD_OK);
    CT_TRUE(len <= max);
    /* The bound pads only for the offsets ("t":-4294967295,) that a
     * one-reading pack never has. */
    CT_EQ(max - len, 16u * IOTD_MAX_VALUES);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(single_reading_within_budget),
        CT_TEST(protocol_example_batch),
        CT_TEST(dropped_count_rides_on_the_first_record),
        CT_TEST(readings_without_wall_time_resolve_to_now),
        CT_TEST(fixed_point_values_are_exact),
        CT_TEST(full_buffer_keeps_what_fits),
        CT_TEST(invalid_input_is_refused),
        CT_TEST(worst_case_reading_fits_the_computed_bound),
    };
    return CT_RUN(tests);
}
