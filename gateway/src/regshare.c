/* See regshare.h. */
#include "regshare.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "admission.h"
#include "estcodec.h"
#include "iot/enroll.h"
#include "iot/identity.h"
#include "log.h"
#include "metrics.h"
#include "shared.h"

#define CERTS       "/iot/certs/"
#define REVOKED     "/iot/revoked/"
#define TOKENS      "/iot/tokens-made/"
#define TOKENS_OFF  "/iot/tokens-revoked/"
#define REQUESTS    "/iot/enroll/"
#define DER_MAX     4096
#define PAGE        500
#define BUSY_MS     2000
#define GATEWAY_MAX 127
#define REASON_MAX  31

/* The registry file and its WAL: what any writer (iotctl, enrollment,
 * this thread) changes. */
typedef struct reg_stamp {
    struct timespec mtime, wal_mtime;
    off_t size, wal_size;
} reg_stamp;

struct gw_regshare {
    gw_regshare_options opt;
    char gateway[GATEWAY_MAX + 1];
    iot_registry *reg; /* the thread's own handle */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool down; /* the last call failed: logged once, until one succeeds */
    int64_t certs_rev, revoked_rev, tokens_rev, tokens_off_rev;
    int64_t revoked_up_to; /* local revocations up to this time are written */
    int64_t tokens_up_to;  /* local tokens created up to this time are written */
    int64_t tokens_off_up_to;
    int64_t requests_rev;
    int64_t asked_up_to, decided_up_to; /* local requests and decisions written */
    reg_stamp written;                  /* the registry when all was last written out */
    bool written_once;
};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static bool refuse_value(const char *key, const char *why)
{
    gw_metric_inc(GW_M_SHARED_REFUSED);
    gw_log(GW_LOG_WARN, "shared.value_refused", "key=\"%.200s\" why=\"%s\"", key, why);
    return true;
}

/* A serial as the registry writes them: 1-40 upper-case hex digits. */
static bool serial_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= IOT_SERIAL_HEX_MAX && strspn(s, "0123456789ABCDEF") == n;
}

static const char *string_of(const cJSON *obj, const char *name, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) && strlen(v->valuestring) <= max ? v->valuestring : NULL;
}

/* ---- certificates out ------------------------------------------------------ */

typedef struct predecessor {
    const char *serial;
    char previous[IOT_SERIAL_HEX_MAX + 1];
    int64_t grace_until;
} predecessor;

static int find_predecessor(const iot_cert_record *rec, void *ctx)
{
    predecessor *p = ctx;
    if (strcmp(rec->successor, p->serial) == 0) {
        snprintf(p->previous, sizeof(p->previous), "%s", rec->serial);
        p->grace_until = rec->grace_until;
    }
    return 0;
}

static char *cert_value(const char *gateway, const char *device, const char *der64,
                        const predecessor *p)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "device", device);
    cJSON_AddStringToObject(v, "der", der64);
    cJSON_AddStringToObject(v, "previous", p->previous);
    cJSON_AddNumberToObject(v, "grace_until", (double)p->grace_until);
    cJSON_AddStringToObject(v, "gateway", gateway);
    cJSON_AddNumberToObject(v, "at", (double)now_s());
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

iot_status gw_regshare_publish(gw_shared *shared, const char *gateway, iot_registry *reg,
                               const char *device, const char *serial, iot_err *err)
{
    unsigned char der[DER_MAX];
    char der64[2 * DER_MAX];
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    size_t len = 0;
    bool created = false;
    char *value = NULL;
    predecessor p = {.serial = serial};
    iot_status st = iot_registry_get_der(reg, serial, der, sizeof(der), &len, err);
    if (st == IOT_OK)
        st = iot_registry_foreach_superseded(reg, device, find_predecessor, &p, err);
    if (st != IOT_OK)
        goto out;
    gw_est_base64_encode(der, len, der64, sizeof(der64));
    value = cert_value(gateway, device, der64, &p);
    if (value == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(key, sizeof(key), CERTS "%s", serial);
    st = gw_shared_create(shared, key, value, &created, existing, sizeof(existing), err);
    if (st != IOT_OK) {
        gw_metric_inc(GW_M_SHARED_ERRORS);
        gw_log(GW_LOG_ERROR, "shared.unavailable",
               "for=enrollment device=%s serial=%s error=\"%s\"", device, serial, err->msg);
    }
out:
    free(value);
    return st;
}

/* ---- certificates in ------------------------------------------------------- */

static void log_imported(const char *device, const char *serial, const char *from,
                         iot_import_outcome outcome)
{
    gw_metric_inc(GW_M_SHARED_CERTS_IMPORTED);
    gw_log(GW_LOG_INFO, "est.imported", "device=%s serial=%s from=%s as=%s", device, serial, from,
           outcome == IOT_IMPORT_RENEWED ? "renewal" : "new");
}

/* Puts an imported certificate in force now, as enrollment does. */
static void admit(gw_regshare *rs, const char *serial, bool grace)
{
    iot_cert_record rec;
    iot_err err = {0};
    iot_status st = iot_registry_get_by_serial(rs->reg, serial, &rec, &err);
    if (st == IOT_OK)
        st = gw_admission_add_issued(rs->opt.identity, &rec, grace, &err);
    if (st != IOT_OK)
        gw_log(GW_LOG_WARN, "est.admit_deferred",
               "serial=%s error=\"%s\" action=\"admitted at the next reload\"", serial, err.msg);
}

/* A certificate record as another gateway wrote it. */
typedef struct shared_cert {
    const char *device, *previous, *from;
    unsigned char der[DER_MAX];
    size_t der_len;
    int64_t grace_until;
} shared_cert;

static bool parse_cert(const cJSON *v, shared_cert *c)
{
    const char *der64 = string_of(v, "der", 2 * DER_MAX);
    const cJSON *grace = cJSON_GetObjectItemCaseSensitive(v, "grace_until");
    c->device = string_of(v, "device", IOT_ID_MAX);
    c->previous = string_of(v, "previous", IOT_SERIAL_HEX_MAX);
    c->from = string_of(v, "gateway", GATEWAY_MAX);
    if (c->device == NULL || !iot_id_is_valid(c->device) || c->previous == NULL ||
        (c->previous[0] != '\0' && !serial_ok(c->previous)) || c->from == NULL || der64 == NULL ||
        !cJSON_IsNumber(grace))
        return false;
    c->grace_until = (int64_t)grace->valuedouble;
    return gw_est_base64_decode(der64, strlen(der64), c->der, sizeof(c->der), &c->der_len) == 0;
}

/* false: the registry is busy; the key is read again next time. */
static bool import_cert(gw_regshare *rs, const char *key, const char *serial, const cJSON *v)
{
    shared_cert c;
    if (!parse_cert(v, &c))
        return refuse_value(key, "not a certificate record");
    if (strcmp(c.from, rs->gateway) == 0)
        return true; /* ours: in the registry already */
    iot_enroll_import in = {.der = c.der,
                            .der_len = c.der_len,
                            .device = c.device,
                            .previous = c.previous,
                            .grace_until = c.grace_until,
                            .issuers = rs->opt.issuers};
    iot_import_outcome outcome = IOT_IMPORT_KNOWN;
    iot_err err = {0};
    iot_status st = iot_enroll_import_cert(rs->reg, &in, now_s(), &outcome, &err);
    if (st == IOT_EBUSY || st == IOT_EIO)
        return false;
    if (st != IOT_OK) {
        gw_metric_inc(GW_M_SHARED_REFUSED);
        gw_log(GW_LOG_WARN, "est.import_refused", "device=%s serial=%s from=%s error=\"%s\"",
               c.device, serial, c.from, err.msg);
        return true;
    }
    if (outcome != IOT_IMPORT_KNOWN) {
        admit(rs, serial, outcome == IOT_IMPORT_RENEWED && c.grace_until > now_s());
        log_imported(c.device, serial, c.from, outcome);
    }
    return true;
}

/* ---- revocations in and out ------------------------------------------------ */

static bool import_revocation(gw_regshare *rs, const char *key, const char *serial, const cJSON *v)
{
    const char *device = string_of(v, "device", IOT_ID_MAX);
    const char *reason = string_of(v, "reason", REASON_MAX);
    const char *from = string_of(v, "gateway", GATEWAY_MAX);
    if (device == NULL || !iot_id_is_valid(device) || reason == NULL || from == NULL)
        return refuse_value(key, "not a revocation record");
    if (strcmp(from, rs->gateway) == 0)
        return true;
    bool changed = false;
    iot_err err = {0};
    iot_status st =
        iot_enroll_import_revocation(rs->reg, device, serial, reason, now_s(), &changed, &err);
    if (st == IOT_EBUSY || st == IOT_EIO)
        return false;
    if (st == IOT_OK && changed) {
        gw_metric_inc(GW_M_SHARED_REVOCATIONS_IMPORTED);
        gw_log(GW_LOG_WARN, "identity.revocation_imported", "device=%s serial=%s reason=%s from=%s",
               device, serial, reason, from);
        if (gw_admission_reload(rs->opt.identity, &err) != IOT_OK)
            gw_log(GW_LOG_ERROR, "identity.reload_failed", "error=\"%s\"", err.msg);
    } else if (st != IOT_OK && st != IOT_ENOENT) {
        gw_log(GW_LOG_WARN, "identity.revocation_refused",
               "device=%s serial=%s from=%s error=\"%s\"", device, serial, from, err.msg);
    }
    return true;
}

static bool take(void *ctx, const char *key, const char *value, const char *prefix, bool cert)
{
    gw_regshare *rs = ctx;
    const char *serial = key + strlen(prefix);
    if (strncmp(key, prefix, strlen(prefix)) != 0 || !serial_ok(serial))
        return refuse_value(key, cert ? "not /iot/certs/<serial>" : "not /iot/revoked/<serial>");
    cJSON *v = cJSON_Parse(value);
    bool ok = cert ? import_cert(rs, key, serial, v) : import_revocation(rs, key, serial, v);
    cJSON_Delete(v);
    return ok;
}

static bool take_cert(void *ctx, const char *key, const char *value)
{
    return take(ctx, key, value, CERTS, true);
}

static bool take_revoked(void *ctx, const char *key, const char *value)
{
    return take(ctx, key, value, REVOKED, false);
}

static void read_prefix(gw_regshare *rs, const char *prefix, int64_t *revision, gw_shared_kv_fn fn)
{
    int n = PAGE;
    while (n == PAGE) {
        iot_err err = {0};
        int64_t before = *revision;
        iot_status st = gw_shared_changes(rs->opt.shared, prefix, revision, PAGE, &n, fn, rs, &err);
        gw_shared_note(&rs->down, "registry", st, &err);
        if (st != IOT_OK || *revision == before)
            return;
    }
}

typedef struct revocation {
    struct revocation *next;
    char device[IOT_ID_MAX + 1];
    char serial[IOT_SERIAL_HEX_MAX + 1];
    char reason[REASON_MAX + 1];
    int64_t at;
} revocation;

typedef struct revocations {
    int64_t after;
    revocation *list;
} revocations;

/* Devices' revocations (not replacements) made here after `after`. */
static int collect_revocation(const iot_cert_record *rec, void *ctx)
{
    revocations *rv = ctx;
    if (rec->kind != IOT_KIND_DEVICE || rec->revoked_at <= rv->after ||
        strcmp(rec->revoke_reason, "superseded") == 0)
        return 0;
    revocation *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return 0;
    snprintf(r->device, sizeof(r->device), "%s", rec->name);
    snprintf(r->serial, sizeof(r->serial), "%s", rec->serial);
    snprintf(r->reason, sizeof(r->reason), "%s", rec->revoke_reason);
    r->at = rec->revoked_at;
    r->next = rv->list;
    rv->list = r;
    return 0;
}

static bool write_revocation(gw_regshare *rs, const revocation *r)
{
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    bool created = false;
    iot_err err = {0};
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "device", r->device);
    cJSON_AddStringToObject(v, "reason", r->reason[0] ? r->reason : "unspecified");
    cJSON_AddNumberToObject(v, "at", (double)r->at);
    cJSON_AddStringToObject(v, "gateway", rs->gateway);
    char *value = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (value == NULL)
        return false;
    snprintf(key, sizeof(key), REVOKED "%s", r->serial);
    iot_status st =
        gw_shared_create(rs->opt.shared, key, value, &created, existing, sizeof(existing), &err);
    free(value);
    gw_shared_note(&rs->down, "registry", st, &err);
    if (st == IOT_OK && created)
        gw_log(GW_LOG_INFO, "identity.revocation_shared", "device=%s serial=%s", r->device,
               r->serial);
    return st == IOT_OK;
}

/* Writes the revocations made in this registry since the last pass (the
 * first pass: all of them; writing one that is there changes nothing). */
static bool write_revocations(gw_regshare *rs)
{
    revocations rv = {.after = rs->revoked_up_to};
    iot_err err = {0};
    int64_t now = now_s();
    bool all = iot_registry_foreach_revoked(rs->reg, collect_revocation, &rv, &err) == IOT_OK;
    for (revocation *r = rv.list; r != NULL; r = rv.list) {
        all = all && write_revocation(rs, r);
        rv.list = r->next;
        free(r);
    }
    /* Revocations made during the pass are not lost: they have a time at
     * or after `now`, which the next pass reads. */
    if (all)
        rs->revoked_up_to = now - 1;
    return all;
}

/* ---- tokens in and out -------------------------------------------------------- */

/* "tok-" and 12 lower-case hex digits. */
static bool token_id_ok(const char *id)
{
    return strlen(id) == IOT_TOKEN_ID_LEN && strncmp(id, "tok-", 4) == 0 &&
           strspn(id + 4, "0123456789abcdef") == IOT_TOKEN_ID_LEN - 4;
}

static bool import_token(gw_regshare *rs, const char *key, const char *id, const cJSON *v)
{
    iot_token_record t = {0};
    const char *device = string_of(v, "device", IOT_ID_MAX);
    const char *hash = string_of(v, "hash", 64);
    const char *from = string_of(v, "gateway", GATEWAY_MAX);
    const cJSON *created = cJSON_GetObjectItemCaseSensitive(v, "created");
    const cJSON *expires = cJSON_GetObjectItemCaseSensitive(v, "expires");
    if (device == NULL || hash == NULL || from == NULL || !cJSON_IsNumber(created) ||
        !cJSON_IsNumber(expires))
        return refuse_value(key, "not a token record");
    if (strcmp(from, rs->gateway) == 0)
        return true;
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.device, sizeof(t.device), "%s", device);
    t.created = (int64_t)created->valuedouble;
    t.expires = (int64_t)expires->valuedouble;
    bool added = false;
    iot_err err = {0};
    iot_status st = iot_token_import(rs->reg, &t, hash, &added, &err);
    if (st == IOT_EBUSY || st == IOT_EIO)
        return false;
    if (st != IOT_OK)
        return refuse_value(key, err.msg);
    if (added)
        gw_log(GW_LOG_INFO, "est.token_imported", "token=%s device=%s from=%s", id, device, from);
    return true;
}

static bool import_token_revocation(gw_regshare *rs, const char *key, const char *id,
                                    const cJSON *v)
{
    const char *from = string_of(v, "gateway", GATEWAY_MAX);
    if (from == NULL)
        return refuse_value(key, "not a token revocation record");
    if (strcmp(from, rs->gateway) == 0)
        return true;
    iot_err err = {0};
    iot_status st = iot_token_revoke(rs->reg, id, now_s(), &err);
    if (st == IOT_EBUSY || st == IOT_EIO)
        return false;
    if (st == IOT_OK)
        gw_log(GW_LOG_INFO, "est.token_revocation_imported", "token=%s from=%s", id, from);
    return true; /* unknown here, or used or revoked already: nothing to do */
}

static bool take_token_key(void *ctx, const char *key, const char *value, bool made)
{
    gw_regshare *rs = ctx;
    const char *prefix = made ? TOKENS : TOKENS_OFF;
    const char *id = key + strlen(prefix);
    if (strncmp(key, prefix, strlen(prefix)) != 0 || !token_id_ok(id))
        return refuse_value(key, "not a token key");
    cJSON *v = cJSON_Parse(value);
    bool ok = made ? import_token(rs, key, id, v) : import_token_revocation(rs, key, id, v);
    cJSON_Delete(v);
    return ok;
}

static bool take_token_made(void *ctx, const char *key, const char *value)
{
    return take_token_key(ctx, key, value, true);
}

static bool take_token_revoked(void *ctx, const char *key, const char *value)
{
    return take_token_key(ctx, key, value, false);
}

typedef struct token_out {
    struct token_out *next;
    bool revoked; /* a revocation, else a new token */
    iot_token_record rec;
    char hash[65];
} token_out;

typedef struct tokens_out {
    int64_t made_after, revoked_after, now;
    token_out *list;
} tokens_out;

/* Tokens made here since the last pass and still usable, and tokens
 * revoked here since the last pass. */
static int collect_token(const iot_token_record *rec, const char *hash, void *ctx)
{
    tokens_out *o = ctx;
    bool made = rec->created > o->made_after && rec->used_at == 0 && rec->revoked_at == 0 &&
                rec->expires > o->now;
    bool revoked = rec->revoked_at > o->revoked_after;
    if (!made && !revoked)
        return 0;
    token_out *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return 0;
    t->revoked = revoked;
    t->rec = *rec;
    snprintf(t->hash, sizeof(t->hash), "%s", hash);
    t->next = o->list;
    o->list = t;
    return 0;
}

static char *token_value(const gw_regshare *rs, const token_out *t)
{
    cJSON *v = cJSON_CreateObject();
    if (!t->revoked) {
        cJSON_AddStringToObject(v, "device", t->rec.device);
        cJSON_AddStringToObject(v, "hash", t->hash);
        cJSON_AddNumberToObject(v, "created", (double)t->rec.created);
        cJSON_AddNumberToObject(v, "expires", (double)t->rec.expires);
    } else {
        cJSON_AddNumberToObject(v, "at", (double)t->rec.revoked_at);
    }
    cJSON_AddStringToObject(v, "gateway", rs->gateway);
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

static bool write_token(gw_regshare *rs, const token_out *t)
{
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    bool created = false;
    iot_err err = {0};
    char *value = token_value(rs, t);
    if (value == NULL)
        return false;
    snprintf(key, sizeof(key), "%s%s", t->revoked ? TOKENS_OFF : TOKENS, t->rec.id);
    iot_status st =
        gw_shared_create(rs->opt.shared, key, value, &created, existing, sizeof(existing), &err);
    free(value);
    gw_shared_note(&rs->down, "registry", st, &err);
    return st == IOT_OK;
}

/* As write_revocations, for tokens. */
static bool write_tokens(gw_regshare *rs)
{
    int64_t now = now_s();
    tokens_out o = {
        .made_after = rs->tokens_up_to, .revoked_after = rs->tokens_off_up_to, .now = now};
    iot_err err = {0};
    bool all = iot_token_foreach_hash(rs->reg, collect_token, &o, &err) == IOT_OK;
    for (token_out *t = o.list; t != NULL; t = o.list) {
        all = all && write_token(rs, t);
        o.list = t->next;
        free(t);
    }
    if (all) {
        rs->tokens_up_to = now - 1;
        rs->tokens_off_up_to = now - 1;
    }
    return all;
}

/* ---- requests that wait for an operator, and decisions ------------------------ */

/* "/iot/enroll/<device>/<state>". */
static bool parse_request_key(const char *key, char *device, iot_enroll_state *state)
{
    const char *dev = key + strlen(REQUESTS);
    const char *slash = strchr(dev, '/');
    if (strncmp(key, REQUESTS, strlen(REQUESTS)) != 0 || slash == NULL ||
        (size_t)(slash - dev) > IOT_ID_MAX)
        return false;
    memcpy(device, dev, (size_t)(slash - dev));
    device[slash - dev] = '\0';
    const char *name = slash + 1;
    if (strcmp(name, "pending") == 0)
        *state = IOT_ENROLL_PENDING;
    else if (strcmp(name, "approved") == 0)
        *state = IOT_ENROLL_APPROVED;
    else if (strcmp(name, "denied") == 0)
        *state = IOT_ENROLL_DENIED;
    else
        return false;
    return iot_id_is_valid(device);
}

static bool parse_request(const cJSON *v, iot_enroll_record *e, const char **from)
{
    const char *method = string_of(v, "method", sizeof(e->method) - 1);
    const char *auth = string_of(v, "auth", IOT_SERIAL_HEX_MAX);
    const char *spki = string_of(v, "spki", IOT_FPR_HEX_LEN);
    const char *peer = string_of(v, "peer", sizeof(e->peer) - 1);
    const cJSON *requested = cJSON_GetObjectItemCaseSensitive(v, "requested");
    const cJSON *decided = cJSON_GetObjectItemCaseSensitive(v, "decided");
    *from = string_of(v, "gateway", GATEWAY_MAX);
    if (method == NULL || auth == NULL || spki == NULL || peer == NULL || *from == NULL ||
        !cJSON_IsNumber(requested) || !cJSON_IsNumber(decided))
        return false;
    snprintf(e->method, sizeof(e->method), "%s", method);
    snprintf(e->auth, sizeof(e->auth), "%s", auth);
    snprintf(e->spki, sizeof(e->spki), "%s", spki);
    snprintf(e->peer, sizeof(e->peer), "%s", peer);
    e->requested = (int64_t)requested->valuedouble;
    e->decided = (int64_t)decided->valuedouble;
    return true;
}

static bool take_request(void *ctx, const char *key, const char *value)
{
    gw_regshare *rs = ctx;
    iot_enroll_record e;
    memset(&e, 0, sizeof(e));
    const char *from = NULL;
    if (!parse_request_key(key, e.device, &e.state))
        return refuse_value(key, "not /iot/enroll/<device>/<pending|approved|denied>");
    cJSON *v = cJSON_Parse(value);
    bool ok = true;
    if (!parse_request(v, &e, &from)) {
        refuse_value(key, "not an enrollment request record");
        goto out;
    }
    if (strcmp(from, rs->gateway) == 0)
        goto out;
    bool changed = false;
    iot_err err = {0};
    iot_status st = iot_enroll_import_request(rs->reg, &e, &changed, &err);
    if (st == IOT_EBUSY || st == IOT_EIO)
        ok = false;
    else if (st != IOT_OK)
        refuse_value(key, err.msg);
    else if (changed)
        gw_log(GW_LOG_INFO, "est.request_imported", "device=%s state=%s from=%s", e.device,
               iot_enroll_state_name(e.state), from);
out:
    cJSON_Delete(v);
    return ok;
}

typedef struct request_out {
    struct request_out *next;
    iot_enroll_record e;
} request_out;

typedef struct requests_out {
    int64_t asked_after, decided_after;
    request_out *list;
} requests_out;

/* Requests made here, and decisions taken here, since the last pass. */
static int collect_request(const iot_enroll_record *e, void *ctx)
{
    requests_out *o = ctx;
    bool asked = e->state == IOT_ENROLL_PENDING && e->requested > o->asked_after;
    bool decided = (e->state == IOT_ENROLL_APPROVED || e->state == IOT_ENROLL_DENIED) &&
                   e->decided > o->decided_after;
    if (!asked && !decided)
        return 0;
    request_out *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return 0;
    r->e = *e;
    r->next = o->list;
    o->list = r;
    return 0;
}

static bool write_request(gw_regshare *rs, const iot_enroll_record *e)
{
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    bool created = false;
    iot_err err = {0};
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "method", e->method);
    cJSON_AddStringToObject(v, "auth", e->auth);
    cJSON_AddStringToObject(v, "spki", e->spki);
    cJSON_AddStringToObject(v, "peer", e->peer);
    cJSON_AddNumberToObject(v, "requested", (double)e->requested);
    cJSON_AddNumberToObject(v, "decided", (double)e->decided);
    cJSON_AddStringToObject(v, "gateway", rs->gateway);
    char *value = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (value == NULL)
        return false;
    snprintf(key, sizeof(key), REQUESTS "%s/%s", e->device, iot_enroll_state_name(e->state));
    iot_status st =
        gw_shared_create(rs->opt.shared, key, value, &created, existing, sizeof(existing), &err);
    free(value);
    gw_shared_note(&rs->down, "registry", st, &err);
    return st == IOT_OK;
}

/* As write_revocations, for requests and decisions. */
static bool write_requests(gw_regshare *rs)
{
    int64_t now = now_s();
    requests_out o = {.asked_after = rs->asked_up_to, .decided_after = rs->decided_up_to};
    iot_err err = {0};
    bool all = iot_enroll_foreach(rs->reg, collect_request, &o, &err) == IOT_OK;
    for (request_out *r = o.list; r != NULL; r = o.list) {
        all = all && write_request(rs, &r->e);
        o.list = r->next;
        free(r);
    }
    if (all) {
        rs->asked_up_to = now - 1;
        rs->decided_up_to = now - 1;
    }
    return all;
}

/* ---- the thread -------------------------------------------------------------- */

static void stamp_registry(const char *path, reg_stamp *st)
{
    char wal[1024]; /* registry paths are at most 511 bytes (config.h) */
    struct stat sb;
    memset(st, 0, sizeof(*st));
    snprintf(wal, sizeof(wal), "%s-wal", path);
    if (stat(path, &sb) == 0) {
        st->mtime = sb.st_mtim;
        st->size = sb.st_size;
    }
    if (stat(wal, &sb) == 0) {
        st->wal_mtime = sb.st_mtim;
        st->wal_size = sb.st_size;
    }
}

static bool stamp_equal(const reg_stamp *a, const reg_stamp *b)
{
    return a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
           a->size == b->size && a->wal_mtime.tv_sec == b->wal_mtime.tv_sec &&
           a->wal_mtime.tv_nsec == b->wal_mtime.tv_nsec && a->wal_size == b->wal_size;
}

/* The write passes read whole tables (tokens, requests, revocations): they
 * run only when the registry was written since the last pass that wrote
 * everything out, not at every poll. The stamp is taken before the pass,
 * so a change made during it is seen next time. */
static void write_changes(gw_regshare *rs)
{
    reg_stamp now;
    stamp_registry(rs->opt.registry, &now);
    if (rs->written_once && stamp_equal(&now, &rs->written))
        return;
    bool all = write_tokens(rs);
    all = write_requests(rs) && all;
    all = write_revocations(rs) && all;
    if (all) {
        rs->written = now;
        rs->written_once = true;
    }
}

static bool wait_or_stop(gw_regshare *rs)
{
    pthread_mutex_lock(&rs->lock);
    if (!rs->stopping)
        gw_shared_timedwait(&rs->wake, &rs->lock, rs->opt.poll_ms);
    bool stop = rs->stopping;
    pthread_mutex_unlock(&rs->lock);
    return stop;
}

static void *run(void *arg)
{
    gw_regshare *rs = arg;
    do {
        read_prefix(rs, TOKENS, &rs->tokens_rev, take_token_made);
        read_prefix(rs, TOKENS_OFF, &rs->tokens_off_rev, take_token_revoked);
        read_prefix(rs, CERTS, &rs->certs_rev, take_cert);
        read_prefix(rs, REQUESTS, &rs->requests_rev, take_request);
        read_prefix(rs, REVOKED, &rs->revoked_rev, take_revoked);
        write_changes(rs);
    } while (!wait_or_stop(rs));
    return NULL;
}

iot_status gw_regshare_start(const gw_regshare_options *o, gw_regshare **out, iot_err *err)
{
    *out = NULL;
    if (strlen(o->gateway) > GATEWAY_MAX)
        return iot_err_set(err, IOT_EINVAL, "the gateway name '%s' is over %d characters",
                           o->gateway, GATEWAY_MAX);
    gw_regshare *rs = calloc(1, sizeof(*rs));
    if (rs == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    rs->opt = *o;
    snprintf(rs->gateway, sizeof(rs->gateway), "%s", o->gateway);
    rs->opt.gateway = rs->gateway;
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->wake, NULL);
    iot_status st = iot_registry_open(o->registry, IOT_REGISTRY_WRITE, &rs->reg, err);
    if (st != IOT_OK)
        goto out;
    iot_registry_set_busy_timeout(rs->reg, BUSY_MS);
    int rc = pthread_create(&rs->thread, NULL, run, rs);
    if (rc != 0)
        st =
            iot_err_set(err, IOT_EIO, "cannot start the registry sharing thread: %s", strerror(rc));
out:
    if (st == IOT_OK) {
        *out = rs;
    } else {
        iot_registry_close(rs->reg);
        pthread_cond_destroy(&rs->wake);
        pthread_mutex_destroy(&rs->lock);
        free(rs);
    }
    return st;
}

void gw_regshare_stop(gw_regshare *rs)
{
    if (rs == NULL)
        return;
    pthread_mutex_lock(&rs->lock);
    rs->stopping = true;
    pthread_cond_signal(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->thread, NULL);
    iot_registry_close(rs->reg);
    pthread_cond_destroy(&rs->wake);
    pthread_mutex_destroy(&rs->lock);
    free(rs);
}
