/* Staged firmware rollouts: which devices are offered which signed
 * release, in which wave, and what each device reported. One SQLite file
 * (WAL), written by iotctl (create, pause, resume, abort) and by the
 * gateway (offers, device reports, wave advancement, automatic pause), so
 * a rollout survives restarts of either. One implementation of the rules,
 * shared by both.
 *
 * A rollout is fixed at creation: its signed manifest (text, verified by
 * the creator), its image's digest and size, and its devices, each placed
 * in a wave: wave 0 is the canary group, then waves 1..n by cumulative
 * percentage of the remaining devices (in a random order drawn at
 * creation). A device is offered the release only when its wave has
 * started, the rollout is running, and fewer than max_per_minute devices
 * of that rollout were started in the last 60 seconds.
 *
 * Waves. Wave 0 starts at creation. Wave w+1 starts when, of the devices
 * of waves 0..w, at least success_percent % have confirmed the new image.
 * The rollout is completed when every device has a final state.
 *
 * Automatic pause. At every final report (confirmed, failed, rolled_back)
 * of a running rollout, the final states reported since its creation or
 * its last resume are judged: once there are at least min_reports, the
 * rollout pauses if failed + rolled_back >= failure_percent % of them.
 * Failures that came before min_reports was reached still count. A paused
 * rollout starts no device; a device already started keeps its offer (so
 * it can finish, confirm or roll back). Resume starts devices again and a
 * new count: the failures the operator looked at are not judged again.
 * An aborted rollout offers nothing and serves no image, and stays
 * aborted.
 *
 * Device states: pending (not started), offered (the manifest was served),
 * downloading, downloaded, installing, confirmed, failed, rolled_back.
 * Final: confirmed, failed, rolled_back. A device with a final state is
 * not offered the same rollout again.
 *
 * Every call may return IOT_EBUSY when the other process holds the lock
 * past the busy timeout.
 */
#ifndef IOT_ROLLOUT_H
#define IOT_ROLLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/identity.h"
#include "iot/status.h"
#include "iotd/manifest.h"

#define IOT_ROLLOUT_NAME_MAX    IOT_ID_MAX /* same rule as a device ID */
#define IOT_ROLLOUT_WAVES_MAX   10         /* waves after the canary */
#define IOT_ROLLOUT_REASON_MAX  32
#define IOT_ROLLOUT_DEVICES_MAX 1000000

typedef struct iot_rollouts iot_rollouts;

typedef enum iot_rollout_state {
    IOT_ROLLOUT_RUNNING,
    IOT_ROLLOUT_PAUSED,
    IOT_ROLLOUT_ABORTED,
    IOT_ROLLOUT_COMPLETED,
} iot_rollout_state;

typedef enum iot_rollout_dev_state {
    IOT_RDEV_PENDING,
    IOT_RDEV_OFFERED,
    IOT_RDEV_DOWNLOADING,
    IOT_RDEV_DOWNLOADED,
    IOT_RDEV_INSTALLING,
    IOT_RDEV_CONFIRMED,
    IOT_RDEV_FAILED,
    IOT_RDEV_ROLLED_BACK,
    IOT_RDEV_STATE_COUNT
} iot_rollout_dev_state;

/* "running", "paused", "aborted", "completed"; "?" outside the enum. */
const char *iot_rollout_state_name(iot_rollout_state s);
/* "pending", "offered", "downloading", ... "rolled_back"; "?" outside. */
const char *iot_rollout_dev_state_name(iot_rollout_dev_state s);
/* The state a device's report names ("downloading" ... "rolled_back",
 * the names of iotd_update_status_name); IOT_EINVAL for any other text
 * (including "none", "pending" and "offered", which devices never report). */
iot_status iot_rollout_dev_state_parse(const char *name, iot_rollout_dev_state *out);

/* How a rollout is staged. */
typedef struct iot_rollout_plan {
    char name[IOT_ROLLOUT_NAME_MAX + 1];  /* unique, the device ID rule */
    bool security;                        /* a security update (reported, listed) */
    uint32_t canary;                      /* devices in wave 0 (0: none) */
    uint8_t waves[IOT_ROLLOUT_WAVES_MAX]; /* cumulative %, increasing, the last 100 */
    size_t n_waves;                       /* 1..IOT_ROLLOUT_WAVES_MAX */
    uint32_t max_per_minute;              /* devices started per minute; 0: no cap */
    uint8_t success_percent;              /* 1..100 */
    uint8_t failure_percent;              /* 1..100 */
    uint32_t min_reports;                 /* final states before the pause is judged */
    uint64_t seed;                        /* the device order; 0: from the clock */
} iot_rollout_plan;

/* A rollout as stored. */
typedef struct iot_rollout_info {
    int64_t id;
    iot_rollout_plan plan;
    iot_rollout_state state;
    char pause_reason[IOT_ROLLOUT_REASON_MAX + 1]; /* "operator", "failure_threshold"; "" */
    uint32_t current_wave;                         /* the last wave started */
    uint64_t sequence;                             /* the manifest's */
    char version[IOTD_MANIFEST_FW_VERSION_MAX + 1];
    char class_id[IOTD_MANIFEST_ID_MAX + 1];
    char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1]; /* lower-case hex */
    uint32_t image_size;
    int64_t created, updated;                      /* Unix seconds */
    uint32_t devices;                              /* in the rollout */
    uint32_t count[IOT_RDEV_STATE_COUNT];          /* devices per state */
    uint32_t wave_size[IOT_ROLLOUT_WAVES_MAX + 1]; /* devices per wave, [0] the canary */
} iot_rollout_info;

enum {
    IOT_ROLLOUTS_READONLY = 1,
    IOT_ROLLOUTS_WRITE = 2,
    IOT_ROLLOUTS_CREATE = 4, /* with WRITE: create the file (0600) if missing */
};

/* Opens the rollout file. IOT_ENOENT if missing (without CREATE);
 * IOT_ECORRUPT if it is not a rollout file. The handle is used by one
 * thread at a time. */
iot_status iot_rollouts_open(const char *path, int mode, iot_rollouts **out, iot_err *err);
void iot_rollouts_close(iot_rollouts *r);
void iot_rollouts_set_busy_timeout(iot_rollouts *r, int ms);

/* Checks a plan's values; IOT_EINVAL with a message naming the field. */
iot_status iot_rollout_plan_check(const iot_rollout_plan *plan, iot_err *err);

/* Creates a rollout of the verified manifest text (len bytes, parsed as
 * *m) for devices[0..n_devices) (distinct valid device IDs, 1 or more),
 * started at once (wave 0, or wave 1 with no canary). *id is its ID.
 * IOT_EEXIST if the name is taken; IOT_EINVAL for a bad plan or device
 * list; IOT_ESTATE if a running or paused rollout already has this
 * manifest's sequence number. */
iot_status iot_rollout_create(iot_rollouts *r, const iot_rollout_plan *plan, const char *manifest,
                              size_t len, const iotd_manifest *m, const char *const *devices,
                              size_t n_devices, int64_t now, int64_t *id, iot_err *err);

/* Operator actions on the named rollout. pause: running -> paused
 * (reason "operator"); resume: paused -> running; abort: running or
 * paused -> aborted. IOT_ENOENT unknown name; IOT_ESTATE not allowed from
 * its state (the message says which state it is in). */
iot_status iot_rollout_pause(iot_rollouts *r, const char *name, int64_t now, iot_err *err);
iot_status iot_rollout_resume(iot_rollouts *r, const char *name, int64_t now, iot_err *err);
iot_status iot_rollout_abort(iot_rollouts *r, const char *name, int64_t now, iot_err *err);

iot_status iot_rollout_get(iot_rollouts *r, const char *name, iot_rollout_info *out, iot_err *err);

/* Calls fn for each rollout, oldest first; a non-zero return stops the
 * walk and is returned. */
typedef int (*iot_rollout_fn)(const iot_rollout_info *info, void *ctx);
iot_status iot_rollout_foreach(iot_rollouts *r, iot_rollout_fn fn, void *ctx, iot_err *err);

typedef struct iot_rollout_device {
    char device[IOT_ID_MAX + 1];
    uint32_t wave;
    iot_rollout_dev_state state;
    char reason[IOT_ROLLOUT_REASON_MAX + 1]; /* of failed / rolled_back */
    uint32_t offset;                         /* bytes downloaded, last reported */
    int64_t offered_at, updated;             /* 0: never */
} iot_rollout_device;

/* Calls fn for each device of the named rollout, by wave then name. */
typedef int (*iot_rollout_device_fn)(const iot_rollout_device *d, void *ctx);
iot_status iot_rollout_foreach_device(iot_rollouts *r, const char *name, iot_rollout_device_fn fn,
                                      void *ctx, iot_err *err);

/* ---- the gateway's side --------------------------------------------------- */

/* What a device is offered. */
typedef struct iot_rollout_offer {
    int64_t rollout_id;
    char name[IOT_ROLLOUT_NAME_MAX + 1];
    bool security;
    uint64_t sequence;
    char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1];
    uint32_t image_size;
    char image_uri[IOTD_MANIFEST_URI_MAX + 1];
    char manifest[IOTD_MANIFEST_MAX + 1]; /* NUL-terminated */
    size_t manifest_len;
    bool started; /* this call started the device (pending -> offered) */
} iot_rollout_offer;

typedef enum iot_offer_result {
    IOT_OFFER_NONE,     /* nothing for this device now */
    IOT_OFFER_MADE,     /* *offer filled */
    IOT_OFFER_DEFERRED, /* its wave has started but the per-minute cap is reached:
                         *retry_after_s says when to ask again */
} iot_offer_result;

/* The release for `device` at `now`: of the rollouts where its wave has
 * started and it has no final state, the one with the highest sequence
 * number that is running (or paused, for a device already started). A
 * pending device in a running rollout is started (-> offered) unless the
 * cap defers it. IOT_OK with *result; an error only for the file. */
iot_status iot_rollout_offer_for(iot_rollouts *r, const char *device, int64_t now,
                                 iot_offer_result *result, iot_rollout_offer *offer,
                                 uint32_t *retry_after_s, iot_err *err);

/* Whether `device` may fetch the image at `uri` (the request target): it
 * was started, has no final state, in a running or paused rollout whose
 * manifest names that image-uri. IOT_OK with the image's digest (hex) and
 * size; IOT_ENOENT otherwise. Changes nothing. */
iot_status iot_rollout_image_for(iot_rollouts *r, const char *device, const char *uri,
                                 char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1], uint32_t *size,
                                 iot_err *err);

/* A device's report of its update. */
typedef struct iot_rollout_report {
    iot_rollout_dev_state state; /* downloading .. rolled_back */
    const char *reason;          /* "" or NULL unless failed / rolled_back */
    uint64_t sequence;           /* the manifest's */
    uint32_t offset, size;
} iot_rollout_report;

/* What recording a report changed. */
typedef struct iot_report_outcome {
    int64_t rollout_id;
    char name[IOT_ROLLOUT_NAME_MAX + 1];
    iot_rollout_dev_state previous; /* the device's state before */
    bool wave_started;              /* a new wave started: new_wave */
    uint32_t new_wave;
    bool paused;    /* the failure threshold paused the rollout */
    bool completed; /* every device now has a final state */
} iot_report_outcome;

/* Records a report from `device` for the rollout with that sequence
 * number in which the device was started. IOT_ENOENT when there is none
 * (the report is not recorded: the gateway counts and logs it);
 * IOT_ESTATE when the device's state is already final and the report
 * names another state (a final state does not change; the same one again
 * is IOT_OK with nothing changed). Then judges the wave and the pause. */
iot_status iot_rollout_record_report(iot_rollouts *r, const char *device,
                                     const iot_rollout_report *rep, int64_t now,
                                     iot_report_outcome *out, iot_err *err);

/* Applies a final state that `device` reported through another gateway
 * (the shared state) to the rollout `name`: several gateways keep a file
 * each with the same rollouts, and each applies the others' final reports
 * to its own, so that its failure count and its waves include them.
 * `state` is confirmed, failed or rolled_back (else IOT_EINVAL); reason
 * is kept (cleaned and cut to IOT_ROLLOUT_REASON_MAX) only for failed and
 * rolled_back, as of a report. The device need not have been started
 * here: any state that is not final (pending, offered, ... installing)
 * takes the applied one, and a report of its progress through this
 * gateway is then refused as after any final state. The state counts as
 * reported at `now`: for the failure threshold, an applied final state
 * is judged exactly as a local one, in the count since the creation or
 * the last resume. Then the completion, the pause and the waves are
 * judged as for iot_rollout_record_report, and *out says what changed
 * (a confirmation of a device whose wave has not started here counts for
 * its own wave, as Waves says, not for the waves started). The offset
 * recorded here is kept.
 * In a paused rollout the state is recorded and only the completion is
 * judged; in an aborted one it is recorded (the device's truth) and
 * nothing is judged; a completed one has only final states, so it is a
 * replay or a conflict. IOT_ENOENT: no rollout of that name, or the
 * device is not in it (nothing changed); IOT_OK with nothing changed when
 * the device already has that final state (a replay: out->previous says
 * so); IOT_ESTATE when it has another final state (nothing changed). */
iot_status iot_rollout_apply_final(iot_rollouts *r, const char *name, const char *device,
                                   iot_rollout_dev_state state, const char *reason, int64_t now,
                                   iot_report_outcome *out, iot_err *err);

#endif
