#include "sim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "iot/fsutil.h"
#include "iotd/senml.h"

#define LINE_MAX_LEN 1024
#define BODY_MAX     16384 /* the gateway's default body limit */
#define BACKOFF_BASE 2000
#define PATH_LEN     4096

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void write_line(FILE *f, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void write_line(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    char line[LINE_MAX_LEN];
    size_t p = strlen(prefix);
    if (p >= sizeof(line) - 2)
        return;
    memcpy(line, prefix, p);
    int n = vsnprintf(line + p, sizeof(line) - p - 1, fmt, ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    line[len++] = '\n';
    /* One call per line: stdio locks the stream, so lines of devices on
     * other threads never interleave. */
    fwrite(line, 1, len, f);
    fflush(f);
}

void sim_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(stderr, "iotsim: ", fmt, ap);
    va_end(ap);
}

static void outf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void outf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    write_line(stdout, "", fmt, ap);
    va_end(ap);
}

/* --- what the gateway was sent and answered ---------------------------------------- */

/* Readings in a SenML pack the core built: one per record carrying "seq". */
static void pack_readings(const char *body, size_t len, uint32_t *n, double *first, double *last)
{
    *n = 0;
    cJSON *pack = cJSON_ParseWithLength(body, len);
    const cJSON *rec = NULL;
    cJSON_ArrayForEach(rec, pack)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(rec, "seq");
        if (!cJSON_IsNumber(seq))
            continue;
        if (*n == 0)
            *first = seq->valuedouble;
        *last = seq->valuedouble;
        (*n)++;
    }
    cJSON_Delete(pack);
}

/* The gateway's answer: {"stored":N,"duplicates":D} or {"error":code,...}. */
static void answer_fields(const char *resp, size_t len, int *dups, char *error, size_t cap)
{
    *dups = 0;
    error[0] = '\0';
    cJSON *a = cJSON_ParseWithLength(resp, len);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(a, "duplicates");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(a, "error");
    if (cJSON_IsNumber(d) && d->valuedouble > 0 && d->valuedouble < 1e9)
        *dups = (int)d->valuedouble;
    if (cJSON_IsString(e))
        snprintf(error, cap, "%s", e->valuestring);
    cJSON_Delete(a);
}

static void note_response(sim_device *d, const char *body, size_t body_len,
                          const iotd_http_result *res)
{
    const sim_options *opt = d->sim->opt;
    uint32_t n = 0;
    double first = 0, last = 0;
    int dups = 0;
    char error[48];
    pack_readings(body, body_len, &n, &first, &last);
    size_t rlen = res->body_len < sizeof(d->resp) - 1 ? res->body_len : sizeof(d->resp) - 1;
    answer_fields(d->resp, rlen, &dups, error, sizeof(error));
    d->sent += n;
    if (res->status >= 200 && res->status < 300)
        d->duplicates += (uint32_t)dups;
    if (res->status == 403) {
        d->refused = true;
        snprintf(d->refusal, sizeof(d->refusal), "HTTP 403 %s", error[0] ? error : "forbidden");
    }
    sim_note_reached(d);
    if (opt->verbose < 1)
        return;
    char extra[96] = "";
    if (res->status >= 200 && res->status < 300)
        snprintf(extra, sizeof(extra), ", %d duplicate%s", dups, dups == 1 ? "" : "s");
    else if (error[0] != '\0')
        snprintf(extra, sizeof(extra), " %s", error);
    if (res->has_retry_after)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), ", retry after %u s",
                 (unsigned)res->retry_after_s);
    outf("%s: upload %u reading%s (seq %.0f-%.0f): %d%s", d->id, (unsigned)n, n == 1 ? "" : "s",
         first, last, res->status, extra);
}

void sim_note_reached(sim_device *d)
{
    if (!d->unreachable)
        return;
    d->unreachable = false;
    sim_errorf("%s: reached the gateway at %s again", d->id, d->posix.https.authority);
}

void sim_note_failure(sim_device *d)
{
    const iotd_posix_https *h = &d->posix.https;
    if (h->last_error == IOTD_POSIX_NET_REFUSED) {
        d->refused = true;
        const char *name = iotd_posix_tls_alert_name(h->last_alert);
        if (name != NULL)
            snprintf(d->refusal, sizeof(d->refusal), "TLS alert %s", name);
        else
            snprintf(d->refusal, sizeof(d->refusal), "TLS alert %d", h->last_alert);
        return;
    }
    if (d->unreachable)
        return;
    d->unreachable = true;
    sim_errorf("%s: cannot reach the gateway at %s: %s; readings stay queued, retrying with "
               "backoff",
               d->id, h->authority, h->last_msg);
}

/* The port's https_post, with the simulator's bookkeeping around it. */
static iotd_status sim_post(void *ctx, const char *path, const char *content_type, const char *body,
                            size_t body_len, char *resp, size_t resp_cap, iotd_http_result *result)
{
    iotd_posix *p = ctx;
    sim_device *d = p->user;
    iotd_status st = d->post(ctx, path, content_type, body, body_len, resp, resp_cap, result);
    if (st == IOTD_OK)
        note_response(d, body, body_len, result);
    else
        sim_note_failure(d);
    return st;
}

/* The most detailed level shown at the run's verbosity. */
static iotd_log_level shown_level(const sim_device *d)
{
    int v = d->sim->opt->verbose;
    return v < 0    ? IOTD_LOG_ERROR
           : v == 0 ? IOTD_LOG_WARN
           : v == 1 ? IOTD_LOG_INFO
                    : IOTD_LOG_DEBUG;
}

static void log_line(const char *device_id, iotd_log_level level, const char *event,
                     const char *msg)
{
    char line[LINE_MAX_LEN];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t len =
        iotd_posix_log_format(line, sizeof(line), (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                              device_id, level, event, msg);
    fwrite(line, 1, len, stderr);
}

void sim_event(sim_device *d, iotd_log_level level, const char *event, const char *msg)
{
    if (level <= shown_level(d))
        log_line(d->id, level, event, msg);
}

/* Events of the core and the port. What the simulator reports itself
 * (outages, refusals) is shown as events only at -v and above; the core's
 * update.failed and update.rolled_back are replaced by the simulator's,
 * which name the version and the sequence (update.c). */
static void sim_log(void *arg, const char *device_id, iotd_log_level level, const char *event,
                    const char *msg)
{
    sim_device *d = arg;
    int v = d->sim->opt->verbose;
    if (d->synth.off && strcmp(event, "sensor.read_failed") == 0)
        return; /* sampling ended at --count: no reading is wanted */
    bool reported = strncmp(event, "https.", 6) == 0 || strcmp(event, "upload.no_response") == 0 ||
                    strcmp(event, "upload.forbidden") == 0;
    bool replaced = strcmp(event, "update.failed") == 0 || strcmp(event, "update.rolled_back") == 0;
    if (level > shown_level(d) || (reported && v < 1) || replaced)
        return;
    log_line(device_id, level, event, msg);
}

/* --- devices -------------------------------------------------------------------------- */

int sim_init(sim *s, const sim_options *opt, size_t n)
{
    memset(s, 0, sizeof(*s));
    s->opt = opt;
    s->devs = calloc(n, sizeof(*s->devs));
    s->heap = calloc(n, sizeof(*s->heap));
    if (s->devs == NULL || s->heap == NULL) {
        sim_errorf("out of memory for %zu devices", n);
        return -1;
    }
    s->n = n;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&s->mu, NULL);
    return 0;
}

/* FNV-1a: a device's sensors depend on its name and the run's seed only. */
static uint64_t id_hash(const char *id)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 0x100000001b3ull;
    return h;
}

static int device_paths(const sim_options *opt, const char *id, char *dir, char *state)
{
    iot_err err = {0};
    char devices[PATH_LEN];
    if (iot_path_join(devices, PATH_LEN, opt->pki != NULL ? opt->pki : ".", "devices", &err) !=
            IOT_OK ||
        iot_path_join(dir, PATH_LEN, devices, id, &err) != IOT_OK ||
        iot_path_join(state, PATH_LEN, opt->state, id, &err) != IOT_OK) {
        sim_errorf("%s", err.msg);
        return -1;
    }
    return 0;
}

static void configure_core(sim_device *d, const sim_options *opt)
{
    iotd_config_init(&d->cfg);
    d->cfg.device_id = d->id;
    d->cfg.sensors = d->synth.table;
    d->cfg.n_sensors = d->synth.n;
    d->cfg.sample_interval_ms = opt->interval_ms;
    d->cfg.queue_capacity = opt->queue;
    d->cfg.batch_max = opt->batch;
    d->cfg.backoff_max_ms = opt->backoff_max_ms;
    d->cfg.backoff_base_ms =
        opt->backoff_max_ms < BACKOFF_BASE ? opt->backoff_max_ms : BACKOFF_BASE;
    d->cfg.resp = d->resp;
    d->cfg.resp_cap = sizeof(d->resp);
}

static int open_core(sim_device *d, const sim_options *opt, const char *state)
{
    size_t one = iotd_senml_reading_max(d->id, d->synth.table, d->synth.n);
    size_t cap = one * opt->batch;
    if (cap > BODY_MAX)
        cap = BODY_MAX > one ? BODY_MAX : one;
    if (d->body == NULL)
        d->body = malloc(cap);
    if (d->body == NULL) {
        sim_errorf("%s: out of memory", d->id);
        return -1;
    }
    configure_core(d, opt);
    d->cfg.body = d->body;
    d->cfg.body_cap = cap;
    iotd_status st = iotd_device_init(&d->dev, &d->port, &d->cfg);
    if (st == IOTD_ECORRUPT) {
        sim_errorf("%s: the sequence record in %s is damaged; refusing to number readings", d->id,
                   state);
        return -1;
    }
    if (st != IOTD_OK) {
        sim_errorf("%s: cannot start the device core on %s: %s", d->id, state, iotd_strerror(st));
        return -1;
    }
    return 0;
}

/* The port over the device's credentials and state directory. */
static int open_port(sim_device *d)
{
    const sim_options *opt = d->sim->opt;
    char dir[PATH_LEN], state[PATH_LEN], ca[PATH_LEN], cert[PATH_LEN], key[PATH_LEN];
    iot_err err = {0};
    if (device_paths(opt, d->id, dir, state) != 0)
        return -1;
    if (d->enrolling) {
        snprintf(ca, sizeof(ca), "%s", d->ca_path);
        snprintf(cert, sizeof(cert), "%s", sim_enroll_cert_path(d));
        snprintf(key, sizeof(key), "%s", sim_enroll_cert_path(d));
    } else if (iot_path_join(ca, PATH_LEN, dir, "ca.pem", &err) != IOT_OK ||
               iot_path_join(cert, PATH_LEN, dir, "cert.pem", &err) != IOT_OK ||
               iot_path_join(key, PATH_LEN, dir, "key.pem", &err) != IOT_OK) {
        sim_errorf("%s", err.msg);
        return -1;
    }
    char session[PATH_LEN];
    if (iot_path_join(session, PATH_LEN, state, "tls-session", &err) != IOT_OK) {
        sim_errorf("%s", err.msg);
        return -1;
    }
    iotd_posix_config pc = {
        .device_id = d->id,
        .state_dir = state,
        .https = {.url = opt->gateway,
                  .ca_file = ca,
                  .crl_file = opt->crl,
                  .cert_file = cert,
                  .key_file = key,
                  .device_id = d->id,
                  .connect_timeout_ms = opt->connect_timeout_ms,
                  .request_timeout_ms = opt->timeout_ms,
                  .session_file = session},
    };
    if (iotd_posix_open(&d->posix, &pc, &err) != IOT_OK) {
        sim_errorf("device %s: %s", d->id, err.msg);
        return -1;
    }
    d->posix_open = true;
    d->posix.user = d;
    d->posix.log_fn = sim_log;
    d->posix.log_arg = d;
    iotd_posix_port(&d->posix, &d->port);
    d->post = d->port.https_post;
    d->port.https_post = sim_post;
    return 0;
}

/* The bootloader: which image runs at this start. */
static int open_firmware(sim_device *d)
{
    const sim_update_options *uo = &d->sim->opt->update;
    iotd_posix_update_config c = {
        .kv = &d->posix.kv,
        .https = &d->posix.https,
        .log_port = &d->port,
        .slot_capacity = uo->slot_size,
        .factory = uo->factory,
    };
    iotd_posix_update_init(&d->pu, &c);
    iotd_posix_update_port(&d->pu, &d->uport);
    d->get = d->uport.https_get;
    d->uport.https_get = sim_get;
    if (iotd_posix_update_boot(&d->pu, &d->boot) != IOTD_OK) {
        sim_errorf("%s: cannot read or store the boot selection in %s/%s", d->id,
                   d->sim->opt->state, d->id);
        return -1;
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "version=%s slot=%s%s%s", d->boot.image.version,
             d->boot.slot == IOTD_POSIX_FACTORY ? "factory"
             : d->boot.slot == 0                ? "0"
                                                : "1",
             d->boot.on_trial ? " on_trial" : "", d->boot.rolled_back ? " rolled_back" : "");
    sim_event(d, IOTD_LOG_INFO, "device.boot", msg);
    return 0;
}

int sim_open_device(sim_device *d)
{
    const sim_options *opt = d->sim->opt;
    if (sim_finish_reset(opt->state, d->id) != 0)
        return -1;
    if (sim_enroll_open(d) != 0 || open_port(d) != 0 || open_firmware(d) != 0)
        return -1;
    iotd_posix_synth_init(&d->synth, opt->curves, opt->n_curves, opt->seed ^ id_hash(d->id));
    char state[PATH_LEN];
    snprintf(state, sizeof(state), "%s/%s", opt->state, d->id);
    if (open_core(d, opt, state) != 0 || sim_health_open(d) != 0)
        return -1;
    return sim_update_open(d);
}

void sim_close_device(sim_device *d)
{
    iotd_posix_update_close(&d->pu);
    if (d->posix_open)
        iotd_posix_close(&d->posix);
    d->posix_open = false;
}

int sim_add_device(sim *s, size_t i, const char *id)
{
    sim_device *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        sim_errorf("out of memory");
        return -1;
    }
    s->devs[i] = d;
    d->sim = s;
    d->pu.fd = -1;
    snprintf(d->id, sizeof(d->id), "%s", id);
    return sim_open_device(d);
}

/* --- the schedule --------------------------------------------------------------------- */

static void heap_swap(sim *s, size_t a, size_t b)
{
    sim_device *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
}

static void heap_push(sim *s, sim_device *d)
{
    size_t i = s->heap_len++;
    s->heap[i] = d;
    while (i > 0 && s->heap[(i - 1) / 2]->wake_ms > s->heap[i]->wake_ms) {
        heap_swap(s, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static sim_device *heap_pop(sim *s)
{
    sim_device *top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && s->heap[l]->wake_ms < s->heap[m]->wake_ms)
            m = l;
        if (r < s->heap_len && s->heap[r]->wake_ms < s->heap[m]->wake_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(s, i, m);
        i = m;
    }
    return top;
}

static void report_reading(sim_device *d, const iotd_stats *st)
{
    if (st->readings == d->readings_seen)
        return;
    d->readings_seen = st->readings;
    if (d->sim->opt->verbose >= 2)
        outf("%s: reading %u taken, %u queued", d->id, (unsigned)st->readings,
             (unsigned)iotd_device_queued(&d->dev));
}

/* After --count: done once the queue is empty and no update is under way,
 * or at the drain timeout. */
static void drain(sim_device *d, uint64_t now)
{
    const sim_options *opt = d->sim->opt;
    uint32_t queued = iotd_device_queued(&d->dev);
    if (queued == 0 && !sim_update_busy(d)) {
        d->state = SIM_DONE;
        return;
    }
    if (now < d->drain_deadline_ms) {
        if (d->wake_ms > d->drain_deadline_ms)
            d->wake_ms = d->drain_deadline_ms;
        return;
    }
    d->state = SIM_DONE;
    d->drain_timed_out = true;
    if (queued == 0)
        sim_errorf("%s: the firmware update was still in progress at the drain timeout; it goes "
                   "on at the next run",
                   d->id);
    else
        sim_errorf("%s: %u reading%s still queued at the drain timeout; kept in %s/%s for the "
                   "next run",
                   d->id, (unsigned)queued, queued == 1 ? "" : "s", opt->state, d->id);
}

/* The machines beside the device's: updates, enrollment, health reports;
 * the earliest of `sleep` and what they want. */
static uint32_t step_beside(sim_device *d, uint64_t now, uint32_t sleep)
{
    uint32_t u = d->updating ? sim_update_step(d, now) : UINT32_MAX;
    if (d->state != SIM_RUNNING)
        return sleep;
    uint32_t e = d->enrolling ? sim_enroll_step(d, now) : UINT32_MAX;
    uint32_t h = d->reporting && !d->synth.off ? sim_health_step(d, now) : UINT32_MAX;
    uint32_t m = u < e ? u : e;
    m = m < h ? m : h;
    return m < sleep ? m : sleep;
}

/* One step of the core, then what the simulator decides about the device. */
static void step_device(sim_device *d, uint64_t now)
{
    const sim_options *opt = d->sim->opt;
    uint32_t sleep = iotd_device_step(&d->dev, now);
    sleep = step_beside(d, now, sleep);
    if (d->state != SIM_RUNNING)
        return; /* it could not restart after an update */
    const iotd_stats *st = iotd_device_stats(&d->dev);
    report_reading(d, st);
    now = mono_ms();
    if (d->refused || iotd_device_halted(&d->dev)) {
        d->state = SIM_REFUSED;
        sim_errorf("the gateway refused device %s's certificate (revoked or unknown): %s; "
                   "stopping %s with %u reading%s queued",
                   d->id, d->refusal[0] ? d->refusal : "HTTP 403", d->id,
                   (unsigned)iotd_device_queued(&d->dev),
                   iotd_device_queued(&d->dev) == 1 ? "" : "s");
        return;
    }
    if (opt->count > 0 && st->readings >= opt->count && !d->synth.off) {
        d->synth.off = true; /* no sensor answers: the core takes no more readings */
        d->drain_deadline_ms = now + opt->drain_timeout_ms;
    }
    d->wake_ms = now + sleep;
    if (opt->sleep && sleep > 0)
        iotd_posix_https_close(&d->posix.https); /* deep sleep: the radio is off */
    if (d->synth.off)
        drain(d, now);
}

static void *worker(void *arg)
{
    sim *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop && s->active > 0) {
        if (s->heap_len == 0) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        uint64_t now = mono_ms();
        sim_device *d = s->heap[0];
        if (d->wake_ms > now) {
            struct timespec until = {.tv_sec = (time_t)(d->wake_ms / 1000u),
                                     .tv_nsec = (long)(d->wake_ms % 1000u) * 1000000L};
            pthread_cond_timedwait(&s->cv, &s->mu, &until);
            continue;
        }
        heap_pop(s);
        pthread_mutex_unlock(&s->mu);
        step_device(d, now);
        pthread_mutex_lock(&s->mu);
        if (d->state == SIM_RUNNING)
            heap_push(s, d);
        else
            s->active--;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Waits for SIGINT or SIGTERM while the workers run; the signals are
 * blocked in every thread so only this wait sees them. */
static void wait_for_end(sim *s, const sigset_t *set)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool over = s->active == 0;
        pthread_mutex_unlock(&s->mu);
        if (over)
            return;
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 100 * 1000000L};
        int sig = sigtimedwait(set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            pthread_mutex_lock(&s->mu);
            s->stop = true;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return;
        }
    }
}

int sim_run(sim *s)
{
    const sim_options *opt = s->opt;
    size_t nt = opt->threads < s->n ? opt->threads : s->n;
    pthread_t *threads = calloc(nt, sizeof(*threads));
    if (threads == NULL) {
        sim_errorf("out of memory");
        return -1;
    }
    /* Start times spread over one interval, so many devices do not all
     * sample and connect at the same instant. */
    uint64_t now = mono_ms();
    for (size_t i = 0; i < s->n; i++) {
        s->devs[i]->wake_ms = now + (uint64_t)opt->interval_ms * i / s->n;
        heap_push(s, s->devs[i]);
    }
    s->active = s->n;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    size_t started = 0;
    for (; started < nt; started++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        /* Enough for an mbedTLS handshake under the sanitizers. */
        pthread_attr_setstacksize(&attr, 1024 * 1024);
        int rc = pthread_create(&threads[started], &attr, worker, s);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            sim_errorf("cannot start a worker thread: %s", strerror(rc));
            break;
        }
    }
    if (started > 0)
        wait_for_end(s, &set);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    return started > 0 ? 0 : -1;
}

int sim_report(const sim *s)
{
    int rc = 0;
    uint64_t tot[6] = {0};
    for (size_t i = 0; i < s->n; i++) {
        const sim_device *d = s->devs[i];
        const iotd_stats *st = iotd_device_stats(&d->dev);
        uint32_t queued = iotd_device_queued(&d->dev);
        char rejected[32] = "";
        if (st->rejected > 0)
            snprintf(rejected, sizeof(rejected), ", rejected %u", (unsigned)st->rejected);
        const char *why = d->state == SIM_REFUSED  ? " (certificate refused)"
                          : d->state == SIM_FAILED ? " (could not restart)"
                          : d->drain_timed_out     ? " (drain timeout)"
                                                   : "";
        char fw[96];
        sim_update_summary(d, fw, sizeof(fw));
        char tls[64] = "";
        if (s->opt->sleep && d->posix_open)
            snprintf(tls, sizeof(tls), ", handshakes %u (resumed %u)",
                     (unsigned)d->posix.https.stats.connects,
                     (unsigned)d->posix.https.stats.resumed);
        outf("%s: readings %u, sent %u, acknowledged %u, duplicates %u, dropped %u, queued "
             "%u%s%s%s%s",
             d->id, (unsigned)st->readings, (unsigned)d->sent, (unsigned)st->sent,
             (unsigned)d->duplicates, (unsigned)st->dropped, (unsigned)queued, rejected, tls, fw,
             why);
        if (d->state == SIM_REFUSED || d->state == SIM_FAILED || d->drain_timed_out)
            rc = 1;
        tot[0] += st->readings;
        tot[1] += d->sent;
        tot[2] += st->sent;
        tot[3] += d->duplicates;
        tot[4] += st->dropped;
        tot[5] += queued;
    }
    if (s->n > 1)
        outf("total (%zu devices): readings %llu, sent %llu, acknowledged %llu, duplicates %llu, "
             "dropped %llu, queued %llu",
             s->n, (unsigned long long)tot[0], (unsigned long long)tot[1],
             (unsigned long long)tot[2], (unsigned long long)tot[3], (unsigned long long)tot[4],
             (unsigned long long)tot[5]);
    return rc;
}

void sim_free(sim *s)
{
    for (size_t i = 0; i < s->n; i++) {
        sim_device *d = s->devs[i];
        if (d == NULL)
            continue;
        sim_close_device(d);
        sim_enroll_close(d);
        free(d->body);
        free(d->ubuf);
        free(d);
    }
    free(s->devs);
    free(s->heap);
    if (s->n > 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    memset(s, 0, sizeof(*s));
}
