/* Firmware updates on the device: check for a signed manifest, verify it,
 * download the image in ranged chunks into the inactive slot (resuming
 * after a reset or a lost connection), check its digest by reading the
 * slot back, activate it on trial, and after the reboot confirm it or roll
 * it back on the caller's self-test. docs/firmware-device.md has the state
 * table.
 *
 * The platform's main loop drives it beside the device:
 *
 *     iotd_update_init(&upd, &port, &update_port, &ucfg);
 *     for (;;) {
 *         uint32_t ms = iotd_update_step(&upd, port.uptime_ms(port.ctx));
 *         if (iotd_update_take_report(&upd, &rep))
 *             ... POST rep to the gateway ...
 *         if (iotd_update_reboot_due(&upd))
 *             ... reboot ...
 *         if (iotd_update_on_trial(&upd) && <self-test done>)
 *             iotd_update_trial_result(&upd, <passed>);
 *         ...
 *     }
 *
 * One step makes at most one HTTPS request; the digest check reads the
 * whole slot in one step.
 */
#ifndef IOTD_UPDATE_H
#define IOTD_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/backoff.h"
#include "iotd/manifest.h"
#include "iotd/port.h"
#include "iotd/record.h"
#include "iotd/status.h"
#include "iotd/update_port.h"

#define IOTD_UPDATE_MANIFEST_PATH "/v1/firmware/manifest"
#define IOTD_UPDATE_REPORT_PATH   "/v1/firmware/status" /* POST, application/json */
#define IOTD_UPDATE_REPORT_MAX    192                   /* bytes of a report's JSON, NUL included */

/* The device setting. Whatever it says, an image on trial is still
 * confirmed or rolled back: only new work waits. */
typedef enum iotd_update_mode {
    IOTD_UPDATE_AUTO = 0, /* check, download and install whenever due (the default) */
    IOTD_UPDATE_WINDOW,   /* only inside the maintenance window (UTC hours) */
    IOTD_UPDATE_OFF,      /* never */
} iotd_update_mode;

/* What the device reports to the gateway. Stable: the names are what the
 * gateway counts. */
typedef enum iotd_update_status {
    IOTD_UPDATE_NONE = 0,    /* "none": nothing happened yet */
    IOTD_UPDATE_DOWNLOADING, /* "downloading": a verified manifest is being fetched */
    IOTD_UPDATE_DOWNLOADED,  /* "downloaded": every byte is in the slot */
    IOTD_UPDATE_INSTALLING,  /* "installing": digest good, activated, the reboot is due */
    IOTD_UPDATE_CONFIRMED,   /* "confirmed": the new image passed its self-test */
    IOTD_UPDATE_FAILED,      /* "failed": see reason; the running image is unchanged */
    IOTD_UPDATE_ROLLED_BACK, /* "rolled_back": the previous image runs again */
} iotd_update_status;

/* The reasons beside the manifest's own (iotd_manifest_result_name). */
#define IOTD_UPDATE_R_IMAGE_MISSING "image_missing" /* 404/410 for the image */
#define IOTD_UPDATE_R_BAD_RESPONSE  "bad_response"  /* not the 206 asked for */
#define IOTD_UPDATE_R_DIGEST        "digest"        /* the slot's SHA-256 is not the manifest's */
#define IOTD_UPDATE_R_SLOT          "slot"    /* the slot could not be opened, written or read */
#define IOTD_UPDATE_R_HASH          "hash"    /* the SHA-256 service failed */
#define IOTD_UPDATE_R_STORAGE       "storage" /* the progress could not be stored */
#define IOTD_UPDATE_R_IMAGE_REFUSED "image_refused" /* the platform's own image check */
#define IOTD_UPDATE_R_CONFIRM       "confirm"       /* the platform could not confirm */
#define IOTD_UPDATE_R_ROLLBACK      "rollback"      /* the platform could not roll back */
#define IOTD_UPDATE_R_SELF_TEST     "self_test"     /* rolled back: the self-test failed */
#define IOTD_UPDATE_R_TRIAL_RESET   "trial_reset"   /* rolled back: reset before confirmation */

typedef struct iotd_update_report {
    iotd_update_status status;
    const char *reason; /* static string; "" unless failed or rolled_back */
    uint64_t sequence;  /* the manifest's sequence-number; 0: none */
    uint32_t offset;    /* image bytes in the slot */
    uint32_t size;      /* image-size */
} iotd_update_report;

/* Pointers are not copied from: the strings, keys, crypto service and the
 * buffer must outlive the iotd_update, and nothing else may use the buffer
 * while a step runs. */
typedef struct iotd_update_config {
    const char *manifest_path; /* GET; IOTD_UPDATE_MANIFEST_PATH */
    const char *vendor_id;     /* the device's vendor-id and class-id */
    const char *class_id;
    const iotd_manifest_key *keys; /* trusted signing keys, 1 or more */
    size_t n_keys;
    const iotd_manifest_crypto *crypto; /* for the manifest's signature */
    uint8_t *buf;                       /* the manifest, then each chunk */
    size_t buf_cap;                     /* >= IOTD_MANIFEST_MAX + 1 and >= chunk_size */
    uint32_t chunk_size;                /* bytes per ranged GET; a multiple of the flash sector */
    uint32_t check_interval_ms;         /* between manifest checks */
    uint32_t retry_base_ms;             /* backoff after a network failure */
    uint32_t retry_max_ms;
    iotd_update_mode mode;
    uint8_t window_start_h; /* WINDOW: updates run from this UTC hour (0-23) */
    uint8_t window_end_h;   /* up to this one, excluded; past midnight when smaller */
} iotd_update_config;

typedef enum iotd_update_state {
    IOTD_UPDATE_S_IDLE = 0, /* waiting for the next check */
    IOTD_UPDATE_S_CHECK,    /* fetching and verifying the manifest */
    IOTD_UPDATE_S_DOWNLOAD, /* one chunk per step */
    IOTD_UPDATE_S_VERIFY,   /* reading the slot back for its digest */
    IOTD_UPDATE_S_ACTIVATE, /* selecting the slot for the next boot */
    IOTD_UPDATE_S_REBOOT,   /* the platform must reboot now */
    IOTD_UPDATE_S_TRIAL,    /* the running image is on trial: waiting for the self-test */
} iotd_update_state;

/* The state. The caller owns the memory; the fields are private. */
typedef struct iotd_update {
    const iotd_port *port;
    const iotd_update_port *up;
    iotd_update_config cfg;
    iotd_record rec;
    iotd_backoff backoff;
    iotd_manifest manifest; /* the last one fetched; its image-uri is downloaded */
    iotd_update_state state;
    uint32_t phase; /* what the record says (update.c) */
    uint64_t sequence;
    uint32_t size, offset;
    uint8_t digest[IOTD_MANIFEST_DIGEST_LEN];
    bool slot_open; /* slot_begin was called in this boot */
    bool started;
    uint64_t next_ms;
    iotd_update_report report;
    bool report_new;
} iotd_update;

/* Fills cfg with the defaults: IOTD_UPDATE_MANIFEST_PATH, chunks of 4 KiB,
 * a check an hour, retries from 10 s to 10 min, AUTO, a window of 02-05.
 * The identities, keys, crypto and buffer are left NULL for the caller. */
void iotd_update_config_init(iotd_update_config *cfg);

/* Checks the configuration, loads the persisted progress and decides
 * where to go on: an image on trial waits for trial_result; a download
 * resumes at the next check; a verified image is checked again and
 * activated; an activated image that is not running was rolled back (a
 * report says so). IOTD_EINVAL for a bad configuration or port, IOTD_EIO
 * when storage cannot be read. */
iotd_status iotd_update_init(iotd_update *u, const iotd_port *port, const iotd_update_port *up,
                             const iotd_update_config *cfg);

/* Does what is due at now_ms (the port's uptime). Returns how many ms the
 * caller may sleep before the next call (0: call again at once). */
uint32_t iotd_update_step(iotd_update *u, uint64_t now_ms);

/* Changes the setting; the next step applies it. */
void iotd_update_set_mode(iotd_update *u, iotd_update_mode mode, uint8_t start_h, uint8_t end_h);

/* The self-test's verdict on an image on trial. passed: the image is
 * confirmed (report "confirmed"). Not passed: the progress record notes it
 * and the platform rolls back (on the ESP32 this call does not return; the
 * previous image reports "rolled_back" with reason "self_test").
 * IOTD_ESTATE when no image is on trial; IOTD_EIO when the platform could
 * not confirm or roll back (the image stays on trial and a report says so). */
iotd_status iotd_update_trial_result(iotd_update *u, bool passed);

/* True once for each new report: *out is filled for the caller to POST. A
 * report not taken is replaced by the next. */
bool iotd_update_take_report(iotd_update *u, iotd_update_report *out);

/* The report as the gateway takes it at IOTD_UPDATE_REPORT_PATH, one JSON
 * object with the keys in this order (docs/protocol.md):
 *   {"status":"failed","reason":"digest","sequence":42,"offset":4096,"size":65536}
 * "reason" is present only when not empty. IOTD_OK with *len bytes (and a
 * NUL) in buf; IOTD_ENOSPC when cap is short (IOTD_UPDATE_REPORT_MAX is
 * always enough); IOTD_EINVAL for a status outside the enum. */
iotd_status iotd_update_report_json(const iotd_update_report *rep, char *buf, size_t cap,
                                    size_t *len);

iotd_update_state iotd_update_get_state(const iotd_update *u);

/* The image was activated (or rejected with a later restart): reboot. */
bool iotd_update_reboot_due(const iotd_update *u);

/* The running image is on trial and waits for iotd_update_trial_result. */
bool iotd_update_on_trial(const iotd_update *u);

/* "none", "downloading", "downloaded", "installing", "confirmed",
 * "failed", "rolled_back"; "?" outside the enum. */
const char *iotd_update_status_name(iotd_update_status s);

#endif
