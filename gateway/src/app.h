/* What the device request path shares across its worker threads: built
 * and torn down by main.c, read by ingest.c and conn.c. Like every other
 * module the device path takes its own options, not the configuration:
 * main.c fills gw_ingest_options from it, so the path sees only what it
 * uses and a test can give it values of its own. */
#ifndef GW_APP_H
#define GW_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "outbox.h"
#include "payload.h"
#include "ratelimit.h"

typedef struct gw_admission gw_admission;
typedef struct gw_updates gw_updates;
typedef struct gw_est gw_est;
typedef struct gw_fleet gw_fleet;

/* The configuration values of the device path (config.h has each one's
 * meaning and default). Strings are borrowed: they must outlive the
 * workers. */
typedef struct gw_ingest_options {
    const char *listen; /* device_listen, "host:port" */
    int workers;        /* worker threads, each with its own listener */
    bool tls;           /* device_tls: false in development mode only */
    bool require_client_cert;
    int max_connections;
    int max_connections_per_address;    /* 0: no cap */
    double connection_rate_per_address; /* new connections/s; 0: no limit */
    double connection_burst_per_address;
    const char *proxy_protocol_from; /* balancers sending PROXY v2 headers; "" or NULL: none */
    int64_t request_timeout_ms;
    size_t max_buffered_bytes;
    int64_t retry_after_s;    /* Retry-After on 503 */
    const char *topic_prefix; /* with mqtt_max_packet: the size a message may have */
    size_t mqtt_max_packet;
} gw_ingest_options;

typedef struct gw_app {
    gw_ingest_options opt;
    gw_payload_limits limits;
    gw_admission *identity;
    gw_outbox *outbox;
    gw_ratelimit *ratelimit;
    gw_updates *updates; /* NULL: firmware updates off */
    gw_est *est;         /* NULL: enrollment off */
    gw_fleet *fleet;     /* the fleet inventory (fleet.h); NULL in tests without one */
    SSL_CTX *device_tls;
    atomic_bool draining; /* SIGTERM received: refuse new work with 503 */
} gw_app;

#endif
