#include "brokers.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "config_parse.h"

static bool is_separator(char c)
{
    return c == ' ' || c == ',' || c == '\t';
}

/* One entry, text[0..len), into *b. */
static const char *parse_entry(const char *text, size_t len, int default_port, gw_broker *b)
{
    char entry[GW_BROKER_HOST_MAX + 16];
    const char *port = NULL;
    if (len >= sizeof(entry))
        return "a broker address is longer than 253 characters";
    memcpy(entry, text, len);
    entry[len] = '\0';
    char *host = entry;
    if (entry[0] == '[') { /* brackets only to add a port */
        char *close = strchr(entry, ']');
        if (close == NULL)
            return "missing ']' after an IPv6 address";
        if (close[1] != ':')
            return "write [IPv6]:port, or the IPv6 address without brackets";
        *close = '\0';
        host = entry + 1;
        port = close + 2;
        if (strchr(host, ':') == NULL)
            return "only an IPv6 address goes between brackets";
    } else {
        char *colon = strchr(entry, ':');
        if (colon != NULL && strchr(colon + 1, ':') == NULL) { /* host:port */
            *colon = '\0';
            port = colon + 1;
        }
    }
    const char *why = gw__check_host(host);
    if (why == NULL && port != NULL)
        why = gw__check_port(port);
    if (why != NULL)
        return why;
    int64_t number = default_port;
    if (port != NULL && gw__parse_int(port, &number) != NULL)
        return "port must be a number";
    memcpy(b->host, host, strlen(host) + 1);
    b->port = (int)number;
    return NULL;
}

const char *gw_brokers_parse(const char *list, int default_port, gw_broker out[GW_BROKERS_MAX],
                             int *n)
{
    const char *why = NULL;
    *n = 0;
    for (const char *p = list; *p != '\0';) {
        while (is_separator(*p))
            p++;
        size_t len = 0;
        while (p[len] != '\0' && !is_separator(p[len]))
            len++;
        if (len == 0)
            break;
        if (*n == GW_BROKERS_MAX) {
            why = "more than 8 brokers";
            goto out;
        }
        why = parse_entry(p, len, default_port, &out[*n]);
        if (why != NULL)
            goto out;
        (*n)++;
        p += len;
    }
    if (*n == 0)
        why = "no broker address";
out:
    if (why != NULL)
        *n = 0;
    return why;
}

const char *gw_brokers_check(const char *list)
{
    gw_broker brokers[GW_BROKERS_MAX];
    int n = 0;
    return gw_brokers_parse(list, 8883, brokers, &n);
}
