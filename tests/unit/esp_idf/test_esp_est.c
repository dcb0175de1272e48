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
#include <string.h>

#include "iotd_esp/cred.h"
#include "iotd_esp/est.h"
#include "pem.h"

#include "esp_fakes.h"

/* ---- mbedTLS: not reached by the transport ---------------------------------------------- */

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
    fakes_reset();
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
    /* fake_now is 08:00:00 that day */
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
