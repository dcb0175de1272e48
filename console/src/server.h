/* The HTTPS side: accept, TLS (libevent's bufferevent_openssl), requests
 * read one at a time by the gateway's HTTP/1.1 reader (gateway/lib/http1.h,
 * llhttp), answers with the console's security headers on every one, and
 * Server-Sent Events streams. The routes are api.c's. */
#ifndef IC_SERVER_H
#define IC_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "app.h"
#include "http1.h"

#define IC_HDR_VALUE_MAX GW_HTTP_AUTH_MAX

typedef struct ic_conn {
    ic_app *app;
    struct bufferevent *bev;
    gw_http_reader reader;
    char addr[64];
    /* headers the console reads besides those http1.c keeps */
    char cookie[IC_HDR_VALUE_MAX + 1];
    char origin[IC_HDR_VALUE_MAX + 1];
    char csrf[IC_HDR_VALUE_MAX + 1];
    bool header_twice; /* Cookie, Origin or X-CSRF-Token given twice, or cut */
    bool closing;      /* the answer is the last */
    bool stream;       /* an SSE stream: no more requests */
    struct ic_conn *next_stream;
    char stream_session[IC_SESSION_HEX + 1]; /* the stream ends with it */
} ic_conn;

/* Starts listening on cfg.listen. */
struct evconnlistener *ic_server_listen(ic_app *app);

/* Answers the current request: status, content type (NULL: JSON), extra
 * header lines (each ending in CRLF, may be NULL), the body. Adds the
 * security headers. HEAD gets no body. */
void ic_reply(ic_conn *c, int status, const char *ctype, const char *extra, const char *body,
              size_t len);

/* A JSON answer from a cJSON tree, which it frees. */
void ic_reply_json(ic_conn *c, int status, const char *extra, cJSON *doc);

/* A refusal: {"error": ERROR, "detail": DETAIL}, counted and logged as
 * console.refused with the reason and the request's path. */
void ic_refuse(ic_conn *c, ic_refusal why, int status, const char *error, const char *detail);

/* Turns the connection into an SSE stream (answers the head) for as long
 * as session `id` lives (logout, expiry); false when at sse_max_clients
 * (then it refused with 503). */
bool ic_stream_start(ic_conn *c, const char *id);

/* Sends "event: TYPE\ndata: JSON\n\n" to every stream; a client with more
 * than sse_queue_kib waiting is dropped and counted. */
void ic_stream_broadcast(ic_app *app, const char *type, const char *json);

/* Ends every stream (at shutdown). */
void ic_stream_close_all(ic_app *app);

#endif
