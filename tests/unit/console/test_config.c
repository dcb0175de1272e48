/* The console's configuration table: defaults, parsing, validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "config.h"
#include "iot/fsutil.h"

static const char BASE[] = "tls_cert = /c.pem\ntls_key = /k.pem\noperators = /ops\n"
                           "registry = /r.db\n";

static iot_status load(const char *extra, ic_config *cfg, iot_err *err)
{
    char text[2048];
    snprintf(text, sizeof(text), "%s%s", BASE, extra);
    ic_config_defaults(cfg);
    iot_status st = ic_config_parse(text, strlen(text), "test.conf", cfg, err);
    return st == IOT_OK ? ic_config_validate(cfg, err) : st;
}

static void secure_defaults(void **state)
{
    (void)state;
    ic_config cfg;
    iot_err err = {0};
    assert_int_equal(load("", &cfg, &err), IOT_OK);
    assert_string_equal(cfg.listen, "127.0.0.1:8444");
    assert_string_equal(cfg.origin, "https://localhost:8444");
    assert_int_equal(cfg.session_idle_ms, 30 * 60 * 1000);
    assert_false(cfg.listen_remote);
    ic_config_path files[32];
    size_t n = ic_config_files(&cfg, files, 32);
    bool key_private = false, ops_private = false;
    for (size_t i = 0; i < n; i++) {
        key_private |= strcmp(files[i].key, "tls_key") == 0 && files[i].private_key;
        ops_private |= strcmp(files[i].key, "operators") == 0 && files[i].private_key;
    }
    assert_true(key_private);
    assert_true(ops_private);
}

static void refusals(void **state)
{
    (void)state;
    ic_config cfg;
    iot_err err = {0};
    assert_int_equal(load("listen = 0.0.0.0:8444\n", &cfg, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "loopback"));
    assert_int_equal(load("listen = 0.0.0.0:8444\nlisten_remote = yes\n", &cfg, &err), IOT_OK);
    assert_int_equal(load("bogus = 1\n", &cfg, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "test.conf:5"));
    assert_int_equal(load("max_sessions = 0\n", &cfg, &err), IOT_EINVAL);
    assert_int_equal(load("session_idle = 5\n", &cfg, &err), IOT_EINVAL);
    assert_int_equal(load("mqtt_host = localhost\n", &cfg, &err), IOT_EINVAL);
    assert_int_equal(load("gateways = http://127.0.0.1:9100\n", &cfg, &err), IOT_OK);
    assert_int_equal(load("origin = http://localhost:8444\n", &cfg, &err), IOT_EINVAL);
    assert_int_equal(load("origin = https://localhost:8444/x\n", &cfg, &err), IOT_EINVAL);
    assert_int_equal(load("registry = /other\n", &cfg, &err), IOT_EINVAL); /* twice */
    assert_int_equal(load("session_max = 10m\nsession_idle = 1h\n", &cfg, &err), IOT_EINVAL);
    ic_config_defaults(&cfg);
    assert_int_equal(ic_config_parse("", 0, "empty.conf", &cfg, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "required"));
}

/* docs/console.md's configuration table names every key of the table. */
static void every_key_documented(void **state)
{
    (void)state;
    char *doc = NULL;
    size_t len = 0;
    iot_err err = {0};
    assert_int_equal(iot_file_read(IOT_SOURCE_DIR "/docs/console.md", 1 << 20, &doc, &len, &err),
                     IOT_OK);
    const char *keys[64];
    size_t n = ic_config_keys(keys, 64);
    assert_true(n > 20);
    for (size_t i = 0; i < n; i++) {
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "`%s`", keys[i]);
        if (strstr(doc, quoted) == NULL)
            fail_msg("docs/console.md does not document %s", keys[i]);
    }
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secure_defaults),
        cmocka_unit_test(refusals),
        cmocka_unit_test(every_key_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
