/* The device's health report (POST IOTD_HEALTH_PATH, docs/protocol.md):
 * what the fleet needs to spot compromise and drift. Sent once after boot
 * and then every `interval_ms`, beside the readings (iotd_health_step next
 * to iotd_device_step, like iotd_update and iotd_enroll).
 *
 * The application fills what only it knows (firmware version and
 * secure_version, boot count, reset reason, free heap low-water mark,
 * certificate expiry) through `fill`; the core adds what the device
 * counted: requests without an answer since the last report, and the time
 * since the last accepted upload. Allocates nothing: the caller owns the
 * iotd_health and its buffer (IOTD_HEALTH_BODY_MAX bytes is enough), which
 * must outlive it; the report is rebuilt in it at each send. */
#ifndef IOTD_HEALTH_H
#define IOTD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/backoff.h"
#include "iotd/device.h"
#include "iotd/port.h"
#include "iotd/status.h"

/* Why the device last started: the gateway knows exactly these. */
#define IOTD_RESET_POWER_ON   "power_on"
#define IOTD_RESET_SOFTWARE   "software"
#define IOTD_RESET_DEEP_SLEEP "deep_sleep"
#define IOTD_RESET_EXTERNAL   "external"
#define IOTD_RESET_PANIC      "panic"
#define IOTD_RESET_WATCHDOG   "watchdog"
#define IOTD_RESET_BROWNOUT   "brownout"
#define IOTD_RESET_UNKNOWN    "unknown"

typedef struct iotd_health_info {
    const char *firmware; /* 1..32 of [A-Za-z0-9.+_-]; valid during the fill's caller */
    uint32_t secure_version;
    uint32_t boot_count;
    const char *reset_reason; /* an IOTD_RESET_* string */
    int64_t heap_min;         /* bytes; -1: not known */
    int64_t cert_not_after;   /* Unix seconds; 0: not known */
    /* The partition the running image booted from, as the bootloader names
     * it ("factory", "ota_0", "ota_1"): 1..16 of [a-z0-9_]; NULL: not known. */
    const char *slot;
} iotd_health_info;

typedef void (*iotd_health_fill_fn)(void *ctx, iotd_health_info *out);

typedef struct iotd_health_config {
    uint32_t interval_ms; /* between reports; default 1 h */
    iotd_health_fill_fn fill;
    void *fill_ctx;
    char *buf; /* the report and the answer; at least 256 bytes */
    size_t cap;
} iotd_health_config;

typedef struct iotd_health_stats {
    uint32_t sent;      /* reports the gateway took (2xx) */
    uint32_t refused;   /* reports it refused (4xx): not sent again */
    uint32_t no_answer; /* reports without an answer or with a 5xx: retried with backoff */
} iotd_health_stats;

typedef struct iotd_health {
    const iotd_port *port;
    const iotd_device *dev;
    iotd_health_config cfg;
    iotd_backoff backoff;
    uint64_t due_ms;
    uint32_t no_answer_reported; /* the device's no_answer count at the last report */
    iotd_health_stats stats;
} iotd_health;

void iotd_health_config_init(iotd_health_config *cfg);

/* The first report is due at once. IOTD_EINVAL for a NULL argument, no
 * fill, or a buffer under 256 bytes. */
iotd_status iotd_health_init(iotd_health *h, const iotd_port *port, const iotd_device *dev,
                             const iotd_health_config *cfg);

/* Sends the report when it is due (at most one request); returns the
 * milliseconds until it wants to be called again. */
uint32_t iotd_health_step(iotd_health *h, uint64_t now_ms);

/* The report's JSON into buf (cap bytes, NUL added) and its length into
 * *len. IOTD_EINVAL when a string of info is missing or not what the
 * gateway accepts; IOTD_ENOSPC when it does not fit. */
iotd_status iotd_health_json(const iotd_health_info *info, uint32_t connect_failures,
                             int64_t since_upload_s, char *buf, size_t cap, size_t *len);

#endif
