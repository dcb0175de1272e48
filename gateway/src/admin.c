/* The admin listener on the gateway's HTTP layer: gw_conn (conn.h) reads
 * requests with llhttp (http1.h), routes them (router.h) and answers
 * refusals from the refusal table, as on the device listener; this file
 * holds the routes, the bearer token and the listening socket. */
#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/listener.h>

#include <openssl/crypto.h>

#include "conn.h"
#include "iot/fsutil.h"
#include "log.h"
#include "metrics.h"
#include "router.h"

#define METRICS_MAX       (64 * 1024)
#define TOKEN_MIN         32
#define TOKEN_MAX         256
#define ADMIN_TIMEOUT_MS  10000 /* a request, or a connection idle between requests */
#define METRICS_CTYPE     "text/plain; version=0.0.4"
#define BEARER            "Bearer "
#define UNAUTHORIZED_HINT "send Authorization: Bearer <admin token>"

struct gw_admin {
    void (*status)(void *ctx, gw_admin_status *out);
    char *(*fleet)(void *ctx);
    void *status_ctx;
    struct evconnlistener *listener;
    gw_conn_env env;
    char token[TOKEN_MAX + 1]; /* "" when no token is required */
    size_t token_len;
};

static void handle_healthz(gw_conn *c, gw_http_request *req, const char *device);
static void handle_metrics(gw_conn *c, gw_http_request *req, const char *device);
static void handle_fleet(gw_conn *c, gw_http_request *req, const char *device);

/* The admin endpoints (router.h); GET rows also answer HEAD. */
// clang-format off
static const gw_route ADMIN_ROUTES[] = {
    {.method = HTTP_GET, .path = "/healthz", .handler = handle_healthz, .body_max = 0},
    {.method = HTTP_GET, .path = "/metrics", .handler = handle_metrics, .body_max = 0},
    {.method = HTTP_GET, .path = "/fleet", .handler = handle_fleet, .body_max = 0},
};
// clang-format on

/* With a token, every request must carry it: compared in constant time. */
static gw_refusal authorize(gw_conn *c, const gw_http_request *req, const char **detail)
{
    const gw_admin *a = c->env->owner;
    if (a->token_len == 0)
        return GW_REF_COUNT;
    const char *auth = req->authorization;
    size_t scheme = sizeof(BEARER) - 1;
    if (strncmp(auth, BEARER, scheme) == 0 && strlen(auth + scheme) == a->token_len &&
        CRYPTO_memcmp(auth + scheme, a->token, a->token_len) == 0)
        return GW_REF_COUNT;
    *detail = UNAUTHORIZED_HINT;
    return GW_REF_ADMIN_UNAUTHORIZED;
}

/* The token: one line of printable ASCII, at least TOKEN_MIN characters. */
static iot_status load_token(gw_admin *a, const char *path, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, TOKEN_MAX + 2, &text, &len, err);
    if (st != IOT_OK)
        return st;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    bool printable = true;
    for (size_t i = 0; i < len; i++)
        printable &= text[i] > 0x20 && text[i] < 0x7f;
    if (len < TOKEN_MIN || len > TOKEN_MAX || !printable) {
        st = iot_err_set(err, IOT_EINVAL,
                         "admin_token_file %s: the token must be one line of %d to %d printable "
                         "characters without spaces (e.g. openssl rand -hex 32 > %s)",
                         path, TOKEN_MIN, TOKEN_MAX, path);
        goto out;
    }
    memcpy(a->token, text, len);
    a->token[len] = '\0';
    a->token_len = len;
out:
    OPENSSL_cleanse(text, len);
    free(text);
    return st;
}

static void handle_healthz(gw_conn *c, gw_http_request *req, const char *device)
{
    (void)req, (void)device;
    gw_admin *a = c->env->owner;
    gw_admin_status status = {0};
    a->status(a->status_ctx, &status);
    bool draining = status.draining;
    /* Ready means "can acknowledge readings": with acknowledge = stored the
     * broker being away does not stop that, it only grows the outbox; with
     * confirmed it does, and a balancer should send devices elsewhere. */
    bool waiting_broker = status.needs_broker && !status.broker_connected;
    bool ready = !draining && !waiting_broker;
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o) {
        cJSON_AddStringToObject(o, "status",
                                draining ? "draining" : (waiting_broker ? "no_broker" : "ok"));
        cJSON_AddBoolToObject(o, "live", true);
        cJSON_AddBoolToObject(o, "ready", ready);
        cJSON_AddStringToObject(o, "broker",
                                status.broker_connected ? "connected" : "disconnected");
        cJSON_AddNumberToObject(o, "outbox_depth", (double)status.outbox_depth);
        cJSON_AddNumberToObject(o, "outbox_max", (double)status.outbox_max);
        text = cJSON_PrintUnformatted(o);
    }
    if (text)
        gw_conn_reply(c, ready ? 200 : 503, NULL, text, strlen(text));
    else
        gw_conn_refuse(c, GW_REF_OUT_OF_MEMORY, NULL, "no memory for the answer; retry later", 1);
    cJSON_free(text);
    cJSON_Delete(o);
}

static void handle_metrics(gw_conn *c, gw_http_request *req, const char *device)
{
    (void)req, (void)device;
    char *buf = malloc(METRICS_MAX);
    if (buf == NULL) {
        gw_conn_refuse(c, GW_REF_OUT_OF_MEMORY, NULL, "no memory for the answer; retry later", 1);
        return;
    }
    size_t n = gw_metrics_render(buf, METRICS_MAX);
    gw_conn_reply_as(c, 200, METRICS_CTYPE, NULL, buf, n);
    free(buf);
}

static void handle_fleet(gw_conn *c, gw_http_request *req, const char *device)
{
    (void)req, (void)device;
    gw_admin *a = c->env->owner;
    char *text = a->fleet != NULL ? a->fleet(a->status_ctx) : NULL;
    if (text != NULL)
        gw_conn_reply_as(c, 200, "application/json", NULL, text, strlen(text));
    else
        gw_conn_refuse(c, GW_REF_OUT_OF_MEMORY, NULL, "no memory for the answer; retry later", 1);
    cJSON_free(text);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    (void)listener;
    gw_admin *a = arg;
    gw_conn_accept(&a->env, fd, sa, (socklen_t)len);
}

static iot_status open_listener(gw_admin *a, const char *listen, struct event_base *base,
                                iot_err *err)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(listen, (struct sockaddr *)&ss, &sslen) != 0)
        return iot_err_set(err, IOT_EINVAL, "admin_listen '%s' is not host:port", listen);
    a->listener = evconnlistener_new_bind(
        base, on_accept, a, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
        (struct sockaddr *)&ss, sslen);
    if (a->listener == NULL)
        return iot_err_set(err, IOT_EIO, "cannot listen on admin_listen %s: %s", listen,
                           strerror(errno));
    return IOT_OK;
}

iot_status gw_admin_start(const gw_admin_options *opt, struct event_base *base, gw_admin **out,
                          iot_err *err)
{
    *out = NULL;
    iot_status st = IOT_OK;
    gw_admin *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    a->status = opt->status;
    a->fleet = opt->fleet;
    a->status_ctx = opt->status_ctx;
    a->env = (gw_conn_env){.kind = GW_CONN_ADMIN,
                           .base = base,
                           .request_timeout_ms = ADMIN_TIMEOUT_MS,
                           .max_body = 0,
                           .routes = ADMIN_ROUTES,
                           .n_routes = sizeof(ADMIN_ROUTES) / sizeof(ADMIN_ROUTES[0]),
                           .max_serving = opt->max_connections,
                           .authorize = authorize,
                           .owner = a};
    if (opt->token_file != NULL && opt->token_file[0] != '\0')
        st = load_token(a, opt->token_file, err);
    if (st == IOT_OK)
        st = open_listener(a, opt->listen, base, err);
    if (st != IOT_OK)
        goto out;
    if (opt->remote)
        gw_log(GW_LOG_WARN, "admin.exposed",
               "address=%s detail=\"the admin listener is off loopback (admin_remote = yes); "
               "every request needs the bearer token\"",
               opt->listen);
    *out = a;
    a = NULL;
out:
    gw_admin_stop(a);
    return st;
}

void gw_admin_stop(gw_admin *a)
{
    if (a == NULL)
        return;
    gw_conn_close_all(&a->env);
    if (a->listener)
        evconnlistener_free(a->listener);
    OPENSSL_cleanse(a->token, sizeof(a->token));
    free(a);
}
