/* Counters and gauges, rendered in the Prometheus text format on the
 * admin listener's /metrics. Lock-free: any thread may count.
 *
 * Refusals are counted by the counter their row of the refusal table
 * (refusal.h) names, labelled with that counter's class. */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "refusal.h"

typedef enum gw_counter {
    GW_M_CONNECTIONS_ACCEPTED,
    GW_M_REQUESTS,
    GW_M_READINGS_STORED,
    GW_M_READINGS_DUPLICATE,
    GW_M_READINGS_PUBLISHED,
    GW_M_READINGS_DROPPED_BY_DEVICES,
    GW_M_STORE_COMMITS,
    GW_M_STORE_ERRORS,
    GW_M_MQTT_CONNECTS,
    GW_M_MQTT_DISCONNECTS,
    GW_M_MQTT_PUBLISH_REFUSED,
    GW_M_RELOADS,
    GW_M_RELOAD_FAILURES,
    GW_M_READINGS_QUARANTINED,
    GW_M_CONNECTIONS_UNCLEAN_CLOSE,
    GW_M_TLS_FULL_HANDSHAKES,    /* device handshakes that verified a certificate */
    GW_M_TLS_RESUMED,            /* device handshakes that resumed a session */
    GW_M_TLS_RESUMPTION_REFUSED, /* tickets whose certificate no longer admits */
    GW_M_CRL_LOAD_FAILURES,      /* CRL files refused: the CRL in force was kept */
    GW_M_MQTT_CERT_REFUSED,      /* broker certificates that did not verify */
    /* firmware updates (updates.c) */
    GW_M_UPDATE_CHECKS,
    GW_M_UPDATE_OFFERS,
    GW_M_UPDATE_DEVICES_STARTED,
    GW_M_UPDATE_MANIFESTS_REFUSED,
    GW_M_UPDATE_IMAGE_REQUESTS,
    GW_M_UPDATE_IMAGE_BYTES,
    GW_M_ROLLOUT_WAVES_STARTED,
    GW_M_ROLLOUTS_PAUSED,
    GW_M_ROLLOUTS_COMPLETED,
    /* the state shared by several gateways (shared.c, rollshare.c) */
    GW_M_SHARED_ERRORS,               /* calls to the shared state that failed */
    GW_M_SHARED_REFUSED,              /* keys in it that were not ours to read */
    GW_M_SHARED_REPORTS_APPLIED,      /* final update reports taken by other gateways */
    GW_M_SHARED_CERTS_IMPORTED,       /* device certificates other gateways issued */
    GW_M_SHARED_REVOCATIONS_IMPORTED, /* revocations made at other gateways */
    /* the security event stream (secevent.c) */
    GW_M_SECEV_EVENTS,          /* events the stream took, published or counted in a summary */
    GW_M_SECEV_AGGREGATED,      /* of them, counted in a summary instead of published alone */
    GW_M_SECEV_STORED,          /* documents stored in its outbox */
    GW_M_SECEV_PUBLISHED,       /* documents the broker acknowledged */
    GW_M_SECEV_LOST,            /* events its outbox could not take (full, disk error) */
    GW_M_SECEV_QUARANTINED,     /* documents the broker can never take, kept aside */
    GW_M_SECEV_PUBLISH_REFUSED, /* publishes the broker refused (its ACL) */
    GW_M_COUNTER_COUNT
} gw_counter;

typedef enum gw_gauge {
    GW_G_OUTBOX_DEPTH,
    GW_G_MQTT_CONNECTED,
    GW_G_MQTT_INFLIGHT,
    GW_G_OPEN_CONNECTIONS,
    GW_G_CONNECTED_ADDRESSES,
    GW_G_REGISTRY_DEVICES,
    GW_G_CRL_REVOKED,
    GW_G_OUTBOX_BYTES,
    GW_G_OUTBOX_QUARANTINED,
    GW_G_REQUEST_BYTES,
    GW_G_SHARED_KEYS,
    GW_G_CRL_STALE,       /* 1 while the CRL file is refused and an older one is in force */
    GW_G_CRL_NUMBER,      /* CRL Number of the CRL in force */
    GW_G_CRL_NEXT_UPDATE, /* its nextUpdate, unix seconds */
    GW_G_OUTBOX_MAX,
    GW_G_DEVICES_CERT_EXPIRING, /* active device certificates expiring within cert_expiry_warning */
    GW_G_CERTS_IN_GRACE,        /* renewed devices' previous certificates still working */
    GW_G_EST_ENABLED,           /* 1 while enrollment is on */
    GW_G_SECEV_ENABLED,         /* 1 while the security event stream is on */
    GW_G_SECEV_QUEUED,          /* security events waiting for the broker */
    GW_G_SECEV_CONNECTED,       /* 1 while its MQTT connection is up */
    GW_G_INCIDENT_REPORTS_OVERDUE, /* CRA Art. 14 reports past their deadline */
    GW_G_DEVICES_SILENT,           /* inventory devices not heard from for device_silent_after */
    GW_G_GAUGE_COUNT
} gw_gauge;

void gw_metric_inc(gw_counter c);
void gw_metric_add(gw_counter c, uint64_t n);
void gw_gauge_set(gw_gauge g, int64_t v);
void gw_gauge_add(gw_gauge g, int64_t delta);
int64_t gw_gauge_get(gw_gauge g);
uint64_t gw_metric_get(gw_counter c);
/* For modules whose caller chooses their metrics (outbox.h, forwarder.h):
 * an index of gw_gauge or gw_counter, or -1 for a metric not kept. */
void gw_gauge_set_chosen(int g, int64_t v);
void gw_metric_add_chosen(int c, uint64_t n);
/* Counts a device's update report by its state (iot_rollout_dev_state). */
void gw_update_report_inc(int state);
uint64_t gw_update_report_get(int state);

/* Enrollment requests (est.c) by result: iotgw_est_requests_total{result}. */
typedef enum gw_est_result {
    GW_EST_R_CACERTS,      /* GET cacerts answered */
    GW_EST_R_ISSUED,       /* 200, a new certificate */
    GW_EST_R_REISSUED,     /* 200, the same certificate again (a lost answer) */
    GW_EST_R_PENDING,      /* 202, waits for an operator */
    GW_EST_R_REFUSED,      /* 400, 401, 403, 409, 413, 415 */
    GW_EST_R_RATE_LIMITED, /* 429 */
    GW_EST_R_UNAVAILABLE,  /* 503: the issuing CA cannot sign, or the registry failed */
    GW_EST_R_COUNT
} gw_est_result;
void gw_est_result_inc(gw_est_result r);
uint64_t gw_est_result_get(gw_est_result r);

/* Counts a refusal in its counter (refusal.h). */
void gw_refusal_inc(gw_refusal r);
uint64_t gw_refusal_counter_get(gw_refusal_counter c);

/* Certificates whose notAfter is exported as
 * iotgw_certificate_expiry_timestamp_seconds{certificate="..."}. */
typedef enum gw_cert_slot {
    GW_CERT_SERVER,      /* tls_cert: what devices see */
    GW_CERT_MQTT_CLIENT, /* mqtt_cert: what the broker sees */
    GW_CERT_CA,          /* client_ca: devices' CA, also the CRL issuer */
    GW_CERT_MQTT_CA,     /* mqtt_ca: the broker's CA */
    GW_CERT_BROKER,      /* the broker's certificate, as last verified */
    GW_CERT_SLOT_COUNT
} gw_cert_slot;

typedef enum gw_histogram {
    GW_H_OUTBOX_COMMIT, /* seconds one outbox transaction took, fsync included */
    GW_H_HISTOGRAM_COUNT
} gw_histogram;

void gw_cert_expiry_set(gw_cert_slot s, int64_t not_after_unix);
void gw_histogram_observe(gw_histogram h, double seconds);

/* An ASN1_TIME (notAfter, nextUpdate) as unix seconds; 0 if unreadable. */
struct asn1_string_st;
int64_t gw_asn1_time_unix(const struct asn1_string_st *t);

/* Renders every metric; returns bytes written (truncated at size). */
size_t gw_metrics_render(char *buf, size_t size);

#endif
