/* See iotd/health.h. Written without stdio: the core has no printf. */
#include "iotd/health.h"

#include <string.h>

#include "internal.h"
#include "json_out.h"
#include "iotd/protocol.h"

#define HEALTH_BUF_MIN     256u
#define DEFAULT_INTERVAL   (60u * 60u * 1000u)
#define RETRY_BASE_MS      5000u
#define RETRY_MAX_MS       (30u * 60u * 1000u)
#define FIRMWARE_MAX_CHARS 32u
#define SLOT_MAX_CHARS     16u

static void member(iotd__out *o, const char *name, int64_t v)
{
    iotd__put_str(o, ",\"");
    iotd__put_str(o, name);
    iotd__put_str(o, "\":");
    iotd__put_i64(o, v);
}

/* 1..max of [a-z0-9_]; with wide, also [A-Z.+-] (a firmware version).
 * One check for both strings keeps the report inside its size budget. */
static bool token_ok(const char *s, size_t max, bool wide)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        char c = s[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' ||
                  (wide && ((c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '+'));
        if (!ok || n >= max)
            return false;
    }
    return n > 0;
}

static bool reset_ok(const char *s)
{
    static const char *const known[] = {
        IOTD_RESET_POWER_ON, IOTD_RESET_SOFTWARE, IOTD_RESET_DEEP_SLEEP, IOTD_RESET_EXTERNAL,
        IOTD_RESET_PANIC,    IOTD_RESET_WATCHDOG, IOTD_RESET_BROWNOUT,   IOTD_RESET_UNKNOWN,
    };
    for (size_t i = 0; s != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(s, known[i]) == 0)
            return true;
    return false;
}

iotd_status iotd_health_json(const iotd_health_info *info, uint32_t connect_failures,
                             int64_t since_upload_s, char *buf, size_t cap, size_t *len)
{
    if (info == NULL || buf == NULL || len == NULL || cap == 0u || info->firmware == NULL ||
        !token_ok(info->firmware, FIRMWARE_MAX_CHARS, true) || !reset_ok(info->reset_reason) ||
        (info->slot != NULL && !token_ok(info->slot, SLOT_MAX_CHARS, false)))
        return IOTD_EINVAL;
    iotd__out o = {buf, cap, 0u, false};
    iotd__put_str(&o, "{\"firmware\":\"");
    iotd__put_str(&o, info->firmware);
    iotd__put_str(&o, "\",\"reset_reason\":\"");
    iotd__put_str(&o, info->reset_reason);
    iotd__put_str(&o, "\"");
    if (info->slot != NULL) {
        iotd__put_str(&o, ",\"slot\":\"");
        iotd__put_str(&o, info->slot);
        iotd__put_str(&o, "\"");
    }
    member(&o, "secure_version", info->secure_version);
    member(&o, "boot_count", info->boot_count);
    member(&o, "connect_failures", connect_failures);
    member(&o, "since_upload_s", since_upload_s < -1 ? -1 : since_upload_s);
    member(&o, "heap_min", info->heap_min < -1 ? -1 : info->heap_min);
    member(&o, "cert_not_after", info->cert_not_after < 0 ? 0 : info->cert_not_after);
    iotd__put_str(&o, "}");
    if (o.full)
        return IOTD_ENOSPC;
    buf[o.len] = '\0';
    *len = o.len;
    return IOTD_OK;
}

void iotd_health_config_init(iotd_health_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval_ms = DEFAULT_INTERVAL;
}

iotd_status iotd_health_init(iotd_health *h, const iotd_port *port, const iotd_device *dev,
                             const iotd_health_config *cfg)
{
    if (h == NULL || port == NULL || dev == NULL || cfg == NULL || cfg->fill == NULL ||
        cfg->buf == NULL || cfg->cap < HEALTH_BUF_MIN || cfg->interval_ms == 0u)
        return IOTD_EINVAL;
    memset(h, 0, sizeof(*h));
    h->port = port;
    h->dev = dev;
    h->cfg = *cfg;
    iotd_backoff_init(&h->backoff, RETRY_BASE_MS, RETRY_MAX_MS); /* due_ms 0: due at once */
    return IOTD_OK;
}

static int64_t since_upload_s(const iotd_health *h, uint64_t now_ms)
{
    uint64_t at = 0u;
    if (!iotd_device_last_accepted(h->dev, &at))
        return -1;
    return now_ms > at ? (int64_t)((now_ms - at) / 1000u) : 0;
}

/* Renders and posts the report: the HTTP status, or 0 without an answer. */
static int send_report(iotd_health *h, uint64_t now_ms, uint32_t no_answer)
{
    iotd_health_info info;
    iotd_http_result res;
    size_t len = 0u;
    memset(&info, 0, sizeof(info));
    info.heap_min = -1;
    h->cfg.fill(h->cfg.fill_ctx, &info);
    if (iotd_health_json(&info, no_answer - h->no_answer_reported, since_upload_s(h, now_ms),
                         h->cfg.buf, h->cfg.cap, &len) != IOTD_OK)
        return -1;
    memset(&res, 0, sizeof(res));
    if (h->port->https_post(h->port->ctx, IOTD_HEALTH_PATH, "application/json", h->cfg.buf, len,
                            h->cfg.buf, h->cfg.cap, &res) != IOTD_OK)
        return 0;
    return res.status;
}

uint32_t iotd_health_step(iotd_health *h, uint64_t now_ms)
{
    if (now_ms < h->due_ms) {
        uint64_t wait = h->due_ms - now_ms;
        return wait > UINT32_MAX ? UINT32_MAX : (uint32_t)wait;
    }
    uint32_t no_answer = iotd_device_stats(h->dev)->no_answer;
    int status = send_report(h, now_ms, no_answer);
    if (status >= 200 && status < 300) {
        h->stats.sent++;
        h->no_answer_reported = no_answer;
        iotd_backoff_reset(&h->backoff);
        h->due_ms = now_ms + h->cfg.interval_ms;
    } else if (status < 0 || (status >= 400 && status < 500 && status != 408 && status != 429)) {
        h->stats.refused++;
        iotd__log(h->port, IOTD_LOG_WARN, "health.refused",
                  status < 0 ? "no health report made: firmware, reset reason or slot invalid"
                             : "the gateway refused the health report; next one at the interval");
        h->due_ms = now_ms + h->cfg.interval_ms;
    } else {
        h->stats.no_answer++;
        h->due_ms = now_ms + iotd_backoff_fail(&h->backoff, h->port->random_u32(h->port->ctx));
    }
    return 0u;
}
