/* Connections of the console (server.h). */
#include "server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "api.h"

#define HEAD_MAX        4096
#define IDLE_TIMEOUT    30 /* seconds: a request, or a connection idle between requests */
#define BODY_MAX        4096
#define READ_HIGH_WATER (64 * 1024)
#define STREAM_SNDBUF   (32 * 1024)

/* Every answer, pages, API and refusals alike. The policy allows only our
 * own origin's files, no inline script or style, no framing, no base or
 * form target elsewhere (docs/console.md, Security model). */
#define SECURITY_HEADERS                                                                           \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "       \
    "base-uri 'none'\r\n"                                                                          \
    "X-Content-Type-Options: nosniff\r\n"                                                          \
    "Referrer-Policy: no-referrer\r\n"                                                             \
    "Strict-Transport-Security: max-age=31536000\r\n"                                              \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Cross-Origin-Opener-Policy: same-origin\r\n"                                                  \
    "Cross-Origin-Resource-Policy: same-origin\r\n"

static void conn_free(ic_conn *c)
{
    ic_app *app = c->app;
    if (c->stream) {
        for (ic_conn **p = &app->streams; *p != NULL; p = &(*p)->next_stream) {
            if (*p == c) {
                *p = c->next_stream;
                app->n_streams--;
                break;
            }
        }
    }
    if (c->bev != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL)
            SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
        bufferevent_free(c->bev);
    }
    gw_http_reader_free(&c->reader);
    app->connections--;
    free(c);
}

static void keep_header(ic_conn *c, char *dst, const char *value, bool too_long)
{
    if (dst[0] != '\0' || too_long)
        c->header_twice = true;
    size_t n = strnlen(value, IC_HDR_VALUE_MAX);
    memcpy(dst, value, n);
    dst[n] = '\0';
}

static void other_header(void *ctx, const char *name, const char *value, bool too_long)
{
    ic_conn *c = ctx;
    if (strcasecmp(name, "Cookie") == 0)
        keep_header(c, c->cookie, value, too_long);
    else if (strcasecmp(name, "Origin") == 0)
        keep_header(c, c->origin, value, too_long);
    else if (strcasecmp(name, "X-CSRF-Token") == 0)
        keep_header(c, c->csrf, value, too_long);
}

static void reset_request(ic_conn *c)
{
    c->cookie[0] = c->origin[0] = c->csrf[0] = '\0';
    c->header_twice = false;
}

static void write_done(struct bufferevent *bev, void *ctx)
{
    ic_conn *c = ctx;
    (void)bev;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

void ic_reply(ic_conn *c, int status, const char *ctype, const char *extra, const char *body,
              size_t len)
{
    char extras[HEAD_MAX / 2];
    char head[HEAD_MAX];
    bool head_only = c->reader.req.method == HTTP_HEAD;
    int n = snprintf(extras, sizeof(extras), "%s%s", SECURITY_HEADERS, extra != NULL ? extra : "");
    size_t hl = 0;
    if (n > 0 && (size_t)n < sizeof(extras))
        hl = gw_http_format_head(head, sizeof(head), status, ctype, extras, len,
                                 !c->closing && c->reader.req.keep_alive);
    if (hl == 0) {
        c->closing = true;
        return;
    }
    if (!c->reader.req.keep_alive)
        c->closing = true;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, head, hl);
    if (!head_only && len > 0)
        evbuffer_add(out, body, len);
}

void ic_reply_json(ic_conn *c, int status, const char *extra, cJSON *doc)
{
    char *text = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (text == NULL) {
        c->closing = true;
        ic_reply(c, 500, NULL, NULL, "{\"error\":\"out_of_memory\"}", 25);
        return;
    }
    ic_reply(c, status, NULL, extra, text, strlen(text));
    free(text);
}

void ic_refuse(ic_conn *c, ic_refusal why, int status, const char *error, const char *detail)
{
    char body[512];
    c->app->refused[why]++;
    char target[96];
    size_t tl = strnlen(c->reader.req.target, sizeof(target) - 1);
    memcpy(target, c->reader.req.target, tl);
    target[tl] = '\0';
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)target[i] < 0x20 || (unsigned char)target[i] > 0x7e)
            target[i] = '?';
    ic_log("warn", "console.refused", "reason", ic_refusal_name(why), "error", error, "detail",
           detail, "address", c->addr, "target", target, (char *)NULL);
    size_t n = gw_http_error_body(body, sizeof(body), error, detail);
    if (status == 401)
        ic_reply(c, status, NULL, "WWW-Authenticate: Cookie realm=\"iotconsole\"\r\n", body, n);
    else
        ic_reply(c, status, NULL, NULL, body, n);
}

static void on_http_error(ic_conn *c)
{
    const gw_refusal_row *row = gw_refusal_row_of(c->reader.refusal);
    int status = row->status != 0 ? row->status : 400;
    c->closing = true;
    ic_refuse(c, IC_REF_HTTP, status, row->error, c->reader.detail);
}

static void process(ic_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->stream) {
        /* A stream's client has nothing more to say: what it sends is
         * dropped, never buffered. */
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (!c->closing) {
        size_t avail = evbuffer_get_length(in);
        const char *data = avail > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
        size_t used = 0;
        gw_http_status st = gw_http_feed(&c->reader, data, avail, &used);
        evbuffer_drain(in, used);
        if (st == GW_HTTP_MORE)
            return;
        if (st == GW_HTTP_ERROR) {
            on_http_error(c);
            return;
        }
        if (st == GW_HTTP_HEADERS) {
            bool post = c->reader.req.method == HTTP_POST;
            if (!gw_http_set_body_max(&c->reader, post ? BODY_MAX : 0, false)) {
                on_http_error(c);
                return;
            }
            continue;
        }
        ic_api_handle(c);
        reset_request(c);
        if (c->stream || c->closing) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
        gw_http_next(&c->reader);
    }
}

static void on_read(struct bufferevent *bev, void *ctx)
{
    ic_conn *c = ctx;
    (void)bev;
    process(c);
    if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *ctx)
{
    (void)bev;
    /* The handshake's end is reported as an event too: not a reason to
     * close. */
    if (what == BEV_EVENT_CONNECTED)
        return;
    conn_free(ctx);
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
    snprintf(buf, size, "%s", host);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *ctx)
{
    ic_app *app = ctx;
    (void)l;
    (void)len;
    if (app->connections >= app->cfg.max_connections) {
        app->refused[IC_REF_OVERLOAD]++;
        evutil_closesocket(fd);
        return;
    }
    ic_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c != NULL ? SSL_new(app->ssl) : NULL;
    if (ssl == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->app = app;
    app->connections++;
    format_addr(sa, c->addr, sizeof(c->addr));
    gw_http_reader_init(&c->reader);
    c->reader.other_header = other_header;
    c->reader.other_header_ctx = c;
    c->bev = bufferevent_openssl_socket_new(app->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        conn_free(c);
        return;
    }
    struct timeval idle = {IDLE_TIMEOUT, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_setcb(c->bev, on_read, write_done, on_event, c);
    /* Reading stops while this much waits unparsed (the parser takes
     * everything it is fed, so only a closing connection leaves any). */
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HIGH_WATER);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct evconnlistener *ic_server_listen(ic_app *app)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (evutil_parse_sockaddr_port(app->cfg.listen, (struct sockaddr *)&ss, &len) != 0)
        return NULL;
    return evconnlistener_new_bind(app->base, on_accept, app,
                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                   (struct sockaddr *)&ss, len);
}

bool ic_stream_start(ic_conn *c, const char *id)
{
    ic_app *app = c->app;
    if (app->n_streams >= app->cfg.sse_max_clients) {
        c->closing = true;
        ic_refuse(c, IC_REF_OVERLOAD, 503, "too_many_streams",
                  "the console serves at most sse_max_clients live streams");
        return false;
    }
    char head[HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Cache-Control: no-store\r\n%s\r\n: stream\n\n",
                     SECURITY_HEADERS);
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        c->closing = true;
        return false;
    }
    evbuffer_add(bufferevent_get_output(c->bev), head, (size_t)n);
    c->stream = true;
    memcpy(c->stream_session, id, IC_SESSION_HEX + 1);
    /* The kernel's share of a stream's backlog is bounded too, so a client
     * that stops reading reaches sse_queue_kib soon, not after megabytes. */
    int sndbuf = STREAM_SNDBUF;
    (void)setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    /* No read timeout: a stream is idle by design; the write timeout still
     * drops a client that stops reading. */
    struct timeval wr = {IDLE_TIMEOUT, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wr);
    c->next_stream = app->streams;
    app->streams = c;
    app->n_streams++;
    return true;
}

void ic_stream_broadcast(ic_app *app, const char *type, const char *json)
{
    size_t cap = (size_t)app->cfg.sse_queue_kib * 1024;
    int64_t now = ic_now();
    ic_conn *c = app->streams;
    while (c != NULL) {
        ic_conn *next = c->next_stream;
        struct evbuffer *out = bufferevent_get_output(c->bev);
        if (!ic_session_alive(&app->sessions, c->stream_session, now)) {
            /* logged out or expired: the stream ends with its session */
            conn_free(c);
        } else if (evbuffer_get_length(out) > cap) {
            app->streams_dropped++;
            ic_log("warn", "console.stream_dropped", "address", c->addr, (char *)NULL);
            conn_free(c);
        } else {
            evbuffer_add_printf(out, "event: %s\ndata: %s\n\n", type, json);
        }
        c = next;
    }
}

void ic_stream_close_all(ic_app *app)
{
    while (app->streams != NULL)
        conn_free(app->streams);
}
