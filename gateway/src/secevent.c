/* See secevent.h. */
#include "secevent.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "logfmt.h"
#include "metrics.h"
#include "secagg.h"

#define DETAIL_MAX 256 /* the document's detail, in bytes */
#define LOG_MAX    512 /* the document's copy of the log fields */
#define FIELD_MAX  160 /* one field read back from the log line */
#define HELD_MAX   32  /* events kept from gw_secev_hold to gw_secev_start */

const gw_outbox_metrics gw_secev_outbox_metrics = {
    .depth = GW_G_SECEV_QUEUED,
    .bytes = -1,
    .quarantined_now = -1,
    .stored = GW_M_SECEV_STORED,
    .duplicate = -1,
    .published = GW_M_SECEV_PUBLISHED,
    .quarantined = GW_M_SECEV_QUARANTINED,
};

typedef bool (*include_fn)(const char *fields, size_t len);

/* Refused requests that are someone trying something (class security) or
 * oversized input; a device's bad data (class quality) and the gateway's
 * own load (class overload) are not security events. */
static bool security_refusal(const char *fields, size_t len)
{
    char v[FIELD_MAX];
    if (gw_logfmt_get(fields, len, "class", v, sizeof(v)) && strcmp(v, "security") == 0)
        return true;
    if (!gw_logfmt_get(fields, len, "error", v, sizeof(v)))
        return false;
    size_t n = strlen(v);
    return n >= 9 && strcmp(v + n - 9, "too_large") == 0;
}

/* Update reports of a failure or a rollback; progress is not an event. */
static bool update_failure(const char *fields, size_t len)
{
    char v[FIELD_MAX];
    return gw_logfmt_get(fields, len, "status", v, sizeof(v)) &&
           (strcmp(v, "failed") == 0 || strcmp(v, "rolled_back") == 0);
}

/* The log events that are security events, sorted by name (checked at
 * start), with the severity of the document. docs/security-events.md
 * lists them. */
static const struct {
    const char *event;
    const char *severity;
    include_fn include; /* NULL: every line of the event */
    const char *source; /* who detected it; NULL: the gateway */
} TYPES[] = {
    {"admin.refused", "warning", NULL, NULL},
    {"config.insecure", "warning", NULL, NULL},
    {"connection.refused", "warning", NULL, NULL},
    {"device.firmware_changed", "info", NULL, "device"},
    {"device.security_report", "warning", NULL, "device"},
    {"est.failed", "error", NULL, NULL},
    {"est.issued", "info", NULL, NULL},
    {"est.issuer_revoked", "critical", NULL, NULL},
    {"est.pending", "info", NULL, NULL},
    {"est.reissued", "info", NULL, NULL},
    {"gateway.core_dumps_enabled", "warning", NULL, NULL},
    {"gateway.started", "info", NULL, NULL},
    {"gateway.stopping", "info", NULL, NULL},
    {"identity.audit_failed", "error", NULL, NULL},
    {"identity.crl_expired", "critical", NULL, NULL},
    {"identity.crl_rejected", "error", NULL, NULL},
    {"identity.loaded", "info", NULL, NULL},
    {"identity.reload_failed", "error", NULL, NULL},
    {"identity.shared_key", "critical", NULL, NULL},
    {"mqtt.certificate_refused", "error", NULL, NULL},
    {"mqtt.crl_not_applicable", "warning", NULL, NULL},
    {"outbox.quarantined", "warning", NULL, NULL},
    {"reading.duplicate", "info", NULL, NULL},
    {"request.refused", "warning", security_refusal, NULL},
    {"request.timeout", "warning", NULL, NULL},
    {"rollout.paused", "warning", NULL, NULL},
    {"tls.refused", "warning", NULL, NULL},
    {"update.image_unreadable", "error", NULL, NULL},
    {"update.keys_reload_failed", "error", NULL, NULL},
    {"update.manifest_refused", "warning", NULL, NULL},
    {"update.report", "warning", update_failure, NULL},
};
#define N_TYPES (sizeof(TYPES) / sizeof(TYPES[0]))

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_cond_t idle;
    int busy; /* takes between their decision and their submit */
    pthread_t thread;
    bool running;  /* the tap publishes */
    bool holding;  /* the tap keeps events in held until the stream starts */
    bool stopping; /* the thread ends */
    size_t n_held;
    struct {
        size_t type;
        int64_t ms;
        size_t len;
        char fields[LOG_MAX];
    } held[HELD_MAX];
    gw_secagg *agg;
    gw_outbox *outbox;
    int64_t window_ms;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};

size_t gw_secev_type_count(void)
{
    return N_TYPES;
}

const char *gw_secev_type_name(size_t i)
{
    return i < N_TYPES ? TYPES[i].event : NULL;
}

static int by_name(const void *key, const void *row)
{
    return strcmp(key, *(const char *const *)row);
}

static long type_of(const char *event)
{
    const void *hit = bsearch(event, TYPES, N_TYPES, sizeof(TYPES[0]), by_name);
    return hit != NULL ? (long)(((const char *)hit - (const char *)TYPES) / sizeof(TYPES[0])) : -1;
}

static bool wants(const char *event)
{
    return type_of(event) >= 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 in UTC with milliseconds. */
static void time_text(int64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* What one document says besides its type and time. */
typedef struct ev_fields {
    char device[FIELD_MAX];
    char serial[FIELD_MAX];
    char peer[FIELD_MAX];
    char address[FIELD_MAX]; /* the peer without its port: the aggregation source */
    char reason[FIELD_MAX];
    char detail[DETAIL_MAX];
    char log[LOG_MAX];
} ev_fields;

/* "192.0.2.7:5123" -> "192.0.2.7", "[2001:db8::1]:5123" -> "2001:db8::1". */
static void address_of(const char *peer, char *out, size_t cap)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon != NULL ? (size_t)(colon - peer) : strlen(peer);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        peer++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)n, peer);
}

/* What the aggregation key needs: read for every event, also the ones a
 * flood's summary counts. */
static void read_key_fields(const char *f, size_t len, ev_fields *e)
{
    memset(e, 0, sizeof(*e));
    gw_logfmt_get(f, len, "device", e->device, sizeof(e->device));
    gw_logfmt_get(f, len, "peer", e->peer, sizeof(e->peer));
    if (!gw_logfmt_get(f, len, "address", e->address, sizeof(e->address)) && e->peer[0])
        address_of(e->peer, e->address, sizeof(e->address));
    if (!gw_logfmt_get(f, len, "reason", e->reason, sizeof(e->reason)))
        gw_logfmt_get(f, len, "error", e->reason, sizeof(e->reason));
}

/* The rest, for an event that is published. */
static void read_other_fields(const char *f, size_t len, ev_fields *e)
{
    gw_logfmt_get(f, len, "serial", e->serial, sizeof(e->serial));
    gw_logfmt_get(f, len, "detail", e->detail, sizeof(e->detail));
    snprintf(e->log, sizeof(e->log), "%.*s", (int)(len < LOG_MAX ? len : LOG_MAX - 1), f);
}

/* The aggregation key: the reason, then the source: the device when the
 * event names one, else the address, else the gateway itself. So a flood
 * is one reason from one source; "d:dev-1|identity_mismatch". Neither an
 * address nor a device ID nor a logged reason holds '|'. */
static void source_of(const ev_fields *e, char *out, size_t cap)
{
    if (e->device[0])
        snprintf(out, cap, "d:%.64s|%.48s", e->device, e->reason);
    else if (e->address[0])
        snprintf(out, cap, "a:%.64s|%.48s", e->address, e->reason);
    else
        snprintf(out, cap, "g|%.48s", e->reason);
}

static void add_text(cJSON *o, const char *key, const char *v)
{
    if (v != NULL && v[0])
        cJSON_AddStringToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

/* The stored tail of one document: its JSON without the opening brace
 * (the forwarder writes the head, message.h). NULL when out of memory. */
static char *render(size_t type, const ev_fields *e, uint32_t count, int64_t first_ms,
                    int64_t last_ms)
{
    char t[32];
    char *out = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    time_text(last_ms, t);
    cJSON_AddStringToObject(o, "time", t);
    cJSON_AddStringToObject(o, "source", TYPES[type].source ? TYPES[type].source : "gateway");
    cJSON_AddStringToObject(o, "type", TYPES[type].event);
    cJSON_AddStringToObject(o, "severity", TYPES[type].severity);
    add_text(o, "device", e->device);
    add_text(o, "serial", e->serial);
    add_text(o, "peer", e->peer[0] ? e->peer : e->address);
    add_text(o, "reason", e->reason);
    add_text(o, "detail", e->detail);
    cJSON_AddNumberToObject(o, "count", count);
    if (count > 1 || first_ms != last_ms) {
        time_text(first_ms, t);
        cJSON_AddStringToObject(o, "first", t);
    }
    if (e->log[0])
        cJSON_AddStringToObject(o, "log", e->log);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text != NULL && text[0] == '{') {
        size_t n = strlen(text + 1);
        out = malloc(n + 1);
        if (out != NULL)
            memcpy(out, text + 1, n + 1);
    }
    cJSON_free(text);
    return out;
}

static void stored(gw_store_job *job)
{
    if (job->result != GW_STORE_OK) {
        gw_metric_inc(GW_M_SECEV_LOST);
        gw_log(GW_LOG_ERROR, "security.event_lost",
               "type=%s result=%d action=\"the security outbox is full or failing: see "
               "outbox.commit_failed, free disk space or raise security_outbox_max\"",
               job->device, (int)job->result);
    }
    gw_store_job_free_items(job);
    free(job);
}

/* Hands one document to the outbox; never under S.lock (the outbox takes
 * its own lock and may log). */
static void submit(gw_outbox *ob, size_t type, char *tail)
{
    gw_store_job *job = calloc(1, sizeof(*job));
    gw_store_item *item = calloc(1, sizeof(*item));
    if (job == NULL || item == NULL || tail == NULL) {
        free(job);
        free(item);
        free(tail);
        gw_metric_inc(GW_M_SECEV_LOST);
        gw_log(GW_LOG_ERROR, "security.event_lost", "type=%s result=out_of_memory",
               TYPES[type].event);
        return;
    }
    snprintf(job->device, sizeof(job->device), "%s", TYPES[type].event);
    item->body = tail;
    item->body_len = strlen(tail);
    job->items = item;
    job->n_items = 1;
    job->done = stored;
    gw_outbox_submit(ob, job);
}

/* Keeps one event logged before the stream started, under S.lock; one
 * past HELD_MAX is only logged. */
static void hold(size_t type, const char *fields, size_t len, int64_t now)
{
    if (S.n_held >= HELD_MAX)
        return;
    size_t n = len < LOG_MAX ? len : LOG_MAX - 1;
    S.held[S.n_held].type = type;
    S.held[S.n_held].ms = now;
    S.held[S.n_held].len = n;
    memcpy(S.held[S.n_held].fields, fields, n);
    S.held[S.n_held].fields[n] = '\0';
    S.n_held++;
}

/* One event of TYPE logged at NOW: published, counted in a summary, or
 * kept until the stream starts. */
static void take_at(size_t type, const char *fields, size_t len, int64_t now)
{
    ev_fields e;
    char source[GW_SECAGG_SOURCE_MAX];
    read_key_fields(fields, len, &e);
    source_of(&e, source, sizeof(source));
    pthread_mutex_lock(&S.lock);
    bool running = S.running;
    if (!running && S.holding)
        hold(type, fields, len, now);
    bool publish = running && gw_secagg_seen(S.agg, (unsigned)type, source, now);
    gw_outbox *ob = S.outbox;
    if (publish)
        S.busy++;
    pthread_mutex_unlock(&S.lock);
    if (!running)
        return;
    gw_metric_inc(GW_M_SECEV_EVENTS);
    if (!publish) {
        gw_metric_inc(GW_M_SECEV_AGGREGATED);
        return;
    }
    read_other_fields(fields, len, &e);
    submit(ob, type, render(type, &e, 1, now, now));
    pthread_mutex_lock(&S.lock);
    if (--S.busy == 0)
        pthread_cond_broadcast(&S.idle);
    pthread_mutex_unlock(&S.lock);
}

static void take(gw_log_level level, const char *event, const char *fields, size_t len)
{
    (void)level;
    long type = type_of(event);
    if (type < 0 || (TYPES[type].include != NULL && !TYPES[type].include(fields, len)))
        return;
    take_at((size_t)type, fields, len, now_ms());
}

/* A summary waiting to be handed to the outbox once S.lock is released. */
typedef struct summary {
    size_t type;
    char *tail;
    struct summary *next;
} summary;

/* The fields of a summary: its source stands for the device or address of
 * every event it counts; "*" for many addresses (the table was full). */
static void summary_fields(const char *source, ev_fields *e)
{
    memset(e, 0, sizeof(*e));
    const char *bar = strchr(source, '|');
    int n = bar != NULL ? (int)(bar - source) : (int)strlen(source);
    if (bar != NULL)
        snprintf(e->reason, sizeof(e->reason), "%s", bar + 1);
    if (strncmp(source, "d:", 2) == 0)
        snprintf(e->device, sizeof(e->device), "%.*s", n - 2, source + 2);
    else if (strncmp(source, "a:", 2) == 0)
        snprintf(e->address, sizeof(e->address), "%.*s", n - 2, source + 2);
    snprintf(e->detail, sizeof(e->detail), "%s",
             strcmp(source, GW_SECAGG_OVERFLOW) == 0
                 ? "repeats from many sources (more than the table tracks), counted"
                 : "repeats of one event from one source within security_event_window, counted");
}

static void collect(unsigned type, const char *source, uint32_t count, int64_t first_ms,
                    int64_t last_ms, void *ctx)
{
    summary **list = ctx;
    ev_fields e;
    summary_fields(source, &e);
    summary *s = calloc(1, sizeof(*s));
    char *tail = render(type, &e, count, first_ms, last_ms);
    if (s == NULL || tail == NULL) {
        free(s);
        free(tail);
        gw_metric_add(GW_M_SECEV_LOST, count);
        return;
    }
    s->type = type;
    s->tail = tail;
    s->next = *list;
    *list = s;
}

static void submit_all(gw_outbox *ob, summary *list)
{
    while (list != NULL) {
        summary *next = list->next;
        submit(ob, list->type, list->tail);
        free(list);
        list = next;
    }
}

/* Publishes the summaries of windows that ended, once a second. */
static void *flusher(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&S.lock);
    for (;;) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        if (!S.stopping)
            pthread_cond_timedwait(&S.wake, &S.lock, &until);
        bool last = S.stopping; /* then everything still counting */
        summary *list = NULL;
        gw_secagg_expire(S.agg, now_ms(), last, collect, &list);
        gw_outbox *ob = S.outbox;
        pthread_mutex_unlock(&S.lock);
        submit_all(ob, list);
        if (last)
            return NULL;
        pthread_mutex_lock(&S.lock);
    }
}

static const gw_log_tap TAP = {.wants = wants, .take = take};

void gw_secev_hold(void)
{
    pthread_mutex_lock(&S.lock);
    S.holding = !S.running;
    pthread_mutex_unlock(&S.lock);
    gw_log_set_tap(&TAP);
}

/* Publishes what gw_secev_hold kept, in the order it was logged; no
 * event is held once the stream runs. */
static void publish_held(void)
{
    for (size_t i = 0;; i++) {
        pthread_mutex_lock(&S.lock);
        bool more = i < S.n_held;
        size_t type = more ? S.held[i].type : 0;
        int64_t ms = more ? S.held[i].ms : 0;
        size_t len = more ? S.held[i].len : 0;
        char fields[LOG_MAX];
        if (more)
            memcpy(fields, S.held[i].fields, len + 1);
        else
            S.n_held = 0;
        pthread_mutex_unlock(&S.lock);
        if (!more)
            return;
        take_at(type, fields, len, ms);
    }
}

iot_status gw_secev_start(const gw_secev_options *opt, iot_err *err)
{
    for (size_t i = 1; i < N_TYPES; i++)
        if (strcmp(TYPES[i - 1].event, TYPES[i].event) >= 0)
            return iot_err_set(err, IOT_EINVAL, "security event table out of order at %s",
                               TYPES[i].event);
    gw_secagg *agg = gw_secagg_new(opt->sources, (unsigned)N_TYPES, opt->window_ms);
    if (agg == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory for the security event table");
    pthread_mutex_lock(&S.lock);
    S.agg = agg;
    S.outbox = opt->outbox;
    S.window_ms = opt->window_ms;
    S.stopping = false;
    S.running = true;
    S.holding = false;
    pthread_mutex_unlock(&S.lock);
    if (pthread_create(&S.thread, NULL, flusher, NULL) != 0) {
        pthread_mutex_lock(&S.lock);
        S.running = false;
        S.agg = NULL;
        pthread_mutex_unlock(&S.lock);
        gw_secagg_free(agg);
        return iot_err_set(err, IOT_EIO, "cannot start the security event thread");
    }
    gw_gauge_set(GW_G_SECEV_ENABLED, 1);
    gw_log_set_tap(&TAP);
    publish_held();
    return IOT_OK;
}

void gw_secev_stop(void)
{
    /* From here events are only logged; the thread publishes the summaries
     * still counting on its way out, and takes under way finish first. */
    pthread_mutex_lock(&S.lock);
    bool was = S.running;
    S.running = false;
    S.holding = false;
    S.n_held = 0;
    S.stopping = true;
    pthread_cond_signal(&S.wake);
    while (S.busy > 0)
        pthread_cond_wait(&S.idle, &S.lock);
    pthread_mutex_unlock(&S.lock);
    if (!was) {
        gw_log_set_tap(NULL);
        return;
    }
    pthread_join(S.thread, NULL);
    gw_log_set_tap(NULL);
    pthread_mutex_lock(&S.lock);
    gw_secagg_free(S.agg);
    S.agg = NULL;
    S.outbox = NULL;
    pthread_mutex_unlock(&S.lock);
    gw_gauge_set(GW_G_SECEV_ENABLED, 0);
}
