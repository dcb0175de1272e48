/* A listener's endpoints as a table (ingest.c, admin.c), and the lookup
 * that picks a row for a request. A target is matched raw, as sent: no
 * percent-decoding, no dot segments, no query, so "/v1/%74elemetry" is not
 * /v1/telemetry and no encoding can reach an endpoint by another name. */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include <llhttp.h>

#include "refusal.h"

struct gw_conn;
struct gw_http_request;

/* Handles a routed request (device: the admitted device; "" on the admin
 * listener); it answers it, now or once its work is done. */
typedef void (*gw_route_fn)(struct gw_conn *conn, struct gw_http_request *req, const char *device);

/* body_max of a row whose limit is the configured max_body. */
#define GW_ROUTE_BODY_CONFIGURED ((size_t)-1)

typedef struct gw_route {
    llhttp_method_t method; /* HTTP_GET also answers HEAD */
    const char *path;       /* exact raw target; with prefix, what it must start with */
    bool prefix;            /* path ends in '/' and at least one byte must follow */
    gw_route_fn handler;
    size_t body_max; /* bytes, or GW_ROUTE_BODY_CONFIGURED */
    /* Who may call it. false (the default of a row that says nothing):
     * only an admitted caller, a device the admission snapshot accepts on
     * the device listener, the token's holder on the admin listener.
     * true: any peer that got through TLS, for an endpoint that decides
     * in its handler (enrollment); the handler then gets device "". */
    bool anyone;
} gw_route;

#define GW_ROUTE_ALLOW_MAX 64

/* The row for method and target, or NULL with *why set: invalid_target
 * (percent-encoding, a query or fragment, not origin-form), not_found, or
 * method_not_allowed with the methods the path has in allow ("POST",
 * "GET, HEAD"). *detail is a fixed text for the answer. */
const gw_route *gw_route_find(const gw_route *table, size_t n, llhttp_method_t method,
                              const char *target, size_t len, gw_refusal *why, const char **detail,
                              char allow[GW_ROUTE_ALLOW_MAX]);

/* Whether a caller may reach row r: admitted, or the row is for anyone. */
bool gw_route_allows(const gw_route *r, bool admitted);

#endif
