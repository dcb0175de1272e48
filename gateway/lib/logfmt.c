/* See logfmt.h. */
#include "logfmt.h"

#include <string.h>

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The end of the field starting at p: the first space outside quotes. */
static const char *field_end(const char *p, const char *end)
{
    bool quoted = false;
    for (; p < end; p++) {
        if (quoted && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == ' ' && !quoted)
            break;
    }
    return p;
}

static void put(char *out, size_t cap, size_t *n, char c)
{
    if (*n + 1 < cap)
        out[(*n)++] = c;
}

/* Unescapes a quoted value; q points after the opening quote. */
static size_t unquote(const char *q, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    for (; q < end && *q != '"'; q++) {
        if (*q != '\\' || q + 1 >= end) {
            put(out, cap, &n, *q);
            continue;
        }
        q++;
        int hi = *q == 'x' && q + 2 < end ? hex_value(q[1]) : -1;
        int lo = hi >= 0 ? hex_value(q[2]) : -1;
        if (lo >= 0) {
            put(out, cap, &n, (char)(hi * 16 + lo));
            q += 2;
        } else {
            put(out, cap, &n, *q);
        }
    }
    return n;
}

bool gw_logfmt_get(const char *fields, size_t len, const char *key, char *out, size_t cap)
{
    const char *p = fields, *end = fields + len;
    size_t klen = strlen(key);
    if (cap == 0)
        return false;
    out[0] = '\0';
    while (p < end) {
        const char *fe = field_end(p, end);
        if ((size_t)(fe - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1;
            size_t n;
            if (v < fe && *v == '"') {
                n = unquote(v + 1, fe, out, cap);
            } else {
                n = (size_t)(fe - v) < cap - 1 ? (size_t)(fe - v) : cap - 1;
                memcpy(out, v, n);
            }
            out[n] = '\0';
            if (strcmp(out, "-") == 0)
                out[0] = '\0';
            return out[0] != '\0';
        }
        p = fe + 1;
    }
    return false;
}
