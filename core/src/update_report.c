/* The update report's JSON (iotd_update_report_json), written without
 * stdio: the core has no printf on the device. */
#include "iotd/update.h"

#include <string.h>

#include "json_out.h"

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
    iotd__out o = {buf, cap, 0, cap == 0};
    iotd__put_str(&o, "{\"status\":\"");
    iotd__put_str(&o, iotd_update_status_name(rep->status));
    if (reason[0] != '\0') {
        iotd__put_str(&o, "\",\"reason\":\"");
        iotd__put_str(&o, reason);
    }
    iotd__put_str(&o, "\",\"sequence\":");
    iotd__put_u64(&o, rep->sequence);
    iotd__put_str(&o, ",\"offset\":");
    iotd__put_u64(&o, rep->offset);
    iotd__put_str(&o, ",\"size\":");
    iotd__put_u64(&o, rep->size);
    iotd__put_mem(&o, "}", 1);
    if (o.full)
        return IOTD_ENOSPC;
    buf[o.len] = '\0';
    *len = o.len;
    return IOTD_OK;
}
