/* Token buckets: burst, refill, Retry-After, per-device isolation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ratelimit.h"

static void burst_then_refill(void **state)
{
    (void)state;
    gw_ratelimit *rl = gw_ratelimit_new(2.0, 3.0);
    int retry = 0;
    assert_true(gw_ratelimit_take(rl, "d", 100.0, &retry));
    assert_true(gw_ratelimit_take(rl, "d", 100.0, &retry));
    assert_true(gw_ratelimit_take(rl, "d", 100.0, &retry));
    assert_false(gw_ratelimit_take(rl, "d", 100.0, &retry));
    assert_int_equal(retry, 1);                             /* half a second, rounded up */
    assert_true(gw_ratelimit_take(rl, "e", 100.0, &retry)); /* another device */
    assert_true(gw_ratelimit_take(rl, "d", 100.5, &retry)); /* one token back */
    assert_false(gw_ratelimit_take(rl, "d", 100.5, &retry));
    assert_true(gw_ratelimit_take(rl, "d", 110.0, &retry));
    gw_ratelimit_free(rl);
}

static void slow_rate_gives_longer_retry(void **state)
{
    (void)state;
    gw_ratelimit *rl = gw_ratelimit_new(0.1, 1.0);
    int retry = 0;
    assert_true(gw_ratelimit_take(rl, "d", 0.0, &retry));
    assert_false(gw_ratelimit_take(rl, "d", 0.0, &retry));
    assert_int_equal(retry, 10);
    gw_ratelimit_free(rl);
}

static void disabled_allows_everything(void **state)
{
    (void)state;
    gw_ratelimit *rl = gw_ratelimit_new(0, 0);
    int retry = 0;
    for (int i = 0; i < 1000; i++)
        assert_true(gw_ratelimit_take(rl, "d", 0.0, &retry));
    gw_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refill),
        cmocka_unit_test(slow_rate_gives_longer_retry),
        cmocka_unit_test(disabled_allows_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
