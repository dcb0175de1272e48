/* The daemon's shared state: what every thread may read. Built by main.c,
 * torn down there; modules get a pointer. */
#ifndef GW_APP_H
#define GW_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"
#include "identity.h"
#include "outbox.h"
#include "payload.h"
#include "ratelimit.h"

typedef struct gw_forwarder gw_forwarder;

typedef struct gw_app {
    gw_config cfg;
    gw_payload_limits limits;
    gw_identity *identity;
    gw_outbox *outbox;
    gw_ratelimit *ratelimit;
    SSL_CTX *device_tls;
    gw_forwarder *forwarder;
    atomic_bool draining; /* SIGTERM received: refuse new work with 503 */
} gw_app;

#endif
