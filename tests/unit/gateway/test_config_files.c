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

#include "config_files.h"
#include "iot/fsutil.h"

#define ORIGIN "t.conf"
#define BIG    (128 * 1024)

static char dir[64];

/* The files a valid configuration names, made by make_dir. */
static const char *const files[][2] = {
    {"tls_cert", "tls.crt"}, {"tls_key", "tls.key"}, {"client_ca", "ca.crt"},
    {"crl_file", "crl.pem"}, {"registry", "reg.db"}, {"mqtt_ca", "mqtt-ca.crt"},
    {"mqtt_cert", "mq.crt"}, {"mqtt_key", "mq.key"},
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static void path_of(char *buf, size_t size, const char *name)
{
    assert_true((size_t)snprintf(buf, size, "%s/%s", dir, name) < size);
}

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-config.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    char path[256];
    for (size_t i = 0; i < N_FILES; i++) {
        path_of(path, sizeof(path), files[i][1]);
        if (iot_file_create(path, "pem\n", 4, 0600, NULL) != IOT_OK)
            return -1;
    }
    path_of(path, sizeof(path), "admin.token");
    if (iot_file_create(path, "token\n", 6, 0600, NULL) != IOT_OK)
        return -1;
    path_of(path, sizeof(path), "outbox");
    return mkdir(path, 0700);
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes the required keys, pointing at the scratch files, into buf. */
static void required_text(char *buf, size_t size)
{
    size_t used = 0;
    char path[256];
    for (size_t i = 0; i < N_FILES; i++) {
        path_of(path, sizeof(path), files[i][1]);
        used += (size_t)snprintf(buf + used, size - used, "%s = %s\n", files[i][0], path);
        assert_true(used < size);
    }
    path_of(path, sizeof(path), "outbox/outbox.db");
    used += (size_t)snprintf(buf + used, size - used, "mqtt_host = localhost\noutbox = %s\n", path);
    assert_true(used < size);
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
    path_of(path, sizeof(path), name);
    assert_int_equal(chmod(path, mode), 0);
}

typedef struct warnings {
    int n;
    char key[8][32];
    char msg[8][IOT_ERR_MSG_MAX];
} warnings;

static void collect(void *ctx, const char *key, const char *message)
{
    warnings *w = ctx;
    assert_true(w->n < 8);
    snprintf(w->key[w->n], sizeof(w->key[0]), "%s", key);
    snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", message);
    w->n++;
}

static void assert_contains(const char *msg, const char *fragment)
{
    if (strstr(msg, fragment) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", fragment, msg);
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
        assert_contains(err.msg, f1);
    if (f2 != NULL)
        assert_contains(err.msg, f2);
}

/* ------------------------------------------------------------------------ */

static void check_files_passes_the_scratch_files(void **state)
{
    (void)state;
    gw_config c;
    valid_config(&c);
    warnings w = {0};
    iot_err err = {0};
    assert_int_equal(gw_config_check_files(&c, collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 0);
}

static void write_file(const char *name, const char *text, size_t len)
{
    char path[256];
    path_of(path, sizeof(path), name);
    unlink(path);
    assert_int_equal(iot_file_create(path, text, len, 0600, NULL), IOT_OK);
}

static void check_files_finds_each_fault(void **state)
{
    (void)state;
    gw_config c;
    char path[256];

    valid_config(&c);
    path_of(path, sizeof(path), "missing.crt");
    snprintf(c.crl_file, sizeof(c.crl_file), "%s", path);
    check_expect(&c, IOT_ENOENT, "crl_file: cannot read", path);

    valid_config(&c);
    path_of(path, sizeof(path), "outbox");
    snprintf(c.client_ca, sizeof(c.client_ca), "%s", path);
    check_expect(&c, IOT_EINVAL, "client_ca:", "is not a regular file");

    valid_config(&c);
    path_of(path, sizeof(path), "nowhere/outbox.db");
    snprintf(c.outbox, sizeof(c.outbox), "%s", path);
    check_expect(&c, IOT_ENOENT, "outbox: directory", "does not exist");

    valid_config(&c);
    path_of(path, sizeof(path), "tls.crt/outbox.db");
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
    path_of(path, sizeof(path), "tls.key");
    check_expect(&c, IOT_EPERM, "tls_key: private key", path);
    check_expect(&c, IOT_EPERM, "mode 0640", "chmod 600");
    chmod_file("tls.key", 0600);

    chmod_file("mq.key", 0604);
    check_expect(&c, IOT_EPERM, "mqtt_key: private key", "mode 0604");

    /* development_mode: the same files pass, each with a warning. */
    chmod_file("tls.key", 0644);
    c.development_mode = true;
    warnings w = {0};
    iot_err err = {0};
    assert_int_equal(gw_config_check_files(&c, collect, &w, &err), IOT_OK);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.key[0], "tls_key");
    assert_contains(w.msg[0], "mode 0644");
    assert_string_equal(w.key[1], "mqtt_key");
    assert_contains(w.msg[1], "mode 0604");
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
    path_of(path, sizeof(path), "admin.token");
    size_t used = strlen(text);
    assert_true((size_t)snprintf(text + used, sizeof(text) - used, "admin_token_file = %s\n",
                                 path) < sizeof(text) - used);
    iot_err err = {0};
    assert_int_equal(gw_config_parse(text, strlen(text), ORIGIN, &c, &err), IOT_OK);
    check_expect(&c, IOT_OK, NULL, NULL);

    chmod_file("admin.token", 0644);
    check_expect(&c, IOT_EPERM, "t.conf:11: admin_token_file: private key", "mode 0644");
    c.development_mode = true;
    warnings w = {0};
    assert_int_equal(gw_config_check_files(&c, collect, &w, &err), IOT_EPERM);
    assert_contains(err.msg, "admin_token_file");
    assert_int_equal(w.n, 0);
    chmod_file("admin.token", 0600);

    path_of(path, sizeof(path), "absent.token");
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
    path_of(path, sizeof(path), "good.conf");
    gw_config c;
    iot_err err = {0};
    assert_int_equal(gw_config_load(path, &c, &err), IOT_OK);
    assert_int_equal(c.workers, 2);
    assert_string_equal(c.mqtt_host, "localhost");

    /* Parse errors name the file and line. */
    strncat(text, "workers = 3\n", sizeof(text) - strlen(text) - 1);
    write_file("dup.conf", text, strlen(text));
    path_of(path, sizeof(path), "dup.conf");
    assert_int_equal(gw_config_load(path, &c, &err), IOT_EINVAL);
    char want[600];
    snprintf(want, sizeof(want), "duplicate key 'workers' at %s:12", path);
    assert_contains(err.msg, want);

    /* Validation errors name the file. */
    write_file("short.conf", "workers = 2\n", 12);
    path_of(path, sizeof(path), "short.conf");
    assert_int_equal(gw_config_load(path, &c, &err), IOT_EINVAL);
    snprintf(want, sizeof(want), "%s: required key 'tls_cert' is not set", path);
    assert_contains(err.msg, want);

    path_of(path, sizeof(path), "absent.conf");
    assert_int_equal(gw_config_load(path, &c, &err), IOT_ENOENT);
    assert_contains(err.msg, path);

    /* So do the checks of the files it names, at the line naming them. */
    char crl[256];
    char away[256];
    path_of(crl, sizeof(crl), "crl.pem");
    path_of(away, sizeof(away), "crl.pem.away");
    assert_int_equal(rename(crl, away), 0);
    path_of(path, sizeof(path), "good.conf");
    iot_status st = gw_config_load(path, &c, &err);
    assert_int_equal(rename(away, crl), 0);
    assert_int_equal(st, IOT_ENOENT);
    snprintf(want, sizeof(want), "%s:4: crl_file: cannot read %s", path, crl);
    assert_contains(err.msg, want);

    char *big = malloc(BIG);
    assert_non_null(big);
    memset(big, '#', BIG);
    write_file("big.conf", big, 64 * 1024 + 1);
    free(big);
    path_of(path, sizeof(path), "big.conf");
    assert_int_equal(gw_config_load(path, &c, &err), IOT_ENOMEM);
    assert_contains(err.msg, "the limit is 65536");
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
