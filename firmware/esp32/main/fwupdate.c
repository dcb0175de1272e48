/* Firmware updates beside the device core (fwupdate.h).
 *
 * The order inside a step matters: a report taken from the core is POSTed
 * before the restart it may announce ("installing"), so the gateway hears
 * of an installation before the device goes quiet; a report that cannot
 * be delivered is retried, replaced by a newer one, and never holds up a
 * restart or a rollback.
 *
 * The self-test runs only in a boot on trial, which is always a cold boot:
 * the bootloader sets an image on trial at its first boot after
 * activation. Its clock is the uptime since that boot.
 */
#include "fwupdate.h"

#include <string.h>

#include "esp_log.h"
#include "esp_system.h"
#include "sdkconfig.h"

#include "iotd/update.h"
#include "iotd_esp/update.h"
#include "iotd_mbedtls/manifest_crypto.h"
#include "iotd_mbedtls/manifest_keys.h"

#include "fwrules.h"

static const char *TAG = "iotd";

#define KEYS_MAX         8    /* as main/CMakeLists.txt allows */
#define CHUNK            4096 /* one flash sector per ranged GET */
#define REPORT_RETRY_MS  (60u * 1000u)
#define CONFIRM_RETRY_MS (60u * 1000u)
#define REPORT_RESP_MAX  128

_Static_assert(sizeof(CONFIG_IOTD_FW_VENDOR_ID) > 1, "set CONFIG_IOTD_FW_VENDOR_ID");
_Static_assert(sizeof(CONFIG_IOTD_FW_CLASS_ID) > 1, "set CONFIG_IOTD_FW_CLASS_ID");

/* EMBED_TXTFILES adds a NUL; the symbol comes from the file's fixed name
 * (main/CMakeLists.txt). */
extern const char trusted_keys_pem[] __asm__("_binary_fw_trusted_keys_pem_start");

static const iotd_port *s_port;
static iotd_esp *s_esp;
static iotd_esp_update s_up_state;
static iotd_update_port s_up;
static iotd_update s_upd;
static iotd_manifest_crypto s_crypto;
static iotd_manifest_key s_keys[KEYS_MAX];
static size_t s_n_keys;
/* The manifest, then each chunk; >= IOTD_MANIFEST_MAX + 1 and >= CHUNK. */
static uint8_t s_buf[CHUNK];
static bool s_ready;
static uint64_t s_hold_until_ms;
static uint64_t s_next_ms; /* the core's next step */

static iotd_update_report s_report;
static bool s_report_pending;
static uint64_t s_report_next_ms;
static uint64_t s_confirm_next_ms;

_Static_assert(sizeof(s_buf) > IOTD_MANIFEST_MAX, "the manifest must fit the buffer");

/* The build's setting, then the one stored on the device. */
static fw_setting setting(const settings *s)
{
    fw_setting fs = {IOTD_UPDATE_AUTO, CONFIG_IOTD_FW_WINDOW_START_H, CONFIG_IOTD_FW_WINDOW_END_H};

#if CONFIG_IOTD_FW_UPDATE_WINDOW
    fs.mode = IOTD_UPDATE_WINDOW;
#elif CONFIG_IOTD_FW_UPDATE_OFF
    fs.mode = IOTD_UPDATE_OFF;
#endif
    if (!fw_setting_apply(&fs, s->fw_mode, s->fw_window))
        ESP_LOGW(TAG, "settings.ignored: cfg/fw_mode or cfg/fw_window is not auto|window|off "
                      "and H-H (UTC hours); the build's setting holds");
    return fs;
}

static bool load_keys(void)
{
    size_t block = 0;
    iotd_status st = iotd_mbedtls_manifest_keys(trusted_keys_pem, &s_crypto, s_keys, KEYS_MAX,
                                                &s_n_keys, &block);

    if (st != IOTD_OK) {
        ESP_LOGE(TAG, "update.keys_unusable: the trusted signing keys built in: block %u: %s",
                 (unsigned)block, iotd_strerror(st));
        return false;
    }
    ESP_LOGI(TAG, "update.keys: %u trusted signing keys", (unsigned)s_n_keys);
    return true;
}

static void config_fill(iotd_update_config *cfg, const settings *s)
{
    fw_setting fs = setting(s);

    iotd_update_config_init(cfg);
    cfg->vendor_id = CONFIG_IOTD_FW_VENDOR_ID;
    cfg->class_id = CONFIG_IOTD_FW_CLASS_ID;
    cfg->keys = s_keys;
    cfg->n_keys = s_n_keys;
    cfg->crypto = &s_crypto;
    cfg->buf = s_buf;
    cfg->buf_cap = sizeof(s_buf);
    cfg->chunk_size = CHUNK;
    cfg->check_interval_ms = (uint32_t)CONFIG_IOTD_FW_CHECK_INTERVAL_S * 1000u;
    cfg->mode = fs.mode;
    cfg->window_start_h = fs.start_h;
    cfg->window_end_h = fs.end_h;
    ESP_LOGI(TAG, "update.setting: %s, window %02u-%02u UTC", fw_setting_mode_name(fs.mode),
             (unsigned)fs.start_h, (unsigned)fs.end_h);
}

void fwupdate_give_up_trial(const char *why)
{
    if (!iotd_esp_update_running_on_trial())
        return;
    ESP_LOGE(TAG, "update.rolling_back: the image on trial %s", why);
    (void)iotd_esp_update_roll_back(); /* restarts on success */
}

/* Updates cannot run: an image on trial could never be confirmed, so it
 * goes back to the previous one now rather than at some later reset. */
static void give_up(const char *why)
{
    ESP_LOGE(TAG, "update.unavailable: %s", why);
    fwupdate_give_up_trial("cannot run updates");
}

bool fwupdate_init(const iotd_port *port, iotd_esp *esp, const settings *s, uint64_t hold_until_ms)
{
    iotd_update_config cfg;

    s_port = port;
    s_esp = esp;
    s_hold_until_ms = hold_until_ms;
    s_crypto = iotd_mbedtls_manifest_crypto();
    if (iotd_esp_update_init(&s_up_state, esp, &s_up) != IOTD_OK) {
        give_up("no OTA slot (partitions.csv)");
        return false;
    }
    if (!load_keys()) {
        give_up("no usable trusted key");
        return false;
    }
    config_fill(&cfg, s);
    iotd_status st = iotd_update_init(&s_upd, port, &s_up, &cfg);
    if (st != IOTD_OK) {
        give_up(iotd_strerror(st));
        return false;
    }
    s_ready = true;
    return true;
}

/* ---- reports -------------------------------------------------------------------- */

static bool transient(int status)
{
    return status >= 500 || status == 408 || status == 429;
}

/* One attempt to deliver the pending report. */
static void post_report(uint64_t now)
{
    char json[IOTD_UPDATE_REPORT_MAX];
    char resp[REPORT_RESP_MAX];
    iotd_http_result res;
    size_t len = 0;

    if (iotd_update_report_json(&s_report, json, sizeof(json), &len) != IOTD_OK) {
        ESP_LOGE(TAG, "update.report_dropped: the report could not be written");
        s_report_pending = false;
        return;
    }
    iotd_status st = s_port->https_post(s_port->ctx, IOTD_UPDATE_REPORT_PATH, "application/json",
                                        json, len, resp, sizeof(resp), &res);
    if (st == IOTD_OK && !transient(res.status)) {
        if (res.status >= 300)
            ESP_LOGW(TAG, "update.report_refused: HTTP %d", res.status);
        s_report_pending = false;
        return;
    }
    /* Retry-After bounds nothing here: a report is small and rare. */
    s_report_next_ms = now + REPORT_RETRY_MS;
}

static void take_report(uint64_t now)
{
    iotd_update_report rep;

    if (iotd_update_take_report(&s_upd, &rep)) {
        ESP_LOGI(TAG, "update.report: %s%s%s", iotd_update_status_name(rep.status),
                 rep.reason[0] != '\0' ? " " : "", rep.reason);
        s_report = rep; /* a newer report replaces one not yet delivered */
        s_report_pending = true;
        s_report_next_ms = now;
    }
    if (s_report_pending && now >= s_report_next_ms)
        post_report(now);
}

/* ---- restart and trial ---------------------------------------------------------- */

static void restart(const char *why) __attribute__((noreturn));
static void restart(const char *why)
{
    ESP_LOGW(TAG, "update.restart: %s", why);
    iotd_esp_disconnect(s_esp);
    esp_restart();
}

static void judge_trial(uint64_t now, const iotd_device *dev)
{
    const uint64_t limit = (uint64_t)CONFIG_IOTD_FW_SELF_TEST_S * 1000u;
    fw_verdict v = fw_self_test(iotd_device_stats(dev), iotd_device_halted(dev), now, limit);

    if (v == FW_TEST_RUNNING || now < s_confirm_next_ms)
        return;
    ESP_LOGI(TAG, "update.self_test: %s", v == FW_TEST_PASSED ? "passed" : "failed");
    iotd_status st = iotd_update_trial_result(&s_upd, v == FW_TEST_PASSED);
    if (v == FW_TEST_FAILED && st != IOTD_OK) {
        /* The rollback failed (it restarts when it works): a restart lets
         * the bootloader roll back instead, as it does with any image on
         * trial that was not confirmed. */
        take_report(now);
        restart("the rollback failed; the bootloader rolls back instead");
    }
    /* Confirmed; or the confirmation failed and is tried again later (the
     * image stays on trial: a reset meanwhile rolls it back). */
    s_confirm_next_ms = now + CONFIRM_RETRY_MS;
}

/* ---- the step ------------------------------------------------------------------- */

static uint32_t until(uint64_t now, uint64_t at)
{
    if (at <= now)
        return 0;
    return at - now > UINT32_MAX ? UINT32_MAX : (uint32_t)(at - now);
}

static uint32_t wait_ms(uint64_t now, uint32_t core_ms)
{
    uint32_t ms = core_ms;

    if (s_report_pending && until(now, s_report_next_ms) < ms)
        ms = until(now, s_report_next_ms);
    if (iotd_update_on_trial(&s_upd)) {
        /* The verdict follows the device's progress: look again soon. */
        uint32_t poll = 1000u;
        ms = ms < poll ? ms : poll;
    }
    return ms;
}

uint32_t fwupdate_step(uint64_t now_ms, const iotd_device *dev)
{
    if (!s_ready)
        return UINT32_MAX;
    if (now_ms < s_hold_until_ms)
        return until(now_ms, s_hold_until_ms);
    uint32_t ms = iotd_update_step(&s_upd, now_ms);
    s_next_ms = now_ms + ms;
    take_report(now_ms);
    if (iotd_update_reboot_due(&s_upd))
        restart("a new image is activated");
    if (iotd_update_on_trial(&s_upd))
        judge_trial(now_ms, dev);
    return wait_ms(now_ms, ms);
}

bool fwupdate_may_sleep(void)
{
    return !s_ready || (iotd_update_get_state(&s_upd) == IOTD_UPDATE_S_IDLE && !s_report_pending);
}

uint64_t fwupdate_due_ms(void)
{
    return s_ready ? (s_next_ms > s_hold_until_ms ? s_next_ms : s_hold_until_ms) : 0;
}
