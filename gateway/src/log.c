#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static atomic_int min_level = GW_LOG_INFO;

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};
/* syslog priorities: debug 7, info 6, warning 4, err 3 */
static const char *const JOURNAL_PREFIX[] = {"<7>", "<6>", "<4>", "<3>"};

int gw_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, LEVEL_NAMES[i]) == 0)
            return i;
    return -1;
}

void gw_log_set_level(gw_log_level level)
{
    atomic_store(&min_level, (int)level);
}

/* A bounded line under construction; writes past the end are dropped. */
typedef struct line_buf {
    char *buf;
    size_t size; /* the text never uses the last byte: room for the NUL */
    size_t len;
} line_buf;

static void put_n(line_buf *o, const char *s, size_t n)
{
    size_t room = o->size - 1 - o->len;
    if (n > room)
        n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_c(line_buf *o, char c)
{
    put_n(o, &c, 1);
}

/* Characters a value may hold without quotes: none of them can end a
 * field (space), start a new one ('=') or a quoted string. */
static bool is_bare(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._:/@+,-[]?", c) != NULL;
}

static void put_escaped(line_buf *o, const char *s)
{
    static const char HEX[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            put_n(o, esc, 2);
        } else if (*p < 0x20 || *p > 0x7e) {
            char esc[4] = {'\\', 'x', HEX[*p >> 4], HEX[*p & 0xf]};
            put_n(o, esc, 4);
        } else {
            put_c(o, (char)*p);
        }
    }
}

static void put_string(line_buf *o, const char *s, bool in_quotes)
{
    if (s == NULL)
        s = "(null)";
    if (in_quotes) {
        put_escaped(o, s);
        return;
    }
    bool bare = s[0] != '\0';
    for (const unsigned char *p = (const unsigned char *)s; *p && bare; p++)
        bare = is_bare(*p);
    if (bare) {
        put_n(o, s, strlen(s));
        return;
    }
    put_c(o, '"');
    put_escaped(o, s);
    put_c(o, '"');
}

typedef enum length_mod { LM_NONE, LM_HH, LM_H, LM_L, LM_LL, LM_Z, LM_J, LM_T, LM_LD } length_mod;

static const char *parse_length(const char *p, length_mod *lm)
{
    *lm = LM_NONE;
    switch (*p) {
    case 'h':
        *lm = p[1] == 'h' ? LM_HH : LM_H;
        return p + (p[1] == 'h' ? 2 : 1);
    case 'l':
        *lm = p[1] == 'l' ? LM_LL : LM_L;
        return p + (p[1] == 'l' ? 2 : 1);
    case 'z':
        *lm = LM_Z;
        return p + 1;
    case 'j':
        *lm = LM_J;
        return p + 1;
    case 't':
        *lm = LM_T;
        return p + 1;
    case 'L':
        *lm = LM_LD;
        return p + 1;
    }
    return p;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static int format_signed(char *tmp, size_t size, const char *spec, length_mod lm, va_list *ap)
{
    switch (lm) {
    case LM_L:
        return snprintf(tmp, size, spec, va_arg(*ap, long));
    case LM_LL:
        return snprintf(tmp, size, spec, va_arg(*ap, long long));
    case LM_Z:
        return snprintf(tmp, size, spec, va_arg(*ap, ssize_t));
    case LM_J:
        return snprintf(tmp, size, spec, va_arg(*ap, intmax_t));
    case LM_T:
        return snprintf(tmp, size, spec, va_arg(*ap, ptrdiff_t));
    default: /* int, and short and char promoted to int */
        return snprintf(tmp, size, spec, va_arg(*ap, int));
    }
}

static int format_unsigned(char *tmp, size_t size, const char *spec, length_mod lm, va_list *ap)
{
    switch (lm) {
    case LM_L:
        return snprintf(tmp, size, spec, va_arg(*ap, unsigned long));
    case LM_LL:
        return snprintf(tmp, size, spec, va_arg(*ap, unsigned long long));
    case LM_Z:
        return snprintf(tmp, size, spec, va_arg(*ap, size_t));
    case LM_J:
        return snprintf(tmp, size, spec, va_arg(*ap, uintmax_t));
    case LM_T:
        return snprintf(tmp, size, spec, va_arg(*ap, ptrdiff_t));
    default:
        return snprintf(tmp, size, spec, va_arg(*ap, unsigned int));
    }
}

/* Formats one numeric conversion `spec` (a complete "%...X") with the next
 * argument of the type its length modifier names. `spec` is built by
 * format_fields from flags, digits, one length modifier and the conversion
 * only, so it is a valid format for exactly that one argument. */
static void put_number(line_buf *o, const char *spec, char conv, length_mod lm, va_list *ap)
{
    char tmp[128];
    int n = 0;
    if (strchr("di", conv) != NULL)
        n = format_signed(tmp, sizeof(tmp), spec, lm, ap);
    else if (strchr("uxXo", conv) != NULL)
        n = format_unsigned(tmp, sizeof(tmp), spec, lm, ap);
    else if (strchr("fFeEgGaA", conv) != NULL && lm == LM_LD)
        n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, long double));
    else if (strchr("fFeEgGaA", conv) != NULL)
        n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, double));
    else if (conv == 'p')
        n = snprintf(tmp, sizeof(tmp), spec, va_arg(*ap, void *));
    if (n > 0)
        put_n(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}
#pragma GCC diagnostic pop

/* Past the flags, width and precision of a conversion. */
static const char *skip_flags_width(const char *p)
{
    while (*p && strchr("-+ #0", *p) != NULL)
        p++;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    return p;
}

/* Writes the conversion from start (its '%') to end (its letter) with the
 * next argument; false for one too long to be well formed. */
static bool put_conversion(line_buf *o, const char *start, const char *end, length_mod lm,
                           bool in_quotes, va_list *ap)
{
    char conv = *end;
    if (conv == 's') {
        put_string(o, va_arg(*ap, const char *), in_quotes);
        return true;
    }
    if (conv == 'c') {
        char one[2] = {(char)va_arg(*ap, int), '\0'};
        put_string(o, one, in_quotes);
        return true;
    }
    char spec[32];
    size_t n = (size_t)(end - start) + 1;
    if (n >= sizeof(spec))
        return false; /* no conversion is this long: a malformed format */
    memcpy(spec, start, n);
    spec[n] = '\0';
    put_number(o, spec, conv, lm, ap);
    return true;
}

/* printf for log fields: the format's own text is copied; a quote in it
 * opens or closes a quoted value, and each %s is escaped for where it
 * lands (see log.h). */
static void format_fields(line_buf *o, const char *fmt, va_list *ap)
{
    bool in_quotes = false;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            if (*p == '"')
                in_quotes = !in_quotes;
            put_c(o, *p);
            continue;
        }
        const char *start = p++;
        if (*p == '%') {
            put_c(o, '%');
            continue;
        }
        length_mod lm;
        p = parse_length(skip_flags_width(p), &lm);
        if (*p == '\0' || !put_conversion(o, start, p, lm, in_quotes, ap))
            break;
    }
    o->buf[o->len] = '\0';
}

size_t gw_log_format(char *buf, size_t size, const char *fmt, ...)
{
    if (size == 0)
        return 0;
    line_buf o = {buf, size, 0};
    va_list ap;
    va_start(ap, fmt);
    format_fields(&o, fmt, &ap);
    va_end(ap);
    return o.len;
}

/* systemd sets JOURNAL_STREAM to "DEV:INO" of the stream it connected to
 * stderr; a redirected stderr no longer matches it. */
static bool stderr_is_journal(void)
{
    static atomic_int cached = -1;
    int v = atomic_load(&cached);
    if (v >= 0)
        return v;
    const char *js = getenv("JOURNAL_STREAM");
    struct stat sb;
    unsigned long long dev = 0, ino = 0;
    v = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &sb) == 0 &&
        (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino;
    atomic_store(&cached, v);
    return v;
}

static _Atomic(const gw_log_tap *) log_tap;

void gw_log_set_tap(const gw_log_tap *tap)
{
    atomic_store(&log_tap, tap);
}

void gw_log(gw_log_level level, const char *event, const char *fmt, ...)
{
    const gw_log_tap *tap = atomic_load(&log_tap);
    bool tapped = tap != NULL && tap->wants(event);
    bool shown = (int)level >= atomic_load(&min_level);
    if (!shown && !tapped)
        return;
    char text[GW_LOG_LINE_MAX + 1];
    line_buf o = {text, sizeof(text) - 1, 0}; /* keeps a byte for the newline */
    if (stderr_is_journal())
        put_n(&o, JOURNAL_PREFIX[level], 3);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    size_t n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    put_n(&o, stamp, n);
    n = (size_t)snprintf(stamp, sizeof(stamp), ".%03dZ level=", (int)(ts.tv_nsec / 1000000));
    put_n(&o, stamp, n < sizeof(stamp) ? n : sizeof(stamp) - 1);
    put_n(&o, LEVEL_NAMES[level], strlen(LEVEL_NAMES[level]));
    put_n(&o, " event=", 7);
    put_string(&o, event, false);
    size_t fields_at = o.len + 1;
    if (fmt != NULL) {
        put_c(&o, ' ');
        va_list ap;
        va_start(ap, fmt);
        format_fields(&o, fmt, &ap);
        va_end(ap);
    }
    /* The format's own text is trusted, but a stray byte must still not
     * break the line. */
    for (size_t i = 0; i < o.len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c > 0x7e)
            text[i] = '?';
    }
    if (tapped) {
        text[o.len] = '\0';
        size_t at = fields_at < o.len ? fields_at : o.len;
        tap->take(level, event, text + at, o.len - at);
    }
    if (!shown)
        return;
    text[o.len++] = '\n';
    /* One write per line: lines from different threads never interleave. */
    ssize_t rc = write(STDERR_FILENO, text, o.len);
    (void)rc;
}
