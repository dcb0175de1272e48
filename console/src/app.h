/* The daemon's state, one per process, used from the event loop's thread
 * only (the MQTT thread hands its messages over through live.c's queue). */
#ifndef IC_APP_H
#define IC_APP_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "ratelimit.h"
#include "session.h"

struct ic_conn;
struct ic_store;
struct ic_fleet;
struct ic_live;

/* Refusals of the console, each counted and logged under a stable name
 * (the `reason` of console.refused; GET /api/v1/status shows the counts). */
typedef enum ic_refusal {
    IC_REF_UNAUTHENTICATED, /* 401: no valid session */
    IC_REF_CSRF,            /* 403: token or Origin */
    IC_REF_LOGIN_FAILED,    /* 401: wrong operator or password */
    IC_REF_LOGIN_RATE,      /* 429 */
    IC_REF_BAD_REQUEST,     /* 400: target, query, body */
    IC_REF_NOT_FOUND,       /* 404 */
    IC_REF_METHOD,          /* 405 */
    IC_REF_CONFLICT,        /* 409: an action the state does not allow */
    IC_REF_HTTP,            /* the HTTP reader refused the request */
    IC_REF_OVERLOAD,        /* 503: connections or streams at their cap */
    IC_REF_UNAVAILABLE,     /* 503: a store could not be read */
    IC_REF_COUNT
} ic_refusal;

typedef struct ic_app {
    ic_config cfg;
    struct event_base *base;
    SSL_CTX *ssl;
    ic_sessions sessions;
    gw_ratelimit *login_by_operator;
    gw_ratelimit *login_by_address;
    gw_ratelimit *login_total; /* every attempt, whoever: scrypt's CPU bounded */
    struct ic_store *store;
    struct ic_fleet *fleet;
    struct ic_live *live;
    int connections;
    struct ic_conn *streams; /* SSE clients, a list */
    int n_streams;
    uint64_t refused[IC_REF_COUNT];
    uint64_t streams_dropped; /* slow SSE clients cut off */
    int64_t started;
} ic_app;

/* "unauthenticated", "csrf", ... */
const char *ic_refusal_name(ic_refusal r);

/* One JSON log line on stderr: level, event, then NULL-terminated
 * key/value string pairs. */
void ic_log(const char *level, const char *event, ...) __attribute__((sentinel));

/* Unix seconds. */
int64_t ic_now(void);

#endif
