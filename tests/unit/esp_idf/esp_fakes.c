/* See esp_fakes.h. */
#include "esp_fakes.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "esp_log.h"

fake_http http;
int64_t fake_now = 1800000000; /* 2027-01-15 08:00:00 UTC */
uint64_t fake_uptime;
char fake_log[8192];

/* ---- log, errors, clock ------------------------------------------------------------------ */

void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
{
    size_t used = strlen(fake_log);
    va_list ap;

    (void)level;
    (void)tag;
    va_start(ap, format);
    (void)vsnprintf(fake_log + used, sizeof(fake_log) - used, format, ap);
    va_end(ap);
    used = strlen(fake_log);
    if (used + 1 < sizeof(fake_log))
        memcpy(fake_log + used, "\n", 2);
}

const char *esp_err_to_name(esp_err_t code)
{
    (void)code;
    return "ERR";
}

bool iotd_esp_wall_time(void *ctx, int64_t *unix_s)
{
    (void)ctx;
    *unix_s = fake_now;
    return true;
}

/* ---- NVS ---------------------------------------------------------------------------------- */

#define NVS_ENTRIES 12
static struct {
    char key[16];
    uint8_t data[IOTD_ESP_CRED_CHAIN_MAX];
    size_t len;
    bool used;
} nvs[NVS_ENTRIES];

static int nvs_find(const char *key)
{
    for (int i = 0; i < NVS_ENTRIES; i++)
        if (nvs[i].used && strcmp(nvs[i].key, key) == 0)
            return i;
    return -1;
}

esp_err_t nvs_open(const char *ns, nvs_open_mode_t mode, nvs_handle_t *h)
{
    (void)ns, (void)mode;
    *h = 1;
    return ESP_OK;
}

void nvs_close(nvs_handle_t h)
{
    (void)h;
}

esp_err_t nvs_commit(nvs_handle_t h)
{
    (void)h;
    return ESP_OK;
}

esp_err_t nvs_set_blob(nvs_handle_t h, const char *key, const void *value, size_t length)
{
    (void)h;
    int i = nvs_find(key);
    for (int k = 0; i < 0 && k < NVS_ENTRIES; k++)
        if (!nvs[k].used)
            i = k;
    assert_true(i >= 0 && length <= sizeof(nvs[i].data));
    snprintf(nvs[i].key, sizeof(nvs[i].key), "%s", key);
    memcpy(nvs[i].data, value, length);
    nvs[i].len = length;
    nvs[i].used = true;
    return ESP_OK;
}

esp_err_t nvs_get_blob(nvs_handle_t h, const char *key, void *out, size_t *length)
{
    (void)h;
    int i = nvs_find(key);
    if (i < 0)
        return ESP_ERR_NVS_NOT_FOUND;
    if (*length < nvs[i].len)
        return ESP_ERR_NVS_INVALID_LENGTH;
    memcpy(out, nvs[i].data, nvs[i].len);
    *length = nvs[i].len;
    return ESP_OK;
}

esp_err_t nvs_set_u8(nvs_handle_t h, const char *key, uint8_t value)
{
    return nvs_set_blob(h, key, &value, 1);
}

esp_err_t nvs_get_u8(nvs_handle_t h, const char *key, uint8_t *out)
{
    size_t n = 1;
    return nvs_get_blob(h, key, out, &n);
}

esp_err_t nvs_set_str(nvs_handle_t h, const char *key, const char *value)
{
    return nvs_set_blob(h, key, value, strlen(value) + 1);
}

esp_err_t nvs_get_str(nvs_handle_t h, const char *key, char *out, size_t *length)
{
    return nvs_get_blob(h, key, out, length);
}

bool fake_nvs_has(const char *key)
{
    return nvs_find(key) >= 0;
}

esp_err_t nvs_erase_key(nvs_handle_t h, const char *key)
{
    (void)h;
    int i = nvs_find(key);
    if (i < 0)
        return ESP_ERR_NVS_NOT_FOUND;
    nvs[i].used = false;
    return ESP_OK;
}

/* ---- esp_http_client: one scripted exchange, everything the request carried recorded ---- */

struct esp_http_client {
    int unused;
};

static struct esp_http_client the_client;

static void copy_or_flag(char *dst, size_t cap, const char *src, bool *has)
{
    *has = src != NULL;
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

esp_http_client_handle_t esp_http_client_init(const esp_http_client_config_t *config)
{
    /* A new client: nothing of the last request's headers or body. */
    http.inits++;
    http.cfg = *config;
    http.read_at = 0;
    http.auth[0] = http.content_type[0] = http.sent[0] = '\0';
    snprintf(http.url, sizeof(http.url), "%s", config->url);
    return &the_client;
}

esp_err_t esp_http_client_set_header(esp_http_client_handle_t c, const char *key, const char *value)
{
    (void)c;
    if (strcmp(key, "Authorization") == 0)
        snprintf(http.auth, sizeof(http.auth), "%s", value);
    else if (strcmp(key, "Content-Type") == 0)
        snprintf(http.content_type, sizeof(http.content_type), "%s", value);
    return ESP_OK;
}

/* TLS reads the PEM while it connects: what it sees then is what the request presented. */
esp_err_t esp_http_client_open(esp_http_client_handle_t c, int write_len)
{
    (void)c;
    (void)write_len;
    copy_or_flag(http.cert, sizeof(http.cert), http.cfg.client_cert_pem, &http.has_cert);
    copy_or_flag(http.key, sizeof(http.key), http.cfg.client_key_pem, &http.has_key);
    return http.fail_open ? ESP_FAIL : ESP_OK;
}

int esp_http_client_write(esp_http_client_handle_t c, const char *buffer, int len)
{
    (void)c;
    assert_true((size_t)len < sizeof(http.sent));
    memcpy(http.sent, buffer, (size_t)len);
    http.sent[len] = '\0';
    return len;
}

int64_t esp_http_client_fetch_headers(esp_http_client_handle_t c)
{
    (void)c;
    if (http.route != NULL)
        http.route(http.url);
    for (int i = 0; i < 2 && http.retry_after[i] != NULL; i++) {
        esp_http_client_event_t evt = {
            .event_id = HTTP_EVENT_ON_HEADER,
            .client = &the_client,
            .user_data = http.cfg.user_data,
            .header_key = (char *)"retry-after",
            .header_value = (char *)http.retry_after[i],
        };
        http.cfg.event_handler(&evt);
    }
    return http.body != NULL ? (int64_t)strlen(http.body) : 0;
}

int esp_http_client_read(esp_http_client_handle_t c, char *buffer, int len)
{
    (void)c;
    size_t left = http.body != NULL ? strlen(http.body) - http.read_at : 0;
    size_t n = left < (size_t)len ? left : (size_t)len;
    if (n > 7)
        n = 7; /* the answer comes in pieces */
    memcpy(buffer, http.body + http.read_at, n);
    http.read_at += n;
    return (int)n;
}

int esp_http_client_get_status_code(esp_http_client_handle_t c)
{
    (void)c;
    return http.status;
}

esp_err_t esp_http_client_cleanup(esp_http_client_handle_t c)
{
    (void)c;
    http.cleanups++;
    return ESP_OK;
}

void fakes_reset(void)
{
    memset(nvs, 0, sizeof(nvs));
    memset(&http, 0, sizeof(http));
    memset(fake_log, 0, sizeof(fake_log));
    http.status = 200;
    http.body = "";
    fake_now = 1800000000;
    fake_uptime = 0;
}
