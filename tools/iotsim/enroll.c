/* Enrollment in the simulator: each device runs the core's enrollment
 * machine (iotd/enroll.h) over the POSIX credential port (its slots are
 * files in the device's state directory). A device without a certificate
 * enrolls before it starts; afterwards renewal runs beside the device and
 * a committed renewal reloads the device's TLS client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "iot/fsutil.h"
#include "sim.h"

#define WORK_CAP      8192
#define FIRST_WAIT_MS 600000u /* give up the first enrollment after ten minutes */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* With --clock-ahead the certificate in use looks that much older until
 * the device has renewed it; the new one's age is the real one (the
 * gateway dated it by its own clock). */
static bool wall_time(void *ctx, int64_t *unix_s)
{
    const sim_device *d = ctx;
    *unix_s = (int64_t)time(NULL);
    if (d->en.stats.renewed == 0)
        *unix_s += (int64_t)(d->sim->opt->enroll.clock_ahead_ms / 1000u);
    return *unix_s >= IOTD_MIN_WALL_TIME;
}

static uint64_t uptime(void *ctx)
{
    (void)ctx;
    return now_ms();
}

static void sleep_for(void *ctx, uint32_t ms)
{
    (void)ctx;
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint32_t random32(void *ctx)
{
    (void)ctx;
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)now_ms();
    return r;
}

static void log_event(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    sim_event(ctx, level, event, msg);
}

/* The device's token from --enroll-token or its line in --enroll-tokens. */
static int find_token(sim_device *d, const sim_enroll_options *eo)
{
    char line[512], id[IOT_ID_MAX + 2], tok[sizeof(d->token)];
    if (eo->token != NULL) {
        snprintf(d->token, sizeof(d->token), "%s", eo->token);
        return 0;
    }
    if (eo->tokens_file == NULL)
        return 0;
    FILE *f = fopen(eo->tokens_file, "r");
    if (f == NULL) {
        sim_errorf("--enroll-tokens %s: %s", eo->tokens_file, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%65s %127s", id, tok) == 2 && strcmp(id, d->id) == 0)
            snprintf(d->token, sizeof(d->token), "%s", tok);
    }
    fclose(f);
    return 0;
}

static int setup(sim_device *d)
{
    const sim_options *opt = d->sim->opt;
    const sim_enroll_options *eo = &opt->enroll;
    char state[IOTD_POSIX_CRED_PATH_MAX];
    iot_err err = {0};
    if (find_token(d, eo) != 0)
        return -1;
    snprintf(d->ca_path, sizeof(d->ca_path), "%s", eo->ca);
    snprintf(state, sizeof(state), "%s/%s", opt->state, d->id);
    if (iot_mkdir_p(state, 0700, &err) != IOT_OK) {
        sim_errorf("%s: %s", d->id, err.msg);
        return -1;
    }
    iotd_posix_cred_config cc = {
        .device_id = d->id,
        .state_dir = state,
        .url = opt->gateway,
        .ca_file = d->ca_path,
        .crl_file = opt->crl,
        .token = d->token[0] ? d->token : NULL,
        .bootstrap_cert = eo->bootstrap_cert,
        .bootstrap_key = eo->bootstrap_key,
        .connect_timeout_ms = opt->connect_timeout_ms,
        .request_timeout_ms = opt->timeout_ms,
    };
    if (iotd_posix_cred_init(&d->cred, &cc) != 0) {
        sim_errorf("%s: state directory path too long", d->id);
        return -1;
    }
    d->cred.cfg.state_dir = NULL; /* only the paths built from it are kept */
    iotd_posix_cred_port(&d->cred, &d->cport);
    return 0;
}

static int start_machine(sim_device *d)
{
    const sim_enroll_options *eo = &d->sim->opt->enroll;
    iotd_enroll_config cfg;
    iotd_enroll_config_init(&cfg);
    cfg.first_auth = d->token[0] || eo->bootstrap_cert == NULL ? IOTD_ENROLL_AUTH_TOKEN
                                                               : IOTD_ENROLL_AUTH_BOOTSTRAP;
    cfg.backoff_base_ms = 1000u;
    cfg.backoff_max_ms = d->sim->opt->backoff_max_ms;
    memset(&d->eport, 0, sizeof(d->eport));
    d->eport.ctx = d;
    d->eport.wall_time = wall_time;
    d->eport.uptime_ms = uptime;
    d->eport.sleep_ms = sleep_for;
    d->eport.random_u32 = random32;
    d->eport.log = log_event;
    d->ework = malloc(WORK_CAP);
    if (d->ework == NULL ||
        iotd_enroll_init(&d->en, &d->eport, &d->cport, &cfg, d->ework, WORK_CAP) != IOTD_OK) {
        sim_errorf("%s: cannot read its certificate slots in %s", d->id, d->cred.active);
        return -1;
    }
    if (eo->renew)
        iotd_enroll_renew_now(&d->en);
    return 0;
}

/* When the active certificate will be renewed, for the log. */
static void scheduled(sim_device *d)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "renew_at=%lld not_after=%lld",
             (long long)iotd_enroll_renew_at(&d->en), (long long)d->en.active_end);
    sim_event(d, IOTD_LOG_INFO, "enroll.scheduled", msg);
}

int sim_enroll_open(sim_device *d)
{
    if (!d->sim->opt->enroll.enabled)
        return 0;
    if (d->ework == NULL && (setup(d) != 0 || start_machine(d) != 0))
        return -1;
    d->enrolling = true;
    if (!iotd_enroll_has_certificate(&d->en) && d->token[0] == '\0' &&
        d->sim->opt->enroll.bootstrap_cert == NULL) {
        sim_errorf("%s: no certificate in %s and nothing to enroll with: give its token "
                   "(--enroll-token, --enroll-tokens) or a bootstrap certificate",
                   d->id, d->cred.active);
        return -1;
    }
    uint64_t deadline = now_ms() + FIRST_WAIT_MS;
    while (!iotd_enroll_has_certificate(&d->en)) {
        uint32_t ms = iotd_enroll_step(&d->en, now_ms());
        if (iotd_enroll_has_certificate(&d->en))
            break;
        if (now_ms() + ms > deadline || d->sim->stop) {
            sim_errorf("%s: no certificate from the gateway's enrollment", d->id);
            return -1;
        }
        sleep_for(NULL, ms);
    }
    d->renewals_seen = d->en.stats.renewed;
    scheduled(d);
    return 0;
}

const char *sim_enroll_cert_path(const sim_device *d)
{
    return d->cred.active;
}

/* The device's TLS client with the certificate just committed. */
static void reload(sim_device *d)
{
    iotd_posix_https_config hc = {
        .url = d->sim->opt->gateway,
        .ca_file = d->ca_path,
        .crl_file = d->sim->opt->crl,
        .cert_file = d->cred.active,
        .key_file = d->cred.active,
        .device_id = d->id,
        .connect_timeout_ms = d->sim->opt->connect_timeout_ms,
        .request_timeout_ms = d->sim->opt->timeout_ms,
    };
    iot_err err = {0};
    iotd_posix_https_free(&d->posix.https);
    if (iotd_posix_https_init(&d->posix.https, &hc, &err) != IOT_OK)
        sim_errorf("%s: cannot load the renewed certificate: %s", d->id, err.msg);
    else
        sim_event(d, IOTD_LOG_INFO, "enroll.reloaded", "the TLS client uses the new certificate");
    scheduled(d);
}

uint32_t sim_enroll_step(sim_device *d, uint64_t now)
{
    (void)now;
    uint32_t ms = iotd_enroll_step(&d->en, now_ms());
    if (d->en.stats.renewed != d->renewals_seen) {
        d->renewals_seen = d->en.stats.renewed;
        reload(d);
    }
    return ms;
}

void sim_enroll_close(sim_device *d)
{
    free(d->ework);
    d->ework = NULL;
    d->enrolling = false;
}
