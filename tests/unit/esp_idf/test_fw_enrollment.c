/* The ESP32 firmware's enrollment (firmware/esp32/main/enrollment.c) over the real EST
 * transport, credential slots and core machine, compiled against the ESP-IDF stand-ins with
 * the fakes of esp_fakes.c and a certificate "cryptography" of this file: what boot does with
 * an enrolled certificate, a token, a bootstrap certificate or neither; the token erased once
 * used, and only then; the log's event names; a renewal that ends in `renewed` and a reload. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "iotd_esp/cred.h"
#include "iotd_mbedtls/cred_crypto.h"
#include "pem.h"

#include "enrollment.h"
#include "esp_fakes.h"
#include "identity.h"

/* ---- a certificate "cryptography": DER SEQUENCEs of a few bytes -------------------------- */

static const uint8_t KEY[] = {0x30, 0x05, 0x02, 0x01, 0x01, 0x04, 0x00};
static const uint8_t CRT[] = {0x30, 0x03, 'c', 'r', 't'};
static const uint8_t NEW[] = {0x30, 0x03, 'n', 'e', 'w'};
#define CACERTS_B64 "MAIFAA==" /* 30 02 05 00 */
#define CRT_B64     "MANjcnQ=" /* CRT */
#define NEW_B64     "MANuZXc=" /* NEW */
#define LIFETIME_S  (90 * 86400)

iotd_status iotd_mbedtls_key_generate(uint8_t *der, size_t cap, size_t *len)
{
    assert_true(cap >= sizeof(KEY));
    memcpy(der, KEY, sizeof(KEY));
    *len = sizeof(KEY);
    return IOTD_OK;
}

iotd_status iotd_mbedtls_csr(const uint8_t *key, size_t key_len, const char *device_id,
                             uint8_t *der, size_t cap, size_t *len)
{
    (void)key, (void)key_len;
    assert_string_equal(device_id, "dev-7");
    assert_true(cap >= 4);
    memcpy(der, "\x30\x02\x05\x00", 4);
    *len = 4;
    return IOTD_OK;
}

/* The "PKCS#7" is the certificate itself. */
iotd_status iotd_mbedtls_pkcs7_cert(const uint8_t *p7, size_t len, size_t index,
                                    const uint8_t **cert, size_t *cert_len)
{
    if (index > 0 || len < 2 || p7[0] != 0x30)
        return IOTD_ENOENT;
    *cert = p7;
    *cert_len = len;
    return IOTD_OK;
}

iotd_status iotd_mbedtls_cert_matches_key(const uint8_t *cert, size_t cert_len, const uint8_t *key,
                                          size_t key_len)
{
    (void)cert, (void)cert_len, (void)key, (void)key_len;
    return IOTD_OK;
}

/* Every certificate was issued a minute before the clock's start. */
iotd_status iotd_mbedtls_cert_validity(const uint8_t *cert, size_t len, iotd_cert_info *info)
{
    (void)cert, (void)len;
    info->not_before = 1800000000 - 60;
    info->not_after = info->not_before + LIFETIME_S;
    return IOTD_OK;
}

/* ---- the rest of the firmware and port ----------------------------------------------------- */

static bool has_ca;
static const char *boot_cert;

esp_err_t identity_load_for_enrollment(identity *id, bootstrap *boot)
{
    memset(id, 0, sizeof(*id));
    boot->cert[0] = boot->key[0] = '\0';
    if (!has_ca)
        return ESP_ERR_NVS_NOT_FOUND;
    snprintf(id->ca, sizeof(id->ca), "CA");
    if (boot_cert != NULL) {
        snprintf(boot->cert, sizeof(boot->cert), "%s", boot_cert);
        snprintf(boot->key, sizeof(boot->key), "BOOTKEY");
    }
    return ESP_OK;
}

identity_state identity_check(identity *id)
{
    assert_string_equal(id->ca, "CA");
    assert_int_equal(strncmp(id->cert, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    assert_int_equal(strncmp(id->key, "-----BEGIN EC PRIVATE KEY-----\n", 31), 0);
    snprintf(id->device_id, sizeof(id->device_id), "dev-7");
    return IDENTITY_READY;
}

uint64_t iotd_esp_uptime_ms(void *ctx)
{
    (void)ctx;
    return fake_uptime;
}

void iotd_esp_sleep_ms(void *ctx, uint32_t ms)
{
    (void)ctx;
    fake_uptime += ms;
    if (fake_uptime > 30ull * 86400u * 1000u) /* a first enrollment that never ends */
        fail_msg("still enrolling after 30 days; the log:\n%s", fake_log);
}

uint32_t iotd_esp_random_u32(void *ctx)
{
    (void)ctx;
    return 0x12345678u;
}

void iotd_esp_log(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    (void)ctx;
    (void)level;
    size_t used = strlen(fake_log);
    snprintf(fake_log + used, sizeof(fake_log) - used, "%s: %s\n", event, msg);
}

/* ---- the gateway ---------------------------------------------------------------------------- */

static int refuse_enrollments; /* answer this many simpleenroll with 403 first */
static int requests_seen;

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && strcmp(s + n - t, tail) == 0;
}

static void gateway(const char *url)
{
    requests_seen++;
    http.status = 200;
    if (ends_with(url, "/.well-known/est/cacerts")) {
        http.body = CACERTS_B64;
    } else if (ends_with(url, "/.well-known/est/simpleenroll")) {
        http.body = refuse_enrollments > 0 ? "{\"error\":\"token_invalid\"}" : CRT_B64;
        if (refuse_enrollments > 0) {
            refuse_enrollments--;
            http.status = 403;
        }
    } else if (ends_with(url, "/.well-known/est/simplereenroll")) {
        http.body = NEW_B64;
    } else {
        assert_true(ends_with(url, "/v1/firmware/manifest"));
        http.status = 204;
        http.body = "";
    }
}

static settings cfg;
static identity id;

static int setup(void **state)
{
    (void)state;
    fakes_reset();
    http.route = gateway;
    has_ca = true;
    boot_cert = NULL;
    refuse_enrollments = 0;
    requests_seen = 0;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.gateway_url, sizeof(cfg.gateway_url), "https://gw.example:8443");
    snprintf(cfg.device_id, sizeof(cfg.device_id), "dev-7");
    return 0;
}

static void logged(const char *event)
{
    if (strstr(fake_log, event) == NULL)
        fail_msg("no \"%s\" in the log:\n%s", event, fake_log);
}

static iotd_esp dummy_esp;

static enrollment_result boot(void)
{
    return enrollment_boot(&cfg, &dummy_esp, &id, false, 0);
}

static void expect_pem_of(const uint8_t *der, size_t len)
{
    char want[IOTD_ESP_PEM_CHAIN_MAX];
    assert_true(iotd_esp__pem_chain(der, len, want, sizeof(want)));
    assert_string_equal(id.cert, want);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void a_token_enrolls_and_is_erased(void **state)
{
    (void)state;
    char want[IOTD_ESP_AUTH_MAX];

    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK);
    assert_int_equal(boot(), ENROLLMENT_READY);
    assert_int_equal(requests_seen, 2); /* cacerts, simpleenroll */
    assert_true(iotd_esp__basic_auth(want, sizeof(want), "dev-7", "tok-1"));
    assert_string_equal(http.auth, want);
    assert_false(http.has_cert);
    assert_false(fake_nvs_has("enroll_token"));
    expect_pem_of(CRT, sizeof(CRT));
    assert_string_equal(id.device_id, "dev-7");
    logged("enroll.start: device dev-7 enrolls with its enrollment token");
    logged("enroll.enrolled");
    logged("enroll.token_erased");
    logged("enroll.identity: device dev-7");

    bool renewed = true;
    uint32_t ms = enrollment_step(fake_uptime, &renewed);
    assert_false(renewed);
    assert_true(ms > 0);
    assert_int_equal(requests_seen, 2); /* nothing due yet */
}

static void a_refusal_backs_off_and_keeps_the_token(void **state)
{
    (void)state;

    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK);
    refuse_enrollments = 2;
    assert_int_equal(boot(), ENROLLMENT_READY);
    logged("enroll.refused");
    logged("enroll.waiting: next attempt in");
    assert_true(fake_uptime > 0); /* it waited between attempts */
    assert_int_equal(requests_seen, 4);
    assert_false(fake_nvs_has("enroll_token"));
}

static void a_bootstrap_certificate_enrolls(void **state)
{
    (void)state;

    boot_cert = "-----BEGIN CERTIFICATE-----\nboot\n-----END CERTIFICATE-----\n";
    assert_int_equal(boot(), ENROLLMENT_READY);
    assert_string_equal(http.cert, boot_cert);
    assert_string_equal(http.key, "BOOTKEY");
    assert_string_equal(http.auth, "");
    logged("enroll.start: device dev-7 enrolls with its bootstrap certificate");
    expect_pem_of(CRT, sizeof(CRT));
}

static void an_enrolled_certificate_is_used_without_a_request(void **state)
{
    (void)state;

    assert_int_equal(nvs_set_blob(1, "s0.key", KEY, sizeof(KEY)), ESP_OK);
    assert_int_equal(nvs_set_blob(1, "s0.crt", CRT, sizeof(CRT)), ESP_OK);
    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK); /* not needed, kept */
    assert_int_equal(boot(), ENROLLMENT_READY);
    assert_int_equal(http.inits, 0);
    assert_true(fake_nvs_has("enroll_token"));
    expect_pem_of(CRT, sizeof(CRT));
    logged("enroll.identity");
}

static void nothing_to_enroll_with_is_off(void **state)
{
    (void)state;
    bool renewed;

    assert_int_equal(boot(), ENROLLMENT_OFF);
    assert_int_equal(http.inits, 0);
    assert_string_equal(id.ca, ""); /* identity_load starts from nothing */
    assert_int_equal(enrollment_step(0, &renewed), UINT32_MAX);

    has_ca = false; /* no CA: the ident flow says what is missing */
    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK);
    assert_int_equal(boot(), ENROLLMENT_OFF);
    assert_int_equal(http.inits, 0);
}

static void a_token_without_a_device_id_is_broken(void **state)
{
    (void)state;

    cfg.device_id[0] = '\0';
    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK);
    assert_int_equal(boot(), ENROLLMENT_BROKEN);
    logged("enroll.no_device_id");
    assert_int_equal(http.inits, 0);
    assert_true(fake_nvs_has("enroll_token"));
}

static void renewal_commits_and_reloads(void **state)
{
    (void)state;
    bool renewed = false;

    assert_int_equal(nvs_set_str(1, "enroll_token", "tok-1"), ESP_OK);
    assert_int_equal(boot(), ENROLLMENT_READY);
    fake_now += LIFETIME_S / 4 * 3 + 86400; /* past two thirds and the jitter */
    for (int i = 0; i < 10 && !renewed; i++) {
        uint32_t ms = enrollment_step(fake_uptime, &renewed);
        fake_uptime += ms < 3600000u ? ms : 3600000u;
    }
    assert_true(renewed);
    logged("enroll.renewal_due");
    logged("enroll.renewed");
    assert_string_equal(http.url, "https://gw.example:8443/v1/firmware/manifest");
    assert_true(enrollment_reload(&id));
    expect_pem_of(NEW, sizeof(NEW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(a_token_enrolls_and_is_erased, setup),
        cmocka_unit_test_setup(a_refusal_backs_off_and_keeps_the_token, setup),
        cmocka_unit_test_setup(a_bootstrap_certificate_enrolls, setup),
        cmocka_unit_test_setup(an_enrolled_certificate_is_used_without_a_request, setup),
        cmocka_unit_test_setup(nothing_to_enroll_with_is_off, setup),
        cmocka_unit_test_setup(a_token_without_a_device_id_is_broken, setup),
        cmocka_unit_test_setup(renewal_commits_and_reloads, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
