/* The broker list of mqtt_host: forms of an entry, separators, the default
 * port, and every refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "brokers.h"

static void one_host_takes_the_default_port(void **state)
{
    (void)state;
    gw_broker b[GW_BROKERS_MAX];
    int n = -1;
    assert_null(gw_brokers_parse("broker.example.org", 8883, b, &n));
    assert_int_equal(n, 1);
    assert_string_equal(b[0].host, "broker.example.org");
    assert_int_equal(b[0].port, 8883);
}

static void list_of_every_form(void **state)
{
    (void)state;
    gw_broker b[GW_BROKERS_MAX];
    int n = 0;
    assert_null(gw_brokers_parse(" a.example:8884, 192.0.2.7  [2001:db8::1]:9000,2001:db8::2 ",
                                 8883, b, &n));
    assert_int_equal(n, 4);
    assert_string_equal(b[0].host, "a.example");
    assert_int_equal(b[0].port, 8884);
    assert_string_equal(b[1].host, "192.0.2.7");
    assert_int_equal(b[1].port, 8883);
    assert_string_equal(b[2].host, "2001:db8::1");
    assert_int_equal(b[2].port, 9000);
    assert_string_equal(b[3].host, "2001:db8::2");
    assert_int_equal(b[3].port, 8883);
}

static void refusals(void **state)
{
    (void)state;
    gw_broker b[GW_BROKERS_MAX];
    int n = 0;
    assert_string_equal(gw_brokers_parse("", 8883, b, &n), "no broker address");
    assert_string_equal(gw_brokers_parse(" , ", 8883, b, &n), "no broker address");
    assert_non_null(gw_brokers_parse("a.example:0", 8883, b, &n));
    assert_non_null(gw_brokers_parse("a.example:70000", 8883, b, &n));
    assert_non_null(gw_brokers_parse("a.example:x1", 8883, b, &n));
    assert_non_null(gw_brokers_parse("a.example good.example bad_name!", 8883, b, &n));
    assert_int_equal(n, 0);
    assert_non_null(gw_brokers_parse("[2001:db8::1", 8883, b, &n));
    assert_non_null(gw_brokers_parse("[2001:db8::1]8884", 8883, b, &n));
    assert_non_null(gw_brokers_parse("[not-v6]:8884", 8883, b, &n));
    assert_string_equal(gw_brokers_parse("a b c d e f g h i", 8883, b, &n), "more than 8 brokers");
    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_non_null(gw_brokers_parse(longname, 8883, b, &n));
    assert_null(gw_brokers_check("a.example b.example:8884"));
    assert_non_null(gw_brokers_check("a.example b.example:"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_host_takes_the_default_port),
        cmocka_unit_test(list_of_every_form),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
