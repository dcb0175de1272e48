#include "iotd/protocol.h"

#include <string.h>

#define SECONDS_PER_DAY 86400

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_name_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

static bool is_unit_char(char c)
{
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

/* One rule: which characters, which may start a name, how many. */
typedef struct name_rule {
    bool (*allowed)(char c);
    bool (*may_start)(char c);
    size_t max;
} name_rule;

static bool starts_device_id(char c)
{
    return c != '.';
}

static bool starts_anything(char c)
{
    (void)c;
    return true;
}

static iotd_protocol_fault check(const name_rule *rule, const char *s, size_t *at)
{
    iotd_protocol_fault fault = IOTD_PROTOCOL_OK;
    size_t i = 0;

    if (s == NULL || s[0] == '\0') {
        fault = IOTD_PROTOCOL_EMPTY;
        goto out;
    }
    for (; s[i] != '\0'; i++) {
        if (i == rule->max) {
            fault = IOTD_PROTOCOL_TOO_LONG;
            goto out;
        }
        if (!rule->allowed(s[i])) {
            fault = IOTD_PROTOCOL_BAD_CHAR;
            goto out;
        }
        if (i == 0 && !rule->may_start(s[i])) {
            fault = IOTD_PROTOCOL_BAD_FIRST;
            goto out;
        }
    }
out:
    if (at != NULL)
        *at = fault == IOTD_PROTOCOL_OK ? 0 : i;
    return fault;
}

static const name_rule DEVICE_ID = {is_name_char, starts_device_id, IOTD_PROTOCOL_DEVICE_ID_MAX};
static const name_rule SENSOR_NAME = {is_name_char, is_alnum, IOTD_PROTOCOL_SENSOR_NAME_MAX};
static const name_rule UNIT = {is_unit_char, starts_anything, IOTD_PROTOCOL_UNIT_MAX};

iotd_protocol_fault iotd_protocol_device_id_check(const char *s, size_t *at)
{
    return check(&DEVICE_ID, s, at);
}

iotd_protocol_fault iotd_protocol_sensor_name_check(const char *s, size_t *at)
{
    return check(&SENSOR_NAME, s, at);
}

iotd_protocol_fault iotd_protocol_unit_check(const char *s, size_t *at)
{
    return check(&UNIT, s, at);
}

bool iotd_protocol_device_id_valid(const char *s)
{
    return check(&DEVICE_ID, s, NULL) == IOTD_PROTOCOL_OK;
}

bool iotd_protocol_sensor_name_valid(const char *s)
{
    return check(&SENSOR_NAME, s, NULL) == IOTD_PROTOCOL_OK;
}

bool iotd_protocol_unit_valid(const char *s)
{
    return check(&UNIT, s, NULL) == IOTD_PROTOCOL_OK;
}

bool iotd_protocol_base_name_is(const char *bn, size_t len, const char *device_id)
{
    if (bn == NULL || device_id == NULL)
        return false;
    size_t id_len = strlen(device_id);
    return len == id_len + 1 && memcmp(bn, device_id, id_len) == 0 &&
           bn[id_len] == IOTD_PROTOCOL_BN_SEPARATOR;
}

/* ---- Retry-After ---- */

/* The unread rest of a header value. */
typedef struct cursor {
    const char *p;
    size_t len;
} cursor;

static bool take_literal(cursor *c, const char *lit)
{
    size_t n = strlen(lit);

    if (c->len < n || memcmp(c->p, lit, n) != 0)
        return false;
    c->p += n;
    c->len -= n;
    return true;
}

/* Exactly n digits. */
static bool take_digits(cursor *c, size_t n, int *out)
{
    int v = 0;

    if (c->len < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    c->len -= n;
    *out = v;
    return true;
}

/* One of `count` names; *index is its position in the table. */
static bool take_name(cursor *c, const char *const *names, int count, int *index)
{
    for (int i = 0; i < count; i++) {
        if (take_literal(c, names[i])) {
            *index = i;
            return true;
        }
    }
    return false;
}

static const char *const DAYS[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const LONG_DAYS[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                        "Friday", "Saturday", "Sunday"};
static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

typedef struct civil {
    int year, month, day; /* month 1..12 */
    int hour, min, sec;
} civil;

static bool take_month(cursor *c, civil *t)
{
    int m = 0;

    if (!take_name(c, MONTHS, 12, &m))
        return false;
    t->month = m + 1;
    return true;
}

/* "08:49:37" */
static bool take_clock(cursor *c, civil *t)
{
    return take_digits(c, 2, &t->hour) && take_literal(c, ":") && take_digits(c, 2, &t->min) &&
           take_literal(c, ":") && take_digits(c, 2, &t->sec);
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static bool imf_fixdate(cursor c, civil *t)
{
    int day = 0;

    return take_name(&c, DAYS, 7, &day) && take_literal(&c, ", ") && take_digits(&c, 2, &t->day) &&
           take_literal(&c, " ") && take_month(&c, t) && take_literal(&c, " ") &&
           take_digits(&c, 4, &t->year) && take_literal(&c, " ") && take_clock(&c, t) &&
           take_literal(&c, " GMT") && c.len == 0;
}

/* "Sunday, 06-Nov-94 08:49:37 GMT"; t->year is the two digits. */
static bool rfc850_date(cursor c, civil *t)
{
    int day = 0;

    return take_name(&c, LONG_DAYS, 7, &day) && take_literal(&c, ", ") &&
           take_digits(&c, 2, &t->day) && take_literal(&c, "-") && take_month(&c, t) &&
           take_literal(&c, "-") && take_digits(&c, 2, &t->year) && take_literal(&c, " ") &&
           take_clock(&c, t) && take_literal(&c, " GMT") && c.len == 0;
}

/* "Sun Nov  6 08:49:37 1994": a one-digit day has a space before it. */
static bool asctime_date(cursor c, civil *t)
{
    int day = 0;

    if (!(take_name(&c, DAYS, 7, &day) && take_literal(&c, " ") && take_month(&c, t) &&
          take_literal(&c, " ")))
        return false;
    if (!(take_literal(&c, " ") ? take_digits(&c, 1, &t->day) : take_digits(&c, 2, &t->day)))
        return false;
    return take_literal(&c, " ") && take_clock(&c, t) && take_literal(&c, " ") &&
           take_digits(&c, 4, &t->year) && c.len == 0;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char DAYS_IN[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : DAYS_IN[m - 1];
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

/* The year of Unix time s, from the mean Gregorian year (365.2425 days): it
 * may be one off within a day of 1 January, which moves the 50-year rule of
 * two-digit years by that day. */
static int year_of(int64_t s)
{
    return (int)(1970 + (s >= 0 ? s / 31556952 : (s - 31556951) / 31556952));
}

/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is the most
 * recent past year with those digits. */
static int full_year(int yy, int64_t now_s)
{
    int now_year = year_of(now_s);
    int y = now_year - now_year % 100 + yy;
    return y > now_year + 50 ? y - 100 : y;
}

static bool civil_to_unix(const civil *t, int64_t *unix_s)
{
    /* 60: a leap second is a valid time of day (RFC 9110 allows it). */
    if (t->day < 1 || t->day > days_in_month(t->year, t->month) || t->hour > 23 || t->min > 59 ||
        t->sec > 60)
        return false;
    *unix_s = days_from_civil(t->year, t->month, t->day) * SECONDS_PER_DAY + t->hour * 3600 +
              t->min * 60 + t->sec;
    return true;
}

static bool http_date(cursor c, int64_t now_s, int64_t *unix_s)
{
    civil t = {0, 0, 0, 0, 0, 0};

    if (rfc850_date(c, &t))
        t.year = full_year(t.year, now_s);
    else if (!imf_fixdate(c, &t) && !asctime_date(c, &t))
        return false;
    return civil_to_unix(&t, unix_s);
}

/* "2027-06-01T00:00:00Z", RFC 3339 in UTC with no fraction. */
bool iotd_protocol_utc_time(const char *s, size_t len, int64_t *unix_s)
{
    cursor c = {s, len};
    civil t = {0, 0, 0, 0, 0, 0};

    if (s == NULL ||
        !(take_digits(&c, 4, &t.year) && take_literal(&c, "-") && take_digits(&c, 2, &t.month) &&
          take_literal(&c, "-") && take_digits(&c, 2, &t.day) && take_literal(&c, "T") &&
          take_clock(&c, &t) && take_literal(&c, "Z") && c.len == 0))
        return false;
    if (t.year < 1970 || t.month < 1 || t.month > 12 || t.sec > 59)
        return false;
    return civil_to_unix(&t, unix_s);
}

/* 1*DIGIT, saturated; false for anything else. */
static bool delta_seconds(cursor c, uint32_t *out)
{
    uint32_t v = 0;

    if (c.len == 0)
        return false;
    for (size_t i = 0; i < c.len; i++) {
        if (!is_digit(c.p[i]))
            return false;
        uint32_t d = (uint32_t)(c.p[i] - '0');
        v = v > (UINT32_MAX - d) / 10u ? UINT32_MAX : v * 10u + d;
    }
    *out = v;
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool iotd_protocol_retry_after(const char *value, size_t len, bool clock_known, int64_t now_s,
                               uint32_t *seconds)
{
    cursor c = {value, len};
    int64_t when = 0;

    if (value == NULL || seconds == NULL)
        return false;
    while (c.len > 0 && is_ows(c.p[0])) {
        c.p++;
        c.len--;
    }
    while (c.len > 0 && is_ows(c.p[c.len - 1]))
        c.len--;
    if (delta_seconds(c, seconds))
        return true;
    if (!clock_known || !http_date(c, now_s, &when))
        return false;
    if (when <= now_s)
        *seconds = 0;
    else
        *seconds = when - now_s > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)(when - now_s);
    return true;
}
