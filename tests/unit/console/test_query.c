/* Request targets: what parses, what is refused, and decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "query.h"

static const char *parse(const char *s, ic_target *t)
{
    return ic_target_parse(s, strlen(s), t);
}

static void segments_and_params(void **state)
{
    (void)state;
    ic_target t;
    assert_null(parse("/api/v1/devices?q=dev+1&sort=last_seen&order=desc&x=%41%2f", &t));
    assert_string_equal(t.path, "/api/v1/devices");
    assert_int_equal(t.n_seg, 3);
    assert_string_equal(t.seg[2], "devices");
    assert_string_equal(ic_target_param(&t, "q"), "dev 1");
    assert_string_equal(ic_target_param(&t, "x"), "A/");
    assert_null(ic_target_param(&t, "state"));
    static const char *const allowed[] = {"q", "sort", "order", NULL};
    assert_string_equal(ic_target_unknown_param(&t, allowed), "x");
    assert_null(parse("/", &t));
    assert_int_equal(t.n_seg, 0);
    assert_null(parse("/login?", &t));
    assert_int_equal(t.n_params, 0);
    assert_null(parse("/a?flag", &t));
    assert_string_equal(ic_target_param(&t, "flag"), "");
}

static void refused_targets(void **state)
{
    (void)state;
    ic_target t;
    const char *bad[] = {
        "",
        "api",
        "http://x/",
        "/a/%2e%2e/b",
        "/a//b",
        "/a/../b",
        "/a/./b",
        "/a?x=%4",
        "/a?x=%zz",
        "/a?x=1&x=2",
        "/a?=1",
        "/a?x=%00",
        "/a?x=%0a",
        "/a#frag",
        "/a?x=1#f",
        "/a b",
        "/a/b/c/d/e/f/g/h/i",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(parse(bad[i], &t));
    char long_path[IC_PATH_MAX + 3];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    assert_non_null(parse(long_path, &t));
    char long_value[IC_PARAM_VAL_MAX + 10] = "/a?v=";
    memset(long_value + 5, 'b', sizeof(long_value) - 6);
    long_value[sizeof(long_value) - 1] = '\0';
    assert_non_null(parse(long_value, &t));
    assert_non_null(parse("/a?a&b&c&d&e&f&g&h&i&j&k&l&m", &t)); /* 13 parameters */
}

static void unsigned_numbers(void **state)
{
    (void)state;
    long v = 0;
    assert_true(ic_parse_uint("30", 0, 3650, &v));
    assert_int_equal(v, 30);
    assert_true(ic_parse_uint("0", 0, 10, &v));
    assert_false(ic_parse_uint("", 0, 10, &v));
    assert_false(ic_parse_uint("-1", 0, 10, &v));
    assert_false(ic_parse_uint("+1", 0, 10, &v));
    assert_false(ic_parse_uint(" 1", 0, 10, &v));
    assert_false(ic_parse_uint("11", 0, 10, &v));
    assert_false(ic_parse_uint("1234567890", 0, 2000000000, &v));
    assert_false(ic_parse_uint("0x10", 0, 100, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(segments_and_params),
        cmocka_unit_test(refused_targets),
        cmocka_unit_test(unsigned_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
