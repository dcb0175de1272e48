/* Internal to the core: appending JSON text to a caller's buffer without
 * stdio (the core has no printf on the device). Used by the update report
 * (update_report.c) and the health report (health.c). */
#ifndef IOTD_JSON_OUT_H
#define IOTD_JSON_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define IOTD__U64_MAX_CHARS 20u /* 18446744073709551615 */

/* Appends to buf, always keeping one byte for the NUL; once something
 * does not fit, everything after it is refused too. Start with
 * {buf, cap, 0, cap == 0}. */
typedef struct iotd__out {
    char *buf;
    size_t cap;
    size_t len;
    bool full;
} iotd__out;

static inline void iotd__put_mem(iotd__out *o, const char *s, size_t n)
{
    if (o->full || n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static inline void iotd__put_str(iotd__out *o, const char *s)
{
    iotd__put_mem(o, s, strlen(s));
}

static inline void iotd__put_u64(iotd__out *o, uint64_t v)
{
    char d[IOTD__U64_MAX_CHARS];
    size_t n = sizeof(d);
    do {
        d[--n] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    iotd__put_mem(o, d + n, sizeof(d) - n);
}

/* A signed value; never INT64_MIN here. */
static inline void iotd__put_i64(iotd__out *o, int64_t v)
{
    if (v < 0)
        iotd__put_mem(o, "-", 1u);
    iotd__put_u64(o, v < 0 ? (uint64_t)(-v) : (uint64_t)v);
}

#endif
