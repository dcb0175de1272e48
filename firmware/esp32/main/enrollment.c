/* See enrollment.h. NVS calls: nvs_open, nvs_get_str, nvs_erase_key,
 * nvs_commit (ESP-IDF 5.x nvs.h). */
#include "enrollment.h"

#include <string.h>

#include "esp_attr.h"
#include "esp_log.h"
#include "nvs.h"
#include "sdkconfig.h"

#include "iotd/enroll.h"
#include "iotd/record.h"
#include "iotd_esp/cred.h"
#include "iotd_esp/est.h"

static const char *TAG = "iotd";

#define CRED_NAMESPACE     "cred"
#define SETTINGS_NAMESPACE "cfg"
#define TOKEN_KEY          "enroll_token"
#define TOKEN_MAX          128 /* IOTD_ESP_TOKEN_MAX */
#define WORK_MAX           4096

#if CONFIG_IOTD_ENROLL
#define ENROLL_ON true
#else
#define ENROLL_ON false
#endif

#if CONFIG_IOTD_DEEP_SLEEP
#define KEPT_IN_SLEEP RTC_DATA_ATTR
#else
#define KEPT_IN_SLEEP
#endif

/* The machine survives deep sleep; what it points to is at the same
 * addresses after the wake (the same image: the resume tag checks it). */
KEPT_IN_SLEEP static iotd_enroll s_en;

static bool s_on;
static uint32_t s_renewals_seen;
static iotd_port s_eport;
static iotd_esp_cred s_cred;
static iotd_cred_port s_cport;
static iotd_esp_est s_est;
static char s_work[WORK_MAX];
static char s_device_id[IDENTITY_ID_MAX];
static char s_token[TOKEN_MAX];
static bootstrap s_boot;
static char s_ca[IDENTITY_PEM_MAX]; /* the EST transport's CA: id->ca may be rewritten */

/* The core's services the machine needs: clock, random, log. */
static void eport_init(iotd_esp *esp)
{
    memset(&s_eport, 0, sizeof(s_eport));
    s_eport.ctx = esp;
    s_eport.wall_time = iotd_esp_wall_time;
    s_eport.uptime_ms = iotd_esp_uptime_ms;
    s_eport.sleep_ms = iotd_esp_sleep_ms;
    s_eport.random_u32 = iotd_esp_random_u32;
    s_eport.log = iotd_esp_log;
}

static bool copy_str(char *out, size_t cap, const char *in)
{
    size_t n = strlen(in);
    if (n >= cap)
        return false;
    memcpy(out, in, n + 1);
    return true;
}

/* The install-time token, if any: true when s_token holds one. */
static bool token_load(void)
{
    nvs_handle_t h;
    size_t n = sizeof(s_token);

    s_token[0] = '\0';
    if (nvs_open(SETTINGS_NAMESPACE, NVS_READONLY, &h) != ESP_OK)
        return false;
    esp_err_t err = nvs_get_str(h, TOKEN_KEY, s_token, &n);
    nvs_close(h);
    if (err != ESP_OK && err != ESP_ERR_NVS_NOT_FOUND)
        ESP_LOGW(TAG, "enroll.token_unreadable: cfg/%s: %s", TOKEN_KEY, esp_err_to_name(err));
    if (err != ESP_OK)
        s_token[0] = '\0';
    return s_token[0] != '\0';
}

/* A used token is worth nothing to the gateway, but it is a secret: it
 * does not stay in flash. */
static void token_erase(void)
{
    nvs_handle_t h;
    esp_err_t err = nvs_open(SETTINGS_NAMESPACE, NVS_READWRITE, &h);

    if (err == ESP_OK) {
        err = nvs_erase_key(h, TOKEN_KEY);
        if (err == ESP_OK)
            err = nvs_commit(h);
        nvs_close(h);
    }
    memset(s_token, 0, sizeof(s_token));
    iotd_esp_est_forget_token(&s_est);
    if (err == ESP_OK)
        ESP_LOGI(TAG, "enroll.token_erased: the enrollment token was used and is erased");
    else
        ESP_LOGW(TAG, "enroll.token_erase_failed: %s", esp_err_to_name(err));
}

static bool has_active(void)
{
    iotd_cert_info info;
    return s_cport.cert_info(s_cport.ctx, IOTD_CRED_ACTIVE, &info) == IOTD_OK;
}

bool enrollment_reload(identity *id)
{
    if (iotd_esp_cred_load_pem(&s_cred, IOTD_CRED_ACTIVE, id->cert, sizeof(id->cert), id->key,
                               sizeof(id->key)) != IOTD_OK) {
        ESP_LOGE(TAG, "enroll.slot_unreadable: the active certificate and key cannot be read");
        return false;
    }
    if (!copy_str(id->ca, sizeof(id->ca), s_ca) || identity_check(id) != IDENTITY_READY)
        return false;
    /* The device ID of renewals is the certificate's. */
    (void)copy_str(s_device_id, sizeof(s_device_id), id->device_id);
    ESP_LOGI(TAG, "enroll.identity: device %s uses its enrolled certificate", id->device_id);
    return true;
}

static iotd_status transport_init(const settings *s, iotd_esp *esp)
{
    const iotd_esp_est_config ec = {
        .gateway_url = s->gateway_url,
        .ca_pem = s_ca,
        .device_id = s_device_id,
        .token = s_token[0] != '\0' ? s_token : NULL,
        .bootstrap_cert_pem = s_boot.cert[0] != '\0' ? s_boot.cert : NULL,
        .bootstrap_key_pem = s_boot.cert[0] != '\0' ? s_boot.key : NULL,
        .timeout_ms = CONFIG_IOTD_HTTP_TIMEOUT_MS,
    };

    eport_init(esp);
    if (iotd_esp_cred_open(&s_cred, CRED_NAMESPACE, s_device_id) != IOTD_OK)
        return IOTD_EIO;
    iotd_esp_cred_port(&s_cred, &s_cport);
    return iotd_esp_est_init(&s_est, &ec, &s_cred, &s_cport);
}

static iotd_status machine_init(bool resumed, uint32_t crc)
{
    iotd_enroll_config cfg;

    if (resumed && crc == enrollment_crc() && s_en.cred == &s_cport) {
        ESP_LOGI(TAG, "enroll.resumed: the renewal schedule continues after deep sleep");
        return IOTD_OK;
    }
    iotd_enroll_config_init(&cfg);
    cfg.first_auth = s_token[0] != '\0' || s_boot.cert[0] == '\0' ? IOTD_ENROLL_AUTH_TOKEN
                                                                  : IOTD_ENROLL_AUTH_BOOTSTRAP;
    cfg.backoff_max_ms = (uint32_t)CONFIG_IOTD_ENROLL_BACKOFF_MAX_S * 1000u;
    return iotd_enroll_init(&s_en, &s_eport, &s_cport, &cfg, s_work, sizeof(s_work));
}

/* No certificate yet: enroll, as long as it takes. */
static void first_enrollment(void)
{
    ESP_LOGI(TAG, "enroll.start: device %s enrolls with its %s", s_device_id,
             s_token[0] != '\0' ? "enrollment token" : "bootstrap certificate");
    while (!iotd_enroll_has_certificate(&s_en)) {
        uint32_t ms = iotd_enroll_step(&s_en, iotd_esp_uptime_ms(s_eport.ctx));
        if (iotd_enroll_has_certificate(&s_en))
            break;
        ESP_LOGI(TAG, "enroll.waiting: next attempt in %u ms", (unsigned)ms);
        iotd_esp_sleep_ms(s_eport.ctx, ms > 0 ? ms : 1);
    }
    if (s_token[0] != '\0')
        token_erase();
}

/* Reads the CA, the device ID and what to enroll with; false when the
 * slots are not to be used at all (case 3 of enrollment.h). */
static bool credentials_read(const settings *s, identity *id)
{
    if (identity_load_for_enrollment(id, &s_boot) != ESP_OK ||
        !copy_str(s_ca, sizeof(s_ca), id->ca))
        return false;
    (void)copy_str(s_device_id, sizeof(s_device_id), s->device_id);
    (void)token_load();
    return true;
}

enrollment_result enrollment_boot(const settings *s, iotd_esp *esp, identity *id, bool resumed,
                                  uint32_t crc)
{
    enrollment_result r = ENROLLMENT_OFF;

    if (!ENROLL_ON || !credentials_read(s, id))
        goto out;
    r = ENROLLMENT_BROKEN;
    if (transport_init(s, esp) != IOTD_OK)
        goto out;
    bool active = has_active();
    if (!active && s_token[0] == '\0' && s_boot.cert[0] == '\0') {
        r = ENROLLMENT_OFF; /* nothing enrolled, nothing to enroll with */
        goto out;
    }
    if (!active && s_device_id[0] == '\0') {
        ESP_LOGE(TAG, "enroll.no_device_id: set cfg/device_id (or CONFIG_IOTD_DEVICE_ID) to "
                      "enroll");
        goto out;
    }
    if (machine_init(resumed && active, crc) != IOTD_OK) {
        ESP_LOGE(TAG, "enroll.slot_unreadable: the certificate slots cannot be read");
        goto out;
    }
    if (!active)
        first_enrollment();
    s_renewals_seen = s_en.stats.renewed;
    if (enrollment_reload(id))
        r = ENROLLMENT_READY;
out:
    s_on = r == ENROLLMENT_READY;
    if (r == ENROLLMENT_OFF)
        memset(id, 0, sizeof(*id));
    return r;
}

uint32_t enrollment_step(uint64_t now_ms, bool *renewed)
{
    *renewed = false;
    if (!s_on)
        return UINT32_MAX;
    uint32_t ms = iotd_enroll_step(&s_en, now_ms);
    if (s_en.stats.renewed != s_renewals_seen) {
        s_renewals_seen = s_en.stats.renewed;
        *renewed = true;
    }
    return ms;
}

uint32_t enrollment_crc(void)
{
    return iotd_crc32((const uint8_t *)&s_en, sizeof(s_en));
}
