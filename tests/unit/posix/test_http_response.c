/* Reading the gateway's responses with http-parser: status, Retry-After in
 * both forms, the body cut to the caller's buffer, keep-alive, responses
 * split anywhere, and what must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "iotd_posix/http_response.h"

/* 2026-11-25T16:50:00Z */
static const int64_t NOW = 1795625400;

static iotd_posix_http_rc feed_all(iotd_posix_http_response *r, const char *text)
{
    return iotd_posix_http_response_feed(r, text, strlen(text));
}

static void ok_with_body_and_keep_alive(void **st)
{
    (void)st;
    static const char RESP[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Content-Length: 29\r\n\r\n{\"stored\":3,\"duplicates\":1}\n\n";
    char body[64];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, RESP), IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 200);
    assert_false(r.has_retry_after);
    assert_int_equal(r.body_len, 29);
    assert_memory_equal(body, "{\"stored\":3,\"duplicates\":1}\n\n", 29);
    assert_true(r.keep_alive);

    /* The same bytes one at a time. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    iotd_posix_http_rc rc = IOTD_POSIX_HTTP_MORE;
    for (size_t i = 0; i < sizeof(RESP) - 1; i++) {
        assert_int_equal(rc, IOTD_POSIX_HTTP_MORE);
        rc = iotd_posix_http_response_feed(&r, RESP + i, 1);
    }
    assert_int_equal(rc, IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 29);
    assert_true(r.keep_alive);
}

static void body_is_cut_to_the_buffer(void **st)
{
    (void)st;
    char body[8];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 40\r\n\r\n"
                                  "{\"error\":\"invalid_unit\",\"detail\":\"u\"}   "),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 422);
    assert_int_equal(r.body_len, 8);
    assert_int_equal(r.body_total, 40);
    assert_memory_equal(body, "{\"error\"", 8);

    /* No buffer at all: status only. */
    iotd_posix_http_response_init(&r, NULL, 100, NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.body_len, 0);
    assert_int_equal(r.body_total, 2);
}

static void chunked_body(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.body_len, 11);
    assert_memory_equal(body, "hello world", 11);
    assert_true(r.keep_alive);
}

static void retry_after_seconds_and_dates(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 503 Service Unavailable\r\nRETRY-after:  7 \r\n"
                                  "Content-Length: 0\r\n\r\n"),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 503);
    assert_true(r.has_retry_after);
    assert_int_equal(r.retry_after_s, 7);

    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 429 Too Many Requests\r\n"
                                  "Retry-After: Wed, 25 Nov 2026 16:51:30 GMT\r\n"
                                  "Content-Length: 0\r\n\r\n"),
                     IOTD_POSIX_HTTP_DONE);
    assert_true(r.has_retry_after);
    assert_int_equal(r.retry_after_s, 90);

    /* Unusable values are not a Retry-After: the core backs off instead. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(
        feed_all(&r, "HTTP/1.1 503 x\r\nRetry-After: soon\r\nContent-Length: 0\r\n\r\n"),
        IOTD_POSIX_HTTP_DONE);
    assert_false(r.has_retry_after);

    /* A device whose clock is not set yet (the ESP32 before SNTP): an
     * HTTP-date cannot be measured, delta-seconds still can. */
    iotd_posix_http_response_init(&r, body, sizeof(body), 0);
    r.now_known = false;
    assert_int_equal(feed_all(&r, "HTTP/1.1 429 Too Many Requests\r\n"
                                  "Retry-After: Wed, 25 Nov 2026 16:51:30 GMT\r\n"
                                  "Content-Length: 0\r\n\r\n"),
                     IOTD_POSIX_HTTP_DONE);
    assert_false(r.has_retry_after);
    iotd_posix_http_response_init(&r, body, sizeof(body), 0);
    r.now_known = false;
    assert_int_equal(feed_all(&r, "HTTP/1.1 503 x\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n"),
                     IOTD_POSIX_HTTP_DONE);
    assert_true(r.has_retry_after);
    assert_int_equal(r.retry_after_s, 30);
}

/* A 206 answer with the Content-Range header in its header block. */
static bool range_of(const char *content_range, iotd_posix_http_response *r)
{
    char text[256];
    char body[8];
    snprintf(text, sizeof(text),
             "HTTP/1.1 206 Partial Content\r\nContent-Range: %s\r\nContent-Length: 4\r\n\r\n"
             "abcd",
             content_range);
    iotd_posix_http_response_init(r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(r, text), IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r->status, 206);
    return r->has_range;
}

static void content_range_is_read_strictly(void **st)
{
    (void)st;
    iotd_posix_http_response r;
    assert_true(range_of("bytes 4096-8191/1048576", &r));
    assert_int_equal(r.range_first, 4096);
    assert_int_equal(r.range_last, 8191);
    assert_int_equal(r.range_total, 1048576);
    assert_true(range_of("Bytes 0-0/1 ", &r));
    assert_int_equal(r.range_first, 0);
    assert_int_equal(r.range_last, 0);
    assert_int_equal(r.range_total, 1);
    /* An unknown total is 0. */
    assert_true(range_of("bytes 10-19/*", &r));
    assert_int_equal(r.range_first, 10);
    assert_int_equal(r.range_last, 19);
    assert_int_equal(r.range_total, 0);
    assert_true(range_of("bytes 0-4294967294/4294967295", &r));
    assert_int_equal(r.range_last, 4294967294u);

    static const char *const bad[] = {
        "bytes */1000",          /* unsatisfied: no range */
        "items 0-9/10",          /* another unit */
        "bytes 0-9",             /* no total */
        "bytes 9-0/10",          /* backwards */
        "bytes 0-10/10",         /* past the end */
        "bytes 0-9/10x",         /* trailing junk */
        "bytes -1-9/10",         /* a sign */
        "bytes 0-9/4294967296",  /* over 32 bits */
        "bytes 0-99999999999/*", /* over 32 bits */
        "bytes 0-4294967295/*",  /* a length over 32 bits */
        "bytes  0-9/10",         /* two spaces */
        "bytes 0 - 9/10",        /* spaces inside */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(range_of(bad[i], &r));
    }

    /* Only the final response's header counts, and a header name that merely
     * starts alike is another header. */
    char body[8];
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 100 Continue\r\nContent-Range: bytes 0-1/2\r\n\r\n"
                                  "HTTP/1.1 200 OK\r\nContent-Range-X: bytes 0-1/2\r\n"
                                  "Content-Length: 2\r\n\r\nok"),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 200);
    assert_false(r.has_range);
}

static void connection_reuse_rules(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(
        feed_all(&r, "HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"),
        IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 403);
    assert_false(r.keep_alive);

    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
                     IOTD_POSIX_HTTP_DONE);
    assert_false(r.keep_alive);

    /* Bytes after the response: the stream is no longer in step. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200"),
                     IOTD_POSIX_HTTP_DONE);
    assert_false(r.keep_alive);
    assert_int_equal(r.body_len, 2);
}

static void body_until_close(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nbad"),
                     IOTD_POSIX_HTTP_MORE);
    assert_int_equal(iotd_posix_http_response_eof(&r), IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.body_len, 3);
    assert_false(r.keep_alive);

    /* Closed early: a declared length not reached is an error. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"st"),
                     IOTD_POSIX_HTTP_MORE);
    assert_int_equal(iotd_posix_http_response_eof(&r), IOTD_POSIX_HTTP_ERROR);
    assert_non_null(r.error);

    /* Closed before any byte. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(iotd_posix_http_response_eof(&r), IOTD_POSIX_HTTP_ERROR);
}

static void interim_and_bodiless_responses(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 100 Continue\r\n\r\n"
                                  "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
                     IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 201);
    assert_int_equal(r.body_len, 2);

    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 204 No Content\r\n\r\n"), IOTD_POSIX_HTTP_DONE);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    assert_true(r.keep_alive);
}

static void refuses_what_is_not_a_response(void **st)
{
    (void)st;
    char body[32];
    iotd_posix_http_response r;
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
        assert_int_equal(feed_all(&r, bad[i]), IOTD_POSIX_HTTP_ERROR);
        assert_non_null(r.error);
        /* An error sticks. */
        assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\n\r\n"), IOTD_POSIX_HTTP_ERROR);
    }
}

static void headers_are_capped(void **st)
{
    (void)st;
    static char big[IOTD_POSIX_HTTP_HEADER_MAX + 64];
    char body[32];
    iotd_posix_http_response r;
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    assert_int_equal(feed_all(&r, "HTTP/1.1 200 OK\r\nX-Filler: "), IOTD_POSIX_HTTP_MORE);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(feed_all(&r, big), IOTD_POSIX_HTTP_ERROR);
    assert_string_equal(r.error, "response headers too large");

    /* Many small headers add up the same way. */
    iotd_posix_http_response_init(&r, body, sizeof(body), NOW);
    iotd_posix_http_rc rc = feed_all(&r, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 2000 && rc == IOTD_POSIX_HTTP_MORE; i++)
        rc = feed_all(&r, "X-A: b\r\n");
    assert_int_equal(rc, IOTD_POSIX_HTTP_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ok_with_body_and_keep_alive),
        cmocka_unit_test(body_is_cut_to_the_buffer),
        cmocka_unit_test(chunked_body),
        cmocka_unit_test(retry_after_seconds_and_dates),
        cmocka_unit_test(content_range_is_read_strictly),
        cmocka_unit_test(connection_reuse_rules),
        cmocka_unit_test(body_until_close),
        cmocka_unit_test(interim_and_bodiless_responses),
        cmocka_unit_test(refuses_what_is_not_a_response),
        cmocka_unit_test(headers_are_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
