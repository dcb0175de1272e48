/* The request reader and response writer; http1.h says what is refused. */
#include "http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_FIRST_ALLOC 1024

static gw_http_reader *reader_of(llhttp_t *p)
{
    return p->data;
}

/* Records the refusal and makes llhttp stop with a callback error. */
static int refuse(gw_http_reader *r, gw_refusal why, const char *detail)
{
    r->refusal = why;
    snprintf(r->detail, sizeof(r->detail), "%s", detail);
    return -1;
}

/* Every byte of the request line and the header lines counts against
 * GW_HTTP_HEADERS_MAX, with 4 for each line's ": " and CRLF. */
static int count_header_bytes(gw_http_reader *r, size_t n)
{
    r->header_bytes += n;
    if (r->header_bytes > GW_HTTP_HEADERS_MAX)
        return refuse(r, GW_REF_HTTP_HEADERS_TOO_LARGE,
                      "the request line and headers exceed 8 KiB");
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    gw_http_reader *r = reader_of(p);
    r->header_bytes = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    gw_http_reader *r = reader_of(p);
    if (count_header_bytes(r, len) != 0)
        return -1;
    if (r->req.target_len + len > GW_HTTP_TARGET_MAX)
        return refuse(r, GW_REF_INVALID_TARGET, "the request target is too long");
    memcpy(r->req.target + r->req.target_len, at, len);
    r->req.target_len += len;
    r->req.target[r->req.target_len] = '\0';
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    gw_http_reader *r = reader_of(p);
    if (count_header_bytes(r, len + 4) != 0)
        return -1;
    size_t room = sizeof(r->field) - 1 - r->field_len;
    size_t n = len < room ? len : room;
    memcpy(r->field + r->field_len, at, n);
    r->field_len += n;
    r->field[r->field_len] = '\0';
    if (n < len)
        r->field[0] = '\0'; /* a name this long is none we read */
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    gw_http_reader *r = reader_of(p);
    if (count_header_bytes(r, len) != 0)
        return -1;
    size_t room = sizeof(r->value) - 1 - r->value_len;
    size_t n = len < room ? len : room;
    memcpy(r->value + r->value_len, at, n);
    r->value_len += n;
    r->value[r->value_len] = '\0';
    r->value_long |= n < len;
    return 0;
}

static bool field_is(const gw_http_reader *r, const char *name)
{
    return strcasecmp(r->field, name) == 0;
}

/* llhttp passes the value with its trailing whitespace. */
static void trim_value(gw_http_reader *r)
{
    while (r->value_len > 0 &&
           (r->value[r->value_len - 1] == ' ' || r->value[r->value_len - 1] == '\t'))
        r->value[--r->value_len] = '\0';
}

/* A value of at most GW_HTTP_RANGE_MAX bytes into dst; "" when it is
 * longer, or when `spoiled` (the field came before). */
static void keep_short(gw_http_reader *r, char dst[GW_HTTP_RANGE_MAX + 1], bool spoiled)
{
    if (spoiled || r->value_long || r->value_len > GW_HTTP_RANGE_MAX)
        dst[0] = '\0';
    else
        memcpy(dst, r->value, r->value_len + 1);
}

/* Range, If-Range and If-None-Match (image downloads); false for another
 * field. */
static bool keep_range_field(gw_http_reader *r)
{
    if (field_is(r, "Range")) {
        r->req.range_bad |= r->req.has_range || r->value_long || r->value_len > GW_HTTP_RANGE_MAX;
        r->req.has_range = true;
        keep_short(r, r->req.range, r->req.range_bad);
    } else if (field_is(r, "If-Range")) {
        keep_short(r, r->req.if_range, r->req.has_if_range);
        r->req.has_if_range = true;
    } else if (field_is(r, "If-None-Match")) {
        keep_short(r, r->req.if_none_match, r->req.has_if_none_match);
        r->req.has_if_none_match = true;
    } else {
        return false;
    }
    return true;
}

/* A header the reader does not keep, to the caller's hook if it set one. */
static void pass_on(gw_http_reader *r)
{
    if (r->other_header != NULL && r->field[0] != '\0')
        r->other_header(r->other_header_ctx, r->field, r->value, r->value_long);
}

static int on_header_value_complete(llhttp_t *p)
{
    gw_http_reader *r = reader_of(p);
    int rc = 0;
    trim_value(r);
    if (field_is(r, "Transfer-Encoding")) {
        /* chunked is the only coding a device sends; llhttp would accept
         * "gzip, chunked" and hand over the compressed bytes as the body. */
        if (++r->transfer_encodings > 1 || r->value_long || strcasecmp(r->value, "chunked") != 0)
            rc = refuse(r, GW_REF_HTTP_FRAMING,
                        "Transfer-Encoding must be exactly chunked, given once");
    } else if (field_is(r, "Content-Type")) {
        if (!r->value_long && r->value_len < sizeof(r->req.content_type))
            memcpy(r->req.content_type, r->value, r->value_len + 1);
    } else if (field_is(r, "X-Device-Id")) {
        if (!r->value_long && r->value_len < sizeof(r->req.device_id))
            memcpy(r->req.device_id, r->value, r->value_len + 1);
    } else if (field_is(r, "Authorization")) {
        if (!r->value_long)
            memcpy(r->req.authorization, r->value, r->value_len + 1);
    } else if (keep_range_field(r)) {
        /* kept */
    } else if (field_is(r, "Expect")) {
        r->req.expect_continue = strcasecmp(r->value, "100-continue") == 0;
    } else {
        pass_on(r);
    }
    r->field_len = 0;
    r->field[0] = '\0';
    r->value_len = 0;
    r->value[0] = '\0';
    r->value_long = false;
    return rc;
}

static int on_headers_complete(llhttp_t *p)
{
    gw_http_reader *r = reader_of(p);
    if (p->http_major != 1 || p->http_minor > 1)
        return refuse(r, GW_REF_HTTP_VERSION, "only HTTP/1.1 and HTTP/1.0 are served");
    if (p->method == HTTP_CONNECT)
        return refuse(r, GW_REF_HTTP_MALFORMED, "CONNECT is not served");
    if (p->upgrade)
        return refuse(r, GW_REF_HTTP_MALFORMED, "protocol upgrades are not served");
    r->req.method = (llhttp_method_t)p->method;
    r->req.has_body = (p->flags & (F_CHUNKED | F_CONTENT_LENGTH)) != 0 &&
                      ((p->flags & F_CHUNKED) || p->content_length > 0);
    r->req.expect_continue = r->req.expect_continue && r->req.has_body && p->http_minor == 1;
    r->headers_done = true;
    /* Without a body the request is complete at once: it stops there. */
    return r->req.has_body ? HPE_PAUSED : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    gw_http_reader *r = reader_of(p);
    if (len > r->body_max - r->body_seen)
        return refuse(r, GW_REF_BODY_TOO_LARGE, "the body is larger than the gateway accepts");
    r->body_seen += len;
    if (r->discard_body)
        return 0;
    size_t need = r->req.body_len + len;
    if (need > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : BODY_FIRST_ALLOC;
        while (cap < need)
            cap *= 2;
        if (cap > r->body_max)
            cap = r->body_max;
        unsigned char *grown = realloc(r->req.body, cap);
        if (grown == NULL)
            return refuse(r, GW_REF_OUT_OF_MEMORY, "the gateway is out of memory; retry later");
        r->req.body = grown;
        r->body_cap = cap;
    }
    memcpy(r->req.body + r->req.body_len, at, len);
    r->req.body_len += len;
    return 0;
}

/* A chunk announcing more than the body may still hold is refused before
 * its bytes arrive. */
static int on_chunk_header(llhttp_t *p)
{
    gw_http_reader *r = reader_of(p);
    if (p->content_length > r->body_max - r->body_seen)
        return refuse(r, GW_REF_BODY_TOO_LARGE, "the body is larger than the gateway accepts");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    gw_http_reader *r = reader_of(p);
    r->req.keep_alive = llhttp_should_keep_alive(p) != 0;
    r->done = true;
    return HPE_PAUSED;
}

void gw_http_reader_init(gw_http_reader *r)
{
    memset(r, 0, sizeof(*r));
    llhttp_settings_init(&r->settings);
    r->settings.on_message_begin = on_message_begin;
    r->settings.on_url = on_url;
    r->settings.on_header_field = on_header_field;
    r->settings.on_header_value = on_header_value;
    r->settings.on_header_value_complete = on_header_value_complete;
    r->settings.on_headers_complete = on_headers_complete;
    r->settings.on_body = on_body;
    r->settings.on_chunk_header = on_chunk_header;
    r->settings.on_message_complete = on_message_complete;
    llhttp_init(&r->parser, HTTP_REQUEST, &r->settings);
    r->parser.data = r;
}

void gw_http_reader_free(gw_http_reader *r)
{
    free(r->req.body);
    r->req.body = NULL;
    r->body_cap = 0;
}

/* llhttp's reason, reduced to what a JSON string and a log field hold
 * without escaping. */
static void llhttp_detail(gw_http_reader *r)
{
    const char *why = llhttp_get_error_reason(&r->parser);
    size_t o = 0;
    for (; why != NULL && *why != '\0' && o + 1 < sizeof(r->detail); why++)
        if (*why >= 0x20 && *why <= 0x7e && *why != '"' && *why != '\\')
            r->detail[o++] = *why;
    r->detail[o] = '\0';
}

static gw_refusal refusal_of(llhttp_errno_t e)
{
    switch (e) {
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING:
    case HPE_INVALID_CHUNK_SIZE:
    case HPE_STRICT:
        return GW_REF_HTTP_FRAMING;
    case HPE_INVALID_VERSION:
        return GW_REF_HTTP_VERSION;
    default:
        return GW_REF_HTTP_MALFORMED;
    }
}

/* Two line rules llhttp leaves to us, checked on the raw header bytes.
 * RFC 9112 lets a server read a lone LF as a line end, and llhttp does; a
 * proxy in front that does not would see other lines than we do: only CRLF
 * ends a line here. A line starting with a space or tab is an obsolete
 * line folding (or whitespace before the first header), which a server
 * must refuse or unfold (RFC 9112 5.2); llhttp joins it silently, so it is
 * refused. The state carries across feeds. Returns the problem, or NULL. */
static const char *line_problem(gw_http_reader *r, const char *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (ch == '\n' && !r->prev_cr)
            return "a line must end in CRLF";
        if (r->line_start && r->started && (ch == ' ' || ch == '\t'))
            return "obsolete line folding is not accepted";
        r->started |= ch != '\r' && ch != '\n';
        r->line_start = ch == '\n';
        r->prev_cr = ch == '\r';
    }
    return NULL;
}

static gw_http_status execute(gw_http_reader *r, const char *data, size_t len, size_t *used);

gw_http_status gw_http_feed(gw_http_reader *r, const char *data, size_t len, size_t *used)
{
    bool in_headers = !r->headers_done;
    gw_http_status st = execute(r, data, len, used);
    const char *problem = NULL;
    if (st != GW_HTTP_ERROR && in_headers)
        problem = line_problem(r, data, *used);
    if (problem != NULL) {
        r->refusal = GW_REF_HTTP_MALFORMED;
        snprintf(r->detail, sizeof(r->detail), "%s", problem);
        return GW_HTTP_ERROR;
    }
    return st;
}

static gw_http_status execute(gw_http_reader *r, const char *data, size_t len, size_t *used)
{
    *used = 0;
    if (r->done) {
        r->headers_reported = true;
        return GW_HTTP_REQUEST;
    }
    if (len == 0)
        return GW_HTTP_MORE;
    llhttp_errno_t e = llhttp_execute(&r->parser, data, len);
    if (e == HPE_OK) {
        *used = len;
        return GW_HTTP_MORE;
    }
    if (e == HPE_PAUSED) {
        *used = (size_t)(llhttp_get_error_pos(&r->parser) - data);
        llhttp_resume(&r->parser);
        if (r->done)
            llhttp_pause(&r->parser); /* whatever follows waits for gw_http_next */
        if (!r->headers_reported) {
            r->headers_reported = true;
            return GW_HTTP_HEADERS;
        }
        return GW_HTTP_REQUEST;
    }
    if (e >= HPE_CB_MESSAGE_BEGIN && e <= HPE_CB_RESET && r->detail[0] != '\0')
        return GW_HTTP_ERROR; /* ours: refusal and detail are set */
    r->refusal = refusal_of(e);
    llhttp_detail(r);
    if (r->detail[0] == '\0')
        snprintf(r->detail, sizeof(r->detail), "%s", "malformed request");
    return GW_HTTP_ERROR;
}

bool gw_http_set_body_max(gw_http_reader *r, size_t max, bool discard)
{
    r->body_max = max;
    r->discard_body = discard;
    if ((r->parser.flags & F_CHUNKED) || !(r->parser.flags & F_CONTENT_LENGTH))
        return true;
    if (r->parser.content_length > max) {
        refuse(r, GW_REF_BODY_TOO_LARGE, "the body is larger than the gateway accepts");
        return false;
    }
    if (discard)
        return true;
    size_t n = (size_t)r->parser.content_length;
    if (n == 0)
        return true;
    r->req.body = malloc(n);
    if (r->req.body == NULL) {
        refuse(r, GW_REF_OUT_OF_MEMORY, "the gateway is out of memory; retry later");
        return false;
    }
    r->body_cap = n;
    return true;
}

void gw_http_next(gw_http_reader *r)
{
    free(r->req.body);
    memset(&r->req, 0, sizeof(r->req));
    r->body_max = 0;
    r->body_cap = 0;
    r->body_seen = 0;
    r->header_bytes = 0;
    r->transfer_encodings = 0;
    r->discard_body = false;
    r->headers_done = false;
    r->headers_reported = false;
    r->prev_cr = false;
    r->line_start = false;
    r->started = false;
    r->done = false;
    r->detail[0] = '\0';
    llhttp_resume(&r->parser);
}

size_t gw_http_format_head(char *buf, size_t size, int status, const char *content_type,
                           const char *extra_headers, size_t body_len, bool keep_alive)
{
    char framing[128] = "";
    /* 204 and 304 have no content: no Content-Length (RFC 9110 8.6), nor
     * a type for content that is not there. */
    if (status != 204 && status != 304)
        snprintf(framing, sizeof(framing), "Content-Type: %s\r\nContent-Length: %zu\r\n",
                 content_type != NULL ? content_type : "application/json", body_len);
    int n = snprintf(buf, size, "HTTP/1.1 %d %s\r\n%sCache-Control: no-store\r\n%s%s\r\n", status,
                     gw_refusal_reason_phrase(status), framing,
                     keep_alive ? "" : "Connection: close\r\n",
                     extra_headers != NULL ? extra_headers : "");
    if (n < 0 || (size_t)n >= size)
        return 0;
    return (size_t)n;
}

size_t gw_http_format(char *buf, size_t size, int status, const char *extra_headers,
                      const char *body, size_t body_len, bool keep_alive, bool head)
{
    size_t len = gw_http_format_head(buf, size, status, NULL, extra_headers, body_len, keep_alive);
    if (len == 0)
        return 0;
    if (head || body_len == 0)
        return len;
    if (body_len > size - len)
        return 0;
    memcpy(buf + len, body, body_len);
    return len + body_len;
}

/* Appends s as JSON string content; false if it does not fit. */
static bool json_escape(char *buf, size_t size, size_t *off, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t n = 1;
        esc[0] = (char)c;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            n = 6;
        }
        if (*off + n >= size)
            return false;
        memcpy(buf + *off, esc, n);
        *off += n;
    }
    return true;
}

size_t gw_http_error_body(char *buf, size_t size, const char *error, const char *detail)
{
    size_t off = 0;
    bool ok = size > 0;
    static const char a[] = "{\"error\":\"", b[] = "\",\"detail\":\"", c[] = "\"}\n";
    ok = ok && sizeof(a) < size;
    if (ok) {
        memcpy(buf, a, sizeof(a) - 1);
        off = sizeof(a) - 1;
    }
    ok = ok && json_escape(buf, size, &off, error) && off + sizeof(b) < size;
    if (ok) {
        memcpy(buf + off, b, sizeof(b) - 1);
        off += sizeof(b) - 1;
    }
    ok = ok && json_escape(buf, size, &off, detail) && off + sizeof(c) <= size;
    if (!ok)
        return 0;
    memcpy(buf + off, c, sizeof(c) - 1);
    off += sizeof(c) - 1;
    buf[off] = '\0';
    return off;
}
