#include "utf8.h"

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Length of the well-formed sequence at p (avail bytes readable), or 0.
 * The second byte's range is what excludes overlongs (E0, F0), surrogates
 * (ED) and code points above U+10FFFF (F4). */
static size_t seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;

    if (c >= 0x01 && c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0; /* NUL, continuation, C0, C1, F5..FF */

    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;

    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (!is_cont(p[i]))
            return 0;
    }
    return n;
}

bool gw_utf8_valid(const char *s, size_t len, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t n = seq_len(p + i, len - i);
        if (n == 0) {
            if (bad != NULL)
                *bad = i;
            return false;
        }
        i += n;
    }
    return true;
}
