#include "text.h"

#include <string.h>

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

bool iotd_esp__ieq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        if (lower(*a) != lower(*b))
            return false;
    }
    return *a == *b;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool iotd_esp__has_token(const char *value, const char *token)
{
    size_t tlen = strlen(token);

    if (value == NULL)
        return false;
    while (*value != '\0') {
        while (is_ows(*value) || *value == ',')
            value++;
        const char *start = value;
        while (*value != '\0' && *value != ',')
            value++;
        const char *end = value;
        while (end > start && is_ows(end[-1]))
            end--;
        if ((size_t)(end - start) == tlen) {
            size_t i = 0;
            while (i < tlen && lower(start[i]) == lower(token[i]))
                i++;
            if (i == tlen)
                return true;
        }
    }
    return false;
}

/* Ends the output at n with "..." (or as much of it as fits), overwriting
 * the last bytes when there is no room after them: cutting an escape in two
 * is harmless once the marker follows. */
static void mark_cut(char *out, size_t cap, size_t n)
{
    size_t m = cap - 1 < 3 ? cap - 1 : 3;
    size_t at = n + m <= cap - 1 ? n : cap - 1 - m;

    memset(out + at, '.', m);
    out[at + m] = '\0';
}

void iotd_esp__escape(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap == 0)
        return;
    for (; *in != '\0'; in++) {
        unsigned char c = (unsigned char)*in;
        size_t need = c >= 0x20 && c < 0x7f && c != '\\' ? 1 : 4;
        if (n + need > cap - 1) {
            mark_cut(out, cap, n);
            return;
        }
        if (need == 1) {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '\\';
        out[n++] = 'x';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 0x0f];
    }
    out[n] = '\0';
}

bool iotd_esp__join(char *out, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (cap == 0)
        return false;
    if (la + lb >= cap) {
        out[0] = '\0';
        return false;
    }
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return true;
}

/* Reads 1*DIGIT at *p into *out; false when there is no digit or the
 * number does not fit 32 bits. Leading zeros are allowed (1*DIGIT) and
 * bounded by the caller's buffer. */
static bool read_u32(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint32_t v = 0;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint32_t d = (uint32_t)(*s - '0');
        if (v > (UINT32_MAX - d) / 10u)
            return false;
        v = v * 10u + d;
    }
    *p = s;
    *out = v;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (is_ows(*s))
        s++;
    return s;
}

/* "bytes " at *p, the unit in any case; *p moves past it. */
static bool read_unit(const char **p)
{
    static const char unit[] = "bytes";
    const char *s = *p;

    for (size_t i = 0; i < sizeof(unit) - 1; i++, s++) {
        if (lower(*s) != unit[i])
            return false;
    }
    if (*s != ' ')
        return false;
    *p = s + 1;
    return true;
}

/* The numbers of "first-last/total" (or a star for total: *total 0,
 * *known false), then only OWS. */
static bool read_range(const char *s, uint32_t n[3], bool *known)
{
    if (!read_u32(&s, &n[0]) || *s++ != '-' || !read_u32(&s, &n[1]) || *s++ != '/')
        return false;
    n[2] = 0;
    *known = *s != '*';
    if (!*known)
        s++;
    else if (!read_u32(&s, &n[2]))
        return false;
    return *skip_ows(s) == '\0';
}

bool iotd_esp__content_range(const char *value, iotd_esp_range *out)
{
    const char *s = value;
    uint32_t n[3]; /* first, last, total */
    bool known = false;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return false;
    s = skip_ows(s);
    if (!read_unit(&s) || !read_range(s, n, &known))
        return false;
    /* The length must fit too: 0-4294967295 is 2^32 bytes. */
    if (n[1] < n[0] || (n[0] == 0 && n[1] == UINT32_MAX))
        return false;
    if (known && n[1] >= n[2])
        return false;
    out->start = n[0];
    out->len = n[1] - n[0] + 1u;
    out->total = n[2];
    return true;
}

/* The decimal digits of v at out + *n, if they fit before cap. */
static bool put_u32(char *out, size_t cap, size_t *n, uint32_t v)
{
    char digits[10];
    size_t k = 0;

    do {
        digits[k++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    if (*n + k >= cap)
        return false;
    while (k > 0)
        out[(*n)++] = digits[--k];
    return true;
}

bool iotd_esp__range_header(char *out, size_t cap, uint32_t start, uint32_t len)
{
    static const char unit[] = "bytes=";
    size_t n = sizeof(unit) - 1;

    if (cap == 0)
        return false;
    out[0] = '\0';
    if (len == 0 || start > UINT32_MAX - (len - 1u) || cap <= n + 1)
        return false;
    memcpy(out, unit, n);
    if (!put_u32(out, cap, &n, start) || n + 1 >= cap) {
        out[0] = '\0';
        return false;
    }
    out[n++] = '-';
    if (!put_u32(out, cap, &n, start + (len - 1u))) {
        out[0] = '\0';
        return false;
    }
    out[n] = '\0';
    return true;
}

void iotd_esp__keep_header(const char *value, char *dst, size_t cap, bool *seen, bool *bad)
{
    size_t n = strlen(value);

    *bad = *bad || *seen || n >= cap;
    *seen = true;
    if (!*bad)
        memcpy(dst, value, n + 1);
}
