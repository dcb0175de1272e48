/* Polling the gateways' GET /fleet (fleet.h). */
#include "fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "iot/fsutil.h"

#define GATEWAYS_MAX 16
#define TOKEN_MAX    256
#define FLEET_MAX    (16 * 1024 * 1024)

typedef struct gateway {
    struct ic_fleet *fleet;
    char host[128];
    int port;
    char name[160];
    struct evhttp_connection *conn;
    cJSON *doc; /* the last good answer */
    bool ok;    /* the last poll succeeded */
    bool busy;
    int64_t updated;
} gateway;

struct ic_fleet {
    ic_app *app;
    gateway gw[GATEWAYS_MAX];
    size_t n;
    char auth[TOKEN_MAX + 16];
    struct event *timer;
};

static void on_answer(struct evhttp_request *req, void *ctx)
{
    gateway *g = ctx;
    g->busy = false;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    struct evbuffer *body = req != NULL ? evhttp_request_get_input_buffer(req) : NULL;
    size_t len = body != NULL ? evbuffer_get_length(body) : 0;
    cJSON *doc = NULL;
    if (code == 200 && len > 0 && len < FLEET_MAX)
        doc = cJSON_ParseWithLength((const char *)evbuffer_pullup(body, -1), len);
    if (doc == NULL || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "devices"))) {
        cJSON_Delete(doc);
        if (g->ok) {
            char status[16];
            snprintf(status, sizeof(status), "%d", code);
            ic_log("warn", "console.fleet_unavailable", "gateway", g->name, "status", status,
                   (char *)NULL);
        }
        g->ok = false;
        return;
    }
    cJSON_Delete(g->doc);
    g->doc = doc;
    g->ok = true;
    g->updated = ic_now();
}

static void poll_one(ic_fleet *f, gateway *g)
{
    if (g->busy)
        return;
    if (g->conn == NULL) {
        g->conn = evhttp_connection_base_new(f->app->base, NULL, g->host, (unsigned short)g->port);
        if (g->conn == NULL)
            return;
        evhttp_connection_set_timeout(g->conn, 5);
    }
    struct evhttp_request *req = evhttp_request_new(on_answer, g);
    if (req == NULL)
        return;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", g->name);
    if (f->auth[0] != '\0') /* no token: the gateway's admin listener needs none */
        evhttp_add_header(h, "Authorization", f->auth);
    if (evhttp_make_request(g->conn, req, EVHTTP_REQ_GET, "/fleet") == 0)
        g->busy = true;
}

static void on_timer(evutil_socket_t fd, short what, void *ctx)
{
    ic_fleet *f = ctx;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < f->n; i++)
        poll_one(f, &f->gw[i]);
}

/* "http://HOST:PORT" (the admin listener speaks plain HTTP on loopback or a
 * private network; docs/gateway.md). */
static iot_status parse_url(const char *url, size_t len, gateway *g, iot_err *err)
{
    char buf[200];
    if (len >= sizeof(buf) || len <= 7 || strncmp(url, "http://", 7) != 0)
        return iot_err_set(err, IOT_EINVAL, "gateways: '%.*s' is not http://HOST:PORT",
                           (int)(len < 100 ? len : 100), url);
    memcpy(buf, url + 7, len - 7);
    buf[len - 7] = '\0';
    char *colon = strrchr(buf, ':');
    char *end = NULL;
    long port = colon != NULL ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || end == colon + 1 || *end != '\0' || port < 1 || port > 65535 ||
        (size_t)(colon - buf) >= sizeof(g->host))
        return iot_err_set(err, IOT_EINVAL, "gateways: '%s' is not http://HOST:PORT", url);
    *colon = '\0';
    memcpy(g->host, buf, (size_t)(colon - buf) + 1);
    g->port = (int)port;
    snprintf(g->name, sizeof(g->name), "%.127s:%ld", buf,
             port); /* buf is the host, checked to fit g->host */
    return IOT_OK;
}

static iot_status load_token(ic_fleet *f, const char *path, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, TOKEN_MAX + 2, &text, &len, err);
    if (st != IOT_OK)
        return st;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    text[len] = '\0';
    snprintf(f->auth, sizeof(f->auth), "Bearer %s", text);
    free(text);
    return IOT_OK;
}

iot_status ic_fleet_start(ic_app *app, ic_fleet **out, iot_err *err)
{
    ic_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    f->app = app;
    iot_status st = IOT_OK;
    const char *p = app->cfg.gateways;
    while (*p != '\0' && st == IOT_OK) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        if (f->n == GATEWAYS_MAX) {
            st = iot_err_set(err, IOT_EINVAL, "gateways: at most %d", GATEWAYS_MAX);
            break;
        }
        f->gw[f->n].fleet = f;
        st = parse_url(p, len, &f->gw[f->n++], err);
        p += len;
    }
    if (st == IOT_OK && f->n > 0 && app->cfg.gateway_token_file[0] != '\0')
        st = load_token(f, app->cfg.gateway_token_file, err);
    if (st == IOT_OK && f->n > 0) {
        f->timer = event_new(app->base, -1, EV_PERSIST, on_timer, f);
        struct timeval tv = {app->cfg.fleet_interval_ms / 1000,
                             (app->cfg.fleet_interval_ms % 1000) * 1000};
        if (f->timer == NULL || event_add(f->timer, &tv) != 0)
            st = iot_err_set(err, IOT_ENOMEM, "no timer for the fleet");
        on_timer(-1, 0, f);
    }
    if (st != IOT_OK) {
        ic_fleet_stop(f);
        f = NULL;
    }
    *out = f;
    return st;
}

void ic_fleet_stop(ic_fleet *f)
{
    if (f == NULL)
        return;
    if (f->timer != NULL)
        event_free(f->timer);
    for (size_t i = 0; i < f->n; i++) {
        if (f->gw[i].conn != NULL)
            evhttp_connection_free(f->gw[i].conn);
        cJSON_Delete(f->gw[i].doc);
    }
    free(f);
}

static double last_seen(const cJSON *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "last_seen");
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const cJSON *ic_fleet_lookup(const ic_fleet *f, const char *device, const char **gateway_name)
{
    const cJSON *best = NULL;
    for (size_t i = 0; f != NULL && i < f->n; i++) {
        const cJSON *devs = cJSON_GetObjectItemCaseSensitive(f->gw[i].doc, "devices");
        const cJSON *e = NULL;
        cJSON_ArrayForEach(e, devs)
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "device");
            if (!cJSON_IsString(id) || strcmp(id->valuestring, device) != 0)
                continue;
            if (best == NULL || last_seen(e) > last_seen(best)) {
                best = e;
                *gateway_name = f->gw[i].name;
            }
        }
    }
    return best;
}

cJSON *ic_fleet_status_json(const ic_fleet *f)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; f != NULL && i < f->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "gateway", f->gw[i].name);
        cJSON_AddBoolToObject(o, "ok", f->gw[i].ok);
        cJSON_AddNumberToObject(o, "updated", (double)f->gw[i].updated);
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->gw[i].doc, "devices"));
        cJSON_AddNumberToObject(o, "devices", n);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
