/* Firmware updates of a simulated device: the core's iotd_update beside
 * iotd_device, its reports POSTed to the gateway, the self-test of an
 * image on trial, and the reboot.
 *
 * A reboot drops the device's core and port and starts them again from
 * what the state directory holds, with the bootloader deciding which image
 * runs. With one device, iotsim re-executes itself instead (execv of
 * /proc/self/exe with the same arguments), so the new version runs as a
 * new process, as on a real device; with many devices in one process, the
 * device restarts in place.
 */
#include "sim.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotd/manifest.h"

#define REPORT_RESP_MAX   128
#define REPORT_RETRY_MS   1000u
#define REPORT_RETRY_BITS 9 /* 1 s doubled up to 512 s, then the backoff cap */

typedef enum post_rc {
    POST_SENT,    /* the gateway recorded it */
    POST_DROPPED, /* refused for good (404 rollout_unknown, another 4xx): not sent again */
    POST_RETRY,   /* no answer, 5xx, 408, 429: sent again later */
} post_rc;

static sim_device *device_of(void *update_port_ctx)
{
    return (sim_device *)((char *)update_port_ctx - offsetof(sim_device, pu));
}

/* ---- the manifest, as the gateway offers it ------------------------------------------ */

/* A manifest with a sequence not seen in this boot is an offer; it is
 * logged here, whatever the core then decides about it. */
static void note_offer(sim_device *d, const void *body, size_t len)
{
    iotd_manifest m;
    if (iotd_manifest_parse(body, len, &m, NULL) != IOTD_MANIFEST_OK ||
        m.sequence == d->offered_sequence)
        return;
    d->offered_sequence = m.sequence;
    memcpy(d->offered_version, m.version, sizeof(d->offered_version));
    char msg[128];
    snprintf(msg, sizeof(msg), "version=%s sequence=%llu size=%u", m.version,
             (unsigned long long)m.sequence, (unsigned)m.image_size);
    sim_event(d, IOTD_LOG_INFO, "update.offered", msg);
}

iotd_status sim_get(void *ctx, const char *path, uint32_t range_start, uint32_t range_len,
                    void *buf, size_t cap, iotd_get_result *result)
{
    sim_device *d = device_of(ctx);
    iotd_status st = d->get(ctx, path, range_start, range_len, buf, cap, result);
    if (st != IOTD_OK) {
        sim_note_failure(d);
        return st;
    }
    sim_note_reached(d);
    if (result->status == 200 && !result->truncated && strcmp(path, d->ucfg.manifest_path) == 0)
        note_offer(d, buf, result->body_len);
    return st;
}

/* ---- reports -------------------------------------------------------------------------- */

/* The version a report is about: the running one for a confirmation or
 * a failure on trial, the offered one for its sequence or for a refusal,
 * else the image in the other slot (one rolled back from). */
static void version_of(const sim_device *d, const iotd_update_report *r, char *out, size_t cap)
{
    iotd_posix_image img;
    const char *v = "-";
    if (r->status == IOTD_UPDATE_CONFIRMED || iotd_update_on_trial(&d->upd))
        v = d->boot.image.version;
    else if (r->sequence != 0 && r->sequence == d->offered_sequence)
        v = d->offered_version;
    else if (r->status == IOTD_UPDATE_FAILED && d->offered_sequence != 0)
        v = d->offered_version; /* a refused manifest: the report names the last accepted */
    else if (iotd_posix_update_slot_image(&d->pu, d->boot.slot == 0 ? 1 : 0, &img) == IOTD_OK)
        v = img.version;
    snprintf(out, cap, "%s", v);
}

static const char *event_of(iotd_update_status s)
{
    switch (s) {
    case IOTD_UPDATE_DOWNLOADING:
        return "update.downloading";
    case IOTD_UPDATE_DOWNLOADED:
        return "update.downloaded";
    case IOTD_UPDATE_INSTALLING:
        return "update.installed";
    case IOTD_UPDATE_CONFIRMED:
        return "update.confirmed";
    case IOTD_UPDATE_FAILED:
        return "update.failed";
    case IOTD_UPDATE_ROLLED_BACK:
        return "update.rolled_back";
    case IOTD_UPDATE_NONE:
        break;
    }
    return "update.report";
}

static void log_report(sim_device *d, const iotd_update_report *r)
{
    char msg[192], version[IOTD_MANIFEST_FW_VERSION_MAX + 1];
    bool bad = r->status == IOTD_UPDATE_FAILED || r->status == IOTD_UPDATE_ROLLED_BACK;
    version_of(d, r, version, sizeof(version));
    int n = snprintf(msg, sizeof(msg), "version=%s sequence=%llu", version,
                     (unsigned long long)r->sequence);
    if (n > 0 && (size_t)n < sizeof(msg) && r->status == IOTD_UPDATE_DOWNLOADING)
        snprintf(msg + n, sizeof(msg) - (size_t)n, " offset=%u size=%u", (unsigned)r->offset,
                 (unsigned)r->size);
    else if (n > 0 && (size_t)n < sizeof(msg) && r->status == IOTD_UPDATE_ROLLED_BACK)
        snprintf(msg + n, sizeof(msg) - (size_t)n, " running=%s reason=%s", d->boot.image.version,
                 r->reason);
    else if (n > 0 && (size_t)n < sizeof(msg) && bad)
        snprintf(msg + n, sizeof(msg) - (size_t)n, " reason=%s", r->reason);
    sim_event(d, bad ? IOTD_LOG_WARN : IOTD_LOG_INFO, event_of(r->status), msg);
}

static void outbox_push(sim_device *d, const iotd_update_report *r)
{
    if (d->outbox_len == SIM_OUTBOX) {
        /* The oldest goes: the latest state is what the gateway needs. */
        memmove(d->outbox, d->outbox + 1, (SIM_OUTBOX - 1) * sizeof(d->outbox[0]));
        d->outbox_len--;
        sim_event(d, IOTD_LOG_WARN, "update.report_dropped",
                  "too many reports not taken by the gateway; the oldest is dropped");
    }
    d->outbox[d->outbox_len++] = *r;
}

static void take_reports(sim_device *d)
{
    iotd_update_report r;
    while (iotd_update_take_report(&d->upd, &r)) {
        log_report(d, &r);
        d->last_report = r;
        d->has_report = true;
        outbox_push(d, &r);
    }
}

static bool transient(int status)
{
    return status >= 500 || status == 408 || status == 429;
}

/* POSTs one report with iotd_update_report_json. */
static post_rc post_report(sim_device *d, const iotd_update_report *r, uint32_t *retry_after_s)
{
    char json[IOTD_UPDATE_REPORT_MAX], resp[REPORT_RESP_MAX], msg[384];
    size_t len = 0;
    iotd_http_result res;
    if (iotd_update_report_json(r, json, sizeof(json), &len) != IOTD_OK) {
        sim_event(d, IOTD_LOG_ERROR, "update.report_invalid", "a report could not be written");
        return POST_DROPPED;
    }
    if (d->post(&d->posix, IOTD_UPDATE_REPORT_PATH, "application/json", json, len, resp,
                sizeof(resp) - 1, &res) != IOTD_OK) {
        sim_note_failure(d);
        return POST_RETRY;
    }
    sim_note_reached(d);
    *retry_after_s = res.has_retry_after ? res.retry_after_s : 0;
    if (res.status >= 200 && res.status < 300)
        return POST_SENT;
    resp[res.body_len] = '\0';
    snprintf(msg, sizeof(msg), "HTTP %d for %s: %s", res.status, json, resp);
    if (transient(res.status)) {
        sim_event(d, IOTD_LOG_INFO, "update.report_retry", msg);
        return POST_RETRY;
    }
    /* 404 {"error":"rollout_unknown"}: no rollout knows that sequence;
     * sending it again cannot change that. */
    sim_event(d, IOTD_LOG_WARN, "update.report_refused", msg);
    return POST_DROPPED;
}

static void outbox_pop(sim_device *d)
{
    memmove(d->outbox, d->outbox + 1, (d->outbox_len - 1) * sizeof(d->outbox[0]));
    d->outbox_len--;
    d->outbox_failures = 0;
}

/* Sends the oldest report when due; the ms until the next send. */
static uint32_t outbox_send(sim_device *d, uint64_t now)
{
    uint32_t retry_after_s = 0;
    if (d->outbox_len == 0)
        return UINT32_MAX;
    if (now < d->outbox_retry_ms)
        return (uint32_t)(d->outbox_retry_ms - now);
    if (post_report(d, &d->outbox[0], &retry_after_s) != POST_RETRY) {
        outbox_pop(d);
        return 0;
    }
    uint32_t bits = d->outbox_failures < REPORT_RETRY_BITS ? d->outbox_failures : REPORT_RETRY_BITS;
    uint64_t wait = (uint64_t)REPORT_RETRY_MS << bits;
    d->outbox_failures++;
    if (wait > d->sim->opt->backoff_max_ms)
        wait = d->sim->opt->backoff_max_ms;
    if ((uint64_t)retry_after_s * 1000u > wait)
        wait = (uint64_t)retry_after_s * 1000u;
    d->outbox_retry_ms = now + wait;
    return (uint32_t)wait;
}

/* Before a reboot: each report gets one try; what the gateway does not
 * take is lost with the device's memory (the next boot reports the
 * outcome). */
static void outbox_flush(sim_device *d)
{
    uint32_t retry_after_s = 0;
    while (d->outbox_len > 0 && post_report(d, &d->outbox[0], &retry_after_s) != POST_RETRY)
        outbox_pop(d);
    if (d->outbox_len > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%zu report%s not sent before the reboot", d->outbox_len,
                 d->outbox_len == 1 ? "" : "s");
        sim_event(d, IOTD_LOG_WARN, "update.report_lost", msg);
    }
    d->outbox_len = 0;
    d->outbox_failures = 0;
    d->outbox_retry_ms = 0;
}

/* ---- the self-test and the reboot ---------------------------------------------------------- */

/* An image on trial passes when it exchanged with the gateway (one upload
 * acknowledged) and stored a reading since it booted, unless its header
 * says its self-test fails. */
static void self_test(sim_device *d)
{
    if (!iotd_update_on_trial(&d->upd))
        return;
    const iotd_stats *st = iotd_device_stats(&d->dev);
    bool pass = d->boot.image.self_test_pass && !d->sim->opt->update.self_test_fails;
    if (pass && (st->sent == 0 || st->readings == 0))
        return; /* not done yet */
    sim_event(d, pass ? IOTD_LOG_INFO : IOTD_LOG_WARN, "update.self_test",
              pass ? "passed: an upload was acknowledged and a reading stored"
              : d->boot.image.self_test_pass ? "failed: this device fails every new image"
                                             : "failed: the image's self-test fails");
    if (iotd_update_trial_result(&d->upd, pass) != IOTD_OK)
        sim_event(d, IOTD_LOG_ERROR, "update.trial_failed",
                  pass ? "the image could not be confirmed" : "the image could not be rejected");
}

/* Replaces this process with a new run of iotsim; returns only if that
 * failed. */
static void reexec(sim_device *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sim_close_device(d);
    fflush(NULL);
    /* The new process waits for its signals as this one did at start. */
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    execv("/proc/self/exe", d->sim->opt->argv);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sim_errorf("%s: cannot re-execute iotsim for the reboot (%s); restarting the device in place",
               d->id, strerror(errno));
}

static void reboot(sim_device *d)
{
    outbox_flush(d);
    bool alone = d->sim->n == 1 && d->sim->opt->argv != NULL;
    sim_event(d, IOTD_LOG_INFO, "device.reboot", alone ? "re-executing iotsim" : "in place");
    if (alone)
        reexec(d);
    sim_close_device(d);
    /* The device starts afresh: its counters are those of the new boot. */
    d->sent = 0;
    d->duplicates = 0;
    d->readings_seen = 0;
    d->drain_deadline_ms = 0;
    d->offered_sequence = 0;
    d->has_report = false;
    if (sim_open_device(d) != 0)
        d->state = SIM_FAILED;
}

/* ---- the device's side ------------------------------------------------------------------- */

int sim_update_open(sim_device *d)
{
    const sim_options *opt = d->sim->opt;
    const sim_update_options *uo = &opt->update;
    d->updating = false;
    if (!uo->enabled)
        return 0;
    size_t cap = uo->chunk > IOTD_MANIFEST_MAX + 1u ? uo->chunk : IOTD_MANIFEST_MAX + 1u;
    if (d->ubuf == NULL)
        d->ubuf = malloc(cap);
    if (d->ubuf == NULL) {
        sim_errorf("%s: out of memory", d->id);
        return -1;
    }
    iotd_update_config_init(&d->ucfg);
    d->ucfg.vendor_id = uo->vendor;
    d->ucfg.class_id = uo->class_id;
    d->ucfg.keys = uo->keys;
    d->ucfg.n_keys = uo->n_keys;
    d->ucfg.crypto = &uo->crypto;
    d->ucfg.buf = d->ubuf;
    d->ucfg.buf_cap = cap;
    d->ucfg.chunk_size = uo->chunk;
    d->ucfg.check_interval_ms = uo->check_ms;
    d->ucfg.retry_base_ms = d->cfg.backoff_base_ms;
    d->ucfg.retry_max_ms = d->cfg.backoff_max_ms;
    d->ucfg.mode = uo->mode;
    d->ucfg.window_start_h = uo->window_start_h;
    d->ucfg.window_end_h = uo->window_end_h;
    iotd_status st = iotd_update_init(&d->upd, &d->port, &d->uport, &d->ucfg);
    if (st != IOTD_OK) {
        sim_errorf("%s: cannot start firmware updates on %s/%s: %s", d->id, opt->state, d->id,
                   iotd_strerror(st));
        return -1;
    }
    d->updating = true;
    return 0;
}

uint32_t sim_update_step(sim_device *d, uint64_t now)
{
    uint32_t wait = iotd_update_step(&d->upd, now);
    take_reports(d);
    self_test(d);
    take_reports(d);
    if (iotd_update_reboot_due(&d->upd)) {
        reboot(d);
        return 0;
    }
    uint32_t next = outbox_send(d, now);
    return next < wait ? next : wait;
}

bool sim_update_busy(const sim_device *d)
{
    if (!d->updating)
        return false;
    iotd_update_state s = iotd_update_get_state(&d->upd);
    return d->outbox_len > 0 || (s != IOTD_UPDATE_S_IDLE && s != IOTD_UPDATE_S_CHECK);
}

void sim_update_summary(const sim_device *d, char *buf, size_t cap)
{
    const char *state = "none";
    const char *reason = "";
    if (!d->sim->opt->update.enabled)
        state = "off";
    else if (d->updating && iotd_update_on_trial(&d->upd))
        state = "on_trial";
    else if (d->has_report)
        state = iotd_update_status_name(d->last_report.status);
    if (d->has_report && d->last_report.reason[0] != '\0' && strcmp(state, "on_trial") != 0)
        reason = d->last_report.reason;
    snprintf(buf, cap, ", firmware %s, update %s%s%s%s", d->boot.image.version, state,
             reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
}
