/* loadgen: many enrolled devices posting readings to the gateway (or to
 * anything else that answers POST /v1/telemetry), for the benchmark.
 * `loadgen --help` lists the options; bench/run.sh shows them in use.
 *
 * Every connection presents its own device's certificate and every reading
 * its device's next sequence number, as docs/protocol.md says. Answers are
 * parsed with libhttp-parser. Latency goes into a log-linear histogram and
 * is reported as percentiles; with --rate it counts from the moment each
 * request was due, so a server that stalls cannot hide the requests that
 * queued behind the stall (no coordinated omission).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/opensslv.h>

#include "../common/report.h"
#include "devices.h"
#include "engine.h"
#include "options.h"
#include "request.h"

#define FD_HEADROOM 64

/* Each connection is a descriptor: raise the soft limit to what the run
 * needs, and the hard one too when allowed (root). */
static void raise_fd_limit(int conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + FD_HEADROOM;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        fprintf(stderr, "loadgen: warning: RLIMIT_NOFILE is %llu, below the %d connections\n",
                (unsigned long long)rl.rlim_cur, conns);
}

static const char *mode_name(const lg_options *o)
{
    return o->mode == LG_HANDSHAKE ? "handshake" : o->mode == LG_IDLE ? "idle" : "keepalive";
}

static const char *transport(const lg_options *o)
{
    return o->plain ? "http" : o->tls12 ? "tls1.2" : "tls";
}

static uint64_t errors_of(const lg_stats *s)
{
    uint64_t n = s->err_connect + s->err_tls + s->err_http + s->err_closed + s->unanswered;
    for (int i = 0; i < LG_STATUS_MAX; i++)
        if (i < 200 || i > 299)
            n += s->status[i];
    return n;
}

typedef struct run_figures {
    double seconds;
    uint64_t measure_start_ns, measure_end_ns; /* Unix time */
    uint64_t seq_next, acked;
    size_t body_len;
} run_figures;

static cJSON *status_object(const lg_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    char key[8];
    for (int i = 0; o != NULL && i < LG_STATUS_MAX; i++) {
        if (s->status[i] == 0)
            continue;
        snprintf(key, sizeof(key), "%d", i);
        cJSON_AddNumberToObject(o, key, (double)s->status[i]);
    }
    return o;
}

static cJSON *conn_errors_object(const lg_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddNumberToObject(o, "connect", (double)s->err_connect);
    cJSON_AddNumberToObject(o, "tls", (double)s->err_tls);
    cJSON_AddNumberToObject(o, "http", (double)s->err_http);
    cJSON_AddNumberToObject(o, "closed", (double)s->err_closed);
    cJSON_AddNumberToObject(o, "unanswered", (double)s->unanswered);
    return o;
}

static int report_json(const lg_options *o, const lg_stats *s, const run_figures *f)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL)
        return -1;
    double secs = f->seconds > 0 ? f->seconds : 1e-9;
    cJSON_AddStringToObject(j, "tool", "loadgen");
    cJSON_AddStringToObject(j, "mode", mode_name(o));
    cJSON_AddStringToObject(j, "transport", transport(o));
    cJSON_AddStringToObject(j, "body", o->json_body ? "json" : "senml");
    cJSON_AddNumberToObject(j, "body_bytes", (double)f->body_len);
    cJSON_AddNumberToObject(j, "batch", o->batch);
    cJSON_AddNumberToObject(j, "connections", o->conns);
    cJSON_AddNumberToObject(j, "devices", o->count);
    cJSON_AddNumberToObject(j, "threads", o->threads);
    cJSON_AddNumberToObject(j, "seconds", f->seconds);
    cJSON_AddNumberToObject(j, "rate_target", o->rate);
    cJSON_AddNumberToObject(j, "requests", (double)s->ok);
    cJSON_AddNumberToObject(j, "rps", (double)s->ok / secs);
    cJSON_AddNumberToObject(j, "readings", (double)s->readings);
    cJSON_AddNumberToObject(j, "readings_per_s", (double)s->readings / secs);
    cJSON_AddNumberToObject(j, "errors", (double)errors_of(s));
    cJSON_AddItemToObject(j, "status", status_object(s));
    cJSON_AddItemToObject(j, "conn_errors", conn_errors_object(s));
    cJSON_AddNumberToObject(j, "duplicates", (double)s->duplicates);
    cJSON_AddNumberToObject(j, "reconnects", (double)s->reconnects);
    if (o->mode == LG_IDLE) {
        cJSON_AddNumberToObject(j, "established", (double)s->established);
        cJSON_AddNumberToObject(j, "closed_by_server", (double)s->closed_by_server);
    }
    if (o->mode == LG_HANDSHAKE && s->wakes > 0) {
        double n = (double)s->wakes;
        cJSON_AddNumberToObject(j, "wakes", n);
        cJSON_AddNumberToObject(j, "wakes_resumed", (double)s->wakes_resumed);
        cJSON_AddNumberToObject(j, "bytes_out_per_wake", (double)s->wire_out / n);
        cJSON_AddNumberToObject(j, "bytes_in_per_wake", (double)s->wire_in / n);
        cJSON_AddNumberToObject(j, "round_trips_per_wake", (double)s->waits / n);
    }
    cJSON_AddNumberToObject(j, "acked_readings", (double)f->acked);
    cJSON_AddNumberToObject(j, "seq_next", (double)f->seq_next);
    cJSON_AddNumberToObject(j, "measure_start_unix", (double)f->measure_start_ns / 1e9);
    cJSON_AddNumberToObject(j, "measure_end_unix", (double)f->measure_end_ns / 1e9);
    if (s->first_error[0] != '\0')
        cJSON_AddStringToObject(j, "first_error", s->first_error);
    bench_json_latency(j, "latency", s->hist);
    return bench_json_print(j);
}

static void report_text(const lg_options *o, const lg_stats *s, const run_figures *f)
{
    char lat[200], statuses[400] = "";
    size_t used = 0;
    double secs = f->seconds > 0 ? f->seconds : 1e-9;
    for (int i = 0; i < LG_STATUS_MAX && used < sizeof(statuses); i++) {
        if (s->status[i] == 0)
            continue;
        int n = snprintf(statuses + used, sizeof(statuses) - used, " %d=%" PRIu64, i, s->status[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    bench_text_latency(lat, sizeof(lat), s->hist);
    printf("loadgen: %s over %s, %d connections for %d devices, %d threads, %zu-byte body, "
           "%d reading(s) per request\n",
           mode_name(o), transport(o), o->conns, o->count, o->threads, f->body_len, o->batch);
    printf("  measured   %.3f s%s\n", f->seconds,
           o->rate > 0 ? " (open loop at the target rate)" : "");
    if (o->rate > 0)
        printf("  target     %.1f requests/s\n", o->rate);
    printf("  done       %" PRIu64 " requests answered 2xx: %.1f %s/s, %.1f readings/s\n", s->ok,
           (double)s->ok / secs, o->mode == LG_HANDSHAKE ? "handshakes" : "requests",
           (double)s->readings / secs);
    if (o->mode == LG_IDLE)
        printf("  idle       %" PRIu64 " connections established, %" PRIu64
               " closed by the server while held\n",
               s->established, s->closed_by_server);
    printf("  errors     %" PRIu64 "; answers by status:%s\n", errors_of(s),
           used ? statuses : " none");
    printf("  conn       connect %" PRIu64 ", tls %" PRIu64 ", http %" PRIu64 ", closed %" PRIu64
           ", unanswered %" PRIu64 "; reconnects %" PRIu64 "; duplicates %" PRIu64 "\n",
           s->err_connect, s->err_tls, s->err_http, s->err_closed, s->unanswered, s->reconnects,
           s->duplicates);
    if (o->mode == LG_HANDSHAKE && s->wakes > 0)
        printf("  wake-ups   %" PRIu64 " (%" PRIu64 " resumed); per wake-up %.0f bytes out, %.0f "
               "in, %.2f round trips\n",
               s->wakes, s->wakes_resumed, (double)s->wire_out / (double)s->wakes,
               (double)s->wire_in / (double)s->wakes, (double)s->waits / (double)s->wakes);
    printf("  latency    %s\n", lat);
    printf("  seq_next   %" PRIu64 "; acknowledged readings %" PRIu64 "\n", f->seq_next, f->acked);
    if (s->first_error[0] != '\0')
        printf("  first error: %s\n", s->first_error);
}

/* --idle: holds until a signal or --hold. Workers have these signals
 * blocked, so they arrive here. */
static void hold_idle(lg_engine *e, const lg_options *o, const sigset_t *sigs)
{
    struct timespec ts = {(time_t)o->hold, (long)((o->hold - (double)(time_t)o->hold) * 1e9)};
    while (sigtimedwait(sigs, NULL, &ts) < 0 && errno == EINTR)
        ;
    lg_engine_stop(e);
}

static void idle_ready(lg_engine *e, const lg_options *o)
{
    uint64_t up = 0, errors = 0;
    lg_engine_setup_figures(e, &up, &errors);
    if (o->json) {
        printf("{\"event\":\"idle_ready\",\"target\":%d,\"established\":%" PRIu64
               ",\"errors\":%" PRIu64 "}\n",
               o->conns, up, errors);
    } else {
        printf("idle_ready target=%d established=%" PRIu64 " errors=%" PRIu64 "\n", o->conns, up,
               errors);
    }
    fflush(stdout);
}

static double run_seconds(const lg_options *o, const lg_stats *s, uint64_t measure_start)
{
    if (o->requests > 0)
        return s->last_answer_ns > measure_start ? (double)(s->last_answer_ns - measure_start) / 1e9
                                                 : 0.0;
    return o->mode == LG_IDLE ? 0.0 : o->duration;
}

int main(int argc, char **argv)
{
    lg_options o;
    lg_devices devs = {0};
    lg_engine *e = NULL;
    lg_stats st = {0};
    char err[512] = "";
    int rc = lg_options_parse(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 1;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (o.mode == LG_IDLE)
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    raise_fd_limit(o.conns);
    st.hist = calloc(1, sizeof(*st.hist));
    if (st.hist == NULL || lg_devices_load(&o, &devs, err, sizeof(err)) != 0 ||
        (e = lg_engine_start(&o, &devs, err, sizeof(err))) == NULL) {
        fprintf(stderr, "loadgen: %s\n", err[0] ? err : "out of memory");
        goto out;
    }
    if (o.mode == LG_IDLE)
        idle_ready(e, &o);
    uint64_t measure_start = lg_engine_go(e);
    if (o.mode == LG_IDLE)
        hold_idle(e, &o, &sigs);
    int failed = lg_engine_join(e, &st);
    run_figures f = {.seconds = run_seconds(&o, &st, measure_start),
                     .seq_next = lg_devices_seq_next(&devs),
                     .acked = lg_devices_acked(&devs),
                     .body_len = lg_request_body_len(&o, devs.dev[0].name)};
    uint64_t wall = lg_wall_offset_ns();
    f.measure_start_ns = measure_start + wall;
    f.measure_end_ns = f.measure_start_ns + (uint64_t)(f.seconds * 1e9);
    if (o.acked != NULL &&
        lg_devices_write_acked(&devs, o.acked, f.measure_start_ns, f.measure_end_ns) != 0) {
        fprintf(stderr, "loadgen: cannot write %s: %s\n", o.acked, strerror(errno));
        goto out;
    }
    if (o.json)
        report_json(&o, &st, &f);
    else
        report_text(&o, &st, &f);
    if (failed)
        fprintf(stderr, "loadgen: stopped early: %s\n",
                st.first_error[0] ? st.first_error : "more errors than --max-errors");
    rc = failed ? 1 : 0;
out:
    lg_engine_free(e);
    lg_devices_free(&devs);
    free(st.hist);
    return rc;
}
