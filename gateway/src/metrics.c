#define _DEFAULT_SOURCE /* timegm */
#include "metrics.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/crypto.h>

#include "iot/rollout.h"

static atomic_uint_fast64_t counters[GW_M_COUNTER_COUNT];
static atomic_int_fast64_t gauges[GW_G_GAUGE_COUNT];
static atomic_uint_fast64_t refusals[GW_RC_COUNT];
static atomic_int_fast64_t cert_expiry[GW_CERT_SLOT_COUNT];
static atomic_uint_fast64_t update_reports[IOT_RDEV_STATE_COUNT];

/* Upper bounds in seconds; the last bucket (+Inf) is implicit. An fsync
 * on an SSD takes about a millisecond, on a loaded SD card a second. */
static const double COMMIT_BUCKETS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
#define N_BUCKETS (sizeof(COMMIT_BUCKETS) / sizeof(COMMIT_BUCKETS[0]))

static struct {
    atomic_uint_fast64_t buckets[N_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    atomic_uint_fast64_t sum_ns;
} histograms[GW_H_HISTOGRAM_COUNT];

static const struct {
    const char *name;
    const char *help;
} HISTOGRAMS[GW_H_HISTOGRAM_COUNT] = {
    [GW_H_OUTBOX_COMMIT] = {"iotgw_outbox_commit_seconds",
                            "Time one outbox transaction took to commit, fsync included"},
};

static const char *const CERT_SLOTS[GW_CERT_SLOT_COUNT] = {
    [GW_CERT_SERVER] = "server",   [GW_CERT_MQTT_CLIENT] = "mqtt_client", [GW_CERT_CA] = "ca",
    [GW_CERT_MQTT_CA] = "mqtt_ca", [GW_CERT_BROKER] = "broker",
};

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
        {"iotgw_readings_dropped_by_device_total",
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
                              "Registry reloads that failed (the previous state is kept)"},
    [GW_M_READINGS_QUARANTINED] =
        {"iotgw_readings_quarantined_total",
         "Stored readings the broker can never take (too large, malformed), moved out of the "
         "queue into the outbox's quarantine table"},
    [GW_M_CONNECTIONS_UNCLEAN_CLOSE] =
        {"iotgw_connections_unclean_close_total",
         "Device connections the peer closed without a TLS close_notify after a completed "
         "handshake: ordinary disconnects, not security events"},
    [GW_M_TLS_FULL_HANDSHAKES] = {"iotgw_tls_full_handshakes_total",
                                  "Device TLS handshakes completed with a certificate verified "
                                  "(public-key operations on both sides)"},
    [GW_M_TLS_RESUMED] = {"iotgw_tls_resumed_handshakes_total",
                          "Device TLS handshakes completed by resuming a session ticket, "
                          "its certificate admitted again"},
    [GW_M_TLS_RESUMPTION_REFUSED] =
        {"iotgw_tls_resumptions_refused_total",
         "Session tickets refused because their certificate is no longer admitted (revoked, "
         "renewed, unknown): the device made a full handshake instead"},
    [GW_M_CRL_LOAD_FAILURES] =
        {"iotgw_crl_load_failures_total",
         "CRL files refused (missing, corrupt, not issued and signed by "
         "the CA, or older than the CRL in force); the CRL in force is kept"},
    [GW_M_MQTT_CERT_REFUSED] = {"iotgw_mqtt_certificate_refused_total",
                                "Connections to the broker ended because its certificate did not "
                                "verify (revoked, expired, another CA or another name)"},
    [GW_M_UPDATE_CHECKS] = {"iotgw_update_checks_total",
                            "Firmware manifest requests from devices (GET /v1/firmware/manifest)"},
    [GW_M_UPDATE_OFFERS] = {"iotgw_update_offers_total",
                            "Signed manifests served to devices (200)"},
    [GW_M_UPDATE_DEVICES_STARTED] = {"iotgw_update_devices_started_total",
                                     "Devices started in a rollout (first manifest served)"},
    [GW_M_UPDATE_MANIFESTS_REFUSED] =
        {"iotgw_update_manifests_refused_total",
         "Manifests in the rollout file that did not verify with the trusted keys and were "
         "not served (a retired key, a tampered file): should be 0"},
    [GW_M_UPDATE_IMAGE_REQUESTS] = {"iotgw_update_image_requests_total",
                                    "Firmware image requests answered 200, 206 or 304"},
    [GW_M_UPDATE_IMAGE_BYTES] = {"iotgw_update_image_bytes_total",
                                 "Firmware image bytes sent to devices"},
    [GW_M_ROLLOUT_WAVES_STARTED] = {"iotgw_rollout_waves_started_total",
                                    "Rollout waves started by the gateway (success threshold met)"},
    [GW_M_ROLLOUTS_PAUSED] = {"iotgw_rollouts_paused_total",
                              "Rollouts paused by the gateway at their failure threshold"},
    [GW_M_ROLLOUTS_COMPLETED] = {"iotgw_rollouts_completed_total",
                                 "Rollouts in which every device reached a final state"},
    [GW_M_SHARED_ERRORS] = {"iotgw_shared_state_errors_total",
                            "Calls to the shared state (etcd) that failed: no member answered "
                            "or etcd refused; enrollment answers 503, reports wait"},
    [GW_M_SHARED_REFUSED] = {"iotgw_shared_state_refused_total",
                             "Keys in the shared state that were not a valid report and were "
                             "passed over: should be 0"},
    [GW_M_SHARED_REPORTS_APPLIED] = {"iotgw_shared_reports_applied_total",
                                     "Final update reports taken by other gateways and applied "
                                     "to this gateway's rollout file"},
    [GW_M_SHARED_CERTS_IMPORTED] = {"iotgw_shared_certs_imported_total",
                                    "Device certificates other gateways issued at enrollment, "
                                    "verified and taken into this gateway's registry"},
    [GW_M_SHARED_REVOCATIONS_IMPORTED] = {"iotgw_shared_revocations_imported_total",
                                          "Device revocations made at other gateways and "
                                          "applied to this gateway's registry"},
    [GW_M_SECEV_EVENTS] = {"iotgw_security_events_total",
                           "Security events the stream took, published alone or counted in a "
                           "summary"},
    [GW_M_SECEV_AGGREGATED] = {"iotgw_security_events_aggregated_total",
                               "Security events counted in a summary (a flood of one type from "
                               "one source) instead of published alone"},
    [GW_M_SECEV_STORED] = {"iotgw_security_events_stored_total",
                           "Security event documents stored in the security outbox"},
    [GW_M_SECEV_PUBLISHED] = {"iotgw_security_events_published_total",
                              "Security event documents the broker acknowledged"},
    [GW_M_SECEV_LOST] = {"iotgw_security_events_lost_total",
                         "Security events the security outbox could not take (full, disk "
                         "error); each is logged as security.event_lost"},
    [GW_M_SECEV_QUARANTINED] = {"iotgw_security_events_quarantined_total",
                                "Security event documents the broker can never take, kept in "
                                "the quarantine table of the security outbox"},
    [GW_M_SECEV_PUBLISH_REFUSED] = {"iotgw_security_events_publish_refused_total",
                                    "Security event publishes the broker refused (check its ACL "
                                    "for security/<gateway>/#)"},
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
    [GW_G_CRL_REVOKED] = {"iotgw_crl_revoked_certificates",
                          "Serial numbers listed in the CRL in force"},
    [GW_G_CRL_STALE] = {"iotgw_crl_stale",
                        "1 while the CRL file is refused and an older CRL is in force"},
    [GW_G_CRL_NUMBER] = {"iotgw_crl_number", "CRL Number of the CRL in force (-1: none)"},
    [GW_G_CRL_NEXT_UPDATE] = {"iotgw_crl_next_update_timestamp_seconds",
                              "nextUpdate of the CRL in force, unix seconds"},
    [GW_G_OUTBOX_MAX] = {"iotgw_outbox_max", "Capacity of the outbox in readings (outbox_max)"},
    [GW_G_OUTBOX_BYTES] = {"iotgw_outbox_bytes",
                           "Bytes of stored messages in the outbox (bounded by outbox_max_bytes)"},
    [GW_G_OUTBOX_QUARANTINED] = {"iotgw_outbox_quarantined",
                                 "Readings held in the outbox's quarantine table"},
    [GW_G_REQUEST_BYTES] = {"iotgw_request_buffer_bytes",
                            "Bytes of device requests being received and not yet answered "
                            "(bounded by max_buffered_bytes)"},
    [GW_G_DEVICES_CERT_EXPIRING] = {"iotgw_devices_cert_expiring",
                                    "Active devices whose certificate expires within "
                                    "cert_expiry_warning (a renewed device counts with its new "
                                    "certificate)"},
    [GW_G_CERTS_IN_GRACE] = {"iotgw_certificates_in_grace",
                             "Certificates replaced by a renewal that still work until their "
                             "successor is used or est_renewal_grace ends"},
    [GW_G_EST_ENABLED] = {"iotgw_est_enabled", "1 while enrollment (EST) is on"},
    [GW_G_SECEV_ENABLED] = {"iotgw_security_events_enabled",
                            "1 while the security event stream is on"},
    [GW_G_SECEV_QUEUED] = {"iotgw_security_events_queued",
                           "Security events in the security outbox, waiting for the broker"},
    [GW_G_DEVICES_SILENT] = {"iotgw_devices_silent",
                             "Devices of the fleet inventory not heard from for "
                             "device_silent_after"},
    [GW_G_INCIDENT_REPORTS_OVERDUE] = {"iotgw_incident_reports_overdue",
                                       "CRA Art. 14 reports of the incident register (iotctl "
                                       "incident) past their deadline"},
    [GW_G_SECEV_CONNECTED] = {"iotgw_security_stream_connected",
                              "1 while the security event stream's MQTT connection is up"},
    [GW_G_SHARED_KEYS] = {"iotgw_registry_shared_key_certificates",
                          "Certificates in the registry whose key another name also has "
                          "(identity.shared_key); should be 0"},
};

static atomic_uint_fast64_t est_results[GW_EST_R_COUNT];

static const char *const EST_RESULTS[GW_EST_R_COUNT] = {
    [GW_EST_R_CACERTS] = "cacerts",         [GW_EST_R_ISSUED] = "issued",
    [GW_EST_R_REISSUED] = "reissued",       [GW_EST_R_PENDING] = "pending",
    [GW_EST_R_REFUSED] = "refused",         [GW_EST_R_RATE_LIMITED] = "rate_limited",
    [GW_EST_R_UNAVAILABLE] = "unavailable",
};

void gw_est_result_inc(gw_est_result r)
{
    atomic_fetch_add_explicit(&est_results[r], 1, memory_order_relaxed);
}

uint64_t gw_est_result_get(gw_est_result r)
{
    return atomic_load_explicit(&est_results[r], memory_order_relaxed);
}

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

void gw_gauge_set_chosen(int g, int64_t v)
{
    if (g >= 0 && g < GW_G_GAUGE_COUNT)
        gw_gauge_set((gw_gauge)g, v);
}

void gw_metric_add_chosen(int c, uint64_t n)
{
    if (c >= 0 && c < GW_M_COUNTER_COUNT)
        gw_metric_add((gw_counter)c, n);
}

void gw_refusal_inc(gw_refusal r)
{
    atomic_fetch_add_explicit(&refusals[gw_refusal_row_of(r)->counter], 1, memory_order_relaxed);
}

void gw_update_report_inc(int state)
{
    if (state >= 0 && state < IOT_RDEV_STATE_COUNT)
        atomic_fetch_add_explicit(&update_reports[state], 1, memory_order_relaxed);
}

uint64_t gw_update_report_get(int state)
{
    if (state < 0 || state >= IOT_RDEV_STATE_COUNT)
        return 0;
    return atomic_load_explicit(&update_reports[state], memory_order_relaxed);
}

uint64_t gw_refusal_counter_get(gw_refusal_counter c)
{
    return atomic_load_explicit(&refusals[c], memory_order_relaxed);
}

void gw_cert_expiry_set(gw_cert_slot slot, int64_t not_after_unix)
{
    atomic_store_explicit(&cert_expiry[slot], not_after_unix, memory_order_relaxed);
}

void gw_histogram_observe(gw_histogram h, double seconds)
{
    size_t b = 0;
    while (b < N_BUCKETS && seconds > COMMIT_BUCKETS[b])
        b++;
    atomic_fetch_add_explicit(&histograms[h].buckets[b], 1, memory_order_relaxed);
    double ns = seconds > 0 ? seconds * 1e9 : 0;
    atomic_fetch_add_explicit(&histograms[h].sum_ns, (uint64_t)ns, memory_order_relaxed);
}

int64_t gw_asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

/* Descriptors open in this process; -1 if /proc is not there. */
static long open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n - 1; /* the directory stream's own descriptor */
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
         "# HELP iotgw_certificate_expiry_timestamp_seconds notAfter of the gateway's "
         "certificates and CAs, unix seconds\n"
         "# TYPE iotgw_certificate_expiry_timestamp_seconds gauge\n");
    for (int i = 0; i < GW_CERT_SLOT_COUNT; i++) {
        int64_t v = atomic_load_explicit(&cert_expiry[i], memory_order_relaxed);
        if (v != 0)
            emit(buf, size, &off,
                 "iotgw_certificate_expiry_timestamp_seconds{certificate=\"%s\"} %lld\n",
                 CERT_SLOTS[i], (long long)v);
    }
    emit(buf, size, &off,
         "# HELP iotgw_open_fds File descriptors open in the gateway process\n"
         "# TYPE iotgw_open_fds gauge\niotgw_open_fds %ld\n",
         open_fds());
    emit(buf, size, &off,
         "# HELP iotgw_build_info The gateway's version and the OpenSSL it runs with\n"
         "# TYPE iotgw_build_info gauge\n"
         "iotgw_build_info{version=\"%s\",openssl=\"%s\"} 1\n",
         IOT_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING));
    for (int h = 0; h < GW_H_HISTOGRAM_COUNT; h++) {
        const char *name = HISTOGRAMS[h].name;
        emit(buf, size, &off, "# HELP %s %s\n# TYPE %s histogram\n", name, HISTOGRAMS[h].help,
             name);
        uint64_t sum_ns = atomic_load_explicit(&histograms[h].sum_ns, memory_order_relaxed);
        uint64_t cumulative = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++) {
            cumulative += atomic_load_explicit(&histograms[h].buckets[b], memory_order_relaxed);
            if (b < N_BUCKETS)
                emit(buf, size, &off, "%s_bucket{le=\"%g\"} %llu\n", name, COMMIT_BUCKETS[b],
                     (unsigned long long)cumulative);
            else
                emit(buf, size, &off, "%s_bucket{le=\"+Inf\"} %llu\n", name,
                     (unsigned long long)cumulative);
        }
        emit(buf, size, &off, "%s_sum %.9f\n%s_count %llu\n", name, (double)sum_ns / 1e9, name,
             (unsigned long long)cumulative); /* _count is the +Inf bucket */
    }
    emit(buf, size, &off,
         "# HELP iotgw_update_reports_total Firmware update reports from devices, by the state "
         "they report\n# TYPE iotgw_update_reports_total counter\n");
    for (int i = IOT_RDEV_DOWNLOADING; i < IOT_RDEV_STATE_COUNT; i++)
        emit(buf, size, &off, "iotgw_update_reports_total{status=\"%s\"} %llu\n",
             iot_rollout_dev_state_name((iot_rollout_dev_state)i),
             (unsigned long long)gw_update_report_get(i));
    emit(buf, size, &off,
         "# HELP iotgw_est_requests_total Enrollment (EST) requests by result; each refusal is "
         "also in iotgw_refusals_total by reason\n# TYPE iotgw_est_requests_total counter\n");
    for (int i = 0; i < GW_EST_R_COUNT; i++)
        emit(buf, size, &off, "iotgw_est_requests_total{result=\"%s\"} %llu\n", EST_RESULTS[i],
             (unsigned long long)gw_est_result_get((gw_est_result)i));
    emit(buf, size, &off,
         "# HELP iotgw_refusals_total Requests and connections refused, by reason; "
         "class=\"security\" marks security events\n# TYPE iotgw_refusals_total counter\n");
    for (int i = 0; i < GW_RC_COUNT; i++)
        emit(buf, size, &off, "iotgw_refusals_total{reason=\"%s\",class=\"%s\"} %llu\n",
             gw_refusal_counter_name((gw_refusal_counter)i),
             gw_refusal_class_name(gw_refusal_counter_class((gw_refusal_counter)i)),
             (unsigned long long)gw_refusal_counter_get((gw_refusal_counter)i));
    return off < size ? off : size;
}
