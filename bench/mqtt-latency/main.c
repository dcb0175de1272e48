/* mqtt-latency: subscribes to the gateway's telemetry over MQTT/TLS and
 * measures, for every reading, the time from the moment the load generator
 * meant to send it to the moment it arrives here; then checks, against the
 * readings the load generator saw acknowledged, that none was lost.
 *
 *   mqtt-latency --port P --ca FILE --cert FILE --key FILE [options]
 *
 * The send time travels in the reading itself: loadgen writes its intended
 * send time (Unix time, microseconds) as the SenML base time `bt`, and the
 * gateway publishes it as the message's `t`. Both programs run on the same
 * host, so their clocks agree. The subscriber runs until SIGINT or SIGTERM,
 * then reads --acked, waits up to --settle seconds for readings still on
 * their way, and reports:
 *   lost        acknowledged readings (device, dseq) that never arrived
 *   duplicates  messages whose (device, seq) arrived before
 *   gseq_gaps   numbers missing between the lowest and highest gateway seq
 *               seen per device
 *   latency     percentiles over the readings sent in the measured window
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "../common/report.h"
#include "track.h"

#define NS          1000000000ull
#define SAMPLES_MAX (64u * 1024 * 1024)
#define LINE_MAX_   256

typedef struct options {
    const char *host, *ca, *cert, *key, *topic, *acked, *ready;
    int port, qos, json;
    double settle, max_seconds;
} options;

typedef struct sample {
    uint64_t sent_ns, latency_ns;
} sample;

typedef struct acked_range {
    char device[72];
    uint64_t lo, hi;
} acked_range;

typedef struct state {
    pthread_mutex_t lock;
    ml_devices devs;
    sample *samples;
    size_t n_samples, cap_samples;
    uint64_t received, duplicates, unparsed, samples_dropped, bytes, early;
    int subscribed, out_of_memory;
    const options *o;
} state;

typedef struct acked {
    acked_range *r;
    size_t n, cap;
    uint64_t total;
    uint64_t start_ns, end_ns; /* measured window, Unix time; 0: none */
} acked;

static const char USAGE[] =
    "usage: mqtt-latency --port P --ca FILE --cert FILE --key FILE [options]\n"
    "  --host H          broker host (default localhost)\n"
    "  --topic T         subscription (default telemetry/+/telemetry)\n"
    "  --qos Q           subscription QoS, 0-2 (default 1)\n"
    "  --acked FILE      readings loadgen saw acknowledged (its --acked); at the end,\n"
    "                    wait for them and count those that never arrived\n"
    "  --settle S        seconds to wait for them after the stop signal (default 10)\n"
    "  --ready FILE      created once the subscription is acknowledged\n"
    "  --max-seconds S   stop by itself after S seconds (default 3600)\n"
    "  --json            one JSON line instead of the text report\n"
    "Runs until SIGINT or SIGTERM. Exit status: 0 report written, 1 failure, 2 usage.\n";

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* --- options ------------------------------------------------------------- */

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option longs[] = {{"host", required_argument, NULL, 'h'},
                                          {"port", required_argument, NULL, 'p'},
                                          {"ca", required_argument, NULL, 'c'},
                                          {"cert", required_argument, NULL, 'C'},
                                          {"key", required_argument, NULL, 'k'},
                                          {"topic", required_argument, NULL, 't'},
                                          {"qos", required_argument, NULL, 'q'},
                                          {"acked", required_argument, NULL, 'a'},
                                          {"settle", required_argument, NULL, 's'},
                                          {"ready", required_argument, NULL, 'r'},
                                          {"max-seconds", required_argument, NULL, 'm'},
                                          {"json", no_argument, NULL, 'j'},
                                          {"help", no_argument, NULL, 'H'},
                                          {NULL, 0, NULL, 0}};
    *o = (options){.host = "localhost",
                   .topic = "telemetry/+/telemetry",
                   .qos = 1,
                   .settle = 10,
                   .max_seconds = 3600};
    int id;
    double v;
    while ((id = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (id) {
        case 'h':
            o->host = optarg;
            break;
        case 'c':
            o->ca = optarg;
            break;
        case 'C':
            o->cert = optarg;
            break;
        case 'k':
            o->key = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'a':
            o->acked = optarg;
            break;
        case 'r':
            o->ready = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'p':
            if (parse_num(optarg, 1, 65535, &v) != 0)
                goto bad;
            o->port = (int)v;
            break;
        case 'q':
            if (parse_num(optarg, 0, 2, &v) != 0)
                goto bad;
            o->qos = (int)v;
            break;
        case 's':
            if (parse_num(optarg, 0, 3600, &o->settle) != 0)
                goto bad;
            break;
        case 'm':
            if (parse_num(optarg, 0.1, 86400, &o->max_seconds) != 0)
                goto bad;
            break;
        case 'H':
            fputs(USAGE, stdout);
            return 1;
        default:
            return 2;
        }
    }
    if (o->port == 0 || !o->ca || !o->cert || !o->key || optind < argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    return 0;
bad:
    fprintf(stderr, "mqtt-latency: invalid value '%s'\n%s", optarg, USAGE);
    return 2;
}

/* --- messages ------------------------------------------------------------ */

static void add_sample(state *s, uint64_t sent, uint64_t latency)
{
    if (s->n_samples == s->cap_samples) {
        size_t cap = s->cap_samples ? s->cap_samples * 2 : 65536;
        sample *grown = cap <= SAMPLES_MAX ? realloc(s->samples, cap * sizeof(*grown)) : NULL;
        if (grown == NULL) {
            s->samples_dropped++;
            return;
        }
        s->samples = grown;
        s->cap_samples = cap;
    }
    s->samples[s->n_samples++] = (sample){sent, latency};
}

/* One reading as the gateway publishes it (docs/gateway.md, message format). */
static void record(state *s, const cJSON *j, uint64_t now)
{
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
    const cJSON *dseq = cJSON_GetObjectItemCaseSensitive(j, "dseq");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
    if (!cJSON_IsString(dev) || !cJSON_IsNumber(seq) || !cJSON_IsNumber(t) ||
        seq->valuedouble < 0) {
        s->unparsed++;
        return;
    }
    ml_device *d = ml_devices_get(&s->devs, dev->valuestring);
    int dup = d ? ml_bitset_add(&d->gseq, (uint64_t)seq->valuedouble) : -1;
    if (dup < 0) {
        s->out_of_memory = 1;
        return;
    }
    d->received++;
    if (dup) {
        d->duplicates++;
        s->duplicates++;
        return;
    }
    int64_t g = (int64_t)seq->valuedouble;
    d->gseq_min = g < d->gseq_min ? g : d->gseq_min;
    d->gseq_max = g > d->gseq_max ? g : d->gseq_max;
    if (cJSON_IsNumber(dseq) && dseq->valuedouble >= 1 &&
        ml_bitset_add(&d->dseq, (uint64_t)dseq->valuedouble) == 0)
        d->unique_dseq++;
    uint64_t sent = (uint64_t)(t->valuedouble * 1e9);
    if (sent > now) /* a clock step: keep it visible, not negative */
        s->early++;
    add_sample(s, sent, sent > now ? 0 : now - sent);
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    (void)m;
    state *s = arg;
    uint64_t now = wall_ns();
    cJSON *j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
    pthread_mutex_lock(&s->lock);
    s->received++;
    s->bytes += (uint64_t)msg->payloadlen;
    if (j == NULL)
        s->unparsed++;
    else
        record(s, j, now);
    pthread_mutex_unlock(&s->lock);
    cJSON_Delete(j);
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    state *s = arg;
    if (rc != 0) {
        fprintf(stderr, "mqtt-latency: the broker refused the connection: %s\n",
                mosquitto_connack_string(rc));
        return;
    }
    mosquitto_subscribe(m, NULL, s->o->topic, s->o->qos);
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    (void)m, (void)mid;
    state *s = arg;
    if (n < 1 || granted[0] > 2) {
        fprintf(stderr, "mqtt-latency: the broker refused the subscription to %s\n", s->o->topic);
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->subscribed = 1;
    pthread_mutex_unlock(&s->lock);
    if (s->o->ready != NULL) {
        FILE *f = fopen(s->o->ready, "w");
        if (f != NULL)
            fclose(f);
    }
}

/* --- acknowledged readings ----------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

/* One line of loadgen's --acked file: "window START END" or "DEVICE LO HI". */
static int acked_line(acked *a, char *line)
{
    char *save = NULL;
    char *name = strtok_r(line, " \n", &save);
    char *lo_s = strtok_r(NULL, " \n", &save);
    char *hi_s = strtok_r(NULL, " \n", &save);
    uint64_t lo, hi;
    if (name == NULL || lo_s == NULL || hi_s == NULL || parse_u64(lo_s, &lo) != 0 ||
        parse_u64(hi_s, &hi) != 0 || hi < lo || strlen(name) >= sizeof(a->r[0].device))
        return -1;
    if (strcmp(name, "window") == 0) {
        a->start_ns = lo;
        a->end_ns = hi;
        return 0;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        acked_range *grown = realloc(a->r, cap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        a->r = grown;
        a->cap = cap;
    }
    acked_range *r = &a->r[a->n++];
    snprintf(r->device, sizeof(r->device), "%s", name);
    r->lo = lo;
    r->hi = hi;
    a->total += hi - lo + 1;
    return 0;
}

static int load_acked(const char *path, acked *a)
{
    int rc = -1;
    char line[LINE_MAX_];
    unsigned lineno = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "mqtt-latency: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (acked_line(a, line) != 0) {
            fprintf(stderr, "mqtt-latency: %s:%u: not 'DEVICE LO HI' or 'window START END'\n", path,
                    lineno);
            goto out;
        }
    }
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* Acknowledged readings not (yet) received. Call with the lock held. */
static uint64_t missing(const state *s, const acked *a)
{
    uint64_t n = 0;
    for (size_t i = 0; i < a->n; i++) {
        const ml_device *d = ml_devices_find(&s->devs, a->r[i].device);
        for (uint64_t q = a->r[i].lo; q <= a->r[i].hi; q++)
            n += d == NULL || !ml_bitset_has(&d->dseq, q);
    }
    return n;
}

/* --- report -------------------------------------------------------------- */

typedef struct summary {
    uint64_t unique, unique_dseq, gseq_gaps, lost, extra;
    bench_hist *hist;
} summary;

static void summarize(const state *s, const acked *a, summary *out)
{
    for (size_t i = 0; i < s->devs.cap; i++) {
        const ml_device *d = s->devs.slots[i];
        if (d == NULL)
            continue;
        out->unique += d->received - d->duplicates;
        out->unique_dseq += d->unique_dseq;
        if (d->gseq_max >= d->gseq_min)
            out->gseq_gaps +=
                (uint64_t)(d->gseq_max - d->gseq_min + 1) - (d->received - d->duplicates);
    }
    out->lost = a->n > 0 ? missing(s, a) : 0;
    uint64_t delivered_acked = a->total - out->lost;
    out->extra = out->unique_dseq > delivered_acked ? out->unique_dseq - delivered_acked : 0;
    for (size_t i = 0; i < s->n_samples; i++) {
        const sample *x = &s->samples[i];
        if (a->end_ns == 0 || (x->sent_ns >= a->start_ns && x->sent_ns < a->end_ns))
            bench_hist_add(out->hist, x->latency_ns);
    }
}

static int report(const state *s, const acked *a, const summary *m)
{
    double avg = s->received ? (double)s->bytes / (double)s->received : 0.0;
    if (s->o->json) {
        cJSON *j = cJSON_CreateObject();
        if (j == NULL)
            return -1;
        cJSON_AddStringToObject(j, "tool", "mqtt-latency");
        cJSON_AddNumberToObject(j, "received", (double)s->received);
        cJSON_AddNumberToObject(j, "unique", (double)m->unique);
        cJSON_AddNumberToObject(j, "duplicates", (double)s->duplicates);
        cJSON_AddNumberToObject(j, "devices", (double)s->devs.n);
        cJSON_AddNumberToObject(j, "acked", (double)a->total);
        cJSON_AddNumberToObject(j, "lost", (double)m->lost);
        cJSON_AddNumberToObject(j, "extra", (double)m->extra);
        cJSON_AddNumberToObject(j, "gseq_gaps", (double)m->gseq_gaps);
        cJSON_AddNumberToObject(j, "unparsed", (double)s->unparsed);
        cJSON_AddNumberToObject(j, "clock_early", (double)s->early);
        cJSON_AddNumberToObject(j, "samples_dropped", (double)s->samples_dropped);
        cJSON_AddNumberToObject(j, "payload_bytes_avg", avg);
        cJSON_AddBoolToObject(j, "window", a->end_ns != 0);
        bench_json_latency(j, "latency", m->hist);
        return bench_json_print(j);
    }
    char lat[200];
    bench_text_latency(lat, sizeof(lat), m->hist);
    printf("mqtt-latency: %" PRIu64 " messages from %zu devices (%.0f bytes on average)\n",
           s->received, s->devs.n, avg);
    printf("  unique     %" PRIu64 "; duplicates %" PRIu64 "; gateway seq gaps %" PRIu64
           "; unparsed %" PRIu64 "\n",
           m->unique, s->duplicates, m->gseq_gaps, s->unparsed);
    if (a->n > 0)
        printf("  acked      %" PRIu64 " readings acknowledged to loadgen; lost %" PRIu64
               "; received but not acknowledged %" PRIu64 "\n",
               a->total, m->lost, m->extra);
    printf("  latency    %s, send to arrival%s\n", lat,
           a->end_ns ? " (readings sent in the measured window)" : "");
    return 0;
}

/* --- main ---------------------------------------------------------------- */

static int connect_broker(struct mosquitto *m, const options *o)
{
    int rc = mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    /* Our PUBACKs must not wait for Nagle: that delay would be the
     * subscriber's, not the system's. */
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_set(m, o->ca, NULL, o->cert, o->key, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(m, 1, "tlsv1.2", NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect(m, o->host, o->port, 30);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(m);
    if (rc != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "mqtt-latency: cannot connect to %s:%d: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* Waits for the acknowledged readings still on their way. */
static void settle(state *s, const acked *a)
{
    uint64_t deadline = wall_ns() + (uint64_t)(s->o->settle * 1e9);
    struct timespec tick = {0, 50 * 1000 * 1000};
    for (;;) {
        pthread_mutex_lock(&s->lock);
        uint64_t left = missing(s, a);
        pthread_mutex_unlock(&s->lock);
        if (left == 0 || wall_ns() >= deadline)
            return;
        nanosleep(&tick, NULL);
    }
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 1;
    state s = {.o = &o};
    acked a = {0};
    summary m = {0};
    struct mosquitto *mosq = NULL;
    pthread_mutex_init(&s.lock, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    /* Blocked before libmosquitto's thread starts, so only sigtimedwait sees them. */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof(id), "mqtt-latency-%ld", (long)getpid());
    mosq = mosquitto_new(id, true, &s);
    m.hist = calloc(1, sizeof(*m.hist));
    if (mosq == NULL || m.hist == NULL) {
        fprintf(stderr, "mqtt-latency: out of memory\n");
        goto out;
    }
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    if (connect_broker(mosq, &o) != 0)
        goto out;
    struct timespec limit = {(time_t)o.max_seconds,
                             (long)((o.max_seconds - (double)(time_t)o.max_seconds) * 1e9)};
    while (sigtimedwait(&sigs, NULL, &limit) < 0 && errno == EINTR)
        ;
    if (o.acked != NULL) {
        if (load_acked(o.acked, &a) != 0)
            goto stop;
        settle(&s, &a);
    }
    pthread_mutex_lock(&s.lock);
    summarize(&s, &a, &m);
    int subscribed = s.subscribed, oom = s.out_of_memory;
    pthread_mutex_unlock(&s.lock);
    if (!subscribed)
        fprintf(stderr, "mqtt-latency: never subscribed to %s\n", o.topic);
    else if (oom)
        fprintf(stderr, "mqtt-latency: out of memory while counting messages\n");
    else if (report(&s, &a, &m) == 0)
        rc = 0;
stop:
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
out:
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    ml_devices_free(&s.devs);
    free(s.samples);
    free(a.r);
    free(m.hist);
    pthread_mutex_destroy(&s.lock);
    return rc;
}
