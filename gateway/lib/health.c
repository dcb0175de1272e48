/* See health.h. */
#include "health.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "utf8.h"

static const char *const RESET_REASONS[] = {
    "power_on", "software", "deep_sleep", "external", "panic", "watchdog", "brownout", "unknown",
};
#define N_RESETS (sizeof(RESET_REASONS) / sizeof(RESET_REASONS[0]))

typedef enum kind { K_VERSION, K_U32, K_SINCE, K_HEAP, K_TIME, K_RESET, K_SLOT } kind;

static const struct {
    const char *name;
    kind kind;
    bool required;
} MEMBERS[] = {
    {"firmware", K_VERSION, true},     {"secure_version", K_U32, true},
    {"boot_count", K_U32, true},       {"reset_reason", K_RESET, true},
    {"connect_failures", K_U32, true}, {"since_upload_s", K_SINCE, true},
    {"heap_min", K_HEAP, false},       {"cert_not_after", K_TIME, false},
    {"slot", K_SLOT, false},
};
#define N_MEMBERS (sizeof(MEMBERS) / sizeof(MEMBERS[0]))

static int refuse(gw_refusal r, gw_refusal *why, char *detail, size_t cap, const char *text)
{
    *why = r;
    snprintf(detail, cap, "%s", text);
    return -1;
}

/* "member "NAME" WHAT" */
static int refuse_member(gw_refusal r, gw_refusal *why, char *detail, size_t cap, const char *name,
                         const char *what)
{
    *why = r;
    snprintf(detail, cap, "member \"%.40s\" %s", name, what);
    return -1;
}

bool gw_health_reset_is_abnormal(const char *reason)
{
    return reason != NULL && (strcmp(reason, "panic") == 0 || strcmp(reason, "watchdog") == 0 ||
                              strcmp(reason, "brownout") == 0);
}

static bool version_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GW_HEALTH_VERSION_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '-' || c == '+' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

/* An integer in [lo, hi], written as one (no fraction, no exponent beyond
 * what an integer needs). */
static bool integer_in(const cJSON *v, double lo, double hi, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi) || floor(d) != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* 1..GW_HEALTH_SLOT_MAX of [a-z0-9_]: a partition label. */
static bool set_slot(const cJSON *v, gw_health_report *r)
{
    if (!cJSON_IsString(v))
        return false;
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > GW_HEALTH_SLOT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v->valuestring[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_'))
            return false;
    }
    memcpy(r->slot, v->valuestring, n + 1);
    return true;
}

static bool set_reset(const cJSON *v, gw_health_report *r)
{
    if (!cJSON_IsString(v))
        return false;
    for (size_t i = 0; i < N_RESETS; i++)
        if (strcmp(v->valuestring, RESET_REASONS[i]) == 0) {
            r->reset_reason = RESET_REASONS[i];
            return true;
        }
    return false;
}

static bool set_member(kind k, const cJSON *v, int64_t *num, gw_health_report *r)
{
    switch (k) {
    case K_VERSION:
        if (!cJSON_IsString(v) || !version_ok(v->valuestring))
            return false;
        snprintf(r->firmware, sizeof(r->firmware), "%s", v->valuestring);
        return true;
    case K_RESET:
        return set_reset(v, r);
    case K_SLOT:
        return set_slot(v, r);
    case K_U32:
        return integer_in(v, 0, 4294967295.0, num);
    case K_SINCE:
    case K_HEAP:
        return integer_in(v, -1, 1e15, num);
    case K_TIME:
        return integer_in(v, 0, 253402300799.0, num); /* up to 9999-12-31 */
    }
    return false;
}

static void store(size_t i, int64_t num, gw_health_report *r)
{
    const char *n = MEMBERS[i].name;
    if (strcmp(n, "secure_version") == 0)
        r->secure_version = (uint32_t)num;
    else if (strcmp(n, "boot_count") == 0)
        r->boot_count = (uint32_t)num;
    else if (strcmp(n, "connect_failures") == 0)
        r->connect_failures = (uint32_t)num;
    else if (strcmp(n, "since_upload_s") == 0)
        r->since_upload_s = num;
    else if (strcmp(n, "heap_min") == 0)
        r->heap_min = num;
    else if (strcmp(n, "cert_not_after") == 0)
        r->cert_not_after = num;
}

static int member_index(const char *name)
{
    for (size_t i = 0; i < N_MEMBERS; i++)
        if (strcmp(MEMBERS[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int check_members(const cJSON *root, gw_health_report *out, gw_refusal *why, char *detail,
                         size_t cap)
{
    bool seen[N_MEMBERS] = {false};
    for (const cJSON *m = root->child; m != NULL; m = m->next) {
        int i = member_index(m->string);
        if (i < 0)
            return refuse_member(GW_REF_UNSUPPORTED_FIELD, why, detail, cap, m->string,
                                 "is not part of a health report (docs/protocol.md)");
        if (seen[i])
            return refuse_member(GW_REF_DUPLICATE_KEY, why, detail, cap, MEMBERS[i].name,
                                 "is given twice");
        seen[i] = true;
        int64_t num = 0;
        if (!set_member(MEMBERS[i].kind, m, &num, out))
            return refuse_member(GW_REF_INVALID_VALUE, why, detail, cap, MEMBERS[i].name,
                                 "has the wrong type or is out of range");
        store((size_t)i, num, out);
    }
    for (size_t i = 0; i < N_MEMBERS; i++)
        if (MEMBERS[i].required && !seen[i])
            return refuse_member(GW_REF_MISSING_VALUE, why, detail, cap, MEMBERS[i].name,
                                 "is required");
    return 0;
}

int gw_health_parse(const char *body, size_t len, gw_health_report *out, gw_refusal *why,
                    char *detail, size_t cap)
{
    memset(out, 0, sizeof(*out));
    out->since_upload_s = -1;
    out->heap_min = -1;
    size_t bad = 0;
    if (len == 0)
        return refuse(GW_REF_EMPTY_BODY, why, detail, cap, "the report is empty");
    if (len > GW_HEALTH_BODY_MAX)
        return refuse(GW_REF_PAYLOAD_TOO_LARGE, why, detail, cap, "the report is over 1 KiB");
    if (!gw_utf8_valid(body, len, &bad))
        return refuse(GW_REF_INVALID_UTF8, why, detail, cap, "the report is not valid UTF-8");
    /* Whole-body parse: trailing bytes after the object are an error. */
    char text[GW_HEALTH_BODY_MAX + 1];
    memcpy(text, body, len);
    text[len] = '\0';
    cJSON *root = memchr(body, '\0', len) == NULL ? cJSON_ParseWithOpts(text, NULL, true) : NULL;
    int rc;
    if (root == NULL)
        rc = refuse(GW_REF_MALFORMED_JSON, why, detail, cap, "the report is not JSON");
    else if (!cJSON_IsObject(root))
        rc = refuse(GW_REF_INVALID_STRUCTURE, why, detail, cap, "the report must be one object");
    else
        rc = check_members(root, out, why, detail, cap);
    cJSON_Delete(root);
    return rc;
}
