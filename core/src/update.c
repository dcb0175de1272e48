#include "iotd/update.h"

#include <string.h>

#include "internal.h"

/* The progress record (iotd_record): phase, sequence (2 words), image
 * size, offset, digest (8 words). The sequence is also the last one
 * accepted, which a manifest must exceed. */
#define REC_MAGIC   0x3141544fu /* "OTA1" */
#define REC_WORDS   13
#define KEY_REC_A   "ota.a"
#define KEY_REC_B   "ota.b"
#define KEY_VERSION "ota.ver" /* the version being installed, to tell it at the next boot */

#define SECONDS_PER_HOUR 3600u
#define MS_PER_S         1000u

/* What the record says survived the last reset. */
typedef enum phase {
    P_IDLE = 0,    /* nothing in progress */
    P_DOWNLOADING, /* offset bytes of the image are in the slot */
    P_VERIFIED,    /* the slot's digest matched; activation may not have happened */
    P_ACTIVATED,   /* the slot boots next, on trial */
    P_REJECTED,    /* the self-test failed; the previous image boots next */
    P_COUNT
} phase;

static const char *const STATUS_NAMES[] = {
    "none", "downloading", "downloaded", "installing", "confirmed", "failed", "rolled_back",
};

const char *iotd_update_status_name(iotd_update_status s)
{
    return (unsigned)s < sizeof(STATUS_NAMES) / sizeof(STATUS_NAMES[0]) ? STATUS_NAMES[s] : "?";
}

void iotd_update_config_init(iotd_update_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->manifest_path = IOTD_UPDATE_MANIFEST_PATH;
    cfg->chunk_size = 4096;
    cfg->check_interval_ms = 60u * 60u * MS_PER_S;
    cfg->retry_base_ms = 10u * MS_PER_S;
    cfg->retry_max_ms = 10u * 60u * MS_PER_S;
    cfg->window_start_h = 2;
    cfg->window_end_h = 5;
}

/* ---- persistence ---------------------------------------------------------------- */

static iotd_status store(iotd_update *u, uint32_t ph)
{
    uint32_t w[REC_WORDS];

    w[0] = ph;
    w[1] = (uint32_t)u->sequence;
    w[2] = (uint32_t)(u->sequence >> 32);
    w[3] = u->size;
    w[4] = u->offset;
    for (size_t i = 0; i < 8; i++)
        w[5 + i] = iotd__get_u32(u->digest + 4 * i);
    iotd_status st = iotd_record_store(&u->rec, u->port, w, REC_WORDS);
    if (st == IOTD_OK)
        u->phase = ph;
    return st;
}

/* The record, or IDLE with nothing accepted when there is none (or it is
 * damaged: the anti-rollback counter still guards the device). */
static iotd_status load(iotd_update *u)
{
    uint32_t w[REC_WORDS];
    iotd_status st = iotd_record_load(&u->rec, u->port, w, REC_WORDS);

    if (st == IOTD_EIO)
        return st;
    if (st != IOTD_OK || w[0] >= P_COUNT || w[4] > w[3]) {
        if (st != IOTD_ENOENT)
            iotd__log(u->port, IOTD_LOG_WARN, "update.record_reset",
                      "the update progress record was damaged; starting afresh");
        return IOTD_OK;
    }
    u->phase = w[0];
    u->sequence = (uint64_t)w[2] << 32 | w[1];
    u->size = w[3];
    u->offset = w[4];
    for (size_t i = 0; i < 8; i++)
        iotd__put_u32(u->digest + 4 * i, w[5 + i]);
    return IOTD_OK;
}

/* ---- reports and transitions ------------------------------------------------------ */

static void report(iotd_update *u, iotd_update_status status, const char *reason)
{
    u->report.status = status;
    u->report.reason = reason;
    u->report.sequence = u->sequence;
    u->report.offset = u->offset;
    u->report.size = u->size;
    u->report_new = true;
}

static void wait_for(iotd_update *u, uint64_t now, uint32_t ms)
{
    u->next_ms = now + ms;
}

static void retry_later(iotd_update *u, uint64_t now)
{
    wait_for(u, now, iotd_backoff_fail(&u->backoff, u->port->random_u32(u->port->ctx)));
}

/* Ends this attempt; the running image is unchanged. abandon: this
 * manifest is not tried again (its sequence stays the last accepted), so a
 * bad release does not loop. */
static void fail(iotd_update *u, uint64_t now, const char *reason, bool abandon)
{
    iotd__log(u->port, IOTD_LOG_WARN, "update.failed", reason);
    if (abandon && u->phase != P_IDLE && store(u, P_IDLE) != IOTD_OK)
        iotd__log(u->port, IOTD_LOG_ERROR, "update.store_failed",
                  "the update progress could not be stored");
    report(u, IOTD_UPDATE_FAILED, reason);
    u->state = IOTD_UPDATE_S_IDLE;
    iotd_backoff_reset(&u->backoff);
    wait_for(u, now, u->cfg.check_interval_ms);
}

/* ---- the setting ---------------------------------------------------------------- */

static bool in_window(uint32_t h, uint32_t start, uint32_t end)
{
    if (start == end)
        return true;
    return start < end ? (h >= start && h < end) : (h >= start || h < end);
}

/* True when new work may run now; otherwise *wait_ms until it may. */
static bool allowed(const iotd_update *u, uint32_t *wait_ms)
{
    int64_t now = 0;

    *wait_ms = u->cfg.check_interval_ms;
    if (u->cfg.mode == IOTD_UPDATE_AUTO)
        return true;
    if (u->cfg.mode != IOTD_UPDATE_WINDOW || !u->port->wall_time(u->port->ctx, &now) ||
        now < IOTD_MIN_WALL_TIME)
        return false; /* off, or a window cannot be told without a clock */
    uint32_t in_day = (uint32_t)(now % (24 * (int64_t)SECONDS_PER_HOUR));
    uint32_t h = in_day / SECONDS_PER_HOUR;
    if (in_window(h, u->cfg.window_start_h, u->cfg.window_end_h))
        return true;
    uint32_t hours = (u->cfg.window_start_h + 24u - h) % 24u;
    *wait_ms = (hours * SECONDS_PER_HOUR - in_day % SECONDS_PER_HOUR) * MS_PER_S;
    return false;
}

/* ---- checking ------------------------------------------------------------------- */

/* The device's side of iotd_manifest_policy. While a download is in
 * progress its own manifest must pass again, so it can resume. */
static bool make_policy(const iotd_update *u, iotd_manifest_policy *p)
{
    iotd_fw_info running;
    int64_t now = 0;

    if (u->up->fw_info(u->up->ctx, false, &running) != IOTD_OK)
        return false;
    memset(p, 0, sizeof(*p));
    p->keys = u->cfg.keys;
    p->n_keys = u->cfg.n_keys;
    p->vendor_id = u->cfg.vendor_id;
    p->class_id = u->cfg.class_id;
    p->last_sequence = u->phase == P_DOWNLOADING ? u->sequence - 1u : u->sequence;
    p->secure_version = running.secure_version;
    p->slot_size = u->up->slot_capacity(u->up->ctx);
    p->has_now = u->port->wall_time(u->port->ctx, &now) && now >= IOTD_MIN_WALL_TIME;
    p->now = now;
    return p->slot_size != 0;
}

/* The manifest passed: resume the download it names, or start it. */
static void accept(iotd_update *u, uint64_t now)
{
    const iotd_manifest *m = &u->manifest;

    u->state = IOTD_UPDATE_S_DOWNLOAD;
    wait_for(u, now, 0);
    if (u->phase == P_DOWNLOADING && m->sequence == u->sequence && m->image_size == u->size &&
        memcmp(m->image_digest, u->digest, IOTD_MANIFEST_DIGEST_LEN) == 0) {
        u->state = u->offset == u->size ? IOTD_UPDATE_S_VERIFY : IOTD_UPDATE_S_DOWNLOAD;
        report(u, IOTD_UPDATE_DOWNLOADING, "");
        return;
    }
    u->sequence = m->sequence;
    u->size = m->image_size;
    u->offset = 0;
    memcpy(u->digest, m->image_digest, IOTD_MANIFEST_DIGEST_LEN);
    u->slot_open = false;
    if (store(u, P_DOWNLOADING) != IOTD_OK) {
        fail(u, now, IOTD_UPDATE_R_STORAGE, false);
        return;
    }
    report(u, IOTD_UPDATE_DOWNLOADING, "");
}

/* A refused manifest: the report names that manifest's release, which the
 * gateway records it against, not the download in progress or the last
 * release accepted; nothing of it is in the slot. A manifest that did not
 * parse names none (sequence 0). */
static void refuse(iotd_update *u, uint64_t now, iotd_manifest_result r)
{
    bool parsed = r != IOTD_MANIFEST_MALFORMED && r != IOTD_MANIFEST_UNSUPPORTED;

    fail(u, now, iotd_manifest_result_name(r), false);
    u->report.sequence = parsed ? u->manifest.sequence : 0;
    u->report.offset = 0;
    u->report.size = parsed ? u->manifest.image_size : 0;
}

static void judge_manifest(iotd_update *u, uint64_t now, size_t len)
{
    iotd_manifest_policy policy;

    if (!make_policy(u, &policy)) {
        fail(u, now, IOTD_UPDATE_R_SLOT, false);
        return;
    }
    iotd_manifest_result r =
        iotd_manifest_verify((const char *)u->cfg.buf, len, &policy, u->cfg.crypto, &u->manifest);
    if (r == IOTD_MANIFEST_OK) {
        accept(u, now);
        return;
    }
    if (r == IOTD_MANIFEST_OLD_SEQUENCE && u->manifest.sequence == u->sequence &&
        u->phase == P_IDLE) {
        u->state = IOTD_UPDATE_S_IDLE; /* the release this device already took */
        wait_for(u, now, u->cfg.check_interval_ms);
        return;
    }
    refuse(u, now, r);
}

static bool transient(int status)
{
    return status >= 500 || status == 408 || status == 429;
}

static void check(iotd_update *u, uint64_t now)
{
    iotd_get_result res;

    memset(&res, 0, sizeof(res));
    iotd_status st = u->up->https_get(u->up->ctx, u->cfg.manifest_path, 0, 0, u->cfg.buf,
                                      IOTD_MANIFEST_MAX + 1u, &res);
    if (st != IOTD_OK || transient(res.status)) {
        retry_later(u, now);
        return;
    }
    iotd_backoff_reset(&u->backoff);
    if (res.status != 200) {
        /* 204/404: nothing for this device; a download in progress stays
         * stored and resumes when its manifest is offered again. */
        u->state = IOTD_UPDATE_S_IDLE;
        wait_for(u, now, u->cfg.check_interval_ms);
        return;
    }
    judge_manifest(u, now, res.truncated ? IOTD_MANIFEST_MAX + 1u : res.body_len);
}

/* ---- downloading ------------------------------------------------------------------ */

static bool open_slot(iotd_update *u, uint32_t resume_offset)
{
    if (!u->slot_open)
        u->slot_open = u->up->slot_begin(u->up->ctx, u->size, resume_offset) == IOTD_OK;
    return u->slot_open;
}

/* The answer is exactly the range asked for. */
static bool range_ok(const iotd_update *u, const iotd_get_result *res, uint32_t len)
{
    return res->status == 206 && res->has_range && !res->truncated &&
           res->range_start == u->offset && res->range_len == len && res->body_len == len &&
           res->range_total == u->size;
}

/* Keeps the chunk just fetched: into the slot, then the new offset into
 * the record, so a reset re-fetches at most this chunk. */
static void keep_chunk(iotd_update *u, uint64_t now, uint32_t len)
{
    if (u->up->slot_write(u->up->ctx, u->offset, u->cfg.buf, len) != IOTD_OK) {
        fail(u, now, IOTD_UPDATE_R_SLOT, false);
        return;
    }
    u->offset += len;
    if (store(u, P_DOWNLOADING) != IOTD_OK) {
        fail(u, now, IOTD_UPDATE_R_STORAGE, false);
        return;
    }
    iotd_backoff_reset(&u->backoff);
    wait_for(u, now, 0);
    if (u->offset == u->size) {
        u->state = IOTD_UPDATE_S_VERIFY;
        report(u, IOTD_UPDATE_DOWNLOADED, "");
    }
}

static void download(iotd_update *u, uint64_t now)
{
    iotd_get_result res;
    uint32_t left = u->size - u->offset;
    uint32_t len = left < u->cfg.chunk_size ? left : u->cfg.chunk_size;

    if (!open_slot(u, u->offset)) {
        fail(u, now, IOTD_UPDATE_R_SLOT, false);
        return;
    }
    memset(&res, 0, sizeof(res));
    iotd_status st =
        u->up->https_get(u->up->ctx, u->manifest.image_uri, u->offset, len, u->cfg.buf, len, &res);
    if (st != IOTD_OK || transient(res.status)) {
        iotd__log(u->port, IOTD_LOG_WARN, "update.download_retry",
                  "the image download was interrupted; it resumes where it stopped");
        retry_later(u, now);
        return;
    }
    if (range_ok(u, &res, len)) {
        keep_chunk(u, now, len);
        return;
    }
    bool missing = res.status == 404 || res.status == 410;
    fail(u, now, missing ? IOTD_UPDATE_R_IMAGE_MISSING : IOTD_UPDATE_R_BAD_RESPONSE, false);
}

/* ---- verifying and activating ------------------------------------------------------- */

/* The slot's SHA-256 into out. IOTD_EIO: the slot could not be read;
 * IOTD_ECORRUPT: the hash service failed. */
static iotd_status hash_slot(iotd_update *u, uint8_t out[IOTD_MANIFEST_DIGEST_LEN])
{
    const iotd_update_port *up = u->up;
    iotd_status st = IOTD_ECORRUPT;

    if (up->sha256_begin(up->ctx) != IOTD_OK)
        goto out;
    for (uint32_t off = 0; off < u->size;) {
        uint32_t left = u->size - off;
        uint32_t n = left < u->cfg.chunk_size ? left : u->cfg.chunk_size;
        st = up->slot_read(up->ctx, off, u->cfg.buf, n);
        if (st != IOTD_OK) {
            st = IOTD_EIO;
            goto out;
        }
        st = IOTD_ECORRUPT;
        if (up->sha256_update(up->ctx, u->cfg.buf, n) != IOTD_OK)
            goto out;
        off += n;
    }
    st = up->sha256_finish(up->ctx, out) == IOTD_OK ? IOTD_OK : IOTD_ECORRUPT;
out:
    return st;
}

static void verify(iotd_update *u, uint64_t now)
{
    uint8_t got[IOTD_MANIFEST_DIGEST_LEN];
    iotd_status st = hash_slot(u, got);

    if (st != IOTD_OK) {
        fail(u, now, st == IOTD_EIO ? IOTD_UPDATE_R_SLOT : IOTD_UPDATE_R_HASH, false);
        return;
    }
    if (memcmp(got, u->digest, IOTD_MANIFEST_DIGEST_LEN) != 0) {
        fail(u, now, IOTD_UPDATE_R_DIGEST, true); /* never activated */
        return;
    }
    u->state = IOTD_UPDATE_S_ACTIVATE;
    wait_for(u, now, 0);
}

/* Before activation: the version that will run, so the next boot can tell
 * whether it is the new image, then the verified phase. */
static iotd_status note_verified(iotd_update *u)
{
    if (u->phase == P_VERIFIED)
        return IOTD_OK; /* after a reset: both are stored already */
    iotd_status st = u->port->kv_set(u->port->ctx, KEY_VERSION, u->manifest.version,
                                     strlen(u->manifest.version));
    if (st != IOTD_OK)
        return st;
    return store(u, P_VERIFIED);
}

static void activate(iotd_update *u, uint64_t now)
{
    if (note_verified(u) != IOTD_OK) {
        fail(u, now, IOTD_UPDATE_R_STORAGE, false);
        return;
    }
    if (!open_slot(u, u->size)) {
        fail(u, now, IOTD_UPDATE_R_SLOT, true);
        return;
    }
    iotd_status st = u->up->slot_activate(u->up->ctx);
    if (st != IOTD_OK) {
        fail(u, now, st == IOTD_ECORRUPT ? IOTD_UPDATE_R_IMAGE_REFUSED : IOTD_UPDATE_R_SLOT, true);
        return;
    }
    /* Not stored: the next boot still finds the new image on trial. */
    if (store(u, P_ACTIVATED) != IOTD_OK)
        iotd__log(u->port, IOTD_LOG_WARN, "update.store_failed",
                  "the activation could not be recorded");
    u->state = IOTD_UPDATE_S_REBOOT;
    report(u, IOTD_UPDATE_INSTALLING, "");
}

/* ---- the step ----------------------------------------------------------------------- */

static bool does_work(iotd_update_state s)
{
    return s == IOTD_UPDATE_S_IDLE || s == IOTD_UPDATE_S_CHECK || s == IOTD_UPDATE_S_DOWNLOAD ||
           s == IOTD_UPDATE_S_VERIFY || s == IOTD_UPDATE_S_ACTIVATE;
}

static void run_state(iotd_update *u, uint64_t now)
{
    switch (u->state) {
    case IOTD_UPDATE_S_IDLE:
    case IOTD_UPDATE_S_CHECK:
        u->state = IOTD_UPDATE_S_CHECK;
        check(u, now);
        break;
    case IOTD_UPDATE_S_DOWNLOAD:
        download(u, now);
        break;
    case IOTD_UPDATE_S_VERIFY:
        verify(u, now);
        break;
    case IOTD_UPDATE_S_ACTIVATE:
        activate(u, now);
        break;
    case IOTD_UPDATE_S_REBOOT:
    case IOTD_UPDATE_S_TRIAL:
        wait_for(u, now, u->cfg.check_interval_ms);
        break;
    }
}

uint32_t iotd_update_step(iotd_update *u, uint64_t now_ms)
{
    uint32_t wait = 0;

    if (!u->started) {
        u->started = true;
        u->next_ms = now_ms;
    }
    if (now_ms >= u->next_ms) {
        if (does_work(u->state) && !allowed(u, &wait))
            wait_for(u, now_ms, wait);
        else
            run_state(u, now_ms);
    }
    if (u->next_ms <= now_ms)
        return 0;
    uint64_t left = u->next_ms - now_ms;
    return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}

/* ---- starting ----------------------------------------------------------------------- */

/* Whether the running image is the one this record activated. */
static bool running_is_new(const iotd_update *u)
{
    char want[IOTD_MANIFEST_FW_VERSION_MAX + 1];
    iotd_fw_info running;
    size_t len = 0;

    if (u->port->kv_get(u->port->ctx, KEY_VERSION, want, sizeof(want) - 1u, &len) != IOTD_OK)
        return false;
    want[len] = '\0';
    return u->up->fw_info(u->up->ctx, false, &running) == IOTD_OK &&
           strcmp(running.version, want) == 0;
}

/* A verified, activated or rejected image while none is on trial: the new
 * image runs confirmed (a platform without trial boots, or power went
 * after confirm), or the previous image runs again. */
static void settle(iotd_update *u)
{
    bool confirmed = u->phase != P_REJECTED && running_is_new(u);
    const char *why = u->phase == P_REJECTED ? IOTD_UPDATE_R_SELF_TEST : IOTD_UPDATE_R_TRIAL_RESET;

    if (store(u, P_IDLE) != IOTD_OK)
        iotd__log(u->port, IOTD_LOG_ERROR, "update.store_failed",
                  "the update progress could not be stored");
    if (confirmed) {
        report(u, IOTD_UPDATE_CONFIRMED, "");
        return;
    }
    iotd__log(u->port, IOTD_LOG_WARN, "update.rolled_back", why);
    report(u, IOTD_UPDATE_ROLLED_BACK, why);
}

static bool config_ok(const iotd_update_config *c)
{
    return c->manifest_path != NULL && c->manifest_path[0] == '/' && c->vendor_id != NULL &&
           c->class_id != NULL && c->keys != NULL && c->n_keys != 0 && c->crypto != NULL &&
           c->buf != NULL && c->chunk_size != 0 && c->buf_cap >= c->chunk_size &&
           c->buf_cap > IOTD_MANIFEST_MAX && c->check_interval_ms != 0 && c->retry_base_ms != 0 &&
           c->retry_max_ms >= c->retry_base_ms && c->window_start_h < 24 && c->window_end_h < 24;
}

static bool port_ok(const iotd_port *p, const iotd_update_port *u)
{
    return p->kv_get != NULL && p->kv_set != NULL && p->wall_time != NULL &&
           p->random_u32 != NULL && u->slot_capacity != NULL && u->slot_begin != NULL &&
           u->slot_write != NULL && u->slot_read != NULL && u->slot_activate != NULL &&
           u->on_trial != NULL && u->confirm != NULL && u->reject != NULL && u->fw_info != NULL &&
           u->https_get != NULL && u->sha256_begin != NULL && u->sha256_update != NULL &&
           u->sha256_finish != NULL;
}

iotd_status iotd_update_init(iotd_update *u, const iotd_port *port, const iotd_update_port *up,
                             const iotd_update_config *cfg)
{
    if (u == NULL || port == NULL || up == NULL || cfg == NULL || !config_ok(cfg) ||
        !port_ok(port, up))
        return IOTD_EINVAL;
    memset(u, 0, sizeof(*u));
    u->port = port;
    u->up = up;
    u->cfg = *cfg;
    u->report.reason = "";
    iotd_record_init(&u->rec, KEY_REC_A, KEY_REC_B, REC_MAGIC);
    iotd_backoff_init(&u->backoff, cfg->retry_base_ms, cfg->retry_max_ms);
    iotd_status st = load(u);
    if (st != IOTD_OK)
        return st;

    if (up->on_trial(up->ctx))
        u->state = IOTD_UPDATE_S_TRIAL;
    else if (u->phase == P_VERIFIED && !running_is_new(u))
        u->state = IOTD_UPDATE_S_VERIFY; /* activation may not have happened: again */
    else if (u->phase >= P_VERIFIED)
        settle(u);
    return IOTD_OK;
}

/* ---- the trial ------------------------------------------------------------------------ */

static iotd_status roll_back(iotd_update *u)
{
    /* Noted first: the previous image reports why it runs again. */
    if (store(u, P_REJECTED) != IOTD_OK)
        iotd__log(u->port, IOTD_LOG_WARN, "update.store_failed",
                  "the failed self-test could not be recorded");
    iotd_status st = u->up->reject(u->up->ctx);
    if (st != IOTD_OK) {
        report(u, IOTD_UPDATE_FAILED, IOTD_UPDATE_R_ROLLBACK);
        return IOTD_EIO;
    }
    u->state = IOTD_UPDATE_S_REBOOT;
    return IOTD_OK;
}

iotd_status iotd_update_trial_result(iotd_update *u, bool passed)
{
    if (u->state != IOTD_UPDATE_S_TRIAL)
        return IOTD_ESTATE;
    if (!passed)
        return roll_back(u);
    if (u->up->confirm(u->up->ctx) != IOTD_OK) {
        report(u, IOTD_UPDATE_FAILED, IOTD_UPDATE_R_CONFIRM);
        return IOTD_EIO;
    }
    /* Not stored: the next boot finds the new image running, not on trial,
     * and reports it confirmed again. */
    if (store(u, P_IDLE) != IOTD_OK)
        iotd__log(u->port, IOTD_LOG_WARN, "update.store_failed",
                  "the confirmation could not be recorded");
    u->state = IOTD_UPDATE_S_IDLE;
    report(u, IOTD_UPDATE_CONFIRMED, "");
    return IOTD_OK;
}

/* ---- queries -------------------------------------------------------------------------- */

void iotd_update_set_mode(iotd_update *u, iotd_update_mode mode, uint8_t start_h, uint8_t end_h)
{
    u->cfg.mode = mode;
    u->cfg.window_start_h = start_h < 24 ? start_h : 0;
    u->cfg.window_end_h = end_h < 24 ? end_h : 0;
    u->next_ms = 0;
}

bool iotd_update_take_report(iotd_update *u, iotd_update_report *out)
{
    if (!u->report_new)
        return false;
    *out = u->report;
    u->report_new = false;
    return true;
}

iotd_update_state iotd_update_get_state(const iotd_update *u)
{
    return u->state;
}

bool iotd_update_reboot_due(const iotd_update *u)
{
    return u->state == IOTD_UPDATE_S_REBOOT;
}

bool iotd_update_on_trial(const iotd_update *u)
{
    return u->state == IOTD_UPDATE_S_TRIAL;
}
