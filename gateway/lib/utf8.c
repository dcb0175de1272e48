#include "utf8.h"

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* The length a lead byte announces, 0 for a byte no sequence starts with:
 * NUL, continuation, C0, C1, F5..FF. */
static size_t lead_len(unsigned char c)
{
    if (c >= 0x01 && c <= 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* The range of the second byte after lead byte c. It is what excludes
 * overlongs (E0, F0), surrogates (ED) and code points above U+10FFFF
 * (F4). */
static void second_range(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    *hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
}

/* Length of the well-formed sequence at p (avail bytes readable), or 0. */
static size_t seq_len(const unsigned char *p, size_t avail)
{
    size_t n = lead_len(p[0]);
    unsigned char lo, hi;

    if (n <= 1)
        return n;
    second_range(p[0], &lo, &hi);
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
