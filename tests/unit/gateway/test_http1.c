/* The request reader and the response writer, fed bytes directly: what is
 * refused, where each request ends, pipelining, and the answer's shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "http1.h"

/* Feeds s to a new reader in pieces of `step` bytes, answering the headers
 * stop with a body limit of 64; returns the final status. */
static gw_http_status feed_all(gw_http_reader *r, const char *s, size_t len, size_t step,
                               size_t *consumed)
{
    size_t off = 0;
    gw_http_status st = GW_HTTP_MORE;
    for (;;) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        st = gw_http_feed(r, s + off, n, &used);
        off += used;
        if (st == GW_HTTP_HEADERS) {
            if (!gw_http_set_body_max(r, 64, false))
                return GW_HTTP_ERROR;
            continue;
        }
        if (st != GW_HTTP_MORE || off == len)
            break;
    }
    *consumed = off;
    return st;
}

static void expect_refused(const char *req, gw_refusal why)
{
    for (size_t step = 1; step <= strlen(req); step = step == 1 ? strlen(req) : step + 1) {
        gw_http_reader r;
        size_t used;
        gw_http_reader_init(&r);
        gw_http_status st = feed_all(&r, req, strlen(req), step, &used);
        if (st != GW_HTTP_ERROR || r.refusal != why)
            print_error("request %s (step %zu): status %d refusal %d (%s)\n", req, step, st,
                        r.refusal, r.detail);
        assert_int_equal(st, GW_HTTP_ERROR);
        assert_int_equal(r.refusal, why);
        assert_true(r.detail[0] != '\0');
        gw_http_reader_free(&r);
    }
}

#define POST "POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\n"
#define BODY "{\"seq\":1,\"x\":7}"

static void framing_refused(void **state)
{
    (void)state;
    expect_refused(POST "Content-Length: 15\r\nContent-Length: 16\r\n\r\n" BODY "x",
                   GW_REF_HTTP_FRAMING);
    expect_refused(POST "Content-Length: 15\r\nContent-Length: 15\r\n\r\n" BODY,
                   GW_REF_HTTP_FRAMING);
    expect_refused(POST "Content-Length: +15\r\n\r\n" BODY, GW_REF_HTTP_FRAMING);
    expect_refused(POST "Content-Length: 1 5\r\n\r\n" BODY, GW_REF_HTTP_FRAMING);
    expect_refused(POST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", GW_REF_HTTP_FRAMING);
    expect_refused(POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                   GW_REF_HTTP_FRAMING);
    expect_refused(POST "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
                   GW_REF_HTTP_FRAMING);
    expect_refused(POST "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
                   GW_REF_HTTP_FRAMING);
    expect_refused(POST "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
                   GW_REF_HTTP_FRAMING);
}

static void syntax_refused(void **state)
{
    (void)state;
    expect_refused(POST "Content-Length : 15\r\n\r\n" BODY, GW_REF_HTTP_MALFORMED);
    expect_refused("POST /v1/telemetry HTTP/1.1\nHost: gw\r\n\r\n", GW_REF_HTTP_MALFORMED);
    expect_refused(POST "X-A: a\r\n b\r\n\r\n", GW_REF_HTTP_MALFORMED);
    expect_refused(POST "X-A: a\001b\r\n\r\n", GW_REF_HTTP_MALFORMED);
    expect_refused("CONNECT gw:443 HTTP/1.1\r\nHost: gw\r\n\r\n", GW_REF_HTTP_MALFORMED);
    expect_refused(POST "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n", GW_REF_HTTP_MALFORMED);
    expect_refused("POST /v1/telemetry HTTP/1.2\r\n\r\n", GW_REF_HTTP_VERSION);
}

static void limits_refused(void **state)
{
    (void)state;
    expect_refused(POST "Content-Length: 65\r\n\r\n", GW_REF_BODY_TOO_LARGE);
    expect_refused(POST "Transfer-Encoding: chunked\r\n\r\n41\r\n", GW_REF_BODY_TOO_LARGE);
    char big[GW_HTTP_HEADERS_MAX + 200];
    int n = snprintf(big, sizeof(big), "%s", POST);
    while ((size_t)n < GW_HTTP_HEADERS_MAX + 50)
        n += snprintf(big + n, sizeof(big) - (size_t)n, "X-Filler: 0123456789\r\n");
    snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
    expect_refused(big, GW_REF_HTTP_HEADERS_TOO_LARGE);
}

/* Two requests in one buffer: the reader stops after the first and reads
 * the second only after gw_http_next. */
static void pipelined(void **state)
{
    (void)state;
    const char two[] =
        POST "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n" BODY POST
             "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    gw_http_reader r;
    size_t used;
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, two, sizeof(two) - 1, sizeof(two), &used), GW_HTTP_REQUEST);
    assert_int_equal(r.req.method, HTTP_POST);
    assert_string_equal(r.req.target, "/v1/telemetry");
    assert_string_equal(r.req.content_type, "application/json");
    assert_int_equal(r.req.body_len, 15);
    assert_memory_equal(r.req.body, BODY, 15);
    assert_true(r.req.keep_alive);
    size_t first = used;
    size_t again = 0;
    assert_int_equal(gw_http_feed(&r, two + first, sizeof(two) - 1 - first, &again),
                     GW_HTTP_REQUEST); /* paused until the answer is out */
    assert_int_equal(again, 0);
    gw_http_next(&r);
    assert_int_equal(feed_all(&r, two + first, sizeof(two) - 1 - first, 7, &used), GW_HTTP_REQUEST);
    assert_int_equal(first + used, sizeof(two) - 1);
    assert_int_equal(r.req.body_len, 3);
    assert_memory_equal(r.req.body, "abc", 3);
    assert_false(r.req.keep_alive);
    gw_http_reader_free(&r);
}

static void keep_alive_and_expect(void **state)
{
    (void)state;
    const char v10[] = "GET /x HTTP/1.0\r\n\r\n";
    const char v10ka[] = "GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    const char cont[] = POST "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    gw_http_reader r;
    size_t used;
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, v10, sizeof(v10) - 1, 100, &used), GW_HTTP_REQUEST);
    assert_false(r.req.keep_alive);
    gw_http_reader_free(&r);
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, v10ka, sizeof(v10ka) - 1, 100, &used), GW_HTTP_REQUEST);
    assert_true(r.req.keep_alive);
    gw_http_reader_free(&r);
    gw_http_reader_init(&r);
    assert_int_equal(gw_http_feed(&r, cont, sizeof(cont) - 1, &used), GW_HTTP_HEADERS);
    assert_true(r.req.expect_continue);
    assert_true(r.req.has_body);
    gw_http_reader_free(&r);
}

static void answers(void **state)
{
    (void)state;
    char body[128], out[512];
    size_t blen = gw_http_error_body(body, sizeof(body), "not_found", "a \"quoted\"\nline");
    assert_string_equal(body,
                        "{\"error\":\"not_found\",\"detail\":\"a \\\"quoted\\\"\\u000aline\"}\n");
    size_t n = gw_http_format(out, sizeof(out), 404, "Allow: POST\r\n", body, blen, false, false);
    assert_true(n > blen);
    out[n] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 404 Not Found\r\n"));
    assert_non_null(strstr(out, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(out, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_non_null(strstr(out, "Allow: POST\r\n\r\n{"));
    char cl[32];
    snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
    assert_non_null(strstr(out, cl));
    /* HEAD: the same headers, no body. */
    n = gw_http_format(out, sizeof(out), 405, NULL, body, blen, true, true);
    out[n] = '\0';
    assert_non_null(strstr(out, cl));
    assert_null(strstr(out, "Connection: close"));
    assert_int_equal(strcmp(out + n - 4, "\r\n\r\n"), 0);
    assert_int_equal(gw_http_format(out, 40, 200, NULL, body, blen, true, false), 0);
}

/* The admin listener's needs: the bearer token is kept (a header too long
 * for it is kept as none), and an answer may be other than JSON. */
static void authorization_and_content_type(void **state)
{
    (void)state;
    char req[1024], out[256];
    gw_http_reader r;
    size_t used;
    const char ok[] = "GET /metrics HTTP/1.1\r\nAuthorization: Bearer abc  \r\n\r\n";
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, ok, sizeof(ok) - 1, 5, &used), GW_HTTP_REQUEST);
    assert_string_equal(r.req.authorization, "Bearer abc");
    assert_string_equal(r.req.content_type, "");
    gw_http_reader_free(&r);
    char token[GW_HTTP_AUTH_MAX + 1];
    memset(token, 'a', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nAuthorization: B%s\r\n\r\n", token);
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, req, strlen(req), 100, &used), GW_HTTP_REQUEST);
    assert_string_equal(r.req.authorization, "");
    gw_http_reader_free(&r);
    /* A Content-Type longer than its field is none, not a cut one. */
    snprintf(req, sizeof(req), "GET /metrics HTTP/1.1\r\nContent-Type: %.200s\r\n\r\n", token);
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, req, strlen(req), 100, &used), GW_HTTP_REQUEST);
    assert_string_equal(r.req.content_type, "");
    gw_http_reader_free(&r);
    size_t n =
        gw_http_format_head(out, sizeof(out), 200, "text/plain; version=0.0.4", NULL, 10, true);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4\r\n"));
    assert_non_null(strstr(out, "Content-Length: 10\r\n"));
    assert_int_equal(strcmp(out + n - 4, "\r\n\r\n"), 0);
}

/* Range fields for image downloads: kept when given once and short; a
 * second Range, or one too long, is marked bad so it is never served. */
/* The hook for headers the reader does not keep (the console's Cookie,
 * Origin, X-CSRF-Token): each such header once, trimmed, a cut one
 * flagged; those the reader keeps (Content-Type) are not passed on. */
typedef struct seen_headers {
    char names[4][32];
    char values[4][GW_HTTP_AUTH_MAX + 1];
    bool cut[4];
    int n;
} seen_headers;

static void record_header(void *ctx, const char *name, const char *value, bool too_long)
{
    seen_headers *s = ctx;
    if (s->n == 4)
        return;
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    snprintf(s->values[s->n], sizeof(s->values[0]), "%s", value);
    s->cut[s->n++] = too_long;
}

static void other_headers_hook(void **state)
{
    (void)state;
    char req[1024], big[GW_HTTP_AUTH_MAX + 40];
    memset(big, 'c', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req),
             "POST /x HTTP/1.1\r\nCookie: a=b  \r\nContent-Type: text/plain\r\n"
             "Origin: https://h\r\nX-Csrf-Token: %s\r\nContent-Length: 0\r\n\r\n",
             big);
    gw_http_reader r;
    seen_headers s = {0};
    size_t used;
    gw_http_reader_init(&r);
    r.other_header = record_header;
    r.other_header_ctx = &s;
    assert_int_equal(feed_all(&r, req, strlen(req), 7, &used), GW_HTTP_REQUEST);
    assert_int_equal(s.n, 4); /* Content-Length too: llhttp reads it, the reader keeps none */
    assert_string_equal(s.names[3], "Content-Length");
    assert_string_equal(s.names[0], "Cookie");
    assert_string_equal(s.values[0], "a=b");
    assert_false(s.cut[0]);
    assert_string_equal(s.names[1], "Origin");
    assert_string_equal(s.values[1], "https://h");
    assert_string_equal(s.names[2], "X-Csrf-Token");
    assert_true(s.cut[2]);
    assert_string_equal(r.req.content_type, "text/plain");
    gw_http_reader_free(&r);
}

static void range_fields(void **state)
{
    (void)state;
    gw_http_reader r;
    size_t used;
    const char once[] = "GET /i HTTP/1.1\r\nRange: bytes=0-9\r\nIf-Range: \"ab\"\r\n"
                        "If-None-Match: \"cd\"\r\n\r\n";
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, once, sizeof(once) - 1, 3, &used), GW_HTTP_REQUEST);
    assert_true(r.req.has_range);
    assert_false(r.req.range_bad);
    assert_string_equal(r.req.range, "bytes=0-9");
    assert_true(r.req.has_if_range);
    assert_string_equal(r.req.if_range, "\"ab\"");
    assert_string_equal(r.req.if_none_match, "\"cd\"");
    gw_http_reader_free(&r);
    const char twice[] = "GET /i HTTP/1.1\r\nRange: bytes=0-9\r\nrange: bytes=10-19\r\n"
                         "If-Range: \"ab\"\r\nIf-Range: \"ab\"\r\n\r\n";
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, twice, sizeof(twice) - 1, 7, &used), GW_HTTP_REQUEST);
    assert_true(r.req.has_range);
    assert_true(r.req.range_bad);
    assert_string_equal(r.req.range, "");
    assert_string_equal(r.req.if_range, "");
    gw_http_reader_free(&r);
    char req[512], big[GW_HTTP_RANGE_MAX + 2];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    snprintf(req, sizeof(req), "GET /i HTTP/1.1\r\nRange: bytes=%s-\r\n\r\n", big);
    gw_http_reader_init(&r);
    assert_int_equal(feed_all(&r, req, strlen(req), 50, &used), GW_HTTP_REQUEST);
    assert_true(r.req.range_bad);
    assert_string_equal(r.req.range, "");
    gw_http_reader_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_refused),       cmocka_unit_test(syntax_refused),
        cmocka_unit_test(limits_refused),        cmocka_unit_test(pipelined),
        cmocka_unit_test(keep_alive_and_expect), cmocka_unit_test(answers),
        cmocka_unit_test(range_fields),          cmocka_unit_test(authorization_and_content_type),
        cmocka_unit_test(other_headers_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
