/* The ESP-IDF port's text functions: header matching, Content-Range parsing, console escaping
 * and URL joining, every cap at its edge. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "dn.h"
#include "text.h"

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

/* One accepted value and the range it gives. */
static void expect_range(const char *value, uint32_t start, uint32_t len, uint32_t total)
{
    iotd_esp_range r;

    if (!iotd_esp__content_range(value, &r))
        fail_msg("refused: \"%s\"", value);
    assert_int_equal(r.start, start);
    assert_int_equal(r.len, len);
    assert_int_equal(r.total, total);
}

static void expect_no_range(const char *value)
{
    iotd_esp_range r;

    memset(&r, 0x5a, sizeof(r));
    if (iotd_esp__content_range(value, &r))
        fail_msg("accepted: \"%s\"", value);
    assert_int_equal(r.start, 0); /* nothing half-filled is left behind */
    assert_int_equal(r.len, 0);
    assert_int_equal(r.total, 0);
}

static void parses_content_ranges(void **state)
{
    (void)state;
    expect_range("bytes 0-4095/65536", 0, 4096, 65536);
    expect_range("bytes 4096-8191/8192", 4096, 4096, 8192); /* the last chunk */
    expect_range("bytes 7-7/8", 7, 1, 8);                   /* one byte */
    expect_range("BYTES 0-0/1", 0, 1, 1);                   /* the unit in any case */
    expect_range(" \tbytes 10-19/100 \t", 10, 10, 100);     /* OWS around the value */
    expect_range("bytes 0-99/*", 0, 100, 0);                /* length unknown */
    expect_range("bytes 007-008/010", 7, 2, 10);            /* 1*DIGIT: leading zeros */
    expect_range("bytes 4294967294-4294967294/4294967295", 4294967294u, 1, 4294967295u);
    expect_range("bytes 1-4294967295/*", 1, 4294967295u, 0); /* the longest length that fits */
}

static void refuses_malformed_content_ranges(void **state)
{
    (void)state;
    expect_no_range(NULL);
    expect_no_range("");
    expect_no_range("bytes");
    expect_no_range("bytes ");
    expect_no_range("bytes */1000");    /* unsatisfied-range: no bytes came */
    expect_no_range("bytes 0-99");      /* no length */
    expect_no_range("bytes 0-99/");     /* empty length */
    expect_no_range("bytes 99-0/100");  /* last before first */
    expect_no_range("bytes 0-100/100"); /* last past the end */
    expect_no_range("bytes 0-0/0");     /* nothing is in an empty representation */
    expect_no_range("bytes -1-5/10");   /* a sign */
    expect_no_range("bytes +1-5/10");
    expect_no_range("bytes 1 -5/10"); /* space inside */
    expect_no_range("bytes 1- 5/10");
    expect_no_range("bytes  1-5/10"); /* two spaces after the unit */
    expect_no_range("bytes\t1-5/10"); /* a tab is not the SP the grammar wants */
    expect_no_range("bytes=1-5/10");  /* the request's Range syntax */
    expect_no_range("bites 1-5/10");  /* another unit */
    expect_no_range("items 1-5/10");
    expect_no_range("bytes 1-5/10, 20-30/40"); /* a second range */
    expect_no_range("bytes 1-5/10x");          /* trailing junk */
    expect_no_range("bytes 1-5/10\r\n");       /* CR LF is not OWS */
    expect_no_range("bytes 1-5/**");
    expect_no_range("bytes 0x1-5/10");
    expect_no_range("bytes 1-5/ 10");
    expect_no_range("bytes 0-4294967295/*");           /* a length of 2^32 */
    expect_no_range("bytes 4294967296-4294967296/*");  /* first past 32 bits */
    expect_no_range("bytes 0-4294967296/*");           /* last past 32 bits */
    expect_no_range("bytes 0-1/4294967296");           /* total past 32 bits */
    expect_no_range("bytes 0-1/99999999999999999999"); /* far past: no wrap-around */
}

static void writes_range_headers(void **state)
{
    (void)state;
    char out[IOTD_ESP_RANGE_MAX];

    assert_true(iotd_esp__range_header(out, sizeof(out), 0, 4096));
    assert_string_equal(out, "bytes=0-4095");
    assert_true(iotd_esp__range_header(out, sizeof(out), 8192, 1));
    assert_string_equal(out, "bytes=8192-8192");
    assert_true(iotd_esp__range_header(out, sizeof(out), 4294967295u, 1));
    assert_string_equal(out, "bytes=4294967295-4294967295"); /* the longest: exactly fits */
    assert_int_equal(strlen(out) + 1, sizeof(out));
    assert_true(iotd_esp__range_header(out, sizeof(out), 0, 4294967295u));
    assert_string_equal(out, "bytes=0-4294967294");

    assert_false(iotd_esp__range_header(out, sizeof(out), 0, 0)); /* nothing asked */
    assert_string_equal(out, "");
    assert_false(iotd_esp__range_header(out, sizeof(out), 4294967295u, 2)); /* past 2^32 - 1 */
    assert_false(iotd_esp__range_header(out, sizeof(out), 2, 4294967295u));
    assert_true(iotd_esp__range_header(out, sizeof(out), 1, 4294967295u)); /* up to the last byte */
    assert_string_equal(out, "bytes=1-4294967295");
    assert_false(iotd_esp__range_header(out, 12, 0, 4096)); /* "bytes=0-4095" + NUL is 13 */
    assert_string_equal(out, "");
    assert_true(iotd_esp__range_header(out, 13, 0, 4096));
    assert_string_equal(out, "bytes=0-4095");
    assert_false(iotd_esp__range_header(out, 8, 0, 4096)); /* "bytes=0" and no room for '-' */
    assert_string_equal(out, "");
    assert_false(iotd_esp__range_header(out, 0, 0, 1));
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

static void keeps_one_header_that_fits(void **state)
{
    (void)state;
    char dst[8];
    bool seen = false, bad = false;

    iotd_esp__keep_header("120", dst, sizeof(dst), &seen, &bad);
    assert_true(seen);
    assert_false(bad);
    assert_string_equal(dst, "120");
    /* The same header again: neither value is used. */
    iotd_esp__keep_header("5", dst, sizeof(dst), &seen, &bad);
    assert_true(bad);
    assert_string_equal(dst, "120");

    seen = bad = false;
    iotd_esp__keep_header("1234567", dst, sizeof(dst), &seen, &bad); /* 7 and the NUL */
    assert_false(bad);
    assert_string_equal(dst, "1234567");
    seen = bad = false;
    iotd_esp__keep_header("12345678", dst, sizeof(dst), &seen, &bad);
    assert_true(seen);
    assert_true(bad);
    assert_string_equal(dst, "1234567");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(compares_header_names),
        cmocka_unit_test(finds_tokens),
        cmocka_unit_test(escapes_for_the_console),
        cmocka_unit_test(escape_cuts_at_the_cap),
        cmocka_unit_test(joins_within_the_cap),
        cmocka_unit_test(finds_the_common_name),
        cmocka_unit_test(parses_content_ranges),
        cmocka_unit_test(refuses_malformed_content_ranges),
        cmocka_unit_test(writes_range_headers),
        cmocka_unit_test(keeps_one_header_that_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
