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

#include "forwarder.h"
#include "metrics.h"

#define METRICS_MAX (64 * 1024)

struct gw_admin {
    gw_app *app;
    struct evhttp *http;
};

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

static void handle_healthz(struct evhttp_request *req, void *arg)
{
    gw_admin *a = arg;
    bool draining = atomic_load(&a->app->draining);
    bool broker = gw_forwarder_connected(a->app->forwarder);
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o) {
        /* Ready means "accepting readings": the broker being away does not
         * stop that, it only grows the outbox. */
        cJSON_AddStringToObject(o, "status", draining ? "draining" : "ok");
        cJSON_AddBoolToObject(o, "live", true);
        cJSON_AddBoolToObject(o, "ready", !draining);
        cJSON_AddStringToObject(o, "broker", broker ? "connected" : "disconnected");
        cJSON_AddNumberToObject(o, "outbox_depth", (double)gw_outbox_depth(a->app->outbox));
        cJSON_AddNumberToObject(o, "outbox_max", (double)a->app->cfg.outbox_max);
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
    (void)arg;
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
    (void)arg;
    static const char body[] =
        "{\"error\":\"not_found\",\"detail\":\"use /healthz or /metrics\"}\n";
    send_text(req, 404, "application/json", body, sizeof(body) - 1);
}

iot_status gw_admin_start(gw_app *app, struct event_base *base, gw_admin **out, iot_err *err)
{
    *out = NULL;
    gw_admin *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->http = evhttp_new(base)) == NULL) {
        free(a);
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    }
    a->app = app;
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 0);
    evhttp_set_timeout(a->http, 10);
    evhttp_set_cb(a->http, "/healthz", handle_healthz, a);
    evhttp_set_cb(a->http, "/metrics", handle_metrics, a);
    evhttp_set_gencb(a->http, handle_other, a);
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    if (evutil_parse_sockaddr_port(app->cfg.admin_listen, (struct sockaddr *)&ss, &sslen) != 0) {
        gw_admin_stop(a);
        return iot_err_set(err, IOT_EINVAL, "admin_listen '%s' is not host:port",
                           app->cfg.admin_listen);
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 64,
        (struct sockaddr *)&ss, sslen);
    if (l == NULL || evhttp_bind_listener(a->http, l) == NULL) {
        int saved = errno;
        if (l)
            evconnlistener_free(l);
        gw_admin_stop(a);
        return iot_err_set(err, IOT_EIO, "cannot listen on admin_listen %s: %s",
                           app->cfg.admin_listen, strerror(saved));
    }
    *out = a;
    return IOT_OK;
}

void gw_admin_stop(gw_admin *a)
{
    if (a == NULL)
        return;
    evhttp_free(a->http);
    free(a);
}
