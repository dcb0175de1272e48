/* The protocol rules shared by device and gateway: each name rule at its
 * edges (length, first character, every excluded class of byte) with the
 * fault and position it reports, the SenML base name, and Retry-After in
 * every form RFC 9110 defines, valid and not. */
#include "core_test.h"

#include <string.h>

#include "iotd/protocol.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110. */
#define RFC_DATE_S 784111777
/* 2026-11-25 16:50:00 UTC. */
#define NOW_2026 1795625400

/* A string of n copies of c (n < sizeof buf). */
static const char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

typedef iotd_protocol_fault (*check_fn)(const char *s, size_t *at);

static void expect_fault(check_fn check, const char *s, iotd_protocol_fault fault, size_t at)
{
    size_t got = 99;
    CT_EQ(check(s, &got), fault);
    CT_EQ(got, at);
    /* The position is optional. */
    CT_EQ(check(s, NULL), fault);
}

static void device_id_rule(void **state)
{
    (void)state;
    char buf[80];
    static const char *const ok[] = {"a", "dev-001", "Sensor_7", "x.y.z", "0", "A-._", "a."};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CT_TRUE(iotd_protocol_device_id_valid(ok[i]));
        expect_fault(iotd_protocol_device_id_check, ok[i], IOTD_PROTOCOL_OK, 0);
    }
    CT_TRUE(iotd_protocol_device_id_valid(repeat(buf, 'a', IOTD_PROTOCOL_DEVICE_ID_MAX)));

    expect_fault(iotd_protocol_device_id_check, NULL, IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_device_id_check, "", IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_device_id_check, ".hidden", IOTD_PROTOCOL_BAD_FIRST, 0);
    expect_fault(iotd_protocol_device_id_check, "..", IOTD_PROTOCOL_BAD_FIRST, 0);
    expect_fault(iotd_protocol_device_id_check, "-x", IOTD_PROTOCOL_OK, 0);
    /* MQTT separators and wildcards, broker-reserved '$', the SenML
     * separator, space, control characters, non-ASCII. */
    static const char *const bad[] = {"a/b",  "a+b",  "a#b",   "a$b", "a:b", "a b",
                                      "a\tb", "a\nb", "a\x7f", "a*b", "a,b", "a\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CT_FALSE(iotd_protocol_device_id_valid(bad[i]));
        expect_fault(iotd_protocol_device_id_check, bad[i], IOTD_PROTOCOL_BAD_CHAR, 1);
    }
    expect_fault(iotd_protocol_device_id_check, "$SYS", IOTD_PROTOCOL_BAD_CHAR, 0);

    repeat(buf, 'a', IOTD_PROTOCOL_DEVICE_ID_MAX + 1);
    CT_FALSE(iotd_protocol_device_id_valid(buf));
    expect_fault(iotd_protocol_device_id_check, buf, IOTD_PROTOCOL_TOO_LONG,
                 IOTD_PROTOCOL_DEVICE_ID_MAX);
    /* A bad byte within the length is named even when the name is too long. */
    buf[3] = '/';
    expect_fault(iotd_protocol_device_id_check, buf, IOTD_PROTOCOL_BAD_CHAR, 3);
}

static void sensor_name_rule(void **state)
{
    (void)state;
    char buf[40];
    static const char *const ok[] = {"temperature", "0.ch-1_a", "A", "9", "a-", "x.y"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        CT_TRUE(iotd_protocol_sensor_name_valid(ok[i]));
    CT_TRUE(iotd_protocol_sensor_name_valid(repeat(buf, 'n', IOTD_PROTOCOL_SENSOR_NAME_MAX)));
    expect_fault(iotd_protocol_sensor_name_check,
                 repeat(buf, 'n', IOTD_PROTOCOL_SENSOR_NAME_MAX + 1), IOTD_PROTOCOL_TOO_LONG,
                 IOTD_PROTOCOL_SENSOR_NAME_MAX);

    expect_fault(iotd_protocol_sensor_name_check, NULL, IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_sensor_name_check, "", IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_sensor_name_check, "-x", IOTD_PROTOCOL_BAD_FIRST, 0);
    expect_fault(iotd_protocol_sensor_name_check, ".x", IOTD_PROTOCOL_BAD_FIRST, 0);
    expect_fault(iotd_protocol_sensor_name_check, "_x", IOTD_PROTOCOL_BAD_FIRST, 0);
    expect_fault(iotd_protocol_sensor_name_check, "a b", IOTD_PROTOCOL_BAD_CHAR, 1);
    expect_fault(iotd_protocol_sensor_name_check, "ab:c", IOTD_PROTOCOL_BAD_CHAR, 2);
    expect_fault(iotd_protocol_sensor_name_check, "a/b", IOTD_PROTOCOL_BAD_CHAR, 1);
    expect_fault(iotd_protocol_sensor_name_check, "#", IOTD_PROTOCOL_BAD_CHAR, 0);
    expect_fault(iotd_protocol_sensor_name_check, "\xc3\xa9t\xc3\xa9", IOTD_PROTOCOL_BAD_CHAR, 0);
    CT_FALSE(iotd_protocol_sensor_name_valid("-x"));
    CT_FALSE(iotd_protocol_sensor_name_valid("a\x01"));
}

static void unit_rule(void **state)
{
    (void)state;
    char buf[24];
    /* Any printable ASCII but '"' and '\', a space included. */
    static const char *const ok[] = {"%RH", "m/s2", "Cel", "~", " ", "1/min", "{x}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        CT_TRUE(iotd_protocol_unit_valid(ok[i]));
    CT_TRUE(iotd_protocol_unit_valid(repeat(buf, 'u', IOTD_PROTOCOL_UNIT_MAX)));
    expect_fault(iotd_protocol_unit_check, repeat(buf, 'u', IOTD_PROTOCOL_UNIT_MAX + 1),
                 IOTD_PROTOCOL_TOO_LONG, IOTD_PROTOCOL_UNIT_MAX);

    expect_fault(iotd_protocol_unit_check, NULL, IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_unit_check, "", IOTD_PROTOCOL_EMPTY, 0);
    expect_fault(iotd_protocol_unit_check, "a\\b", IOTD_PROTOCOL_BAD_CHAR, 1);
    expect_fault(iotd_protocol_unit_check, "a\"b", IOTD_PROTOCOL_BAD_CHAR, 1);
    expect_fault(iotd_protocol_unit_check, "\t", IOTD_PROTOCOL_BAD_CHAR, 0);
    expect_fault(iotd_protocol_unit_check, "V\x7f", IOTD_PROTOCOL_BAD_CHAR, 1);
    expect_fault(iotd_protocol_unit_check,
                 "\xc2\xb0"
                 "C",
                 IOTD_PROTOCOL_BAD_CHAR, 0);
}

static void base_name(void **state)
{
    (void)state;
    CT_TRUE(iotd_protocol_base_name_is("dev-1:", 6, "dev-1"));
    /* Only len bytes count: bn need not be NUL-terminated. */
    CT_TRUE(iotd_protocol_base_name_is("dev-1:xyz", 6, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-1", 5, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-1::", 7, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-1/", 6, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-2:", 6, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("DEV-1:", 6, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-:", 5, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is(NULL, 0, "dev-1"));
    CT_FALSE(iotd_protocol_base_name_is("dev-1:", 6, NULL));
}

static bool retry_after(const char *v, bool clock_known, int64_t now, uint32_t *s)
{
    return iotd_protocol_retry_after(v, strlen(v), clock_known, now, s);
}

static void retry_after_delta_seconds(void **state)
{
    (void)state;
    uint32_t s = 7;

    CT_TRUE(retry_after("120", false, 0, &s));
    CT_EQ(s, 120);
    CT_TRUE(retry_after(" 5\t", false, 0, &s));
    CT_EQ(s, 5);
    CT_TRUE(retry_after("0", false, 0, &s));
    CT_EQ(s, 0);
    CT_TRUE(retry_after("4294967295", false, 0, &s));
    CT_EQ(s, UINT32_MAX);
    CT_TRUE(retry_after("4294967296", false, 0, &s));
    CT_EQ(s, UINT32_MAX);
    CT_TRUE(retry_after("99999999999999999999999", false, 0, &s));
    CT_EQ(s, UINT32_MAX);
    /* Only the given length counts. */
    CT_TRUE(iotd_protocol_retry_after("12junk", 2, false, 0, &s));
    CT_EQ(s, 12);

    s = 7;
    static const char *const bad[] = {"", " ", "-1", "+1", "1.5", "1 2", "12a", "0x10", "soon"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CT_FALSE(retry_after(bad[i], true, RFC_DATE_S, &s));
    CT_FALSE(iotd_protocol_retry_after("12\0", 3, true, 0, &s));
    CT_FALSE(iotd_protocol_retry_after(NULL, 0, true, 0, &s));
    CT_EQ(s, 7); /* untouched by every refusal */
}

static void retry_after_dates(void **state)
{
    (void)state;
    uint32_t s = 0;

    /* The three forms of one instant. */
    static const char *const forms[] = {
        "Sun, 06 Nov 1994 08:49:37 GMT",  /* IMF-fixdate */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* RFC 850 */
        "Sun Nov  6 08:49:37 1994",       /* asctime */
        "Sun Nov 06 08:49:37 1994",       /* asctime, two-digit day */
        " Sun, 06 Nov 1994 08:49:37 GMT\t",
    };
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        s = 0;
        CT_TRUE(retry_after(forms[i], true, RFC_DATE_S - 10, &s));
        CT_EQ(s, 10);
    }
    CT_TRUE(retry_after(forms[0], true, RFC_DATE_S + 10, &s));
    CT_EQ(s, 0); /* already past */
    /* Without a clock a date means nothing. */
    s = 7;
    CT_FALSE(retry_after(forms[0], false, RFC_DATE_S - 10, &s));
    CT_EQ(s, 7);

    /* Leap days, the end of a year, a leap second, beyond 2038, and a
     * distance that does not fit 32 bits. */
    CT_TRUE(retry_after("Thu, 29 Feb 2024 00:00:00 GMT", true, 1709164800 - 1, &s));
    CT_EQ(s, 1);
    CT_TRUE(retry_after("Tue, 29 Feb 2000 00:00:00 GMT", true, 951782400 - 5, &s));
    CT_EQ(s, 5);
    CT_TRUE(retry_after("Thu, 31 Dec 2037 23:59:59 GMT", true, 2145916799 - 60, &s));
    CT_EQ(s, 60);
    CT_TRUE(retry_after("Thu, 31 Dec 2037 23:59:60 GMT", true, 2145916799, &s));
    CT_EQ(s, 1);
    CT_TRUE(retry_after("Sun, 07 Feb 2106 06:28:15 GMT", true, 0, &s));
    CT_EQ(s, UINT32_MAX);
    CT_TRUE(retry_after("Sun, 07 Feb 2106 06:28:16 GMT", true, 0, &s));
    CT_EQ(s, UINT32_MAX);
    CT_TRUE(retry_after("Sun, 07 Feb 2106 06:28:14 GMT", true, 0, &s));
    CT_EQ(s, UINT32_MAX - 1u);

    static const char *const bad[] = {
        "Wed, 29 Feb 2023 00:00:00 GMT",    /* not a leap year */
        "Mon, 29 Feb 2100 00:00:00 GMT",    /* nor is 2100 */
        "Sun, 31 Apr 2024 00:00:00 GMT",    /* April has 30 days */
        "Sun, 00 Apr 2024 00:00:00 GMT",    /* day 0 */
        "Sun, 06 Nov 1994 24:00:00 GMT",    /* hour 24 */
        "Sun, 06 Nov 1994 08:60:00 GMT",    /* minute 60 */
        "Sun, 06 Nov 1994 08:49:61 GMT",    /* second 61 */
        "Sun, 06 Nov 1994 08:49:37 UTC",    /* only GMT */
        "Sun, 06 Nov 1994 08:49:37 GMTx",   /* trailing bytes */
        "Sun, 06 Nov 1994 08:49:37",        /* no zone */
        "Sun, 06 Foo 1994 08:49:37 GMT",    /* no such month */
        "Xyz, 06 Nov 1994 08:49:37 GMT",    /* no such day */
        "sun, 06 nov 1994 08:49:37 GMT",    /* names are case-sensitive */
        "Sun, 6 Nov 1994 08:49:37 GMT",     /* day needs two digits */
        "Sun, 06 Nov 94 08:49:37 GMT",      /* year needs four */
        "Sunday, 06-Nov-1994 08:49:37 GMT", /* RFC 850 has two */
        "Sun, 06-Nov-94 08:49:37 GMT",      /* RFC 850 has the long day name */
        "Sun Nov 6 08:49:37 1994",          /* asctime pads the day to two */
        "Sun Nov  6 08:49:37 94",           /* asctime has four year digits */
        "Sun Nov  6 08:49:37 1994 GMT",     /* and no zone */
        "tomorrow",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CT_FALSE(retry_after(bad[i], true, RFC_DATE_S, &s));
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past. */
static void retry_after_two_digit_years(void **state)
{
    (void)state;
    uint32_t s = 0;

    CT_TRUE(retry_after("Wednesday, 25-Nov-26 17:50:00 GMT", true, NOW_2026, &s));
    CT_EQ(s, 3600);
    /* 2076 is 50 years ahead: still the future. */
    CT_TRUE(retry_after("Wednesday, 01-Jan-76 00:00:00 GMT", true, NOW_2026, &s));
    CT_EQ(s, 3345062400u - NOW_2026);
    /* 77 would be 2077: it is 1977, long past. */
    s = 7;
    CT_TRUE(retry_after("Saturday, 01-Jan-77 00:00:00 GMT", true, NOW_2026, &s));
    CT_EQ(s, 0);
}

static void utc_time(void **state)
{
    (void)state;
    int64_t t = 0;
    static const char *const bad[] = {
        "2027-06-01T00:00:00",
        "2027-06-01t00:00:00Z",
        "2027-06-01T00:00:00.0Z",
        "2027-6-01T00:00:00Z",
        "2027-13-01T00:00:00Z",
        "2027-02-29T00:00:00Z",
        "2027-06-01T24:00:00Z",
        "2027-06-01T23:59:60Z",
        "1969-12-31T23:59:59Z",
        " 2027-06-01T00:00:00Z",
        "",
    };
    CT_TRUE(iotd_protocol_utc_time("2027-06-01T00:00:00Z", 20, &t));
    CT_EQ(t, 1811808000);
    CT_TRUE(iotd_protocol_utc_time("1970-01-01T00:00:00Z", 20, &t));
    CT_EQ(t, 0);
    CT_TRUE(iotd_protocol_utc_time("2028-02-29T12:30:15Z", 20, &t));
    CT_EQ(t, 1835440215);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CT_FALSE(iotd_protocol_utc_time(bad[i], strlen(bad[i]), &t));
    /* The length given is the value: nothing after it is read. */
    CT_TRUE(iotd_protocol_utc_time("2027-06-01T00:00:00Zjunk", 20, &t));
    CT_FALSE(iotd_protocol_utc_time("2027-06-01T00:00:00Z", 19, &t));
}

static void constants_match_the_contract(void **state)
{
    (void)state;
    CT_STR_EQ(IOTD_PROTOCOL_PATH, "/v1/telemetry");
    CT_STR_EQ(IOTD_PROTOCOL_CT_SENML, "application/senml+json");
    CT_STR_EQ(IOTD_PROTOCOL_CT_JSON, "application/json");
    CT_STR_EQ(IOTD_PROTOCOL_STR(IOTD_PROTOCOL_RECORDS_MAX), "256");
    CT_STR_EQ(IOTD_PROTOCOL_STR(IOTD_PROTOCOL_READINGS_MAX), "64");
    CT_EQ(IOTD_PROTOCOL_RELATIVE_TIME_LIMIT, 1L << 28);
    CT_TRUE(IOTD_PROTOCOL_READINGS_MAX <= IOTD_PROTOCOL_RECORDS_MAX);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(device_id_rule),
        CT_TEST(sensor_name_rule),
        CT_TEST(unit_rule),
        CT_TEST(base_name),
        CT_TEST(retry_after_delta_seconds),
        CT_TEST(retry_after_dates),
        CT_TEST(retry_after_two_digit_years),
        CT_TEST(utc_time),
        CT_TEST(constants_match_the_contract),
    };
    return CT_RUN(tests);
}
