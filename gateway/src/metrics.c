#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_uint_fast64_t counters[GW_M_COUNTER_COUNT];
static atomic_int_fast64_t gauges[GW_G_GAUGE_COUNT];
static atomic_uint_fast64_t refusals[GW_R_REFUSAL_COUNT];

static const struct {
    const char *name;
    const char *help;
} COUNTERS[GW_M_COUNTER_COUNT] = {
    [GW_M_CONNECTIONS_ACCEPTED] = {"iotgw_connections_accepted_total",
                                   "TCP connections accepted on the device listener"},
    [GW_M_REQUESTS] = {"iotgw_requests_total", "HTTP requests received from devices"},
    [GW_M_READINGS_STORED] = {"iotgw_readings_stored_total",
                              "Readings durably stored in the outbox"},
    [GW_M_READINGS_DUPLICATE] = {"iotgw_readings_duplicate_total",
                                 "Readings acknowledged as duplicates (sequence already accepted)"},
    [GW_M_READINGS_PUBLISHED] =
        {"iotgw_readings_published_total",
         "Readings acknowledged by the broker (PUBACK) and removed from the outbox"},
    [GW_M_READINGS_DROPPED_BY_DEVICES] =
        {"iotgw_device_dropped_readings_total",
         "Readings devices reported dropping from full offline queues"},
    [GW_M_STORE_COMMITS] =
        {"iotgw_outbox_commits_total",
         "Outbox transactions committed (each one fsync, shared by concurrent requests)"},
    [GW_M_STORE_ERRORS] = {"iotgw_outbox_errors_total", "Outbox transactions that failed"},
    [GW_M_MQTT_CONNECTS] = {"iotgw_mqtt_connects_total", "Successful connections to the broker"},
    [GW_M_MQTT_DISCONNECTS] = {"iotgw_mqtt_disconnects_total", "Connections to the broker lost"},
    [GW_M_MQTT_PUBLISH_REFUSED] = {"iotgw_mqtt_publish_refused_total",
                                   "Publishes the broker refused (MQTT 5 reason code >= 0x80); the "
                                   "readings stay in the outbox"},
    [GW_M_RELOADS] = {"iotgw_identity_reloads_total", "Registry and CRL reloads"},
    [GW_M_RELOAD_FAILURES] = {"iotgw_identity_reload_failures_total",
                              "Registry or CRL reloads that failed (the previous state is kept)"},
    [GW_M_READINGS_QUARANTINED] =
        {"iotgw_readings_quarantined_total",
         "Stored readings the broker can never take (too large, malformed), moved out of the "
         "queue into the outbox's quarantine table"},
    [GW_M_CONNECTIONS_UNCLEAN_CLOSE] =
        {"iotgw_connections_unclean_close_total",
         "Device connections the peer closed without a TLS close_notify after a completed "
         "handshake: ordinary disconnects, not security events"},
};

static const struct {
    const char *name;
    const char *help;
} GAUGES[GW_G_GAUGE_COUNT] = {
    [GW_G_OUTBOX_DEPTH] = {"iotgw_outbox_depth",
                           "Readings in the outbox waiting for a broker acknowledgement"},
    [GW_G_MQTT_CONNECTED] = {"iotgw_mqtt_connected", "1 while connected to the broker"},
    [GW_G_MQTT_INFLIGHT] = {"iotgw_mqtt_inflight",
                            "QoS 1 messages published and not yet acknowledged"},
    [GW_G_OPEN_CONNECTIONS] = {"iotgw_open_connections", "Device connections currently open"},
    [GW_G_CONNECTED_ADDRESSES] =
        {"iotgw_connected_addresses",
         "Client addresses (IPv6: /64 prefixes) holding device connections"},
    [GW_G_REGISTRY_DEVICES] = {"iotgw_registry_devices", "Active devices in the loaded registry"},
    [GW_G_CRL_REVOKED] = {"iotgw_crl_revoked", "Serial numbers in the loaded CRL"},
    [GW_G_OUTBOX_BYTES] = {"iotgw_outbox_bytes",
                           "Bytes of stored messages in the outbox (bounded by outbox_max_bytes)"},
    [GW_G_OUTBOX_QUARANTINED] = {"iotgw_outbox_quarantined",
                                 "Readings held in the outbox's quarantine table"},
    [GW_G_REQUEST_BYTES] = {"iotgw_request_buffer_bytes",
                            "Bytes of device requests being received and not yet answered "
                            "(bounded by max_buffered_bytes)"},
};

static const struct {
    const char *name;
    int security;
} REFUSALS[GW_R_REFUSAL_COUNT] = {
    [GW_R_TLS_NO_CERT] = {"tls_no_certificate", 1},
    [GW_R_TLS_BAD_CERT] = {"tls_bad_certificate", 1},
    [GW_R_TLS_PROTOCOL] = {"tls_protocol", 1},
    [GW_R_DEVICE_UNKNOWN] = {"device_unknown", 1},
    [GW_R_DEVICE_REVOKED] = {"device_revoked", 1},
    [GW_R_NOT_A_DEVICE] = {"not_a_device", 1},
    [GW_R_IDENTITY_MISMATCH] = {"identity_mismatch", 1},
    [GW_R_PAYLOAD_SECURITY] = {"payload_hostile", 1},
    [GW_R_REPLAY] = {"replay", 1},
    [GW_R_RATE_LIMITED] = {"rate_limited", 1},
    [GW_R_HTTP_PROTOCOL] = {"http_protocol", 1},
    [GW_R_REQUEST_TIMEOUT] = {"request_timeout", 1},
    [GW_R_PAYLOAD_INVALID] = {"payload_invalid", 0},
    [GW_R_PAYLOAD_TOO_LARGE] = {"payload_too_large", 0},
    [GW_R_OUTBOX_FULL] = {"outbox_full", 0},
    [GW_R_OUTBOX_DEVICE_SHARE] = {"outbox_device_share_full", 0},
    [GW_R_STORAGE_ERROR] = {"storage_error", 0},
    [GW_R_OVER_CAPACITY] = {"over_capacity", 0},
    [GW_R_ADMIN_UNAUTHORIZED] = {"admin_unauthorized", 1},
    [GW_R_ADMIN_OVER_CAPACITY] = {"admin_over_capacity", 0},
};

void gw_metric_inc(gw_counter c)
{
    atomic_fetch_add_explicit(&counters[c], 1, memory_order_relaxed);
}

void gw_metric_add(gw_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&counters[c], n, memory_order_relaxed);
}

uint64_t gw_metric_get(gw_counter c)
{
    return atomic_load_explicit(&counters[c], memory_order_relaxed);
}

void gw_gauge_set(gw_gauge g, int64_t v)
{
    atomic_store_explicit(&gauges[g], v, memory_order_relaxed);
}

void gw_gauge_add(gw_gauge g, int64_t delta)
{
    atomic_fetch_add_explicit(&gauges[g], delta, memory_order_relaxed);
}

int64_t gw_gauge_get(gw_gauge g)
{
    return atomic_load_explicit(&gauges[g], memory_order_relaxed);
}

void gw_refusal_inc(gw_refusal r)
{
    atomic_fetch_add_explicit(&refusals[r], 1, memory_order_relaxed);
}

uint64_t gw_refusal_get(gw_refusal r)
{
    return atomic_load_explicit(&refusals[r], memory_order_relaxed);
}

const char *gw_refusal_name(gw_refusal r)
{
    return REFUSALS[r].name;
}

int gw_refusal_is_security(gw_refusal r)
{
    return REFUSALS[r].security;
}

/* Appends to buf at *off, never past size; returns 0 once full. */
static int emit(char *buf, size_t size, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int emit(char *buf, size_t size, size_t *off, const char *fmt, ...)
{
    if (*off >= size)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, size - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size - *off) {
        *off = size;
        return 0;
    }
    *off += (size_t)n;
    return 1;
}

size_t gw_metrics_render(char *buf, size_t size)
{
    size_t off = 0;
    for (int i = 0; i < GW_M_COUNTER_COUNT; i++)
        emit(buf, size, &off, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", COUNTERS[i].name,
             COUNTERS[i].help, COUNTERS[i].name, COUNTERS[i].name,
             (unsigned long long)gw_metric_get((gw_counter)i));
    for (int i = 0; i < GW_G_GAUGE_COUNT; i++)
        emit(buf, size, &off, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", GAUGES[i].name,
             GAUGES[i].help, GAUGES[i].name, GAUGES[i].name, (long long)gw_gauge_get((gw_gauge)i));
    emit(buf, size, &off,
         "# HELP iotgw_refusals_total Requests and connections refused, by reason; "
         "class=\"security\" marks security events\n# TYPE iotgw_refusals_total counter\n");
    for (int i = 0; i < GW_R_REFUSAL_COUNT; i++)
        emit(buf, size, &off, "iotgw_refusals_total{reason=\"%s\",class=\"%s\"} %llu\n",
             REFUSALS[i].name, REFUSALS[i].security ? "security" : "quality",
             (unsigned long long)gw_refusal_get((gw_refusal)i));
    return off < size ? off : size;
}
