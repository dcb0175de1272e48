/* mqtt-pub: the QoS 1 publish rate of the broker alone, measured the way the
 * gateway's forwarder publishes: MQTT 5 over TLS 1.2 with a client
 * certificate, a window of messages in flight, the next one sent as soon as
 * a PUBACK frees a slot.
 *
 *   mqtt-pub --port P --ca FILE --cert FILE --key FILE [--count N] [--size B]
 *            [--window W] [--topic T] [--json]
 *
 * Reports messages/s from the first PUBLISH to the last PUBACK, and the
 * PUBACK latency percentiles. (`mosquitto_pub -l` is no substitute: it exits
 * at the end of its input before its queue is flushed.)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "../common/report.h"

#define NS        1000000000ull
#define MIDS      65536
#define SIZE_MAX_ (256 * 1024)

typedef struct options {
    const char *host, *ca, *cert, *key, *topic;
    int port, json;
    long count, size, window;
    double timeout;
} options;

typedef struct state {
    const options *o;
    char *payload;
    uint64_t *sent_at; /* by message id */
    long sent, acked, refused, inflight;
    uint64_t t_first, t_last;
    int connected, failed;
    int receive_max; /* the broker's Receive Maximum: the window it allows */
    bench_hist *hist;
} state;

static const char USAGE[] =
    "usage: mqtt-pub --port P --ca FILE --cert FILE --key FILE [options]\n"
    "  --host H       broker host (default localhost)\n"
    "  --count N      messages (default 100000)\n"
    "  --size B       payload bytes (default 200)\n"
    "  --window W     QoS 1 messages in flight at most (default 256, the gateway's\n"
    "                 mqtt_inflight default)\n"
    "  --topic T      topic (default telemetry/bench-pub/telemetry)\n"
    "  --timeout S    give up after S seconds (default 600)\n"
    "  --json         one JSON line instead of the text report\n"
    "Exit status: 0 every message acknowledged, 1 failure, 2 usage.\n";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
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
                                          {"count", required_argument, NULL, 'n'},
                                          {"size", required_argument, NULL, 's'},
                                          {"window", required_argument, NULL, 'w'},
                                          {"timeout", required_argument, NULL, 'T'},
                                          {"json", no_argument, NULL, 'j'},
                                          {"help", no_argument, NULL, 'H'},
                                          {NULL, 0, NULL, 0}};
    *o = (options){.host = "localhost",
                   .topic = "telemetry/bench-pub/telemetry",
                   .count = 100000,
                   .size = 200,
                   .window = 256,
                   .timeout = 600};
    int id;
    long v;
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
        case 'j':
            o->json = 1;
            break;
        case 'p':
            if (parse_long(optarg, 1, 65535, &v) != 0)
                goto bad;
            o->port = (int)v;
            break;
        case 'n':
            if (parse_long(optarg, 1, 1000000000, &o->count) != 0)
                goto bad;
            break;
        case 's':
            if (parse_long(optarg, 32, SIZE_MAX_, &o->size) != 0)
                goto bad;
            break;
        case 'w':
            if (parse_long(optarg, 1, 32768, &o->window) != 0)
                goto bad;
            break;
        case 'T':
            if (parse_long(optarg, 1, 86400, &v) != 0)
                goto bad;
            o->timeout = (double)v;
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
    fprintf(stderr, "mqtt-pub: invalid value '%s'\n%s", optarg, USAGE);
    return 2;
}

/* A reading-like JSON document of exactly --size bytes. */
static void fill_payload(state *s, long seq)
{
    long size = s->o->size;
    int n =
        snprintf(s->payload, (size_t)size, "{\"device\":\"bench-pub\",\"seq\":%ld,\"pad\":\"", seq);
    if (n < 0 || n > size - 2)
        n = 0;
    memset(s->payload + n, 'x', (size_t)(size - n - 2));
    memcpy(s->payload + size - 2, "\"}", 2);
}

/* Sends until the window is full or every message is out. */
static void pump(struct mosquitto *m, state *s)
{
    while (s->connected && !s->failed && s->inflight < s->o->window && s->sent < s->o->count) {
        int mid = 0;
        fill_payload(s, s->sent + 1);
        uint64_t t = now_ns();
        int rc = mosquitto_publish(m, &mid, s->o->topic, (int)s->o->size, s->payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "mqtt-pub: publish failed: %s\n", mosquitto_strerror(rc));
            s->failed = 1;
            return;
        }
        if (s->sent == 0)
            s->t_first = t;
        s->sent_at[mid % MIDS] = t;
        s->sent++;
        s->inflight++;
    }
}

static void on_connect(struct mosquitto *m, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)flags;
    state *s = arg;
    uint16_t rmax = 65535; /* absent: no limit below the protocol's */
    mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &rmax, false);
    s->receive_max = rmax;
    if (rc != 0) {
        fprintf(stderr, "mqtt-pub: the broker refused the connection: %s\n",
                mosquitto_reason_string(rc));
        s->failed = 1;
        return;
    }
    s->connected = 1;
    pump(m, s);
}

static void on_publish(struct mosquitto *m, void *arg, int mid, int reason,
                       const mosquitto_property *props)
{
    (void)props;
    state *s = arg;
    uint64_t t = now_ns();
    if (reason >= 0x80)
        s->refused++;
    bench_hist_add(s->hist, t - s->sent_at[mid % MIDS]);
    s->acked++;
    s->inflight--;
    s->t_last = t;
    if (s->acked == s->o->count)
        mosquitto_disconnect(m);
    else
        pump(m, s);
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc)
{
    (void)m;
    state *s = arg;
    s->connected = 0;
    if (s->acked < s->o->count) {
        fprintf(stderr, "mqtt-pub: disconnected after %ld of %ld acknowledgements: %s\n", s->acked,
                s->o->count, mosquitto_strerror(rc));
        s->failed = 1;
    }
}

static int report(const state *s)
{
    double secs = s->t_last > s->t_first ? (double)(s->t_last - s->t_first) / 1e9 : 0.0;
    double rate = secs > 0 ? (double)s->acked / secs : 0.0;
    if (s->o->json) {
        cJSON *j = cJSON_CreateObject();
        if (j == NULL)
            return -1;
        cJSON_AddStringToObject(j, "tool", "mqtt-pub");
        cJSON_AddNumberToObject(j, "messages", (double)s->acked);
        cJSON_AddNumberToObject(j, "refused", (double)s->refused);
        cJSON_AddNumberToObject(j, "size", (double)s->o->size);
        cJSON_AddNumberToObject(j, "window", (double)s->o->window);
        cJSON_AddNumberToObject(j, "broker_receive_maximum", s->receive_max);
        cJSON_AddNumberToObject(j, "seconds", secs);
        cJSON_AddNumberToObject(j, "msgs_per_s", rate);
        bench_json_latency(j, "puback_latency", s->hist);
        return bench_json_print(j);
    }
    char lat[200];
    bench_text_latency(lat, sizeof(lat), s->hist);
    printf("mqtt-pub: %ld QoS 1 messages of %ld bytes, window %ld (broker's Receive Maximum "
           "%d): %.3f s, %.0f messages/s; refused %ld\n  PUBACK latency %s\n",
           s->acked, s->o->size, s->o->window, s->receive_max, secs, rate, s->refused, lat);
    return 0;
}

static int setup(struct mosquitto *m, const options *o)
{
    int rc = mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    /* The window below is the only limit, as in the gateway. */
    mosquitto_max_inflight_messages_set(m, 0);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_set(m, o->ca, NULL, o->cert, o->key, NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_tls_opts_set(m, 1, "tlsv1.2", NULL);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect(m, o->host, o->port, 30);
    if (rc != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "mqtt-pub: cannot connect to %s:%d: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    rc = 1;
    state s = {.o = &o};
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof(id), "mqtt-pub-%ld", (long)getpid());
    struct mosquitto *m = mosquitto_new(id, true, &s);
    s.payload = malloc((size_t)o.size);
    s.sent_at = calloc(MIDS, sizeof(*s.sent_at));
    s.hist = calloc(1, sizeof(*s.hist));
    if (m == NULL || s.payload == NULL || s.sent_at == NULL || s.hist == NULL) {
        fprintf(stderr, "mqtt-pub: out of memory\n");
        goto out;
    }
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    if (setup(m, &o) != 0)
        goto out;
    uint64_t deadline = now_ns() + (uint64_t)(o.timeout * 1e9);
    while (!s.failed && s.acked < o.count && now_ns() < deadline) {
        int lrc = mosquitto_loop(m, 100, 1);
        if (lrc != MOSQ_ERR_SUCCESS && s.acked < o.count) {
            fprintf(stderr, "mqtt-pub: connection lost: %s\n", mosquitto_strerror(lrc));
            s.failed = 1;
        }
    }
    if (s.acked < o.count && !s.failed)
        fprintf(stderr, "mqtt-pub: timed out after %ld of %ld acknowledgements\n", s.acked,
                o.count);
    else if (!s.failed && report(&s) == 0)
        rc = 0;
out:
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    free(s.payload);
    free(s.sent_at);
    free(s.hist);
    return rc;
}
