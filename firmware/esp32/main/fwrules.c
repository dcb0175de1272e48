#include "fwrules.h"

#include <string.h>

static bool parse_mode(const char *text, iotd_update_mode *out)
{
    static const char *const names[] = {"auto", "window", "off"};
    static const iotd_update_mode modes[] = {IOTD_UPDATE_AUTO, IOTD_UPDATE_WINDOW, IOTD_UPDATE_OFF};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(text, names[i]) == 0) {
            *out = modes[i];
            return true;
        }
    }
    return false;
}

/* One or two digits, 0-23, at *p. */
static bool parse_hour(const char **p, uint8_t *out)
{
    const char *s = *p;
    unsigned v = 0;
    size_t n = 0;

    while (n < 2 && s[n] >= '0' && s[n] <= '9') {
        v = v * 10u + (unsigned)(s[n] - '0');
        n++;
    }
    if (n == 0 || v > 23)
        return false;
    *p = s + n;
    *out = (uint8_t)v;
    return true;
}

static bool parse_window(const char *text, uint8_t *start, uint8_t *end)
{
    const char *p = text;

    if (!parse_hour(&p, start) || *p++ != '-' || !parse_hour(&p, end))
        return false;
    return *p == '\0';
}

bool fw_setting_apply(fw_setting *s, const char *mode, const char *window)
{
    fw_setting next = *s;

    if (mode != NULL && mode[0] != '\0' && !parse_mode(mode, &next.mode))
        return false;
    if (window != NULL && window[0] != '\0' && !parse_window(window, &next.start_h, &next.end_h))
        return false;
    *s = next;
    return true;
}

const char *fw_setting_mode_name(iotd_update_mode mode)
{
    switch (mode) {
    case IOTD_UPDATE_AUTO:
        return "auto";
    case IOTD_UPDATE_WINDOW:
        return "window";
    case IOTD_UPDATE_OFF:
        return "off";
    }
    return "?";
}

fw_verdict fw_self_test(const iotd_stats *st, bool halted, uint64_t elapsed_ms, uint64_t limit_ms)
{
    if (halted || st->rejected > 0 || st->storage_errors > 0)
        return FW_TEST_FAILED;
    if (st->sent > 0)
        return FW_TEST_PASSED;
    return elapsed_ms >= limit_ms ? FW_TEST_FAILED : FW_TEST_RUNNING;
}
