/* The forwarder: publishes the outbox to the broker with QoS 1 and asks the
 * outbox to delete each reading once its PUBACK arrives.
 *
 * libmosquitto runs inside the main libevent loop: its socket is watched
 * for reading (and for writing when it has data queued), a timer drives
 * keep-alives. No thread per message, no busy polling. A bounded window of
 * messages is in flight; the rest wait on disk. After any disconnect the
 * client is rebuilt and publishing restarts from the oldest reading still
 * in the outbox, so nothing unacknowledged is skipped (duplicates are
 * possible and carry the same `seq`). Reconnects back off exponentially
 * with jitter.
 *
 * The forwarder reads nothing global: its settings come in
 * gw_forwarder_options, the readings through gw_forwarder_store (the
 * outbox in the daemon, see outbox_store.h; an in-memory store in tests),
 * and the CRL in force from the admission snapshot.
 *
 * Connection states (one transition function logs each change and refuses
 * any change not drawn here):
 *
 *   IDLE --start--> BACKOFF --timer--> CONNECTING --CONNACK--> CONNECTED
 *                    ^ ^ ^                |  |                  |     |
 *                    | | +- could not ----+  | failure, timeout |     | the broker
 *                    | |    start            | CONNACK refusal  |     | refused a
 *                    | |                     v                  |     | publish
 *                    | +--- torn down --- CLOSING <--- error ---+     v
 *                    |                       |                      REFUSED
 *                    |                       +--- refused PUBACK --->  |
 *                    +--------------------- torn down -----------------+
 *
 *   any state but STOPPING --gw_forwarder_stop--> STOPPING (final)
 *
 * CLOSING and REFUSED mean a failure was noticed inside a libmosquitto
 * callback and the client is torn down from the event loop just after.
 * After REFUSED the backoff keeps growing across reconnects until a
 * publish is accepted: a broker ACL that refuses the gateway's topics is
 * not retried at full speed.
 */
#ifndef GW_FORWARDER_H
#define GW_FORWARDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "iot/status.h"
#include "brokers.h"
#include "outbox.h"

typedef struct gw_forwarder gw_forwarder;
typedef struct gw_admission gw_admission;

typedef enum gw_forwarder_state {
    GW_FWD_IDLE,       /* created, not started */
    GW_FWD_CONNECTING, /* TCP/TLS/MQTT connect under way, no CONNACK yet */
    GW_FWD_CONNECTED,  /* publishing */
    GW_FWD_CLOSING,    /* connection lost; the client is torn down next */
    GW_FWD_REFUSED,    /* the broker refused a publish; the client is torn down next */
    GW_FWD_BACKOFF,    /* no client; a reconnect is scheduled */
    GW_FWD_STOPPING,   /* gw_forwarder_stop: final */
    GW_FWD_STATE_COUNT
} gw_forwarder_state;

/* What a forwarder publishes from its store. */
typedef enum gw_forwarder_stream {
    GW_STREAM_READINGS = 0, /* <topic_prefix>/<device>/telemetry; the status topic and its will */
    GW_STREAM_SECURITY,     /* security/<gateway>/<type> (message.h); no status topic */
} gw_forwarder_stream;

/* The metrics a forwarder keeps (metrics.h indexes; -1: not kept). */
typedef struct gw_forwarder_metrics {
    int connected, inflight;                                  /* gauges */
    int connects, disconnects, publish_refused, cert_refused; /* counters */
} gw_forwarder_metrics;

typedef struct gw_forwarder_options {
    /* The brokers (mqtt_host), tried in order: the forwarder stays with
     * the one that takes it and moves to the next when it fails. Each is
     * checked against its own certificate. */
    gw_broker brokers[GW_BROKERS_MAX];
    int n_brokers;
    bool mqtt311;               /* MQTT 3.1.1 instead of 5 (mqtt_protocol) */
    const char *ca_path;        /* CA of the broker's certificate (mqtt_ca) */
    const char *cert_path;      /* the gateway's client certificate (mqtt_cert) */
    const char *key_path;       /* its key (mqtt_key) */
    const char *crl_path;       /* named in log lines only: the CRL comes from `identity` */
    const char *client_id;      /* "" or NULL: "iotgw-<hostname>" */
    const char *topic_prefix;   /* readings go to <topic_prefix>/<device> */
    int64_t keepalive_ms;       /* MQTT keep-alive */
    int inflight;               /* QoS 1 messages in flight at most (at least 1 is used) */
    size_t max_packet;          /* larger messages are quarantined */
    int64_t reconnect_min_ms;   /* backoff: first delay */
    int64_t reconnect_max_ms;   /* backoff: cap */
    int64_t connect_timeout_ms; /* CONNACK deadline; 0: 10 s */
    gw_admission *identity;     /* the CRL in force, checked on the broker's certificate */
    gw_forwarder_stream stream; /* readings unless told otherwise */
    const gw_forwarder_metrics *metrics; /* NULL: the readings' (iotgw_mqtt_*) */
    /* Called after every state change, on the event loop's thread; may be NULL. */
    void (*on_state)(void *ctx, gw_forwarder_state from, gw_forwarder_state to);
    void *on_state_ctx;
} gw_forwarder_options;

/* Where the readings come from and go back to. Every function is called
 * on the event loop's thread. */
typedef struct gw_forwarder_store {
    void *ctx;
    /* Calls fn for up to `limit` rows with id > after_id, in id order,
     * until fn returns non-zero; *count gets the number delivered. Rows
     * acknowledged or quarantined may still come back for a while. */
    iot_status (*fetch)(void *ctx, int64_t after_id, int limit, gw_outbox_row_fn fn, void *fn_ctx,
                        int *count, iot_err *err);
    /* The broker acknowledged these rows: they may be deleted. */
    void (*ack)(void *ctx, const int64_t *ids, size_t n);
    /* A row the broker can never take: it leaves the queue, kept aside. */
    void (*quarantine)(void *ctx, int64_t id, const char *reason);
    /* Rows held, for log lines. */
    int64_t (*depth)(void *ctx);
} gw_forwarder_store;

/* Copies what it needs from opt and store (the store's ctx must outlive
 * the forwarder) and schedules the first connection on base. The store
 * tells the forwarder about new rows with gw_forwarder_notify. */
iot_status gw_forwarder_start(const gw_forwarder_options *opt, const gw_forwarder_store *store,
                              struct event_base *base, gw_forwarder **out, iot_err *err);

/* New readings were committed. Thread-safe (called by the committer);
 * matches gw_outbox_notify_fn. */
void gw_forwarder_notify(void *forwarder);

gw_forwarder_state gw_forwarder_get_state(const gw_forwarder *fw);

/* In GW_FWD_CONNECTED; false for NULL. Thread-safe. */
bool gw_forwarder_connected(const gw_forwarder *fw);

/* Stops and frees; NULL is ignored. */
void gw_forwarder_stop(gw_forwarder *fw);

/* The state diagram above as a table, for the transition function and its
 * tests. A state to itself is not a transition. */
bool gw_forwarder_transition_allowed(gw_forwarder_state from, gw_forwarder_state to);

const char *gw_forwarder_state_name(gw_forwarder_state s);

#endif
