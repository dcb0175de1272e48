/* Staged rollouts: the plan, wave placement, offers and the per-minute
 * cap, reports, wave advancement, the automatic pause, operator actions,
 * completion, and the file itself (schema, mode, restarts), on a real
 * SQLite file in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "iot/rollout.h"

static char dir[64];
static int file_no;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-rollout.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void new_path(char *path, size_t size)
{
    snprintf(path, size, "%s/rollouts-%d.db", dir, ++file_no);
}

static iot_rollouts *open_new(char *path, size_t size)
{
    iot_rollouts *r = NULL;
    iot_err err = {0};
    new_path(path, size);
    iot_status st = iot_rollouts_open(path, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &r, &err);
    if (st != IOT_OK)
        print_message("%s\n", err.msg);
    assert_int_equal(st, IOT_OK);
    return r;
}

/* A release of sequence `seq`: a well-formed manifest (its signature is
 * not checked here: the creator verified it). */
typedef struct release {
    char text[IOTD_MANIFEST_MAX + 1];
    size_t len;
    iotd_manifest m;
} release;

static void make_release(release *rel, uint64_t seq)
{
    iotd_manifest m = {0};
    m.manifest_version = 1;
    m.sequence = seq;
    snprintf(m.vendor_id, sizeof(m.vendor_id), "acme");
    snprintf(m.class_id, sizeof(m.class_id), "sensor");
    snprintf(m.version, sizeof(m.version), "1.0.%u", (unsigned)seq);
    m.image_size = 1000 + (uint32_t)seq;
    memset(m.image_digest, (int)seq, sizeof(m.image_digest));
    snprintf(m.image_uri, sizeof(m.image_uri), "/v1/firmware/images/img%u", (unsigned)seq);
    uint8_t sig[IOTD_MANIFEST_SIG_LEN] = {0};
    assert_int_equal(iotd_manifest_format_signed_part(&m, rel->text, sizeof(rel->text), &rel->len),
                     IOTD_OK);
    assert_int_equal(iotd_manifest_append_signature(sig, rel->text, sizeof(rel->text), &rel->len),
                     IOTD_OK);
    rel->text[rel->len] = '\0';
    assert_int_equal(iotd_manifest_parse(rel->text, rel->len, &rel->m, NULL), IOTD_MANIFEST_OK);
}

static iot_rollout_plan plan_of(const char *name, uint32_t canary)
{
    iot_rollout_plan p = {0};
    snprintf(p.name, sizeof(p.name), "%s", name);
    p.canary = canary;
    p.waves[0] = 10;
    p.waves[1] = 50;
    p.waves[2] = 100;
    p.n_waves = 3;
    p.success_percent = 90;
    p.failure_percent = 10;
    p.min_reports = 5;
    p.seed = 42;
    return p;
}

/* Device names dev-00 .. dev-(n-1). */
#define DEVICES_MAX 64
static char names[DEVICES_MAX][16];
static const char *devs[DEVICES_MAX];

static void make_devices(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "dev-%02u", (unsigned)(i % 100));
        devs[i] = names[i];
    }
}

static int64_t create(iot_rollouts *r, const iot_rollout_plan *p, uint64_t seq, size_t n)
{
    release rel;
    iot_err err = {0};
    int64_t id = 0;
    make_release(&rel, seq);
    make_devices(n);
    assert_int_equal(iot_rollout_create(r, p, rel.text, rel.len, &rel.m, devs, n, 1000, &id, &err),
                     IOT_OK);
    return id;
}

/* Each device's wave, by index. */
typedef struct placement {
    int wave[DEVICES_MAX];
    iot_rollout_dev_state state[DEVICES_MAX];
    size_t n;
} placement;

static int note_device(const iot_rollout_device *d, void *ctx)
{
    placement *pl = ctx;
    unsigned i = 0;
    assert_int_equal(sscanf(d->device, "dev-%u", &i), 1);
    assert_true(i < DEVICES_MAX);
    pl->wave[i] = (int)d->wave;
    pl->state[i] = d->state;
    pl->n++;
    return 0;
}

static placement place(iot_rollouts *r, const char *name)
{
    placement pl;
    iot_err err = {0};
    memset(&pl, 0, sizeof(pl));
    for (size_t i = 0; i < DEVICES_MAX; i++)
        pl.wave[i] = -1;
    assert_int_equal(iot_rollout_foreach_device(r, name, note_device, &pl, &err), IOT_OK);
    return pl;
}

/* The first device of `wave` after index `from`, or -1. */
static int in_wave(const placement *pl, int wave, int from)
{
    for (int i = from + 1; i < DEVICES_MAX; i++)
        if (pl->wave[i] == wave)
            return i;
    return -1;
}

static iot_offer_result offer(iot_rollouts *r, int dev, int64_t now, iot_rollout_offer *o,
                              uint32_t *retry)
{
    iot_offer_result res = IOT_OFFER_NONE;
    iot_err err = {0};
    uint32_t unused = 0;
    assert_int_equal(
        iot_rollout_offer_for(r, names[dev], now, &res, o, retry ? retry : &unused, &err), IOT_OK);
    return res;
}

static iot_status report(iot_rollouts *r, int dev, uint64_t seq, iot_rollout_dev_state state,
                         int64_t now, iot_report_outcome *out)
{
    iot_rollout_report rep = {.state = state, .reason = "digest", .sequence = seq};
    iot_err err = {0};
    iot_report_outcome unused;
    return iot_rollout_record_report(r, names[dev], &rep, now, out ? out : &unused, &err);
}

/* A final state of device `dev` applied as if reported through another
 * gateway. */
static iot_status apply(iot_rollouts *r, const char *name, int dev, iot_rollout_dev_state state,
                        int64_t now, iot_report_outcome *out)
{
    iot_err err = {0};
    iot_report_outcome unused;
    return iot_rollout_apply_final(r, name, names[dev], state, "self_test", now,
                                   out ? out : &unused, &err);
}

static iot_rollout_info info_of(iot_rollouts *r, const char *name)
{
    iot_rollout_info info;
    iot_err err = {0};
    assert_int_equal(iot_rollout_get(r, name, &info, &err), IOT_OK);
    return info;
}

/* The counters the file keeps agree with its device rows. */
static void assert_counts_match(const char *path, iot_rollouts *r, const char *name)
{
    iot_rollout_info info = info_of(r, name);
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    uint32_t want[IOT_RDEV_STATE_COUNT] = {0}, total = 0;
    assert_int_equal(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw,
                                        "SELECT d.state, COUNT(*) FROM rollout_devices d JOIN"
                                        " rollouts r ON r.id = d.rollout_id WHERE r.name = ?1"
                                        " GROUP BY d.state",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *state = (const char *)sqlite3_column_text(st, 0);
        int i = 0;
        while (i < IOT_RDEV_STATE_COUNT &&
               strcmp(state, iot_rollout_dev_state_name((iot_rollout_dev_state)i)) != 0)
            i++;
        assert_true(i < IOT_RDEV_STATE_COUNT);
        want[i] = (uint32_t)sqlite3_column_int(st, 1);
        total += want[i];
    }
    sqlite3_finalize(st);
    sqlite3_close(raw);
    assert_memory_equal(want, info.count, sizeof(want));
    assert_int_equal(total, info.devices);
}

static void plan_checks(void **state)
{
    (void)state;
    iot_err err = {0};
    iot_rollout_plan p = plan_of("r1", 1);
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_OK);
    p = plan_of(".hidden", 1);
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "rollout name"));
    p = plan_of("r1", 1);
    p.n_waves = 0;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    p.n_waves = IOT_ROLLOUT_WAVES_MAX + 1;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    p = plan_of("r1", 1);
    p.waves[1] = 10; /* not increasing */
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "waves"));
    p = plan_of("r1", 1);
    p.waves[2] = 90; /* the last is not 100 */
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "100"));
    p = plan_of("r1", 1);
    p.waves[0] = 0;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    p = plan_of("r1", 1);
    p.success_percent = 0;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "success"));
    p.success_percent = 101;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    p = plan_of("r1", 1);
    p.failure_percent = 0;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "failure"));
    p = plan_of("r1", 0); /* no canary is allowed */
    p.waves[0] = 100;
    p.n_waves = 1;
    assert_int_equal(iot_rollout_plan_check(&p, &err), IOT_OK);
}

static void state_names(void **state)
{
    (void)state;
    iot_rollout_dev_state s;
    assert_int_equal(iot_rollout_dev_state_parse("rolled_back", &s), IOT_OK);
    assert_int_equal(s, IOT_RDEV_ROLLED_BACK);
    assert_int_equal(iot_rollout_dev_state_parse("downloading", &s), IOT_OK);
    assert_int_equal(s, IOT_RDEV_DOWNLOADING);
    assert_int_equal(iot_rollout_dev_state_parse("offered", &s), IOT_EINVAL);
    assert_int_equal(iot_rollout_dev_state_parse("pending", &s), IOT_EINVAL);
    assert_int_equal(iot_rollout_dev_state_parse("none", &s), IOT_EINVAL);
    assert_string_equal(iot_rollout_dev_state_name(IOT_RDEV_PENDING), "pending");
    assert_string_equal(iot_rollout_dev_state_name(IOT_RDEV_STATE_COUNT), "?");
    assert_string_equal(iot_rollout_state_name(IOT_ROLLOUT_COMPLETED), "completed");
    assert_string_equal(iot_rollout_state_name((iot_rollout_state)9), "?");
}

/* 20 devices, canary 1, waves 10,50,100 of the other 19: ceil(1.9) = 2,
 * ceil(9.5) = 10, 19: waves of 1, 2, 8 and 9. The order is the seed's. */
static void wave_placement(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("twenty", 1);
    create(r, &p, 1, 20);
    iot_rollout_info info = info_of(r, "twenty");
    assert_int_equal(info.devices, 20);
    assert_int_equal(info.wave_size[0], 1);
    assert_int_equal(info.wave_size[1], 2);
    assert_int_equal(info.wave_size[2], 8);
    assert_int_equal(info.wave_size[3], 9);
    assert_int_equal(info.current_wave, 0);
    assert_int_equal(info.state, IOT_ROLLOUT_RUNNING);
    assert_int_equal(info.count[IOT_RDEV_PENDING], 20);
    assert_int_equal(info.plan.seed, 42);
    assert_int_equal(info.plan.n_waves, 3);
    assert_int_equal(info.plan.waves[1], 50);
    assert_int_equal(info.sequence, 1);
    assert_string_equal(info.class_id, "sensor");
    assert_string_equal(info.version, "1.0.1");
    assert_int_equal(info.image_size, 1001);
    assert_string_equal(info.digest,
                        "0101010101010101010101010101010101010101010101010101010101010101");

    /* The same set and seed in another order: the same placement. */
    placement a = place(r, "twenty");
    assert_int_equal(a.n, 20);
    iot_rollout_plan q = plan_of("twenty-again", 1);
    release rel;
    make_release(&rel, 2);
    const char *reversed[20];
    for (size_t i = 0; i < 20; i++)
        reversed[i] = names[19 - i];
    iot_err err = {0};
    int64_t id = 0;
    assert_int_equal(
        iot_rollout_create(r, &q, rel.text, rel.len, &rel.m, reversed, 20, 1000, &id, &err),
        IOT_OK);
    placement b = place(r, "twenty-again");
    assert_memory_equal(a.wave, b.wave, sizeof(a.wave));

    /* No canary: wave 0 is empty and wave 1 starts at once (10 devices:
     * ceil(1) = 1, ceil(5) = 5, then 4). */
    iot_rollout_plan none = plan_of("no-canary", 0);
    create(r, &none, 3, 10);
    info = info_of(r, "no-canary");
    assert_int_equal(info.current_wave, 1);
    assert_int_equal(info.wave_size[0], 0);
    assert_int_equal(info.wave_size[1], 1);
    assert_int_equal(info.wave_size[2], 4);
    assert_int_equal(info.wave_size[3], 5);
    iot_rollouts_close(r);
}

static void create_refusals(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("first", 1);
    create(r, &p, 7, 4);
    release rel;
    make_release(&rel, 8);
    iot_err err = {0};
    int64_t id = 0;
    assert_int_equal(iot_rollout_create(r, &p, rel.text, rel.len, &rel.m, devs, 4, 1000, &id, &err),
                     IOT_EEXIST);
    assert_non_null(strstr(err.msg, "first"));
    iot_rollout_plan other = plan_of("second", 1);
    make_release(&rel, 7); /* the live rollout's sequence number */
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &rel.m, devs, 4, 1000, &id, &err),
        IOT_ESTATE);
    make_release(&rel, 9);
    const char *twice[] = {"a", "b", "a"};
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &rel.m, twice, 3, 1000, &id, &err),
        IOT_EINVAL);
    assert_non_null(strstr(err.msg, "'a'"));
    const char *bad[] = {"a", "b/c"};
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &rel.m, bad, 2, 1000, &id, &err),
        IOT_EINVAL);
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &rel.m, devs, 0, 1000, &id, &err),
        IOT_EINVAL);
    iotd_manifest wrong = rel.m;
    wrong.sequence = 10; /* not the text's */
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &wrong, devs, 4, 1000, &id, &err),
        IOT_EINVAL);
    /* Nothing of the refused ones was stored. */
    assert_int_equal(iot_rollout_get(r, "second", &(iot_rollout_info){0}, &err), IOT_ENOENT);
    /* Once the first is aborted, its sequence number may be rolled out again. */
    assert_int_equal(iot_rollout_abort(r, "first", 1100, &err), IOT_OK);
    make_release(&rel, 7);
    assert_int_equal(
        iot_rollout_create(r, &other, rel.text, rel.len, &rel.m, devs, 4, 1000, &id, &err), IOT_OK);
    iot_rollouts_close(r);
}

/* Only the started waves are offered; the first offer starts the device,
 * later ones repeat the offer. */
static void offers_follow_waves(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("waves", 1);
    int64_t id = create(r, &p, 5, 20);
    placement pl = place(r, "waves");
    int canary = in_wave(&pl, 0, -1), later = in_wave(&pl, 1, -1);
    assert_true(canary >= 0 && later >= 0);
    iot_rollout_offer o;
    assert_int_equal(offer(r, canary, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_true(o.started);
    assert_int_equal(o.rollout_id, id);
    assert_string_equal(o.name, "waves");
    assert_int_equal(o.sequence, 5);
    assert_int_equal(o.image_size, 1005);
    assert_string_equal(o.image_uri, "/v1/firmware/images/img5");
    release rel;
    make_release(&rel, 5);
    assert_int_equal(o.manifest_len, rel.len);
    assert_string_equal(o.manifest, rel.text);
    assert_int_equal(offer(r, canary, 1001, &o, NULL), IOT_OFFER_MADE);
    assert_false(o.started);
    assert_int_equal(offer(r, later, 1001, &o, NULL), IOT_OFFER_NONE);
    iot_offer_result res = IOT_OFFER_MADE;
    uint32_t retry = 0;
    iot_err err = {0};
    assert_int_equal(iot_rollout_offer_for(r, "nobody", 1001, &res, &o, &retry, &err), IOT_OK);
    assert_int_equal(res, IOT_OFFER_NONE);
    pl = place(r, "waves");
    assert_int_equal(pl.state[canary], IOT_RDEV_OFFERED);
    assert_int_equal(pl.state[later], IOT_RDEV_PENDING);
    iot_rollout_info info = info_of(r, "waves");
    assert_int_equal(info.count[IOT_RDEV_OFFERED], 1);
    iot_rollouts_close(r);
}

/* At most 2 starts a minute: the third waits until the oldest start is a
 * minute old; a device already started is never held back. */
static void cap_defers(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("capped", 0);
    p.waves[0] = 100;
    p.n_waves = 1;
    p.max_per_minute = 2;
    create(r, &p, 1, 5);
    iot_rollout_offer o;
    uint32_t retry = 0;
    assert_int_equal(offer(r, 0, 1000, &o, &retry), IOT_OFFER_MADE);
    assert_int_equal(offer(r, 1, 1010, &o, &retry), IOT_OFFER_MADE);
    assert_int_equal(offer(r, 2, 1020, &o, &retry), IOT_OFFER_DEFERRED);
    assert_int_equal(retry, 40);
    assert_int_equal(offer(r, 0, 1020, &o, &retry), IOT_OFFER_MADE);
    assert_false(o.started);
    assert_int_equal(offer(r, 2, 1060, &o, &retry), IOT_OFFER_MADE); /* 1000 has left */
    assert_true(o.started);
    assert_int_equal(offer(r, 3, 1061, &o, &retry), IOT_OFFER_DEFERRED);
    assert_int_equal(retry, 9); /* 1010 leaves at 1070 */
    assert_int_equal(offer(r, 3, 1069, &o, &retry), IOT_OFFER_DEFERRED);
    assert_int_equal(retry, 1);
    assert_int_equal(offer(r, 3, 1070, &o, &retry), IOT_OFFER_MADE);
    iot_rollout_info info = info_of(r, "capped");
    assert_int_equal(info.count[IOT_RDEV_OFFERED], 4);
    assert_int_equal(info.count[IOT_RDEV_PENDING], 1);
    iot_rollouts_close(r);
}

/* 10 devices, canary 2, waves 50,100 (4 and 4), success 80 %: wave 1
 * starts when both canaries confirmed (2 of 2), wave 2 when 5 of the 6
 * devices of waves 0..1 did (500 >= 480), not at 4. */
static void waves_advance(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("adv", 2);
    p.waves[0] = 50;
    p.waves[1] = 100;
    p.n_waves = 2;
    p.success_percent = 80;
    create(r, &p, 3, 10);
    placement pl = place(r, "adv");
    int c0 = in_wave(&pl, 0, -1), c1 = in_wave(&pl, 0, c0);
    iot_rollout_offer o;
    iot_report_outcome out;
    assert_int_equal(offer(r, c0, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(offer(r, c1, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, c0, 3, IOT_RDEV_DOWNLOADING, 1001, &out), IOT_OK);
    assert_int_equal(out.previous, IOT_RDEV_OFFERED);
    assert_int_equal(report(r, c0, 3, IOT_RDEV_CONFIRMED, 1002, &out), IOT_OK);
    assert_false(out.wave_started);
    int w1 = in_wave(&pl, 1, -1);
    assert_int_equal(offer(r, w1, 1003, &o, NULL), IOT_OFFER_NONE);
    assert_int_equal(report(r, c1, 3, IOT_RDEV_CONFIRMED, 1004, &out), IOT_OK);
    assert_true(out.wave_started);
    assert_int_equal(out.new_wave, 1);
    assert_string_equal(out.name, "adv");
    assert_int_equal(info_of(r, "adv").current_wave, 1);

    int i = -1;
    for (int k = 0; k < 3; k++) {
        i = in_wave(&pl, 1, i);
        assert_int_equal(offer(r, i, 1005, &o, NULL), IOT_OFFER_MADE);
        assert_int_equal(report(r, i, 3, IOT_RDEV_CONFIRMED, 1006, &out), IOT_OK);
        assert_int_equal(out.wave_started, k == 2);
    }
    assert_int_equal(out.new_wave, 2);
    int w2 = in_wave(&pl, 2, -1);
    assert_int_equal(offer(r, w2, 1007, &o, NULL), IOT_OFFER_MADE);
    assert_counts_match(path, r, "adv");
    iot_rollouts_close(r);
}

/* The threshold is inclusive: with success 50 %, one of two canaries
 * confirmed starts wave 1. */
static void threshold_is_inclusive(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("half", 2);
    p.success_percent = 50;
    create(r, &p, 3, 6);
    placement pl = place(r, "half");
    int c0 = in_wave(&pl, 0, -1);
    iot_rollout_offer o;
    iot_report_outcome out;
    assert_int_equal(offer(r, c0, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, c0, 3, IOT_RDEV_CONFIRMED, 1001, &out), IOT_OK);
    assert_true(out.wave_started);
    assert_int_equal(out.new_wave, 1);
    iot_rollouts_close(r);
}

/* min_reports 3, failure 75 %: two failures among two final states do
 * not pause (too few); a confirmation judges too (2 of 3 is below 75 %);
 * the third failure (3 of 4, the threshold exactly) pauses. Paused:
 * started devices keep their offer, none starts; resumed: devices start
 * again, and only the final states reported since count. */
static void failures_pause(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("fragile", 10);
    p.failure_percent = 75;
    p.min_reports = 3;
    create(r, &p, 4, 10);
    iot_rollout_offer o;
    iot_report_outcome out;
    for (int d = 0; d < 8; d++)
        assert_int_equal(offer(r, d, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, 0, 4, IOT_RDEV_FAILED, 1001, &out), IOT_OK);
    assert_false(out.paused);
    assert_int_equal(report(r, 1, 4, IOT_RDEV_ROLLED_BACK, 1002, &out), IOT_OK);
    assert_false(out.paused);
    assert_int_equal(report(r, 2, 4, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
    assert_false(out.paused); /* 2 of 3 failed: below 75 % */
    assert_int_equal(report(r, 3, 4, IOT_RDEV_FAILED, 1004, &out), IOT_OK);
    assert_true(out.paused);
    iot_rollout_info info = info_of(r, "fragile");
    assert_int_equal(info.state, IOT_ROLLOUT_PAUSED);
    assert_string_equal(info.pause_reason, "failure_threshold");
    assert_int_equal(info.count[IOT_RDEV_FAILED], 2);
    assert_int_equal(info.count[IOT_RDEV_ROLLED_BACK], 1);

    placement pl = place(r, "fragile");
    assert_int_equal(pl.state[0], IOT_RDEV_FAILED);
    assert_int_equal(offer(r, 5, 1005, &o, NULL), IOT_OFFER_MADE); /* started: keeps it */
    assert_false(o.started);
    assert_int_equal(offer(r, 8, 1005, &o, NULL), IOT_OFFER_NONE); /* pending: waits */
    assert_int_equal(offer(r, 0, 1005, &o, NULL), IOT_OFFER_NONE); /* final: nothing */
    /* A started device may still finish while paused. */
    assert_int_equal(report(r, 5, 4, IOT_RDEV_CONFIRMED, 1006, &out), IOT_OK);
    iot_err err = {0};
    assert_int_equal(iot_rollout_pause(r, "fragile", 1007, &err), IOT_ESTATE);
    assert_non_null(strstr(err.msg, "paused"));
    assert_int_equal(iot_rollout_resume(r, "fragile", 1007, &err), IOT_OK);
    info = info_of(r, "fragile");
    assert_int_equal(info.state, IOT_ROLLOUT_RUNNING);
    assert_string_equal(info.pause_reason, "");
    assert_int_equal(offer(r, 8, 1008, &o, NULL), IOT_OFFER_MADE);
    assert_true(o.started);
    /* A new count since the resume: 3 of 4 failed overall, but the two
     * reports since (one failure of two, then of three) are under 75 %. */
    assert_int_equal(report(r, 6, 4, IOT_RDEV_CONFIRMED, 1010, &out), IOT_OK);
    assert_int_equal(report(r, 7, 4, IOT_RDEV_FAILED, 1011, &out), IOT_OK);
    assert_int_equal(report(r, 8, 4, IOT_RDEV_CONFIRMED, 1012, &out), IOT_OK);
    assert_false(out.paused);
    assert_int_equal(info_of(r, "fragile").state, IOT_ROLLOUT_RUNNING);
    assert_counts_match(path, r, "fragile");
    assert_int_equal(iot_rollout_resume(r, "fragile", 1013, &err), IOT_ESTATE);
    assert_int_equal(iot_rollout_pause(r, "nothing", 1009, &err), IOT_ENOENT);
    iot_rollouts_close(r);
}

/* Failures reported before min_reports was reached count once it is:
 * the confirmation that reaches it pauses the rollout. */
static void early_failures_count(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("early", 10);
    p.failure_percent = 15;
    p.min_reports = 5;
    create(r, &p, 4, 10);
    iot_rollout_offer o;
    iot_report_outcome out;
    for (int d = 0; d < 5; d++)
        assert_int_equal(offer(r, d, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, 0, 4, IOT_RDEV_ROLLED_BACK, 1001, &out), IOT_OK);
    for (int d = 1; d < 4; d++) {
        assert_int_equal(report(r, d, 4, IOT_RDEV_CONFIRMED, 1002, &out), IOT_OK);
        assert_false(out.paused);
    }
    assert_int_equal(report(r, 4, 4, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
    assert_true(out.paused); /* 1 of 5 = 20 % >= 15 % */
    assert_int_equal(info_of(r, "early").state, IOT_ROLLOUT_PAUSED);
    iot_rollouts_close(r);
}

/* Resume starts a new count: the failures that paused the rollout are
 * not judged again, so a confirmation after the resume does not pause it
 * (counted from the creation, 2 of 3 would be over 50 %). */
static void resume_starts_a_new_count(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("recount", 10);
    p.failure_percent = 50;
    p.min_reports = 2;
    create(r, &p, 4, 10);
    iot_rollout_offer o;
    iot_report_outcome out;
    for (int d = 0; d < 4; d++)
        assert_int_equal(offer(r, d, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, 0, 4, IOT_RDEV_FAILED, 1001, &out), IOT_OK);
    assert_int_equal(report(r, 1, 4, IOT_RDEV_FAILED, 1002, &out), IOT_OK);
    assert_true(out.paused);
    iot_err err = {0};
    assert_int_equal(iot_rollout_resume(r, "recount", 1010, &err), IOT_OK);
    assert_int_equal(report(r, 2, 4, IOT_RDEV_CONFIRMED, 1011, &out), IOT_OK);
    assert_false(out.paused);
    assert_int_equal(report(r, 3, 4, IOT_RDEV_CONFIRMED, 1012, &out), IOT_OK);
    assert_false(out.paused);
    assert_int_equal(info_of(r, "recount").state, IOT_ROLLOUT_RUNNING);
    iot_rollouts_close(r);
}

/* An operator's pause: started devices keep their offer, none starts. */
static void operator_pause(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("held", 4);
    create(r, &p, 6, 4);
    iot_rollout_offer o;
    iot_err err = {0};
    assert_int_equal(offer(r, 0, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(iot_rollout_pause(r, "held", 1001, &err), IOT_OK);
    iot_rollout_info info = info_of(r, "held");
    assert_int_equal(info.state, IOT_ROLLOUT_PAUSED);
    assert_string_equal(info.pause_reason, "operator");
    assert_int_equal(offer(r, 0, 1002, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(offer(r, 1, 1002, &o, NULL), IOT_OFFER_NONE);
    assert_int_equal(iot_rollout_resume(r, "held", 1003, &err), IOT_OK);
    assert_int_equal(offer(r, 1, 1004, &o, NULL), IOT_OFFER_MADE);
    iot_rollouts_close(r);
}

/* Confirmations that arrive while paused start the next wave on resume. */
static void resume_starts_earned_wave(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("earned", 1);
    create(r, &p, 6, 4);
    placement pl = place(r, "earned");
    int c = in_wave(&pl, 0, -1);
    iot_rollout_offer o;
    iot_err err = {0};
    assert_int_equal(offer(r, c, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(iot_rollout_pause(r, "earned", 1001, &err), IOT_OK);
    iot_report_outcome out;
    assert_int_equal(report(r, c, 6, IOT_RDEV_CONFIRMED, 1002, &out), IOT_OK);
    assert_false(out.wave_started);
    assert_int_equal(info_of(r, "earned").current_wave, 0);
    assert_int_equal(iot_rollout_resume(r, "earned", 1003, &err), IOT_OK);
    assert_int_equal(info_of(r, "earned").current_wave, 1);
    iot_rollouts_close(r);
}

/* Aborted stays aborted: nothing offered, no image, no way back. */
static void abort_is_final(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("doomed", 3);
    create(r, &p, 8, 3);
    iot_rollout_offer o;
    iot_err err = {0};
    assert_int_equal(offer(r, 0, 1000, &o, NULL), IOT_OFFER_MADE);
    char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1];
    uint32_t size = 0;
    assert_int_equal(
        iot_rollout_image_for(r, names[0], "/v1/firmware/images/img8", digest, &size, &err),
        IOT_OK);
    assert_int_equal(iot_rollout_abort(r, "doomed", 1001, &err), IOT_OK);
    assert_int_equal(iot_rollout_resume(r, "doomed", 1002, &err), IOT_ESTATE);
    assert_non_null(strstr(err.msg, "aborted"));
    assert_int_equal(iot_rollout_pause(r, "doomed", 1002, &err), IOT_ESTATE);
    assert_int_equal(iot_rollout_abort(r, "doomed", 1002, &err), IOT_ESTATE);
    assert_int_equal(info_of(r, "doomed").state, IOT_ROLLOUT_ABORTED);
    assert_int_equal(offer(r, 0, 1003, &o, NULL), IOT_OFFER_NONE);
    assert_int_equal(offer(r, 1, 1003, &o, NULL), IOT_OFFER_NONE);
    assert_int_equal(
        iot_rollout_image_for(r, names[0], "/v1/firmware/images/img8", digest, &size, &err),
        IOT_ENOENT);
    /* A late report is recorded, and changes nothing of the rollout. */
    iot_report_outcome out;
    assert_int_equal(report(r, 0, 8, IOT_RDEV_FAILED, 1004, &out), IOT_OK);
    assert_false(out.paused || out.completed);
    assert_int_equal(info_of(r, "doomed").state, IOT_ROLLOUT_ABORTED);
    iot_rollouts_close(r);
}

/* Every device final: completed. A final state is sticky. */
static void completion(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("done", 3);
    p.failure_percent = 100;
    create(r, &p, 9, 3);
    iot_rollout_offer o;
    iot_report_outcome out;
    for (int d = 0; d < 3; d++)
        assert_int_equal(offer(r, d, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, 0, 9, IOT_RDEV_CONFIRMED, 1001, &out), IOT_OK);
    assert_int_equal(report(r, 1, 9, IOT_RDEV_FAILED, 1002, &out), IOT_OK);
    assert_false(out.completed);
    assert_int_equal(report(r, 2, 9, IOT_RDEV_INSTALLING, 1003, &out), IOT_OK);
    assert_false(out.completed);
    assert_int_equal(report(r, 2, 9, IOT_RDEV_CONFIRMED, 1004, &out), IOT_OK);
    assert_true(out.completed);
    assert_int_equal(out.previous, IOT_RDEV_INSTALLING);
    iot_rollout_info info = info_of(r, "done");
    assert_int_equal(info.state, IOT_ROLLOUT_COMPLETED);
    assert_int_equal(info.count[IOT_RDEV_CONFIRMED], 2);
    assert_int_equal(info.count[IOT_RDEV_FAILED], 1);
    /* The same final state again: nothing changes. */
    assert_int_equal(report(r, 2, 9, IOT_RDEV_CONFIRMED, 1005, &out), IOT_OK);
    assert_false(out.completed);
    assert_int_equal(out.previous, IOT_RDEV_CONFIRMED);
    /* Another state after a final one is refused. */
    assert_int_equal(report(r, 1, 9, IOT_RDEV_CONFIRMED, 1006, &out), IOT_ESTATE);
    assert_int_equal(report(r, 1, 9, IOT_RDEV_DOWNLOADING, 1006, &out), IOT_ESTATE);
    assert_counts_match(path, r, "done");
    iot_err err = {0};
    assert_int_equal(iot_rollout_pause(r, "done", 1007, &err), IOT_ESTATE);
    assert_int_equal(iot_rollout_abort(r, "done", 1007, &err), IOT_ESTATE);
    assert_int_equal(offer(r, 0, 1008, &o, NULL), IOT_OFFER_NONE);
    iot_rollouts_close(r);
}

/* Two rollouts for one device: the higher sequence number is offered. */
static void highest_sequence_wins(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan a = plan_of("older", 2), b = plan_of("newer", 2);
    create(r, &a, 5, 2);
    create(r, &b, 7, 2);
    iot_rollout_offer o;
    iot_err err = {0};
    assert_int_equal(offer(r, 0, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(o.sequence, 7);
    assert_string_equal(o.name, "newer");
    assert_int_equal(iot_rollout_abort(r, "newer", 1001, &err), IOT_OK);
    assert_int_equal(offer(r, 0, 1002, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(o.sequence, 5);
    iot_rollouts_close(r);
}

/* The image is served only to a started device without a final state,
 * for the rollout's own image-uri. */
static void image_for_started(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("img", 2);
    create(r, &p, 11, 2);
    const char *uri = "/v1/firmware/images/img11";
    char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1];
    uint32_t size = 0;
    iot_err err = {0};
    assert_int_equal(iot_rollout_image_for(r, names[0], uri, digest, &size, &err), IOT_ENOENT);
    iot_rollout_offer o;
    assert_int_equal(offer(r, 0, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(iot_rollout_image_for(r, names[0], uri, digest, &size, &err), IOT_OK);
    assert_string_equal(digest, o.digest);
    assert_string_equal(digest, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    assert_int_equal(size, 1011);
    assert_int_equal(
        iot_rollout_image_for(r, names[0], "/v1/firmware/images/other", digest, &size, &err),
        IOT_ENOENT);
    assert_int_equal(iot_rollout_image_for(r, names[1], uri, digest, &size, &err), IOT_ENOENT);
    assert_int_equal(report(r, 0, 11, IOT_RDEV_DOWNLOADED, 1001, NULL), IOT_OK);
    assert_int_equal(iot_rollout_image_for(r, names[0], uri, digest, &size, &err), IOT_OK);
    assert_int_equal(report(r, 0, 11, IOT_RDEV_CONFIRMED, 1002, NULL), IOT_OK);
    assert_int_equal(iot_rollout_image_for(r, names[0], uri, digest, &size, &err), IOT_ENOENT);
    iot_rollouts_close(r);
}

typedef struct dev_row {
    iot_rollout_device d;
} dev_row;

static int first_device(const iot_rollout_device *d, void *ctx)
{
    ((dev_row *)ctx)->d = *d;
    return 1; /* stop */
}

/* The row of device names[index]. */
typedef struct dev_find {
    int index;
    dev_row *row;
} dev_find;

static int find_device(const iot_rollout_device *d, void *ctx)
{
    const dev_find *f = ctx;
    if (strcmp(d->device, names[f->index]) != 0)
        return 0;
    f->row->d = *d;
    return 1; /* stop */
}

static void report_refusals(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("rep", 1);
    create(r, &p, 12, 3);
    placement pl = place(r, "rep");
    int c = in_wave(&pl, 0, -1), later = in_wave(&pl, 1, -1);
    iot_rollout_offer o;
    assert_int_equal(offer(r, c, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, c, 13, IOT_RDEV_DOWNLOADING, 1001, NULL), IOT_ENOENT);
    assert_int_equal(report(r, later, 12, IOT_RDEV_DOWNLOADING, 1001, NULL), IOT_ENOENT);
    assert_int_equal(report(r, c, 12, IOT_RDEV_OFFERED, 1001, NULL), IOT_EINVAL);
    /* The offset is kept from the reports. */
    iot_rollout_report rep = {.state = IOT_RDEV_DOWNLOADING, .sequence = 12, .offset = 4096};
    iot_report_outcome out;
    iot_err err = {0};
    assert_int_equal(iot_rollout_record_report(r, names[c], &rep, 1002, &out, &err), IOT_OK);
    rep.state = IOT_RDEV_FAILED;
    rep.reason = "digest\n";
    rep.offset = 8192;
    assert_int_equal(iot_rollout_record_report(r, names[c], &rep, 1003, &out, &err), IOT_OK);
    dev_row row;
    assert_int_equal(iot_rollout_foreach_device(r, "rep", first_device, &row, &err), 1);
    assert_string_equal(row.d.device, names[c]);
    assert_int_equal(row.d.state, IOT_RDEV_FAILED);
    assert_string_equal(row.d.reason, "digest?"); /* kept printable */
    assert_int_equal(row.d.offset, 8192);
    iot_rollouts_close(r);
}

/* min_reports 2, failure 50 %: one failure reported here and one applied
 * from another gateway pause the rollout together; neither alone does.
 * After a resume an applied failure is in the new count as a local one:
 * with one confirmation here, 1 of 2 pauses again. */
static void applied_failures_pause(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("shared", 10);
    p.failure_percent = 50;
    p.min_reports = 2;
    create(r, &p, 4, 10);
    iot_rollout_offer o;
    iot_report_outcome out;
    for (int d = 0; d < 3; d++)
        assert_int_equal(offer(r, d, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(report(r, 0, 4, IOT_RDEV_FAILED, 1001, &out), IOT_OK);
    assert_false(out.paused); /* 1 report: below min_reports */
    assert_int_equal(apply(r, "shared", 5, IOT_RDEV_ROLLED_BACK, 1002, &out), IOT_OK);
    assert_true(out.paused);
    assert_string_equal(out.name, "shared");
    assert_int_equal(out.previous, IOT_RDEV_PENDING);
    iot_rollout_info info = info_of(r, "shared");
    assert_int_equal(out.rollout_id, info.id);
    assert_int_equal(info.state, IOT_ROLLOUT_PAUSED);
    assert_string_equal(info.pause_reason, "failure_threshold");
    assert_int_equal(info.count[IOT_RDEV_FAILED], 1);
    assert_int_equal(info.count[IOT_RDEV_ROLLED_BACK], 1);
    assert_int_equal(info.count[IOT_RDEV_OFFERED], 2);
    assert_int_equal(info.count[IOT_RDEV_PENDING], 6);
    dev_row row;
    iot_err err = {0};
    assert_int_equal(
        iot_rollout_foreach_device(r, "shared", find_device, &(dev_find){5, &row}, &err), 1);
    assert_int_equal(row.d.state, IOT_RDEV_ROLLED_BACK);
    assert_string_equal(row.d.reason, "self_test");
    assert_int_equal(row.d.updated, 1002);
    assert_int_equal(row.d.offered_at, 0); /* never started here */

    assert_int_equal(iot_rollout_resume(r, "shared", 1010, &err), IOT_OK);
    assert_int_equal(apply(r, "shared", 6, IOT_RDEV_FAILED, 1011, &out), IOT_OK);
    assert_false(out.paused); /* 1 report since the resume */
    assert_int_equal(report(r, 1, 4, IOT_RDEV_CONFIRMED, 1012, &out), IOT_OK);
    assert_true(out.paused); /* 1 of 2 since the resume */
    assert_counts_match(path, r, "shared");
    iot_rollouts_close(r);
}

/* The same final state applied again (the shared state is read again
 * from its start) changes nothing; another final state is refused, here
 * and for a report through this gateway. */
static void applied_replay_and_conflict(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("replay", 10);
    create(r, &p, 4, 10);
    iot_rollout_offer o;
    iot_report_outcome out;
    assert_int_equal(offer(r, 2, 1000, &o, NULL), IOT_OFFER_MADE);
    assert_int_equal(apply(r, "replay", 1, IOT_RDEV_FAILED, 1001, &out), IOT_OK);
    assert_int_equal(apply(r, "replay", 2, IOT_RDEV_CONFIRMED, 1002, &out), IOT_OK);
    assert_int_equal(out.previous, IOT_RDEV_OFFERED);
    iot_rollout_info before = info_of(r, "replay");
    assert_int_equal(before.count[IOT_RDEV_CONFIRMED], 1);
    assert_int_equal(before.count[IOT_RDEV_FAILED], 1);
    assert_int_equal(before.count[IOT_RDEV_OFFERED], 0);

    assert_int_equal(apply(r, "replay", 2, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
    assert_int_equal(out.previous, IOT_RDEV_CONFIRMED);
    assert_false(out.wave_started || out.paused || out.completed);
    assert_int_equal(apply(r, "replay", 1, IOT_RDEV_FAILED, 1003, &out), IOT_OK);
    assert_int_equal(out.previous, IOT_RDEV_FAILED);
    iot_rollout_info after = info_of(r, "replay");
    assert_memory_equal(before.count, after.count, sizeof(before.count));
    assert_int_equal(after.updated, before.updated);
    dev_row row;
    iot_err err = {0};
    assert_int_equal(
        iot_rollout_foreach_device(r, "replay", find_device, &(dev_find){1, &row}, &err), 1);
    assert_int_equal(row.d.updated, 1001); /* not the replay's time */

    assert_int_equal(apply(r, "replay", 2, IOT_RDEV_FAILED, 1004, &out), IOT_ESTATE);
    assert_int_equal(out.previous, IOT_RDEV_CONFIRMED);
    assert_int_equal(apply(r, "replay", 1, IOT_RDEV_ROLLED_BACK, 1004, &out), IOT_ESTATE);
    /* The device's own report through this gateway comes too late. */
    assert_int_equal(report(r, 2, 4, IOT_RDEV_INSTALLING, 1005, &out), IOT_ESTATE);
    after = info_of(r, "replay");
    assert_memory_equal(before.count, after.count, sizeof(before.count));
    assert_counts_match(path, r, "replay");
    iot_rollouts_close(r);
}

static void applied_refusals(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("refuse", 10);
    create(r, &p, 4, 4);
    iot_rollout_plan q = plan_of("other", 10);
    release rel;
    make_release(&rel, 5);
    const char *outsider[] = {"outsider"};
    iot_err err = {0};
    int64_t id = 0;
    assert_int_equal(
        iot_rollout_create(r, &q, rel.text, rel.len, &rel.m, outsider, 1, 1000, &id, &err), IOT_OK);
    iot_rollout_info before = info_of(r, "refuse");
    iot_report_outcome out;
    assert_int_equal(apply(r, "nothing", 0, IOT_RDEV_FAILED, 1001, &out), IOT_ENOENT);
    assert_int_equal(
        iot_rollout_apply_final(r, "refuse", "outsider", IOT_RDEV_FAILED, NULL, 1001, &out, &err),
        IOT_ENOENT);
    assert_non_null(strstr(err.msg, "outsider"));
    assert_int_equal(
        iot_rollout_apply_final(r, "refuse", "no/such", IOT_RDEV_FAILED, NULL, 1001, &out, &err),
        IOT_ENOENT);
    assert_int_equal(
        iot_rollout_apply_final(r, NULL, names[0], IOT_RDEV_FAILED, NULL, 1001, &out, &err),
        IOT_ENOENT);
    static const iot_rollout_dev_state not_final[] = {IOT_RDEV_PENDING,     IOT_RDEV_OFFERED,
                                                      IOT_RDEV_DOWNLOADING, IOT_RDEV_DOWNLOADED,
                                                      IOT_RDEV_INSTALLING,  IOT_RDEV_STATE_COUNT};
    for (size_t i = 0; i < sizeof(not_final) / sizeof(not_final[0]); i++)
        assert_int_equal(apply(r, "refuse", 0, not_final[i], 1001, &out), IOT_EINVAL);
    iot_rollout_info after = info_of(r, "refuse");
    assert_memory_equal(&before, &after, sizeof(before));
    assert_int_equal(info_of(r, "other").count[IOT_RDEV_PENDING], 1);

    /* A confirmation keeps no reason; a failure's is kept printable and short. */
    assert_int_equal(iot_rollout_apply_final(r, "refuse", names[0], IOT_RDEV_CONFIRMED, "ignored",
                                             1002, &out, &err),
                     IOT_OK);
    assert_int_equal(iot_rollout_apply_final(r, "refuse", names[1], IOT_RDEV_FAILED,
                                             "a\nreason-well-over-thirty-two-bytes-long", 1002,
                                             &out, &err),
                     IOT_OK);
    dev_row row;
    assert_int_equal(
        iot_rollout_foreach_device(r, "refuse", find_device, &(dev_find){0, &row}, &err), 1);
    assert_string_equal(row.d.reason, "");
    assert_int_equal(
        iot_rollout_foreach_device(r, "refuse", find_device, &(dev_find){1, &row}, &err), 1);
    assert_string_equal(row.d.reason, "a?reason-well-over-thirty-two-by");

    /* Locked by another process: IOT_EBUSY, as every call. */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    iot_rollouts_set_busy_timeout(r, 50);
    assert_int_equal(apply(r, "refuse", 2, IOT_RDEV_FAILED, 1003, &out), IOT_EBUSY);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(info_of(r, "refuse").count[IOT_RDEV_FAILED], 1);
    iot_rollouts_close(r);
}

/* 10 devices, canary 2, waves 50,100 (4 and 4), success 50 %: the
 * canaries' confirmations applied from another gateway start wave 1 here,
 * though neither was ever offered here, and the rollout completes on
 * applied states alone. */
static void applied_confirmations_start_waves(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("remote", 2);
    p.waves[0] = 50;
    p.waves[1] = 100;
    p.n_waves = 2;
    p.success_percent = 50;
    p.failure_percent = 100;
    create(r, &p, 3, 10);
    placement pl = place(r, "remote");
    int c0 = in_wave(&pl, 0, -1), w1 = in_wave(&pl, 1, -1);
    iot_rollout_offer o;
    iot_report_outcome out;
    assert_int_equal(offer(r, w1, 1000, &o, NULL), IOT_OFFER_NONE);
    assert_int_equal(apply(r, "remote", c0, IOT_RDEV_CONFIRMED, 1001, &out), IOT_OK);
    assert_int_equal(out.previous, IOT_RDEV_PENDING);
    assert_true(out.wave_started);
    assert_int_equal(out.new_wave, 1);
    assert_int_equal(info_of(r, "remote").current_wave, 1);
    assert_int_equal(offer(r, w1, 1002, &o, NULL), IOT_OFFER_MADE);

    for (int d = 0; d < 10; d++) {
        assert_int_equal(apply(r, "remote", d, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
        assert_int_equal(out.completed, d == 9);
    }
    iot_rollout_info info = info_of(r, "remote");
    assert_int_equal(info.state, IOT_ROLLOUT_COMPLETED);
    assert_int_equal(info.count[IOT_RDEV_CONFIRMED], 10);
    assert_counts_match(path, r, "remote");
    iot_rollouts_close(r);
}

/* A confirmation applied for a device of a wave not started here (the
 * other gateway is ahead) counts for its own wave: with success 50 %, it
 * does not start wave 1 in place of a canary's; once a canary confirmed,
 * wave 1 starts, and wave 2 only when waves 0..1 earn it. */
static void applied_later_wave_counts_for_its_wave(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("ahead", 2);
    p.waves[0] = 50;
    p.waves[1] = 100;
    p.n_waves = 2;
    p.success_percent = 50;
    create(r, &p, 3, 10);
    placement pl = place(r, "ahead");
    int c0 = in_wave(&pl, 0, -1), w1 = in_wave(&pl, 1, -1);
    int w2 = in_wave(&pl, 2, -1), w2b = in_wave(&pl, 2, w2);
    iot_report_outcome out;
    assert_int_equal(apply(r, "ahead", w1, IOT_RDEV_CONFIRMED, 1001, &out), IOT_OK);
    assert_false(out.wave_started);
    assert_int_equal(apply(r, "ahead", w2, IOT_RDEV_CONFIRMED, 1002, &out), IOT_OK);
    assert_int_equal(apply(r, "ahead", w2b, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
    assert_false(out.wave_started); /* 3 confirmed, none of them a canary */
    assert_int_equal(info_of(r, "ahead").current_wave, 0);
    /* 1 of 2 canaries: wave 1; then 2 of 6 for waves 0..1: not wave 2. */
    assert_int_equal(apply(r, "ahead", c0, IOT_RDEV_CONFIRMED, 1004, &out), IOT_OK);
    assert_true(out.wave_started);
    assert_int_equal(out.new_wave, 1);
    assert_int_equal(info_of(r, "ahead").current_wave, 1);
    iot_rollouts_close(r);
}

/* Paused: the applied state is recorded and completes the rollout;
 * aborted: recorded, and nothing is judged. */
static void applied_to_paused_and_aborted(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("held", 2), q = plan_of("gone", 2);
    create(r, &p, 5, 2);
    create(r, &q, 6, 2);
    iot_err err = {0};
    iot_report_outcome out;
    assert_int_equal(iot_rollout_pause(r, "held", 1001, &err), IOT_OK);
    assert_int_equal(apply(r, "held", 0, IOT_RDEV_FAILED, 1002, &out), IOT_OK);
    assert_false(out.completed);
    assert_int_equal(apply(r, "held", 1, IOT_RDEV_CONFIRMED, 1003, &out), IOT_OK);
    assert_true(out.completed);
    assert_int_equal(info_of(r, "held").state, IOT_ROLLOUT_COMPLETED);

    assert_int_equal(iot_rollout_abort(r, "gone", 1004, &err), IOT_OK);
    assert_int_equal(apply(r, "gone", 0, IOT_RDEV_ROLLED_BACK, 1005, &out), IOT_OK);
    assert_int_equal(apply(r, "gone", 1, IOT_RDEV_ROLLED_BACK, 1006, &out), IOT_OK);
    assert_false(out.paused || out.completed || out.wave_started);
    iot_rollout_info info = info_of(r, "gone");
    assert_int_equal(info.state, IOT_ROLLOUT_ABORTED);
    assert_int_equal(info.count[IOT_RDEV_ROLLED_BACK], 2);
    assert_counts_match(path, r, "gone");
    iot_rollouts_close(r);
}

/* Closing and opening again (a restart) keeps every rollout and device. */
static void reopen_keeps_everything(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("kept", 1);
    create(r, &p, 14, 6);
    placement pl = place(r, "kept");
    int c = in_wave(&pl, 0, -1);
    iot_rollout_offer o;
    assert_int_equal(offer(r, c, 1000, &o, NULL), IOT_OFFER_MADE);
    iot_rollout_report rep = {
        .state = IOT_RDEV_FAILED, .reason = "self_test", .sequence = 14, .offset = 77};
    iot_report_outcome out;
    iot_err err = {0};
    assert_int_equal(iot_rollout_record_report(r, names[c], &rep, 1001, &out, &err), IOT_OK);
    assert_int_equal(iot_rollout_pause(r, "kept", 1002, &err), IOT_OK);
    iot_rollout_info before = info_of(r, "kept");
    iot_rollouts_close(r);

    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_READONLY, &r, &err), IOT_OK);
    iot_rollout_info after = info_of(r, "kept");
    assert_memory_equal(&before, &after, sizeof(before));
    dev_row row;
    assert_int_equal(iot_rollout_foreach_device(r, "kept", first_device, &row, &err), 1);
    assert_string_equal(row.d.device, names[c]); /* wave 0 comes first */
    assert_int_equal(row.d.state, IOT_RDEV_FAILED);
    assert_string_equal(row.d.reason, "self_test");
    assert_int_equal(row.d.offset, 77);
    assert_int_equal(row.d.offered_at, 1000);
    assert_int_equal(row.d.updated, 1001);
    iot_rollouts_close(r);

    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_WRITE, &r, &err), IOT_OK);
    assert_int_equal(iot_rollout_resume(r, "kept", 1003, &err), IOT_OK);
    assert_int_equal(offer(r, c, 1004, &o, NULL), IOT_OFFER_NONE); /* failed is final */
    iot_rollouts_close(r);
}

typedef struct walk {
    int n;
    char first[IOT_ROLLOUT_NAME_MAX + 1];
} walk;

static int note_rollout(const iot_rollout_info *info, void *ctx)
{
    walk *w = ctx;
    if (w->n++ == 0)
        snprintf(w->first, sizeof(w->first), "%s", info->plan.name);
    return 0;
}

static void foreach_oldest_first(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan a = plan_of("zeta", 1), b = plan_of("alpha", 1);
    create(r, &a, 1, 2);
    create(r, &b, 2, 2);
    walk w = {0};
    iot_err err = {0};
    assert_int_equal(iot_rollout_foreach(r, note_rollout, &w, &err), IOT_OK);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.first, "zeta");
    iot_rollouts_close(r);
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 07777;
}

/* The file: 0600, WAL, its own application id; others are refused. */
static void the_file(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = NULL;
    iot_err err = {0};
    new_path(path, sizeof(path));
    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_WRITE, &r, &err), IOT_ENOENT);
    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_READONLY, &r, &err), IOT_ENOENT);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &r, &err),
                     IOT_OK);
    assert_int_equal(mode_of(path), 0600);
    iot_rollouts_close(r);
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(raw);
    /* Opening an existing file with CREATE keeps it. */
    assert_int_equal(iot_rollouts_open(path, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &r, &err),
                     IOT_OK);
    iot_rollouts_close(r);

    char other[128];
    snprintf(other, sizeof(other), "%s/other.db", dir);
    assert_int_equal(sqlite3_open(other, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(iot_rollouts_open(other, IOT_ROLLOUTS_WRITE | IOT_ROLLOUTS_CREATE, &r, &err),
                     IOT_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a rollout file"));
    assert_null(r);
    snprintf(other, sizeof(other), "%s/garbage.db", dir);
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database ", f);
    fclose(f);
    assert_int_equal(iot_rollouts_open(other, IOT_ROLLOUTS_READONLY, &r, &err), IOT_ECORRUPT);
    assert_null(r);
}

static void lock_is_reported(void **state)
{
    (void)state;
    char path[128];
    iot_rollouts *r = open_new(path, sizeof(path));
    iot_rollout_plan p = plan_of("locked", 1);
    create(r, &p, 1, 2);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    iot_rollouts_set_busy_timeout(r, 50);
    iot_err err = {0};
    assert_int_equal(iot_rollout_pause(r, "locked", 1001, &err), IOT_EBUSY);
    assert_non_null(strstr(err.msg, "locked by another process"));
    /* A reader is not held up by the writer (WAL). */
    iot_rollout_info info;
    assert_int_equal(iot_rollout_get(r, "locked", &info, &err), IOT_OK);
    sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(other);
    assert_int_equal(iot_rollout_pause(r, "locked", 1002, &err), IOT_OK);
    iot_rollouts_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_checks),
        cmocka_unit_test(state_names),
        cmocka_unit_test(wave_placement),
        cmocka_unit_test(create_refusals),
        cmocka_unit_test(offers_follow_waves),
        cmocka_unit_test(cap_defers),
        cmocka_unit_test(waves_advance),
        cmocka_unit_test(threshold_is_inclusive),
        cmocka_unit_test(failures_pause),
        cmocka_unit_test(early_failures_count),
        cmocka_unit_test(resume_starts_a_new_count),
        cmocka_unit_test(operator_pause),
        cmocka_unit_test(resume_starts_earned_wave),
        cmocka_unit_test(abort_is_final),
        cmocka_unit_test(completion),
        cmocka_unit_test(highest_sequence_wins),
        cmocka_unit_test(image_for_started),
        cmocka_unit_test(report_refusals),
        cmocka_unit_test(applied_failures_pause),
        cmocka_unit_test(applied_replay_and_conflict),
        cmocka_unit_test(applied_refusals),
        cmocka_unit_test(applied_confirmations_start_waves),
        cmocka_unit_test(applied_later_wave_counts_for_its_wave),
        cmocka_unit_test(applied_to_paused_and_aborted),
        cmocka_unit_test(reopen_keeps_everything),
        cmocka_unit_test(foreach_oldest_first),
        cmocka_unit_test(the_file),
        cmocka_unit_test(lock_is_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
