/* Range requests against an image of known size (RFC 9110 14.1-14.2):
 * what is served, what is 416, what is ignored; entity-tag matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "range.h"

#define SIZE 1000u

static void expect_ok(const char *value, uint64_t first, uint64_t last)
{
    uint64_t f = 77, l = 77;
    gw_range_kind k = gw_range_parse(value, SIZE, &f, &l);
    if (k != GW_RANGE_OK)
        print_error("\"%s\": kind %d\n", value, k);
    assert_int_equal(k, GW_RANGE_OK);
    assert_true(f == first);
    assert_true(l == last);
}

static void expect_kind(const char *value, gw_range_kind want)
{
    uint64_t f = 0, l = 0;
    gw_range_kind k = gw_range_parse(value, SIZE, &f, &l);
    if (k != want)
        print_error("\"%s\": kind %d, want %d\n", value, k, want);
    assert_int_equal(k, want);
}

static void satisfiable_ranges(void **state)
{
    (void)state;
    expect_ok("bytes=0-99", 0, 99);
    expect_ok("bytes=0-0", 0, 0);
    expect_ok("bytes=999-999", 999, 999);
    expect_ok("bytes=500-", 500, 999);
    expect_ok("bytes=900-5000", 900, 999); /* clamped to the end */
    expect_ok("bytes=-100", 900, 999);
    expect_ok("bytes=-5000", 0, 999); /* the whole, as a suffix */
    expect_ok("BYTES=1-2", 1, 2);     /* the unit is case-insensitive */
    expect_ok("bytes= 1-2 ", 1, 2);
}

static void unsatisfiable_ranges(void **state)
{
    (void)state;
    expect_kind("bytes=1000-", GW_RANGE_UNSATISFIABLE);
    expect_kind("bytes=1000-2000", GW_RANGE_UNSATISFIABLE);
    expect_kind("bytes=-0", GW_RANGE_UNSATISFIABLE);
}

static void invalid_ranges(void **state)
{
    (void)state;
    const char *bad[] = {"bytes=",
                         "bytes=-",
                         "bytes=a-b",
                         "bytes=5-4",
                         "bytes=0-99,200-299",
                         "bytes=0-99,",
                         "bytes=--1",
                         "bytes=1--2",
                         "bytes=1-2-3",
                         "bytes=+1-2",
                         "bytes=0x10-20",
                         "bytes=1 -2",
                         "bytes=9999999999999999999-",
                         "",
                         "0-99"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_kind(bad[i], GW_RANGE_INVALID);
}

static void ignored_ranges(void **state)
{
    (void)state;
    expect_kind(NULL, GW_RANGE_NONE);
    expect_kind("items=0-5", GW_RANGE_NONE);
    expect_kind("byte=0-5", GW_RANGE_NONE);
}

static void etags(void **state)
{
    (void)state;
    const char *tag = "\"ab12\"";
    assert_true(gw_etag_matches("\"ab12\"", tag, false));
    assert_true(gw_etag_matches(" \"x\", \"ab12\" ", tag, true));
    assert_false(gw_etag_matches("W/\"ab12\"", tag, true)); /* weak: never for ranges */
    assert_false(gw_etag_matches("\"ab1\"", tag, true));
    assert_false(gw_etag_matches("ab12", tag, true));
    assert_false(gw_etag_matches("", tag, true));
    assert_true(gw_etag_matches("*", tag, true));
    assert_false(gw_etag_matches("*", tag, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(satisfiable_ranges),
        cmocka_unit_test(unsatisfiable_ranges),
        cmocka_unit_test(invalid_ranges),
        cmocka_unit_test(ignored_ranges),
        cmocka_unit_test(etags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
