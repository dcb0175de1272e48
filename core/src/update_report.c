/* The update report's JSON (iotd_update_report_json), written without
 * stdio: the core has no printf on the device. */
#include "iotd/update.h"

#include <string.h>

#define U64_MAX_CHARS 20u /* 18446744073709551615 */

/* Appends to buf, always keeping one byte for the NUL; once something
 * does not fit, everything after it is refused too. */
typedef struct out {
    char *buf;
    size_t cap;
    size_t len;
    bool full;
} out;

static void put_mem(out *o, const char *s, size_t n)
{
    if (o->full || n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(out *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_u64(out *o, uint64_t v)
{
    char d[U64_MAX_CHARS];
    size_t n = sizeof(d);
    do {
        d[--n] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v != 0);
    put_mem(o, d + n, sizeof(d) - n);
}

/* The reasons are the core's own names; one that would need escaping is
 * not one of them, and the gateway must never get broken JSON. */
static bool reason_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

iotd_status iotd_update_report_json(const iotd_update_report *rep, char *buf, size_t cap,
                                    size_t *len)
{
    if (rep == NULL || buf == NULL || len == NULL)
        return IOTD_EINVAL;
    const char *reason = rep->reason != NULL ? rep->reason : "";
    if ((unsigned)rep->status > (unsigned)IOTD_UPDATE_ROLLED_BACK || !reason_ok(reason))
        return IOTD_EINVAL;
    out o = {buf, cap, 0, cap == 0};
    put_str(&o, "{\"status\":\"");
    put_str(&o, iotd_update_status_name(rep->status));
    if (reason[0] != '\0') {
        put_str(&o, "\",\"reason\":\"");
        put_str(&o, reason);
    }
    put_str(&o, "\",\"sequence\":");
    put_u64(&o, rep->sequence);
    put_str(&o, ",\"offset\":");
    put_u64(&o, rep->offset);
    put_str(&o, ",\"size\":");
    put_u64(&o, rep->size);
    put_mem(&o, "}", 1);
    if (o.full)
        return IOTD_ENOSPC;
    buf[o.len] = '\0';
    *len = o.len;
    return IOTD_OK;
}
