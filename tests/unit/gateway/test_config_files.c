/* The configuration's file part (gateway/src/config_files.c): the checks
 * of the files a valid configuration names, against real files in a
 * scratch directory (missing, not regular, a missing directory, loose key
 * and token modes, development mode's warnings), and loading a file from
 * its path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_test.h"
#include "config_files.h"
#include "iot/fsutil.h"

#define ORIGIN "t.conf"
#define BIG    (128 * 1024)

static char dir[64];

/* The files a valid configuration names, made by make_dir. */
static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-config.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char path[256];
    for (size_t i = 0; i < GWT_CONFIG_N_FILES; i++) {
        gwt_path_of(path, sizeof(path), dir, gwt_config_files[i][1]);
        if (iot_file_create(path, "pem\n", 4, 0600, NULL) != IOT_OK)
            return -1;
    }
    gwt_path_of(path, sizeof(path), dir, "admin.token");
    if (iot_file_create(path, "token\n", 6, 0600, NULL) != IOT_OK)
        return -1;
    gwt_path_of(path, sizeof(path), dir, "outbox");
    return mkdir(path, 0700);
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void required_text(char *buf, size_t size)
{
    gwt_required_text(buf, size, dir, "localhost");
}

static void valid_config(gw_config *cfg)
{
    char text[4096];
    required_text(text, sizeof(text));
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, cfg, &err), IOT_OK);
}

static void chmod_file(const char *name, mode_t mode)
{
    char path[256];
    gwt_path_of(path, sizeof(path), dir, name);
    assert_int_equal(chmod(path, mode), 0);
}

/* The values are valid (gw_config_validate passes: it opens nothing);
 * the file checks give `want` with both fragments. */
static void check_expect(const gw_config *c, iot_status want, const char *f1, const char *f2)
{
    iot_err err = {0};
    assert_int_equal(gw_config_validate(c, NULL, NULL, &err), IOT_OK);
    iot_status st = gw_config_check_files(c, NULL, NULL, &err);
    if (st != want)
        fail_msg("status %d, want %d (%s)", st, want, err.msg);
    if (f1 != NULL)
        gwt_assert_contains(err.msg, f1);
    if (f2 != NULL)
        gwt_assert_contains(err.msg, f2);
}

/* ------------------------------------------------------------------------ */

static void check_files_passes_the_scratch_files(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    gwt_warnings w = {0};
    iot_err err = {0};
    assert_int_equal(gw_config_check_files(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 0);
}

static void write_file(const char *name, const char *text, size_t len)
{
    char path[256];
    gwt_path_of(path, sizeof(path), dir, name);
    unlink(path);
    assert_int_equal(iot_file_create(path, text, len, 0600, NULL), IOT_OK);
}

static void check_files_finds_each_fault(void **state)
{
    (void)state;
    gw_config c;
    char path[256];

    valid_config(&c);
    gwt_path_of(path, sizeof(path), dir, "missing.crt");
    snprintf(c.crl_file, sizeof(c.crl_file), "%s", path);
    check_expect(&c, IOT_ENOENT, "crl_file: cannot read", path);

    valid_config(&c);
    gwt_path_of(path, sizeof(path), dir, "outbox");
    snprintf(c.client_ca, sizeof(c.client_ca), "%s", path);
    check_expect(&c, IOT_EINVAL, "client_ca:", "is not a regular file");

    valid_config(&c);
    gwt_path_of(path, sizeof(path), dir, "nowhere/outbox.db");
    snprintf(c.outbox, sizeof(c.outbox), "%s", path);
    check_expect(&c, IOT_ENOENT, "outbox: directory", "does not exist");

    valid_config(&c);
    gwt_path_of(path, sizeof(path), dir, "tls.crt/outbox.db");
    snprintf(c.outbox, sizeof(c.outbox), "%s", path);
    check_expect(&c, IOT_EINVAL, "outbox:", "is not a directory");

    if (geteuid() != 0) {
        /* root reads anything, so unreadable files can only be tested as a user. */
        chmod_file("mq.crt", 0000);
        valid_config(&c);
        check_expect(&c, IOT_EPERM, "mqtt_cert: cannot read", "Permission denied");
        chmod_file("mq.crt", 0600);
    }
}

static void check_files_refuses_loose_key_files(void **state)
{
    (void)state;
    gw_config c;
    char path[256];
    chmod_file("tls.key", 0640);
    valid_config(&c);
    gwt_path_of(path, sizeof(path), dir, "tls.key");
    check_expect(&c, IOT_EPERM, "tls_key: private key", path);
    check_expect(&c, IOT_EPERM, "mode 0640", "chmod 600");
    chmod_file("tls.key", 0600);

    chmod_file("mq.key", 0604);
    check_expect(&c, IOT_EPERM, "mqtt_key: private key", "mode 0604");

    /* development_mode: the same files pass, each with a warning. */
    chmod_file("tls.key", 0644);
    c.development_mode = true;
    gwt_warnings w = {0};
    iot_err err = {0};
    assert_int_equal(gw_config_check_files(&c, gwt_collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.key[0], "tls_key");
    gwt_assert_contains(w.msg[0], "mode 0644");
    assert_string_equal(w.key[1], "mqtt_key");
    gwt_assert_contains(w.msg[1], "mode 0604");
    /* A NULL callback is allowed. */
    assert_int_equal(gw_config_check_files(&c, NULL, NULL, &err), IOT_OK);
    chmod_file("tls.key", 0600);
    chmod_file("mq.key", 0600);
}

/* The admin token file is refused when group or others may access it,
 * in development mode too, and located at the line that names it. */
static void check_files_refuses_a_world_readable_token_file(void **state)
{
    (void)state;
    gw_config c;
    char path[256];
    char text[4096];
    required_text(text, sizeof(text));
    gwt_path_of(path, sizeof(path), dir, "admin.token");
    size_t used = strlen(text);
    assert_true((size_t)snprintf(text + used, sizeof(text) - used, "admin_token_file = %s\n",
                                 path) < sizeof(text) - used);
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    check_expect(&c, IOT_OK, NULL, NULL);

    chmod_file("admin.token", 0644);
    check_expect(&c, IOT_EPERM, "t.conf:11: admin_token_file: private key", "mode 0644");
    c.development_mode = true;
    gwt_warnings w = {0};
    assert_int_equal(gw_config_check_files(&c, gwt_collect, &w, &err), IOT_EPERM);
    gwt_assert_contains(err.msg, "admin_token_file");
    assert_int_equal(w.n, 0);
    chmod_file("admin.token", 0600);

    gwt_path_of(path, sizeof(path), dir, "absent.token");
    snprintf(c.admin_token_file, sizeof(c.admin_token_file), "%s", path);
    check_expect(&c, IOT_ENOENT, "admin_token_file: cannot read key", path);
}

static void load_parses_validates_and_checks_files(void **state)
{
    (void)state;
    char text[4096];
    char path[256];
    required_text(text, sizeof(text));
    strncat(text, "workers = 2\n", sizeof(text) - strlen(text) - 1);
    write_file("good.conf", text, strlen(text));
    gwt_path_of(path, sizeof(path), dir, "good.conf");
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_load(path, &c, NULL, NULL, &err), IOT_OK);
    assert_int_equal(c.workers, 2);
    assert_string_equal(c.mqtt_host, "localhost");

    /* Parse errors name the file and line. */
    strncat(text, "workers = 3\n", sizeof(text) - strlen(text) - 1);
    write_file("dup.conf", text, strlen(text));
    gwt_path_of(path, sizeof(path), dir, "dup.conf");
    assert_int_equal(gw_config_load(path, &c, NULL, NULL, &err), IOT_EINVAL);
    char want[600];
    snprintf(want, sizeof(want), "duplicate key 'workers' at %s:12", path);
    gwt_assert_contains(err.msg, want);

    /* Validation errors name the file. */
    write_file("short.conf", "workers = 2\n", 12);
    gwt_path_of(path, sizeof(path), dir, "short.conf");
    assert_int_equal(gw_config_load(path, &c, NULL, NULL, &err), IOT_EINVAL);
    snprintf(want, sizeof(want), "%s: required key 'tls_cert' is not set", path);
    gwt_assert_contains(err.msg, want);

    gwt_path_of(path, sizeof(path), dir, "absent.conf");
    assert_int_equal(gw_config_load(path, &c, NULL, NULL, &err), IOT_ENOENT);
    gwt_assert_contains(err.msg, path);

    /* So do the checks of the files it names, at the line naming them. */
    char crl[256];
    char away[256];
    gwt_path_of(crl, sizeof(crl), dir, "crl.pem");
    gwt_path_of(away, sizeof(away), dir, "crl.pem.away");
    assert_int_equal(rename(crl, away), 0);
    gwt_path_of(path, sizeof(path), dir, "good.conf");
    iot_status st = gw_config_load(path, &c, NULL, NULL, &err);
    assert_int_equal(rename(away, crl), 0);
    assert_int_equal(st, IOT_ENOENT);
    snprintf(want, sizeof(want), "%s:4: crl_file: cannot read %s", path, crl);
    gwt_assert_contains(err.msg, want);

    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, '#', BIG);
    write_file("big.conf", big, 64 * 1024 + 1);
    free(big);
    gwt_path_of(path, sizeof(path), dir, "big.conf");
    assert_int_equal(gw_config_load(path, &c, NULL, NULL, &err), IOT_ENOMEM);
    gwt_assert_contains(err.msg, "the limit is 65536");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_files_passes_the_scratch_files),
        cmocka_unit_test(check_files_finds_each_fault),
        cmocka_unit_test(check_files_refuses_loose_key_files),
        cmocka_unit_test(check_files_refuses_a_world_readable_token_file),
        cmocka_unit_test(load_parses_validates_and_checks_files),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
