#include "request.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Header block without the body; the largest fits in this. */
#define HEADER_MAX 512
/* One reading (two records) of either body format, at most. */
#define READING_MAX 160

typedef struct out {
    char *p;
    size_t len, cap;
    int full;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = 1;
        return;
    }
    o->len += (size_t)n;
}

/* RFC 8428 pack: bn and bt on the first record, `seq` opening each reading. */
static void senml(out *o, const lg_options *opt, const char *device, uint32_t seq, const char *t)
{
    put(o, "[");
    for (uint32_t i = 0; i < (uint32_t)opt->batch; i++) {
        if (i == 0)
            put(o, "{\"bn\":\"%s:\",\"bt\":%s,", device, t);
        else
            put(o, ",{");
        put(o, "\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5");
        if (seq != 0)
            put(o, ",\"seq\":%" PRIu32, seq + i);
        put(o, "},{\"n\":\"humidity\",\"u\":\"%%RH\",\"v\":48.2}");
    }
    put(o, "]");
}

/* The original ESP32 format: an object of named numbers per reading. */
static void plain_json(out *o, const lg_options *opt, uint32_t seq, const char *t)
{
    if (opt->batch > 1)
        put(o, "[");
    for (uint32_t i = 0; i < (uint32_t)opt->batch; i++) {
        put(o, "%s{", i ? "," : "");
        if (seq != 0)
            put(o, "\"seq\":%" PRIu32 ",", seq + i);
        put(o, "\"t\":%s,\"temperature\":21.5,\"humidity\":48.2}", t);
    }
    if (opt->batch > 1)
        put(o, "]");
}

size_t lg_request_cap(const lg_options *o)
{
    return HEADER_MAX + (size_t)o->batch * READING_MAX + 128;
}

static void body(out *o, const lg_options *opt, const char *device, uint32_t seq, uint64_t t_ns)
{
    char t[32];
    snprintf(t, sizeof(t), "%" PRIu64 ".%06" PRIu64, t_ns / 1000000000u,
             (t_ns % 1000000000u) / 1000u);
    if (opt->json_body)
        plain_json(o, opt, seq, t);
    else
        senml(o, opt, device, seq, t);
}

size_t lg_request_build(const lg_options *opt, const char *device, uint32_t seq, uint64_t t_ns,
                        char *buf, size_t cap)
{
    if (cap <= HEADER_MAX)
        return 0;
    /* The body goes after room for the headers, which are then written
     * right in front of it. */
    out b = {buf + HEADER_MAX, 0, cap - HEADER_MAX, 0};
    body(&b, opt, device, seq, t_ns);
    char head[HEADER_MAX];
    out h = {head, 0, sizeof(head), 0};
    put(&h, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n",
        opt->path, opt->sni, opt->json_body ? "application/json" : "application/senml+json", b.len);
    if (opt->plain)
        put(&h, "X-Device-Id: %s\r\n", device);
    put(&h, "\r\n");
    if (b.full || h.full)
        return 0;
    memmove(buf, head, h.len);
    memmove(buf + h.len, buf + HEADER_MAX, b.len);
    return h.len + b.len;
}

size_t lg_request_body_len(const lg_options *opt, const char *device)
{
    char buf[HEADER_MAX + 4 * READING_MAX];
    lg_options one = *opt;
    one.batch = 1;
    out b = {buf, 0, sizeof(buf), 0};
    body(&b, &one, device, 1, 1764086400000000000u);
    return b.full ? 0 : b.len;
}
