/* The ESP32 application: NVS, identity, sensors, Wi-Fi and the clock, then
 * the device core's step loop over the ESP-IDF port, with firmware updates
 * beside it (fwupdate.c) and deep sleep between uploads when configured.
 *
 * Deep sleep restarts the chip; only RTC memory and flash survive it.
 *   - NVS holds what must survive power loss too, and the core keeps it
 *     there itself: the sequence-number limit and the offline queue.
 *   - RTC memory (RTC_DATA_ATTR) holds the device object, so the sleep
 *     looks to the core like a long sleep_ms: its schedule, backoff, the
 *     rest of the reserved sequence block and a 403 stop carry over. A
 *     resume tag (magic, CRC-32 of the object, the port's address) is
 *     checked at wake-up; if it does not match, or the wake was not the
 *     timer, the device starts afresh with iotd_device_init from NVS, as
 *     after a power cut.
 *   - The uptime the core schedules by continues across the sleep: the
 *     tag carries the uptime at which the sleep ends.
 *   - The enrollment machine (enrollment.c) is kept the same way, with a
 *     CRC of its own in the tag; a mismatch reads it again from the
 *     certificate slots in NVS.
 *   - The port keeps the TLS session of its POSTs in RTC memory by itself
 *     (iotd_esp/session.h), so a wake-up resumes it.
 */
#include <stdint.h>
#include <string.h>

#include "esp_attr.h"
#include "esp_log.h"
#include "esp_sleep.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "iotd/device.h"
#include "iotd/health.h"
#include "iotd/record.h"
#include "iotd_esp/health.h"
#include "iotd_esp/port.h"
#include "iotd_esp/sensors.h"
#include "iotd_esp/session.h"

#include "enrollment.h"
#include "factory_reset.h"
#include "fwupdate.h"
#include "identity.h"
#include "net.h"
#if CONFIG_IOTD_CSR_ON_DEVICE
#include "csr.h"
#endif

#if !CONFIG_SOC_TEMP_SENSOR_SUPPORTED && !CONFIG_IOTD_BME280
#error "this chip has no internal temperature sensor: enable the BME280 in menuconfig"
#endif

static const char *TAG = "iotd";

#define KV_NAMESPACE   "iotd"
#define BODY_MAX       2048 /* one request body: batches up to what fits */
#define RESP_MAX       256  /* the gateway's answer, for the log */
#define HALT_REPEAT_MS (10u * 60u * 1000u)
#define RETRY_INIT_MS  60000u
#define SNTP_WAIT_MS   10000u
#define RESUME_MAGIC   0x52534d31u /* "RSM1" */

#if CONFIG_IOTD_DEEP_SLEEP
#define KEPT_IN_SLEEP RTC_DATA_ATTR
#else
#define KEPT_IN_SLEEP
#endif

typedef struct resume_tag {
    uint32_t magic;
    uint32_t crc;              /* CRC-32 of s_dev as it went to sleep */
    uintptr_t port;            /* &s_port then: the same image, the same layout */
    uint64_t uptime_ms;        /* the uptime at which the sleep ends */
    uint64_t update_due_ms;    /* the uptime of the next update step */
    uint64_t health_due_ms;    /* the uptime of the next health report */
    uint32_t health_no_answer; /* the device's no_answer count at the last report */
    uint32_t enroll_crc;       /* CRC-32 of the enrollment machine (enrollment.c) */
} resume_tag;

KEPT_IN_SLEEP static iotd_device s_dev;

KEPT_IN_SLEEP static resume_tag s_resume;

static iotd_esp s_esp;
static iotd_port s_port;
static identity s_id;
static settings s_settings;
static char s_body[BODY_MAX];
static char s_health_buf[IOTD_HEALTH_BODY_MAX];
static iotd_esp_health s_esp_health;
static iotd_health s_health;
static char s_resp[RESP_MAX];
static bool s_enrolled; /* the certificate is from the slots and renews itself */
static iotd_sensor s_sensors[4];
static size_t s_n_sensors;
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
static iotd_esp_tsens s_tsens;
#endif
#if CONFIG_IOTD_BME280
static iotd_esp_bme280 s_bme;
#endif

/* Stops for good, saying why every few minutes: restarting would not fix
 * what stops here, and a restart loop wears the flash. A new image on
 * trial goes back to the previous one instead, which ran here before. */
static void halt(const char *event, const char *why) __attribute__((noreturn));
static void halt(const char *event, const char *why)
{
    ESP_LOGE(TAG, "%s: %s", event, why);
    fwupdate_give_up_trial("stopped before its self-test");
    for (;;) {
        vTaskDelay(pdMS_TO_TICKS(HALT_REPEAT_MS));
        ESP_LOGE(TAG, "%s: %s", event, why);
    }
}

static void storage_init(void)
{
    esp_err_t err = nvs_flash_init();

    /* ESP-IDF's examples erase the partition on these two errors. Here it
     * holds the sequence-number limit: erasing it would reuse numbers the
     * gateway already has, and it would drop those readings as duplicates. */
    if (err == ESP_ERR_NVS_NO_FREE_PAGES || err == ESP_ERR_NVS_NEW_VERSION_FOUND)
        halt("nvs.unusable", "the nvs partition is full or from a newer ESP-IDF; it is not "
                             "erased automatically (README.md: recovering a device)");
    if (err != ESP_OK)
        halt("nvs.unusable", esp_err_to_name(err));
}

static void add_sensor(const char *name, const char *unit, iotd_sensor_read_fn read, void *ctx)
{
    s_sensors[s_n_sensors++] = (iotd_sensor){name, unit, read, ctx};
}

/* The table order is part of the queue's storage format: rows are only
 * ever appended. A sensor that does not answer now keeps its row; its
 * values are left out of readings until it does. */
static void sensors_open(void)
{
    s_n_sensors = 0;
#if CONFIG_SOC_TEMP_SENSOR_SUPPORTED
    (void)iotd_esp_tsens_open(&s_tsens);
    add_sensor("chip_temp", "Cel", iotd_esp_tsens_read, &s_tsens);
#endif
#if CONFIG_IOTD_BME280
    const iotd_esp_bme280_config bme = {
        .i2c_port = CONFIG_IOTD_BME280_I2C_PORT,
        .sda_gpio = CONFIG_IOTD_BME280_SDA_GPIO,
        .scl_gpio = CONFIG_IOTD_BME280_SCL_GPIO,
        .address = CONFIG_IOTD_BME280_ADDRESS,
        .scl_hz = 100000,
#if CONFIG_IOTD_BME280_PULLUPS
        .pullups = true,
#endif
    };
    (void)iotd_esp_bme280_open(&s_bme, &bme);
    add_sensor("temperature", "Cel", iotd_esp_bme280_read_temperature, &s_bme);
    add_sensor("humidity", "%RH", iotd_esp_bme280_read_humidity, &s_bme);
    add_sensor("pressure", "Pa", iotd_esp_bme280_read_pressure, &s_bme);
#endif
}

#if CONFIG_IOTD_CSR_ON_DEVICE
/* No certificate yet: make (or reload) the key and show its request until
 * the operator installs the certificate and restarts the device. */
static void request_certificate(void) __attribute__((noreturn));
static void request_certificate(void)
{
    static char csr[1024];

    const char *id = s_settings.device_id;

    if (id[0] == '\0')
        halt("identity.missing", "set the device ID (cfg/device_id in NVS, or "
                                 "CONFIG_IOTD_DEVICE_ID) to make a certificate request");
    if (csr_key(s_id.key, sizeof(s_id.key)) != ESP_OK ||
        csr_request(id, s_id.key, csr, sizeof(csr)) != ESP_OK)
        halt("identity.csr_failed", "the key or the certificate request could not be made");
    for (;;) {
        ESP_LOGW(TAG,
                 "identity.csr: no certificate installed; sign this request with "
                 "'iotctl device add %s --csr FILE' and write the ident partition:\n%s",
                 id, csr);
        vTaskDelay(pdMS_TO_TICKS(HALT_REPEAT_MS));
    }
}
#endif

static void identity_init(void)
{
    switch (identity_load(&s_id)) {
    case IDENTITY_READY:
        return;
    case IDENTITY_NO_CERT:
#if CONFIG_IOTD_CSR_ON_DEVICE
        request_certificate();
#else
        halt("identity.missing", "no certificate in the ident partition (README.md: provisioning)");
#endif
    case IDENTITY_BROKEN:
        break;
    }
    halt("identity.unusable", "the installed identity cannot be used; see the lines above");
}

/* The enrolled certificate, a first enrollment, or the "ident" partition
 * (enrollment.h). */
static void credentials_init(bool resumed)
{
    switch (enrollment_boot(&s_settings, &s_esp, &s_id, resumed, s_resume.enroll_crc)) {
    case ENROLLMENT_READY:
        s_enrolled = true;
        return;
    case ENROLLMENT_OFF:
        identity_init();
        return;
    case ENROLLMENT_BROKEN:
        break;
    }
    halt("enroll.unusable", "the certificate slots or the enrollment settings cannot be used; "
                            "see the lines above");
}

static bool resume_is_valid(void)
{
#if CONFIG_IOTD_DEEP_SLEEP
    return esp_sleep_get_wakeup_cause() == ESP_SLEEP_WAKEUP_TIMER &&
           s_resume.magic == RESUME_MAGIC && s_resume.port == (uintptr_t)&s_port &&
           s_resume.crc == iotd_crc32((const uint8_t *)&s_dev, sizeof(s_dev));
#else
    return false;
#endif
}

static void port_config(iotd_esp_config *cfg, uint64_t uptime_base_ms)
{
    *cfg = (iotd_esp_config){
        .gateway_url = s_settings.gateway_url,
        .ca_pem = s_id.ca,
        .cert_pem = s_id.cert,
        .key_pem = s_id.key,
        .timeout_ms = CONFIG_IOTD_HTTP_TIMEOUT_MS,
        .reuse_idle_ms = CONFIG_IOTD_HTTP_REUSE_IDLE_MS,
        .kv_namespace = KV_NAMESPACE,
        .uptime_base_ms = uptime_base_ms,
    };
}

static void port_init(bool resumed)
{
    iotd_esp_config cfg;

    port_config(&cfg, resumed ? s_resume.uptime_ms : 0);
    if (iotd_esp_init(&s_esp, &cfg, &s_port) != IOTD_OK)
        halt("port.init_failed", "check the gateway URL (https://host[:port]) and the lines above");
}

/* A renewal was committed: the telemetry client presents the new
 * certificate from its next request on. esp_http_client keeps pointers to
 * the PEM in s_id and reads them when it connects: the connection is
 * closed before s_id is rewritten, and nothing connects until the client
 * has been made again. */
static void identity_renewed(void)
{
    iotd_esp_config cfg;

    iotd_esp_disconnect(&s_esp);
    if (!enrollment_reload(&s_id)) {
        ESP_LOGE(TAG, "enroll.reload_failed: the renewed certificate cannot be loaded; "
                      "restarting to use it from the slots");
        esp_restart();
    }
    port_config(&cfg, 0);
    if (iotd_esp_set_identity(&s_esp, &cfg) != IOTD_OK) {
        ESP_LOGE(TAG, "enroll.reload_failed: no HTTP client for the renewed certificate; "
                      "restarting");
        esp_restart();
    }
    ESP_LOGI(TAG, "enroll.reloaded: the telemetry client uses the renewed certificate");
}

static void device_init(void)
{
    iotd_config cfg;

    iotd_config_init(&cfg);
    cfg.device_id = s_id.device_id;
    cfg.sensors = s_sensors;
    cfg.n_sensors = s_n_sensors;
    cfg.sample_interval_ms = (uint32_t)CONFIG_IOTD_SAMPLE_INTERVAL_S * 1000u;
    cfg.queue_capacity = CONFIG_IOTD_QUEUE_CAPACITY;
    cfg.body = s_body;
    cfg.body_cap = sizeof(s_body);
    cfg.resp = s_resp;
    cfg.resp_cap = sizeof(s_resp);
    for (;;) {
        iotd_status st = iotd_device_init(&s_dev, &s_port, &cfg);
        if (st == IOTD_OK)
            return;
        /* A bad configuration or a damaged sequence record needs a person;
         * storage that cannot be read now may work in a minute. */
        if (st != IOTD_EIO)
            halt("device.init_failed", iotd_strerror(st));
        ESP_LOGE(TAG, "device.init_failed: %s; retrying in a minute", iotd_strerror(st));
        fwupdate_give_up_trial("cannot read its storage");
        vTaskDelay(pdMS_TO_TICKS(RETRY_INIT_MS));
    }
}

/* The health report (iotd/health.h): once after boot, then every
 * CONFIG_IOTD_HEALTH_INTERVAL_S. After deep sleep only its schedule and
 * count carry over (plain numbers in the resume tag, no pointers); the
 * boot count and reset reason are this start's. */
static void health_init(bool resumed)
{
    iotd_esp_health_open(&s_esp_health, &s_esp, s_id.cert);
    iotd_health_config cfg;
    iotd_health_config_init(&cfg);
    cfg.interval_ms = (uint32_t)CONFIG_IOTD_HEALTH_INTERVAL_S * 1000u;
    cfg.fill = iotd_esp_health_fill;
    cfg.fill_ctx = &s_esp_health;
    cfg.buf = s_health_buf;
    cfg.cap = sizeof(s_health_buf);
    if (iotd_health_init(&s_health, &s_port, &s_dev, &cfg) != IOTD_OK)
        halt("health.init_failed", "the health report's configuration is wrong");
    if (resumed) {
        s_health.due_ms = s_resume.health_due_ms;
        s_health.no_answer_reported = s_resume.health_no_answer;
    }
}

#if CONFIG_IOTD_DEEP_SLEEP
static void sleep_deep(uint32_t ms) __attribute__((noreturn));
static void sleep_deep(uint32_t ms)
{
    s_resume.uptime_ms = iotd_esp_uptime_ms(&s_esp) + ms;
    s_resume.update_due_ms = fwupdate_due_ms();
    s_resume.health_due_ms = s_health.due_ms;
    s_resume.health_no_answer = s_health.no_answer_reported;
    s_resume.port = (uintptr_t)&s_port;
    s_resume.crc = iotd_crc32((const uint8_t *)&s_dev, sizeof(s_dev));
    s_resume.enroll_crc = enrollment_crc();
    s_resume.magic = RESUME_MAGIC;
    iotd_esp_disconnect(&s_esp);
    net_stop();
    iotd_esp_session_stats tls = iotd_esp_session_get_stats();
    ESP_LOGI(TAG, "sleep.deep: %u ms; TLS handshakes since power-on %u, resumed %u", (unsigned)ms,
             (unsigned)tls.handshakes, (unsigned)tls.resumed);
    (void)esp_sleep_enable_timer_wakeup((uint64_t)ms * 1000u);
    esp_deep_sleep_start();
}
#endif

static uint32_t until(uint64_t due, uint64_t now)
{
    uint64_t ms = due > now ? due - now : 0;
    return ms < UINT32_MAX ? (uint32_t)ms : UINT32_MAX;
}

/* One step of the device, one of the updates and, with an enrolled
 * certificate, one of its renewal; how long until any is due again,
 * counted from after all (a step may take seconds of network). */
static uint32_t next_wait(void)
{
    bool renewed = false;
    uint64_t now = iotd_esp_uptime_ms(&s_esp);
    uint64_t device_due = now + iotd_device_step(&s_dev, now);

    now = iotd_esp_uptime_ms(&s_esp);
    uint64_t update_due = now + fwupdate_step(now, &s_dev);
    uint64_t enroll_due = UINT64_MAX;
    if (s_enrolled) {
        now = iotd_esp_uptime_ms(&s_esp);
        enroll_due = now + enrollment_step(now, &renewed);
        if (renewed)
            identity_renewed();
    }
    now = iotd_esp_uptime_ms(&s_esp);
    uint64_t health_due = now + iotd_health_step(&s_health, now);
    now = iotd_esp_uptime_ms(&s_esp);
    uint32_t ms = until(device_due, now);
    uint32_t health_ms = until(health_due, now);
    ms = health_ms < ms ? health_ms : ms;
    uint32_t update_ms = until(update_due, now);
    uint32_t enroll_ms = until(enroll_due, now);
    ms = update_ms < ms ? update_ms : ms;
    return enroll_ms < ms ? enroll_ms : ms;
}

/* ESP-IDF's entry point; no ESP-IDF header declares it. */
void app_main(void);

void app_main(void)
{
    storage_init();
    factory_reset_at_boot(KV_NAMESPACE);
    settings_load(&s_settings);
    sensors_open();

    /* The radio first: the on-device key (CSR flow) wants the RNG's true
     * random mode, which needs Wi-Fi running. */
    if (!net_start(s_settings.ssid, s_settings.password, (uint32_t)CONFIG_IOTD_WIFI_WAIT_S * 1000u))
        halt("wifi.unusable", "the Wi-Fi station could not be started");
    /* SNTP keeps trying in the background; wait for it only when the
     * network is there to answer. Before the credentials: enrollment's TLS
     * checks the gateway certificate's dates. */
    net_sntp_start(s_settings.sntp_server, net_connected() ? SNTP_WAIT_MS : 0);
    bool resumed = resume_is_valid();
    credentials_init(resumed);
    s_resume.magic = 0;
    port_init(resumed);
    if (resumed) {
        ESP_LOGI(TAG, "boot.resumed: the device continues after deep sleep");
    } else {
        ESP_LOGI(TAG, "boot.cold: device %s, %u sensors", s_id.device_id, (unsigned)s_n_sensors);
        device_init();
    }
    /* Without updates the device still sends readings; fwupdate_init has
     * said why, and rolled back an image on trial. */
    (void)fwupdate_init(&s_port, &s_esp, &s_settings, resumed ? s_resume.update_due_ms : 0);
    health_init(resumed);

    for (;;) {
        uint32_t ms = next_wait();
        if (ms == 0) {
            /* Back-to-back work: let the idle task (and its watchdog) run. */
            vTaskDelay(1);
            continue;
        }
#if CONFIG_IOTD_DEEP_SLEEP
        if (ms >= (uint32_t)CONFIG_IOTD_DEEP_SLEEP_MIN_S * 1000u && fwupdate_may_sleep())
            sleep_deep(ms);
#endif
        iotd_esp_sleep_ms(&s_esp, ms);
    }
}
