#include "iotd_posix/http_response.h"

#include <string.h>
#include <strings.h>

#include "iotd/protocol.h"

/* The headers kept, by the capture they set. */
enum { CAPTURE_NONE = 0, CAPTURE_RETRY_AFTER, CAPTURE_CONTENT_RANGE };

static const char RETRY_AFTER[] = "retry-after";
static const char CONTENT_RANGE[] = "content-range";

static iotd_posix_http_response *of(http_parser *p)
{
    return p->data;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Header bytes are capped so a hostile or broken peer cannot make the
 * device read forever before the body. */
static int count_header(iotd_posix_http_response *r, size_t len)
{
    r->header_bytes += len;
    if (r->header_bytes <= IOTD_POSIX_HTTP_HEADER_MAX)
        return 0;
    r->error = "response headers too large";
    return 1;
}

/* Decimal digits at *p up to end into *out: 1-10 digits, at most
 * UINT32_MAX. Advances *p past them. */
static bool take_u32(const char **p, const char *end, uint32_t *out)
{
    uint64_t v = 0;
    const char *start = *p;
    while (*p < end && **p >= '0' && **p <= '9' && *p - start < 10) {
        v = v * 10u + (uint64_t)(**p - '0');
        (*p)++;
    }
    if (*p == start || v > UINT32_MAX || (*p < end && **p >= '0' && **p <= '9'))
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool take_char(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

/* "first-last" with first <= last < UINT32_MAX, so that the range's
 * length fits 32 bits. */
static bool take_span(const char **p, const char *end, uint32_t *first, uint32_t *last)
{
    return take_u32(p, end, first) && take_char(p, end, '-') && take_u32(p, end, last) &&
           *first <= *last && *last != UINT32_MAX;
}

/* "/total" above last, or "/" and an asterisk for an unknown total (0). */
static bool take_total(const char **p, const char *end, uint32_t last, uint32_t *total)
{
    *total = 0;
    if (!take_char(p, end, '/'))
        return false;
    if (take_char(p, end, '*'))
        return true;
    return take_u32(p, end, total) && last < *total;
}

/* "bytes first-last/total" (RFC 9110 14.4). The unsatisfied form (an
 * asterisk for the range) and other units are not a range. */
static bool parse_content_range(iotd_posix_http_response *r, const char *v, size_t len)
{
    const char *end = v + len;
    const char *p = v + 6;
    uint32_t first = 0, last = 0, total = 0;

    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (end - v < 6 || strncasecmp(v, "bytes ", 6) != 0 || !take_span(&p, end, &first, &last) ||
        !take_total(&p, end, last, &total) || p != end)
        return false;
    r->range_first = first;
    r->range_last = last;
    r->range_total = total;
    return true;
}

/* The value of the previous header is complete: keep it if it mattered. */
static void end_value(iotd_posix_http_response *r)
{
    if (!r->field_done || r->capture == CAPTURE_NONE)
        return;
    if (r->capture == CAPTURE_CONTENT_RANGE) {
        r->has_range = !r->value_overflow && parse_content_range(r, r->value, r->value_len);
        return;
    }
    uint32_t s = 0;
    r->has_retry_after =
        !r->value_overflow &&
        iotd_protocol_retry_after(r->value, r->value_len, r->now_known, r->now_s, &s);
    r->retry_after_s = r->has_retry_after ? s : 0;
}

static bool field_is(const iotd_posix_http_response *r, const char *name, size_t len)
{
    return r->field_len == len && memcmp(r->field, name, len) == 0;
}

static int capture_of(const iotd_posix_http_response *r)
{
    if (field_is(r, RETRY_AFTER, sizeof(RETRY_AFTER) - 1))
        return CAPTURE_RETRY_AFTER;
    if (field_is(r, CONTENT_RANGE, sizeof(CONTENT_RANGE) - 1))
        return CAPTURE_CONTENT_RANGE;
    return CAPTURE_NONE;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    iotd_posix_http_response *r = of(p);
    if (count_header(r, len + 4) != 0) /* ": " and CRLF */
        return 1;
    if (r->field_done) {
        end_value(r);
        r->field_done = false;
        r->field_len = 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (r->field_len < sizeof(r->field))
            r->field[r->field_len] = lower(at[i]);
        r->field_len++;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    iotd_posix_http_response *r = of(p);
    if (count_header(r, len) != 0)
        return 1;
    if (!r->field_done) {
        r->field_done = true;
        r->capture = capture_of(r);
        r->value_len = 0;
        r->value_overflow = false;
    }
    if (r->capture == CAPTURE_NONE)
        return 0;
    if (len > sizeof(r->value) - r->value_len) {
        r->value_overflow = true;
        return 0;
    }
    memcpy(r->value + r->value_len, at, len);
    r->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    iotd_posix_http_response *r = of(p);
    end_value(r);
    r->field_done = false;
    r->field_len = 0;
    r->status = (int)p->status_code;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    iotd_posix_http_response *r = of(p);
    size_t room = r->body_cap - r->body_len;
    size_t n = len < room ? len : room;
    if (n > 0)
        memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body_total += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    iotd_posix_http_response *r = of(p);
    if (r->status >= 100 && r->status < 200) {
        /* An interim response: the final one follows on the same stream. */
        r->status = 0;
        r->has_retry_after = false;
        r->retry_after_s = 0;
        r->has_range = false;
        r->body_len = 0;
        r->body_total = 0;
        r->header_bytes = 0;
        return 0;
    }
    r->complete = true;
    r->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings SETTINGS = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void iotd_posix_http_response_init(iotd_posix_http_response *r, char *body, size_t body_cap,
                                   int64_t now_s)
{
    memset(r, 0, sizeof(*r));
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    r->body = body;
    r->body_cap = body == NULL ? 0 : body_cap;
    r->now_s = now_s;
    r->now_known = true;
}

static iotd_posix_http_rc after_execute(iotd_posix_http_response *r, size_t parsed, size_t len)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (r->error != NULL)
        return IOTD_POSIX_HTTP_ERROR;
    if (r->complete) {
        /* Bytes after the response were not asked for: the stream can no
         * longer be trusted to start at the next response. */
        if (parsed < len)
            r->keep_alive = false;
        return IOTD_POSIX_HTTP_DONE;
    }
    if (e != HPE_OK) {
        r->error = http_errno_description(e);
        return IOTD_POSIX_HTTP_ERROR;
    }
    if (r->parser.upgrade) {
        r->error = "the server switched protocols";
        return IOTD_POSIX_HTTP_ERROR;
    }
    return IOTD_POSIX_HTTP_MORE;
}

iotd_posix_http_rc iotd_posix_http_response_feed(iotd_posix_http_response *r, const char *data,
                                                 size_t len)
{
    if (r->complete) {
        if (len > 0)
            r->keep_alive = false;
        return IOTD_POSIX_HTTP_DONE;
    }
    if (r->error != NULL)
        return IOTD_POSIX_HTTP_ERROR;
    if (len == 0)
        return IOTD_POSIX_HTTP_MORE;
    size_t parsed = http_parser_execute(&r->parser, &SETTINGS, data, len);
    return after_execute(r, parsed, len);
}

iotd_posix_http_rc iotd_posix_http_response_eof(iotd_posix_http_response *r)
{
    if (r->complete) {
        r->keep_alive = false;
        return IOTD_POSIX_HTTP_DONE;
    }
    if (r->error != NULL)
        return IOTD_POSIX_HTTP_ERROR;
    (void)http_parser_execute(&r->parser, &SETTINGS, NULL, 0);
    iotd_posix_http_rc rc = after_execute(r, 0, 0);
    if (rc == IOTD_POSIX_HTTP_DONE) {
        r->keep_alive = false;
        return rc;
    }
    if (r->error == NULL)
        r->error = "the connection closed before the response was complete";
    return IOTD_POSIX_HTTP_ERROR;
}
