/* What the device request path shares across its worker threads: built
 * and torn down by main.c, read by ingest.c. Every other module takes its
 * own options struct (forwarder.h, admin.h, admission.h, tls.h) filled by
 * main.c, so it sees only what it uses. */
#ifndef GW_APP_H
#define GW_APP_H

#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/types.h>

#include "config.h"
#include "outbox.h"
#include "payload.h"
#include "ratelimit.h"

typedef struct gw_admission gw_admission;

typedef struct gw_app {
    gw_config cfg;
    gw_payload_limits limits;
    gw_admission *identity;
    gw_outbox *outbox;
    gw_ratelimit *ratelimit;
    SSL_CTX *device_tls;
    atomic_bool draining; /* SIGTERM received: refuse new work with 503 */
} gw_app;

#endif
