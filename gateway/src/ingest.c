#define _GNU_SOURCE /* SOCK_NONBLOCK, SOCK_CLOEXEC */
#include "ingest.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "addrlimit.h"
#include "conn.h"
#include "est.h"
#include "iotd/protocol.h"
#include "iotd/update.h"
#include "proxyv2.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "router.h"
#include "fleet.h"
#include "health.h"
#include "updates.h"

typedef struct gw_worker gw_worker;

struct gw_worker {
    gw_app *app;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *done_ev;
    struct event *drain_ev;
    gw_conn_env env; /* this loop's connections */
    pthread_mutex_t lock;
    gw_store_job *done_head; /* completed jobs, guarded by lock */
    gw_est_job *est_head;    /* enrollment requests handed back, guarded by lock */
    int pending;             /* jobs in the outbox; worker thread only */
    bool draining;
};

struct gw_ingest {
    gw_worker *workers;
    int n;
    gw_addr_limit *per_address; /* NULL: no per-address cap */
    gw_addr_rate *address_rate; /* NULL: no per-address connection rate */
    gw_proxy_from *proxy_from;  /* NULL: no PROXY headers looked for */
};

static void handle_telemetry(gw_conn *c, gw_http_request *req, const char *device);
static void handle_health(gw_conn *c, gw_http_request *req, const char *device);

/* The device listener's endpoints (router.h). A new endpoint is a row
 * here and its handler; a row callable by a device that is not admitted
 * says .anyone = true. */
// clang-format off
static const gw_route ROUTES[] = {
    {.method = HTTP_POST, .path = IOTD_PROTOCOL_PATH, .handler = handle_telemetry, .body_max = GW_ROUTE_BODY_CONFIGURED},
    {.method = HTTP_POST, .path = IOTD_HEALTH_PATH, .handler = handle_health, .body_max = GW_HEALTH_BODY_MAX},
    {.method = HTTP_GET, .path = IOTD_UPDATE_MANIFEST_PATH, .handler = gw_updates_manifest},
    {.method = HTTP_GET, .path = GW_UPDATES_IMAGE_PREFIX, .prefix = true, .handler = gw_updates_image},
    {.method = HTTP_POST, .path = IOTD_UPDATE_REPORT_PATH, .handler = gw_updates_report, .body_max = GW_UPDATES_REPORT_MAX},
    {.method = HTTP_GET, .path = GW_EST_CACERTS, .handler = gw_est_cacerts, .anyone = true},
    {.method = HTTP_POST, .path = GW_EST_SIMPLEENROLL, .handler = gw_est_simpleenroll, .body_max = GW_EST_BODY_MAX, .anyone = true},
    {.method = HTTP_POST, .path = GW_EST_SIMPLEREENROLL, .handler = gw_est_simplereenroll, .body_max = GW_EST_BODY_MAX, .anyone = true},
};
// clang-format on

/* A request waiting for the outbox. It holds a reference to its
 * connection: if the connection closes first, the answer is dropped. */
typedef struct ingest_job {
    gw_store_job job; /* first: the outbox hands this pointer back */
    gw_conn *conn;
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

/* Whether the worker has nothing handed back waiting (under w->lock). Only
 * the first job of a group wakes the worker: its event is then active, and
 * on_jobs_done takes every job handed back until it runs. One wake-up (the
 * event loop's lock, an eventfd write and read) per group and worker rather
 * than per request. */
static bool handed_back_none(const gw_worker *w)
{
    return w->done_head == NULL && w->est_head == NULL;
}

static void job_done(gw_store_job *job)
{
    ingest_job *ij = (ingest_job *)job;
    gw_worker *w = ij->worker;
    pthread_mutex_lock(&w->lock);
    bool first = handed_back_none(w);
    job->next = w->done_head;
    w->done_head = job;
    pthread_mutex_unlock(&w->lock);
    if (first)
        event_active(w->done_ev, EV_READ, 0);
}

static void job_free(ingest_job *ij)
{
    gw_store_job_free_items(&ij->job);
    gw_conn_unref(ij->conn);
    free(ij);
}

static void answer_stored(ingest_job *ij)
{
    gw_store_job *job = &ij->job;
    /* The report travels with the first reading: a resent request whose
     * first reading is a duplicate was counted when it was stored. */
    if (ij->dropped > 0 && job->first_stored) {
        gw_metric_add(GW_M_READINGS_DROPPED_BY_DEVICES, ij->dropped);
        gw_log(GW_LOG_WARN, "device.dropped", "device=%s dropped=%u", job->device,
               (unsigned)ij->dropped);
    }
    if (job->duplicates > 0) {
        gw_refusal_inc(GW_REF_REPLAY);
        gw_log(GW_LOG_INFO, "reading.duplicate", "device=%s duplicates=%zu stored=%zu", job->device,
               job->duplicates, job->stored);
    }
    if (!gw_conn_is_open(ij->conn))
        return; /* stored; the device will resend and get "duplicates" */
    /* Two counts: formatted directly (cJSON would allocate a tree and
     * print them as doubles). */
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"stored\":%zu,\"duplicates\":%zu}\n", job->stored,
                     job->duplicates);
    gw_conn_reply(ij->conn, 200, NULL, body, n > 0 ? (size_t)n : 0);
}

static void answer_job(gw_worker *w, ingest_job *ij)
{
    gw_store_job *job = &ij->job;
    int retry = (int)w->app->opt.retry_after_s;
    static const gw_refusal why[] = {
        [GW_STORE_FULL] = GW_REF_OUTBOX_FULL,
        [GW_STORE_DEVICE_FULL] = GW_REF_OUTBOX_DEVICE_SHARE,
        [GW_STORE_ERROR] = GW_REF_STORAGE_ERROR,
        [GW_STORE_SHUTDOWN] = GW_REF_SHUTTING_DOWN,
        [GW_STORE_UNCONFIRMED] = GW_REF_NOT_CONFIRMED,
        [GW_STORE_REFUSED] = GW_REF_BROKER_REFUSED,
    };
    static const char *const detail[] = {
        [GW_STORE_FULL] = "the gateway's outbox is full; retry later",
        [GW_STORE_DEVICE_FULL] = "this device holds its whole share of the gateway's outbox "
                                 "(outbox_device_share); retry later",
        [GW_STORE_ERROR] = "the gateway cannot write to its outbox; retry later",
        [GW_STORE_SHUTDOWN] = "the gateway is shutting down; retry later",
        [GW_STORE_UNCONFIRMED] = "stored at the gateway, but the broker has not confirmed it "
                                 "yet (acknowledge = confirmed); send it again later, it will "
                                 "not be stored twice",
        [GW_STORE_REFUSED] = "the broker refused this reading; the gateway keeps it in its "
                             "quarantine; sending it again will not help",
    };
    if (job->result == GW_STORE_OK)
        answer_stored(ij);
    else if (gw_conn_is_open(ij->conn))
        gw_conn_refuse(ij->conn, why[job->result], job->device, detail[job->result],
                       job->result == GW_STORE_REFUSED ? 0 : retry);
    job_free(ij);
    w->pending--;
}

void gw_ingest_est_begin(gw_conn *c)
{
    gw_worker *w = c->env->owner;
    w->pending++;
}

void gw_ingest_est_done(gw_est_job *job)
{
    gw_worker *w = job->conn->env->owner;
    pthread_mutex_lock(&w->lock);
    bool first = handed_back_none(w);
    job->next = w->est_head;
    w->est_head = job;
    pthread_mutex_unlock(&w->lock);
    if (first)
        event_active(w->done_ev, EV_READ, 0);
}

static void answer_est(gw_worker *w, gw_est_job *list)
{
    while (list) {
        gw_est_job *next = list->next;
        gw_est_answer(list);
        w->pending--;
        list = next;
    }
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    gw_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    gw_store_job *list = w->done_head;
    gw_est_job *est = w->est_head;
    w->done_head = NULL;
    w->est_head = NULL;
    pthread_mutex_unlock(&w->lock);
    answer_est(w, est);
    while (list) {
        gw_store_job *next = list->next;
        answer_job(w, (ingest_job *)list);
        list = next;
    }
}

/* Validated body in, outbox job out; the answer waits for the outbox. */
static void submit(gw_worker *w, gw_conn *c, const char *device, const gw_batch *batch, double rx)
{
    const gw_ingest_options *opt = &w->app->opt;
    size_t tail_max = gw_message_tail_max(opt->topic_prefix, device, opt->mqtt_max_packet);
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
        gw_conn_refuse(c, GW_REF_READING_TOO_LARGE, device, detail, 0);
        return;
    }
    if (rc != 0) {
        free(ij);
        gw_conn_refuse(c, GW_REF_OUT_OF_MEMORY, device, "the gateway is out of memory; retry later",
                       (int)opt->retry_after_s);
        return;
    }
    snprintf(ij->job.device, sizeof(ij->job.device), "%s", device);
    ij->job.items = items;
    ij->job.n_items = batch->n_readings;
    ij->job.done = job_done;
    ij->conn = c;
    gw_conn_ref(c);
    ij->worker = w;
    ij->dropped = batch->has_dropped ? batch->dropped : 0;
    w->pending++;
    gw_outbox_submit(w->app->outbox, &ij->job);
}

/* POST /v1/telemetry from an admitted device; the body is whole and within
 * max_body (http1.h). */
static void handle_telemetry(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_worker *w = c->env->owner;
    gw_app *app = w->app;
    if (atomic_load(&app->draining) || w->draining) {
        gw_conn_refuse(c, GW_REF_SHUTTING_DOWN, device, "the gateway is shutting down; retry later",
                       (int)app->opt.retry_after_s);
        return;
    }
    gw_content_type ct;
    if (req->content_type[0] == '\0' || gw_content_type_parse(req->content_type, &ct) != 0) {
        gw_conn_refuse(c, GW_REF_MEDIA_TYPE, device,
                       "use application/senml+json or application/json", 0);
        return;
    }
    int retry_after = 0;
    if (!gw_ratelimit_take(app->ratelimit, device, now_mono(), &retry_after)) {
        gw_conn_refuse(c, GW_REF_RATE_LIMITED, device,
                       "this device is sending faster than its rate limit", retry_after);
        return;
    }
    const char *body = req->body != NULL ? (const char *)req->body : "";
    double rx = now_wall();
    if (app->fleet != NULL)
        gw_fleet_seen(app->fleet, device, (int64_t)rx);
    gw_batch batch;
    gw_payload_error perr;
    memset(&batch, 0, sizeof(batch));
    if (gw_payload_parse(body, req->body_len, ct, device, rx, &app->limits, &batch, &perr) != 0) {
        gw_conn_refuse(c, perr.refusal, device, perr.detail,
                       perr.refusal == GW_REF_OUT_OF_MEMORY ? (int)app->opt.retry_after_s : 0);
        return;
    }
    submit(w, c, device, &batch, rx);
    gw_batch_free(&batch);
}

/* What a health report says that the security event stream reports: a
 * crash or watchdog reset, failed connections, a lower secure_version
 * than before (an old, vulnerable image running again), a new firmware. */
static void report_changes(const char *device, const gw_health_report *r,
                           const gw_fleet_change *was)
{
    if (gw_health_reset_is_abnormal(r->reset_reason))
        gw_log(GW_LOG_WARN, "device.security_report",
               "device=%s reason=abnormal_reset detail=\"reset by %s; boot %u\"", device,
               r->reset_reason, (unsigned)r->boot_count);
    if (r->connect_failures > 0)
        gw_log(GW_LOG_WARN, "device.security_report",
               "device=%s reason=connect_failures detail=\"%u failed connections since its last "
               "report\"",
               device, (unsigned)r->connect_failures);
    if (was->known && r->secure_version < was->prev_secure_version)
        gw_log(GW_LOG_WARN, "device.security_report",
               "device=%s reason=secure_version_lowered detail=\"secure_version %u, was %u\"",
               device, (unsigned)r->secure_version, (unsigned)was->prev_secure_version);
    if (was->known && strcmp(r->firmware, was->prev_firmware) != 0)
        gw_log(GW_LOG_INFO, "device.firmware_changed", "device=%s firmware=%s previous=%s", device,
               r->firmware, was->prev_firmware[0] ? was->prev_firmware : "-");
}

/* POST /v1/device/health from an admitted device: the fleet inventory. */
static void handle_health(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_worker *w = c->env->owner;
    gw_app *app = w->app;
    int retry_after = 0;
    gw_content_type ct;
    if (req->content_type[0] == '\0' || gw_content_type_parse(req->content_type, &ct) != 0 ||
        ct != GW_CT_JSON) {
        gw_conn_refuse(c, GW_REF_MEDIA_TYPE, device, "use application/json", 0);
        return;
    }
    if (!gw_ratelimit_take(app->ratelimit, device, now_mono(), &retry_after)) {
        gw_conn_refuse(c, GW_REF_RATE_LIMITED, device,
                       "this device is sending faster than its rate limit", retry_after);
        return;
    }
    gw_health_report r;
    gw_refusal why;
    char detail[160];
    const char *body = req->body != NULL ? (const char *)req->body : "";
    if (gw_health_parse(body, req->body_len, &r, &why, detail, sizeof(detail)) != 0) {
        gw_conn_refuse(c, why, device, detail, 0);
        return;
    }
    gw_fleet_change was = {0};
    if (app->fleet != NULL)
        gw_fleet_report(app->fleet, device, &r, (int64_t)now_wall(), &was);
    report_changes(device, &r, &was);
    gw_log(GW_LOG_DEBUG, "device.health",
           "device=%s firmware=%s secure_version=%u boot_count=%u reset_reason=%s", device,
           r.firmware, (unsigned)r.secure_version, (unsigned)r.boot_count, r.reset_reason);
    gw_conn_reply(c, 204, NULL, NULL, 0);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    (void)listener;
    gw_worker *w = arg;
    gw_conn_accept(&w->env, fd, sa, (socklen_t)len);
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
    /* Done once every stored request is answered and the answers are out. */
    if (w->pending == 0 && !gw_conn_any_writing(&w->env))
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
    /* Nagle off (accepted sockets inherit it): an answer is one TLS
     * record, but the handshake's flights and a 100 Continue before the
     * answer must not wait for the device's delayed ACK (40 ms each). */
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

static iot_status worker_init(gw_app *app, gw_worker *w, gw_ingest *in, iot_err *err)
{
    w->app = app;
    pthread_mutex_init(&w->lock, NULL);
    w->base = event_base_new();
    if (w->base == NULL)
        return iot_err_set(err, IOT_ENOMEM, "cannot create an event loop");
    w->env = (gw_conn_env){.kind = GW_CONN_DEVICE,
                           .app = app,
                           .base = w->base,
                           .tls = app->opt.tls ? app->device_tls : NULL,
                           .request_timeout_ms = app->opt.request_timeout_ms,
                           .max_body = app->limits.max_body,
                           .per_address = in->per_address,
                           .address_rate = in->address_rate,
                           .proxy_from = in->proxy_from,
                           .routes = ROUTES,
                           .n_routes = sizeof(ROUTES) / sizeof(ROUTES[0]),
                           .owner = w};
    evutil_socket_t fd = -1;
    iot_status st = open_listener(app->opt.listen, &fd, err);
    if (st != IOT_OK)
        return st;
    w->listener = evconnlistener_new(w->base, on_accept, w,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (w->listener == NULL) {
        close(fd);
        return iot_err_set(err, IOT_EIO, "cannot watch the listening socket");
    }
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
    if (w->app == NULL)
        return; /* never initialised: a start that failed before it */
    /* Jobs finished after the loop stopped: their answers go nowhere. */
    while (w->done_head) {
        gw_store_job *next = w->done_head->next;
        job_free((ingest_job *)w->done_head);
        w->done_head = next;
    }
    while (w->est_head) {
        gw_est_job *next = w->est_head->next;
        gw_est_job_free(w->est_head);
        w->est_head = next;
    }
    gw_conn_close_all(&w->env);
    if (w->done_ev)
        event_free(w->done_ev);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->listener)
        evconnlistener_free(w->listener);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->lock);
}

/* The per-address tables the workers share: connections per address (cap)
 * and new connections per address (rate). Without TLS (development mode)
 * there are none: the caps guard the TLS handshake. */
static iot_status open_address_limits(gw_ingest *in, const gw_ingest_options *opt, iot_err *err)
{
    if (!opt->tls)
        return IOT_OK;
    if (opt->max_connections_per_address > 0) {
        in->per_address = gw_addr_limit_new((uint32_t)opt->max_connections_per_address,
                                            (uint32_t)opt->max_connections);
        if (in->per_address == NULL)
            return iot_err_set(err, IOT_ENOMEM,
                               "out of memory for the per-address connection table");
    }
    if (opt->connection_rate_per_address > 0) {
        in->address_rate = gw_addr_rate_new(opt->connection_rate_per_address,
                                            opt->connection_burst_per_address, 0);
        if (in->address_rate == NULL)
            return iot_err_set(err, IOT_ENOMEM, "out of memory for the per-address rate table");
    }
    return IOT_OK;
}

/* The balancers of proxy_protocol_from, shared read-only by the workers.
 * The configuration has checked the list; a list built in code is checked
 * here. */
static iot_status open_proxy_from(gw_ingest *in, const gw_ingest_options *opt, iot_err *err)
{
    if (opt->proxy_protocol_from == NULL || opt->proxy_protocol_from[0] == '\0')
        return IOT_OK;
    in->proxy_from = calloc(1, sizeof(*in->proxy_from));
    if (in->proxy_from == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory for proxy_protocol_from");
    char why[160];
    if (!gw_proxy_from_parse(opt->proxy_protocol_from, in->proxy_from, why, sizeof(why)))
        return iot_err_set(err, IOT_EINVAL, "invalid proxy_protocol_from: %s", why);
    if (in->proxy_from->n == 0) {
        free(in->proxy_from);
        in->proxy_from = NULL;
    }
    return IOT_OK;
}

static iot_status start_workers(gw_app *app, gw_ingest *in, iot_err *err)
{
    for (int i = 0; i < in->n; i++) {
        iot_status st = worker_init(app, &in->workers[i], in, err);
        if (st != IOT_OK)
            return st;
    }
    for (int i = 0; i < in->n; i++)
        if (pthread_create(&in->workers[i].thread, NULL, worker_main, &in->workers[i]) != 0)
            return iot_err_set(err, IOT_EIO, "cannot start worker thread %d", i);
    return IOT_OK;
}

/* Undoes a start that failed part-way: stops the threads that started. */
static void abandon(gw_ingest *in)
{
    for (int i = 0; in->workers != NULL && i < in->n; i++)
        if (in->workers[i].thread)
            event_base_loopbreak(in->workers[i].base);
    for (int i = 0; in->workers != NULL && i < in->n; i++)
        if (in->workers[i].thread)
            pthread_join(in->workers[i].thread, NULL);
    gw_ingest_free(in);
}

iot_status gw_ingest_start(gw_app *app, gw_ingest **out, iot_err *err)
{
    iot_status st = IOT_OK;
    *out = NULL;
    gw_conn_set_buffer_limit(app->opt.max_buffered_bytes);
    gw_ingest *in = calloc(1, sizeof(*in));
    if (in == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    in->n = app->opt.workers;
    in->workers = calloc((size_t)in->n, sizeof(gw_worker));
    if (in->workers == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    st = open_address_limits(in, &app->opt, err);
    if (st == IOT_OK)
        st = open_proxy_from(in, &app->opt, err);
    if (st != IOT_OK)
        goto out;
    st = start_workers(app, in, err);
out:
    if (st != IOT_OK) {
        abandon(in);
        in = NULL;
    }
    *out = in;
    return st;
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
    for (int i = 0; in->workers != NULL && i < in->n; i++)
        worker_free(&in->workers[i]); /* frees the connections, which give back their slots */
    gw_addr_limit_free(in->per_address);
    gw_addr_rate_free(in->address_rate);
    free(in->proxy_from);
    free(in->workers);
    free(in);
}
