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

#include "iot/fsutil.h"
#include "iot/manifest_crypto.h"
#include "iotd/protocol.h"
#include "iotd_mbedtls/manifest_crypto.h"
#include "sim.h"

#define EXIT_USAGE         2
#define DEVICES_MAX        100000
#define DURATION_MAX       (24u * 3600u * 1000u)
#define IMAGE_SIZE_DEFAULT 65536u

static const char USAGE[] =
    "usage: iotsim --gateway URL --pki DIR (--device ID ... | --devices N [--prefix P])\n"
    "              [--crl FILE] [--state DIR] [--interval DUR] [--count N] [--drain-timeout DUR]\n"
    "              [--batch N] [--queue N] [--seed N] [--sensors LIST] [--threads N]\n"
    "              [--backoff-max DUR] [--connect-timeout DUR] [--timeout DUR] [--sleep]\n"
    "              [-v|-vv|-q]\n"
    "              [--updates auto|off|window:H-H] [--trusted-keys FILE] [--vendor ID]\n"
    "              [--class ID] [--fw-version V] [--fw-secure-version N] [--update-check DUR]\n"
    "              [--chunk BYTES] [--slot-size BYTES]\n"
    "       iotsim --gateway URL --ca FILE (--enroll-token TOKEN | --enroll-tokens FILE |\n"
    "              --bootstrap-cert FILE --bootstrap-key FILE) [--renew] (--device ID ... |\n"
    "              --devices N [--prefix P]) [OPTIONS]\n"
    "       iotsim --make-image FILE --image-version V [--image-secure-version N]\n"
    "              [--image-size BYTES] [--image-self-test pass|fail]\n";

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
    "  --sleep                sleep between wake-ups as a battery device does: close the\n"
    "                         connection after each wake-up; the TLS session is kept in\n"
    "                         STATE/ID/tls-session, so the next wake-up (and the next\n"
    "                         run) resumes it instead of a full handshake\n"
    "  --backoff-max DUR      longest retry delay after failures (default 5m)\n"
    "  --connect-timeout DUR  TCP connect timeout (default 5s)\n"
    "  --timeout DUR          TLS handshake and request timeout (default 10s)\n"
    "\n"
    "Enrollment (EST: each device makes its own key, gets its certificate from the\n"
    "gateway and renews it at about two thirds of its lifetime; the key and the\n"
    "certificates live in STATE/ID/device.pem, a renewal in STATE/ID/candidate.pem\n"
    "until the gateway has accepted it):\n"
    "  --enroll-token TOKEN   the enrollment token of the one --device (iotctl token create)\n"
    "  --enroll-tokens FILE   tokens of a fleet, one line \"DEVICE-ID TOKEN\" each\n"
    "  --bootstrap-cert FILE  enroll with this bootstrap (factory) certificate, PEM\n"
    "  --bootstrap-key FILE   and its key\n"
    "  --ca FILE              the CA the gateway's certificate chains to, PEM (required\n"
    "                         with enrollment; --pki is then not needed)\n"
    "  --renew                renew every device's certificate at start, whatever its age\n"
    "  --clock-ahead DUR      the certificate in use looks DUR older until renewed (tests)\n"
    "  --health-interval DUR  send a health report (firmware, boot count, reset reason,\n"
    "                         failed connections, certificate expiry) at start and then\n"
    "                         every DUR (docs/protocol.md); default none\n"
    "  --factory-reset        erase the --device's keys, certificates, queued readings\n"
    "                         and state in --state (nothing else runs); a device whose\n"
    "                         reset was cut short finishes it when it next starts\n"
    "  --reset-reason R       the reset reason the reports give (power_on, software,\n"
    "                         panic, watchdog, brownout, ...); default power_on at the\n"
    "                         first start, software after\n"
    "A device that already has a certificate in its state directory only renews it.\n"
    "\n"
    "Firmware updates (each device also runs the core's update machine, with its two\n"
    "firmware slots as files in its state directory; ports/posix/README.md):\n"
    "  --updates MODE         auto: check, download and install whenever due; off: never\n"
    "                         start one (an image on trial is still confirmed or rolled\n"
    "                         back); window:H-H: only between these UTC hours (default\n"
    "                         auto when trusted keys are found, else no updates)\n"
    "  --trusted-keys FILE    the manifest signing keys the devices trust, PEM (default\n"
    "                         PKI/firmware/trusted-keys.pem if it exists)\n"
    "  --vendor ID            the devices' vendor-id (default iot-example)\n"
    "  --class ID             the devices' class-id (default sim)\n"
    "  --fw-version V         the version of the factory image, which runs until an\n"
    "                         update is installed (default 1.0.0)\n"
    "  --fw-secure-version N  the factory image's secure-version (default 0)\n"
    "  --self-test pass|fail  fail: these devices fail the self-test of every new image,\n"
    "                         whatever its header says (a hardware variant a release\n"
    "                         breaks); pass: the image's header decides (default)\n"
    "  --update-check DUR     time between manifest checks (default 1h)\n"
    "  --chunk BYTES          bytes per ranged image download, 16-65536 (default 4096)\n"
    "  --slot-size BYTES      capacity of each firmware slot (default 1048576)\n"
    "  A device reboots after installing: with one device iotsim re-executes itself,\n"
    "  with several the device restarts in place. A new image's self-test passes after\n"
    "  one acknowledged upload and one stored reading, unless its header says fail; then\n"
    "  the device rolls back to the previous image.\n"
    "\n"
    "Making a simulated firmware image (nothing else runs):\n"
    "  --make-image FILE      write an image: a header naming its version, then filler\n"
    "  --image-version V      its version, 1-32 of [A-Za-z0-9._+-] (required)\n"
    "  --image-secure-version N  its anti-rollback counter (default 0)\n"
    "  --image-size BYTES     its size (default 65536)\n"
    "  --image-self-test pass|fail  whether its self-test passes once installed (pass)\n"
    "\n"
    "  -v, --verbose          one line per upload; twice: also per reading, and debug events\n"
    "  -q, --quiet            errors and the summary only\n"
    "  --help, --version\n"
    "\n"
    "DUR is a number with a unit: ms, s, m or h (a bare number is seconds).\n"
    "At the end each device prints: readings taken, readings sent (resends included),\n"
    "acknowledged by the gateway (2xx), of those duplicates, dropped from the queue,\n"
    "still queued, the firmware version it runs and its last update state (counts\n"
    "start again at a reboot).\n"
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
    const char *updates;      /* --updates, NULL: not given */
    const char *trusted_keys; /* --trusted-keys, or the PKI's file */
    const char *fw_version;
    uint32_t fw_secure_version;
    const char *make_image; /* --make-image FILE and its options */
    const char *image_version;
    uint32_t image_secure_version;
    uint32_t image_size;
    const char *image_self_test;
    const char *self_test; /* --self-test pass|fail */
    bool factory_reset;    /* --factory-reset */
} cli;

/* What an option's value is, and so how it is parsed and stored. */
typedef enum sim_arg {
    ARG_TEXT,     /* stored as is */
    ARG_NUMBER,   /* decimal in min..max */
    ARG_DURATION, /* parse_duration, at least min ms */
    ARG_DEVICE,   /* a device ID, appended to cli.ids */
    ARG_SENSORS,  /* parse_sensors */
    ARG_RENEW,
    ARG_FACTORY_RESET,
    ARG_SLEEP,
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
    {.name = "enroll-token", .arg = ARG_TEXT, SIM_FIELD(opt.enroll.token)},
    {.name = "enroll-tokens", .arg = ARG_TEXT, SIM_FIELD(opt.enroll.tokens_file)},
    {.name = "bootstrap-cert", .arg = ARG_TEXT, SIM_FIELD(opt.enroll.bootstrap_cert)},
    {.name = "bootstrap-key", .arg = ARG_TEXT, SIM_FIELD(opt.enroll.bootstrap_key)},
    {.name = "ca", .arg = ARG_TEXT, SIM_FIELD(opt.enroll.ca)},
    {.name = "renew", .arg = ARG_RENEW},
    {.name = "factory-reset", .arg = ARG_FACTORY_RESET},
    {.name = "sleep", .arg = ARG_SLEEP},
    {.name = "health-interval",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.health_ms),
     .expect = "a duration up to 24h"},
    {.name = "reset-reason", .arg = ARG_TEXT, SIM_FIELD(opt.reset_reason)},
    {.name = "clock-ahead",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.enroll.clock_ahead_ms),
     .expect = "a duration up to 24h"},
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
    {.name = "updates", .arg = ARG_TEXT, SIM_FIELD(updates)},
    {.name = "trusted-keys", .arg = ARG_TEXT, SIM_FIELD(trusted_keys)},
    {.name = "vendor", .arg = ARG_TEXT, SIM_FIELD(opt.update.vendor)},
    {.name = "class", .arg = ARG_TEXT, SIM_FIELD(opt.update.class_id)},
    {.name = "fw-version", .arg = ARG_TEXT, SIM_FIELD(fw_version)},
    {.name = "self-test", .arg = ARG_TEXT, SIM_FIELD(self_test)},
    {.name = "fw-secure-version",
     .arg = ARG_NUMBER,
     SIM_FIELD(fw_secure_version),
     .max = UINT32_MAX,
     .expect = "a number in 0..4294967295"},
    {.name = "update-check",
     .arg = ARG_DURATION,
     SIM_FIELD(opt.update.check_ms),
     .min = 100,
     .expect = "a duration of 100ms to 24h"},
    {.name = "chunk",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.update.chunk),
     .min = 16,
     .max = 65536,
     .expect = "a number of bytes in 16..65536"},
    {.name = "slot-size",
     .arg = ARG_NUMBER,
     SIM_FIELD(opt.update.slot_size),
     .min = 1024,
     .max = IOTD_POSIX_IMAGE_MAKE_MAX,
     .expect = "a number of bytes in 1024..67108864"},
    {.name = "make-image", .arg = ARG_TEXT, SIM_FIELD(make_image)},
    {.name = "image-version", .arg = ARG_TEXT, SIM_FIELD(image_version)},
    {.name = "image-secure-version",
     .arg = ARG_NUMBER,
     SIM_FIELD(image_secure_version),
     .max = UINT32_MAX,
     .expect = "a number in 0..4294967295"},
    {.name = "image-size",
     .arg = ARG_NUMBER,
     SIM_FIELD(image_size),
     .min = 1,
     .max = IOTD_POSIX_IMAGE_MAKE_MAX,
     .expect = "a number of bytes in 1..67108864"},
    {.name = "image-self-test", .arg = ARG_TEXT, SIM_FIELD(image_self_test)},
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
    c->opt.update.vendor = "iot-example";
    c->opt.update.class_id = "sim";
    c->opt.update.check_ms = 3600u * 1000u;
    c->opt.update.chunk = 4096;
    c->opt.update.slot_size = IOTD_POSIX_SLOT_DEFAULT;
    c->fw_version = "1.0.0";
    c->self_test = "pass";
    c->image_size = IMAGE_SIZE_DEFAULT;
    c->image_self_test = "pass";
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
    case ARG_RENEW:
        c->opt.enroll.renew = true;
        return -1;
    case ARG_FACTORY_RESET:
        c->factory_reset = true;
        return -1;
    case ARG_SLEEP:
        c->opt.sleep = true;
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

/* --image-* for --make-image. */
static int check_image_options(cli *c, iotd_posix_image *img)
{
    memset(img, 0, sizeof(*img));
    if (c->image_version == NULL)
        return usage_error("--make-image needs --image-version V");
    if (strcmp(c->image_self_test, "pass") != 0 && strcmp(c->image_self_test, "fail") != 0)
        return usage_error("--image-self-test '%s' is not pass or fail", c->image_self_test);
    if (strlen(c->image_version) >= sizeof(img->version))
        return usage_error("--image-version '%s' is longer than %d characters", c->image_version,
                           IOTD_MANIFEST_FW_VERSION_MAX);
    memcpy(img->version, c->image_version, strlen(c->image_version) + 1);
    img->secure_version = c->image_secure_version;
    img->self_test_pass = strcmp(c->image_self_test, "pass") == 0;
    return -1;
}

/* "auto", "off" or "window:H-H". */
static bool parse_updates(const char *s, sim_update_options *u)
{
    unsigned long start = 0, end = 0;
    char *dash = NULL;
    if (strcmp(s, "auto") == 0 || strcmp(s, "off") == 0) {
        u->mode = s[1] == 'u' ? IOTD_UPDATE_AUTO : IOTD_UPDATE_OFF;
        return true;
    }
    if (strncmp(s, "window:", 7) != 0 || s[7] < '0' || s[7] > '9')
        return false;
    errno = 0;
    start = strtoul(s + 7, &dash, 10);
    if (errno != 0 || *dash != '-' || dash[1] < '0' || dash[1] > '9' || start > 23)
        return false;
    char *rest = NULL;
    end = strtoul(dash + 1, &rest, 10);
    if (errno != 0 || *rest != '\0' || end > 23)
        return false;
    u->mode = IOTD_UPDATE_WINDOW;
    u->window_start_h = (uint8_t)start;
    u->window_end_h = (uint8_t)end;
    return true;
}

/* The factory image's version must be one a manifest can name. */
static bool version_valid(const char *v)
{
    iotd_posix_image img = {.self_test_pass = true};
    char head[IOTD_POSIX_IMAGE_HEADER_MAX];
    size_t len = 0;
    if (strlen(v) >= sizeof(img.version))
        return false;
    memcpy(img.version, v, strlen(v) + 1);
    return iotd_posix_image_header(&img, head, sizeof(head), &len) == IOTD_OK;
}

/* Where the trusted keys come from: --trusted-keys, else the PKI's file
 * when it exists (then updates run unless --updates off). */
/* NULL (the default) or a reason the health report accepts. */
static bool reset_reason_valid(const char *reason)
{
    iotd_health_info probe = {.firmware = "x", .reset_reason = reason};
    char json[IOTD_HEALTH_BODY_MAX];
    size_t n = 0;
    return reason == NULL || iotd_health_json(&probe, 0, 0, json, sizeof(json), &n) == IOTD_OK;
}

static int check_update_options(cli *c)
{
    static char pki_keys[4096];
    sim_update_options *u = &c->opt.update;
    iot_err err = {0};
    if (c->updates != NULL && !parse_updates(c->updates, u))
        return usage_error("--updates '%s' is not auto, off or window:H-H (hours 0-23)",
                           c->updates);
    if (!iotd_protocol_device_id_valid(u->vendor) || !iotd_protocol_device_id_valid(u->class_id))
        return usage_error("--vendor and --class are 1-64 of [A-Za-z0-9._-]");
    if (!version_valid(c->fw_version))
        return usage_error("--fw-version '%s' is not 1-32 of [A-Za-z0-9._+-]", c->fw_version);
    memcpy(u->factory.version, c->fw_version, strlen(c->fw_version) + 1);
    u->factory.secure_version = c->fw_secure_version;
    u->factory.self_test_pass = true;
    if (strcmp(c->self_test, "pass") != 0 && strcmp(c->self_test, "fail") != 0)
        return usage_error("--self-test '%s' is not pass or fail", c->self_test);
    u->self_test_fails = strcmp(c->self_test, "fail") == 0;
    if (c->trusted_keys == NULL && c->opt.pki != NULL &&
        iot_path_join(pki_keys, sizeof(pki_keys), c->opt.pki, "firmware/trusted-keys.pem", &err) ==
            IOT_OK &&
        iot_path_exists(pki_keys))
        c->trusted_keys = pki_keys;
    if (c->trusted_keys == NULL && c->updates != NULL && u->mode != IOTD_UPDATE_OFF)
        return usage_error("--updates %s needs the trusted signing keys: --trusted-keys FILE",
                           c->updates);
    u->enabled = c->trusted_keys != NULL;
    return -1;
}

/* Options that depend on one another, once all are read. */
/* Returns -1 to go on, else the exit status. */
static int check_enroll_options(cli *c)
{
    sim_enroll_options *e = &c->opt.enroll;
    e->enabled = e->token != NULL || e->tokens_file != NULL || e->bootstrap_cert != NULL;
    if (!e->enabled)
        return e->renew || e->ca != NULL
                   ? usage_error("--renew and --ca need --enroll-token, --enroll-tokens or "
                                 "--bootstrap-cert")
                   : -1;
    if (e->ca == NULL)
        return usage_error("enrollment needs --ca FILE, the CA of the gateway's certificate");
    if ((e->bootstrap_cert == NULL) != (e->bootstrap_key == NULL))
        return usage_error("--bootstrap-cert and --bootstrap-key go together");
    if (e->token != NULL && (e->tokens_file != NULL || c->n_ids != 1))
        return usage_error("--enroll-token is for one --device; a fleet uses --enroll-tokens");
    return -1;
}

static int check_options(cli *c)
{
    if (c->factory_reset)
        return c->n_ids > 0 ? -1 : usage_error("--factory-reset needs --device ID (repeatable)");
    if (c->opt.gateway == NULL)
        return usage_error("--gateway URL is required");
    char host[IOTD_POSIX_HOST_MAX + 1], port[6];
    iot_err err = {0};
    if (iotd_posix_url_parse(c->opt.gateway, host, sizeof(host), port, sizeof(port), &err) !=
        IOT_OK)
        return usage_error("--gateway: %s", err.msg);
    if (check_enroll_options(c) >= 0)
        return EXIT_USAGE;
    if (!reset_reason_valid(c->opt.reset_reason))
        return usage_error("--reset-reason '%s' is not one of power_on, software, deep_sleep, "
                           "external, panic, watchdog, brownout, unknown",
                           c->opt.reset_reason);
    if (c->opt.pki == NULL && !c->opt.enroll.enabled)
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
    return check_update_options(c);
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
    if (c->make_image != NULL)
        return -1;
    return check_options(c);
}

/* iotsim --make-image: writes the image and prints nothing. */
static int make_image(cli *c)
{
    iotd_posix_image img;
    iot_err err = {0};
    int rc = check_image_options(c, &img);
    if (rc >= 0)
        return rc;
    if (iotd_posix_image_make(c->make_image, &img, c->image_size, &err) != IOT_OK) {
        sim_errorf("%s: %s", c->make_image, err.msg);
        return 1;
    }
    return 0;
}

/* The trusted signing keys, read once for every device. */
static int load_keys(cli *c, iotd_manifest_key *keys, size_t cap)
{
    sim_update_options *u = &c->opt.update;
    iot_err err = {0};
    if (!u->enabled)
        return 0;
    if (iot_manifest_keys_load(c->trusted_keys, keys, cap, &u->n_keys, &err) != IOT_OK) {
        sim_errorf("%s", err.msg);
        return -1;
    }
    if (u->n_keys == 0) {
        sim_errorf("%s holds no trusted signing key", c->trusted_keys);
        return -1;
    }
    u->keys = keys;
    u->crypto = iotd_mbedtls_manifest_crypto();
    return 0;
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
    static iotd_manifest_key keys[IOT_MANIFEST_KEYS_MAX];
    cli c;
    sim s;
    int rc = 1;
    defaults(&c);
    memset(&s, 0, sizeof(s));
    setvbuf(stdout, NULL, _IOLBF, 0);
    int prc = parse(&c, argc, argv);
    if (prc < 0 && c.make_image != NULL)
        prc = make_image(&c);
    if (prc >= 0) {
        free(c.ids);
        return prc;
    }
    if (c.factory_reset) {
        rc = sim_factory_reset(c.opt.state, c.ids, c.n_ids);
        goto out;
    }
    c.opt.argv = argv;
    /* A peer that closes is reported by send(); never die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    size_t n = c.n_ids > 0 ? c.n_ids : c.devices;
    if (load_keys(&c, keys, IOT_MANIFEST_KEYS_MAX) != 0)
        goto out;
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
