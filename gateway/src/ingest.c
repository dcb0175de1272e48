#define _GNU_SOURCE /* getpeername flags, strdup */
#include "ingest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include <openssl/x509.h>

#include "addrlimit.h"
#include "iotd/protocol.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "tls.h"

#define HEADERS_MAX    (8 * 1024)
#define TELEMETRY_PATH IOTD_PROTOCOL_PATH

typedef struct gw_worker gw_worker;

struct gw_worker {
    gw_app *app;
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    struct evconnlistener *listener;
    struct event *done_ev;
    struct event *drain_ev;
    pthread_mutex_t lock;
    gw_store_job *done_head;    /* completed jobs, guarded by lock */
    int pending;                /* jobs in the outbox; worker thread only */
    gw_addr_limit *per_address; /* shared by the workers; NULL: no cap */
    gw_addr_rate *address_rate; /* shared by the workers; NULL: no limit */
    bool draining;
};

struct gw_ingest {
    gw_worker *workers;
    int n;
    gw_addr_limit *per_address; /* NULL: no per-address cap */
    gw_addr_rate *address_rate; /* NULL: no per-address connection rate */
};

/* Every connection must deliver each whole request within request_timeout
 * of being ready for it (accepted, or its previous answer sent): evhttp's
 * own timeout only bounds silence, so a client sending one byte a second
 * could otherwise hold a connection for hours. The deadline lives with the
 * connection's SSL and is freed with it, as does the connection's slot in
 * the per-address count. */
typedef struct conn_deadline {
    struct event *ev;
    struct event *admit; /* runs once, when the socket is attached */
    SSL *ssl;
    gw_addr_limit *per_address;
    gw_addr_rate *address_rate;
    gw_addr_key address;
    bool holds_slot; /* counted in per_address */
    /* Bytes of the request being received, counted against
     * max_buffered_bytes until it is answered or the connection goes. */
    struct evbuffer *input;
    struct evbuffer_cb_entry *input_cb;
    size_t buffered;
    bool over_budget;
} conn_deadline;

/* Request bytes buffered over all connections (max_buffered_bytes). */
static atomic_size_t buffered_total;
static size_t buffered_max;

static void buffered_release(conn_deadline *d)
{
    if (d->buffered == 0)
        return;
    atomic_fetch_sub(&buffered_total, d->buffered);
    gw_gauge_add(GW_G_REQUEST_BYTES, -(int64_t)d->buffered);
    d->buffered = 0;
}

/* Runs as decrypted bytes arrive. Each connection's request is capped on
 * its own (max_body, headers); this caps their sum, so that many slow
 * uploads cannot take the memory of the whole gateway: the connection that
 * would go beyond it is closed. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    conn_deadline *d = arg;
    if (info->n_added == 0 || d->over_budget)
        return;
    d->buffered += info->n_added;
    gw_gauge_add(GW_G_REQUEST_BYTES, (int64_t)info->n_added);
    size_t total = atomic_fetch_add(&buffered_total, info->n_added) + info->n_added;
    if (total <= buffered_max)
        return;
    d->over_budget = true;
    gw_refusal_inc(GW_R_OVER_CAPACITY);
    gw_log(GW_LOG_WARN, "connection.refused",
           "peer=%s reason=over_capacity detail=\"max_buffered_bytes reached\" buffered=%zu",
           gw_tls_peer(d->ssl), total);
    int sock = SSL_get_fd(d->ssl);
    if (sock >= 0)
        shutdown(sock, SHUT_RDWR);
}

static int ex_deadline = -1;
static struct timeval request_timeout;

static void deadline_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    conn_deadline *d = ptr;
    if (d != NULL) {
        buffered_release(d);
        if (d->input_cb != NULL)
            evbuffer_remove_cb_entry(d->input, d->input_cb);
        if (d->holds_slot && gw_addr_limit_release(d->per_address, &d->address))
            gw_gauge_add(GW_G_CONNECTED_ADDRESSES, -1);
        event_free(d->ev);
        if (d->admit)
            event_free(d->admit);
        free(d);
    }
}

static double now_mono(void);

/* Counts the new connection against its address once evhttp has attached
 * the socket (the bufferevent is made before the socket is known): first
 * the rate of new connections, then the connections open at once. Over
 * either limit it is shut down before its handshake costs anything. */
static void on_admit(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_deadline *d = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int sock = SSL_get_fd(d->ssl);
    /* Kept with the connection now, while the socket is connected: a
     * refusal logged after the peer has gone still names it. */
    (void)gw_tls_peer(d->ssl);
    if (d->per_address == NULL && d->address_rate == NULL)
        return;
    if (sock < 0 || getpeername(sock, (struct sockaddr *)&ss, &len) != 0 ||
        !gw_addr_key_of((struct sockaddr *)&ss, len, &d->address))
        return; /* not an IP socket, or already gone */
    gw_refusal why = GW_R_RATE_LIMITED;
    const char *detail = "connection_rate_per_address exceeded";
    if (d->address_rate == NULL || gw_addr_rate_take(d->address_rate, &d->address, now_mono())) {
        if (d->per_address == NULL)
            return;
        bool first = false;
        if (gw_addr_limit_acquire(d->per_address, &d->address, &first)) {
            d->holds_slot = true;
            if (first)
                gw_gauge_add(GW_G_CONNECTED_ADDRESSES, 1);
            return;
        }
        why = GW_R_OVER_CAPACITY;
        detail = "max_connections_per_address reached";
    }
    char addr[64];
    gw_addr_key_format(&d->address, addr, sizeof(addr));
    gw_refusal_inc(why);
    gw_log(GW_LOG_WARN, "connection.refused", "address=%s reason=%s detail=\"%s\"", addr,
           gw_refusal_name(why), detail);
    shutdown(sock, SHUT_RDWR);
}

/* Shutting the socket down makes evhttp see end-of-stream and free the
 * connection through its normal path. */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_deadline *d = arg;
    int sock = SSL_get_fd(d->ssl);
    gw_refusal_inc(GW_R_REQUEST_TIMEOUT);
    gw_log(GW_LOG_WARN, "request.timeout",
           "peer=%s detail=\"no complete request within request_timeout\"", gw_tls_peer(d->ssl));
    if (sock >= 0)
        shutdown(sock, SHUT_RDWR);
}

/* The request is answered: its bytes are no longer buffered, and the
 * clock starts for the next one. */
static void deadline_arm(SSL *ssl)
{
    conn_deadline *d = ssl ? SSL_get_ex_data(ssl, ex_deadline) : NULL;
    if (d != NULL) {
        buffered_release(d);
        evtimer_add(d->ev, &request_timeout);
    }
}

static void deadline_disarm(SSL *ssl)
{
    conn_deadline *d = ssl ? SSL_get_ex_data(ssl, ex_deadline) : NULL;
    if (d != NULL)
        evtimer_del(d->ev);
}

/* A request waiting for the outbox. */
typedef struct ingest_job {
    gw_store_job job; /* first: the outbox hands this pointer back */
    struct evhttp_request *req;
    gw_worker *worker;
    uint32_t dropped; /* what the device reported losing, carried by items[0] */
} ingest_job;

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void peer_string(struct evhttp_request *req, char *buf, size_t size)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn)
        evhttp_connection_get_peer(conn, &host, &port);
    snprintf(buf, size, "%s:%u", host ? host : "?", (unsigned)port);
}

static SSL *request_ssl(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    return bev ? bufferevent_openssl_get_ssl(bev) : NULL;
}

/* Every reply is JSON: `text` is a JSON document (or NULL for no body). */
static void reply_text(struct evhttp_request *req, int status, const char *reason, const char *text,
                       int retry_after)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    deadline_arm(request_ssl(req)); /* the clock starts for the next request */
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (retry_after > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry_after);
        evhttp_add_header(h, "Retry-After", v);
    }
    struct evbuffer *out = evbuffer_new();
    if (out && text) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
    }
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
    evhttp_send_reply(req, status, reason, out);
    /* evhttp queues the headers and the body as two chunks, and
     * bufferevent_openssl writes each chunk as its own TLS record (two
     * encryptions, two system calls). The queue is written when the socket
     * is next writable, so joining it here sends the answer as one record. */
    if (bev != NULL)
        evbuffer_pullup(bufferevent_get_output(bev), -1);
    if (out)
        evbuffer_free(out);
}

static void reply_json(struct evhttp_request *req, int status, const char *reason, cJSON *body,
                       int retry_after)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    reply_text(req, status, reason, text, retry_after);
    cJSON_free(text);
}

/* `detail` must already be safe text. */
static void reply_error(struct evhttp_request *req, int status, const char *reason,
                        const char *code, const char *detail, int retry_after)
{
    cJSON *body = cJSON_CreateObject();
    if (body) {
        cJSON_AddStringToObject(body, "error", code);
        cJSON_AddStringToObject(body, "detail", detail);
    }
    reply_json(req, status, reason, body, retry_after);
    cJSON_Delete(body);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    }
    return "Error";
}

/* Logs, counts and answers a refusal. */
static void refuse(struct evhttp_request *req, gw_refusal why, int status, const char *code,
                   const char *device, const char *detail, int retry_after)
{
    char peer[80];
    peer_string(req, peer, sizeof(peer));
    gw_refusal_inc(why);
    gw_log(gw_refusal_is_security(why) ? GW_LOG_WARN : GW_LOG_INFO, "request.refused",
           "peer=%s device=%s status=%d error=%s class=%s detail=\"%s\"", peer,
           device && device[0] ? device : "-", status, code,
           gw_refusal_is_security(why) ? "security" : "quality", detail);
    reply_error(req, status, reason_phrase(status), code, detail, retry_after);
}

/* The device speaking on this connection, re-checked per request so a
 * revocation loaded after the handshake takes effect at once. */
/* Development mode only: a device without a certificate names itself. */
static gw_id_verdict header_identity(gw_worker *w, struct evhttp_request *req,
                                     char device[IOT_ID_MAX + 1])
{
    const char *name = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Device-Id");
    if (name == NULL || !iot_id_is_valid(name))
        return GW_ID_UNKNOWN;
    gw_id_verdict v = gw_identity_check_name(w->app->identity, name);
    if (v == GW_ID_OK)
        snprintf(device, IOT_ID_MAX + 1, "%s", name);
    return v;
}

/* The device speaking on this connection, re-checked per request so a
 * revocation loaded after the handshake takes effect at once. */
static bool authenticate(gw_worker *w, struct evhttp_request *req, char device[IOT_ID_MAX + 1])
{
    SSL *ssl = request_ssl(req);
    gw_id_verdict v;
    if (ssl != NULL && SSL_get0_peer_certificate(ssl) != NULL)
        v = gw_tls_peer_device(ssl, w->app->identity, device);
    else if (!w->app->cfg.require_client_cert || !w->app->cfg.device_tls)
        v = header_identity(w, req, device);
    else
        v = GW_ID_UNKNOWN;
    if (v == GW_ID_OK)
        return true;
    const char *code = v == GW_ID_REVOKED ? "device_revoked" : "device_unknown";
    /* The log names who was refused: the certificate's CN when there is
     * one (escaped by the log writer; it is not an identity). */
    char cn[IOT_ID_MAX + 1] = "";
    X509 *cert = ssl != NULL ? SSL_get0_peer_certificate(ssl) : NULL;
    if (cert != NULL)
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    /* This identity may no longer speak: end the connection after the answer. */
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    refuse(req, gw_id_verdict_refusal(v), 403, code, cn, gw_id_verdict_name(v), 0);
    return false;
}

/* The message of every reading must fit in the broker's packet limit:
 * checked here, before anything is stored, so no acknowledged reading can
 * be one the broker refuses (it would wait at the head of the outbox). */
typedef struct oversize {
    size_t reading;
    size_t tail_len;
    size_t tail_max;
} oversize;

/* 0: built; -1: out of memory; -2: a reading too large (see *big). */
static int build_items(const gw_batch *batch, double rx, size_t tail_max, gw_store_item **out,
                       oversize *big)
{
    gw_store_item *items = calloc(batch->n_readings, sizeof(*items));
    if (items == NULL)
        return -1;
    int rc = 0;
    size_t i = 0;
    for (; i < batch->n_readings; i++) {
        uint32_t dropped = (i == 0 && batch->has_dropped) ? batch->dropped : 0;
        items[i].has_dseq = batch->readings[i].has_seq;
        items[i].dseq = batch->readings[i].seq;
        if (gw_message_tail(batch, i, rx, dropped, &items[i].body, &items[i].body_len) != 0) {
            rc = -1;
            break;
        }
        if (items[i].body_len > tail_max) {
            *big = (oversize){i, items[i].body_len, tail_max};
            free(items[i].body);
            rc = -2;
            break;
        }
    }
    if (rc != 0) {
        for (size_t j = 0; j < i; j++)
            free(items[j].body);
        free(items);
        return rc;
    }
    *out = items;
    return 0;
}

static void job_done(gw_store_job *job)
{
    ingest_job *ij = (ingest_job *)job;
    gw_worker *w = ij->worker;
    pthread_mutex_lock(&w->lock);
    job->next = w->done_head;
    w->done_head = job;
    pthread_mutex_unlock(&w->lock);
    event_active(w->done_ev, EV_READ, 0);
}

static void answer_job(gw_worker *w, ingest_job *ij)
{
    gw_store_job *job = &ij->job;
    int retry = (int)w->app->cfg.retry_after_s;
    switch (job->result) {
    case GW_STORE_OK: {
        /* The report travels with the first reading: a resent request whose
         * first reading is a duplicate was counted when it was stored. */
        if (ij->dropped > 0 && job->first_stored) {
            gw_metric_add(GW_M_READINGS_DROPPED_BY_DEVICES, ij->dropped);
            gw_log(GW_LOG_WARN, "device.dropped", "device=%s dropped=%u", job->device,
                   (unsigned)ij->dropped);
        }
        if (job->duplicates > 0) {
            gw_refusal_inc(GW_R_REPLAY);
            gw_log(GW_LOG_INFO, "reading.duplicate", "device=%s duplicates=%zu stored=%zu",
                   job->device, job->duplicates, job->stored);
        }
        /* The answer to every stored request: formatted directly, as it is
         * two counts (cJSON would allocate a tree and print them as
         * doubles). */
        char body[64];
        snprintf(body, sizeof(body), "{\"stored\":%zu,\"duplicates\":%zu}", job->stored,
                 job->duplicates);
        reply_text(ij->req, 200, "OK", body, 0);
        break;
    }
    case GW_STORE_FULL:
        refuse(ij->req, GW_R_OUTBOX_FULL, 503, "outbox_full", job->device,
               "the gateway's outbox is full; retry later", retry);
        break;
    case GW_STORE_DEVICE_FULL:
        refuse(ij->req, GW_R_OUTBOX_DEVICE_SHARE, 503, "outbox_device_share_full", job->device,
               "this device holds its whole share of the gateway's outbox (outbox_device_share); "
               "retry later",
               retry);
        break;
    case GW_STORE_ERROR:
        refuse(ij->req, GW_R_STORAGE_ERROR, 503, "storage_unavailable", job->device,
               "the gateway cannot write to its outbox; retry later", retry);
        break;
    case GW_STORE_SHUTDOWN:
        refuse(ij->req, GW_R_STORAGE_ERROR, 503, "shutting_down", job->device,
               "the gateway is shutting down; retry later", retry);
        break;
    }
    gw_store_job_free_items(job);
    free(ij);
    w->pending--;
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    gw_store_job *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->lock);
    while (list) {
        gw_store_job *next = list->next;
        answer_job(w, (ingest_job *)list);
        list = next;
    }
}

/* Validated body in, outbox job out; the reply waits for the outbox. */
static void submit(gw_worker *w, struct evhttp_request *req, const char *device,
                   const gw_batch *batch, double rx)
{
    const gw_config *cfg = &w->app->cfg;
    size_t tail_max = gw_message_tail_max(cfg->topic_prefix, device, cfg->mqtt_max_packet);
    ingest_job *ij = calloc(1, sizeof(*ij));
    gw_store_item *items = NULL;
    oversize big = {0};
    int rc = ij != NULL ? build_items(batch, rx, tail_max, &items, &big) : -1;
    if (rc == -2) {
        free(ij);
        char detail[160];
        snprintf(detail, sizeof(detail),
                 "reading %zu would be an MQTT message %zu bytes over the broker's limit "
                 "(mqtt_max_packet); send fewer values per reading",
                 big.reading, big.tail_len - big.tail_max);
        refuse(req, GW_R_PAYLOAD_TOO_LARGE, 413, "reading_too_large", device, detail, 0);
        return;
    }
    if (rc != 0) {
        free(ij);
        refuse(req, GW_R_STORAGE_ERROR, 503, "storage_unavailable", device,
               "the gateway is out of memory; retry later", (int)cfg->retry_after_s);
        return;
    }
    snprintf(ij->job.device, sizeof(ij->job.device), "%s", device);
    ij->job.items = items;
    ij->job.n_items = batch->n_readings;
    ij->job.done = job_done;
    ij->req = req;
    ij->worker = w;
    ij->dropped = batch->has_dropped ? batch->dropped : 0;
    w->pending++;
    gw_outbox_submit(w->app->outbox, &ij->job);
}

/* evhttp routes on the percent-decoded path, so "/v1/telemetry%00x" or
 * "/v1/%74elemetry" would reach this handler. A strict server accepts its
 * documented target only: the raw path exactly, no query, no fragment.
 * Returns NULL when the target is exactly that, else the refusal's detail. */
static const char *target_problem(struct evhttp_request *req, int *status)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    *status = 400;
    if (path == NULL || strchr(evhttp_request_get_uri(req), '%') != NULL)
        return "percent-encoding is not accepted in the request target; use " TELEMETRY_PATH;
    if (evhttp_uri_get_query(uri) != NULL || evhttp_uri_get_fragment(uri) != NULL)
        return "the request target takes no query; use " TELEMETRY_PATH;
    *status = 404;
    if (strcmp(path, TELEMETRY_PATH) != 0)
        return "the only endpoint is POST " TELEMETRY_PATH;
    return NULL;
}

static void handle_telemetry(struct evhttp_request *req, void *arg)
{
    gw_worker *w = arg;
    gw_app *app = w->app;
    char device[IOT_ID_MAX + 1] = "";
    gw_metric_inc(GW_M_REQUESTS);
    deadline_disarm(request_ssl(req));
    if (!authenticate(w, req, device))
        return;
    int status = 0;
    const char *bad_target = target_problem(req, &status);
    if (bad_target != NULL) {
        refuse(req, GW_R_HTTP_PROTOCOL, status, status == 404 ? "not_found" : "invalid_target",
               device, bad_target, 0);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
        refuse(req, GW_R_HTTP_PROTOCOL, 405, "method_not_allowed", device,
               "use POST for " TELEMETRY_PATH, 0);
        return;
    }
    if (atomic_load(&app->draining) || w->draining) {
        refuse(req, GW_R_STORAGE_ERROR, 503, "shutting_down", device,
               "the gateway is shutting down; retry later", (int)app->cfg.retry_after_s);
        return;
    }
    const char *ctype = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    gw_content_type ct;
    if (ctype == NULL || gw_content_type_parse(ctype, &ct) != 0) {
        refuse(req, GW_R_HTTP_PROTOCOL, 415, "unsupported_media_type", device,
               "use application/senml+json or application/json", 0);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > app->limits.max_body) {
        refuse(req, GW_R_PAYLOAD_TOO_LARGE, 413, "payload_too_large", device,
               "the body is larger than the gateway accepts", 0);
        return;
    }
    int retry_after = 0;
    if (!gw_ratelimit_take(app->ratelimit, device, now_mono(), &retry_after)) {
        refuse(req, GW_R_RATE_LIMITED, 429, "rate_limited", device,
               "this device is sending faster than its rate limit", retry_after);
        return;
    }
    const char *body = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
    double rx = now_wall();
    gw_batch batch;
    gw_payload_error perr;
    memset(&batch, 0, sizeof(batch));
    if (gw_payload_parse(body, len, ct, device, rx, &app->limits, &batch, &perr) != 0) {
        gw_refusal why = perr.cls == GW_PAYLOAD_SECURITY ? GW_R_PAYLOAD_SECURITY
                         : perr.http_status == 413       ? GW_R_PAYLOAD_TOO_LARGE
                         : perr.http_status == 403       ? GW_R_IDENTITY_MISMATCH
                                                         : GW_R_PAYLOAD_INVALID;
        if (perr.http_status == 403)
            why = GW_R_IDENTITY_MISMATCH;
        refuse(req, why, perr.http_status, perr.code, device, perr.detail, 0);
        return;
    }
    submit(w, req, device, &batch, rx);
    gw_batch_free(&batch);
}

static void handle_other(struct evhttp_request *req, void *arg)
{
    gw_worker *w = arg;
    char device[IOT_ID_MAX + 1] = "";
    gw_metric_inc(GW_M_REQUESTS);
    deadline_disarm(request_ssl(req));
    if (!authenticate(w, req, device))
        return;
    refuse(req, GW_R_HTTP_PROTOCOL, 404, "not_found", device,
           "the only endpoint is POST " TELEMETRY_PATH, 0);
}

static struct bufferevent *make_tls_bev(struct event_base *base, void *arg)
{
    gw_worker *w = arg;
    SSL *ssl = gw_tls_new_connection(w->app->device_tls);
    if (ssl == NULL) {
        /* evhttp would treat a NULL bufferevent as "use plaintext": never. */
        gw_log(GW_LOG_ERROR, "gateway.out_of_memory",
               "detail=\"cannot create a TLS session; stopping rather than serve plaintext\"");
        abort();
    }
    gw_metric_inc(GW_M_CONNECTIONS_ACCEPTED);
    conn_deadline *d = calloc(1, sizeof(*d));
    if (d != NULL && (d->ev = evtimer_new(base, on_deadline, d)) != NULL) {
        d->ssl = ssl;
        d->per_address = w->per_address;
        d->address_rate = w->address_rate;
        SSL_set_ex_data(ssl, ex_deadline, d);
        evtimer_add(d->ev, &request_timeout); /* handshake and first request */
        if ((d->admit = event_new(base, -1, 0, on_admit, d)) != NULL)
            event_active(d->admit, EV_TIMEOUT, 0);
    } else {
        free(d);
        d = NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    if (bev != NULL && d != NULL) {
        d->input = bufferevent_get_input(bev);
        d->input_cb = evbuffer_add_cb(d->input, on_input, d);
    }
    return bev;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_worker *w = arg;
    if (!w->draining) {
        w->draining = true;
        if (w->listener)
            evconnlistener_disable(w->listener);
    }
    if (w->pending == 0)
        event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

/* Binds and listens on device_listen with SO_REUSEPORT: one socket per
 * worker, so the kernel spreads connections evenly over the workers (one
 * socket shared by all lets whichever loop wakes first take them all). The
 * outbox lock (outbox.c) keeps a second gateway from joining the port. */
static iot_status open_listener(const char *addr, evutil_socket_t *out, iot_err *err)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) != 0)
        return iot_err_set(err, IOT_EINVAL, "device_listen '%s' is not host:port", addr);
    evutil_socket_t fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return iot_err_set(err, IOT_EIO, "cannot create a socket: %s", strerror(errno));
    /* Nagle off (accepted sockets inherit it): an answer goes out as two
     * TLS records, and the second must not wait for the device's delayed
     * ACK of the first, which costs 40 ms per request on keep-alive. */
    int one = 1;
    if (evutil_make_listen_socket_reuseable(fd) != 0 ||
        evutil_make_listen_socket_reuseable_port(fd) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 || listen(fd, 1024) != 0) {
        int saved = errno;
        close(fd);
        return iot_err_set(err, IOT_EIO,
                           "cannot listen on %s: %s (is another process using the port?)", addr,
                           strerror(saved));
    }
    *out = fd;
    return IOT_OK;
}

static iot_status worker_init(gw_app *app, gw_worker *w, iot_err *err)
{
    w->app = app;
    pthread_mutex_init(&w->lock, NULL);
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (w->http == NULL)
        return iot_err_set(err, IOT_ENOMEM, "cannot create an event loop");
    /* Headroom over the payload cap so slightly larger bodies reach us and
     * get the JSON 413; anything bigger is cut by evhttp itself. */
    evhttp_set_max_body_size(w->http, (ev_ssize_t)(app->limits.max_body + 64 * 1024));
    evhttp_set_max_headers_size(w->http, HEADERS_MAX);
    struct timeval tv = {(time_t)(app->cfg.request_timeout_ms / 1000),
                         (suseconds_t)((app->cfg.request_timeout_ms % 1000) * 1000)};
    evhttp_set_timeout_tv(w->http, &tv);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_POST | EVHTTP_REQ_GET | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "application/json");
    if (app->cfg.device_tls)
        evhttp_set_bevcb(w->http, make_tls_bev, w);
    evhttp_set_cb(w->http, TELEMETRY_PATH, handle_telemetry, w);
    evhttp_set_gencb(w->http, handle_other, w);

    evutil_socket_t fd = -1;
    iot_status st = open_listener(app->cfg.device_listen, &fd, err);
    if (st != IOT_OK)
        return st;
    w->listener = evconnlistener_new(w->base, NULL, NULL,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (w->listener == NULL) {
        close(fd);
        return iot_err_set(err, IOT_EIO, "cannot watch the listening socket");
    }
    if (evhttp_bind_listener(w->http, w->listener) == NULL)
        return iot_err_set(err, IOT_EIO, "cannot serve HTTP on %s", app->cfg.device_listen);
    w->done_ev = event_new(w->base, -1, EV_PERSIST | EV_READ, on_jobs_done, w);
    w->drain_ev = event_new(w->base, -1, EV_PERSIST, on_drain_tick, w);
    if (w->done_ev == NULL || w->drain_ev == NULL)
        return iot_err_set(err, IOT_ENOMEM, "cannot create events");
    /* Keeps the loop alive while idle; activated from the committer. */
    event_add(w->done_ev, NULL);
    return IOT_OK;
}

static void worker_free(gw_worker *w)
{
    /* Jobs finished after the loop stopped: their connections are gone. */
    while (w->done_head) {
        gw_store_job *next = w->done_head->next;
        gw_store_job_free_items(w->done_head);
        free(w->done_head);
        w->done_head = next;
    }
    if (w->done_ev)
        event_free(w->done_ev);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->http)
        evhttp_free(w->http); /* also frees the bound listener */
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->lock);
}

iot_status gw_ingest_start(gw_app *app, int workers, gw_ingest **out, iot_err *err)
{
    *out = NULL;
    if (ex_deadline < 0)
        ex_deadline = SSL_get_ex_new_index(0, NULL, NULL, NULL, deadline_free);
    request_timeout.tv_sec = (time_t)(app->cfg.request_timeout_ms / 1000);
    request_timeout.tv_usec = (suseconds_t)((app->cfg.request_timeout_ms % 1000) * 1000);
    buffered_max = app->cfg.max_buffered_bytes;
    gw_ingest *in = calloc(1, sizeof(*in));
    if (in == NULL || (in->workers = calloc((size_t)workers, sizeof(gw_worker))) == NULL) {
        free(in);
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    }
    in->n = workers;
    iot_status st = IOT_OK;
    int per_address = app->cfg.max_connections_per_address;
    if (per_address > 0 && app->cfg.device_tls) {
        in->per_address =
            gw_addr_limit_new((uint32_t)per_address, (uint32_t)app->cfg.max_connections);
        if (in->per_address == NULL)
            st = iot_err_set(err, IOT_ENOMEM, "out of memory for the per-address connection table");
    }
    if (st == IOT_OK && app->cfg.connection_rate_per_address > 0 && app->cfg.device_tls) {
        in->address_rate = gw_addr_rate_new(app->cfg.connection_rate_per_address,
                                            app->cfg.connection_burst_per_address, 0);
        if (in->address_rate == NULL)
            st = iot_err_set(err, IOT_ENOMEM, "out of memory for the per-address rate table");
    }
    for (int i = 0; i < workers && st == IOT_OK; i++) {
        in->workers[i].per_address = in->per_address;
        in->workers[i].address_rate = in->address_rate;
        st = worker_init(app, &in->workers[i], err);
    }
    for (int i = 0; i < workers && st == IOT_OK; i++)
        if (pthread_create(&in->workers[i].thread, NULL, worker_main, &in->workers[i]) != 0)
            st = iot_err_set(err, IOT_EIO, "cannot start worker thread %d", i);
    if (st != IOT_OK) {
        /* Threads that started are stopped by gw_ingest_stop's path. */
        for (int i = 0; i < workers; i++)
            if (in->workers[i].thread)
                event_base_loopbreak(in->workers[i].base);
        for (int i = 0; i < workers; i++) {
            if (in->workers[i].thread)
                pthread_join(in->workers[i].thread, NULL);
            worker_free(&in->workers[i]);
        }
        gw_addr_limit_free(in->per_address);
        gw_addr_rate_free(in->address_rate);
        free(in->workers);
        free(in);
        return st;
    }
    *out = in;
    return IOT_OK;
}

void gw_ingest_stop(gw_ingest *in, int grace_ms)
{
    if (in == NULL)
        return;
    struct timeval tick = {0, 50 * 1000};
    for (int i = 0; i < in->n; i++)
        event_add(in->workers[i].drain_ev, &tick);
    /* Past the grace period, stop whatever is still waiting. */
    struct timeval grace = {grace_ms / 1000, (grace_ms % 1000) * 1000};
    for (int i = 0; i < in->n; i++)
        event_base_loopexit(in->workers[i].base, &grace);
    for (int i = 0; i < in->n; i++)
        pthread_join(in->workers[i].thread, NULL);
}

void gw_ingest_free(gw_ingest *in)
{
    if (in == NULL)
        return;
    for (int i = 0; i < in->n; i++)
        worker_free(&in->workers[i]); /* frees the connections, which give back their slots */
    gw_addr_limit_free(in->per_address);
    gw_addr_rate_free(in->address_rate);
    free(in->workers);
    free(in);
}
