/* One HTTP connection, from accept() to close: everything the gateway
 * keeps about it lives here and is released by one function. Two
 * listeners use it: the device listener (ingest.c: TLS, devices) and the
 * admin listener (admin.c: plain TCP, the operator's endpoints); what
 * differs between them is in their gw_conn_env.
 *
 * At accept the peer address is formatted once and the connection is
 * admitted or refused before any TLS state exists: max_connections, then
 * the per-address rate (connection_rate_per_address) and cap
 * (max_connections_per_address). With proxy_protocol_from set, the first
 * bytes are looked at before TLS: a connection from a balancer of the list
 * must start with a PROXY v2 header, whose client address replaces the
 * balancer's, and is admitted only then; any other that starts with a
 * PROXY header is refused (proxyv2.h). An admitted connection holds its TLS
 * session (whose SSL points back here), its request deadline, its share of
 * max_buffered_bytes, the identity verdict of its certificate (per
 * admission snapshot), its per-device slot, and its HTTP reader.
 *
 * Requests are read one at a time (http1.h), routed (router.h) and handed
 * to the row's handler, which answers with gw_conn_reply or gw_conn_refuse,
 * now or later. A handler that answers later takes a reference
 * (gw_conn_ref): if the connection closes first, the struct stays until
 * the reference is dropped, and gw_conn_is_open tells the late answer to
 * go nowhere.
 *
 * All of it runs on the thread of the connection's event loop.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "addrlimit.h"
#include "app.h"
#include "devlimit.h"
#include "http1.h"
#include "proxyv2.h"
#include "router.h"

typedef struct gw_conn gw_conn;

typedef enum gw_conn_kind {
    /* Devices: admitted at accept (max_connections, per address; a
     * balancer's connection once its PROXY header names the device), counted
     * in the connection and buffered-bytes gauges, each request checked
     * against the device's identity; refusals logged as request.refused. */
    GW_CONN_DEVICE,
    /* The admin listener: no admission at accept; a connection takes one
     * of max_serving slots with its first request (503 and closed when
     * none is free), then authorize() judges each request; the router's
     * refusals are the admin rows; refusals logged as admin.refused; a
     * connection idle between requests is closed without a refusal. */
    GW_CONN_ADMIN,
} gw_conn_kind;

/* Judges an admin request at its headers: GW_REF_COUNT to serve it, or a
 * refusal with a fixed *detail. */
typedef gw_refusal (*gw_conn_authorize_fn)(gw_conn *c, const struct gw_http_request *req,
                                           const char **detail);

/* What the connections of one event loop share. */
typedef struct gw_conn_env {
    gw_conn_kind kind;
    gw_app *app; /* GW_CONN_DEVICE */
    struct event_base *base;
    SSL_CTX *tls;                    /* NULL: plain TCP */
    uint64_t request_timeout_ms;     /* for each request, and for the peer to read its answer */
    size_t max_body;                 /* the body limit of GW_ROUTE_BODY_CONFIGURED rows */
    gw_addr_limit *per_address;      /* NULL: no per-address cap */
    gw_addr_rate *address_rate;      /* NULL: no per-address rate */
    const gw_proxy_from *proxy_from; /* GW_CONN_DEVICE: the balancers; NULL: no PROXY headers */
    const gw_route *routes;
    size_t n_routes;
    int max_serving;                /* GW_CONN_ADMIN: connections served at once */
    int serving;                    /* of them, taken now */
    gw_conn_authorize_fn authorize; /* GW_CONN_ADMIN */
    void *owner;                    /* for the handlers (the worker, the admin listener) */
    gw_conn *open;                  /* the open connections, for shutdown */
} gw_conn_env;

typedef enum gw_conn_state {
    GW_CONN_READING, /* reading a request */
    GW_CONN_BUSY,    /* a request is with its handler */
    GW_CONN_WRITING, /* its answer is being sent */
    GW_CONN_CLOSING, /* answered for the last time; waiting for the peer to go */
} gw_conn_state;

struct gw_conn {
    gw_conn_env *env;
    gw_conn *prev, *next; /* env->open */
    int refs;
    bool open;
    gw_conn_state state;
    evutil_socket_t fd;
    char peer[GW_PEER_MAX]; /* "address:port", for every log line */
    gw_addr_key address;
    char address_text[GW_PEER_MAX]; /* the key: "192.0.2.7", "2001:db8::/64" */
    bool has_address;
    bool holds_address_slot;
    bool counted;       /* in the open connections gauge: admitted */
    bool from_balancer; /* from proxy_protocol_from: admitted after its PROXY header */
    /* before TLS, with proxy_protocol_from: the first bytes, peeked */
    struct event *preface;      /* the socket readable */
    struct event *preface_wait; /* a part of a header came: look again shortly */
    SSL *ssl;                   /* NULL without device_tls; freed with bev */
    struct bufferevent *bev;
    struct event *timer;  /* request deadline, then the wait for the peer to go */
    struct event *linger; /* reads the socket while waiting for the peer to go */
    /* request bytes received and not yet answered (max_buffered_bytes) */
    struct evbuffer_cb_entry *input_cb;
    size_t buffered;
    bool over_budget;
    /* the certificate's verdict, valid for one admission snapshot */
    bool verdict_cached;
    uint64_t verdict_generation;
    int verdict; /* gw_admission_verdict */
    char device[IOT_ID_MAX + 1];
    bool ends_grace; /* a renewed certificate not used before: its first request ends the
                        predecessor's grace (est.h) */
    bool bootstrap;  /* the client certificate is the bootstrap CA's: simpleenroll only */
    /* max_connections_per_device */
    gw_dev_limit *per_device;
    char slot_device[IOT_ID_MAX + 1];
    /* TLS log flags (tls.c) */
    bool handshake_done;
    bool tls_logged;
    /* the request being read or handled */
    gw_http_reader http;
    const gw_route *route;
    gw_refusal pending;         /* refused at its headers (GW_REF_COUNT: not) */
    const char *pending_detail; /* fixed text */
    char pending_who[IOT_ID_MAX + 1];
    char allow[GW_ROUTE_ALLOW_MAX];
    bool close_after; /* the answer ends the connection */
    bool feeding;     /* inside process_input: an answer's end waits for the loop */
    bool serving;     /* holds one of env->max_serving */
};

/* Takes an accepted socket: admits it (or closes it, logged and counted)
 * and starts its TLS handshake, or reads it as plain TCP without env->tls. */
void gw_conn_accept(gw_conn_env *env, evutil_socket_t fd, const struct sockaddr *sa, socklen_t len);

/* The answer to the current request: status, extra header lines (each
 * ending in CRLF, or NULL), a JSON body (len bytes; may be 0). */
void gw_conn_reply(gw_conn *c, int status, const char *extra_headers, const char *body, size_t len);

/* The same with another Content-Type than application/json. */
void gw_conn_reply_as(gw_conn *c, int status, const char *content_type, const char *extra_headers,
                      const char *body, size_t len);

/* Refuses the current request: logs request.refused (peer, device, status,
 * error, class, detail; admin.refused with reason= on the admin listener),
 * counts it, answers the JSON error. retry_after > 0 adds Retry-After. */
/* Answers with len bytes of the file fd from offset, sent from the page
 * cache without a heap copy (mapped, then written through TLS); the
 * connection owns fd from here on and closes it. */
void gw_conn_reply_file(gw_conn *c, int status, const char *content_type, const char *extra_headers,
                        int fd, uint64_t offset, uint64_t len);

/* gw_conn_refuse with extra header lines of the caller's (each ending in
 * CRLF), e.g. Content-Range on a 416. */
void gw_conn_refuse_with(gw_conn *c, gw_refusal why, const char *device, const char *detail,
                         const char *extra_headers);

void gw_conn_refuse(gw_conn *c, gw_refusal why, const char *device, const char *detail,
                    int retry_after);

void gw_conn_ref(gw_conn *c);
void gw_conn_unref(gw_conn *c);
bool gw_conn_is_open(const gw_conn *c);

/* Closes every open connection of env (shutdown). */
void gw_conn_close_all(gw_conn_env *env);

/* Whether a connection of env still has an answer to send (shutdown waits
 * for it: the loop stopping first would drop an answer already decided). */
bool gw_conn_any_writing(const gw_conn_env *env);

/* Request bytes over all connections are capped at max (max_buffered_bytes). */
void gw_conn_set_buffer_limit(size_t max);

/* The connection of a TLS session (NULL once it is closing). */
gw_conn *gw_conn_of_ssl(const SSL *ssl);

#endif
