/* The ESP-IDF port's EST transport (ports/esp-idf/src/est.c) over the credential slots
 * (src/cred.c), compiled against the ESP-IDF stand-ins with an esp_http_client and an NVS of
 * this file: which identity each request presents (no certificate and HTTP Basic for the
 * token, the bootstrap certificate, the active slot for simplereenroll, the candidate for the
 * probe), the request line and headers, the cap on the answer, Retry-After, no answer, and
 * that the key's PEM and the token's header do not outlive the request. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "esp_http_client.h"
#include "esp_log.h"
#include "nvs.h"

#include "iotd_esp/cred.h"
#include "iotd_esp/est.h"
#include "pem.h"

/* ---- ESP-IDF and mbedTLS pieces the sources call --------------------------------------- */

void esp_log_write(esp_log_level_t level, const char *tag, const char *format, ...)
{
    (void)level;
    (void)tag;
    (void)format;
}

const char *esp_err_to_name(esp_err_t code)
{
    (void)code;
    return "ERR";
}

static int64_t fake_now = 1800000000; /* 2027-01-15 */

bool iotd_esp_wall_time(void *ctx, int64_t *unix_s)
{
    (void)ctx;
    *unix_s = fake_now;
    return true;
}

iotd_status iotd_mbedtls_key_generate(uint8_t *der, size_t cap, size_t *len)
{
    (void)der;
    (void)cap;
    (void)len;
    return IOTD_EIO;
}

iotd_status iotd_mbedtls_csr(const uint8_t *key, size_t key_len, const char *device_id,
                             uint8_t *der, size_t cap, size_t *len)
{
    (void)key, (void)key_len, (void)device_id, (void)der, (void)cap, (void)len;
    return IOTD_EIO;
}

iotd_status iotd_mbedtls_pkcs7_cert(const uint8_t *p7, size_t len, size_t index,
                                    const uint8_t **cert, size_t *cert_len)
{
    (void)p7, (void)len, (void)index, (void)cert, (void)cert_len;
    return IOTD_ENOENT;
}

iotd_status iotd_mbedtls_cert_matches_key(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                                          size_t key_len)
{
    (void)cert, (void)cert_len, (void)key, (void)key_len;
    return IOTD_EIO;
}

iotd_status iotd_mbedtls_cert_validity(const uint8_t *cert, size_t len, iotd_cert_info *info)
{
    (void)cert, (void)len;
    info->not_before = 0;
    info->not_after = 0;
    return IOTD_OK;
}

/* ---- NVS: one namespace of blobs and u8 values in memory -------------------------------- */

#define NVS_ENTRIES 8
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

static struct {
    /* the answer */
    bool fail_open;
    int status;
    const char *body;
    const char *retry_after[2]; /* Retry-After headers sent, NULL: fewer */
    /* the request */
    int inits, cleanups;
    esp_http_client_config_t cfg;
    char url[IOTD_ESP_URL_MAX];
    char cert[IOTD_ESP_PEM_CHAIN_MAX];
    char key[IOTD_ESP_PEM_KEY_MAX];
    bool has_cert, has_key;
    char auth[IOTD_ESP_AUTH_MAX];
    char content_type[64];
    char sent[512];
    size_t read_at;
} http;
static struct esp_http_client the_client;

static void copy_or_flag(char *dst, size_t cap, const char *src, bool *has)
{
    *has = src != NULL;
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

esp_http_client_handle_t esp_http_client_init(const esp_http_client_config_t *config)
{
    http.inits++;
    http.cfg = *config;
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

/* ---- the fixture ------------------------------------------------------------------------ */

static iotd_esp_cred cred;
static iotd_cred_port port;
static iotd_esp_est est;

/* Stand-ins for a key and two certificates: DER SEQUENCEs, which is all the transport reads. */
static const uint8_t KEY[] = {0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00};
static const uint8_t CHAIN0[] = {0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x02, 0x05, 0x00};
static const uint8_t CHAIN1[] = {0x30, 0x04, 0x04, 0x02, 'c', 'd'};

static const char *BOOT_CERT = "-----BEGIN CERTIFICATE-----\nboot\n-----END CERTIFICATE-----\n";
static const char *BOOT_KEY = "-----BEGIN EC PRIVATE KEY-----\nbk\n-----END EC PRIVATE KEY-----\n";

static iotd_esp_est_config config(void)
{
    return (iotd_esp_est_config){
        .gateway_url = "https://gw.example:8443",
        .ca_pem = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n",
        .device_id = "dev-1",
        .token = "s3cret:token",
        .bootstrap_cert_pem = BOOT_CERT,
        .bootstrap_key_pem = BOOT_KEY,
        .timeout_ms = 5000,
    };
}

static int setup(void **state)
{
    (void)state;
    memset(nvs, 0, sizeof(nvs));
    memset(&http, 0, sizeof(http));
    http.status = 200;
    http.body = "MIIB...base64";
    assert_int_equal(iotd_esp_cred_open(&cred, "cred", "dev-1"), IOTD_OK);
    iotd_esp_cred_port(&cred, &port);
    iotd_esp_est_config cfg = config();
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_OK);
    return 0;
}

static void put_slot(unsigned i)
{
    assert_int_equal(nvs_set_blob(1, i == 0 ? "s0.key" : "s1.key", KEY, sizeof(KEY)), ESP_OK);
    if (i == 0)
        assert_int_equal(nvs_set_blob(1, "s0.crt", CHAIN0, sizeof(CHAIN0)), ESP_OK);
    else
        assert_int_equal(nvs_set_blob(1, "s1.crt", CHAIN1, sizeof(CHAIN1)), ESP_OK);
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static iotd_status request(iotd_est_op op, char *resp, size_t cap, iotd_http_result *r)
{
    static const char csr[] = "MIHcsr==";
    return port.est_request(port.ctx, op, op == IOTD_EST_CACERTS ? NULL : csr,
                            op == IOTD_EST_CACERTS ? 0 : strlen(csr), resp, cap, r);
}

/* ---- the tests -------------------------------------------------------------------------- */

static void token_request_is_basic_without_a_certificate(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;
    char want[IOTD_ESP_AUTH_MAX];

    assert_int_equal(request(IOTD_EST_ENROLL_TOKEN, resp, sizeof(resp), &r), IOTD_OK);
    assert_true(iotd_esp__basic_auth(want, sizeof(want), "dev-1", "s3cret:token"));
    assert_string_equal(http.auth, want);
    assert_false(http.has_cert);
    assert_false(http.has_key);
    assert_string_equal(http.url, "https://gw.example:8443/.well-known/est/simpleenroll");
    assert_int_equal(http.cfg.method, HTTP_METHOD_POST);
    assert_string_equal(http.content_type, "application/pkcs10");
    assert_string_equal(http.sent, "MIHcsr==");
    assert_string_equal(http.cfg.cert_pem, config().ca_pem); /* the gateway CA only */
    assert_int_equal(http.cfg.transport_type, HTTP_TRANSPORT_OVER_SSL);
    assert_true(http.cfg.disable_auto_redirect);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen(http.body));
    assert_memory_equal(resp, http.body, r.body_len);
    assert_false(r.has_retry_after);
    assert_int_equal(http.cleanups, 1);
    assert_true(all_zero(est.auth, sizeof(est.auth))); /* the token's header is gone */
}

static void no_token_is_enoent(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;

    iotd_esp_est_forget_token(&est);
    assert_int_equal(request(IOTD_EST_ENROLL_TOKEN, resp, sizeof(resp), &r), IOTD_ENOENT);
    assert_int_equal(http.inits, 0);

    iotd_esp_est_config cfg = config();
    cfg.bootstrap_cert_pem = NULL;
    cfg.bootstrap_key_pem = NULL;
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_OK);
    assert_int_equal(request(IOTD_EST_ENROLL_BOOTSTRAP, resp, sizeof(resp), &r), IOTD_ENOENT);
    assert_int_equal(http.inits, 0);
}

static void bootstrap_request_presents_the_factory_certificate(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;

    assert_int_equal(request(IOTD_EST_ENROLL_BOOTSTRAP, resp, sizeof(resp), &r), IOTD_OK);
    assert_string_equal(http.cert, BOOT_CERT);
    assert_string_equal(http.key, BOOT_KEY);
    assert_string_equal(http.auth, "");
    assert_string_equal(http.url, "https://gw.example:8443/.well-known/est/simpleenroll");
}

static void reenroll_presents_the_active_slot(void **state)
{
    (void)state;
    char resp[64], want[IOTD_ESP_PEM_CHAIN_MAX], want_key[IOTD_ESP_PEM_KEY_MAX];
    iotd_http_result r;

    assert_int_equal(request(IOTD_EST_REENROLL, resp, sizeof(resp), &r), IOTD_ENOENT);
    assert_int_equal(http.inits, 0);
    put_slot(0);
    put_slot(1);
    assert_int_equal(request(IOTD_EST_REENROLL, resp, sizeof(resp), &r), IOTD_OK);
    assert_true(iotd_esp__pem_chain(CHAIN0, sizeof(CHAIN0), want, sizeof(want)));
    assert_true(iotd_esp__pem_key(KEY, sizeof(KEY), want_key, sizeof(want_key)));
    assert_string_equal(http.cert, want);
    assert_string_equal(http.key, want_key);
    assert_string_equal(http.auth, "");
    assert_string_equal(http.url, "https://gw.example:8443/.well-known/est/simplereenroll");
    /* The key's copies do not outlive the request. */
    assert_true(all_zero(est.key_pem, sizeof(est.key_pem)));
    assert_true(all_zero(cred.key, sizeof(cred.key)));

    /* Slot 1 active: simplereenroll presents it. */
    assert_int_equal(nvs_set_u8(1, "active", 1), ESP_OK);
    assert_int_equal(request(IOTD_EST_REENROLL, resp, sizeof(resp), &r), IOTD_OK);
    assert_true(iotd_esp__pem_chain(CHAIN1, sizeof(CHAIN1), want, sizeof(want)));
    assert_string_equal(http.cert, want);
}

static void probe_presents_the_candidate(void **state)
{
    (void)state;
    char want[IOTD_ESP_PEM_CHAIN_MAX];
    iotd_http_result r;

    put_slot(0);
    assert_int_equal(port.probe(port.ctx, &r), IOTD_ENET); /* no candidate yet */
    assert_int_equal(http.inits, 0);
    put_slot(1);
    http.status = 204;
    http.body = "";
    assert_int_equal(port.probe(port.ctx, &r), IOTD_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    assert_true(iotd_esp__pem_chain(CHAIN1, sizeof(CHAIN1), want, sizeof(want)));
    assert_string_equal(http.cert, want);
    assert_string_equal(http.url, "https://gw.example:8443/v1/firmware/manifest");
    assert_int_equal(http.cfg.method, HTTP_METHOD_GET);
    assert_true(all_zero(est.key_pem, sizeof(est.key_pem)));
}

static void cacerts_is_a_get_without_credentials(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;

    assert_int_equal(request(IOTD_EST_CACERTS, resp, sizeof(resp), &r), IOTD_OK);
    assert_string_equal(http.url, "https://gw.example:8443/.well-known/est/cacerts");
    assert_int_equal(http.cfg.method, HTTP_METHOD_GET);
    assert_false(http.has_cert);
    assert_string_equal(http.auth, "");
    assert_string_equal(http.content_type, "");
    assert_string_equal(http.sent, "");
}

static void answer_is_capped(void **state)
{
    (void)state;
    char resp[8];
    iotd_http_result r;

    http.body = "0123456789abcdefghij";
    memset(resp, 'x', sizeof(resp));
    assert_int_equal(request(IOTD_EST_CACERTS, resp, 5, &r), IOTD_OK);
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(resp, "01234xxx", 8);
}

static void retry_after_is_parsed_once(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;

    http.status = 503;
    http.retry_after[0] = "120";
    assert_int_equal(request(IOTD_EST_ENROLL_TOKEN, resp, sizeof(resp), &r), IOTD_OK);
    assert_int_equal(r.status, 503);
    assert_true(r.has_retry_after);
    assert_int_equal(r.retry_after_s, 120);

    http.retry_after[1] = "5"; /* twice in one answer: neither is used */
    assert_int_equal(request(IOTD_EST_CACERTS, resp, sizeof(resp), &r), IOTD_OK);
    assert_false(r.has_retry_after);

    http.retry_after[0] = "soon"; /* neither delta-seconds nor a date */
    http.retry_after[1] = NULL;
    assert_int_equal(request(IOTD_EST_CACERTS, resp, sizeof(resp), &r), IOTD_OK);
    assert_false(r.has_retry_after);

    http.retry_after[0] = "Fri, 15 Jan 2027 08:02:00 GMT"; /* an HTTP-date, 120 s ahead */
    fake_now = 1800000000; /* 08:00:00 that day */
    assert_int_equal(request(IOTD_EST_CACERTS, resp, sizeof(resp), &r), IOTD_OK);
    assert_true(r.has_retry_after);
    assert_int_equal(r.retry_after_s, 120);
}

static void no_answer_is_enet(void **state)
{
    (void)state;
    char resp[64];
    iotd_http_result r;

    http.fail_open = true;
    assert_int_equal(request(IOTD_EST_ENROLL_TOKEN, resp, sizeof(resp), &r), IOTD_ENET);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(http.cleanups, 1);
    assert_true(all_zero(est.auth, sizeof(est.auth)));

    http.fail_open = false;
    http.status = 42; /* not an HTTP status */
    assert_int_equal(request(IOTD_EST_CACERTS, resp, sizeof(resp), &r), IOTD_ENET);
    assert_int_equal(r.body_len, 0);
}

static void init_refuses_bad_configurations(void **state)
{
    (void)state;
    iotd_esp_est_config cfg = config();

    cfg.gateway_url = "http://gw.example";
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_EINVAL);
    cfg = config();
    cfg.ca_pem = "";
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_EINVAL);
    cfg = config();
    cfg.bootstrap_key_pem = NULL;
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_EINVAL);
    cfg = config();
    cfg.timeout_ms = 0;
    assert_int_equal(iotd_esp_est_init(&est, &cfg, &cred, &port), IOTD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(token_request_is_basic_without_a_certificate, setup),
        cmocka_unit_test_setup(no_token_is_enoent, setup),
        cmocka_unit_test_setup(bootstrap_request_presents_the_factory_certificate, setup),
        cmocka_unit_test_setup(reenroll_presents_the_active_slot, setup),
        cmocka_unit_test_setup(probe_presents_the_candidate, setup),
        cmocka_unit_test_setup(cacerts_is_a_get_without_credentials, setup),
        cmocka_unit_test_setup(answer_is_capped, setup),
        cmocka_unit_test_setup(retry_after_is_parsed_once, setup),
        cmocka_unit_test_setup(no_answer_is_enet, setup),
        cmocka_unit_test_setup(init_refuses_bad_configurations, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
