#include "iot/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *iot_strerror(iot_status status)
{
    switch (status) {
    case IOT_OK:
        return "success";
    case IOT_EINVAL:
        return "invalid value";
    case IOT_EEXIST:
        return "already exists";
    case IOT_ENOENT:
        return "not found";
    case IOT_EPERM:
        return "unsafe permissions or access denied";
    case IOT_EIO:
        return "input/output error";
    case IOT_EBUSY:
        return "locked by another process";
    case IOT_ECORRUPT:
        return "corrupt data";
    case IOT_ECRYPTO:
        return "cryptographic failure";
    case IOT_ENOMEM:
        return "out of memory or size limit reached";
    case IOT_ESTATE:
        return "wrong state for this operation";
    }
    return "unknown status";
}

iot_status iot_err_set(iot_err *err, iot_status status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return status;
}

iot_status iot_err_wrap(iot_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return IOT_EINVAL;
    char prefix[IOT_ERR_MSG_MAX];
    char old[IOT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    /* Truncation is acceptable: the message stays a readable prefix. */
    if (snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old) < 0)
        err->msg[0] = '\0';
    return err->status;
}
