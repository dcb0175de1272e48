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
#include <stddef.h>
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

typedef struct cli {
    sim_options opt;
    const char **ids; /* --device, in order */
    size_t n_ids;
    unsigned long devices; /* --devices */
    const char *prefix;
} cli;

/* What an option's value is, and so how it is parsed and stored. */
typedef enum sim_arg {
    ARG_TEXT,     /* stored as is */
    ARG_NUMBER,   /* decimal in min..max */
    ARG_DURATION, /* parse_duration, at least min ms */
    ARG_DEVICE,   /* a device ID, appended to cli.ids */
    ARG_SENSORS,  /* parse_sensors */
    ARG_VERBOSE,
    ARG_QUIET,
    ARG_HELP,
    ARG_VERSION,
} sim_arg;

typedef struct sim_option {
    const char *name;
    int short_name; /* 0: long only */
    sim_arg arg;
    size_t offset, size; /* the field in cli */
    unsigned long min, max;
    const char *expect; /* what the value must be, for the usage error */
} sim_option;

#define SIM_FIELD(f) .offset = offsetof(cli, f), .size = sizeof(((cli *)0)->f)

static const sim_option SIM_OPTIONS[] = {
    {.name = "gateway", .arg = ARG_TEXT, SIM_FIELD(opt.gateway)},
    {.name = "pki", .arg = ARG_TEXT, SIM_FIELD(opt.pki)},
    {.name = "crl", .arg = ARG_TEXT, SIM_FIELD(opt.crl)},
    {.name = "device", .arg = ARG_DEVICE},
    {.name = "devices",
     .arg = ARG_NUMBER,
     SIM_FIELD(devices),
     .min = 1,
     .max = DEVICES_MAX,
     .expect = "a number in 1..100000"},
    {.name = "prefix", .arg = ARG_TEXT, SIM_FIELD(prefix)},
    {.name = "state", .arg = ARG_TEXT, SIM_FIELD(opt.state)},
    {.name = "interval",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.interval_ms),
     .min = 10,
     .expect = "a duration of 10ms to 24h"},
    {.name = "count",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.count),
     .max = UINT32_MAX,
     .expect = "a number"},
    {.name = "drain-timeout",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.drain_timeout_ms),
     .expect = "a duration up to 24h"},
    {.name = "batch",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.batch),
     .min = 1,
     .max = IOTD_PROTOCOL_READINGS_MAX,
     .expect = "a number in 1..64"},
    {.name = "queue",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.queue),
     .min = 1,
     .max = IOTD_QUEUE_CAPACITY_MAX,
     .expect = "a number in 1..4096"},
    {.name = "seed",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.seed),
     .max = ULONG_MAX,
     .expect = "a number"},
    {.name = "sensors", .arg = ARG_SENSORS},
    {.name = "threads",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.threads),
     .min = 1,
     .max = 256,
     .expect = "a number in 1..256"},
    {.name = "backoff-max",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.backoff_max_ms),
     .min = 100,
     .expect = "a duration of 100ms to 24h"},
    {.name = "connect-timeout",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.connect_timeout_ms),
     .min = 10,
     .expect = "a duration of 10ms to 24h"},
    {.name = "timeout",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.timeout_ms),
     .min = 10,
     .expect = "a duration of 10ms to 24h"},
    {.name = "verbose", .short_name = 'v', .arg = ARG_VERBOSE},
    {.name = "quiet", .short_name = 'q', .arg = ARG_QUIET},
    {.name = "help", .arg = ARG_HELP},
    {.name = "version", .arg = ARG_VERSION},
};

#define SIM_N_OPTIONS (sizeof(SIM_OPTIONS) / sizeof(SIM_OPTIONS[0]))
/* getopt_long's value of a long-only option: its index plus this. */
#define SIM_LONG_ONLY 256

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

static int bad_value(const sim_option *so, const char *arg)
{
    return usage_error("--%s '%s' is not %s", so->name, arg, so->expect);
}

/* Stores v in a uint32_t or uint64_t field of the given size. */
static void store_number(void *field, size_t size, unsigned long v)
{
    uint32_t v32 = (uint32_t)v;
    uint64_t v64 = v;
    if (size == sizeof(v32))
        memcpy(field, &v32, sizeof(v32));
    else
        memcpy(field, &v64, sizeof(v64));
}

/* Returns -1 to go on, else the exit status. */
static int apply_value(cli *c, const sim_option *so, char *arg)
{
    char *field = (char *)c + so->offset;
    const char *text = arg;
    unsigned long v = 0;
    uint32_t ms = 0;
    switch (so->arg) {
    case ARG_TEXT:
        memcpy(field, &text, sizeof(text));
        return -1;
    case ARG_NUMBER:
        if (!parse_ulong(arg, so->min, so->max, &v))
            return bad_value(so, arg);
        store_number(field, so->size, v);
        return -1;
    case ARG_DURATION:
        if (!parse_duration(arg, (uint32_t)so->min, &ms))
            return bad_value(so, arg);
        memcpy(field, &ms, sizeof(ms));
        return -1;
    case ARG_DEVICE:
        if (!iot_id_is_valid(arg))
            return usage_error("'%s' is not a device ID (1-64 of [A-Za-z0-9._-])", arg);
        c->ids[c->n_ids++] = arg;
        return -1;
    case ARG_SENSORS:
        if (!parse_sensors(arg, &c->opt))
            return usage_error("--sensors: expected distinct names from temperature, humidity, "
                               "pressure, battery");
        return -1;
    default:
        return usage_error("unknown option");
    }
}

/* Returns -1 to go on, else the exit status. */
static int apply_flag(cli *c, const sim_option *so)
{
    switch (so->arg) {
    case ARG_VERBOSE:
        c->opt.verbose = c->opt.verbose < 0 ? 1 : c->opt.verbose + 1;
        return -1;
    case ARG_QUIET:
        c->opt.verbose = -1;
        return -1;
    case ARG_HELP:
        printf("%s%s", USAGE, HELP);
        return 0;
    case ARG_VERSION:
        printf("iotsim %s (%s)\n", IOT_VERSION, MBEDTLS_VERSION_STRING_FULL);
        return 0;
    default:
        return usage_error("unknown option");
    }
}

static bool takes_value(const sim_option *so)
{
    return so->arg <= ARG_SENSORS;
}

/* The option getopt_long returned as val, NULL if none. */
static const sim_option *find_option(int val)
{
    if (val >= SIM_LONG_ONLY && (size_t)(val - SIM_LONG_ONLY) < SIM_N_OPTIONS)
        return &SIM_OPTIONS[val - SIM_LONG_ONLY];
    for (size_t i = 0; i < SIM_N_OPTIONS; i++)
        if (val != 0 && SIM_OPTIONS[i].short_name == val)
            return &SIM_OPTIONS[i];
    return NULL;
}

/* Returns -1 to go on, else the exit status. */
static int parse_option(cli *c, int val, char *arg)
{
    const sim_option *so = find_option(val);
    if (so == NULL)
        return usage_error("unknown option");
    return takes_value(so) ? apply_value(c, so, arg) : apply_flag(c, so);
}

/* getopt_long's table, made from SIM_OPTIONS. */
static void long_options(struct option longopts[SIM_N_OPTIONS + 1])
{
    for (size_t i = 0; i < SIM_N_OPTIONS; i++) {
        const sim_option *so = &SIM_OPTIONS[i];
        longopts[i] = (struct option){
            .name = so->name,
            .has_arg = takes_value(so) ? required_argument : no_argument,
            .val = so->short_name ? so->short_name : SIM_LONG_ONLY + (int)i,
        };
    }
    longopts[SIM_N_OPTIONS] = (struct option){0};
}

/* Options that depend on one another, once all are read. */
static int check_options(const cli *c)
{
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

static int parse(cli *c, int argc, char **argv)
{
    struct option longopts[SIM_N_OPTIONS + 1];
    c->ids = calloc((size_t)argc, sizeof(*c->ids));
    if (c->ids == NULL)
        return 1;
    long_options(longopts);
    opterr = 0;
    for (int opt = getopt_long(argc, argv, ":vq", longopts, NULL); opt != -1;
         opt = getopt_long(argc, argv, ":vq", longopts, NULL)) {
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
    return check_options(c);
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
