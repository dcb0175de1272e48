/* HTTP/1.1 requests in, answers out, with no socket: the request reader of
 * the device and admin listeners (llhttp, strict: no lenient flags) and
 * their response writer.
 *
 * The reader is fed bytes as they arrive and stops twice per request:
 * once the headers are in (GW_HTTP_HEADERS: the caller routes the request
 * and sets its body limit), and once it is whole (GW_HTTP_REQUEST). It then
 * stays paused, whatever bytes follow, until gw_http_next(): pipelined
 * requests are read one at a time, each after the previous one's answer.
 *
 * Refused (GW_HTTP_ERROR, with a refusal and a detail), besides what llhttp
 * itself refuses (two Content-Length headers, a sign or any other byte in
 * one, Transfer-Encoding with Content-Length, chunk sizes that are not bare
 * hex, chunk data without its CRLF, a space before a colon, bytes a header
 * or the target may not hold): a Transfer-Encoding other than exactly
 * "chunked", a line ended by a lone LF, an obsolete line folding, header
 * lines over
 * GW_HTTP_HEADERS_MAX bytes in all, a target
 * longer than GW_HTTP_TARGET_MAX, a version other than 1.0 and 1.1,
 * CONNECT and Upgrade, and a body over the limit the caller set. Every
 * error ends the connection: after one, the framing of what follows is
 * unknown.
 */
#ifndef GW_HTTP1_H
#define GW_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

#include <llhttp.h>

#include "refusal.h"

#define GW_HTTP_HEADERS_MAX   (8 * 1024)
#define GW_HTTP_TARGET_MAX    512
#define GW_HTTP_CTYPE_MAX     128
#define GW_HTTP_DEVICE_ID_MAX 64
#define GW_HTTP_DETAIL_MAX    160
#define GW_HTTP_AUTH_MAX      320 /* "Bearer " and the admin token */
#define GW_HTTP_RANGE_MAX                                                                          \
    96 /* Range, If-Range, If-None-Match: longer is refused (416) or                               \
          never matches */

typedef enum gw_http_status {
    GW_HTTP_MORE,    /* all bytes taken; feed more */
    GW_HTTP_HEADERS, /* headers complete: route, then gw_http_set_body_max, feed the rest
                        (a request without a body may be whole already: feed again,
                        with no bytes if none are left) */
    GW_HTTP_REQUEST, /* a whole request; paused until gw_http_next */
    GW_HTTP_ERROR,   /* refused: answer and close */
} gw_http_status;

typedef struct gw_http_request {
    llhttp_method_t method;
    char target[GW_HTTP_TARGET_MAX + 1]; /* raw request target, as sent */
    size_t target_len;
    char content_type[GW_HTTP_CTYPE_MAX + 1];  /* "" if none (or too long) */
    char device_id[GW_HTTP_DEVICE_ID_MAX + 1]; /* X-Device-Id, "" if none */
    char authorization[GW_HTTP_AUTH_MAX + 1];  /* "" if none (or too long) */
    bool expect_continue;                      /* Expect: 100-continue, with a body to come */
    /* Range requests (updates.c). A field given twice or longer than
     * GW_HTTP_RANGE_MAX is kept as "" with its flag set, so it can never
     * pass for a valid one. */
    char range[GW_HTTP_RANGE_MAX + 1];
    bool has_range;
    bool range_bad; /* twice, or too long */
    char if_range[GW_HTTP_RANGE_MAX + 1];
    bool has_if_range;
    char if_none_match[GW_HTTP_RANGE_MAX + 1];
    bool has_if_none_match;
    bool keep_alive; /* valid at GW_HTTP_REQUEST */
    bool has_body;   /* a Content-Length or chunked body follows the headers */
    unsigned char *body;
    size_t body_len;
} gw_http_request;

typedef struct gw_http_reader {
    llhttp_t parser;
    llhttp_settings_t settings;
    gw_http_request req;
    size_t body_max;
    size_t body_cap;
    size_t body_seen; /* kept or not */
    size_t header_bytes;
    char field[32]; /* the header name being read (longer names are not ours) */
    size_t field_len;
    char value[GW_HTTP_AUTH_MAX + 1]; /* its value, when it is one we keep */
    size_t value_len;
    bool value_long;
    int transfer_encodings;
    bool discard_body; /* the request is refused already: its body is read, not kept */
    bool headers_done, headers_reported, done;
    bool prev_cr, line_start, started; /* raw header byte state (line rules) */
    gw_refusal refusal;
    char detail[GW_HTTP_DETAIL_MAX];
    /* Optional (NULL by default): called with each header the reader
     * does not keep itself, trimmed, at most GW_HTTP_AUTH_MAX bytes
     * (too_long: the value was cut, and must not be trusted). For a server
     * on this layer that reads other headers (the console: Cookie, Origin,
     * X-CSRF-Token) without every gateway connection paying for them. */
    void (*other_header)(void *ctx, const char *name, const char *value, bool too_long);
    void *other_header_ctx;
} gw_http_reader;

void gw_http_reader_init(gw_http_reader *r);
/* Frees the body; the reader may be initialised again. */
void gw_http_reader_free(gw_http_reader *r);

/* Feeds len bytes; *used tells how many were taken (all, unless the reader
 * stopped at GW_HTTP_HEADERS or GW_HTTP_REQUEST: feed the rest later). On
 * GW_HTTP_ERROR, r->refusal and r->detail say why. */
gw_http_status gw_http_feed(gw_http_reader *r, const char *data, size_t len, size_t *used);

/* After GW_HTTP_HEADERS: the body may hold up to max bytes (more is
 * GW_REF_BODY_TOO_LARGE); discard: read it but keep none of it (the
 * request is refused already, and is answered once read, so that the
 * connection can go on). Returns false, with the refusal set, if the
 * announced Content-Length is over max. */
bool gw_http_set_body_max(gw_http_reader *r, size_t max, bool discard);

/* After the answer to a GW_HTTP_REQUEST is sent: ready for the next one. */
void gw_http_next(gw_http_reader *r);

/* The head of an answer into buf: status line, Content-Type (NULL:
 * application/json), Cache-Control no-store, Content-Length body_len,
 * Connection: close unless keep_alive, extra header lines (each ending in
 * CRLF; may be NULL) and the empty line. Returns its length, or 0 if it
 * does not fit. */
size_t gw_http_format_head(char *buf, size_t size, int status, const char *content_type,
                           const char *extra_headers, size_t body_len, bool keep_alive);

/* An answer, whole, into buf: the head (JSON), then the body unless head
 * (the answer to HEAD). Returns its length, or 0 if it does not fit. */
size_t gw_http_format(char *buf, size_t size, int status, const char *extra_headers,
                      const char *body, size_t body_len, bool keep_alive, bool head);

/* {"error":"<error>","detail":"<detail>"} into buf, the detail escaped as
 * a JSON string; returns its length (0 if it does not fit). */
size_t gw_http_error_body(char *buf, size_t size, const char *error, const char *detail);

#endif
