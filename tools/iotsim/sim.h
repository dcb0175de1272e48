/* The simulator's engine: many devices in one process.
 *
 * Each simulated device is the real device core over the POSIX port, with
 * its own TLS identity, state directory and synthetic sensors. The core's
 * HTTPS call blocks, so devices cannot share one event loop thread; instead
 * a small pool of worker threads takes devices from one queue ordered by
 * when each is next due (a binary heap), steps it, and puts it back. A
 * device costs its state (a few KiB) plus, while its connection is open,
 * mbedTLS's two 16 KiB record buffers: about 90 KiB of resident memory per
 * connected device with 1000 devices (ports/posix/README.md). Threads are
 * shared, and at most `threads` requests are in flight. A device is stepped
 * by one worker at a time, which is all the core and the port ask for.
 */
#ifndef IOTSIM_SIM_H
#define IOTSIM_SIM_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/identity.h"
#include "iotd/device.h"
#include "iotd/update.h"
#include "iotd/enroll.h"
#include "iotd/health.h"
#include "iotd_posix/cred.h"
#include "iotd_posix/port.h"
#include "iotd_posix/sensors.h"
#include "iotd_posix/update.h"

#define SIM_RESP_MAX 256
#define SIM_OUTBOX   8 /* update reports kept until the gateway takes them */

/* Firmware updates (update.c). */
typedef struct sim_update_options {
    bool enabled; /* trusted keys are known: each device runs iotd_update */
    iotd_update_mode mode;
    uint8_t window_start_h, window_end_h;
    const char *vendor;
    const char *class_id;
    iotd_posix_image factory; /* the image a device runs before any update */
    bool self_test_fails;     /* every new image fails its self-test here */
    uint32_t check_ms;
    uint32_t chunk;
    uint32_t slot_size;
    const iotd_manifest_key *keys;
    size_t n_keys;
    iotd_manifest_crypto crypto;
} sim_update_options;

/* Enrollment (enroll.c): devices that get their certificate themselves. */
typedef struct sim_enroll_options {
    bool enabled;               /* a token, a token file or a bootstrap certificate was given */
    const char *token;          /* --enroll-token, for the one device */
    const char *tokens_file;    /* --enroll-tokens: lines "DEVICE-ID TOKEN" */
    const char *bootstrap_cert; /* --bootstrap-cert/--bootstrap-key */
    const char *bootstrap_key;
    const char *ca; /* --ca: the CA the gateway's certificate chains to */
    bool renew;     /* --renew: renew at start, whatever the certificate's age */
    /* --clock-ahead: the certificate in use looks this much older to the
     * enrollment machine until it is renewed, so that a test sees when
     * renewal falls due without waiting. */
    uint32_t clock_ahead_ms;
} sim_enroll_options;

typedef struct sim_options {
    const char *gateway; /* https://HOST[:PORT] */
    const char *pki;     /* device files are PKI/devices/ID/{key,cert,ca}.pem */
    const char *crl;     /* PEM CRL the gateway's certificate is checked against, or NULL */
    const char *state;   /* state of device ID is STATE/ID */
    uint32_t interval_ms;
    uint32_t count; /* readings per device, 0: until stopped */
    uint32_t drain_timeout_ms;
    uint32_t batch;
    uint32_t queue;
    uint32_t threads;
    uint32_t backoff_max_ms;
    uint32_t connect_timeout_ms;
    uint32_t timeout_ms;
    uint64_t seed;
    iotd_posix_curve curves[IOTD_POSIX_SENSOR_KINDS];
    size_t n_curves;
    int verbose; /* -1 quiet, 0 default, 1 -v, 2 -vv */
    sim_update_options update;
    sim_enroll_options enroll;
    uint32_t health_ms;       /* --health-interval: 0 sends no health reports */
    bool sleep;               /* --sleep: close the connection after each wake-up */
    const char *reset_reason; /* --reset-reason: what the health report says; NULL: power_on at
                                 the first start, software after */
    char **argv;              /* the command line, for a reboot that re-executes iotsim */
} sim_options;

typedef enum sim_state {
    SIM_RUNNING,
    SIM_DONE,    /* count reached and queue empty, drain timeout, or stopped */
    SIM_REFUSED, /* the gateway refused the device's certificate */
    SIM_FAILED,  /* it could not start again after an update's reboot */
} sim_state;

struct sim;

typedef struct sim_device {
    char id[IOT_ID_MAX + 1];
    struct sim *sim;
    iotd_posix posix;
    bool posix_open;
    iotd_port port;
    iotd_status (*post)(void *, const char *, const char *, const char *, size_t, char *, size_t,
                        iotd_http_result *); /* the port's own https_post */
    iotd_posix_synth synth;
    iotd_config cfg;
    iotd_device dev;
    char *body;
    char resp[SIM_RESP_MAX];

    /* what the simulator saw, beyond the core's counters */
    uint32_t sent;       /* readings in requests that got a response (resends too) */
    uint32_t duplicates; /* readings the gateway acknowledged as duplicates */
    uint32_t readings_seen;
    bool unreachable; /* an outage was reported and no response came since */
    bool refused;
    char refusal[128];
    bool drain_timed_out;

    sim_state state;
    uint64_t wake_ms;
    uint64_t drain_deadline_ms;

    /* firmware (update.c) */
    iotd_posix_update pu;
    iotd_update_port uport;
    iotd_status (*get)(void *, const char *, uint32_t, uint32_t, void *, size_t,
                       iotd_get_result *); /* the update port's own https_get */
    iotd_posix_boot boot;
    bool updating; /* iotd_update runs beside the device */
    iotd_update upd;
    iotd_update_config ucfg;
    uint8_t *ubuf;
    iotd_update_report outbox[SIM_OUTBOX]; /* reports not taken by the gateway yet */
    size_t outbox_len;
    uint64_t outbox_retry_ms;
    uint32_t outbox_failures;
    char offered_version[IOTD_MANIFEST_FW_VERSION_MAX + 1]; /* of the last manifest fetched */
    uint64_t offered_sequence;
    iotd_update_report last_report;
    bool has_report;
    /* enrollment (enroll.c) */
    bool enrolling; /* iotd_enroll runs beside the device */
    char token[128];
    char ca_path[IOTD_POSIX_CRED_PATH_MAX];
    iotd_posix_cred cred;
    iotd_cred_port cport;
    iotd_port eport; /* clock, random and log for the enrollment machine */
    iotd_enroll en;
    char *ework;
    uint32_t renewals_seen;
    /* health reports (health.c) */
    bool reporting;  /* iotd_health runs beside the device */
    iotd_port hport; /* the device's port, its https_post the raw one */
    iotd_health health;
    char hbuf[IOTD_HEALTH_BODY_MAX];
    uint32_t boot_count;
    const char *reset_reason;
    int64_t cert_not_after;
} sim_device;

typedef struct sim {
    const sim_options *opt;
    sim_device **devs;
    size_t n;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    sim_device **heap; /* devices waiting for their next step, earliest first */
    size_t heap_len;
    size_t active; /* devices not finished */
    bool stop;
} sim;

/* Health reports (health.c): counts this start, reads the certificate's
 * expiry and starts iotd_health when --health-interval is set. */
int sim_health_open(sim_device *d);
uint32_t sim_health_step(sim_device *d, uint64_t now);

/* Factory reset (reset.c): erases each device's state; 0, or 1 when one
 * failed (named on stderr). */
int sim_factory_reset(const char *state, const char *const *ids, size_t n);
/* Finishes a reset that was cut short, before the device starts; -1 when
 * it cannot. */
int sim_finish_reset(const char *state, const char *id);

/* Allocates the device table for n devices. */
int sim_init(sim *s, const sim_options *opt, size_t n);

/* Opens device i: TLS credentials from the PKI, the state directory, the
 * core. On failure prints one line naming the file at fault and returns -1. */
int sim_add_device(sim *s, size_t i, const char *id);

/* Runs every device until each is done, refused, or SIGINT/SIGTERM. */
int sim_run(sim *s);

/* Prints one summary line per device (and a total); returns the exit
 * status: 0 when every device finished with its queue empty (or was
 * stopped by a signal), 1 when one was refused or left readings queued at
 * its drain timeout. */
int sim_report(const sim *s);

void sim_free(sim *s);

/* Prints one event line on stderr, as the port's log lines, when the
 * verbosity shows that level. */
void sim_event(sim_device *d, iotd_log_level level, const char *event, const char *msg);

/* Enrollment: before the port opens, gets the device its first certificate
 * (blocking, with the core's backoff) when it has none; -1 on failure or
 * when stopped. */
int sim_enroll_open(sim_device *d);
/* One enrollment step beside the device's; the ms until it is due again.
 * After a committed renewal the device's TLS client takes the new
 * certificate. */
uint32_t sim_enroll_step(sim_device *d, uint64_t now);
void sim_enroll_close(sim_device *d);
/* The credential files of an enrolling device: *ca and the slot file. */
const char *sim_enroll_cert_path(const sim_device *d);

/* Opens (again, after a reboot) what a device keeps across restarts: its
 * port, firmware slots and core. On failure prints one line and returns -1. */
int sim_open_device(sim_device *d);

/* Drops the device's core and port, as a power cut does. */
void sim_close_device(sim_device *d);

/* Starts the update machine of a device whose port is open (update.c). */
int sim_update_open(sim_device *d);

/* One update step beside the device's; the ms until it is due again. May
 * reboot the device. */
uint32_t sim_update_step(sim_device *d, uint64_t now);

/* True while the update has work that a --count run should wait for. */
bool sim_update_busy(const sim_device *d);

/* ", firmware V, update STATE" for the summary line. */
void sim_update_summary(const sim_device *d, char *buf, size_t cap);

/* The update's https_get, with the simulator's bookkeeping around it. */
iotd_status sim_get(void *ctx, const char *path, uint32_t range_start, uint32_t range_len,
                    void *buf, size_t cap, iotd_get_result *result);

/* What the simulator notes about every request, whoever made it. */
void sim_note_reached(sim_device *d);
void sim_note_failure(sim_device *d);

/* Prints "iotsim: " and a formatted line to stderr in one write. */
void sim_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
