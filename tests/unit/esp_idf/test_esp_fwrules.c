/* The firmware's update setting (NVS text over the build's values) and the self-test verdict of
 * an image on trial (firmware/esp32/main/fwrules.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <string.h>

#include "fwrules.h"

static const fw_setting BUILD = {IOTD_UPDATE_AUTO, 2, 5};

static void expect_setting(const char *mode, const char *window, iotd_update_mode m, uint8_t start,
                           uint8_t end)
{
    fw_setting s = BUILD;

    assert_true(fw_setting_apply(&s, mode, window));
    assert_int_equal(s.mode, m);
    assert_int_equal(s.start_h, start);
    assert_int_equal(s.end_h, end);
}

static void expect_unchanged(const char *mode, const char *window)
{
    fw_setting s = BUILD;

    if (fw_setting_apply(&s, mode, window))
        fail_msg("accepted mode \"%s\" window \"%s\"", mode ? mode : "(null)",
                 window ? window : "(null)");
    assert_memory_equal(&s, &BUILD, sizeof(s));
}

static void applies_the_nvs_setting(void **state)
{
    (void)state;
    expect_setting(NULL, NULL, IOTD_UPDATE_AUTO, 2, 5); /* nothing stored: the build's */
    expect_setting("", "", IOTD_UPDATE_AUTO, 2, 5);
    expect_setting("off", NULL, IOTD_UPDATE_OFF, 2, 5);
    expect_setting("window", NULL, IOTD_UPDATE_WINDOW, 2, 5);    /* the build's hours */
    expect_setting("window", "22-4", IOTD_UPDATE_WINDOW, 22, 4); /* past midnight */
    expect_setting("window", "01-03", IOTD_UPDATE_WINDOW, 1, 3);
    expect_setting(NULL, "0-23", IOTD_UPDATE_AUTO, 0, 23);     /* hours kept for a later window */
    expect_setting("window", "7-7", IOTD_UPDATE_WINDOW, 7, 7); /* the whole day */
}

static void keeps_the_build_setting_on_a_typo(void **state)
{
    (void)state;
    expect_unchanged("Auto", NULL); /* exact names only */
    expect_unchanged("on", NULL);
    expect_unchanged("auto ", NULL);
    expect_unchanged("window", "24-2"); /* a good mode with a bad window changes neither */
    expect_unchanged("window", "2-24");
    expect_unchanged(NULL, "2");
    expect_unchanged(NULL, "2-");
    expect_unchanged(NULL, "-5");
    expect_unchanged(NULL, "02:00-05:00");
    expect_unchanged(NULL, "002-5");
    expect_unchanged(NULL, "2-5 ");
    expect_unchanged(NULL, " 2-5");
    expect_unchanged(NULL, "+2-5");
    expect_unchanged("off", "2-5x");
}

static void names_the_modes(void **state)
{
    (void)state;
    assert_string_equal(fw_setting_mode_name(IOTD_UPDATE_AUTO), "auto");
    assert_string_equal(fw_setting_mode_name(IOTD_UPDATE_WINDOW), "window");
    assert_string_equal(fw_setting_mode_name(IOTD_UPDATE_OFF), "off");
    assert_string_equal(fw_setting_mode_name((iotd_update_mode)7), "?");
}

static void judges_the_self_test(void **state)
{
    (void)state;
    const uint64_t limit = 300000;
    iotd_stats st;

    memset(&st, 0, sizeof(st));
    assert_int_equal(fw_self_test(&st, false, 0, limit), FW_TEST_RUNNING);
    st.readings = 3;
    st.queued = 3;
    st.failures = 2; /* the network is not there yet: still running */
    assert_int_equal(fw_self_test(&st, false, limit - 1, limit), FW_TEST_RUNNING);
    assert_int_equal(fw_self_test(&st, false, limit, limit), FW_TEST_FAILED); /* timed out */
    st.sent = 1;
    assert_int_equal(fw_self_test(&st, false, limit - 1, limit), FW_TEST_PASSED);
    assert_int_equal(fw_self_test(&st, false, limit + 1, limit), FW_TEST_PASSED);

    /* Failed at once, whatever was sent: */
    assert_int_equal(fw_self_test(&st, true, 0, limit), FW_TEST_FAILED); /* 403 */
    st.rejected = 1;
    assert_int_equal(fw_self_test(&st, false, 0, limit), FW_TEST_FAILED); /* readings refused */
    st.rejected = 0;
    st.storage_errors = 1;
    assert_int_equal(fw_self_test(&st, false, 0, limit), FW_TEST_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(applies_the_nvs_setting),
        cmocka_unit_test(keeps_the_build_setting_on_a_typo),
        cmocka_unit_test(names_the_modes),
        cmocka_unit_test(judges_the_self_test),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
