/* Connections per device: the cap, isolation between devices, release. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "devlimit.h"

static void cap_per_device(void **state)
{
    (void)state;
    gw_dev_limit *dl = gw_dev_limit_new(2);
    assert_non_null(dl);
    assert_true(gw_dev_limit_acquire(dl, "dev-a"));
    assert_true(gw_dev_limit_acquire(dl, "dev-a"));
    assert_false(gw_dev_limit_acquire(dl, "dev-a"));
    assert_int_equal(gw_dev_limit_held(dl, "dev-a"), 2);
    assert_true(gw_dev_limit_acquire(dl, "dev-b")); /* another device is not affected */
    gw_dev_limit_release(dl, "dev-a");
    assert_true(gw_dev_limit_acquire(dl, "dev-a"));
    assert_int_equal(gw_dev_limit_held(dl, "dev-a"), 2);
    gw_dev_limit_release(dl, "dev-unknown"); /* never acquired: no effect */
    assert_int_equal(gw_dev_limit_held(dl, "dev-unknown"), 0);
    gw_dev_limit_free(dl);
}

/* Many devices in few buckets: each keeps its own count. */
static void many_devices(void **state)
{
    (void)state;
    gw_dev_limit *dl = gw_dev_limit_new(1);
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "dev-%d", i);
        assert_true(gw_dev_limit_acquire(dl, name));
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "dev-%d", i);
        assert_false(gw_dev_limit_acquire(dl, name));
        gw_dev_limit_release(dl, name);
        assert_int_equal(gw_dev_limit_held(dl, name), 0);
    }
    gw_dev_limit_free(dl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_per_device),
        cmocka_unit_test(many_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
