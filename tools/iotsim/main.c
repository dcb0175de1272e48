/* iotsim: simulated devices that send readings to the gateway as the
 * firmware does, with the real device core and real TLS identities.
 *
 *   iotsim --gateway URL --pki DIR (--device ID ... | --devices N [--prefix P]) [OPTIONS]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/version.h>

#include "sim.h"

#define EXIT_USAGE   2
#define DEVICES_MAX  100000
#define DURATION_MAX (24u * 3600u * 1000u)

static const char USAGE[] =
    "usage: iotsim --gateway URL --pki DIR (--device ID ... | --devices N [--prefix P])\n"
    "              [--crl FILE] [--state DIR] [--interval DUR] [--count N] [--drain-timeout DUR]\n"
    "              [--batch N] [--queue N] [--seed N] [--sensors LIST] [--threads N]\n"
    "              [--backoff-max DUR] [--connect-timeout DUR] [--timeout DUR] [-v|-vv|-q]\n";

static const char HELP[] =
    "\n"
    "Runs simulated devices: each is the device core over the Linux port, with its own\n"
    "certificate, state directory and synthetic sensors (smooth daily curves plus noise),\n"
    "posting SenML readings to the gateway over HTTPS with mutual TLS.\n"
    "\n"
    "  --gateway URL          the gateway, https://HOST[:PORT] (required)\n"
    "  --pki DIR              the PKI directory of iotctl; device ID uses\n"
    "                         DIR/devices/ID/key.pem, cert.pem and ca.pem (required)\n"
    "  --crl FILE             refuse a gateway whose certificate this CRL (PEM, from\n"
    "                         iotctl) lists; a CRL past its next update fails every\n"
    "                         handshake (default: no revocation check)\n"
    "  --device ID            simulate this enrolled device (repeatable)\n"
    "  --devices N            simulate devices PREFIX1 .. PREFIXN\n"
    "  --prefix P             name prefix for --devices (default sim-)\n"
    "  --state DIR            persistent state, one directory per device: the sequence\n"
    "                         number and the offline queue survive restarts (default\n"
    "                         ./iotsim-state)\n"
    "  --interval DUR         sampling period (default 10s)\n"
    "  --count N              take N readings per device, then exit once every queue is\n"
    "                         empty (default 0: run until SIGINT or SIGTERM)\n"
    "  --drain-timeout DUR    after --count, wait at most this long for queues to empty\n"
    "                         (default 30s)\n"
    "  --batch N              readings per request when sending the queue, 1-64 (default 16)\n"
    "  --queue N              offline queue capacity in readings, 1-4096 (default 128)\n"
    "  --seed N               seed of the sensor curves and noise (default 1)\n"
    "  --sensors LIST         comma-separated, from temperature,humidity,pressure,battery\n"
    "                         (default all four)\n"
    "  --threads N            worker threads stepping the devices (default: devices, at\n"
    "                         most 8); also the most requests in flight\n"
    "  --backoff-max DUR      longest retry delay after failures (default 5m)\n"
    "  --connect-timeout DUR  TCP connect timeout (default 5s)\n"
    "  --timeout DUR          TLS handshake and request timeout (default 10s)\n"
    "  -v, --verbose          one line per upload; twice: also per reading, and debug events\n"
    "  -q, --quiet            errors and the summary only\n"
    "  --help, --version\n"
    "\n"
    "DUR is a number with a unit: ms, s, m or h (a bare number is seconds).\n"
    "At the end each device prints: readings taken, readings sent (resends included),\n"
    "acknowledged by the gateway (2xx), of those duplicates, dropped from the queue,\n"
    "and still queued.\n"
    "\n"
    "Exit status: 0 every device finished with its queue empty (or was stopped by a\n"
    "signal), 1 a device could not start, its certificate was refused, or readings were\n"
    "still queued at the drain timeout, 2 the command line is wrong.\n";

enum {
    OPT_GATEWAY = 256,
    OPT_PKI,
    OPT_CRL,
    OPT_DEVICE,
    OPT_DEVICES,
    OPT_PREFIX,
    OPT_STATE,
    OPT_INTERVAL,
    OPT_COUNT,
    OPT_DRAIN,
    OPT_BATCH,
    OPT_QUEUE,
    OPT_SEED,
    OPT_SENSORS,
    OPT_THREADS,
    OPT_BACKOFF_MAX,
    OPT_CONNECT_TIMEOUT,
    OPT_TIMEOUT,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option OPTIONS[] = {
    {"gateway", required_argument, NULL, OPT_GATEWAY},
    {"pki", required_argument, NULL, OPT_PKI},
    {"crl", required_argument, NULL, OPT_CRL},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"devices", required_argument, NULL, OPT_DEVICES},
    {"prefix", required_argument, NULL, OPT_PREFIX},
    {"state", required_argument, NULL, OPT_STATE},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"count", required_argument, NULL, OPT_COUNT},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"queue", required_argument, NULL, OPT_QUEUE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"sensors", required_argument, NULL, OPT_SENSORS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"backoff-max", required_argument, NULL, OPT_BACKOFF_MAX},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"verbose", no_argument, NULL, 'v'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

typedef struct cli {
    sim_options opt;
    const char **ids; /* --device, in order */
    size_t n_ids;
    unsigned long devices; /* --devices */
    const char *prefix;
} cli;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("iotsim: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s(see: iotsim --help)\n", USAGE);
    return EXIT_USAGE;
}

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = (unsigned long)v;
    return true;
}

/* "250ms", "2s", "5m", "1h", or a bare number of seconds. */
static bool parse_duration(const char *s, uint32_t min_ms, uint32_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s[0] < '0' || s[0] > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || v > DURATION_MAX)
        return false;
    unsigned long long ms;
    if (strcmp(end, "ms") == 0)
        ms = v;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        ms = v * 1000u;
    else if (strcmp(end, "m") == 0)
        ms = v * 60000u;
    else if (strcmp(end, "h") == 0)
        ms = v * 3600000u;
    else
        return false;
    if (ms < min_ms || ms > DURATION_MAX)
        return false;
    *out = (uint32_t)ms;
    return true;
}

static bool parse_sensors(char *list, sim_options *opt)
{
    bool seen[IOTD_POSIX_SENSOR_KINDS] = {false};
    opt->n_curves = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        iotd_posix_sensor_kind k;
        if (!iotd_posix_sensor_kind_parse(name, &k) || seen[k])
            return false;
        seen[k] = true;
        opt->curves[opt->n_curves++] = *iotd_posix_curve_default(k);
    }
    return opt->n_curves > 0;
}

static void defaults(cli *c)
{
    memset(c, 0, sizeof(*c));
    c->prefix = "sim-";
    c->opt.state = "iotsim-state";
    c->opt.interval_ms = 10000;
    c->opt.drain_timeout_ms = 30000;
    c->opt.batch = 16;
    c->opt.queue = 128;
    c->opt.threads = 8;
    c->opt.backoff_max_ms = 5u * 60u * 1000u;
    c->opt.connect_timeout_ms = 5000;
    c->opt.timeout_ms = 10000;
    c->opt.seed = 1;
    for (unsigned k = 0; k < IOTD_POSIX_SENSOR_KINDS; k++)
        c->opt.curves[c->opt.n_curves++] = *iotd_posix_curve_default((iotd_posix_sensor_kind)k);
}

/* Returns -1 to go on, else the exit status. */
static int parse_option(cli *c, int opt, char *arg)
{
    unsigned long v = 0;
    sim_options *o = &c->opt;
    switch (opt) {
    case OPT_GATEWAY:
        o->gateway = arg;
        return -1;
    case OPT_PKI:
        o->pki = arg;
        return -1;
    case OPT_CRL:
        o->crl = arg;
        return -1;
    case OPT_DEVICE:
        if (!iot_id_is_valid(arg))
            return usage_error("'%s' is not a device ID (1-64 of [A-Za-z0-9._-])", arg);
        c->ids[c->n_ids++] = arg;
        return -1;
    case OPT_DEVICES:
        if (!parse_ulong(arg, 1, DEVICES_MAX, &c->devices))
            return usage_error("--devices '%s' is not a number in 1..100000", arg);
        return -1;
    case OPT_PREFIX:
        c->prefix = arg;
        return -1;
    case OPT_STATE:
        o->state = arg;
        return -1;
    case OPT_INTERVAL:
        if (!parse_duration(arg, 10, &o->interval_ms))
            return usage_error("--interval '%s' is not a duration of 10ms to 24h", arg);
        return -1;
    case OPT_COUNT:
        if (!parse_ulong(arg, 0, UINT32_MAX, &v))
            return usage_error("--count '%s' is not a number", arg);
        o->count = (uint32_t)v;
        return -1;
    case OPT_DRAIN:
        if (!parse_duration(arg, 0, &o->drain_timeout_ms))
            return usage_error("--drain-timeout '%s' is not a duration up to 24h", arg);
        return -1;
    case OPT_BATCH:
        if (!parse_ulong(arg, 1, IOTD_PROTOCOL_READINGS_MAX, &v))
            return usage_error("--batch '%s' is not a number in 1..64", arg);
        o->batch = (uint32_t)v;
        return -1;
    case OPT_QUEUE:
        if (!parse_ulong(arg, 1, IOTD_QUEUE_CAPACITY_MAX, &v))
            return usage_error("--queue '%s' is not a number in 1..4096", arg);
        o->queue = (uint32_t)v;
        return -1;
    case OPT_SEED:
        if (!parse_ulong(arg, 0, ULONG_MAX, &v))
            return usage_error("--seed '%s' is not a number", arg);
        o->seed = v;
        return -1;
    case OPT_SENSORS:
        if (!parse_sensors(arg, o))
            return usage_error("--sensors: expected distinct names from temperature, humidity, "
                               "pressure, battery");
        return -1;
    case OPT_THREADS:
        if (!parse_ulong(arg, 1, 256, &v))
            return usage_error("--threads '%s' is not a number in 1..256", arg);
        o->threads = (uint32_t)v;
        return -1;
    case OPT_BACKOFF_MAX:
        if (!parse_duration(arg, 100, &o->backoff_max_ms))
            return usage_error("--backoff-max '%s' is not a duration of 100ms to 24h", arg);
        return -1;
    case OPT_CONNECT_TIMEOUT:
        if (!parse_duration(arg, 10, &o->connect_timeout_ms))
            return usage_error("--connect-timeout '%s' is not a duration of 10ms to 24h", arg);
        return -1;
    case OPT_TIMEOUT:
        if (!parse_duration(arg, 10, &o->timeout_ms))
            return usage_error("--timeout '%s' is not a duration of 10ms to 24h", arg);
        return -1;
    case 'v':
        o->verbose = o->verbose < 0 ? 1 : o->verbose + 1;
        return -1;
    case 'q':
        o->verbose = -1;
        return -1;
    case OPT_HELP:
        printf("%s%s", USAGE, HELP);
        return 0;
    case OPT_VERSION:
        printf("iotsim %s (%s)\n", IOT_VERSION, MBEDTLS_VERSION_STRING_FULL);
        return 0;
    default:
        return usage_error("unknown option");
    }
}

static int parse(cli *c, int argc, char **argv)
{
    c->ids = calloc((size_t)argc, sizeof(*c->ids));
    if (c->ids == NULL)
        return 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":vq", OPTIONS, NULL)) != -1) {
        if (opt == ':')
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        if (opt == '?')
            return usage_error("unknown option '%s'", argv[optind - 1]);
        int rc = parse_option(c, opt, optarg);
        if (rc >= 0)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (c->opt.gateway == NULL)
        return usage_error("--gateway URL is required");
    char host[IOTD_POSIX_HOST_MAX + 1], port[6];
    iot_err err = {0};
    if (iotd_posix_url_parse(c->opt.gateway, host, sizeof(host), port, sizeof(port), &err) !=
        IOT_OK)
        return usage_error("--gateway: %s", err.msg);
    if (c->opt.pki == NULL)
        return usage_error("--pki DIR is required");
    if ((c->n_ids > 0) == (c->devices > 0))
        return usage_error("give either --device ID (repeatable) or --devices N");
    if (c->devices > 0) {
        char probe[IOT_ID_MAX + 32];
        snprintf(probe, sizeof(probe), "%s%lu", c->prefix, c->devices);
        if (!iot_id_is_valid(probe))
            return usage_error("--prefix '%s' does not make valid device IDs", c->prefix);
    }
    for (size_t i = 0; i < c->n_ids; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->ids[i], c->ids[j]) == 0)
                return usage_error("device '%s' is given twice", c->ids[i]);
    return -1;
}

static int add_devices(sim *s, const cli *c)
{
    char id[IOT_ID_MAX + 32];
    for (size_t i = 0; i < s->n; i++) {
        if (c->n_ids > 0)
            snprintf(id, sizeof(id), "%s", c->ids[i]);
        else
            snprintf(id, sizeof(id), "%s%zu", c->prefix, i + 1);
        if (sim_add_device(s, i, id) != 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli c;
    sim s;
    int rc = 1;
    defaults(&c);
    memset(&s, 0, sizeof(s));
    setvbuf(stdout, NULL, _IOLBF, 0);
    int prc = parse(&c, argc, argv);
    if (prc >= 0) {
        free(c.ids);
        return prc;
    }
    /* A peer that closes is reported by send(); never die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    size_t n = c.n_ids > 0 ? c.n_ids : c.devices;
    if (sim_init(&s, &c.opt, n) != 0 || add_devices(&s, &c) != 0)
        goto out;
    if (sim_run(&s) != 0)
        goto out;
    rc = sim_report(&s);
out:
    sim_free(&s);
    free(c.ids);
    return rc;
}
