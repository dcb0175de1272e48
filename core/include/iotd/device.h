/* The device: samples its sensors on a schedule, numbers each reading,
 * sends it to the gateway at once when it can and queues it in persistent
 * storage when it cannot, then sends the queue oldest-first in batches with
 * exponential backoff, honouring Retry-After.
 *
 * The platform's main loop drives it:
 *
 *     for (;;) {
 *         uint32_t ms = iotd_device_step(&dev, port.uptime_ms(port.ctx));
 *         port.sleep_ms(port.ctx, ms);
 *     }
 *
 * (iotd_device_run is that loop.) Everything happens inside step, on the
 * caller's thread; one step makes at most one HTTPS request.
 */
#ifndef IOTD_DEVICE_H
#define IOTD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/backoff.h"
#include "iotd/port.h"
#include "iotd/protocol.h"
#include "iotd/queue.h"
#include "iotd/reading.h"
#include "iotd/seq.h"
#include "iotd/status.h"

/* Everything the device needs from its platform besides the port. Pointers
 * are not copied from: the strings, the sensor table and both buffers must
 * outlive the device, and nothing else may use the buffers meanwhile. */
typedef struct iotd_config {
    const char *device_id;      /* the CN of the device certificate */
    const char *path;           /* request path, IOTD_PROTOCOL_PATH */
    const iotd_sensor *sensors; /* 1..IOTD_MAX_VALUES rows */
    size_t n_sensors;
    uint32_t sample_interval_ms; /* one reading per interval */
    uint32_t queue_capacity;     /* readings the offline queue holds, 1..4096 */
    uint32_t batch_max;          /* readings per request, 1..64 */
    uint32_t seq_block;          /* sequence numbers reserved per storage write */
    uint32_t backoff_base_ms;    /* first retry delay ceiling */
    uint32_t backoff_max_ms;     /* largest retry delay ceiling */
    uint32_t retry_after_max_s;  /* a longer Retry-After is cut to this */
    char *body;                  /* request body buffer */
    size_t body_cap;             /* >= iotd_senml_reading_max() for the table */
    char *resp;                  /* response body buffer; gets a NUL */
    size_t resp_cap;             /* >= 1 */
} iotd_config;

/* Counters since iotd_device_init, for the platform to log or expose. */
typedef struct iotd_stats {
    uint32_t readings;       /* readings taken (each has a sequence number) */
    uint32_t sent;           /* readings the gateway accepted (2xx) */
    uint32_t rejected;       /* readings dropped because the gateway refused them (4xx) */
    uint32_t dropped;        /* readings dropped from the full queue or lost in storage */
    uint32_t queued;         /* readings put into the offline queue */
    uint32_t requests;       /* HTTPS requests made */
    uint32_t failures;       /* requests without a 2xx or 4xx: network errors, 5xx, 429 */
    uint32_t sensor_errors;  /* sensor reads that failed */
    uint32_t storage_errors; /* key-value operations that failed */
    uint32_t no_answer;      /* requests that got no response at all (DNS, TCP, TLS, timeout) */
} iotd_stats;

/* The device state. The caller owns the memory (static, usually); the
 * fields are private: use the functions below. */
typedef struct iotd_device {
    const iotd_port *port;
    iotd_config cfg;
    iotd_seq seq;
    iotd_queue queue;
    iotd_backoff backoff;
    iotd_reading reading; /* the reading being taken, sent or read back */
    iotd_stats stats;
    uint64_t next_sample_ms;
    uint64_t next_upload_ms;
    uint32_t batch_limit;      /* readings per request; halved on 413 */
    uint64_t last_accepted_ms; /* uptime of the last accepted upload */
    bool has_accepted;
    bool started;
    bool halted; /* the gateway answered 403: no uploads until the next init */
} iotd_device;

/* Fills cfg with the defaults: path IOTD_PROTOCOL_PATH, a reading a minute,
 * a queue of 128, batches of 16, blocks of 100 sequence numbers, backoff
 * from 2 s to 5 min, Retry-After at most an hour. device_id, sensors and the
 * buffers are left NULL for the caller. */
void iotd_config_init(iotd_config *cfg);

/* Checks cfg and port, loads the sequence limit and the queue. IOTD_EINVAL
 * for a bad configuration, IOTD_ECORRUPT when the sequence record is
 * damaged (the device must not number readings), IOTD_EIO when storage
 * cannot be read. */
iotd_status iotd_device_init(iotd_device *dev, const iotd_port *port, const iotd_config *cfg);

/* Does what is due at now_ms (the port's uptime): takes a reading, sends
 * it or queues it, sends a batch from the queue. Returns how many ms the
 * caller may sleep before the next call (0: call again at once). */
uint32_t iotd_device_step(iotd_device *dev, uint64_t now_ms);

/* Calls step and the port's sleep until *stop is non-zero (never, if stop
 * is NULL). */
void iotd_device_run(iotd_device *dev, const volatile int *stop);

const iotd_stats *iotd_device_stats(const iotd_device *dev);

/* Readings in the offline queue, and lost readings not yet reported. */
uint32_t iotd_device_queued(const iotd_device *dev);
uint32_t iotd_device_unreported_drops(const iotd_device *dev);

/* True after a 403: the gateway does not accept this device's identity. */
bool iotd_device_halted(const iotd_device *dev);

/* True, with the uptime in *at_ms, once an upload was accepted since init. */
bool iotd_device_last_accepted(const iotd_device *dev, uint64_t *at_ms);

#endif
