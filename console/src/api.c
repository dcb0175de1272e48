/* Routes of the console (api.h). Order of checks for every request: the
 * target parses; then the public routes (the login page, its two assets,
 * POST /login); then a session is required (401 JSON under /api, a
 * redirect to /login for pages); then every POST must pass the CSRF check
 * (session token header and Origin); then the route. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "data.h"
#include "fleet.h"
#include "iot/fsutil.h"
#include "iot/identity.h"
#include "iot/rollout.h"
#include "live.h"
#include "operators.h"
#include "pwhash.h"
#include "query.h"
#include "store.h"

#define STATIC_MAX    (1024 * 1024)
#define EXTRA_MAX     512
#define EVENTS_LIMIT  200
#define CERT_DAYS_MAX 3650
#define CSV_CTYPE     "text/csv; charset=utf-8"
#define JSON_CTYPE    "application/json"
/* The hash a login for an unknown operator is checked against, so that the
 * answer takes as long as for a known one (no way to list operators by
 * timing). Its password is not a secret: no one can log in with it. */
#define DUMMY_HASH                                                                                 \
    "scrypt$32768$8$1$00000000000000000000000000000000$"                                           \
    "0000000000000000000000000000000000000000000000000000000000000000"

typedef struct request {
    ic_conn *c;
    ic_app *app;
    ic_target t;
    ic_session *session;
    llhttp_method_t method;
} request;

/* ---- static files ------------------------------------------------------------------ */

static const char *content_type_of(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".png", "image/png"},
        {".txt", "text/plain; charset=utf-8"}, {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* A file of web_dir by its bare name: [a-z0-9._-], no leading dot, a known
 * extension; anything else is not found (no path can leave the directory). */
static void serve_file(request *r, const char *name)
{
    const char *ctype = content_type_of(name);
    bool ok = ctype != NULL && name[0] != '.' && strlen(name) < 64;
    for (const char *p = name; ok && *p != '\0'; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
             *p == '_';
    char path[IC_PATH_LEN + 80];
    int n = snprintf(path, sizeof(path), "%s/%s", r->app->cfg.web_dir, name);
    char *text = NULL;
    size_t len = 0;
    iot_err err = {0};
    if (!ok || n < 0 || (size_t)n >= sizeof(path) ||
        iot_file_read(path, STATIC_MAX, &text, &len, &err) != IOT_OK) {
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", "no such page or file");
        return;
    }
    ic_reply(r->c, 200, ctype, NULL, text, len);
    free(text);
}

static bool is_public_asset(const char *name)
{
    return strcmp(name, "login.js") == 0 || strcmp(name, "style.css") == 0;
}

/* ---- sessions and the operators file ----------------------------------------------- */

/* Whether `name` is still in the operators file (a removed operator's
 * sessions end at their next request). */
static bool operator_exists(ic_app *app, const char *name, char hash[IC_PWHASH_MAX])
{
    char *text = NULL;
    size_t len = 0;
    iot_err err = {0};
    bool found = false;
    if (iot_file_read(app->cfg.operators, IC_OPERATORS_FILE_MAX, &text, &len, &err) == IOT_OK)
        found = ic_operators_find(text, len, name, hash, &err) == IOT_OK;
    free(text);
    return found;
}

static ic_session *current_session(request *r)
{
    char id[IC_SESSION_HEX + 1];
    char hash[IC_PWHASH_MAX];
    if (!ic_cookie_session_id(r->c->cookie, id))
        return NULL;
    ic_session *s = ic_session_find(&r->app->sessions, id, ic_now());
    if (s != NULL && !operator_exists(r->app, s->operator_name, hash)) {
        ic_session_end(&r->app->sessions, id);
        s = NULL;
    }
    OPENSSL_cleanse(id, sizeof(id));
    return s;
}

static void audit(request *r, const char *op, const char *action, const char *target,
                  const char *result)
{
    (void)ic_store_audit(r->app->store, ic_now(), op, r->c->addr, action, target, result);
    ic_log("info", "console.audit", "operator", op, "address", r->c->addr, "action", action,
           "target", target, "result", result, (char *)NULL);
}

/* ---- login and logout -------------------------------------------------------------- */

static bool login_allowed(request *r, const char *name)
{
    double now = (double)ic_now();
    int retry = 0;
    /* Each attempt costs a scrypt (about 0.1 s on the event loop): over
     * all addresses together too, or many addresses would stall the
     * console for everyone. */
    if (!gw_ratelimit_take(r->app->login_total, "all", now, &retry))
        return false;
    bool by_addr = gw_ratelimit_take(r->app->login_by_address, r->c->addr, now, &retry);
    bool by_op = gw_ratelimit_take(r->app->login_by_operator, name, now, &retry);
    return by_addr && by_op;
}

static bool parse_login(request *r, char name[IOT_ID_MAX + 1], char *pw, size_t pw_cap,
                        size_t *pw_len)
{
    const gw_http_request *req = &r->c->reader.req;
    if (strncmp(req->content_type, JSON_CTYPE, sizeof(JSON_CTYPE) - 1) != 0)
        return false;
    cJSON *doc = cJSON_ParseWithLength((const char *)req->body, req->body_len);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(doc, "operator");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "password");
    bool ok = cJSON_IsString(op) && cJSON_IsString(p) && iot_id_is_valid(op->valuestring) &&
              strlen(p->valuestring) < pw_cap;
    if (ok) {
        memcpy(name, op->valuestring, strlen(op->valuestring) + 1);
        *pw_len = strlen(p->valuestring);
        memcpy(pw, p->valuestring, *pw_len + 1);
        OPENSSL_cleanse(p->valuestring, *pw_len);
    }
    cJSON_Delete(doc);
    return ok;
}

static void login_succeeded(request *r, const char *name)
{
    unsigned char rnd[2 * IC_SESSION_RANDOM];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ic_refuse(r->c, IC_REF_UNAVAILABLE, 503, "unavailable", "no random bytes");
        return;
    }
    const ic_session *s = ic_session_create(&r->app->sessions, name, r->c->addr, rnd, ic_now());
    OPENSSL_cleanse(rnd, sizeof(rnd));
    char cookie[256], extra[EXTRA_MAX];
    int64_t max_age = r->app->cfg.session_max_ms / 1000;
    if (s == NULL || !ic_cookie_format(cookie, sizeof(cookie), s->id, max_age)) {
        ic_refuse(r->c, IC_REF_UNAVAILABLE, 503, "unavailable", "no session");
        return;
    }
    snprintf(extra, sizeof(extra), "Set-Cookie: %s\r\n", cookie);
    audit(r, name, "login", name, "ok");
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "operator", name);
    cJSON_AddStringToObject(doc, "csrf_token", s->csrf);
    ic_reply_json(r->c, 200, extra, doc);
}

static void handle_login(request *r)
{
    char name[IOT_ID_MAX + 1], pw[IC_PASSWORD_MAX + 1], hash[IC_PWHASH_MAX];
    size_t pw_len = 0;
    /* A login form posted from another site must not log the victim into
     * the attacker's account either (login CSRF). */
    if (strcmp(r->c->origin, r->app->cfg.origin) != 0) {
        audit(r, "", "login", "", "origin_mismatch");
        ic_refuse(r->c, IC_REF_CSRF, 403, "origin_mismatch",
                  "the login must come from the console's own page");
        return;
    }
    if (!parse_login(r, name, pw, sizeof(pw), &pw_len)) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_login",
                  "send application/json {\"operator\": NAME, \"password\": PASSWORD}");
        return;
    }
    if (!login_allowed(r, name)) {
        OPENSSL_cleanse(pw, sizeof(pw));
        audit(r, name, "login", name, "rate_limited");
        ic_refuse(r->c, IC_REF_LOGIN_RATE, 429, "too_many_logins",
                  "too many login attempts for this operator or address; wait a minute");
        return;
    }
    bool known = operator_exists(r->app, name, hash);
    bool ok = ic_pwhash_verify(pw, pw_len, known ? hash : DUMMY_HASH) && known;
    OPENSSL_cleanse(pw, sizeof(pw));
    if (!ok) {
        audit(r, name, "login_failed", name, "wrong_operator_or_password");
        ic_refuse(r->c, IC_REF_LOGIN_FAILED, 401, "login_failed",
                  "unknown operator or wrong password");
        return;
    }
    login_succeeded(r, name);
}

static void handle_logout(request *r)
{
    char cookie[256], extra[EXTRA_MAX];
    audit(r, r->session->operator_name, "logout", r->session->operator_name, "ok");
    ic_session_end(&r->app->sessions, r->session->id);
    r->session = NULL;
    (void)ic_cookie_format(cookie, sizeof(cookie), NULL, 0);
    snprintf(extra, sizeof(extra), "Set-Cookie: %s\r\n", cookie);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddBoolToObject(doc, "logged_out", true);
    ic_reply_json(r->c, 200, extra, doc);
}

/* ---- the API's read side ----------------------------------------------------------- */

static void reply_loaded(request *r, iot_status st, cJSON *doc, const iot_err *err)
{
    if (st == IOT_ENOENT) {
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", err->msg);
        return;
    }
    if (st != IOT_OK || doc == NULL) {
        cJSON_Delete(doc);
        ic_log("error", "console.store_unavailable", "detail", err->msg, (char *)NULL);
        ic_refuse(r->c, IC_REF_UNAVAILABLE, 503, "unavailable", "a store could not be read");
        return;
    }
    ic_reply_json(r->c, 200, NULL, doc);
}

static bool no_params(request *r)
{
    if (r->t.n_params == 0)
        return true;
    ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query", "this endpoint takes no query");
    return false;
}

static void get_devices(request *r)
{
    cJSON *doc = NULL;
    const char *why = NULL;
    iot_err err = {0};
    iot_status st = ic_data_devices(r->app, &r->t, &doc, &why, &err);
    if (why != NULL) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query", why);
        return;
    }
    const char *format = ic_target_param(&r->t, "format");
    if (st != IOT_OK || format == NULL || strcmp(format, "json") == 0) {
        reply_loaded(r, st, doc, &err);
        return;
    }
    if (strcmp(format, "csv") != 0) {
        cJSON_Delete(doc);
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query", "format must be json or csv");
        return;
    }
    size_t len = 0;
    char *csv = ic_data_devices_csv(doc, &len);
    cJSON_Delete(doc);
    if (csv == NULL) {
        ic_refuse(r->c, IC_REF_UNAVAILABLE, 503, "unavailable", "out of memory");
        return;
    }
    ic_reply(r->c, 200, CSV_CTYPE, "Content-Disposition: attachment; filename=\"fleet.csv\"\r\n",
             csv, len);
    free(csv);
}

static void get_device(request *r, const char *id)
{
    if (!iot_id_is_valid(id)) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_device_id",
                  "a device ID is 1-64 of [A-Za-z0-9._-]");
        return;
    }
    if (!no_params(r))
        return;
    cJSON *doc = NULL;
    iot_err err = {0};
    iot_status st = ic_data_device(r->app, id, &doc, &err);
    reply_loaded(r, st, doc, &err);
}

static void get_certificates(request *r)
{
    static const char *const allowed[] = {"days", NULL};
    const char *days = ic_target_param(&r->t, "days");
    long n = 30;
    if (ic_target_unknown_param(&r->t, allowed) != NULL ||
        (days != NULL && !ic_parse_uint(days, 0, CERT_DAYS_MAX, &n))) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query",
                  "days must be a whole number of days, 0-3650");
        return;
    }
    cJSON *doc = NULL;
    iot_err err = {0};
    iot_status st = ic_data_certificates(r->app, n, &doc, &err);
    reply_loaded(r, st, doc, &err);
}

static void get_rollouts(request *r)
{
    if (!no_params(r))
        return;
    cJSON *doc = NULL;
    iot_err err = {0};
    iot_status st = ic_data_rollouts(r->app, &doc, &err);
    reply_loaded(r, st, doc, &err);
}

static bool limit_param(request *r, const char *const *allowed, long *limit)
{
    const char *l = ic_target_param(&r->t, "limit");
    if (ic_target_unknown_param(&r->t, allowed) == NULL &&
        (l == NULL || ic_parse_uint(l, 1, IC_AUDIT_LIMIT, limit)))
        return true;
    ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query",
              "unknown parameter, or limit not 1-1000");
    return false;
}

static void get_events(request *r)
{
    static const char *const allowed[] = {"limit", "unacked", "device", NULL};
    long limit = EVENTS_LIMIT;
    if (!limit_param(r, allowed, &limit))
        return;
    const char *unacked = ic_target_param(&r->t, "unacked");
    const char *device = ic_target_param(&r->t, "device");
    if ((unacked != NULL && strcmp(unacked, "1") != 0 && strcmp(unacked, "0") != 0) ||
        (device != NULL && !iot_id_is_valid(device))) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_query",
                  "unacked is 0 or 1; device a device ID");
        return;
    }
    bool only_unacked = unacked != NULL && strcmp(unacked, "1") == 0;
    cJSON *doc =
        ic_store_events_json(r->app->store, (int)limit, only_unacked, device != NULL ? device : "");
    iot_err err = {.msg = "events"};
    reply_loaded(r, doc != NULL ? IOT_OK : IOT_EIO, doc, &err);
}

static void get_audit(request *r)
{
    static const char *const allowed[] = {"limit", NULL};
    long limit = 200;
    if (!limit_param(r, allowed, &limit))
        return;
    cJSON *doc = ic_store_audit_json(r->app->store, (int)limit);
    iot_err err = {.msg = "audit"};
    reply_loaded(r, doc != NULL ? IOT_OK : IOT_EIO, doc, &err);
}

static void get_session(request *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "operator", r->session->operator_name);
    cJSON_AddStringToObject(doc, "csrf_token", r->session->csrf);
    cJSON_AddNumberToObject(doc, "created", (double)r->session->created);
    cJSON_AddNumberToObject(doc, "expires",
                            (double)(r->session->created + r->app->cfg.session_max_ms / 1000));
    ic_reply_json(r->c, 200, NULL, doc);
}

static void get_status(request *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "version", IOT_VERSION);
    cJSON_AddNumberToObject(doc, "started", (double)r->app->started);
    cJSON_AddNumberToObject(doc, "sessions", (double)ic_session_count(&r->app->sessions, ic_now()));
    cJSON_AddNumberToObject(doc, "streams", r->app->n_streams);
    cJSON_AddNumberToObject(doc, "streams_dropped", (double)r->app->streams_dropped);
    cJSON *ref = cJSON_AddObjectToObject(doc, "refused");
    for (int i = 0; i < IC_REF_COUNT; i++)
        cJSON_AddNumberToObject(ref, ic_refusal_name((ic_refusal)i), (double)r->app->refused[i]);
    cJSON_AddItemToObject(doc, "gateways", ic_fleet_status_json(r->app->fleet));
    cJSON_AddItemToObject(doc, "mqtt", ic_live_status_json(r->app->live));
    ic_reply_json(r->c, 200, NULL, doc);
}

/* ---- actions ----------------------------------------------------------------------- */

/* The audit log's result of a failed action. */
static const char *result_of(iot_status st)
{
    switch (st) {
    case IOT_ENOENT:
        return "not_found";
    case IOT_ESTATE:
        return "conflict";
    default:
        return "unavailable";
    }
}

typedef iot_status (*rollout_op)(iot_rollouts *, const char *, int64_t, iot_err *);

static rollout_op rollout_op_of(const char *verb)
{
    if (strcmp(verb, "pause") == 0)
        return iot_rollout_pause;
    if (strcmp(verb, "resume") == 0)
        return iot_rollout_resume;
    if (strcmp(verb, "abort") == 0)
        return iot_rollout_abort;
    return NULL;
}

static void refuse_status(request *r, iot_status st, const iot_err *err)
{
    if (st == IOT_ENOENT)
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", err->msg);
    else if (st == IOT_ESTATE)
        ic_refuse(r->c, IC_REF_CONFLICT, 409, "conflict", err->msg);
    else
        ic_refuse(r->c, IC_REF_UNAVAILABLE, 503, "unavailable", err->msg);
}

static void post_rollout(request *r, const char *name, const char *verb)
{
    rollout_op op = rollout_op_of(verb);
    char action[32];
    if (op == NULL || !iot_id_is_valid(name)) {
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found",
                  "POST /api/v1/rollouts/NAME/pause, resume or abort");
        return;
    }
    snprintf(action, sizeof(action), "rollout.%s", verb);
    iot_rollouts *ro = NULL;
    iot_err err = {0};
    iot_status st = r->app->cfg.rollouts[0] == '\0'
                        ? iot_err_set(&err, IOT_ENOENT, "no rollout file configured")
                        : iot_rollouts_open(r->app->cfg.rollouts, IOT_ROLLOUTS_WRITE, &ro, &err);
    if (st == IOT_OK)
        st = op(ro, name, ic_now(), &err);
    iot_rollouts_close(ro);
    audit(r, r->session->operator_name, action, name, st == IOT_OK ? "ok" : result_of(st));
    if (st != IOT_OK) {
        refuse_status(r, st, &err);
        return;
    }
    iot_rollout_info info;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "rollout", name);
    cJSON_AddStringToObject(doc, "action", verb);
    if (iot_rollouts_open(r->app->cfg.rollouts, IOT_ROLLOUTS_READONLY, &ro, &err) == IOT_OK &&
        iot_rollout_get(ro, name, &info, &err) == IOT_OK)
        cJSON_AddStringToObject(doc, "state", iot_rollout_state_name(info.state));
    iot_rollouts_close(ro);
    ic_reply_json(r->c, 200, NULL, doc);
}

static void post_ack(request *r, const char *id_text)
{
    long id = 0;
    if (!ic_parse_uint(id_text, 1, 999999999, &id)) {
        ic_refuse(r->c, IC_REF_BAD_REQUEST, 400, "invalid_event_id",
                  "an event id is a positive whole number");
        return;
    }
    iot_status st = ic_store_event_ack(r->app->store, id, r->session->operator_name, ic_now());
    audit(r, r->session->operator_name, "event.ack", id_text, st == IOT_OK ? "ok" : result_of(st));
    iot_err err = {0};
    if (st != IOT_OK) {
        iot_err_set(&err, st, st == IOT_ESTATE ? "event already acknowledged" : "no such event");
        refuse_status(r, st, &err);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "event", (double)id);
    cJSON_AddBoolToObject(doc, "acknowledged", true);
    ic_reply_json(r->c, 200, NULL, doc);
}

/* ---- routing ----------------------------------------------------------------------- */

static bool seg_is(const request *r, size_t i, const char *s)
{
    return r->t.n_seg > i && strcmp(r->t.seg[i], s) == 0;
}

static bool is_api(const request *r)
{
    return seg_is(r, 0, "api") && seg_is(r, 1, "v1");
}

static void method_not_allowed(request *r)
{
    ic_refuse(r->c, IC_REF_METHOD, 405, "method_not_allowed", "reads are GET, actions are POST");
}

static void get_stream(request *r)
{
    if (no_params(r))
        (void)ic_stream_start(r->c, r->session->id);
}

/* GET /api/v1/NAME */
static const struct {
    const char *name;
    void (*fn)(request *r);
} API_GETS[] = {
    {"devices", get_devices},   {"certificates", get_certificates},
    {"rollouts", get_rollouts}, {"events", get_events},
    {"audit", get_audit},       {"session", get_session},
    {"status", get_status},     {"stream", get_stream},
};

static void route_api_get(request *r)
{
    size_t n = r->t.n_seg;
    const char *what = n > 2 ? r->t.seg[2] : "";
    for (size_t i = 0; n == 3 && i < sizeof(API_GETS) / sizeof(API_GETS[0]); i++) {
        if (strcmp(what, API_GETS[i].name) == 0) {
            API_GETS[i].fn(r);
            return;
        }
    }
    if (n == 4 && strcmp(what, "devices") == 0)
        get_device(r, r->t.seg[3]);
    else if (n == 5 && (strcmp(what, "rollouts") == 0 || strcmp(what, "events") == 0))
        method_not_allowed(r); /* the actions are POST */
    else
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", "no such endpoint");
}

static void route_api_post(request *r)
{
    size_t n = r->t.n_seg;
    if (n == 5 && seg_is(r, 2, "rollouts"))
        post_rollout(r, r->t.seg[3], r->t.seg[4]);
    else if (n == 5 && seg_is(r, 2, "events") && seg_is(r, 4, "ack"))
        post_ack(r, r->t.seg[3]);
    else
        ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", "no such action");
}

static void route_page(request *r)
{
    static const char *const pages[] = {"device", "rollouts",     "events",
                                        "audit",  "certificates", NULL};
    char name[64];
    if (r->t.n_seg == 0) {
        serve_file(r, "index.html");
        return;
    }
    if (r->t.n_seg == 2 && seg_is(r, 0, "static")) {
        serve_file(r, r->t.seg[1]);
        return;
    }
    for (const char *const *p = pages; *p != NULL; p++) {
        if (r->t.n_seg == 1 && seg_is(r, 0, *p)) {
            snprintf(name, sizeof(name), "%s.html", *p);
            serve_file(r, name);
            return;
        }
    }
    ic_refuse(r->c, IC_REF_NOT_FOUND, 404, "not_found", "no such page");
}

/* The routes anyone may reach; true when the request was one. */
static bool route_public(request *r)
{
    bool get = r->method == HTTP_GET || r->method == HTTP_HEAD;
    if (r->t.n_seg == 1 && seg_is(r, 0, "login")) {
        if (get)
            serve_file(r, "login.html");
        else if (r->method == HTTP_POST)
            handle_login(r);
        else
            method_not_allowed(r);
        return true;
    }
    if (get && r->t.n_seg == 2 && seg_is(r, 0, "static") && is_public_asset(r->t.seg[1])) {
        serve_file(r, r->t.seg[1]);
        return true;
    }
    return false;
}

static void unauthenticated(request *r)
{
    bool page = !is_api(r) && (r->method == HTTP_GET || r->method == HTTP_HEAD);
    if (page) {
        static const char body[] = "{\"error\":\"unauthenticated\",\"detail\":\"log in\"}";
        r->app->refused[IC_REF_UNAUTHENTICATED]++;
        ic_reply(r->c, 303, NULL, "Location: /login\r\n", body, sizeof(body) - 1);
        return;
    }
    ic_refuse(r->c, IC_REF_UNAUTHENTICATED, 401, "unauthenticated",
              "log in at /login; the session cookie is missing, expired or ended");
}

static bool csrf_ok(request *r)
{
    ic_csrf_verdict v = ic_csrf_check(r->session, r->c->csrf, r->c->origin, r->app->cfg.origin);
    if (v == IC_CSRF_OK)
        return true;
    char target[IC_PATH_MAX + 1];
    snprintf(target, sizeof(target), "%s", r->t.path);
    audit(r, r->session->operator_name, "csrf_refused", target, ic_csrf_reason(v));
    ic_refuse(r->c, IC_REF_CSRF, 403, ic_csrf_reason(v),
              "an action needs the session's X-CSRF-Token and the console's Origin");
    return false;
}

static void route(request *r)
{
    bool get = r->method == HTTP_GET || r->method == HTTP_HEAD;
    if (r->method == HTTP_POST && r->t.n_seg == 1 && seg_is(r, 0, "logout")) {
        handle_logout(r);
    } else if (is_api(r) && get) {
        route_api_get(r);
    } else if (is_api(r) && r->method == HTTP_POST) {
        route_api_post(r);
    } else if (get) {
        route_page(r);
    } else {
        method_not_allowed(r);
    }
}

void ic_api_handle(ic_conn *c)
{
    request r = {.c = c, .app = c->app, .method = (llhttp_method_t)c->reader.req.method};
    const char *why = ic_target_parse(c->reader.req.target, c->reader.req.target_len, &r.t);
    if (why != NULL) {
        ic_refuse(c, IC_REF_BAD_REQUEST, 400, "invalid_target", why);
        return;
    }
    if (c->header_twice) {
        ic_refuse(c, IC_REF_BAD_REQUEST, 400, "invalid_header",
                  "Cookie, Origin or X-CSRF-Token given twice or too long");
        return;
    }
    if (route_public(&r))
        return;
    r.session = current_session(&r);
    if (r.session == NULL) {
        unauthenticated(&r);
        return;
    }
    if (r.method == HTTP_POST && !csrf_ok(&r))
        return;
    route(&r);
}
