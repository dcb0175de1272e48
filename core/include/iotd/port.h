/* The port contract: every platform service the core uses.
 *
 * The core makes no OS call and allocates nothing. A platform (the ESP32
 * firmware, the Linux simulator, a unit test) fills one iotd_port with
 * function pointers and a context pointer passed back to each of them, and
 * one sensor table. The port and everything it points to must outlive every
 * core object that uses it.
 *
 * Every function is called from the thread that calls the core; none is
 * called re-entrantly. All function pointers are required except `log`.
 */
#ifndef IOTD_PORT_H
#define IOTD_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/status.h"

/* A wall clock reading before 2020-01-01 means the clock was never set. */
#define IOTD_MIN_WALL_TIME 1577836800

/* A sensor value in fixed point: mantissa * 10^exp10, exactly as most
 * sensors deliver it (21.5 Cel is {215, -1}). The core encodes it digit by
 * digit, so what the sensor measured is what the gateway receives. */
typedef struct iotd_value {
    int32_t mantissa;
    int8_t exp10; /* IOTD_EXP10_MIN..IOTD_EXP10_MAX */
} iotd_value;

#define IOTD_EXP10_MIN (-9)
#define IOTD_EXP10_MAX 9

typedef enum iotd_log_level {
    IOTD_LOG_ERROR = 0,
    IOTD_LOG_WARN,
    IOTD_LOG_INFO,
    IOTD_LOG_DEBUG,
} iotd_log_level;

/* What the HTTPS service reports about a response it received. */
typedef struct iotd_http_result {
    int status;             /* HTTP status code */
    bool has_retry_after;   /* the response carried a Retry-After header */
    uint32_t retry_after_s; /* its value in seconds (an HTTP-date converted by the port) */
    size_t body_len;        /* bytes of response body stored, at most resp_cap */
} iotd_http_result;

/* Reads one sensor. Returns IOTD_OK and the value, or an error when the
 * sensor did not answer; the reading is then taken without this value. */
typedef iotd_status (*iotd_sensor_read_fn)(void *ctx, iotd_value *out);

/* One row of the sensor table. The strings are not copied: they must live as
 * long as the device. The table order is part of the storage format (queued
 * readings refer to sensors by index): append new sensors at the end. */
typedef struct iotd_sensor {
    const char *name;         /* SenML name: 1-32 of [A-Za-z0-9_.-], first a letter or digit */
    const char *unit;         /* SenML unit: 1-16 printable ASCII, no '"' or '\\' ("Cel", "%RH") */
    iotd_sensor_read_fn read; /* the port's read function for this sensor */
    void *ctx;                /* passed to read */
} iotd_sensor;

typedef struct iotd_port {
    void *ctx; /* passed as the first argument of every function below */

    /* HTTPS with mutual TLS to the gateway: POST `body` (body_len bytes)
     * with `content_type` to `path`. Returns IOTD_OK when a response was
     * received, whatever its status, with `result` filled and up to resp_cap
     * bytes of the response body in resp (not NUL-terminated). Returns
     * IOTD_ENET when no response arrived (DNS, connect, TLS, timeout); the
     * request may or may not have reached the gateway. */
    iotd_status (*https_post)(void *ctx, const char *path, const char *content_type,
                              const char *body, size_t body_len, char *resp, size_t resp_cap,
                              iotd_http_result *result);

    /* Wall clock: true and Unix seconds in *unix_s once the clock was set
     * (SNTP), false before. */
    bool (*wall_time)(void *ctx, int64_t *unix_s);

    /* Milliseconds since boot; never goes back. */
    uint64_t (*uptime_ms)(void *ctx);

    /* Blocks (or sleeps the chip) for about ms milliseconds. */
    void (*sleep_ms)(void *ctx, uint32_t ms);

    /* Persistent key-value storage of small blobs (at most 64 bytes; keys
     * at most 15 characters of [a-z0-9.]). get copies the blob stored under
     * key into buf and its length into *len: IOTD_ENOENT when the key was
     * never set, IOTD_ENOSPC when the blob is larger than cap, IOTD_EIO on a
     * read failure. set replaces the blob: IOTD_OK means it survives power
     * loss from now on. Power lost during a set may leave that key with the
     * old blob, the new one or any garbage; other keys are never affected. */
    iotd_status (*kv_get)(void *ctx, const char *key, void *buf, size_t cap, size_t *len);
    iotd_status (*kv_set)(void *ctx, const char *key, const void *data, size_t len);

    /* 32 random bits; used for retry jitter only, so need not be secret. */
    uint32_t (*random_u32)(void *ctx);

    /* Optional (may be NULL). level, a stable dot-separated event name
     * ("upload.rejected", a static string) and a NUL-terminated message,
     * valid only during the call: a fixed sentence, or for a refused upload
     * the gateway's response body (JSON, printable or not: escape it). */
    void (*log)(void *ctx, iotd_log_level level, const char *event, const char *msg);
} iotd_port;

#endif
