/* The gateway's HTTP/1.1 response, read with nodejs http-parser.
 *
 * Bytes from the connection are fed in as they arrive; the reader keeps
 * what the device core needs (status, Retry-After, Content-Range, the
 * first body_cap bytes of the body) and whether the connection may be
 * reused. Interim 1xx
 * responses are skipped. Headers are capped at IOTD_POSIX_HTTP_HEADER_MAX
 * bytes; the body is counted in full but stored only up to body_cap.
 * Portable (http-parser and the core only): the ESP-IDF port compiles it
 * with ESP-IDF's http_parser component, the same parser.
 */
#ifndef IOTD_POSIX_HTTP_RESPONSE_H
#define IOTD_POSIX_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#define IOTD_POSIX_HTTP_HEADER_MAX 8192

typedef enum iotd_posix_http_rc {
    IOTD_POSIX_HTTP_MORE = 0, /* the response is not complete yet: feed more */
    IOTD_POSIX_HTTP_DONE,     /* a complete final response was read */
    IOTD_POSIX_HTTP_ERROR,    /* not a valid HTTP/1.x response, or over a cap */
} iotd_posix_http_rc;

typedef struct iotd_posix_http_response {
    http_parser parser;
    int64_t now_s;  /* Unix time a Retry-After HTTP-date is measured from */
    bool now_known; /* true after init; false (set by a device without a
                     * clock yet) refuses HTTP-dates, keeps delta-seconds */
    char *body;     /* caller's buffer */
    size_t body_cap;

    /* results */
    int status;
    bool has_retry_after;
    uint32_t retry_after_s;
    bool has_range;       /* a valid "Content-Range: bytes first-last/total" came */
    uint32_t range_first; /* first */
    uint32_t range_last;  /* last, >= first */
    uint32_t range_total; /* total, > last; 0 when the server sent "*" */
    size_t body_len;      /* bytes stored in body, at most body_cap */
    size_t body_total;    /* bytes of body received */
    bool keep_alive;      /* the connection may carry the next request */
    bool complete;
    const char *error; /* why the response was refused (static string) */

    /* header state */
    size_t header_bytes;
    int capture;     /* which kept header the value being read belongs to */
    bool field_done; /* a value started since the last field piece */
    size_t field_len;
    char field[16]; /* enough for "retry-after", "content-range"; longer never match */
    size_t value_len;
    char value[64]; /* enough for any date format, delta-seconds and a byte range */
    bool value_overflow;
} iotd_posix_http_response;

/* Prepares r to read one response into body (body_cap bytes, may be 0). */
void iotd_posix_http_response_init(iotd_posix_http_response *r, char *body, size_t body_cap,
                                   int64_t now_s);

/* Feeds the next len bytes received. After DONE, bytes past the end of the
 * response are ignored (and make the connection unusable: keep_alive false). */
iotd_posix_http_rc iotd_posix_http_response_feed(iotd_posix_http_response *r, const char *data,
                                                 size_t len);

/* The connection was closed by the peer: DONE when that ends a response
 * whose body runs to the end of the connection, ERROR otherwise. */
iotd_posix_http_rc iotd_posix_http_response_eof(iotd_posix_http_response *r);

#endif
