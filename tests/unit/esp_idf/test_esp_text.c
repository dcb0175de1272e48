/* The ESP-IDF port's text functions: header matching, Retry-After, console
 * escaping and URL joining, every cap at its edge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "dn.h"
#include "text.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110. */
#define RFC_DATE   "Sun, 06 Nov 1994 08:49:37 GMT"
#define RFC_DATE_S 784111777

static void compares_header_names(void **state)
{
    (void)state;
    assert_true(iotd_esp__ieq("Retry-After", "retry-after"));
    assert_true(iotd_esp__ieq("CONNECTION", "Connection"));
    assert_false(iotd_esp__ieq("Retry-After", "Retry-Afte"));
    assert_false(iotd_esp__ieq("Retry-Afte", "Retry-After"));
    assert_false(iotd_esp__ieq(NULL, "x"));
    assert_false(iotd_esp__ieq("x", NULL));
}

static void finds_tokens(void **state)
{
    (void)state;
    assert_true(iotd_esp__has_token("close", "close"));
    assert_true(iotd_esp__has_token("keep-alive, Close", "close"));
    assert_true(iotd_esp__has_token(" ,, close ,", "close"));
    assert_false(iotd_esp__has_token("closed", "close"));
    assert_false(iotd_esp__has_token("keep-alive", "close"));
    assert_false(iotd_esp__has_token("", "close"));
    assert_false(iotd_esp__has_token(NULL, "close"));
}

static void reads_delta_seconds(void **state)
{
    (void)state;
    uint32_t s = 7;

    assert_true(iotd_esp__retry_after("120", false, 0, &s));
    assert_int_equal(s, 120);
    assert_true(iotd_esp__retry_after(" 5\t", false, 0, &s));
    assert_int_equal(s, 5);
    assert_true(iotd_esp__retry_after("0", false, 0, &s));
    assert_int_equal(s, 0);
    assert_true(iotd_esp__retry_after("4294967295", false, 0, &s));
    assert_int_equal(s, UINT32_MAX);
    assert_true(iotd_esp__retry_after("99999999999999999999999", false, 0, &s));
    assert_int_equal(s, UINT32_MAX);

    const char *bad[] = {"", " ", "-1", "+1", "1.5", "1 2", "12a", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(iotd_esp__retry_after(bad[i], true, RFC_DATE_S, &s));
    assert_false(iotd_esp__retry_after(NULL, true, 0, &s));
}

static void reads_http_dates(void **state)
{
    (void)state;
    uint32_t s = 0;

    assert_true(iotd_esp__retry_after(RFC_DATE, true, RFC_DATE_S - 10, &s));
    assert_int_equal(s, 10);
    assert_true(iotd_esp__retry_after(RFC_DATE, true, RFC_DATE_S + 10, &s));
    assert_int_equal(s, 0); /* already past */
    /* Without a clock a date means nothing. */
    assert_false(iotd_esp__retry_after(RFC_DATE, false, 0, &s));

    /* Leap days, the end of a year, the last second of a minute. */
    assert_true(iotd_esp__retry_after("Thu, 29 Feb 2024 00:00:00 GMT", true, 1709164800 - 1, &s));
    assert_int_equal(s, 1);
    assert_true(iotd_esp__retry_after("Thu, 31 Dec 2037 23:59:59 GMT", true, 2145916799 - 60, &s));
    assert_int_equal(s, 60);

    const char *bad[] = {
        "Wed, 29 Feb 2023 00:00:00 GMT",  /* not a leap year */
        "Sun, 31 Apr 2024 00:00:00 GMT",  /* April has 30 days */
        "Sun, 00 Apr 2024 00:00:00 GMT",  /* day 0 */
        "Sun, 06 Nov 1994 24:00:00 GMT",  /* hour 24 */
        "Sun, 06 Nov 1994 08:60:00 GMT",  /* minute 60 */
        "Sun, 06 Nov 1994 08:49:37 UTC",  /* only GMT */
        "Sun, 06 Foo 1994 08:49:37 GMT",  /* no such month */
        "Xyz, 06 Nov 1994 08:49:37 GMT",  /* no such day */
        "Sunday, 06-Nov-94 08:49:37 GMT", /* obsolete RFC 850 form */
        "Sun Nov  6 08:49:37 1994",       /* obsolete asctime form */
        "Sun, 6 Nov 1994 08:49:37 GMT",   /* day needs two digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(iotd_esp__retry_after(bad[i], true, 0, &s));
}

static void escapes_for_the_console(void **state)
{
    (void)state;
    char out[64];

    iotd_esp__escape("{\"error\":\"x\"}", out, sizeof(out));
    assert_string_equal(out, "{\"error\":\"x\"}");
    iotd_esp__escape("a\nb\r\x1b[2J\\", out, sizeof(out));
    assert_string_equal(out, "a\\x0ab\\x0d\\x1b[2J\\x5c");
    iotd_esp__escape("\xc3\xa9", out, sizeof(out));
    assert_string_equal(out, "\\xc3\\xa9");
    iotd_esp__escape("", out, sizeof(out));
    assert_string_equal(out, "");
}

static void escape_cuts_at_the_cap(void **state)
{
    (void)state;
    char out[16];

    memset(out, 'Z', sizeof(out));
    iotd_esp__escape("abcdefghij", out, 8);
    assert_string_equal(out, "abcd...");
    assert_int_equal(out[8], 'Z'); /* nothing past the cap was written */

    iotd_esp__escape("abcdefg", out, 8); /* exactly fits */
    assert_string_equal(out, "abcdefg");
    iotd_esp__escape("abc\n", out, 8); /* the escape just fits */
    assert_string_equal(out, "abc\\x0a");
    iotd_esp__escape("abc\n", out, 7); /* it does not */
    assert_string_equal(out, "abc...");
    iotd_esp__escape("abc", out, 3);
    assert_string_equal(out, "..");
    iotd_esp__escape("abc", out, 1);
    assert_string_equal(out, "");
}

static void joins_within_the_cap(void **state)
{
    (void)state;
    char out[16];

    assert_true(iotd_esp__join(out, sizeof(out), "https://gw", "/v1/x"));
    assert_string_equal(out, "https://gw/v1/x");
    assert_true(iotd_esp__join(out, 8, "abc", "defg")); /* 7 + NUL */
    assert_string_equal(out, "abcdefg");
    assert_false(iotd_esp__join(out, 8, "abcd", "efgh"));
    assert_string_equal(out, "");
    assert_false(iotd_esp__join(out, 0, "", ""));
}

static void finds_the_common_name(void **state)
{
    (void)state;
    char id[16];

    /* As mbedtls_x509_dn_gets prints an iotctl device certificate. */
    assert_true(dn_common_name("O=IoT Telemetry, OU=device, CN=sensor-042", id, sizeof(id)));
    assert_string_equal(id, "sensor-042");
    assert_true(dn_common_name("CN=a", id, sizeof(id)));
    assert_string_equal(id, "a");
    assert_true(dn_common_name("CN=first, O=x, CN=last", id, sizeof(id))); /* the last one */
    assert_string_equal(id, "last");
    assert_true(dn_common_name("CN=dev, OU=device", id, sizeof(id)));
    assert_string_equal(id, "dev");
    assert_true(dn_common_name("CN=123456789012345", id, sizeof(id))); /* 15 + NUL */
    assert_string_equal(id, "123456789012345");

    assert_false(dn_common_name("CN=1234567890123456", id, sizeof(id))); /* too long */
    assert_false(dn_common_name("O=IoT Telemetry, OU=device", id, sizeof(id)));
    assert_false(dn_common_name("O=x, CN=", id, sizeof(id)));
    assert_false(dn_common_name("O=xCN=y", id, sizeof(id))); /* not an attribute start */
    assert_false(dn_common_name(", , ", id, sizeof(id)));
    assert_false(dn_common_name("", id, sizeof(id)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compares_header_names),   cmocka_unit_test(finds_tokens),
        cmocka_unit_test(reads_delta_seconds),     cmocka_unit_test(reads_http_dates),
        cmocka_unit_test(escapes_for_the_console), cmocka_unit_test(escape_cuts_at_the_cap),
        cmocka_unit_test(joins_within_the_cap),    cmocka_unit_test(finds_the_common_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
