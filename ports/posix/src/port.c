#include "iotd_posix/port.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024

const char *iotd_posix_level_name(iotd_log_level level)
{
    switch (level) {
    case IOTD_LOG_ERROR:
        return "error";
    case IOTD_LOG_WARN:
        return "warn";
    case IOTD_LOG_INFO:
        return "info";
    case IOTD_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

static size_t put(char *buf, size_t cap, size_t len, const char *s)
{
    while (*s != '\0' && len + 1 < cap)
        buf[len++] = *s++;
    return len;
}

/* The line's fields up to the opening quote of msg; the length written. */
static size_t put_head(char *buf, size_t cap, int64_t unix_ms, const char *device_id,
                       iotd_log_level level, const char *event)
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    char stamp[32] = "";
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(buf, cap, "%s.%03dZ level=%s device=%s event=%s msg=\"", stamp,
                     (int)(unix_ms % 1000), iotd_posix_level_name(level),
                     device_id ? device_id : "-", event ? event : "-");
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* msg escaped at buf[len], printable ASCII only; the new length. */
static size_t put_message(char *buf, size_t cap, size_t len, const char *msg)
{
    /* A response body's final line break is not part of the message. */
    const char *m = msg ? msg : "";
    size_t mlen = strlen(m);
    while (mlen > 0 && (m[mlen - 1] == '\n' || m[mlen - 1] == '\r'))
        mlen--;
    /* Keep room for the closing quote and newline. */
    for (const char *p = m; p < m + mlen && len + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\')
            buf[len++] = '\\';
        buf[len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    return len;
}

size_t iotd_posix_log_format(char *buf, size_t cap, int64_t unix_ms, const char *device_id,
                             iotd_log_level level, const char *event, const char *msg)
{
    if (cap == 0)
        return 0;
    size_t len = put_head(buf, cap, unix_ms, device_id, level, event);
    len = put_message(buf, cap, len, msg);
    len = put(buf, cap, len, "\"\n");
    buf[len] = '\0';
    if (len > 0 && buf[len - 1] != '\n') /* cut: still one line */
        buf[len - 1] = '\n';
    return len;
}

static void emit(iotd_posix *p, iotd_log_level level, const char *event, const char *msg)
{
    if (p->log_fn != NULL) {
        p->log_fn(p->log_arg, p->device_id, level, event, msg);
        return;
    }
    if (level > p->log_level)
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t len =
        iotd_posix_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                              p->device_id, level, event, msg);
    /* One write per line, so lines of devices on other threads never mix. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

static void port_log(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    emit(ctx, level, event, msg);
}

const char *iotd_posix_net_event(iotd_posix_net_error e)
{
    switch (e) {
    case IOTD_POSIX_NET_RESOLVE:
    case IOTD_POSIX_NET_CONNECT:
        return "https.connect_failed";
    case IOTD_POSIX_NET_TIMEOUT:
        return "https.timeout";
    case IOTD_POSIX_NET_SERVER_CERT:
        return "https.server_unverified";
    case IOTD_POSIX_NET_REFUSED:
        return "https.refused";
    case IOTD_POSIX_NET_TLS:
        return "https.tls_failed";
    case IOTD_POSIX_NET_IO:
        return "https.io_failed";
    case IOTD_POSIX_NET_HTTP:
        return "https.bad_response";
    case IOTD_POSIX_NET_NONE:
        break;
    }
    return "https.failed";
}

static iotd_status port_post(void *ctx, const char *path, const char *content_type,
                             const char *body, size_t body_len, char *resp, size_t resp_cap,
                             iotd_http_result *result)
{
    iotd_posix *p = ctx;
    uint32_t connects = p->https.stats.connects;
    iotd_status st = iotd_posix_https_post(&p->https, path, content_type, body, body_len, resp,
                                           resp_cap, result);
    if (p->https.stats.connects != connects)
        emit(p, IOTD_LOG_DEBUG, "https.connected", p->https.authority);
    if (st != IOTD_OK) {
        iotd_posix_net_error e = p->https.last_error;
        emit(p, e == IOTD_POSIX_NET_REFUSED ? IOTD_LOG_ERROR : IOTD_LOG_WARN,
             iotd_posix_net_event(e), p->https.last_msg);
    }
    return st;
}

static bool port_wall_time(void *ctx, int64_t *unix_s)
{
    (void)ctx;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || ts.tv_sec < IOTD_MIN_WALL_TIME)
        return false;
    *unix_s = (int64_t)ts.tv_sec;
    return true;
}

static uint64_t port_uptime_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void port_sleep_ms(void *ctx, uint32_t ms)
{
    (void)ctx;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    /* Interrupted by a signal: return, so a stop request is seen at once. */
    (void)nanosleep(&ts, NULL);
}

static iotd_status port_kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    iotd_posix *p = ctx;
    return iotd_posix_kv_get(&p->kv, key, buf, cap, len);
}

static iotd_status port_kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    iotd_posix *p = ctx;
    iotd_status st = iotd_posix_kv_set(&p->kv, key, data, len);
    if (st == IOTD_EIO) {
        char msg[64];
        snprintf(msg, sizeof(msg), "key %s could not be stored durably", key);
        emit(p, IOTD_LOG_ERROR, "storage.write_failed", msg);
    }
    return st;
}

static uint32_t port_random_u32(void *ctx)
{
    (void)ctx;
    uint32_t v = 0;
    ssize_t n;
    do {
        n = getrandom(&v, sizeof(v), 0);
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(v)) {
        /* Only jitter depends on it: the clock's nanoseconds will do. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint32_t)ts.tv_nsec * 2654435761u;
    }
    return v;
}

iot_status iotd_posix_open(iotd_posix *p, const iotd_posix_config *cfg, iot_err *err)
{
    memset(p, 0, sizeof(*p));
    p->device_id = cfg->device_id;
    p->log_level = IOTD_LOG_WARN;
    p->kv.dirfd = -1;
    p->kv.lockfd = -1;
    iot_status st = iotd_posix_https_init(&p->https, &cfg->https, err);
    if (st != IOT_OK)
        return st;
    st = iotd_posix_kv_open(&p->kv, cfg->state_dir, err);
    if (st != IOT_OK)
        iotd_posix_https_free(&p->https);
    return st;
}

void iotd_posix_close(iotd_posix *p)
{
    iotd_posix_https_free(&p->https);
    iotd_posix_kv_close(&p->kv);
}

void iotd_posix_port(iotd_posix *p, iotd_port *port)
{
    memset(port, 0, sizeof(*port));
    port->ctx = p;
    port->https_post = port_post;
    port->wall_time = port_wall_time;
    port->uptime_ms = port_uptime_ms;
    port->sleep_ms = port_sleep_ms;
    port->kv_get = port_kv_get;
    port->kv_set = port_kv_set;
    port->random_u32 = port_random_u32;
    port->log = port_log;
}
