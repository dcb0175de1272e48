/* Key files: created atomically, 0600, never overwritten, checked on read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iot/fsutil.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-fsutil.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void create_sets_mode_and_content(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    iot_err err = {0};
    assert_int_equal(iot_file_create(path, "secret", 6, 0600, &err), IOT_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(iot_file_read(path, 100, &data, &len, &err), IOT_OK);
    assert_int_equal(len, 6);
    assert_string_equal(data, "secret");
    free(data);
}

static void create_never_overwrites(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/once.pem", dir);
    iot_err err = {0};
    assert_int_equal(iot_file_create(path, "first", 5, 0600, &err), IOT_OK);
    assert_int_equal(iot_file_create(path, "second", 6, 0600, &err), IOT_EEXIST);
    assert_non_null(strstr(err.msg, "refusing to overwrite"));
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(iot_file_read(path, 100, &data, &len, &err), IOT_OK);
    assert_string_equal(data, "first");
    free(data);
}

static void replace_swaps_content(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/crl.pem", dir);
    assert_int_equal(iot_file_replace(path, "v1", 2, 0644, NULL), IOT_OK);
    assert_int_equal(iot_file_replace(path, "v2", 2, 0644, NULL), IOT_OK);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(iot_file_read(path, 100, &data, &len, NULL), IOT_OK);
    assert_string_equal(data, "v2");
    free(data);
}

static void read_is_capped(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/big", dir);
    assert_int_equal(iot_file_create(path, "0123456789", 10, 0644, NULL), IOT_OK);
    char *data = NULL;
    size_t len = 0;
    iot_err err = {0};
    assert_int_equal(iot_file_read(path, 9, &data, &len, &err), IOT_ENOMEM);
    assert_null(data);
    assert_non_null(strstr(err.msg, "limit is 9"));
}

/* A file larger than its size said when opened (procfs says 0): read in
 * full while under the cap, refused past it. */
static void read_grows_to_the_cap(void **state)
{
    (void)state;
    char *data = NULL;
    size_t len = 0;
    iot_err err = {0};
    assert_int_equal(iot_file_read("/proc/self/status", 1 << 20, &data, &len, &err), IOT_OK);
    assert_true(len > 100);
    assert_int_equal(strlen(data), len);
    assert_non_null(strstr(data, "Name:"));
    free(data);
    data = NULL;
    assert_int_equal(iot_file_read("/proc/self/status", 40, &data, &len, &err), IOT_ENOMEM);
    assert_null(data);
    assert_non_null(strstr(err.msg, "grew past the limit of 40"));
}

static void key_mode_check(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/loose.key", dir);
    iot_err err = {0};
    assert_int_equal(iot_file_create(path, "k", 1, 0644, NULL), IOT_OK);
    assert_int_equal(iot_key_mode_check(path, &err), IOT_EPERM);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(iot_key_mode_check(path, &err), IOT_OK);
    snprintf(path, sizeof(path), "%s/missing.key", dir);
    assert_int_equal(iot_key_mode_check(path, &err), IOT_ENOENT);
}

/* Owner and mode of the PKI directory and the files in it. */
static void owner_mode_check(void **state)
{
    (void)state;
    char sub[128], path[160];
    snprintf(sub, sizeof(sub), "%s/pki", dir);
    iot_err err = {0};
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(iot_owner_mode_check("PKI directory", sub, false, &err), IOT_OK);
    assert_int_equal(chmod(sub, 0757), 0);
    assert_int_equal(iot_owner_mode_check("PKI directory", sub, false, &err), IOT_EPERM);
    assert_non_null(strstr(err.msg, "PKI directory"));
    assert_non_null(strstr(err.msg, "has mode 0757"));
    assert_non_null(strstr(err.msg, "chmod 700"));
    assert_int_equal(chmod(sub, 0755), 0); /* read-only for others is fine */
    assert_int_equal(iot_owner_mode_check("PKI directory", sub, false, &err), IOT_OK);
    snprintf(path, sizeof(path), "%s/ca.key", sub);
    assert_int_equal(iot_file_create(path, "k", 1, 0640, NULL), IOT_OK);
    assert_int_equal(iot_owner_mode_check("CA key", path, false, &err), IOT_OK);
    assert_int_equal(iot_owner_mode_check("CA key", path, true, &err), IOT_EPERM);
    assert_non_null(strstr(err.msg, "chmod 600"));
    if (geteuid() == 0) { /* only root can give a file to someone else */
        assert_int_equal(chown(sub, 65534, 65534), 0);
        assert_int_equal(iot_owner_mode_check("PKI directory", sub, false, &err), IOT_EPERM);
        assert_non_null(strstr(err.msg, "belongs to uid 65534"));
        assert_non_null(strstr(err.msg, "chown 0"));
    }
    snprintf(path, sizeof(path), "%s/missing", sub);
    assert_int_equal(iot_owner_mode_check("registry", path, false, &err), IOT_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_sets_mode_and_content),
        cmocka_unit_test(read_grows_to_the_cap),
        cmocka_unit_test(create_never_overwrites),
        cmocka_unit_test(replace_swaps_content),
        cmocka_unit_test(read_is_capped),
        cmocka_unit_test(key_mode_check),
        cmocka_unit_test(owner_mode_check),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
