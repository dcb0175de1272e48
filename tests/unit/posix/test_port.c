/* The POSIX port's glue: gateway URLs, log lines, the clock and random
 * functions, and credential errors that name the file at fault. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "iotd_posix/port.h"

static void gateway_urls(void **st)
{
    (void)st;
    char host[IOTD_POSIX_HOST_MAX + 1], port[6];
    iot_err err = {0};
    assert_int_equal(iotd_posix_url_parse("https://localhost:8443", host, sizeof(host), port,
                                          sizeof(port), &err),
                     IOT_OK);
    assert_string_equal(host, "localhost");
    assert_string_equal(port, "8443");
    assert_int_equal(iotd_posix_url_parse("HTTPS://gw.example.org/", host, sizeof(host), port,
                                          sizeof(port), &err),
                     IOT_OK);
    assert_string_equal(host, "gw.example.org");
    assert_string_equal(port, "443");
    assert_int_equal(
        iotd_posix_url_parse("https://[::1]:9000", host, sizeof(host), port, sizeof(port), &err),
        IOT_OK);
    assert_string_equal(host, "::1");
    assert_string_equal(port, "9000");

    static const char *const bad[] = {
        "http://localhost:8443",
        "https://localhost/v1/telemetry",
        "https://localhost?x=1",
        "https://user@localhost",
        "https://localhost:0",
        "localhost:8443",
        "https://",
        "https://localhost:99999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(iotd_posix_url_parse(bad[i], host, sizeof(host), port, sizeof(port), &err),
                         IOT_EINVAL);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    /* A host that does not fit is refused, not cut. */
    char small[4];
    assert_int_equal(
        iotd_posix_url_parse("https://localhost", small, sizeof(small), port, sizeof(port), &err),
        IOT_EINVAL);
}

static void log_lines(void **st)
{
    (void)st;
    char line[256];
    size_t n =
        iotd_posix_log_format(line, sizeof(line), 1795625400123, "dev-1", IOTD_LOG_WARN,
                              "upload.rejected", "{\"error\":\"bad\\x\"}\n\x01\xc3\xa9 end\r\n");
    assert_string_equal(line, "2026-11-25T16:50:00.123Z level=warn device=dev-1 "
                              "event=upload.rejected msg=\"{\\\"error\\\":\\\"bad\\\\x\\\"}?"
                              "??? end\"\n");
    assert_int_equal(n, strlen(line));

    /* Cut to fit, still one line. */
    char small[48];
    n = iotd_posix_log_format(small, sizeof(small), 0, "d", IOTD_LOG_ERROR, "e",
                              "a long message that cannot fit in the buffer");
    assert_int_equal(n, strlen(small));
    assert_true(n < sizeof(small));
    assert_int_equal(small[n - 1], '\n');
    assert_ptr_equal(strchr(small, '\n'), small + n - 1);
    assert_string_equal(iotd_posix_level_name(IOTD_LOG_DEBUG), "debug");
}

static void clock_and_random(void **st)
{
    (void)st;
    iotd_posix p;
    iotd_port port;
    memset(&p, 0, sizeof(p));
    iotd_posix_port(&p, &port);
    assert_ptr_equal(port.ctx, &p);
    int64_t now = 0;
    assert_true(port.wall_time(port.ctx, &now));
    assert_true(now >= IOTD_MIN_WALL_TIME);
    uint64_t a = port.uptime_ms(port.ctx);
    port.sleep_ms(port.ctx, 20);
    uint64_t b = port.uptime_ms(port.ctx);
    assert_true(b >= a + 19 && b < a + 2000);
    /* 32 draws are not all equal, and every bit position varies. */
    uint32_t all_or = 0, all_and = UINT32_MAX;
    for (int i = 0; i < 32; i++) {
        uint32_t r = port.random_u32(port.ctx);
        all_or |= r;
        all_and &= r;
    }
    assert_int_equal(all_or, UINT32_MAX);
    assert_int_equal(all_and, 0);
}

static char dir[64];

static int make_dir(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/iotd-port.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void credential_errors_name_the_file(void **st)
{
    (void)st;
    char key[128], cert[128], ca[128], state[128];
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    iotd_posix_config cfg = {
        .device_id = "dev-1",
        .state_dir = state,
        .https = {.url = "https://localhost:1",
                  .ca_file = ca,
                  .cert_file = cert,
                  .key_file = key,
                  .device_id = "dev-1"},
    };
    iotd_posix p;
    iot_err err = {0};
    assert_int_not_equal(iotd_posix_open(&p, &cfg, &err), IOT_OK);
    assert_non_null(strstr(err.msg, key));

    write_file(key, "not a key\n", 0644);
    memset(&err, 0, sizeof(err));
    assert_int_equal(iotd_posix_open(&p, &cfg, &err), IOT_EPERM);
    assert_non_null(strstr(err.msg, key));
    assert_non_null(strstr(err.msg, "0644"));

    assert_int_equal(chmod(key, 0600), 0);
    memset(&err, 0, sizeof(err));
    assert_int_not_equal(iotd_posix_open(&p, &cfg, &err), IOT_OK);
    assert_non_null(strstr(err.msg, cert));

    write_file(cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0644);
    memset(&err, 0, sizeof(err));
    assert_int_equal(iotd_posix_open(&p, &cfg, &err), IOT_ECRYPTO);
    assert_non_null(strstr(err.msg, cert));
    assert_non_null(strstr(err.msg, "not a valid PEM certificate"));

    /* Nothing was created for a device that could not start. */
    struct stat sb;
    assert_int_not_equal(stat(state, &sb), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gateway_urls),
        cmocka_unit_test(log_lines),
        cmocka_unit_test(clock_and_random),
        cmocka_unit_test_setup_teardown(credential_errors_name_the_file, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
