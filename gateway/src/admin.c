#include "admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <openssl/crypto.h>

#include "iot/fsutil.h"
#include "log.h"
#include "metrics.h"

#define METRICS_MAX (64 * 1024)
#define TOKEN_MIN   32
#define TOKEN_MAX   256

struct gw_admin {
    void (*status)(void *ctx, gw_admin_status *out);
    void *status_ctx;
    int max_conns;
    struct evhttp *http;
    struct event_base *base;
    char token[TOKEN_MAX + 1]; /* "" when no token is required */
    size_t token_len;
    /* Connections that made a request and are still open (event loop
     * thread only). A silent connection holds no slot; evhttp closes it
     * after its 10 s timeout. */
    struct evhttp_connection **conns;
    int n_conns;
};

static void forget_connection(struct evhttp_connection *conn, void *arg)
{
    gw_admin *a = arg;
    for (int i = 0; i < a->n_conns; i++) {
        if (a->conns[i] == conn) {
            a->conns[i] = a->conns[--a->n_conns];
            return;
        }
    }
}

/* Takes a slot for the request's connection (kept until it closes);
 * false when every slot is held by other connections. */
static bool take_slot(gw_admin *a, struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn == NULL)
        return false;
    for (int i = 0; i < a->n_conns; i++)
        if (a->conns[i] == conn)
            return true;
    if (a->n_conns >= a->max_conns)
        return false;
    a->conns[a->n_conns++] = conn;
    evhttp_connection_set_closecb(conn, forget_connection, a);
    return true;
}

static void send_text(struct evhttp_request *req, int status, const char *ctype, const char *text,
                      size_t len)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add(out, text, len);
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", out);
    if (out)
        evbuffer_free(out);
}

static void send_error(struct evhttp_request *req, int status, const char *code, const char *detail)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"detail\":\"%s\"}\n", code, detail);
    send_text(req, status, "application/json", body,
              n > 0 && (size_t)n < sizeof(body) ? (size_t)n : 0);
}

static const char *admin_peer(struct evhttp_request *req, char *buf, size_t size)
{
    char *host = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    if (conn != NULL)
        evhttp_connection_get_peer(conn, &host, &port);
    snprintf(buf, size, "%s:%u", host ? host : "?", (unsigned)port);
    return buf;
}

/* Whether the request may be served: the cap, then the token. Answers and
 * counts the refusal itself. */
static bool admit(gw_admin *a, struct evhttp_request *req)
{
    char peer[80];
    if (!take_slot(a, req)) {
        gw_refusal_inc(GW_REF_ADMIN_OVER_CAPACITY);
        gw_log(GW_LOG_WARN, "admin.refused", "peer=%s reason=admin_over_capacity",
               admin_peer(req, peer, sizeof(peer)));
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_error(req, 503, "over_capacity", "admin_max_connections reached");
        return false;
    }
    if (a->token_len == 0)
        return true;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    static const char scheme[] = "Bearer ";
    if (auth != NULL && strncmp(auth, scheme, sizeof(scheme) - 1) == 0 &&
        strlen(auth + sizeof(scheme) - 1) == a->token_len &&
        CRYPTO_memcmp(auth + sizeof(scheme) - 1, a->token, a->token_len) == 0)
        return true;
    gw_refusal_inc(GW_REF_ADMIN_UNAUTHORIZED);
    gw_log(GW_LOG_WARN, "admin.refused", "peer=%s reason=admin_unauthorized",
           admin_peer(req, peer, sizeof(peer)));
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"iotgw\"");
    send_error(req, 401, "unauthorized", "send Authorization: Bearer <admin token>");
    return false;
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
        free(text);
        return iot_err_set(err, IOT_EINVAL,
                           "admin_token_file %s: the token must be one line of %d to %d printable "
                           "characters without spaces (e.g. openssl rand -hex 32 > %s)",
                           path, TOKEN_MIN, TOKEN_MAX, path);
    }
    memcpy(a->token, text, len);
    a->token[len] = '\0';
    a->token_len = len;
    OPENSSL_cleanse(text, len);
    free(text);
    return IOT_OK;
}

static void handle_healthz(struct evhttp_request *req, void *arg)
{
    gw_admin *a = arg;
    if (!admit(a, req))
        return;
    gw_admin_status status = {0};
    a->status(a->status_ctx, &status);
    bool draining = status.draining;
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o) {
        /* Ready means "accepting readings": the broker being away does not
         * stop that, it only grows the outbox. */
        cJSON_AddStringToObject(o, "status", draining ? "draining" : "ok");
        cJSON_AddBoolToObject(o, "live", true);
        cJSON_AddBoolToObject(o, "ready", !draining);
        cJSON_AddStringToObject(o, "broker",
                                status.broker_connected ? "connected" : "disconnected");
        cJSON_AddNumberToObject(o, "outbox_depth", (double)status.outbox_depth);
        cJSON_AddNumberToObject(o, "outbox_max", (double)status.outbox_max);
        text = cJSON_PrintUnformatted(o);
    }
    if (text)
        send_text(req, draining ? 503 : 200, "application/json", text, strlen(text));
    else
        evhttp_send_error(req, 500, NULL);
    cJSON_free(text);
    cJSON_Delete(o);
}

static void handle_metrics(struct evhttp_request *req, void *arg)
{
    if (!admit(arg, req))
        return;
    char *buf = malloc(METRICS_MAX);
    if (buf == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    size_t n = gw_metrics_render(buf, METRICS_MAX);
    send_text(req, 200, "text/plain; version=0.0.4", buf, n);
    free(buf);
}

static void handle_other(struct evhttp_request *req, void *arg)
{
    if (!admit(arg, req))
        return;
    static const char body[] =
        "{\"error\":\"not_found\",\"detail\":\"use /healthz or /metrics\"}\n";
    send_text(req, 404, "application/json", body, sizeof(body) - 1);
}

iot_status gw_admin_start(const gw_admin_options *opt, struct event_base *base, gw_admin **out,
                          iot_err *err)
{
    *out = NULL;
    gw_admin *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->http = evhttp_new(base)) == NULL) {
        free(a);
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    }
    a->status = opt->status;
    a->status_ctx = opt->status_ctx;
    a->max_conns = opt->max_connections;
    a->base = base;
    if (opt->token_file != NULL && opt->token_file[0] != '\0') {
        iot_status st = load_token(a, opt->token_file, err);
        if (st != IOT_OK) {
            gw_admin_stop(a);
            return st;
        }
    }
    a->conns = calloc((size_t)opt->max_connections, sizeof(*a->conns));
    if (a->conns == NULL) {
        gw_admin_stop(a);
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 0);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_cb(a->http, "/healthz", handle_healthz, a);
    evhttp_set_cb(a->http, "/metrics", handle_metrics, a);
    evhttp_set_gencb(a->http, handle_other, a);
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(opt->listen, (struct sockaddr *)&ss, &sslen) != 0) {
        gw_admin_stop(a);
        return iot_err_set(err, IOT_EINVAL, "admin_listen '%s' is not host:port", opt->listen);
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
        (struct sockaddr *)&ss, sslen);
    if (l == NULL || evhttp_bind_listener(a->http, l) == NULL) {
        int saved = errno;
        if (l)
            evconnlistener_free(l);
        gw_admin_stop(a);
        return iot_err_set(err, IOT_EIO, "cannot listen on admin_listen %s: %s", opt->listen,
                           strerror(saved));
    }
    if (opt->remote)
        gw_log(GW_LOG_WARN, "admin.exposed",
               "address=%s detail=\"the admin listener is off loopback (admin_remote = yes); "
               "every request needs the bearer token\"",
               opt->listen);
    *out = a;
    return IOT_OK;
}

void gw_admin_stop(gw_admin *a)
{
    if (a == NULL)
        return;
    if (a->http)
        evhttp_free(a->http);
    OPENSSL_cleanse(a->token, sizeof(a->token));
    free(a->conns);
    free(a);
}
