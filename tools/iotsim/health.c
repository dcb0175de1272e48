/* Health reports of simulated devices (iotd/health.h): the core's machine
 * over the device's port, with what a simulator can say of itself. The
 * boot count lives in the device's state (kv "boot.count"), so it grows
 * across runs like a real device's; the reset reason is --reset-reason, or
 * power_on at the first start and software after; the certificate's
 * expiry is read from the certificate in use at each report. */
#define _DEFAULT_SOURCE /* timegm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mbedtls/x509_crt.h>

#include "sim.h"

#define BOOT_KEY "boot.count"

/* The health report's own https_post: the port's, without the upload
 * bookkeeping (a report holds no readings), with one line at -v. */
static iotd_status health_post(void *ctx, const char *path, const char *content_type,
                               const char *body, size_t body_len, char *resp, size_t resp_cap,
                               iotd_http_result *result)
{
    iotd_posix *p = ctx;
    sim_device *d = p->user;
    iotd_status st = d->post(ctx, path, content_type, body, body_len, resp, resp_cap, result);
    char msg[64];
    if (st == IOTD_OK)
        snprintf(msg, sizeof(msg), "status=%d", result->status);
    else
        snprintf(msg, sizeof(msg), "no answer");
    sim_event(d, IOTD_LOG_INFO, "health.sent", msg);
    return st;
}

static int64_t cert_not_after(const sim_device *d)
{
    char path[IOTD_POSIX_CRED_PATH_MAX];
    if (d->enrolling)
        snprintf(path, sizeof(path), "%s", sim_enroll_cert_path(d));
    else
        snprintf(path, sizeof(path), "%s/devices/%s/cert.pem",
                 d->sim->opt->pki != NULL ? d->sim->opt->pki : ".", d->id);
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    int64_t t = 0;
    if (mbedtls_x509_crt_parse_file(&crt, path) == 0) {
        struct tm tm = {.tm_year = crt.valid_to.year - 1900,
                        .tm_mon = crt.valid_to.mon - 1,
                        .tm_mday = crt.valid_to.day,
                        .tm_hour = crt.valid_to.hour,
                        .tm_min = crt.valid_to.min,
                        .tm_sec = crt.valid_to.sec};
        t = (int64_t)timegm(&tm);
    }
    mbedtls_x509_crt_free(&crt);
    return t;
}

static void fill(void *ctx, iotd_health_info *out)
{
    sim_device *d = ctx;
    out->firmware = d->boot.image.version;
    out->secure_version = d->boot.image.secure_version;
    out->boot_count = d->boot_count;
    out->reset_reason = d->reset_reason;
    out->heap_min = -1;
    out->cert_not_after = cert_not_after(d);
    out->slot = d->boot.slot == IOTD_POSIX_FACTORY ? "factory"
                : d->boot.slot == 0                ? "ota_0"
                                                   : "ota_1";
}

/* This start, counted in the device's state. */
static void count_boot(sim_device *d)
{
    uint8_t b[4] = {0};
    size_t len = 0;
    uint32_t n = 0;
    if (d->port.kv_get(d->port.ctx, BOOT_KEY, b, sizeof(b), &len) == IOTD_OK && len == 4)
        n = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    n++;
    b[0] = (uint8_t)n, b[1] = (uint8_t)(n >> 8), b[2] = (uint8_t)(n >> 16),
    b[3] = (uint8_t)(n >> 24);
    (void)d->port.kv_set(d->port.ctx, BOOT_KEY, b, sizeof(b));
    d->boot_count = n;
}

int sim_health_open(sim_device *d)
{
    const sim_options *opt = d->sim->opt;
    count_boot(d);
    d->reset_reason = opt->reset_reason != NULL ? opt->reset_reason
                      : d->boot_count <= 1      ? IOTD_RESET_POWER_ON
                                                : IOTD_RESET_SOFTWARE;
    d->reporting = false;
    if (opt->health_ms == 0)
        return 0;
    d->hport = d->port;
    d->hport.https_post = health_post;
    iotd_health_config cfg;
    iotd_health_config_init(&cfg);
    cfg.interval_ms = opt->health_ms;
    cfg.fill = fill;
    cfg.fill_ctx = d;
    cfg.buf = d->hbuf;
    cfg.cap = sizeof(d->hbuf);
    if (iotd_health_init(&d->health, &d->hport, &d->dev, &cfg) != IOTD_OK) {
        sim_errorf("%s: cannot start the health reports", d->id);
        return -1;
    }
    d->reporting = true;
    return 0;
}

uint32_t sim_health_step(sim_device *d, uint64_t now)
{
    return d->reporting ? iotd_health_step(&d->health, now) : UINT32_MAX;
}
