/* Log lines: no argument can end its field, add a field or break the line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static void quoted_values_are_escaped(void **state)
{
    (void)state;
    char buf[256];
    gw_log_format(buf, sizeof(buf), "peer=%s subject=\"%s\"", "10.0.0.1:5",
                  "x\" peer=1.2.3.4 reason=\"forged\\");
    assert_string_equal(buf,
                        "peer=10.0.0.1:5 subject=\"x\\\" peer=1.2.3.4 reason=\\\"forged\\\\\"");
}

static void unquoted_values_get_quotes_when_needed(void **state)
{
    (void)state;
    char buf[256];
    gw_log_format(buf, sizeof(buf), "a=%s b=%s c=%s d=%s", "dev-001", "x reason=forged", "",
                  "[::1]:8443");
    assert_string_equal(buf, "a=dev-001 b=\"x reason=forged\" c=\"\" d=[::1]:8443");
}

static void control_bytes_become_hex(void **state)
{
    (void)state;
    char buf[256];
    gw_log_format(buf, sizeof(buf), "s=\"%s\" t=%s", "a\nb\x1b[31m\x7f\xc3\xa9", "\r");
    assert_string_equal(buf, "s=\"a\\x0ab\\x1b[31m\\x7f\\xc3\\xa9\" t=\"\\x0d\"");
}

static void numbers_and_percent(void **state)
{
    (void)state;
    char buf[256];
    gw_log_format(buf, sizeof(buf), "i=%d u=%u z=%zu ll=%lld x=%04x f=%.3f g=%g c=%c p=100%%", -7,
                  42u, (size_t)9, -123456789012LL, 0xabu, 1.5, 0.25, 'q');
    assert_string_equal(buf, "i=-7 u=42 z=9 ll=-123456789012 x=00ab f=1.500 g=0.25 c=q p=100%");
}

static void long_values_are_cut_not_overflowed(void **state)
{
    (void)state;
    char big[4000];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char buf[64];
    size_t n = gw_log_format(buf, sizeof(buf), "v=\"%s\" end=%d", big, 1);
    assert_int_equal(n, sizeof(buf) - 1);
    assert_int_equal(strlen(buf), n);
}

/* The whole line, as written to stderr: one line, fields intact. */
static void one_event_is_one_line(void **state)
{
    (void)state;
    char path[] = "/tmp/test_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    gw_log(GW_LOG_WARN, "tls.refused", "peer=%s detail=\"%s\" subject=\"%s\"", "1.2.3.4:1", "bad",
           "CN=a\nlevel=error event=forged\" reason=\"x");
    dup2(saved, STDERR_FILENO);
    close(saved);
    char text[2048] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    text[n] = '\0';
    assert_non_null(strstr(text,
                           " level=warn event=tls.refused peer=1.2.3.4:1 detail=\"bad\" "
                           "subject=\"CN=a\\x0alevel=error event=forged\\\" reason=\\\"x\"\n"));
    assert_ptr_equal(strchr(text, '\n'), text + n - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(quoted_values_are_escaped),
        cmocka_unit_test(unquoted_values_get_quotes_when_needed),
        cmocka_unit_test(control_bytes_become_hex),
        cmocka_unit_test(numbers_and_percent),
        cmocka_unit_test(long_values_are_cut_not_overflowed),
        cmocka_unit_test(one_event_is_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
