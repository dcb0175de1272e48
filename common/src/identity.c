#include "iot/identity.h"

#include <string.h>

static bool id_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool iot_id_is_valid(const char *s)
{
    return iot_id_check("ID", s, NULL) == IOT_OK;
}

iot_status iot_id_check(const char *what, const char *s, iot_err *err)
{
    if (s == NULL || s[0] == '\0')
        return iot_err_set(err, IOT_EINVAL, "%s is empty; use 1-%d characters of [A-Za-z0-9._-]",
                           what, IOT_ID_MAX);
    size_t len = strnlen(s, IOT_ID_MAX + 1);
    if (len > IOT_ID_MAX)
        return iot_err_set(err, IOT_EINVAL, "%s is longer than %d characters", what, IOT_ID_MAX);
    if (s[0] == '.')
        return iot_err_set(err, IOT_EINVAL, "%s '%s' starts with a dot", what, s);
    for (size_t i = 0; i < len; i++) {
        if (!id_char_ok(s[i])) {
            unsigned char c = (unsigned char)s[i];
            /* The offending byte is shown as hex: it may be a control char. */
            return iot_err_set(err, IOT_EINVAL,
                               "%s has a character 0x%02x at position %zu that is not one of "
                               "[A-Za-z0-9._-]",
                               what, c, i + 1);
        }
    }
    return IOT_OK;
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
