/* Endpoint lookup; router.h says how targets match. */
#include "router.h"

#include <stdio.h>
#include <string.h>

static bool path_matches(const gw_route *r, const char *target, size_t len)
{
    size_t n = strlen(r->path);
    if (!r->prefix)
        return len == n && memcmp(target, r->path, n) == 0;
    return len > n && memcmp(target, r->path, n) == 0;
}

static bool method_matches(const gw_route *r, llhttp_method_t method)
{
    return r->method == method || (r->method == HTTP_GET && method == HTTP_HEAD);
}

static void allow_add(char allow[GW_ROUTE_ALLOW_MAX], llhttp_method_t m)
{
    size_t used = strlen(allow);
    const char *name = llhttp_method_name(m);
    snprintf(allow + used, GW_ROUTE_ALLOW_MAX - used, "%s%s%s", used ? ", " : "", name,
             m == HTTP_GET ? ", HEAD" : "");
}

static const char *target_problem(const char *target, size_t len)
{
    if (len == 0 || target[0] != '/')
        return "the request target must be a path (origin-form)";
    if (memchr(target, '%', len) != NULL)
        return "percent-encoding is not accepted in the request target";
    if (memchr(target, '?', len) != NULL || memchr(target, '#', len) != NULL)
        return "the request target takes no query or fragment";
    return NULL;
}

const gw_route *gw_route_find(const gw_route *table, size_t n, llhttp_method_t method,
                              const char *target, size_t len, gw_refusal *why, const char **detail,
                              char allow[GW_ROUTE_ALLOW_MAX])
{
    allow[0] = '\0';
    *detail = target_problem(target, len);
    if (*detail != NULL) {
        *why = GW_REF_INVALID_TARGET;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!path_matches(&table[i], target, len))
            continue;
        if (method_matches(&table[i], method))
            return &table[i];
        allow_add(allow, table[i].method);
    }
    *why = allow[0] != '\0' ? GW_REF_METHOD_NOT_ALLOWED : GW_REF_NOT_FOUND;
    *detail = allow[0] != '\0' ? "this endpoint does not take that method; see Allow"
                               : "no endpoint at this path";
    return NULL;
}

bool gw_route_allows(const gw_route *r, bool admitted)
{
    return r != NULL && (admitted || r->anyone);
}
