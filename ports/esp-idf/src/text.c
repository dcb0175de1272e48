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

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Exactly n digits at s. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool delta_seconds(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            v = (uint64_t)UINT32_MAX + 1; /* saturate, keep scanning for junk */
    }
    *out = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const unsigned char days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 section 5.6.7, IMF-fixdate). */
static bool imf_fixdate(const char *s, size_t len, int64_t *unix_s)
{
    static const char names[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int day, year, hour, min, sec, month = 0;
    bool named = false;

    if (len != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
        s[19] != ':' || s[22] != ':' || s[25] != ' ' || memcmp(s + 26, "GMT", 3) != 0)
        return false;
    for (size_t i = 0; i < 7 && !named; i++)
        named = memcmp(s, names + 3 * i, 3) == 0;
    for (int i = 0; i < 12 && month == 0; i++)
        month = memcmp(s + 8, months + 3 * i, 3) == 0 ? i + 1 : 0;
    if (!named || month == 0 || !digits(s + 5, 2, &day) || !digits(s + 12, 4, &year) ||
        !digits(s + 17, 2, &hour) || !digits(s + 20, 2, &min) || !digits(s + 23, 2, &sec))
        return false;
    if (day < 1 || day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 60)
        return false;
    *unix_s = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
    return true;
}

bool iotd_esp__retry_after(const char *value, bool clock_known, int64_t now_s, uint32_t *seconds)
{
    int64_t when;

    if (value == NULL)
        return false;
    while (is_ows(*value))
        value++;
    size_t len = strlen(value);
    while (len > 0 && is_ows(value[len - 1]))
        len--;
    if (delta_seconds(value, len, seconds))
        return true;
    if (!clock_known || !imf_fixdate(value, len, &when))
        return false;
    if (when <= now_s)
        *seconds = 0;
    else
        *seconds = when - now_s > UINT32_MAX ? UINT32_MAX : (uint32_t)(when - now_s);
    return true;
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
