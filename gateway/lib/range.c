#include "range.h"

#include <string.h>
#include <strings.h>

/* Up to 18 digits: below 10^18, so no overflow, and far past any image. */
#define DIGITS_MAX 18

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Decimal digits at *p into *out; false when there are none or too many. */
static bool take_number(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n == DIGITS_MAX)
            return false;
        v = v * 10 + (uint64_t)(s[n] - '0');
        n++;
    }
    if (n == 0)
        return false;
    *p = s + n;
    *out = v;
    return true;
}

/* "a-b", "a-" or "-n" at p, up to the end of the value (OWS allowed). */
static gw_range_kind judge_spec(const char *p, uint64_t size, uint64_t *first, uint64_t *last)
{
    uint64_t a = 0, b = 0;
    if (*p == '-') {
        p++;
        if (!take_number(&p, &b) || *skip_ows(p) != '\0')
            return GW_RANGE_INVALID;
        if (b == 0)
            return GW_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return GW_RANGE_OK;
    }
    if (!take_number(&p, &a) || *p++ != '-')
        return GW_RANGE_INVALID;
    bool open_end = !take_number(&p, &b);
    if (*skip_ows(p) != '\0' || (!open_end && b < a))
        return GW_RANGE_INVALID;
    if (a >= size)
        return GW_RANGE_UNSATISFIABLE;
    *first = a;
    *last = open_end || b >= size ? size - 1 : b;
    return GW_RANGE_OK;
}

gw_range_kind gw_range_parse(const char *value, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (value == NULL)
        return GW_RANGE_NONE;
    const char *eq = strchr(value, '=');
    if (eq == NULL)
        return GW_RANGE_INVALID;
    /* Range units are case-insensitive; another unit is ignored (14.2). */
    if (eq - value != 5 || strncasecmp(value, "bytes", 5) != 0)
        return GW_RANGE_NONE;
    if (strchr(eq, ',') != NULL)
        return GW_RANGE_INVALID;
    return judge_spec(skip_ows(eq + 1), size, first, last);
}

bool gw_etag_matches(const char *field, const char *etag, bool star_ok)
{
    size_t n = strlen(etag);
    const char *p = skip_ows(field);
    if (star_ok && p[0] == '*' && *skip_ows(p + 1) == '\0')
        return true;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == n && memcmp(p, etag, n) == 0)
            return true;
        if (end == NULL)
            break;
        p = skip_ows(end + 1);
    }
    return false;
}
