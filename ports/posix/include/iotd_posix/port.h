/* The device core's port for Linux: one iotd_posix per device.
 *
 *   https_post  mbedTLS client (https.h), connection kept between requests
 *   wall_time   CLOCK_REALTIME (unset before 2020, as the contract says)
 *   uptime_ms   CLOCK_MONOTONIC
 *   sleep_ms    nanosleep; returns early when a signal arrives
 *   kv_get/set  one file per key in the device's state directory (kv.h)
 *   random_u32  getrandom(2)
 *   log         one line per event on stderr, or a function of the caller
 *
 * Sensors are separate (sensors.h): the table goes into iotd_config.
 */
#ifndef IOTD_POSIX_PORT_H
#define IOTD_POSIX_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"
#include "iotd/port.h"
#include "iotd_posix/https.h"
#include "iotd_posix/kv.h"

/* Receives every event of the core and of the port (instead of stderr). */
typedef void (*iotd_posix_log_fn)(void *arg, const char *device_id, iotd_log_level level,
                                  const char *event, const char *msg);

typedef struct iotd_posix_config {
    const char *device_id; /* names the device in log lines; must outlive the port */
    const char *state_dir; /* the device's own directory, created if missing */
    iotd_posix_https_config https;
} iotd_posix_config;

typedef struct iotd_posix {
    const char *device_id;
    iotd_posix_https https;
    iotd_posix_kv kv;
    iotd_log_level log_level; /* stderr gets events at this severity or worse */
    iotd_posix_log_fn log_fn; /* when set, gets every event and stderr none */
    void *log_arg;
    void *user; /* the caller's, for functions it puts in the port table */
} iotd_posix;

/* Opens the state directory (locked) and loads the TLS credentials. The
 * error names the file or directory at fault. */
iot_status iotd_posix_open(iotd_posix *p, const iotd_posix_config *cfg, iot_err *err);

void iotd_posix_close(iotd_posix *p);

/* Fills port with this platform's functions and ctx = p. */
void iotd_posix_port(iotd_posix *p, iotd_port *port);

/* Formats one log line, "2026-11-25T16:50:00.123Z level=warn device=ID
 * event=NAME msg=\"...\"\n", into buf (cut to fit, always ending in a
 * newline when cap > 1). Bytes outside printable ASCII in msg become '?',
 * and '"' and '\\' are escaped. Returns its length. */
size_t iotd_posix_log_format(char *buf, size_t cap, int64_t unix_ms, const char *device_id,
                             iotd_log_level level, const char *event, const char *msg);

/* The log event for a request that got no response: "https.connect_failed",
 * "https.timeout", "https.server_unverified", "https.refused",
 * "https.tls_failed", "https.io_failed", "https.bad_response". */
const char *iotd_posix_net_event(iotd_posix_net_error e);

/* "error", "warn", "info", "debug". */
const char *iotd_posix_level_name(iotd_log_level level);

#endif
