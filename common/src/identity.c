#include "iot/identity.h"

#include <string.h>

bool iot_id_is_valid(const char *s)
{
    return iotd_protocol_device_id_valid(s);
}

iot_status iot_id_check(const char *what, const char *s, iot_err *err)
{
    size_t at = 0;
    unsigned char c;

    switch (iotd_protocol_device_id_check(s, &at)) {
    case IOTD_PROTOCOL_OK:
        return IOT_OK;
    case IOTD_PROTOCOL_EMPTY:
        return iot_err_set(err, IOT_EINVAL, "%s is empty; use 1-%d characters of [A-Za-z0-9._-]",
                           what, IOT_ID_MAX);
    case IOTD_PROTOCOL_TOO_LONG:
        return iot_err_set(err, IOT_EINVAL, "%s is longer than %d characters", what, IOT_ID_MAX);
    case IOTD_PROTOCOL_BAD_FIRST:
        return iot_err_set(err, IOT_EINVAL, "%s '%s' starts with a dot", what, s);
    case IOTD_PROTOCOL_BAD_CHAR:
        break;
    }
    c = (unsigned char)s[at];
    /* The offending byte is shown as hex: it may be a control char. */
    return iot_err_set(err, IOT_EINVAL,
                       "%s has a character 0x%02x at position %zu that is not one of "
                       "[A-Za-z0-9._-]",
                       what, c, at + 1);
}

static bool dns_label_ok(const char *label, size_t len)
{
    if (len == 0 || len > 63 || label[0] == '-' || label[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = label[i];
        bool ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool iot_dns_name_is_valid(const char *s)
{
    if (s == NULL)
        return false;
    size_t total = strnlen(s, 254);
    if (total == 0 || total > 253)
        return false;
    const char *label = s;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t len = dot ? (size_t)(dot - label) : strlen(label);
        if (!dns_label_ok(label, len))
            return false;
        if (!dot)
            return true;
        label = dot + 1;
    }
}
