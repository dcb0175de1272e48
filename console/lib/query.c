/* Target parsing (query.h): every bound checked before a byte is copied. */
#include "query.h"

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

/* Decodes src[0..len) ('+' is a space) into dst (cap bytes with the NUL). */
static const char *decode(const char *src, size_t len, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)src[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(src[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return "malformed percent-escape in the query";
            c = hi * 16 + lo;
            i += 2;
        }
        if (c < 0x20 || c > 0x7e)
            return "query holds a byte outside printable ASCII";
        if (o + 1 >= cap)
            return "query parameter too long";
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return NULL;
}

static const char *add_param(ic_target *t, const char *p, size_t len)
{
    if (len == 0)
        return NULL;
    if (t->n_params == IC_PARAMS_MAX)
        return "too many query parameters";
    const char *eq = memchr(p, '=', len);
    size_t klen = eq != NULL ? (size_t)(eq - p) : len;
    ic_param *x = &t->params[t->n_params];
    const char *why = decode(p, klen, x->key, sizeof(x->key));
    if (why == NULL && eq != NULL)
        why = decode(eq + 1, len - klen - 1, x->value, sizeof(x->value));
    else if (why == NULL)
        x->value[0] = '\0';
    if (why != NULL)
        return why;
    if (x->key[0] == '\0')
        return "empty query parameter name";
    if (ic_target_param(t, x->key) != NULL)
        return "query parameter given twice";
    t->n_params++;
    return NULL;
}

static const char *split_segments(ic_target *t)
{
    memcpy(t->seg_buf, t->path, strlen(t->path) + 1);
    t->n_seg = 0;
    if (strcmp(t->seg_buf, "/") == 0)
        return NULL;
    char *p = t->seg_buf + 1;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash != NULL)
            *slash = '\0';
        if (p[0] == '\0' || strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
            return "empty or dot segment in the path";
        if (t->n_seg == IC_SEGMENTS_MAX)
            return "too many path segments";
        t->seg[t->n_seg++] = p;
        if (slash == NULL)
            return NULL;
        p = slash + 1;
    }
}

/* The path: origin-form, bounded, none of '%', '#', space or control. */
static const char *check_path(const char *target, size_t plen)
{
    if (plen == 0 || target[0] != '/')
        return "target is not origin-form";
    if (plen > IC_PATH_MAX)
        return "path too long";
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c == '%' || c == '#' || c <= 0x20 || c >= 0x7f)
            return "path holds '%', '#', a space or a control byte";
    }
    return NULL;
}

static const char *parse_query(ic_target *t, const char *p, const char *end)
{
    if (memchr(p, '#', (size_t)(end - p)) != NULL)
        return "fragment in the target";
    const char *why = NULL;
    while (p <= end && why == NULL) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp != NULL ? amp : end;
        why = add_param(t, p, (size_t)(stop - p));
        p = stop + 1;
    }
    return why;
}

const char *ic_target_parse(const char *target, size_t len, ic_target *out)
{
    memset(out, 0, sizeof(*out));
    const char *q = len > 0 ? memchr(target, '?', len) : NULL;
    size_t plen = q != NULL ? (size_t)(q - target) : len;
    const char *why = check_path(target, plen);
    if (why != NULL)
        return why;
    memcpy(out->path, target, plen);
    out->path[plen] = '\0';
    why = split_segments(out);
    if (why != NULL || q == NULL)
        return why;
    return parse_query(out, q + 1, target + len);
}

const char *ic_target_param(const ic_target *t, const char *key)
{
    for (size_t i = 0; i < t->n_params; i++)
        if (strcmp(t->params[i].key, key) == 0)
            return t->params[i].value;
    return NULL;
}

const char *ic_target_unknown_param(const ic_target *t, const char *const *allowed)
{
    for (size_t i = 0; i < t->n_params; i++) {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL && !known; a++)
            known = strcmp(*a, t->params[i].key) == 0;
        if (!known)
            return t->params[i].key;
    }
    return NULL;
}

bool ic_parse_uint(const char *s, long min, long max, long *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 9)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}
