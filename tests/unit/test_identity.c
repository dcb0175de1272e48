/* Device IDs become MQTT topic segments: the rule must be exact. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "iot/identity.h"

static void accepts_valid_ids(void **state)
{
    (void)state;
    const char *ok[] = {"a", "dev-001", "Sensor_7", "x.y.z", "0", "A-._"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        assert_true(iot_id_is_valid(ok[i]));
    char max[IOT_ID_MAX + 1];
    memset(max, 'a', IOT_ID_MAX);
    max[IOT_ID_MAX] = '\0';
    assert_true(iot_id_is_valid(max));
}

static void rejects_invalid_ids(void **state)
{
    (void)state;
    const char *bad[] = {"",     ".hidden", "a/b",  "a+b", "a#b", "$SYS", "a b",
                         "a\tb", "é",       "a\nb", "..",  "a:b", "a*b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(iot_id_is_valid(bad[i]));
    assert_false(iot_id_is_valid(NULL));
    char long_id[IOT_ID_MAX + 2];
    memset(long_id, 'a', IOT_ID_MAX + 1);
    long_id[IOT_ID_MAX + 1] = '\0';
    assert_false(iot_id_is_valid(long_id));
}

static void error_names_the_bad_character(void **state)
{
    (void)state;
    iot_err err = {0};
    assert_int_equal(iot_id_check("device ID", "ab/c", &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "0x2f"));
    assert_non_null(strstr(err.msg, "position 3"));
    assert_int_equal(iot_id_check("device ID", ".x", &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "starts with a dot"));
}

static void dns_names(void **state)
{
    (void)state;
    assert_true(iot_dns_name_is_valid("localhost"));
    assert_true(iot_dns_name_is_valid("gw-1.example.org"));
    assert_false(iot_dns_name_is_valid(""));
    assert_false(iot_dns_name_is_valid("-a.example"));
    assert_false(iot_dns_name_is_valid("a..b"));
    assert_false(iot_dns_name_is_valid("*.example.org"));
    assert_false(iot_dns_name_is_valid("a,DNS:evil"));
    assert_false(iot_dns_name_is_valid("trailing."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid_ids),
        cmocka_unit_test(rejects_invalid_ids),
        cmocka_unit_test(error_names_the_bad_character),
        cmocka_unit_test(dns_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
