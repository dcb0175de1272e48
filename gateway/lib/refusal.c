/* The refusal table; refusal.h says what each column means. */
#include "refusal.h"

#include <stddef.h>

#define S GW_CLASS_SECURITY
#define Q GW_CLASS_QUALITY
#define O GW_CLASS_OVERLOAD
#define W GW_LOG_WARN
#define I GW_LOG_INFO

/* One row per refusal, kept one per line so the table reads as the list
 * docs/gateway.md documents. */
// clang-format off
static const gw_refusal_row ROWS[GW_REF_COUNT] = {
    [GW_REF_TLS_NO_CERT]            = {0,   "tls_no_certificate",         S, GW_RC_TLS_NO_CERT,          W},
    [GW_REF_TLS_BAD_CERT]           = {0,   "tls_bad_certificate",        S, GW_RC_TLS_BAD_CERT,         W},
    [GW_REF_TLS_PROTOCOL]           = {0,   "tls_protocol",               S, GW_RC_TLS_PROTOCOL,         W},
    [GW_REF_CONN_OVER_CAPACITY]     = {0,   "over_capacity",              O, GW_RC_OVER_CAPACITY,        W},
    [GW_REF_CONN_RATE_LIMITED]      = {0,   "rate_limited",               S, GW_RC_RATE_LIMITED,         W},
    [GW_REF_REQUEST_TIMEOUT]        = {0,   "request_timeout",            S, GW_RC_REQUEST_TIMEOUT,      W},
    [GW_REF_PROXY_HEADER]           = {0,   "proxy_header_refused",       S, GW_RC_PROXY_HEADER_REFUSED, W},
    [GW_REF_DEVICE_UNKNOWN]         = {403, "device_unknown",             S, GW_RC_DEVICE_UNKNOWN,       W},
    [GW_REF_DEVICE_REVOKED]         = {403, "device_revoked",             S, GW_RC_DEVICE_REVOKED,       W},
    [GW_REF_NOT_A_DEVICE]           = {403, "device_unknown",             S, GW_RC_NOT_A_DEVICE,         W},
    [GW_REF_CERT_MISMATCH]          = {403, "device_unknown",             S, GW_RC_TLS_BAD_CERT,         W},
    [GW_REF_HTTP_FRAMING]           = {400, "invalid_framing",            S, GW_RC_HTTP_FRAMING,         W},
    [GW_REF_HTTP_MALFORMED]         = {400, "invalid_request",            S, GW_RC_HTTP_FRAMING,         W},
    [GW_REF_HTTP_HEADERS_TOO_LARGE] = {431, "headers_too_large",          S, GW_RC_HTTP_FRAMING,         W},
    [GW_REF_HTTP_VERSION]           = {505, "http_version_not_supported", S, GW_RC_HTTP_FRAMING,         W},
    [GW_REF_INVALID_TARGET]         = {400, "invalid_target",             S, GW_RC_HTTP_PROTOCOL,        W},
    [GW_REF_NOT_FOUND]              = {404, "not_found",                  S, GW_RC_HTTP_PROTOCOL,        W},
    [GW_REF_METHOD_NOT_ALLOWED]     = {405, "method_not_allowed",         S, GW_RC_HTTP_PROTOCOL,        W},
    [GW_REF_MEDIA_TYPE]             = {415, "unsupported_media_type",     S, GW_RC_HTTP_PROTOCOL,        W},
    [GW_REF_BODY_TOO_LARGE]         = {413, "payload_too_large",          Q, GW_RC_PAYLOAD_TOO_LARGE,    I},
    [GW_REF_RATE_LIMITED]           = {429, "rate_limited",               S, GW_RC_RATE_LIMITED,         W},
    [GW_REF_PAYLOAD_MEDIA_TYPE]     = {415, "unsupported_media_type",     Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_EMPTY_BODY]             = {400, "empty_body",                 Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_PAYLOAD_TOO_LARGE]      = {413, "payload_too_large",          Q, GW_RC_PAYLOAD_TOO_LARGE,    I},
    [GW_REF_INVALID_UTF8]           = {400, "invalid_utf8",               Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_TOO_DEEP]               = {400, "too_deep",                   Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_MALFORMED_JSON]         = {400, "malformed_json",             Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_NUMBER]         = {400, "invalid_number",             Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_DUPLICATE_KEY]          = {400, "duplicate_key",              Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_DUPLICATE_KEY_HOSTILE]  = {400, "duplicate_key",              S, GW_RC_PAYLOAD_SECURITY,     W},
    [GW_REF_INVALID_STRUCTURE]      = {422, "invalid_structure",          Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_BATCH_TOO_LARGE]        = {413, "batch_too_large",            Q, GW_RC_PAYLOAD_TOO_LARGE,    I},
    [GW_REF_IDENTITY_MISMATCH]      = {403, "identity_mismatch",          S, GW_RC_IDENTITY_MISMATCH,    W},
    [GW_REF_INVALID_NAME]           = {422, "invalid_name",               Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_NAME_HOSTILE]   = {422, "invalid_name",               S, GW_RC_PAYLOAD_SECURITY,     W},
    [GW_REF_INVALID_UNIT]           = {422, "invalid_unit",               Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_UNIT_HOSTILE]   = {422, "invalid_unit",               S, GW_RC_PAYLOAD_SECURITY,     W},
    [GW_REF_UNSUPPORTED_VALUE]      = {422, "unsupported_value",          Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_MISSING_VALUE]          = {422, "missing_value",              Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_VALUE]          = {422, "invalid_value",              Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_UNSUPPORTED_FIELD]      = {422, "unsupported_field",          Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_UNSUPPORTED_VERSION]    = {422, "unsupported_version",        Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_TIME]           = {422, "invalid_time",               Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_TIME_OUT_OF_RANGE]      = {422, "time_out_of_range",          Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INCONSISTENT_TIME]      = {422, "inconsistent_time",          Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_SEQ]            = {422, "invalid_seq",                Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_INVALID_DROPPED]        = {422, "invalid_dropped",            Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_DUPLICATE_NAME]         = {422, "duplicate_name",             Q, GW_RC_PAYLOAD_INVALID,      I},
    [GW_REF_READING_TOO_LARGE]      = {413, "reading_too_large",          Q, GW_RC_PAYLOAD_TOO_LARGE,    I},
    [GW_REF_REPLAY]                 = {0,   "replay",                     S, GW_RC_REPLAY,               I},
    [GW_REF_OUT_OF_MEMORY]          = {503, "out_of_memory",              O, GW_RC_OUT_OF_MEMORY,        W},
    [GW_REF_SHUTTING_DOWN]          = {503, "shutting_down",              O, GW_RC_SHUTTING_DOWN,        I},
    [GW_REF_OUTBOX_FULL]            = {503, "outbox_full",                O, GW_RC_OUTBOX_FULL,          W},
    [GW_REF_OUTBOX_DEVICE_SHARE]    = {503, "outbox_device_share_full",   O, GW_RC_OUTBOX_DEVICE_SHARE,  W},
    [GW_REF_STORAGE_ERROR]          = {503, "storage_unavailable",        O, GW_RC_STORAGE_ERROR,        W},
    [GW_REF_NOT_CONFIRMED]          = {503, "not_confirmed",              O, GW_RC_NOT_CONFIRMED,        W},
    [GW_REF_BROKER_REFUSED]         = {502, "broker_refused",             Q, GW_RC_BROKER_REFUSED,       W},
    [GW_REF_RANGE_NOT_SATISFIABLE]  = {416, "range_not_satisfiable",      Q, GW_RC_HTTP_PROTOCOL,        I},
    [GW_REF_IMAGE_NOT_OFFERED]      = {404, "image_not_offered",          S, GW_RC_UPDATE_NOT_OFFERED,   W},
    [GW_REF_INVALID_REPORT]         = {422, "invalid_report",             Q, GW_RC_UPDATE_REPORT_INVALID, I},
    [GW_REF_ROLLOUT_UNKNOWN]        = {404, "rollout_unknown",            Q, GW_RC_UPDATE_REPORT_INVALID, I},
    [GW_REF_REPORT_CONFLICT]        = {409, "report_conflict",            Q, GW_RC_UPDATE_REPORT_INVALID, I},
    [GW_REF_UPDATE_DEFERRED]        = {503, "update_deferred",            O, GW_RC_UPDATE_DEFERRED,      I},
    [GW_REF_UPDATE_UNAVAILABLE]     = {503, "update_unavailable",         O, GW_RC_UPDATE_UNAVAILABLE,   W},
    [GW_REF_CERTIFICATE_REQUIRED]   = {403, "certificate_required",       S, GW_RC_CERTIFICATE_REQUIRED, W},
    [GW_REF_BOOTSTRAP_CERTIFICATE]  = {403, "bootstrap_certificate",      S, GW_RC_BOOTSTRAP_CERTIFICATE, W},
    [GW_REF_ISSUER_REVOKED]         = {403, "issuer_revoked",             S, GW_RC_ISSUER_REVOKED,       W},
    [GW_REF_EST_ENROLLED]           = {403, "already_enrolled",           S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_AUTH_MISSING]       = {401, "token_missing",              S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_TOKEN_UNKNOWN]      = {401, "token_unknown",              S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_TOKEN_USED]         = {401, "token_used",                 S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_TOKEN_EXPIRED]      = {401, "token_expired",              S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_TOKEN_REVOKED]      = {401, "token_revoked",              S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_TOKEN_WRONG_DEVICE] = {401, "token_wrong_device",         S, GW_RC_EST_AUTH_FAILED,      W},
    [GW_REF_EST_CSR_INVALID]        = {400, "csr_invalid",                Q, GW_RC_EST_INVALID,          I},
    [GW_REF_EST_DENIED]             = {403, "denied",                     S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_NAME_TAKEN]         = {403, "name_taken",                 S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_DEVICE_REVOKED]     = {403, "device_revoked",             S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_DEVICE_UNKNOWN]     = {403, "device_unknown",             S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_CERT_REPLACED]      = {403, "certificate_replaced",       S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_KEY_REUSED]         = {409, "key_reused",                 S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_RENEWAL_CONFLICT]   = {409, "renewal_conflict",           S, GW_RC_EST_REFUSED,          W},
    [GW_REF_EST_ISSUER_REVOKED]     = {503, "issuer_revoked",             O, GW_RC_EST_UNAVAILABLE,      W},
    [GW_REF_EST_ISSUER_EXPIRED]     = {503, "issuer_expired",             O, GW_RC_EST_UNAVAILABLE,      W},
    [GW_REF_EST_ISSUER_UNKNOWN]     = {503, "issuer_unknown",             O, GW_RC_EST_UNAVAILABLE,      W},
    [GW_REF_EST_UNAVAILABLE]        = {503, "enrollment_unavailable",     O, GW_RC_EST_UNAVAILABLE,      W},
    [GW_REF_EST_RATE_LIMITED]       = {429, "rate_limited",               S, GW_RC_RATE_LIMITED,         W},
    [GW_REF_ADMIN_UNAUTHORIZED]     = {401, "unauthorized",               S, GW_RC_ADMIN_UNAUTHORIZED,   W},
    [GW_REF_ADMIN_OVER_CAPACITY]    = {503, "over_capacity",              O, GW_RC_ADMIN_OVER_CAPACITY,  W},
    [GW_REF_ADMIN_INVALID_TARGET]   = {400, "invalid_target",             S, GW_RC_ADMIN_PROTOCOL,       W},
    [GW_REF_ADMIN_NOT_FOUND]        = {404, "not_found",                  S, GW_RC_ADMIN_PROTOCOL,       W},
    [GW_REF_ADMIN_METHOD_NOT_ALLOWED] = {405, "method_not_allowed",       S, GW_RC_ADMIN_PROTOCOL,       W},
};

static const struct {
    const char *name;
    gw_refusal_class cls;
} COUNTERS[GW_RC_COUNT] = {
    [GW_RC_TLS_NO_CERT]         = {"tls_no_certificate",       S},
    [GW_RC_TLS_BAD_CERT]        = {"tls_bad_certificate",      S},
    [GW_RC_TLS_PROTOCOL]        = {"tls_protocol",             S},
    [GW_RC_DEVICE_UNKNOWN]      = {"device_unknown",           S},
    [GW_RC_DEVICE_REVOKED]      = {"device_revoked",           S},
    [GW_RC_NOT_A_DEVICE]        = {"not_a_device",             S},
    [GW_RC_IDENTITY_MISMATCH]   = {"identity_mismatch",        S},
    [GW_RC_PAYLOAD_SECURITY]    = {"payload_hostile",          S},
    [GW_RC_REPLAY]              = {"replay",                   S},
    [GW_RC_RATE_LIMITED]        = {"rate_limited",             S},
    [GW_RC_HTTP_PROTOCOL]       = {"http_protocol",            S},
    [GW_RC_HTTP_FRAMING]        = {"http_framing",             S},
    [GW_RC_REQUEST_TIMEOUT]     = {"request_timeout",          S},
    [GW_RC_PAYLOAD_INVALID]     = {"payload_invalid",          Q},
    [GW_RC_PAYLOAD_TOO_LARGE]   = {"payload_too_large",        Q},
    [GW_RC_OUTBOX_FULL]         = {"outbox_full",              O},
    [GW_RC_OUTBOX_DEVICE_SHARE] = {"outbox_device_share_full", O},
    [GW_RC_STORAGE_ERROR]       = {"storage_error",            O},
    [GW_RC_OUT_OF_MEMORY]       = {"out_of_memory",            O},
    [GW_RC_SHUTTING_DOWN]       = {"shutting_down",            O},
    [GW_RC_OVER_CAPACITY]       = {"over_capacity",            O},
    [GW_RC_ADMIN_UNAUTHORIZED]  = {"admin_unauthorized",       S},
    [GW_RC_ADMIN_OVER_CAPACITY] = {"admin_over_capacity",      O},
    [GW_RC_ADMIN_PROTOCOL]      = {"admin_protocol",           S},
    [GW_RC_UPDATE_NOT_OFFERED]  = {"update_not_offered",       S},
    [GW_RC_UPDATE_REPORT_INVALID] = {"update_report_invalid",  Q},
    [GW_RC_UPDATE_DEFERRED]     = {"update_deferred",          O},
    [GW_RC_UPDATE_UNAVAILABLE]  = {"update_unavailable",       O},
    [GW_RC_CERTIFICATE_REQUIRED] = {"certificate_required",    S},
    [GW_RC_BOOTSTRAP_CERTIFICATE] = {"bootstrap_certificate",  S},
    [GW_RC_ISSUER_REVOKED]      = {"issuer_revoked",           S},
    [GW_RC_EST_AUTH_FAILED]     = {"est_auth_failed",          S},
    [GW_RC_EST_REFUSED]         = {"est_refused",              S},
    [GW_RC_EST_INVALID]         = {"est_invalid",              Q},
    [GW_RC_EST_UNAVAILABLE]     = {"est_unavailable",          O},
    [GW_RC_PROXY_HEADER_REFUSED] = {"proxy_header_refused",    S},
    [GW_RC_NOT_CONFIRMED]       = {"not_confirmed",            O},
    [GW_RC_BROKER_REFUSED]      = {"broker_refused",           Q},
};
// clang-format on

const gw_refusal_row *gw_refusal_row_of(gw_refusal r)
{
    return &ROWS[r];
}

const char *gw_refusal_class_name(gw_refusal_class c)
{
    switch (c) {
    case GW_CLASS_SECURITY:
        return "security";
    case GW_CLASS_QUALITY:
        return "quality";
    case GW_CLASS_OVERLOAD:
        return "overload";
    }
    return "quality";
}

const char *gw_refusal_counter_name(gw_refusal_counter c)
{
    return COUNTERS[c].name;
}

gw_refusal_class gw_refusal_counter_class(gw_refusal_counter c)
{
    return COUNTERS[c].cls;
}

/* The statuses the gateway sends (RFC 9110 15). */
static const struct {
    int status;
    const char *phrase;
} PHRASES[] = {
    {100, "Continue"},
    {200, "OK"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {303, "See Other"}, /* the console's redirect to its login page */
    {304, "Not Modified"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {409, "Conflict"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {422, "Unprocessable Content"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

const char *gw_refusal_reason_phrase(int status)
{
    for (size_t i = 0; i < sizeof(PHRASES) / sizeof(PHRASES[0]); i++)
        if (PHRASES[i].status == status)
            return PHRASES[i].phrase;
    return "Error";
}
