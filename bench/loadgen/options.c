#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: loadgen --port P [--pki DIR] --devices PREFIX --count N [options]\n"
    "\n"
    "Acts as N enrolled devices: each connection presents its own device certificate\n"
    "(DIR/devices/PREFIX<i>/cert.pem and key.pem, i = 1..N, made by `iotctl device add`)\n"
    "and POSTs SenML readings with increasing per-device `seq` to /v1/telemetry.\n"
    "\n"
    "Target:\n"
    "  --host ADDR         IPv4 address of the server (default 127.0.0.1)\n"
    "  --port P            TCP port (required)\n"
    "  --sni NAME          server name sent and verified (default localhost)\n"
    "  --path PATH         request path (default /v1/telemetry)\n"
    "  --pki DIR           iotctl PKI directory (required unless --plain)\n"
    "  --devices PREFIX    device IDs are PREFIX1 .. PREFIXN (default bench-)\n"
    "  --count N           devices (default 1)\n"
    "Load:\n"
    "  --connections C     connections; connection i speaks for device i mod N\n"
    "                      (default: one per device)\n"
    "  --threads T         epoll loops (default 2)\n"
    "  --duration D        measured seconds (default 5)\n"
    "  --warmup W          seconds of load before measuring (default 1)\n"
    "  --grace G           seconds to wait for answers after the end (default 5)\n"
    "  --rate R            R requests/s in all, open loop: latency counts from the time\n"
    "                      each request was due (default: as fast as answers come)\n"
    "  --requests N        stop after N requests (the run ends when all are answered)\n"
    "  --batch K           readings per request (default 1)\n"
    "  --seq-start S       first device sequence number (default 1); give the previous\n"
    "                      run's seq_next when the same devices post again\n"
    "  --json-body         the original ESP32 format (application/json) instead of SenML\n"
    "  --plain             HTTP without TLS (sends X-Device-Id)\n"
    "  --tls12             offer TLS 1.2 only\n"
    "Modes:\n"
    "  --handshake         a new TLS connection for every request (a device's wake-up);\n"
    "                      no resumption: the rate reported is full handshakes/s\n"
    "  --resume            with --handshake: each connection resumes the session its\n"
    "                      device got last (session tickets), as a sleeping device does\n"
    "  --idle N            open N connections, one request each, report `idle_ready`,\n"
    "                      then hold them until SIGINT/SIGTERM or --hold seconds\n"
    "  --hold S            longest hold in --idle mode (default 600)\n"
    "Output:\n"
    "  --acked FILE        write the acknowledged readings (device, seq ranges) to FILE\n"
    "  --max-errors E      stop after E errors (default 1000; 0: never)\n"
    "  --json              one JSON line instead of the text report\n"
    "\n"
    "Exit status: 0 the run completed, 1 it could not start or stopped on --max-errors,\n"
    "2 the command line is wrong.\n";

enum {
    O_HOST = 256,
    O_PORT,
    O_SNI,
    O_PATH,
    O_PKI,
    O_DEVICES,
    O_COUNT,
    O_CONNS,
    O_THREADS,
    O_DURATION,
    O_WARMUP,
    O_GRACE,
    O_RATE,
    O_REQUESTS,
    O_BATCH,
    O_SEQ,
    O_JSON_BODY,
    O_PLAIN,
    O_TLS12,
    O_HANDSHAKE,
    O_RESUME,
    O_IDLE,
    O_HOLD,
    O_ACKED,
    O_MAX_ERRORS,
    O_JSON,
    O_HELP,
};

static const struct option LONG_OPTS[] = {
    {"host", required_argument, NULL, O_HOST},
    {"port", required_argument, NULL, O_PORT},
    {"sni", required_argument, NULL, O_SNI},
    {"path", required_argument, NULL, O_PATH},
    {"pki", required_argument, NULL, O_PKI},
    {"devices", required_argument, NULL, O_DEVICES},
    {"count", required_argument, NULL, O_COUNT},
    {"connections", required_argument, NULL, O_CONNS},
    {"threads", required_argument, NULL, O_THREADS},
    {"duration", required_argument, NULL, O_DURATION},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"grace", required_argument, NULL, O_GRACE},
    {"rate", required_argument, NULL, O_RATE},
    {"requests", required_argument, NULL, O_REQUESTS},
    {"batch", required_argument, NULL, O_BATCH},
    {"seq-start", required_argument, NULL, O_SEQ},
    {"json-body", no_argument, NULL, O_JSON_BODY},
    {"plain", no_argument, NULL, O_PLAIN},
    {"tls12", no_argument, NULL, O_TLS12},
    {"handshake", no_argument, NULL, O_HANDSHAKE},
    {"resume", no_argument, NULL, O_RESUME},
    {"idle", required_argument, NULL, O_IDLE},
    {"hold", required_argument, NULL, O_HOLD},
    {"acked", required_argument, NULL, O_ACKED},
    {"max-errors", required_argument, NULL, O_MAX_ERRORS},
    {"json", no_argument, NULL, O_JSON},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static int parse_i64(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_f(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int bad(const char *name, const char *val, const char *allowed)
{
    fprintf(stderr, "loadgen: invalid value '%s' for --%s; allowed: %s\n", val, name, allowed);
    return 2;
}

/* Options with an integer value. Returns 0, 2 (bad value) or -1 (not one). */
static int parse_int_option(int id, const char *val, lg_options *o)
{
    long long v = 0;
    switch (id) {
    case O_PORT:
        if (parse_i64(val, 1, 65535, &v) != 0)
            return bad("port", val, "1-65535");
        o->port = (int)v;
        return 0;
    case O_COUNT:
        if (parse_i64(val, 1, LG_DEVICES_MAX, &v) != 0)
            return bad("count", val, "1-100000");
        o->count = (int)v;
        return 0;
    case O_CONNS:
        if (parse_i64(val, 1, LG_CONNS_MAX, &v) != 0)
            return bad("connections", val, "1-100000");
        o->conns = (int)v;
        return 0;
    case O_IDLE:
        if (parse_i64(val, 1, LG_CONNS_MAX, &v) != 0)
            return bad("idle", val, "1-100000");
        o->conns = (int)v;
        o->mode = LG_IDLE;
        return 0;
    case O_THREADS:
        if (parse_i64(val, 1, LG_THREADS_MAX, &v) != 0)
            return bad("threads", val, "1-64");
        o->threads = (int)v;
        return 0;
    case O_REQUESTS:
        if (parse_i64(val, 1, LLONG_MAX, &v) != 0)
            return bad("requests", val, "a positive integer");
        o->requests = v;
        return 0;
    case O_BATCH:
        if (parse_i64(val, 1, LG_BATCH_MAX, &v) != 0)
            return bad("batch", val, "1-10000");
        o->batch = (int)v;
        return 0;
    case O_SEQ:
        if (parse_i64(val, 1, UINT32_MAX, &v) != 0)
            return bad("seq-start", val, "1-4294967295");
        o->seq_start = (uint64_t)v;
        return 0;
    case O_MAX_ERRORS:
        if (parse_i64(val, 0, LLONG_MAX, &v) != 0)
            return bad("max-errors", val, "0 or more");
        o->max_errors = v;
        return 0;
    }
    return -1;
}

/* Options with a number of seconds or a rate. */
static int parse_num_option(int id, const char *val, lg_options *o)
{
    switch (id) {
    case O_DURATION:
        return parse_f(val, 0.1, 86400, &o->duration) ? bad("duration", val, "0.1-86400") : 0;
    case O_WARMUP:
        return parse_f(val, 0, 3600, &o->warmup) ? bad("warmup", val, "0-3600") : 0;
    case O_GRACE:
        return parse_f(val, 0, 600, &o->grace) ? bad("grace", val, "0-600") : 0;
    case O_HOLD:
        return parse_f(val, 0, 86400, &o->hold) ? bad("hold", val, "0-86400") : 0;
    case O_RATE:
        return parse_f(val, 0.1, 1e8, &o->rate) ? bad("rate", val, "0.1-100000000") : 0;
    }
    return -1;
}

static int parse_flag_option(int id, const char *val, lg_options *o)
{
    switch (id) {
    case O_HOST:
        o->host = val;
        return 0;
    case O_SNI:
        o->sni = val;
        return 0;
    case O_PATH:
        o->path = val;
        return 0;
    case O_PKI:
        o->pki = val;
        return 0;
    case O_DEVICES:
        o->prefix = val;
        return 0;
    case O_ACKED:
        o->acked = val;
        return 0;
    case O_JSON_BODY:
        o->json_body = 1;
        return 0;
    case O_PLAIN:
        o->plain = 1;
        return 0;
    case O_TLS12:
        o->tls12 = 1;
        return 0;
    case O_HANDSHAKE:
        o->mode = LG_HANDSHAKE;
        return 0;
    case O_RESUME:
        o->resume = 1;
        return 0;
    case O_JSON:
        o->json = 1;
        return 0;
    }
    return -1;
}

static int check(lg_options *o)
{
    if (o->port == 0 || (o->pki == NULL && !o->plain)) {
        fprintf(stderr, "loadgen: --port and --pki (or --plain) are required\n%s", USAGE);
        return 2;
    }
    if (o->plain && (o->mode == LG_HANDSHAKE || o->tls12)) {
        fprintf(stderr, "loadgen: --handshake and --tls12 need TLS; drop --plain\n");
        return 2;
    }
    if (o->resume && o->mode != LG_HANDSHAKE) {
        fprintf(stderr, "loadgen: --resume needs --handshake\n");
        return 2;
    }
    if (strlen(o->prefix) > 56) {
        fprintf(stderr, "loadgen: --devices prefix is longer than 56 characters\n");
        return 2;
    }
    if (o->conns == 0)
        o->conns = o->count;
    if (o->threads > o->conns)
        o->threads = o->conns;
    if (o->seq_start + (uint64_t)o->batch > UINT32_MAX) {
        fprintf(stderr, "loadgen: --seq-start leaves no room below 2^32\n");
        return 2;
    }
    return 0;
}

int lg_options_parse(int argc, char **argv, lg_options *o)
{
    *o = (lg_options){.host = "127.0.0.1",
                      .sni = "localhost",
                      .path = "/v1/telemetry",
                      .prefix = "bench-",
                      .count = 1,
                      .threads = 2,
                      .duration = 5,
                      .warmup = 1,
                      .grace = 5,
                      .hold = 600,
                      .batch = 1,
                      .seq_start = 1,
                      .max_errors = 1000};
    int id;
    while ((id = getopt_long(argc, argv, "", LONG_OPTS, NULL)) != -1) {
        if (id == O_HELP) {
            fputs(USAGE, stdout);
            return 1;
        }
        if (id == '?')
            return 2;
        int rc = parse_int_option(id, optarg, o);
        if (rc < 0)
            rc = parse_num_option(id, optarg, o);
        if (rc < 0)
            rc = parse_flag_option(id, optarg, o);
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return check(o);
}
