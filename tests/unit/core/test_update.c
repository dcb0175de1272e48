/* Firmware updates on the device (iotd/update.h) over a fake platform: a
 * flash slot, a bootloader with trial boots and rollback, a gateway that
 * serves a signed manifest and byte ranges of an image, and power that can
 * be cut after or during any durable operation (a key-value set, a slot
 * write, an activation, a confirmation). The hash and signature are fakes
 * in which any changed byte changes the digest, as in test_manifest.c. */
#include "core_test.h"

#include <string.h>

#include "fake_port.h"
#include "iotd/update.h"

#define IMG_SIZE   1000 /* not a multiple of the chunk: the last one is short */
#define CHUNK      256
#define SLOT_CAP   4096
#define CHECK_MS   3600000u
#define NOW_2025   1764086400 /* the fake port's clock: 2025-11-25T16:00:00Z */
#define OLD_VER    "1.0.0"
#define NEW_VER    "2.0.0"
#define MAX_REPORT 32

/* ---- a fake hash and signature ----------------------------------------------------- */

static void mix(uint32_t *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        *h = (*h ^ p[i]) * 16777619u;
}

static void expand(uint32_t h, uint8_t out[32])
{
    for (size_t i = 0; i < 32; i++) {
        h = (h ^ (uint32_t)i) * 16777619u;
        out[i] = (uint8_t)(h >> 24);
    }
}

static void digest_of(const void *data, size_t len, uint8_t out[32])
{
    uint32_t h = 2166136261u;
    mix(&h, data, len);
    expand(h, out);
}

static iotd_status crypto_sha256(void *ctx, const void *data, size_t len, uint8_t out[32])
{
    (void)ctx;
    digest_of(data, len, out);
    return IOTD_OK;
}

static void fake_sign(const uint8_t pub[65], const uint8_t digest[32], uint8_t sig[64])
{
    memcpy(sig, digest, 32);
    memcpy(sig + 32, pub + 1, 32);
}

static iotd_status crypto_verify(void *ctx, const uint8_t pub[65], const uint8_t digest[32],
                                 const uint8_t sig[64])
{
    uint8_t want[64];
    (void)ctx;
    fake_sign(pub, digest, want);
    return memcmp(want, sig, 64) == 0 ? IOTD_OK : IOTD_EINVAL;
}

static const iotd_manifest_crypto crypto = {NULL, crypto_sha256, crypto_verify};
static iotd_manifest_key keys[2]; /* 0 trusted, 1 not */

/* ---- the fake platform ------------------------------------------------------------ */

typedef struct fake_fw {
    /* flash */
    uint8_t slot[SLOT_CAP];
    uint32_t capacity;
    bool open;
    uint32_t open_size;
    uint32_t begins, last_resume;
    /* boot */
    iotd_fw_info running;
    bool trial;
    bool boot_new; /* activated: the next boot runs the slot on trial */
    bool reject_pending;
    uint32_t activations;
    bool activated_unverified; /* the slot was activated without holding the good image */
    /* the gateway */
    char manifest[IOTD_MANIFEST_MAX + 64];
    size_t manifest_len;
    int manifest_status;
    const uint8_t *image; /* what the image URI serves */
    int image_status;     /* 206, or what to answer instead */
    uint32_t drop_at;     /* the GET covering this byte drops mid-body, once */
    uint32_t image_gets, manifest_gets;
    uint32_t bytes_served; /* image bytes sent, dropped ones too */
    /* power */
    uint32_t ops;    /* durable operations so far */
    uint32_t cut_at; /* power goes at this operation; 0: never */
    bool cut_during; /* during it, rather than just after it */
    /* hash */
    uint32_t h;
} fake_fw;

static fake_port fp;
static fake_fw fw;
static iotd_port port;
static iotd_update_port uport;
static uint8_t good[IMG_SIZE], tampered[IMG_SIZE];

/* Counts a durable operation; true when power goes at it. During: the
 * caller applies half of it. */
static bool cut_here(void)
{
    fw.ops++;
    return fw.cut_at != 0 && fw.ops == fw.cut_at;
}

static void power_off(void)
{
    fp.powered_off = true;
}

static iotd_status kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    if (fp.powered_off)
        return IOTD_EIO;
    bool cut = cut_here();
    if (cut && fw.cut_during) {
        fp.tear_after = 0;
        fp.tear = FAKE_TEAR_GARBAGE;
    }
    iotd_status st = fp.port.kv_set(ctx, key, data, len);
    if (cut)
        power_off();
    return st;
}

static uint32_t slot_capacity(void *ctx)
{
    (void)ctx;
    return fw.capacity;
}

static iotd_status slot_begin(void *ctx, uint32_t size, uint32_t resume)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    if (fw.trial)
        return IOTD_ESTATE;
    if (size > fw.capacity || resume > size)
        return IOTD_EINVAL;
    memset(fw.slot + resume, 0xFF, fw.capacity - resume); /* erased */
    fw.open = true;
    fw.open_size = size;
    fw.begins++;
    fw.last_resume = resume;
    return IOTD_OK;
}

static iotd_status slot_write(void *ctx, uint32_t off, const void *data, size_t len)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    if (!fw.open)
        return IOTD_ESTATE;
    if (off > fw.open_size || len > fw.open_size - off)
        return IOTD_EINVAL;
    bool cut = cut_here();
    if (cut && fw.cut_during) {
        memcpy(fw.slot + off, data, len / 2);
        memset(fw.slot + off + len / 2, 0x5A, len - len / 2);
        power_off();
        return IOTD_EIO;
    }
    memcpy(fw.slot + off, data, len);
    if (cut)
        power_off();
    return IOTD_OK;
}

static iotd_status slot_read(void *ctx, uint32_t off, void *buf, size_t len)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    if (off > fw.capacity || len > fw.capacity - off)
        return IOTD_EINVAL;
    memcpy(buf, fw.slot + off, len);
    return IOTD_OK;
}

static iotd_status slot_activate(void *ctx)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    if (!fw.open)
        return IOTD_ESTATE;
    bool cut = cut_here();
    if (cut && fw.cut_during) {
        power_off();
        return IOTD_EIO;
    }
    if (fw.open_size != IMG_SIZE || memcmp(fw.slot, good, IMG_SIZE) != 0)
        fw.activated_unverified = true;
    fw.activations++;
    fw.boot_new = true;
    if (cut)
        power_off();
    return IOTD_OK;
}

static bool on_trial(void *ctx)
{
    (void)ctx;
    return fw.trial;
}

static iotd_status confirm(void *ctx)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    bool cut = cut_here();
    if (cut && fw.cut_during) {
        power_off();
        return IOTD_EIO;
    }
    fw.trial = false;
    if (cut)
        power_off();
    return IOTD_OK;
}

static iotd_status reject(void *ctx)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_EIO;
    fw.reject_pending = true;
    return IOTD_OK;
}

static iotd_status fw_info(void *ctx, bool previous, iotd_fw_info *out)
{
    (void)ctx;
    if (previous)
        return IOTD_ENOENT;
    *out = fw.running;
    return IOTD_OK;
}

static void set_range(iotd_get_result *r, uint32_t start, uint32_t len)
{
    r->status = 206;
    r->has_range = true;
    r->range_start = start;
    r->range_len = len;
    r->range_total = IMG_SIZE;
    r->body_len = len;
}

static iotd_status serve_image(uint32_t start, uint32_t len, void *buf, size_t cap,
                               iotd_get_result *r)
{
    fw.image_gets++;
    if (start >= IMG_SIZE || len > IMG_SIZE - start || len > cap)
        return IOTD_EINVAL; /* the core asked for something it must not */
    fw.bytes_served += len;
    if (fw.drop_at >= start && fw.drop_at < start + len) {
        fw.drop_at = UINT32_MAX;
        return IOTD_ENET;
    }
    if (fw.image_status != 206) {
        r->status = fw.image_status;
        return IOTD_OK;
    }
    memcpy(buf, fw.image + start, len);
    set_range(r, start, len);
    return IOTD_OK;
}

static iotd_status https_get(void *ctx, const char *path, uint32_t start, uint32_t len, void *buf,
                             size_t cap, iotd_get_result *r)
{
    (void)ctx;
    if (fp.powered_off)
        return IOTD_ENET;
    if (strcmp(path, "/v1/firmware/images/sensor-2.0.0.bin") == 0)
        return serve_image(start, len, buf, cap, r);
    fw.manifest_gets++;
    if (strcmp(path, IOTD_UPDATE_MANIFEST_PATH) != 0 || len != 0)
        return IOTD_EINVAL;
    r->status = fw.manifest_status;
    if (fw.manifest_status != 200)
        return IOTD_OK;
    r->body_len = fw.manifest_len < cap ? fw.manifest_len : cap;
    r->truncated = fw.manifest_len > cap;
    memcpy(buf, fw.manifest, r->body_len);
    return IOTD_OK;
}

static iotd_status sha_begin(void *ctx)
{
    (void)ctx;
    fw.h = 2166136261u;
    return IOTD_OK;
}

static iotd_status sha_update(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    mix(&fw.h, data, len);
    return IOTD_OK;
}

static iotd_status sha_finish(void *ctx, uint8_t out[32])
{
    (void)ctx;
    expand(fw.h, out);
    return IOTD_OK;
}

/* ---- releases ------------------------------------------------------------------------ */

static iotd_manifest rel;

static void set(char *dst, const char *s)
{
    memcpy(dst, s, strlen(s) + 1);
}

static void release_defaults(void)
{
    memset(&rel, 0, sizeof(rel));
    rel.manifest_version = 1;
    rel.sequence = 42;
    set(rel.vendor_id, "example-vendor");
    set(rel.class_id, "esp32c3-sensor");
    set(rel.version, NEW_VER);
    rel.secure_version = 3;
    rel.image_size = IMG_SIZE;
    digest_of(good, IMG_SIZE, rel.image_digest);
    set(rel.image_uri, "/v1/firmware/images/sensor-2.0.0.bin");
    rel.has_not_after = true;
    rel.not_after = NOW_2025 + 86400;
    memcpy(rel.key_id, keys[0].id, IOTD_MANIFEST_KEY_ID_LEN);
}

/* rel, written and signed by key `signer`, as what the gateway serves. */
static void publish_signed_by(size_t signer)
{
    uint8_t digest[32], sig[64];
    size_t len = 0;
    CT_EQ(iotd_manifest_format_signed_part(&rel, fw.manifest, sizeof(fw.manifest), &len), IOTD_OK);
    digest_of(fw.manifest, len, digest);
    fake_sign(keys[signer].pub, digest, sig);
    CT_EQ(iotd_manifest_append_signature(sig, fw.manifest, sizeof(fw.manifest), &len), IOTD_OK);
    fw.manifest_len = len;
    fw.manifest_status = 200;
}

static void publish(void)
{
    publish_signed_by(0);
}

/* ---- the device ------------------------------------------------------------------------ */

static iotd_update upd;
static iotd_update_config ucfg;
static uint8_t buf[IOTD_MANIFEST_MAX + 1];
static iotd_update_report reports[MAX_REPORT];
static size_t n_reports;

static void boot(void)
{
    fake_reboot(&fp);
    fw.open = false;
    if (fw.reject_pending || (fw.trial && !fw.boot_new)) {
        set(fw.running.version, OLD_VER); /* the bootloader goes back */
        fw.trial = false;
        fw.reject_pending = false;
    }
    if (fw.boot_new) {
        set(fw.running.version, NEW_VER);
        fw.trial = true;
        fw.boot_new = false;
    }
    CT_EQ(iotd_update_init(&upd, &port, &uport, &ucfg), IOTD_OK);
}

static void setup(void)
{
    fake_port_init(&fp);
    memset(&fw, 0, sizeof(fw));
    fw.capacity = SLOT_CAP;
    fw.image = good;
    fw.image_status = 206;
    fw.drop_at = UINT32_MAX;
    fw.manifest_status = 204;
    set(fw.running.version, OLD_VER);
    fw.running.secure_version = 3;
    memset(fw.slot, 0xFF, sizeof(fw.slot));

    port = fp.port;
    port.kv_set = kv_set;
    uport = (iotd_update_port){&fw,           slot_capacity, slot_begin, slot_write, slot_read,
                               slot_activate, on_trial,      confirm,    reject,     fw_info,
                               https_get,     sha_begin,     sha_update, sha_finish};
    for (size_t k = 0; k < 2; k++) {
        keys[k].pub[0] = 0x04;
        for (size_t i = 1; i < 65; i++)
            keys[k].pub[i] = (uint8_t)(i * 7 + k * 101);
        CT_EQ(iotd_manifest_key_id(&crypto, keys[k].pub, keys[k].id), IOTD_OK);
    }
    for (size_t i = 0; i < IMG_SIZE; i++)
        good[i] = (uint8_t)(i * 31 + 7);
    memcpy(tampered, good, IMG_SIZE);
    tampered[IMG_SIZE / 2] ^= 0x01;

    iotd_update_config_init(&ucfg);
    ucfg.vendor_id = "example-vendor";
    ucfg.class_id = "esp32c3-sensor";
    ucfg.keys = keys;
    ucfg.n_keys = 1;
    ucfg.crypto = &crypto;
    ucfg.buf = buf;
    ucfg.buf_cap = sizeof(buf);
    ucfg.chunk_size = CHUNK;
    ucfg.check_interval_ms = CHECK_MS;
    ucfg.retry_base_ms = 1000;
    ucfg.retry_max_ms = 60000;
    n_reports = 0;
    release_defaults();
    boot();
}

static void collect(void)
{
    iotd_update_report r;
    if (iotd_update_take_report(&upd, &r) && n_reports < MAX_REPORT)
        reports[n_reports++] = r;
}

/* Steps until the machine waits for a check, a reboot or a self-test, or
 * power is lost. */
static void drive(void)
{
    for (int i = 0; i < 200 && !fp.powered_off; i++) {
        uint32_t wait = iotd_update_step(&upd, fp.uptime);
        collect();
        if (iotd_update_reboot_due(&upd) || iotd_update_on_trial(&upd))
            return;
        if (iotd_update_get_state(&upd) == IOTD_UPDATE_S_IDLE && wait >= CHECK_MS)
            return;
        fp.uptime += wait;
    }
}

/* Runs the update through reboots and power losses to its end; the
 * self-test passes or not. */
static void run_to_end(bool self_test_passes)
{
    for (int round = 0; round < 20; round++) {
        drive();
        if (fp.powered_off || iotd_update_reboot_due(&upd)) {
            boot();
            collect();
            continue;
        }
        if (!iotd_update_on_trial(&upd))
            return;
        (void)iotd_update_trial_result(&upd, self_test_passes);
        collect();
        if (fp.powered_off || iotd_update_reboot_due(&upd)) {
            boot();
            collect();
        }
    }
    CT_TRUE(false); /* never settled */
}

static bool reported(iotd_update_status status, const char *reason)
{
    for (size_t i = 0; i < n_reports; i++)
        if (reports[i].status == status && strcmp(reports[i].reason, reason) == 0)
            return true;
    return false;
}

static const iotd_update_report *last_report(void)
{
    CT_TRUE(n_reports > 0);
    return &reports[n_reports - 1];
}

/* ---- tests ------------------------------------------------------------------------------ */

static void nothing_offered_does_nothing(void **state)
{
    (void)state;
    setup();
    drive();
    CT_EQ(fw.manifest_gets, 1);
    CT_EQ(fw.image_gets, 0);
    CT_EQ(n_reports, 0);
    CT_EQ(iotd_update_step(&upd, fp.uptime), CHECK_MS);
}

static void happy_path_installs_and_confirms(void **state)
{
    (void)state;
    setup();
    publish();
    drive();
    CT_TRUE(iotd_update_reboot_due(&upd));
    CT_EQ(n_reports, 3);
    CT_EQ(reports[0].status, IOTD_UPDATE_DOWNLOADING);
    CT_EQ(reports[0].sequence, 42);
    CT_EQ(reports[1].status, IOTD_UPDATE_DOWNLOADED);
    CT_EQ(reports[1].offset, IMG_SIZE);
    CT_EQ(reports[2].status, IOTD_UPDATE_INSTALLING);
    CT_MEM_EQ(fw.slot, good, IMG_SIZE);
    CT_EQ(fw.bytes_served, IMG_SIZE);
    CT_EQ(fw.image_gets, (IMG_SIZE + CHUNK - 1) / CHUNK);

    boot();
    CT_TRUE(iotd_update_on_trial(&upd));
    CT_STR_EQ(fw.running.version, NEW_VER);
    CT_EQ(iotd_update_trial_result(&upd, true), IOTD_OK);
    collect();
    CT_EQ(last_report()->status, IOTD_UPDATE_CONFIRMED);
    CT_FALSE(reported(IOTD_UPDATE_FAILED, ""));
    CT_FALSE(fw.trial);
    CT_FALSE(fw.activated_unverified);
    CT_EQ(fw.activations, 1);

    /* The same release offered again is the one running: nothing to do. */
    size_t before = n_reports;
    fp.uptime += CHECK_MS;
    drive();
    CT_EQ(fw.image_gets, (IMG_SIZE + CHUNK - 1) / CHUNK);
    CT_EQ(n_reports, before);
    CT_STR_EQ(iotd_update_status_name(IOTD_UPDATE_ROLLED_BACK), "rolled_back");
}

/* The release as published, with one change, refused for `want`. */
static void expect_refusal(iotd_manifest_result want)
{
    drive();
    CT_EQ(fw.image_gets, 0);
    CT_EQ(fw.activations, 0);
    CT_EQ(fw.begins, 0);
    CT_FALSE(iotd_update_reboot_due(&upd));
    CT_STR_EQ(fw.running.version, OLD_VER);
    CT_EQ(last_report()->status, IOTD_UPDATE_FAILED);
    CT_STR_EQ(last_report()->reason, iotd_manifest_result_name(want));
    /* The report names the release refused, so the gateway can record it. */
    bool parsed = want != IOTD_MANIFEST_MALFORMED;
    CT_EQ(last_report()->sequence, parsed ? rel.sequence : 0);
    CT_EQ(last_report()->offset, 0);
    CT_EQ(last_report()->size, parsed ? rel.image_size : 0);
}

static void each_manifest_refusal_keeps_the_image(void **state)
{
    (void)state;
    setup();
    publish_signed_by(1); /* names key 0, signed by key 1 */
    expect_refusal(IOTD_MANIFEST_BAD_SIGNATURE);

    setup();
    memcpy(rel.key_id, keys[1].id, IOTD_MANIFEST_KEY_ID_LEN);
    publish_signed_by(1);
    expect_refusal(IOTD_MANIFEST_UNKNOWN_KEY);

    setup();
    set(rel.vendor_id, "other-vendor");
    publish();
    expect_refusal(IOTD_MANIFEST_WRONG_VENDOR);

    setup();
    set(rel.class_id, "other-class");
    publish();
    expect_refusal(IOTD_MANIFEST_WRONG_CLASS);

    setup();
    rel.secure_version = 2;
    publish();
    expect_refusal(IOTD_MANIFEST_ROLLBACK);

    setup();
    rel.image_size = SLOT_CAP + 1;
    publish();
    expect_refusal(IOTD_MANIFEST_TOO_LARGE);

    setup();
    rel.not_after = NOW_2025 - 1;
    publish();
    expect_refusal(IOTD_MANIFEST_EXPIRED);

    setup();
    publish();
    fw.manifest[0] = 'M';
    expect_refusal(IOTD_MANIFEST_MALFORMED);

    setup();
    publish();
    memset(fw.manifest, 'x', sizeof(fw.manifest));
    fw.manifest_len = sizeof(fw.manifest); /* longer than any manifest */
    expect_refusal(IOTD_MANIFEST_MALFORMED);
}

static void an_older_sequence_is_refused(void **state)
{
    (void)state;
    setup();
    publish();
    run_to_end(true);
    CT_STR_EQ(fw.running.version, NEW_VER);
    uint32_t begins = fw.begins;

    rel.sequence = 41;
    set(rel.version, "2.0.1");
    publish();
    fp.uptime += CHECK_MS;
    drive();
    CT_EQ(fw.begins, begins);
    CT_EQ(last_report()->status, IOTD_UPDATE_FAILED);
    CT_STR_EQ(last_report()->reason, "old_sequence");
    CT_EQ(last_report()->sequence, 41); /* the release refused, not the one running */
    CT_EQ(last_report()->offset, 0);
}

static void a_tampered_image_never_activates(void **state)
{
    (void)state;
    setup();
    publish();
    fw.image = tampered;
    run_to_end(true);
    CT_EQ(fw.activations, 0);
    CT_STR_EQ(fw.running.version, OLD_VER);
    CT_EQ(last_report()->status, IOTD_UPDATE_FAILED);
    CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_DIGEST);

    /* Abandoned: the same release is not fetched again. */
    uint32_t gets = fw.image_gets;
    fp.uptime += CHECK_MS;
    drive();
    CT_EQ(fw.image_gets, gets);
}

static void a_bad_range_answer_fails_the_download(void **state)
{
    (void)state;
    setup();
    publish();
    fw.image_status = 200; /* the whole image, Range ignored */
    drive();
    CT_EQ(fw.activations, 0);
    CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_BAD_RESPONSE);

    setup();
    publish();
    fw.image_status = 404;
    drive();
    CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_IMAGE_MISSING);
}

static void resumes_after_a_dropped_connection(void **state)
{
    (void)state;
    static const uint32_t percent[] = {10, 50, 90};
    for (size_t i = 0; i < 3; i++) {
        setup();
        publish();
        fw.drop_at = IMG_SIZE * percent[i] / 100;
        run_to_end(true);
        CT_STR_EQ(fw.running.version, NEW_VER);
        CT_TRUE(fw.bytes_served > IMG_SIZE); /* the drop happened */
        CT_IN_RANGE(fw.bytes_served, IMG_SIZE + 1, IMG_SIZE + CHUNK);
        CT_EQ(fw.begins, 1); /* the slot was not started again */
    }
}

static void resumes_after_a_reset(void **state)
{
    (void)state;
    static const uint32_t percent[] = {10, 50, 90};
    for (size_t i = 0; i < 3; i++) {
        setup();
        publish();
        /* Power goes during the write of the chunk that holds this byte:
         * operation 1 is the record of the download, then a write and a
         * record per chunk. */
        fw.cut_at = 2 + 2 * (IMG_SIZE * percent[i] / 100 / CHUNK);
        fw.cut_during = true;
        run_to_end(true);
        CT_STR_EQ(fw.running.version, NEW_VER);
        CT_IN_RANGE(fw.bytes_served, IMG_SIZE + 1, IMG_SIZE + CHUNK);
        CT_EQ(fw.begins, 2);
        CT_EQ(fw.last_resume, IMG_SIZE * percent[i] / 100 / CHUNK * CHUNK);
        CT_FALSE(fw.activated_unverified);
    }
}

/* Ends on the old image, or on the new one confirmed after a verified
 * activation; never on an unverified one. */
static void check_outcome(const char *what)
{
    (void)what;
    CT_FALSE(fw.activated_unverified);
    CT_FALSE(fw.trial);
    if (strcmp(fw.running.version, NEW_VER) == 0) {
        CT_MEM_EQ(fw.slot, good, IMG_SIZE);
        CT_EQ(last_report()->status, IOTD_UPDATE_CONFIRMED);
    } else {
        CT_STR_EQ(fw.running.version, OLD_VER);
        CT_TRUE(last_report()->status == IOTD_UPDATE_ROLLED_BACK ||
                last_report()->status == IOTD_UPDATE_FAILED);
    }
}

static void survives_power_loss_at_every_durable_operation(void **state)
{
    (void)state;
    setup();
    publish();
    run_to_end(true);
    uint32_t total = fw.ops;
    CT_IN_RANGE(total, 2 * ((IMG_SIZE + CHUNK - 1) / CHUNK) + 4, 40);

    uint32_t ended_new = 0, ended_old = 0;
    for (int during = 0; during < 2; during++) {
        for (uint32_t k = 1; k <= total; k++) {
            setup();
            publish();
            fw.cut_at = k;
            fw.cut_during = during != 0;
            run_to_end(true);
            check_outcome("power loss");
            CT_TRUE(fw.ops >= k); /* the cut happened */
            if (strcmp(fw.running.version, NEW_VER) == 0)
                ended_new++;
            else
                ended_old++;
        }
    }
    /* Only a cut during the confirmation leaves the old image. */
    CT_EQ(ended_old, 1);
    CT_EQ(ended_new, 2 * total - 1);
}

static void a_tampered_image_survives_power_loss_unactivated(void **state)
{
    (void)state;
    for (uint32_t k = 1; k <= 12; k++) {
        setup();
        publish();
        fw.image = tampered;
        fw.cut_at = k;
        fw.cut_during = (k % 2) != 0;
        run_to_end(true);
        CT_EQ(fw.activations, 0);
        CT_STR_EQ(fw.running.version, OLD_VER);
        CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_DIGEST);
    }
}

static void a_failed_self_test_rolls_back(void **state)
{
    (void)state;
    setup();
    publish();
    run_to_end(false);
    CT_STR_EQ(fw.running.version, OLD_VER);
    CT_FALSE(fw.trial);
    CT_EQ(fw.activations, 1);
    CT_EQ(last_report()->status, IOTD_UPDATE_ROLLED_BACK);
    CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_SELF_TEST);

    /* The release that failed is not installed again. */
    fp.uptime += CHECK_MS;
    drive();
    CT_EQ(fw.activations, 1);
    CT_EQ(last_report()->status, IOTD_UPDATE_ROLLED_BACK);
}

static void a_reset_on_trial_rolls_back(void **state)
{
    (void)state;
    setup();
    publish();
    drive();
    CT_TRUE(iotd_update_reboot_due(&upd));
    boot();
    CT_TRUE(iotd_update_on_trial(&upd));
    boot(); /* reset before the self-test ended: the bootloader goes back */
    collect();
    CT_STR_EQ(fw.running.version, OLD_VER);
    CT_EQ(last_report()->status, IOTD_UPDATE_ROLLED_BACK);
    CT_STR_EQ(last_report()->reason, IOTD_UPDATE_R_TRIAL_RESET);
    CT_EQ(iotd_update_trial_result(&upd, true), IOTD_ESTATE);
}

static void off_means_no_update(void **state)
{
    (void)state;
    setup();
    publish();
    ucfg.mode = IOTD_UPDATE_OFF;
    boot();
    for (int i = 0; i < 5; i++) {
        CT_EQ(iotd_update_step(&upd, fp.uptime), CHECK_MS);
        fp.uptime += CHECK_MS;
    }
    CT_EQ(fw.manifest_gets, 0);
    CT_EQ(n_reports, 0);

    iotd_update_set_mode(&upd, IOTD_UPDATE_AUTO, 0, 0);
    drive();
    CT_TRUE(iotd_update_reboot_due(&upd));
}

static void an_image_on_trial_is_confirmed_even_when_off(void **state)
{
    (void)state;
    setup();
    publish();
    drive();
    CT_TRUE(iotd_update_reboot_due(&upd));
    ucfg.mode = IOTD_UPDATE_OFF;
    boot();
    CT_TRUE(iotd_update_on_trial(&upd));
    CT_EQ(iotd_update_trial_result(&upd, true), IOTD_OK);
    CT_FALSE(fw.trial);
}

static void the_window_postpones_until_it_opens(void **state)
{
    (void)state;
    setup();
    publish();
    ucfg.mode = IOTD_UPDATE_WINDOW;
    ucfg.window_start_h = 2;
    ucfg.window_end_h = 4;
    fp.wall = NOW_2025 + 30 * 60; /* 16:30 UTC */
    boot();
    /* 9 h 30 min to 02:00. */
    CT_EQ(iotd_update_step(&upd, fp.uptime), (9u * 3600u + 30u * 60u) * 1000u);
    CT_EQ(fw.manifest_gets, 0);

    fp.wall = NOW_2025 + 10 * 3600; /* 02:00 */
    fp.uptime += 1;
    iotd_update_set_mode(&upd, IOTD_UPDATE_WINDOW, 2, 4);
    drive();
    CT_TRUE(iotd_update_reboot_due(&upd));

    /* No clock: a window cannot be told, so nothing starts. */
    setup();
    publish();
    ucfg.mode = IOTD_UPDATE_WINDOW;
    fp.wall_known = false;
    boot();
    CT_EQ(iotd_update_step(&upd, fp.uptime), CHECK_MS);
    CT_EQ(fw.manifest_gets, 0);
}

static void a_download_pauses_outside_the_window(void **state)
{
    (void)state;
    setup();
    publish();
    ucfg.mode = IOTD_UPDATE_WINDOW;
    ucfg.window_start_h = 2;
    ucfg.window_end_h = 4;
    fp.wall = NOW_2025 + 10 * 3600; /* 02:00 */
    boot();
    iotd_update_step(&upd, fp.uptime); /* the manifest */
    iotd_update_step(&upd, fp.uptime); /* one chunk */
    CT_EQ(fw.image_gets, 1);
    fp.wall = NOW_2025 + 12 * 3600; /* 04:00: closed */
    CT_EQ(iotd_update_step(&upd, fp.uptime), 22u * 3600u * 1000u);
    CT_EQ(fw.image_gets, 1);
}

static void refuses_a_bad_configuration(void **state)
{
    (void)state;
    setup();
    iotd_update_config c = ucfg;
    c.buf_cap = IOTD_MANIFEST_MAX;
    CT_EQ(iotd_update_init(&upd, &port, &uport, &c), IOTD_EINVAL);
    c = ucfg;
    c.n_keys = 0;
    CT_EQ(iotd_update_init(&upd, &port, &uport, &c), IOTD_EINVAL);
    iotd_update_port p = uport;
    p.reject = NULL;
    CT_EQ(iotd_update_init(&upd, &port, &p, &ucfg), IOTD_EINVAL);
    fp.get_fails = true;
    CT_EQ(iotd_update_init(&upd, &port, &uport, &ucfg), IOTD_EIO);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(nothing_offered_does_nothing),
        CT_TEST(happy_path_installs_and_confirms),
        CT_TEST(each_manifest_refusal_keeps_the_image),
        CT_TEST(an_older_sequence_is_refused),
        CT_TEST(a_tampered_image_never_activates),
        CT_TEST(a_bad_range_answer_fails_the_download),
        CT_TEST(resumes_after_a_dropped_connection),
        CT_TEST(resumes_after_a_reset),
        CT_TEST(survives_power_loss_at_every_durable_operation),
        CT_TEST(a_tampered_image_survives_power_loss_unactivated),
        CT_TEST(a_failed_self_test_rolls_back),
        CT_TEST(a_reset_on_trial_rolls_back),
        CT_TEST(off_means_no_update),
        CT_TEST(an_image_on_trial_is_confirmed_even_when_off),
        CT_TEST(the_window_postpones_until_it_opens),
        CT_TEST(a_download_pauses_outside_the_window),
        CT_TEST(refuses_a_bad_configuration),
    };
    return CT_RUN(tests);
}
