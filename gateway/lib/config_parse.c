#include "config_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GW__NUM_MAX 20 /* digits of INT64_MAX plus a sign */

typedef struct gw__unit {
    const char *name;
    int64_t factor;
} gw__unit;

static const gw__unit gw__duration_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}, {NULL, 0},
};

static const gw__unit gw__size_units[] = {
    {"GiB", 1073741824}, {"MiB", 1048576}, {"KiB", 1024}, {"B", 1}, {NULL, 0},
};

static bool gw__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool gw__is_alnum(char c)
{
    return gw__is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The character set of device IDs, topic segments and client IDs. */
static bool gw__is_name_char(char c)
{
    return gw__is_alnum(c) || c == '.' || c == '_' || c == '-';
}

const char *gw__parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return "not a whole number";
    for (const char *q = p; *q != '\0'; q++) {
        if (!gw__is_digit(*q))
            return "not a whole number";
    }
    /* strtoll alone would accept leading blanks, '+' and "0x"; the loop
     * above already refused those, so only the range is left to check. */
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return "number too large";
    if (end == s || *end != '\0')
        return "not a whole number";
    *out = (int64_t)v;
    return NULL;
}

/* "<digits>[blanks]<unit>" with the unit looked up in `units`. */
static const char *gw__parse_scaled(const char *s, const gw__unit *units, int64_t *out,
                                    const char *what, const char *missing_unit)
{
    size_t n = 0;
    while (gw__is_digit(s[n]))
        n++;
    if (n == 0)
        return what;
    if (n > GW__NUM_MAX)
        return "number too large";
    char digits[GW__NUM_MAX + 1];
    memcpy(digits, s, n);
    digits[n] = '\0';
    int64_t v = 0;
    const char *why = gw__parse_int(digits, &v);
    if (why != NULL)
        return why;
    const char *unit = s + n;
    while (*unit == ' ' || *unit == '\t')
        unit++;
    if (*unit == '\0') {
        if (v != 0)
            return missing_unit;
        *out = 0;
        return NULL;
    }
    for (const gw__unit *u = units; u->name != NULL; u++) {
        if (strcmp(unit, u->name) != 0)
            continue;
        if (v > INT64_MAX / u->factor)
            return "number too large";
        *out = v * u->factor;
        return NULL;
    }
    return "unknown unit";
}

const char *gw__parse_duration(const char *s, int64_t *ms)
{
    return gw__parse_scaled(s, gw__duration_units, ms, "not a duration", "a duration needs a unit");
}

const char *gw__parse_size(const char *s, int64_t *bytes)
{
    return gw__parse_scaled(s, gw__size_units, bytes, "not a size", "a size needs a unit");
}

const char *gw__parse_double(const char *s, double *out)
{
    bool digit = false;
    for (const char *p = s; *p != '\0'; p++) {
        if (gw__is_digit(*p))
            digit = true;
        else if (strchr(".eE+-", *p) == NULL)
            return "not a number";
    }
    if (!digit)
        return "not a number";
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return "not a number";
    if (errno == ERANGE || !isfinite(v))
        return "number out of range";
    *out = v;
    return NULL;
}

const char *gw__parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on"};
    static const char *const no[] = {"no", "false", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return NULL;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return NULL;
        }
    }
    return "not a boolean";
}

/* RFC 1123 host name; a last label of digits only is refused so that a
 * mistyped IPv4 address ("10.0.0.256") is not taken for a name. */
static const char *gw__check_dns_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return "empty host";
    if (len > 253)
        return "host name longer than 253 characters";
    const char *label = s;
    bool all_digits = true;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t n = (size_t)(p - label);
            if (n == 0)
                return "empty label in host name";
            if (n > 63)
                return "host name label longer than 63 characters";
            if (label[0] == '-' || p[-1] == '-')
                return "host name label starts or ends with '-'";
            if (*p == '\0')
                break;
            label = p + 1;
            all_digits = true;
            continue;
        }
        if (!gw__is_alnum(*p) && *p != '-')
            return "not an IP address or host name";
        if (!gw__is_digit(*p))
            all_digits = false;
    }
    if (all_digits)
        return "not a valid IPv4 address";
    return NULL;
}

const char *gw__check_host(const char *s)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (s[0] == '[')
        return "write an IPv6 address without brackets here";
    if (strchr(s, ':') != NULL)
        return inet_pton(AF_INET6, s, addr) == 1 ? NULL : "not a valid IPv6 address";
    if (inet_pton(AF_INET, s, addr) == 1)
        return NULL;
    return gw__check_dns_name(s);
}

const char *gw__check_port(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return "missing port";
    if (n > 5)
        return "port must be 1-65535";
    int64_t port = 0;
    if (!gw__is_digit(s[0]) || gw__parse_int(s, &port) != NULL)
        return "port must be a number";
    if (port < 1 || port > 65535)
        return "port must be 1-65535";
    return NULL;
}

const char *gw__check_listen(const char *s)
{
    char host[256];
    const char *port = NULL;
    size_t n = 0;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return "missing ']' after the IPv6 address";
        if (close[1] != ':')
            return "missing ':port' after ']'";
        n = (size_t)(close - s - 1);
        port = close + 2;
        if (n == 0 || n >= sizeof(host))
            return "not a valid IPv6 address";
        memcpy(host, s + 1, n);
        host[n] = '\0';
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET6, host, addr) != 1)
            return "not a valid IPv6 address";
        return gw__check_port(port);
    }
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return "missing ':port'";
    n = (size_t)(colon - s);
    if (memchr(s, ':', n) != NULL)
        return "an IPv6 address needs brackets: [addr]:port";
    if (n == 0)
        return "missing host (use 0.0.0.0 or [::] for every address)";
    if (n >= sizeof(host))
        return "host name longer than 253 characters";
    memcpy(host, s, n);
    host[n] = '\0';
    const char *why = gw__check_host(host);
    if (why != NULL)
        return why;
    return gw__check_port(colon + 1);
}

bool gw__listen_is_loopback(const char *s)
{
    char host[256];
    const char *end = s[0] == '[' ? strchr(s, ']') : strrchr(s, ':');
    const char *start = s[0] == '[' ? s + 1 : s;
    if (end == NULL || end < start || (size_t)(end - start) >= sizeof(host))
        return false;
    memcpy(host, start, (size_t)(end - start));
    host[end - start] = '\0';
    unsigned char a6[sizeof(struct in6_addr)];
    unsigned char a4[sizeof(struct in_addr)];
    if (s[0] == '[')
        return inet_pton(AF_INET6, host, a6) == 1 && memcmp(a6, &in6addr_loopback, sizeof(a6)) == 0;
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127;
    return strcmp(host, "localhost") == 0;
}

const char *gw__check_topic_prefix(const char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return "empty topic prefix";
    if (len > 127)
        return "longer than 127 characters";
    if (s[0] == '$')
        return "'$' at the start is reserved by the broker";
    if (s[0] == '/' || s[len - 1] == '/')
        return "leading or trailing '/'";
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+' || s[i] == '#')
            return "'+' and '#' are MQTT wildcards";
        if (s[i] == '/' && s[i + 1] == '/')
            return "empty topic segment";
        if (s[i] != '/' && !gw__is_name_char(s[i]))
            return "character outside [A-Za-z0-9._-/]";
    }
    return NULL;
}

const char *gw__check_client_id(const char *s)
{
    size_t len = strlen(s);
    if (len > 127)
        return "longer than 127 characters";
    for (size_t i = 0; i < len; i++) {
        if (!gw__is_name_char(s[i]))
            return "character outside [A-Za-z0-9._-]";
    }
    return NULL;
}

static void gw__format_scaled(int64_t v, const gw__unit *units, char *buf, size_t size)
{
    if (v == 0) {
        snprintf(buf, size, "0");
        return;
    }
    for (const gw__unit *u = units; u->name != NULL; u++) {
        if (v % u->factor == 0) {
            snprintf(buf, size, "%lld%s", (long long)(v / u->factor), u->name);
            return;
        }
    }
    snprintf(buf, size, "%lld", (long long)v);
}

void gw__format_duration(int64_t ms, char *buf, size_t size)
{
    gw__format_scaled(ms, gw__duration_units, buf, size);
}

void gw__format_size(int64_t bytes, char *buf, size_t size)
{
    gw__format_scaled(bytes, gw__size_units, buf, size);
}

void gw__sanitize(const char *in, size_t len, char *out, size_t size)
{
    if (size == 0)
        return;
    /* Keep room for "..." when the text does not fit. */
    size_t room = len < size ? len : (size > 4 ? size - 4 : 0);
    size_t o = 0;
    for (; o < room; o++) {
        unsigned char c = (unsigned char)in[o];
        out[o] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (room < len) {
        for (int k = 0; k < 3 && o + 1 < size; k++)
            out[o++] = '.';
    }
    out[o] = '\0';
}

static char gw__lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

size_t gw__edit_distance(const char *a, const char *b)
{
    enum { cap = 64 };
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > cap || lb > cap)
        return SIZE_MAX;
    size_t prev[cap + 1];
    size_t cur[cap + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = gw__lower(a[i - 1]) == gw__lower(b[j - 1]) ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, sizeof(prev));
    }
    return prev[lb];
}
