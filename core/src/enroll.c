#include "iotd/enroll.h"

#include <string.h>

/* The CSR of a P-256 key is about 300 bytes in DER. */
#define CSR_DER_MAX 1024u
/* When the clock is not set, or the renewal is far away, look again this often. */
#define WAIT_POLL_MS  60000u
#define CLOCK_POLL_MS 1000u

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* ---- base64 ----------------------------------------------------------------- */

iotd_status iotd_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap,
                               size_t *out_len)
{
    size_t need = (len + 2u) / 3u * 4u;
    if (need >= cap)
        return IOTD_ENOSPC;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3u) {
        uint32_t b1 = i + 1u < len ? in[i + 1u] : 0u;
        uint32_t b2 = i + 2u < len ? in[i + 2u] : 0u;
        uint32_t v = ((uint32_t)in[i] << 16) | (b1 << 8) | b2;
        out[o++] = B64[(v >> 18) & 63u];
        out[o++] = B64[(v >> 12) & 63u];
        out[o++] = i + 1u < len ? B64[(v >> 6) & 63u] : '=';
        out[o++] = i + 2u < len ? B64[v & 63u] : '=';
    }
    out[o] = '\0';
    *out_len = o;
    return IOTD_OK;
}

/* The 6-bit value of a base64 character; -1 for padding, -2 for whitespace,
 * -3 for anything else. */
static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '/')
        return c == '+' ? 62 : 63;
    if (c == '=')
        return -1;
    return (c == ' ' || c == '\t' || c == '\r' || c == '\n') ? -2 : -3;
}

iotd_status iotd_base64_decode_inplace(char *buf, size_t len, size_t *out_len)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    bool padded = false;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(buf[i]);
        if (v == -2)
            continue;
        if (v == -3 || (padded && v >= 0))
            return IOTD_EINVAL;
        if (v == -1) {
            padded = true;
            continue;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6u;
        if (bits >= 8u) {
            bits -= 8u;
            buf[o++] = (char)(uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits of a complete group are the zero fill; 6 are a lone character. */
    if (bits >= 6u)
        return IOTD_EINVAL;
    *out_len = o;
    return IOTD_OK;
}

/* ---- helpers ---------------------------------------------------------------- */

static void note(const iotd_enroll *e, iotd_log_level level, const char *event, const char *msg)
{
    if (e->port->log != NULL)
        e->port->log(e->port->ctx, level, event, msg);
}

static uint32_t retry_later(iotd_enroll *e, uint64_t now_ms)
{
    uint32_t d = iotd_backoff_fail(&e->backoff, e->port->random_u32(e->port->ctx));
    e->due_ms = now_ms + d;
    return d;
}

static uint32_t retry_after(iotd_enroll *e, uint64_t now_ms, uint32_t seconds)
{
    uint32_t d = iotd_retry_after_delay(seconds, e->cfg.retry_after_max_s, e->cfg.backoff_base_ms,
                                        e->port->random_u32(e->port->ctx));
    e->due_ms = now_ms + d;
    return d;
}

static bool wall_now(const iotd_enroll *e, int64_t *now)
{
    return e->port->wall_time(e->port->ctx, now) && *now >= IOTD_MIN_WALL_TIME;
}

/* Reads the active slot and draws the renewal time: two thirds of the
 * lifetime plus up to a twelfth more. */
static iotd_status load_active(iotd_enroll *e)
{
    iotd_cert_info ci;
    iotd_status st = e->cred->cert_info(e->cred->ctx, IOTD_CRED_ACTIVE, &ci);
    e->has_active = st == IOTD_OK;
    e->renew_at = 0;
    if (st != IOTD_OK)
        return st == IOTD_ENOENT ? IOTD_OK : st;
    int64_t life = ci.not_after > ci.not_before ? ci.not_after - ci.not_before : 0;
    uint32_t span = life / 12 > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)(life / 12);
    uint32_t jitter = iotd_random_upto(e->port->random_u32(e->port->ctx), span);
    e->renew_at = ci.not_before + life / 3 * 2 + (int64_t)jitter;
    e->active_end = ci.not_after;
    return IOTD_OK;
}

static iotd_enroll_state first_state(const iotd_enroll *e)
{
    return e->cfg.fetch_cacerts ? IOTD_ENROLL_CACERTS : IOTD_ENROLL_REQUEST;
}

/* ---- public ----------------------------------------------------------------- */

void iotd_enroll_config_init(iotd_enroll_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->first_auth = IOTD_ENROLL_AUTH_TOKEN;
    cfg->fetch_cacerts = true;
    cfg->backoff_base_ms = 5000u;
    cfg->backoff_max_ms = 3600000u;
    cfg->retry_after_max_s = 86400u;
    cfg->pending_s = 60u;
}

iotd_status iotd_enroll_init(iotd_enroll *e, const iotd_port *port, const iotd_cred_port *cred,
                             const iotd_enroll_config *cfg, char *work, size_t cap)
{
    if (e == NULL || port == NULL || cred == NULL || cfg == NULL || work == NULL ||
        cap < IOTD_ENROLL_WORK_MIN)
        return IOTD_EINVAL;
    memset(e, 0, sizeof(*e));
    e->port = port;
    e->cred = cred;
    e->cfg = *cfg;
    e->work = work;
    e->work_cap = cap;
    iotd_backoff_init(&e->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms);
    iotd_status st = load_active(e);
    if (st != IOTD_OK)
        return st;
    iotd_cert_info ci;
    if (e->has_active && cred->cert_info(cred->ctx, IOTD_CRED_CANDIDATE, &ci) == IOTD_OK)
        e->state = IOTD_ENROLL_PROBE;
    else
        e->state = e->has_active ? IOTD_ENROLL_WAIT : first_state(e);
    return IOTD_OK;
}

void iotd_enroll_renew_now(iotd_enroll *e)
{
    e->renew_now = true;
}

bool iotd_enroll_has_certificate(const iotd_enroll *e)
{
    return e->has_active;
}

iotd_enroll_state iotd_enroll_get_state(const iotd_enroll *e)
{
    return e->state;
}

int64_t iotd_enroll_renew_at(const iotd_enroll *e)
{
    return e->has_active ? e->renew_at : 0;
}

/* ---- waiting for the renewal -------------------------------------------------- */

static uint32_t step_wait(iotd_enroll *e, uint64_t now_ms)
{
    int64_t now;
    if (e->renew_now) {
        e->renew_now = false;
        e->state = IOTD_ENROLL_REQUEST;
        return 0;
    }
    if (!wall_now(e, &now))
        return CLOCK_POLL_MS;
    if (now >= e->renew_at) {
        note(e, IOTD_LOG_INFO, "enroll.renewal_due", "the certificate is due for renewal");
        e->state = IOTD_ENROLL_REQUEST;
        e->due_ms = now_ms;
        return 0;
    }
    int64_t left_ms = (e->renew_at - now) * 1000;
    return left_ms < (int64_t)WAIT_POLL_MS ? (uint32_t)left_ms : WAIT_POLL_MS;
}

/* ---- cacerts ------------------------------------------------------------------ */

static uint32_t step_cacerts(iotd_enroll *e, uint64_t now_ms)
{
    iotd_http_result r;
    size_t n = 0;
    e->stats.requests++;
    iotd_status st =
        e->cred->est_request(e->cred->ctx, IOTD_EST_CACERTS, NULL, 0, e->work, e->work_cap, &r);
    if (st == IOTD_ENET)
        e->stats.no_answer++;
    if (st != IOTD_OK || r.status != 200 ||
        iotd_base64_decode_inplace(e->work, r.body_len, &n) != IOTD_OK ||
        e->cred->cacerts_store(e->cred->ctx, (const uint8_t *)e->work, n) != IOTD_OK) {
        if (st == IOTD_OK)
            e->stats.refused++;
        note(e, IOTD_LOG_WARN, "enroll.cacerts_failed", "no usable CA certificates");
        return retry_later(e, now_ms);
    }
    iotd_backoff_reset(&e->backoff);
    e->state = IOTD_ENROLL_REQUEST;
    return 0;
}

/* ---- the request ---------------------------------------------------------------- */

/* The CSR of the candidate key, base64, at the end of the work buffer; a
 * new key first when there is none. *body and *len describe it; the free
 * space before it is *resp_cap bytes from the buffer's start. */
static iotd_status make_body(iotd_enroll *e, const char **body, size_t *len, size_t *resp_cap)
{
    uint8_t *der = (uint8_t *)e->work + e->work_cap - CSR_DER_MAX;
    size_t n = 0;
    iotd_status st = e->cred->csr_make(e->cred->ctx, der, CSR_DER_MAX, &n);
    if (st == IOTD_ENOENT) {
        st = e->cred->key_generate(e->cred->ctx);
        if (st == IOTD_OK)
            st = e->cred->csr_make(e->cred->ctx, der, CSR_DER_MAX, &n);
    }
    if (st != IOTD_OK)
        return st;
    size_t b64 = (n + 2u) / 3u * 4u + 1u;
    char *out = (char *)der - b64;
    st = iotd_base64_encode(der, n, out, b64, len);
    *body = out;
    *resp_cap = (size_t)(out - e->work);
    return st;
}

static iotd_est_op request_op(const iotd_enroll *e)
{
    int64_t now;
    if (e->has_active && wall_now(e, &now) && now < e->active_end)
        return IOTD_EST_REENROLL;
    return e->cfg.first_auth == IOTD_ENROLL_AUTH_BOOTSTRAP ? IOTD_EST_ENROLL_BOOTSTRAP
                                                           : IOTD_EST_ENROLL_TOKEN;
}

static void terminate_body(iotd_enroll *e, size_t len, size_t cap)
{
    e->work[len < cap ? len : cap - 1u] = '\0';
}

static uint32_t committed(iotd_enroll *e, uint64_t now_ms, bool renewal)
{
    if (e->cred->commit(e->cred->ctx) != IOTD_OK || load_active(e) != IOTD_OK) {
        note(e, IOTD_LOG_ERROR, "enroll.commit_failed", "the new certificate could not be stored");
        return retry_later(e, now_ms);
    }
    iotd_backoff_reset(&e->backoff);
    e->state = IOTD_ENROLL_WAIT;
    if (renewal)
        e->stats.renewed++;
    else
        e->stats.enrolled++;
    note(e, IOTD_LOG_INFO, renewal ? "enroll.renewed" : "enroll.enrolled",
         renewal ? "the renewed certificate is in use" : "the device has its certificate");
    return 0;
}

static uint32_t on_issued(iotd_enroll *e, uint64_t now_ms, iotd_est_op op, size_t body_len)
{
    size_t n = 0;
    iotd_status st = iotd_base64_decode_inplace(e->work, body_len, &n);
    if (st == IOTD_OK)
        st = e->cred->candidate_store(e->cred->ctx, (const uint8_t *)e->work, n);
    if (st != IOTD_OK) {
        e->stats.refused++;
        note(e, IOTD_LOG_WARN, "enroll.bad_answer", "the certificate answer was not usable");
        return retry_later(e, now_ms);
    }
    if (op != IOTD_EST_REENROLL)
        return committed(e, now_ms, false);
    iotd_backoff_reset(&e->backoff);
    e->state = IOTD_ENROLL_PROBE;
    e->due_ms = now_ms;
    return 0;
}

static uint32_t on_conflict(iotd_enroll *e, uint64_t now_ms)
{
    e->stats.conflicts++;
    note(e, IOTD_LOG_WARN, "enroll.conflict", e->work);
    /* A new key for the next request: the gateway refused this one. */
    if (e->cred->candidate_drop(e->cred->ctx) != IOTD_OK)
        note(e, IOTD_LOG_ERROR, "enroll.storage", "the candidate key could not be dropped");
    return retry_later(e, now_ms);
}

static uint32_t on_answer(iotd_enroll *e, uint64_t now_ms, iotd_est_op op,
                          const iotd_http_result *r)
{
    if (r->status == 200)
        return on_issued(e, now_ms, op, r->body_len);
    if (r->status == 409)
        return on_conflict(e, now_ms);
    if (r->status == 202) {
        e->stats.pending++;
        note(e, IOTD_LOG_INFO, "enroll.pending", "the enrollment waits for approval");
        return retry_after(e, now_ms, r->has_retry_after ? r->retry_after_s : e->cfg.pending_s);
    }
    e->stats.refused++;
    note(e, IOTD_LOG_WARN, "enroll.refused", e->work);
    if (r->has_retry_after && (r->status == 429 || r->status == 503))
        return retry_after(e, now_ms, r->retry_after_s);
    return retry_later(e, now_ms);
}

static uint32_t step_request(iotd_enroll *e, uint64_t now_ms)
{
    const char *body = NULL;
    size_t len = 0, resp_cap = 0;
    iotd_http_result r;
    if (make_body(e, &body, &len, &resp_cap) != IOTD_OK) {
        note(e, IOTD_LOG_ERROR, "enroll.key_failed", "no key or certificate request");
        return retry_later(e, now_ms);
    }
    iotd_est_op op = request_op(e);
    e->stats.requests++;
    memset(&r, 0, sizeof(r));
    iotd_status st = e->cred->est_request(e->cred->ctx, op, body, len, e->work, resp_cap, &r);
    if (st != IOTD_OK) {
        e->stats.no_answer++;
        note(e, IOTD_LOG_WARN, "enroll.no_answer", "the enrollment request got no answer");
        return retry_later(e, now_ms);
    }
    terminate_body(e, r.body_len, resp_cap);
    return on_answer(e, now_ms, op, &r);
}

/* ---- the probe ------------------------------------------------------------------- */

static uint32_t rollback(iotd_enroll *e, uint64_t now_ms)
{
    e->stats.rollbacks++;
    note(e, IOTD_LOG_WARN, "enroll.rollback",
         "the gateway refused the new certificate; the current one stays");
    (void)e->cred->candidate_drop(e->cred->ctx);
    e->state = IOTD_ENROLL_REQUEST;
    return retry_later(e, now_ms);
}

static uint32_t step_probe(iotd_enroll *e, uint64_t now_ms)
{
    iotd_http_result r;
    memset(&r, 0, sizeof(r));
    iotd_status st = e->cred->probe(e->cred->ctx, &r);
    if (st == IOTD_OK && r.status >= 200 && r.status < 300)
        return committed(e, now_ms, true);
    if (st == IOTD_OK && (r.status == 401 || r.status == 403))
        return rollback(e, now_ms);
    if (st != IOTD_OK)
        e->stats.no_answer++;
    /* No answer or a gateway in trouble: the candidate waits, the current
     * certificate goes on working. */
    return retry_later(e, now_ms);
}

uint32_t iotd_enroll_step(iotd_enroll *e, uint64_t now_ms)
{
    if (e->state == IOTD_ENROLL_WAIT)
        return step_wait(e, now_ms);
    if (now_ms < e->due_ms) {
        uint64_t left = e->due_ms - now_ms;
        return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    }
    switch (e->state) {
    case IOTD_ENROLL_CACERTS:
        return step_cacerts(e, now_ms);
    case IOTD_ENROLL_REQUEST:
        return step_request(e, now_ms);
    case IOTD_ENROLL_PROBE:
        return step_probe(e, now_ms);
    case IOTD_ENROLL_WAIT:
        break;
    }
    return 0;
}
