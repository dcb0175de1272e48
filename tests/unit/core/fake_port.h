/* A fake platform for the device core's tests: storage in memory that can
 * tear a write and "lose power", a scripted gateway that records every
 * request, a settable clock, a fixed or pseudo-random random source, a log
 * that remembers event names, and sensors with settable values.
 *
 * No allocation: a test keeps one fake_port in static storage.
 */
#ifndef FAKE_PORT_H
#define FAKE_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"

#define FAKE_KV_MAX     80
#define FAKE_KEY_MAX    16
#define FAKE_BLOB_MAX   64
#define FAKE_SCRIPT_MAX 32
#define FAKE_REQ_MAX    24
#define FAKE_BODY_MAX   2048
#define FAKE_EVENTS_MAX 64

typedef struct fake_kv_entry {
    bool used;
    char key[FAKE_KEY_MAX];
    uint8_t data[FAKE_BLOB_MAX];
    size_t len;
} fake_kv_entry;

/* What a torn set leaves under its key. */
typedef enum fake_tear {
    FAKE_TEAR_GARBAGE, /* the first half of the new blob, then junk */
    FAKE_TEAR_OLD,     /* nothing written */
    FAKE_TEAR_NEW,     /* all written, but power went before set returned */
} fake_tear;

/* One scripted gateway answer; status 0 means no response (IOTD_ENET). */
typedef struct fake_response {
    int status;
    bool has_retry_after;
    uint32_t retry_after_s;
    const char *body;
    bool power_off; /* the device loses power while waiting for the answer */
} fake_response;

typedef struct fake_request {
    char path[32];
    char content_type[32];
    char body[FAKE_BODY_MAX];
    size_t len;
} fake_request;

typedef struct fake_port {
    iotd_port port;

    fake_kv_entry kv[FAKE_KV_MAX];
    uint32_t kv_sets;   /* successful sets */
    int32_t tear_after; /* successful sets before the torn one; -1: none */
    fake_tear tear;
    bool get_fails; /* every get returns IOTD_EIO */
    bool set_fails; /* every set returns IOTD_EIO (without power loss) */
    bool powered_off;

    fake_response script[FAKE_SCRIPT_MAX];
    size_t script_len;
    size_t script_pos;
    int default_status; /* once the script is used up */
    fake_request requests[FAKE_REQ_MAX];
    size_t n_requests; /* may exceed FAKE_REQ_MAX; only the first are kept */

    bool wall_known;
    int64_t wall;
    uint64_t uptime;
    uint32_t sleeps;
    uint32_t sleep_limit; /* after this many sleeps, *stop is set */
    volatile int *stop;

    bool random_fixed;
    uint32_t random_value;
    uint32_t lcg;

    const char *events[FAKE_EVENTS_MAX];
    size_t n_events;
    char last_msg[128];
} fake_port;

void fake_port_init(fake_port *f);

/* Power comes back: storage keeps what it holds, nothing tears any more. */
void fake_reboot(fake_port *f);

void fake_respond(fake_port *f, int status);
void fake_respond_retry_after(fake_port *f, int status, uint32_t seconds);
void fake_respond_power_off(fake_port *f);

size_t fake_event_count(const fake_port *f, const char *event);

/* Direct storage access, for planting or damaging records. */
fake_kv_entry *fake_kv_find(fake_port *f, const char *key);
void fake_kv_put(fake_port *f, const char *key, const void *data, size_t len);

/* The seq values in a SenML body, in order; returns how many. */
size_t fake_body_seqs(const char *body, size_t len, uint32_t *seqs, size_t max);

/* A sensor whose value the test sets; read fails when `fail` is set. */
typedef struct fake_sensor {
    iotd_value value;
    bool fail;
    uint32_t reads;
} fake_sensor;

iotd_status fake_sensor_read(void *ctx, iotd_value *out);

#endif
