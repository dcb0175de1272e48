#define _GNU_SOURCE /* gethostname */
#include "forwarder.h"

#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "admission.h"
#include "log.h"
#include "message.h"
#include "metrics.h"

#define CONNECT_TIMEOUT_MS 10000 /* to get a CONNACK, unless the options say otherwise */

/* The readings' forwarder's metrics: iotgw_mqtt_*. */
static const gw_forwarder_metrics READINGS_METRICS = {
    .connected = GW_G_MQTT_CONNECTED,
    .inflight = GW_G_MQTT_INFLIGHT,
    .connects = GW_M_MQTT_CONNECTS,
    .disconnects = GW_M_MQTT_DISCONNECTS,
    .publish_refused = GW_M_MQTT_PUBLISH_REFUSED,
    .cert_refused = GW_M_MQTT_CERT_REFUSED,
};

typedef struct inflight {
    int mid;
    int64_t id;
    char device[IOT_ID_MAX + 1]; /* named if the broker refuses it */
} inflight;

struct gw_forwarder {
    /* The options with their strings copied: the caller's may go away. */
    gw_forwarder_options opt;
    int broker;                        /* opt.brokers[broker] is the one used now */
    char host[GW_BROKER_HOST_MAX + 1]; /* its host and port, for connecting and log lines */
    int port;
    char ca_path[512];
    char cert_path[512];
    char key_path[512];
    char crl_path[512];
    char topic_prefix[128];
    gw_forwarder_store store;
    struct event_base *base;
    struct mosquitto *mosq;
    struct event *sock_ev;
    struct event *write_ev;
    struct event *misc_ev;
    struct event *wake_ev;            /* new rows, from the committer thread */
    struct event *retry_ev;           /* reconnect after a backoff */
    struct event *teardown_ev;        /* leave libmosquitto callbacks before destroying */
    struct event *deadline_ev;        /* CONNACK timeout */
    _Atomic gw_forwarder_state state; /* read by gw_forwarder_connected on any thread */
    int64_t cursor;                   /* last outbox id handed to libmosquitto */
    inflight *window;
    int window_cap;
    int n_inflight;
    bool rows_left; /* the last outbox query may have left rows behind (pump) */
    int64_t *acked; /* PUBACKed outbox ids not yet handed to the outbox */
    int n_acked;
    int attempt;              /* reconnects since the last success: the backoff exponent */
    bool backoff_held;        /* entered REFUSED: CONNACK does not reset `attempt`, a PUBACK does */
    bool acked_since_connect; /* a PUBACK came on this connection (MQTT 3.1.1 refusals) */
    char client_id[128];
    char status_topic[160]; /* gateway/<certificate CN>/status, "" if unknown or not readings */
    char gateway[IOT_ID_MAX + 1]; /* the certificate's CN, "gateway" if unknown */
    gw_forwarder_metrics metrics;
    char *msg; /* max_packet bytes: no message that fits is larger */
    /* TLS to the broker: built here rather than by libmosquitto so that the
     * broker's certificate is checked against the CRL in force. Rebuilt
     * when the identity generation changes (a reload), so each new
     * connection uses the CRL loaded last. */
    SSL_CTX *tls;
    uint64_t tls_generation;
    int tls_broker;   /* the broker whose name the context checks */
    bool crl_checked; /* the CRL in force was issued by mqtt_ca */
    int verify_error; /* X509_V_* of the last refused broker certificate, 0 if none */
    char verify_subject[256];
};

static int ex_forwarder = -1; /* SSL_CTX ex_data: gw_forwarder * */

static void schedule_reconnect(gw_forwarder *fw);
static void pump(gw_forwarder *fw);

const char *gw_forwarder_state_name(gw_forwarder_state s)
{
    switch (s) {
    case GW_FWD_IDLE:
        return "idle";
    case GW_FWD_CONNECTING:
        return "connecting";
    case GW_FWD_CONNECTED:
        return "connected";
    case GW_FWD_CLOSING:
        return "closing";
    case GW_FWD_REFUSED:
        return "refused";
    case GW_FWD_BACKOFF:
        return "backoff";
    case GW_FWD_STOPPING:
        return "stopping";
    case GW_FWD_STATE_COUNT:
        break;
    }
    return "invalid";
}

#define FWD_TO(state) (1u << (state))

/* The state diagram: the states each state may move to. Stopping is left
 * out: every state but stopping itself may enter it. */
static const unsigned fwd_next[GW_FWD_STATE_COUNT] = {
    [GW_FWD_IDLE] = FWD_TO(GW_FWD_BACKOFF),
    [GW_FWD_BACKOFF] = FWD_TO(GW_FWD_CONNECTING),
    [GW_FWD_CONNECTING] =
        FWD_TO(GW_FWD_CONNECTED) | FWD_TO(GW_FWD_CLOSING) | FWD_TO(GW_FWD_BACKOFF),
    [GW_FWD_CONNECTED] = FWD_TO(GW_FWD_CLOSING) | FWD_TO(GW_FWD_REFUSED),
    /* A refused PUBACK read in the same batch as the failure. */
    [GW_FWD_CLOSING] = FWD_TO(GW_FWD_BACKOFF) | FWD_TO(GW_FWD_REFUSED),
    [GW_FWD_REFUSED] = FWD_TO(GW_FWD_BACKOFF),
};

bool gw_forwarder_transition_allowed(gw_forwarder_state from, gw_forwarder_state to)
{
    if ((int)from < 0 || from >= GW_FWD_STATE_COUNT || (int)to < 0 || to >= GW_FWD_STATE_COUNT)
        return false;
    if (to == GW_FWD_STOPPING)
        return from != GW_FWD_STOPPING;
    return (fwd_next[from] & FWD_TO(to)) != 0;
}

/* The one place the state changes: a change the diagram does not have is
 * a bug, logged and not made. Counters and gauges that follow the
 * connection change here too. */
static bool set_state(gw_forwarder *fw, gw_forwarder_state to)
{
    gw_forwarder_state from = atomic_load(&fw->state);
    if (!gw_forwarder_transition_allowed(from, to)) {
        gw_log(GW_LOG_ERROR, "mqtt.invalid_transition", "from=%s to=%s",
               gw_forwarder_state_name(from), gw_forwarder_state_name(to));
        return false;
    }
    atomic_store(&fw->state, to);
    gw_log(GW_LOG_DEBUG, "mqtt.state", "from=%s to=%s", gw_forwarder_state_name(from),
           gw_forwarder_state_name(to));
    if (from == GW_FWD_CONNECTED) {
        gw_metric_add_chosen(fw->metrics.disconnects, 1);
        gw_gauge_set_chosen(fw->metrics.connected, 0);
    }
    if (to == GW_FWD_CONNECTED) {
        if (!fw->backoff_held)
            fw->attempt = 0;
        gw_metric_add_chosen(fw->metrics.connects, 1);
        gw_gauge_set_chosen(fw->metrics.connected, 1);
    }
    if (to == GW_FWD_REFUSED)
        fw->backoff_held = true;
    if (fw->opt.on_state != NULL)
        fw->opt.on_state(fw->opt.on_state_ctx, from, to);
    return true;
}

/* A failure noticed while a client exists; later ones are the same failure. */
static bool has_live_client(const gw_forwarder *fw)
{
    gw_forwarder_state s = atomic_load(&fw->state);
    return fw->mosq != NULL && (s == GW_FWD_CONNECTING || s == GW_FWD_CONNECTED);
}

/* PUBACKs are handed to the outbox once per socket event rather than one
 * by one: one lock and one committer wake-up for a whole batch. */
static void flush_acks(gw_forwarder *fw)
{
    if (fw->n_acked > 0)
        fw->store.ack(fw->store.ctx, fw->acked, (size_t)fw->n_acked);
    fw->n_acked = 0;
}

static void teardown(gw_forwarder *fw)
{
    flush_acks(fw);
    if (fw->sock_ev) {
        event_free(fw->sock_ev);
        fw->sock_ev = NULL;
    }
    if (fw->write_ev) {
        event_free(fw->write_ev);
        fw->write_ev = NULL;
    }
    if (fw->deadline_ev)
        event_del(fw->deadline_ev);
    if (fw->mosq) {
        mosquitto_destroy(fw->mosq);
        fw->mosq = NULL;
    }
    fw->n_inflight = 0;
    fw->cursor = 0;
    gw_gauge_set_chosen(fw->metrics.inflight, 0);
}

/* Logs and counts a refused broker certificate, once per connection
 * attempt; false if the last failure was not about the certificate. */
static bool broker_cert_refused(gw_forwarder *fw)
{
    if (fw->verify_error == 0)
        return false;
    gw_metric_add_chosen(fw->metrics.cert_refused, 1);
    gw_log(GW_LOG_ERROR, "mqtt.certificate_refused",
           "broker=%s:%d reason=\"%s\" subject=\"%s\" action=\"%s\"", fw->host, fw->port,
           X509_verify_cert_error_string(fw->verify_error), fw->verify_subject,
           fw->verify_error == X509_V_ERR_CERT_REVOKED
               ? "the broker's certificate is revoked in the CRL: give the broker a new "
                 "certificate (iotctl cert server); readings stay in the outbox"
               : "check the broker's certificate against mqtt_ca and mqtt_host; readings "
                 "stay in the outbox");
    fw->verify_error = 0;
    return true;
}

/* Called where a failure is noticed; the real work happens outside any
 * libmosquitto callback. */
static void connection_lost(gw_forwarder *fw, gw_forwarder_state to, const char *why)
{
    if (!has_live_client(fw))
        return;
    if (broker_cert_refused(fw))
        why = "broker certificate refused";
    gw_log(GW_LOG_WARN, "mqtt.disconnected", "broker=%s:%d reason=\"%s\"", fw->host, fw->port, why);
    if (set_state(fw, to))
        event_active(fw->teardown_ev, EV_TIMEOUT, 0);
}

static void on_teardown(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_forwarder *fw = arg;
    teardown(fw);
    if (set_state(fw, GW_FWD_BACKOFF))
        schedule_reconnect(fw);
}

/* MQTT packets go out together: libmosquitto writes each packet to the TLS
 * session on its own (one write per PUBLISH), so once connected the
 * session writes into a buffer in front of the socket (buffer_writes),
 * sent when the forwarder has done what an event brought (flush_writes,
 * from update_write_interest, which every path that writes ends with). A
 * PUBLISH is not published before it reaches the socket, and a reading
 * only leaves the outbox on its PUBACK, so nothing is lost by the wait. */
#define FWD_WRITE_BUFFER 32768

static void buffer_writes(gw_forwarder *fw)
{
    SSL *ssl = mosquitto_ssl_get(fw->mosq);
    BIO *sock = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
    if (sock == NULL || BIO_method_type(sock) == BIO_TYPE_BUFFER)
        return;
    BIO *buf = BIO_new(BIO_f_buffer());
    if (buf == NULL || BIO_set_write_buffer_size(buf, FWD_WRITE_BUFFER) != 1 ||
        BIO_up_ref(sock) != 1) {
        BIO_free(buf); /* unbuffered: one write per packet, as before */
        return;
    }
    BIO_push(buf, sock);
    SSL_set0_wbio(ssl, buf); /* the session's own reference to sock goes */
}

/* Sends what the buffer holds. False when the socket cannot take it all
 * now (the rest waits for it to be writable) or the connection failed. */
static bool flush_writes(gw_forwarder *fw)
{
    SSL *ssl = fw->mosq != NULL ? mosquitto_ssl_get(fw->mosq) : NULL;
    BIO *buf = ssl != NULL ? SSL_get_wbio(ssl) : NULL;
    if (buf == NULL || BIO_method_type(buf) != BIO_TYPE_BUFFER || BIO_wpending(buf) == 0)
        return true;
    if (BIO_flush(buf) == 1)
        return true;
    if (!BIO_should_retry(buf))
        connection_lost(fw, GW_FWD_CLOSING, "cannot write to the broker");
    return false;
}

static void update_write_interest(gw_forwarder *fw)
{
    bool held = !flush_writes(fw);
    if (held && atomic_load(&fw->state) != GW_FWD_CONNECTED)
        return; /* the write failed: the connection is being torn down */
    if (fw->mosq && fw->write_ev && (held || mosquitto_want_write(fw->mosq)))
        event_add(fw->write_ev, NULL);
}

/* Socket events are handed to mosquitto_loop with a zero timeout rather than
 * to mosquitto_loop_read/_write: only mosquitto_loop resumes a TLS handshake
 * that is still in progress (a TCP connect that had not completed when the
 * handshake started, as over a VPN with real latency). It polls the one
 * socket without waiting, so this is still event-driven. */
/* A non-blocking connect that failed (broker down) shows as a writable
 * socket with a pending error: without this check every write attempt
 * fails and the socket stays writable, a busy loop until the deadline. */
static bool connect_failed(evutil_socket_t fd, short what)
{
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == 0 && error != 0)
        return true;
    /* Writable means the connect finished; without a peer it failed (the
     * error may already have been taken by libmosquitto's TLS attempt). */
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    return (what & EV_WRITE) && getpeername(fd, (struct sockaddr *)&peer, &plen) != 0 &&
           errno == ENOTCONN;
}

/* With read-ahead, whole records may wait in the TLS session after
 * libmosquitto stopped reading (it reads a bounded number of packets per
 * call, each until the socket has no more); the socket will not report
 * them. One more read takes them; a partial record waits for the rest,
 * which the socket does report. */
static int read_buffered(gw_forwarder *fw)
{
    SSL *ssl = mosquitto_ssl_get(fw->mosq);
    if (ssl == NULL || !SSL_is_init_finished(ssl) || !SSL_has_pending(ssl))
        return MOSQ_ERR_SUCCESS;
    return mosquitto_loop_read(fw->mosq, 1);
}

/* Once connected, what the event says is read or written directly:
 * mosquitto_loop would first poll the socket and libmosquitto's wake-up
 * pipe (which it then reads a byte from), two system calls per event that
 * tell nothing new. */
static int loop_once(gw_forwarder *fw, short what)
{
    if (atomic_load(&fw->state) != GW_FWD_CONNECTED)
        return mosquitto_loop(fw->mosq, 0, 1);
    int rc = MOSQ_ERR_SUCCESS;
    if (what & EV_READ)
        rc = mosquitto_loop_read(fw->mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && fw->mosq != NULL && mosquitto_want_write(fw->mosq))
        rc = mosquitto_loop_write(fw->mosq, 1);
    return rc;
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    gw_forwarder *fw = arg;
    if (atomic_load(&fw->state) != GW_FWD_CONNECTED && connect_failed(fd, what)) {
        connection_lost(fw, GW_FWD_CLOSING, "connection refused or unreachable");
        return;
    }
    int rc = loop_once(fw, what);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = read_buffered(fw);
    flush_acks(fw);
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_lost(fw, GW_FWD_CLOSING, mosquitto_strerror(rc));
        return;
    }
    /* Refill once half the window is free: one outbox query per batch, not
     * one per PUBACK, and none when the last one found every row (new
     * readings wake the forwarder on their own). */
    if (fw->rows_left && fw->n_inflight <= fw->window_cap / 2)
        pump(fw);
    update_write_interest(fw);
}

static void on_misc(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_forwarder *fw = arg;
    if (fw->mosq == NULL)
        return;
    int rc = mosquitto_loop_misc(fw->mosq);
    if (rc != MOSQ_ERR_SUCCESS) {
        connection_lost(fw, GW_FWD_CLOSING, mosquitto_strerror(rc));
        return;
    }
    update_write_interest(fw);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    connection_lost(arg, GW_FWD_CLOSING, "no CONNACK within the connect timeout");
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc)
{
    (void)mosq;
    gw_forwarder *fw = arg;
    if (rc != 0) {
        gw_log(GW_LOG_ERROR, "mqtt.refused", "broker=%s:%d reason=\"%s\"", fw->host, fw->port,
               mosquitto_reason_string(rc));
        connection_lost(fw, GW_FWD_CLOSING, mosquitto_reason_string(rc));
        return;
    }
    if (!set_state(fw, GW_FWD_CONNECTED))
        return;
    fw->acked_since_connect = false;
    event_del(fw->deadline_ev);
    buffer_writes(fw);
    fw->cursor = 0;
    fw->n_inflight = 0;
    gw_log(GW_LOG_INFO, "mqtt.connected", "broker=%s:%d client_id=%s outbox_depth=%lld", fw->host,
           fw->port, fw->client_id, (long long)fw->store.depth(fw->store.ctx));
    if (fw->status_topic[0]) /* retained, so consumers see the state on subscribing */
        mosquitto_publish(fw->mosq, NULL, fw->status_topic, 6, "online", 1, true);
    pump(fw);
}

/* MQTT 3.1.1 has no negative PUBACK: a broker that will not take a
 * publish (RabbitMQ, for a topic its permissions refuse) closes the
 * connection. A connection closed with publishes unacknowledged and none
 * acknowledged since it opened is taken for that refusal: counted, logged,
 * and the backoff keeps growing until a PUBACK comes, rather than
 * reconnecting at once into the same refusal. */
static bool closed_on_refusal(gw_forwarder *fw, int rc)
{
    if (!fw->opt.mqtt311 || rc == 0 || fw->n_inflight == 0 || fw->acked_since_connect)
        return false;
    gw_metric_add_chosen(fw->metrics.publish_refused, 1);
    gw_log(GW_LOG_ERROR, "mqtt.publish_refused",
           "id=%lld reason=\"the broker closed the connection with %d publishes unacknowledged "
           "(MQTT 3.1.1 has no refusal code)\" action=\"kept in the outbox; check the broker's "
           "permissions for topic_prefix\"",
           (long long)fw->window[0].id, fw->n_inflight);
    return true;
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
    (void)mosq;
    gw_forwarder *fw = arg;
    if (closed_on_refusal(fw, rc))
        connection_lost(fw, GW_FWD_REFUSED, "closed with publishes unacknowledged");
    else
        connection_lost(fw, GW_FWD_CLOSING, rc == 0 ? "closed" : mosquitto_strerror(rc));
}

/* A row the broker can never take must not hold up the rows behind it:
 * it leaves the queue for the outbox's quarantine table (kept, counted,
 * logged) and publishing goes on with the next one. */
static void quarantine(gw_forwarder *fw, int64_t id, const char *device, const char *reason)
{
    gw_log(GW_LOG_ERROR, "outbox.quarantined",
           "id=%lld device=%s reason=%s action=\"kept in the quarantine table of the outbox; "
           "see docs/gateway.md, Quarantine\"",
           (long long)id, device, reason);
    fw->store.quarantine(fw->store.ctx, id, reason);
}

/* PUBACK reasons that refuse this one message for what it is, not the
 * gateway's rights or the broker's state: sending it again cannot help. */
static const char *unpublishable_reason(int reason)
{
    switch (reason) {
    case MQTT_RC_TOPIC_NAME_INVALID:
        return "broker_topic_name_invalid";
    case MQTT_RC_PACKET_TOO_LARGE:
        return "broker_packet_too_large";
    case MQTT_RC_PAYLOAD_FORMAT_INVALID:
        return "broker_payload_format_invalid";
    }
    return NULL;
}

/* MQTT 5 PUBACKs carry a reason: >= 0x80 means the broker did not take the
 * message (an ACL that does not match topic_prefix, for example). Deleting
 * it then would lose it silently, so the reading stays in the outbox, the
 * refusal is logged and counted, and the connection is restarted with
 * backoff: the outbox fills and devices see 503 until an operator acts. */
static void on_publish(struct mosquitto *mosq, void *arg, int mid, int reason,
                       const mosquitto_property *props)
{
    (void)mosq, (void)props;
    gw_forwarder *fw = arg;
    for (int i = 0; i < fw->n_inflight; i++) {
        if (fw->window[i].mid != mid)
            continue;
        int64_t id = fw->window[i].id;
        const char *poison = unpublishable_reason(reason);
        if (poison != NULL) {
            gw_metric_add_chosen(fw->metrics.publish_refused, 1);
            quarantine(fw, id, fw->window[i].device, poison);
            fw->window[i] = fw->window[--fw->n_inflight];
            gw_gauge_set_chosen(fw->metrics.inflight, fw->n_inflight);
            break;
        }
        if (reason >= 0x80) {
            gw_metric_add_chosen(fw->metrics.publish_refused, 1);
            gw_log(GW_LOG_ERROR, "mqtt.publish_refused",
                   "id=%lld reason=\"%s\" action=\"kept in the outbox; check the broker ACL "
                   "against topic_prefix\"",
                   (long long)id, mosquitto_reason_string(reason));
            if (has_live_client(fw))
                connection_lost(fw, GW_FWD_REFUSED, "the broker refused a publish");
            else if (atomic_load(&fw->state) == GW_FWD_CLOSING)
                set_state(fw, GW_FWD_REFUSED);
            return;
        }
        fw->backoff_held = false;
        fw->attempt = 0;
        fw->window[i] = fw->window[--fw->n_inflight];
        gw_gauge_set_chosen(fw->metrics.inflight, fw->n_inflight);
        fw->acked[fw->n_acked++] = id;
        fw->acked_since_connect = true;
        break;
    }
}

/* libmosquitto's refusals of one message for what it is (the broker's
 * maximum packet size from CONNACK, a topic or payload it cannot send). */
static const char *client_refusal_reason(int rc)
{
    switch (rc) {
    case MOSQ_ERR_OVERSIZE_PACKET:
    case MOSQ_ERR_PAYLOAD_SIZE:
        return "packet_too_large";
    case MOSQ_ERR_MALFORMED_UTF8:
    case MOSQ_ERR_INVAL:
        return "topic_invalid";
    }
    return NULL;
}

static int publish_row(const gw_outbox_row *row, void *arg)
{
    gw_forwarder *fw = arg;
    char topic[256];
    fw->cursor = row->id;
    bool security = fw->opt.stream == GW_STREAM_SECURITY;
    int tlen = security ? gw_message_security_topic(fw->gateway, row->device, topic, sizeof(topic))
                        : gw_message_topic(fw->topic_prefix, row->device, topic, sizeof(topic));
    if (tlen < 0) {
        quarantine(fw, row->id, row->device, "topic_too_long");
        return 0;
    }
    int len = security ? gw_message_security_full(fw->gateway, row->device, row->gseq, row->body,
                                                  row->body_len, fw->msg, fw->opt.max_packet)
                       : gw_message_full(row->device, fw->gateway, row->gseq, row->body,
                                         row->body_len, fw->msg, fw->opt.max_packet);
    if (len < 0) {
        /* Stored before mqtt_max_packet was lowered, or by an older
         * version that did not check at ingest. */
        quarantine(fw, row->id, row->device, "message_too_large");
        return 0;
    }
    int mid = 0;
    int rc = mosquitto_publish(fw->mosq, &mid, topic, len, fw->msg, 1, false);
    const char *poison = client_refusal_reason(rc);
    if (poison != NULL) {
        quarantine(fw, row->id, row->device, poison);
        return 0;
    }
    if (rc != MOSQ_ERR_SUCCESS) {
        fw->cursor = row->id - 1;
        connection_lost(fw, GW_FWD_CLOSING, mosquitto_strerror(rc));
        return 1;
    }
    inflight *slot = &fw->window[fw->n_inflight++];
    slot->mid = mid;
    slot->id = row->id;
    snprintf(slot->device, sizeof(slot->device), "%s", row->device);
    return 0;
}

/* Fills the in-flight window from the outbox. */
static void pump(gw_forwarder *fw)
{
    bool failed = false;
    while (atomic_load(&fw->state) == GW_FWD_CONNECTED && fw->mosq &&
           fw->n_inflight < fw->window_cap) {
        int count = 0;
        iot_err err = {0};
        if (fw->store.fetch(fw->store.ctx, fw->cursor, fw->window_cap - fw->n_inflight, publish_row,
                            fw, &count, &err) != IOT_OK) {
            gw_log(GW_LOG_ERROR, "outbox.read_failed", "error=\"%s\"", err.msg);
            failed = true;
            break;
        }
        /* Rows moved to quarantine advance the cursor without filling the
         * window: go on while rows come and the connection holds. */
        if (count == 0)
            break;
    }
    /* A full window (or a failed query) may have left rows behind. */
    fw->rows_left = fw->n_inflight >= fw->window_cap || failed;
    gw_gauge_set_chosen(fw->metrics.inflight, fw->n_inflight);
    update_write_interest(fw);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    pump(arg);
}

void gw_forwarder_notify(void *arg)
{
    gw_forwarder *fw = arg;
    event_active(fw->wake_ev, EV_READ, 0);
}

/* Records why the broker's certificate was refused, for connection_lost. */
static int verify_broker(int ok, X509_STORE_CTX *store)
{
    /* The broker's own certificate, once verified: its expiry is the one
     * certificate on the path the gateway does not hold a file of. */
    if (ok && X509_STORE_CTX_get_error_depth(store) == 0) {
        X509 *leaf = X509_STORE_CTX_get_current_cert(store);
        if (leaf != NULL)
            gw_cert_expiry_set(GW_CERT_BROKER, gw_asn1_time_unix(X509_get0_notAfter(leaf)));
    }
    if (ok)
        return 1;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    gw_forwarder *fw = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_forwarder) : NULL;
    if (fw != NULL && fw->verify_error == 0) {
        fw->verify_error = X509_STORE_CTX_get_error(store);
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        fw->verify_subject[0] = '\0';
        if (cert != NULL) /* a verified chain's subject, from our own CA: printable */
            X509_NAME_oneline(X509_get_subject_name(cert), fw->verify_subject,
                              (int)sizeof(fw->verify_subject));
        for (char *p = fw->verify_subject; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '?';
    }
    return 0;
}

static iot_status load_pem_cert(const char *path, X509 **out, iot_err *err)
{
    FILE *f = fopen(path, "r");
    *out = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ERR_clear_error();
    if (*out == NULL)
        return iot_err_set(err, IOT_ECORRUPT, "%s is not a readable PEM certificate", path);
    return IOT_OK;
}

/* The TLS settings libmosquitto would use (TLS 1.2 or later, the broker's
 * certificate verified against mqtt_ca and mqtt_host, our certificate and
 * key), plus the CRL in force when mqtt_ca issued it. */
static iot_status build_tls(gw_forwarder *fw, SSL_CTX **out, iot_err *err)
{
    const gw_forwarder_options *c = &fw->opt;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509 *ca = NULL;
    X509_CRL *crl = NULL;
    iot_status st = IOT_OK;
    *out = NULL;
    if (ctx == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "cannot create the TLS context for the broker");
        goto out;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* The broker's PUBACKs come many to a read rather than two reads each
     * (a record's header, then the rest); records read ahead are taken by
     * read_buffered. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_ex_data(ctx, ex_forwarder, fw);
    st = load_pem_cert(c->ca_path, &ca, err);
    if (st != IOT_OK)
        goto out;
    gw_cert_expiry_set(GW_CERT_MQTT_CA, gw_asn1_time_unix(X509_get0_notAfter(ca)));
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (SSL_CTX_load_verify_locations(ctx, c->ca_path, NULL) != 1) {
        st = iot_err_set(err, IOT_ECRYPTO, "cannot load the CA file %s (mqtt_ca)", c->ca_path);
        goto out;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert_path) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        st = iot_err_set(err, IOT_ECRYPTO, "cannot use mqtt_cert %s with mqtt_key %s", c->cert_path,
                         c->key_path);
        goto out;
    }
    gw_cert_expiry_set(GW_CERT_MQTT_CLIENT,
                       gw_asn1_time_unix(X509_get0_notAfter(SSL_CTX_get0_certificate(ctx))));
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, fw->host) != 1 &&
        X509_VERIFY_PARAM_set1_host(param, fw->host, 0) != 1) {
        st = iot_err_set(err, IOT_EINVAL, "mqtt_host '%s' cannot be checked against a certificate",
                         fw->host);
        goto out;
    }
    /* The CRL only applies to certificates its issuer signed: with
     * another CA for the broker, CRL checking would refuse every broker. */
    crl = gw_admission_crl(c->identity);
    fw->crl_checked =
        crl != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) == 0;
    if (fw->crl_checked) {
        if (X509_STORE_add_crl(store, crl) != 1) {
            st = iot_err_set(err, IOT_ECRYPTO, "cannot use the CRL for the broker connection");
            goto out;
        }
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_broker);
    *out = ctx;
    ctx = NULL;
out:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    X509_free(ca);
    X509_CRL_free(crl);
    return st;
}

/* Rebuilds the TLS context when the registry and CRL were reloaded. */
static int refresh_tls(gw_forwarder *fw)
{
    uint64_t generation = gw_admission_generation(fw->opt.identity);
    if (fw->tls != NULL && generation == fw->tls_generation && fw->broker == fw->tls_broker)
        return MOSQ_ERR_SUCCESS;
    SSL_CTX *ctx = NULL;
    iot_err err = {0};
    if (build_tls(fw, &ctx, &err) != IOT_OK) {
        gw_log(GW_LOG_ERROR, "mqtt.tls_setup_failed", "error=\"%s\"", err.msg);
        return MOSQ_ERR_TLS;
    }
    bool first = fw->tls == NULL;
    SSL_CTX_free(fw->tls);
    fw->tls = ctx;
    fw->tls_generation = generation;
    fw->tls_broker = fw->broker;
    if (first && !fw->crl_checked)
        gw_log(GW_LOG_WARN, "mqtt.crl_not_applicable",
               "mqtt_ca=%s crl=%s action=\"the CRL is not issued by mqtt_ca: the broker's "
               "certificate is not checked for revocation\"",
               fw->ca_path, fw->crl_path);
    return MOSQ_ERR_SUCCESS;
}

static int connect_now(gw_forwarder *fw)
{
    const gw_forwarder_options *c = &fw->opt;
    const gw_broker *b = &c->brokers[fw->broker];
    snprintf(fw->host, sizeof(fw->host), "%s", b->host);
    fw->port = b->port;
    int rc = refresh_tls(fw);
    if (rc != MOSQ_ERR_SUCCESS)
        return rc;
    fw->verify_error = 0;
    fw->mosq = mosquitto_new(fw->client_id, true, fw);
    if (fw->mosq == NULL)
        return MOSQ_ERR_NOMEM;
    mosquitto_connect_callback_set(fw->mosq, on_connect);
    mosquitto_disconnect_callback_set(fw->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(fw->mosq, on_publish);
    mosquitto_int_option(fw->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         c->mqtt311 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
    /* Our own window bounds what is in flight; libmosquitto must not hold back. */
    mosquitto_max_inflight_messages_set(fw->mosq, 0);
    /* Packets are already gathered into one write per event (read_buffered):
     * Nagle would only hold a publish back until the broker's ACK of the
     * previous one, which a waiting acknowledge = confirmed request feels. */
    mosquitto_int_option(fw->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* Our context as it is: libmosquitto adds nothing to it (no defaults). */
    rc = mosquitto_int_option(fw->mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_void_option(fw->mosq, MOSQ_OPT_SSL_CTX, fw->tls);
    if (rc == MOSQ_ERR_SUCCESS && fw->status_topic[0])
        rc = mosquitto_will_set(fw->mosq, fw->status_topic, 7, "offline", 1, true);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect_async(fw->mosq, fw->host, fw->port, (int)(c->keepalive_ms / 1000));
    if (rc != MOSQ_ERR_SUCCESS)
        return rc;
    int sock = mosquitto_socket(fw->mosq);
    if (sock < 0)
        return MOSQ_ERR_NO_CONN;
    fw->sock_ev = event_new(fw->base, sock, EV_READ | EV_PERSIST, on_socket_event, fw);
    fw->write_ev = event_new(fw->base, sock, EV_WRITE, on_socket_event, fw);
    if (fw->sock_ev == NULL || fw->write_ev == NULL)
        return MOSQ_ERR_NOMEM;
    event_add(fw->sock_ev, NULL);
    event_add(fw->write_ev, NULL);
    int64_t ms = c->connect_timeout_ms > 0 ? c->connect_timeout_ms : CONNECT_TIMEOUT_MS;
    struct timeval deadline = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(fw->deadline_ev, &deadline);
    return MOSQ_ERR_SUCCESS;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_forwarder *fw = arg;
    if (!set_state(fw, GW_FWD_CONNECTING))
        return;
    int rc = connect_now(fw);
    if (rc != MOSQ_ERR_SUCCESS) {
        broker_cert_refused(fw);
        gw_log(GW_LOG_WARN, "mqtt.connect_failed", "broker=%s:%d reason=\"%s\" attempt=%d",
               fw->host, fw->port,
               rc == MOSQ_ERR_ERRNO ? "connection refused or unreachable" : mosquitto_strerror(rc),
               fw->attempt);
        teardown(fw);
        if (set_state(fw, GW_FWD_BACKOFF))
            schedule_reconnect(fw);
    }
}

/* Exponential backoff with jitter: the delay doubles per failure up to the
 * cap, and a random half of it is taken off so many gateways do not
 * reconnect in step. */
static void schedule_reconnect(gw_forwarder *fw)
{
    const gw_forwarder_options *c = &fw->opt;
    /* With several brokers the next one is tried after the shortest delay;
     * the backoff grows once every broker has failed in turn. */
    if (c->n_brokers > 1 && !fw->backoff_held) {
        fw->broker = (fw->broker + 1) % c->n_brokers;
        if (fw->broker != 0) {
            struct timeval tv = {(time_t)(c->reconnect_min_ms / 1000),
                                 (suseconds_t)((c->reconnect_min_ms % 1000) * 1000)};
            event_add(fw->retry_ev, &tv);
            return;
        }
    }
    int64_t delay = c->reconnect_min_ms;
    for (int i = 0; i < fw->attempt && delay < c->reconnect_max_ms; i++)
        delay *= 2;
    if (delay > c->reconnect_max_ms)
        delay = c->reconnect_max_ms;
    unsigned int r = 0;
    RAND_bytes((unsigned char *)&r, sizeof(r));
    int64_t jittered = delay / 2 + (int64_t)(r % (unsigned int)(delay / 2 + 1));
    fw->attempt++;
    struct timeval tv = {(time_t)(jittered / 1000), (suseconds_t)((jittered % 1000) * 1000)};
    event_add(fw->retry_ev, &tv);
}

/* The broker knows the gateway by its certificate's CN (it uses the CN as
 * username and client id); the status topic is named after it. */
static void names_from_cert(gw_forwarder *fw)
{
    fw->status_topic[0] = '\0';
    snprintf(fw->gateway, sizeof(fw->gateway), "gateway");
    const char *cert_path = fw->cert_path;
    FILE *f = fopen(cert_path, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    char cn[IOT_ID_MAX + 1] = "";
    if (cert != NULL &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) >
            0 &&
        iot_id_is_valid(cn)) {
        snprintf(fw->gateway, sizeof(fw->gateway), "%s", cn);
        if (fw->opt.stream == GW_STREAM_READINGS)
            snprintf(fw->status_topic, sizeof(fw->status_topic), "gateway/%s/status", cn);
    }
    X509_free(cert);
}

/* Keeps the caller's strings: options are usually filled from a
 * configuration that may be freed or reloaded. */
static iot_status copy_options(gw_forwarder *fw, const gw_forwarder_options *opt, iot_err *err)
{
    struct {
        char *dst;
        size_t size;
        const char *src;
        const char *what;
    } strs[] = {
        {fw->ca_path, sizeof(fw->ca_path), opt->ca_path, "mqtt_ca"},
        {fw->cert_path, sizeof(fw->cert_path), opt->cert_path, "mqtt_cert"},
        {fw->key_path, sizeof(fw->key_path), opt->key_path, "mqtt_key"},
        {fw->crl_path, sizeof(fw->crl_path), opt->crl_path ? opt->crl_path : "", "crl_file"},
        {fw->topic_prefix, sizeof(fw->topic_prefix), opt->topic_prefix, "topic_prefix"},
    };
    fw->opt = *opt;
    fw->metrics = opt->metrics != NULL ? *opt->metrics : READINGS_METRICS;
    fw->opt.metrics = NULL; /* copied into fw->metrics */
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strs[i].src == NULL ||
            (size_t)snprintf(strs[i].dst, strs[i].size, "%s", strs[i].src) >= strs[i].size)
            return iot_err_set(err, IOT_EINVAL, "%s is missing or too long", strs[i].what);
    }
    if (opt->n_brokers < 1 || opt->n_brokers > GW_BROKERS_MAX)
        return iot_err_set(err, IOT_EINVAL, "mqtt_host names no broker");
    fw->broker = 0;
    snprintf(fw->host, sizeof(fw->host), "%s", opt->brokers[0].host);
    fw->port = opt->brokers[0].port;
    fw->opt.ca_path = fw->ca_path;
    fw->opt.cert_path = fw->cert_path;
    fw->opt.key_path = fw->key_path;
    fw->opt.crl_path = fw->crl_path;
    fw->opt.topic_prefix = fw->topic_prefix;
    fw->opt.client_id = NULL; /* copied into fw->client_id */
    /* The broker takes one connection per client id: the security stream's
     * is the readings' with a suffix. */
    const char *suffix = opt->stream == GW_STREAM_SECURITY ? "-security" : "";
    if (opt->client_id != NULL && opt->client_id[0]) {
        snprintf(fw->client_id, sizeof(fw->client_id), "%.100s%s", opt->client_id, suffix);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(fw->client_id, sizeof(fw->client_id), "iotgw-%s%s", host, suffix);
    }
    if (opt->identity == NULL || opt->max_packet == 0)
        return iot_err_set(err, IOT_EINVAL, "the forwarder needs the identity and a packet size");
    return IOT_OK;
}

iot_status gw_forwarder_start(const gw_forwarder_options *opt, const gw_forwarder_store *store,
                              struct event_base *base, gw_forwarder **out, iot_err *err)
{
    *out = NULL;
    gw_forwarder *fw = calloc(1, sizeof(*fw));
    if (fw == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    atomic_init(&fw->state, GW_FWD_IDLE);
    fw->store = *store;
    fw->base = base;
    iot_status st = copy_options(fw, opt, err);
    if (st != IOT_OK)
        goto out;
    if (ex_forwarder < 0)
        ex_forwarder = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    fw->window_cap = opt->inflight > 0 ? opt->inflight : 1;
    fw->window = calloc((size_t)fw->window_cap, sizeof(*fw->window));
    fw->acked = calloc((size_t)fw->window_cap, sizeof(*fw->acked));
    fw->msg = malloc(opt->max_packet);
    names_from_cert(fw);
    fw->wake_ev = event_new(base, -1, EV_READ | EV_PERSIST, on_wake, fw);
    fw->retry_ev = evtimer_new(base, on_retry, fw);
    fw->teardown_ev = evtimer_new(base, on_teardown, fw);
    fw->deadline_ev = evtimer_new(base, on_deadline, fw);
    fw->misc_ev = event_new(base, -1, EV_PERSIST, on_misc, fw);
    if (fw->window == NULL || fw->acked == NULL || fw->msg == NULL || fw->wake_ev == NULL ||
        fw->retry_ev == NULL || fw->teardown_ev == NULL || fw->deadline_ev == NULL ||
        fw->misc_ev == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    event_add(fw->wake_ev, NULL);
    struct timeval second = {1, 0};
    event_add(fw->misc_ev, &second);
    set_state(fw, GW_FWD_BACKOFF); /* the first attempt without delay */
    event_active(fw->retry_ev, EV_TIMEOUT, 0);
out:
    if (st != IOT_OK) {
        gw_forwarder_stop(fw);
        fw = NULL;
    }
    *out = fw;
    return st;
}

gw_forwarder_state gw_forwarder_get_state(const gw_forwarder *fw)
{
    return atomic_load(&((gw_forwarder *)fw)->state);
}

bool gw_forwarder_connected(const gw_forwarder *fw)
{
    return fw != NULL && gw_forwarder_get_state(fw) == GW_FWD_CONNECTED;
}

void gw_forwarder_stop(gw_forwarder *fw)
{
    if (fw == NULL)
        return;
    bool connected = atomic_load(&fw->state) == GW_FWD_CONNECTED;
    set_state(fw, GW_FWD_STOPPING);
    if (fw->mosq && connected) {
        /* A clean disconnect suppresses the will: say "offline" ourselves. */
        if (fw->status_topic[0])
            mosquitto_publish(fw->mosq, NULL, fw->status_topic, 7, "offline", 1, true);
        mosquitto_disconnect(fw->mosq);
        mosquitto_loop_write(fw->mosq, 1);
        flush_writes(fw);
    }
    teardown(fw);
    struct event *evs[] = {fw->wake_ev, fw->retry_ev, fw->teardown_ev, fw->deadline_ev,
                           fw->misc_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    SSL_CTX_free(fw->tls);
    free(fw->window);
    free(fw->acked);
    free(fw->msg);
    free(fw);
}
