/* config_test.h */
#include "config_test.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

const char *const gwt_config_files[GWT_CONFIG_N_FILES][2] = {
    {"tls_cert", "tls.crt"}, {"tls_key", "tls.key"}, {"client_ca", "ca.crt"},
    {"crl_file", "crl.pem"}, {"registry", "reg.db"}, {"mqtt_ca", "mqtt-ca.crt"},
    {"mqtt_cert", "mq.crt"}, {"mqtt_key", "mq.key"},
};

void gwt_path_of(char *buf, size_t size, const char *dir, const char *name)
{
    assert_true((size_t)snprintf(buf, size, "%s/%s", dir, name) < size);
}

void gwt_required_text(char *buf, size_t size, const char *dir, const char *host)
{
    size_t used = 0;
    char path[256];
    for (size_t i = 0; i < GWT_CONFIG_N_FILES; i++) {
        gwt_path_of(path, sizeof(path), dir, gwt_config_files[i][1]);
        used +=
            (size_t)snprintf(buf + used, size - used, "%s = %s\n", gwt_config_files[i][0], path);
        assert_true(used < size);
    }
    gwt_path_of(path, sizeof(path), dir, "outbox/outbox.db");
    used += (size_t)snprintf(buf + used, size - used, "mqtt_host = %s\noutbox = %s\n", host, path);
    assert_true(used < size);
}

void gwt_collect(void *ctx, const char *key, const char *message)
{
    gwt_warnings *w = ctx;
    assert_true(w->n < 8);
    snprintf(w->key[w->n], sizeof(w->key[0]), "%s", key);
    snprintf(w->msg[w->n], sizeof(w->msg[0]), "%s", message);
    w->n++;
}

bool gwt_warned(const gwt_warnings *w, const char *key)
{
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->key[i], key) == 0)
            return true;
    return false;
}

void gwt_assert_contains(const char *msg, const char *fragment)
{
    if (strstr(msg, fragment) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", fragment, msg);
}
