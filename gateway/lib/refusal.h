/* Every way the gateway refuses a connection or a request, as one table
 * (refusal.c): for each refusal its HTTP status (0: the connection is
 * closed without an answer), the `error` string of the JSON answer, its
 * class, the counter it is counted in (the `reason` label of
 * iotgw_refusals_total) and the level it is logged at.
 *
 * Modules that judge input (payload validation, identity checks, the HTTP
 * reader, the router) return a gw_refusal and know nothing of HTTP; the
 * code that answers looks the rest up here, so the answer, the log line
 * and the counter of one refusal always agree. docs/gateway.md lists the
 * table. */
#ifndef GW_REFUSAL_H
#define GW_REFUSAL_H

#include <stdint.h>

#include "log_level.h"

typedef enum gw_refusal_class {
    GW_CLASS_SECURITY, /* someone tried something they may not */
    GW_CLASS_QUALITY,  /* a device sent bad data */
    GW_CLASS_OVERLOAD, /* the gateway cannot take more now; retry later */
} gw_refusal_class;

/* The counters: the `reason` label of iotgw_refusals_total. Several
 * refusals may share one. */
typedef enum gw_refusal_counter {
    GW_RC_TLS_NO_CERT,
    GW_RC_TLS_BAD_CERT,
    GW_RC_TLS_PROTOCOL,
    GW_RC_DEVICE_UNKNOWN,
    GW_RC_DEVICE_REVOKED,
    GW_RC_NOT_A_DEVICE,
    GW_RC_IDENTITY_MISMATCH,
    GW_RC_PAYLOAD_SECURITY,
    GW_RC_REPLAY,
    GW_RC_RATE_LIMITED,
    GW_RC_HTTP_PROTOCOL,
    GW_RC_HTTP_FRAMING,
    GW_RC_REQUEST_TIMEOUT,
    GW_RC_PAYLOAD_INVALID,
    GW_RC_PAYLOAD_TOO_LARGE,
    GW_RC_OUTBOX_FULL,
    GW_RC_OUTBOX_DEVICE_SHARE,
    GW_RC_STORAGE_ERROR,
    GW_RC_OUT_OF_MEMORY,
    GW_RC_SHUTTING_DOWN,
    GW_RC_OVER_CAPACITY,
    GW_RC_ADMIN_UNAUTHORIZED,
    GW_RC_ADMIN_OVER_CAPACITY,
    GW_RC_ADMIN_PROTOCOL,
    GW_RC_UPDATE_NOT_OFFERED,
    GW_RC_UPDATE_REPORT_INVALID,
    GW_RC_UPDATE_DEFERRED,
    GW_RC_UPDATE_UNAVAILABLE,
    GW_RC_CERTIFICATE_REQUIRED,
    GW_RC_BOOTSTRAP_CERTIFICATE,
    GW_RC_ISSUER_REVOKED,
    GW_RC_EST_AUTH_FAILED,
    GW_RC_EST_REFUSED,
    GW_RC_EST_INVALID,
    GW_RC_EST_UNAVAILABLE,
    GW_RC_PROXY_HEADER_REFUSED,
    GW_RC_NOT_CONFIRMED,
    GW_RC_BROKER_REFUSED,
    GW_RC_COUNT
} gw_refusal_counter;

typedef enum gw_refusal {
    /* connections, before any request */
    GW_REF_TLS_NO_CERT,
    GW_REF_TLS_BAD_CERT,
    GW_REF_TLS_PROTOCOL,
    GW_REF_CONN_OVER_CAPACITY, /* max_connections, per address, per device, buffered bytes */
    GW_REF_CONN_RATE_LIMITED,  /* connection_rate_per_address */
    GW_REF_REQUEST_TIMEOUT,
    GW_REF_PROXY_HEADER, /* a PROXY header from an address not in proxy_protocol_from, or none
                            (or an invalid one) from a balancer that is */
    /* identity (in the handshake, or per request) */
    GW_REF_DEVICE_UNKNOWN,
    GW_REF_DEVICE_REVOKED,
    GW_REF_NOT_A_DEVICE,
    GW_REF_CERT_MISMATCH,
    /* HTTP framing and routing */
    GW_REF_HTTP_FRAMING, /* Content-Length, Transfer-Encoding, chunks: request smuggling */
    GW_REF_HTTP_MALFORMED,
    GW_REF_HTTP_HEADERS_TOO_LARGE,
    GW_REF_HTTP_VERSION,
    GW_REF_INVALID_TARGET,
    GW_REF_NOT_FOUND,
    GW_REF_METHOD_NOT_ALLOWED,
    GW_REF_MEDIA_TYPE,
    GW_REF_BODY_TOO_LARGE,
    GW_REF_RATE_LIMITED,
    /* the body (gateway/lib/payload.c) */
    GW_REF_PAYLOAD_MEDIA_TYPE,
    GW_REF_EMPTY_BODY,
    GW_REF_PAYLOAD_TOO_LARGE,
    GW_REF_INVALID_UTF8,
    GW_REF_TOO_DEEP,
    GW_REF_MALFORMED_JSON,
    GW_REF_INVALID_NUMBER,
    GW_REF_DUPLICATE_KEY,
    GW_REF_DUPLICATE_KEY_HOSTILE,
    GW_REF_INVALID_STRUCTURE,
    GW_REF_BATCH_TOO_LARGE,
    GW_REF_IDENTITY_MISMATCH,
    GW_REF_INVALID_NAME,
    GW_REF_INVALID_NAME_HOSTILE,
    GW_REF_INVALID_UNIT,
    GW_REF_INVALID_UNIT_HOSTILE,
    GW_REF_UNSUPPORTED_VALUE,
    GW_REF_MISSING_VALUE,
    GW_REF_INVALID_VALUE,
    GW_REF_UNSUPPORTED_FIELD,
    GW_REF_UNSUPPORTED_VERSION,
    GW_REF_INVALID_TIME,
    GW_REF_TIME_OUT_OF_RANGE,
    GW_REF_INCONSISTENT_TIME,
    GW_REF_INVALID_SEQ,
    GW_REF_INVALID_DROPPED,
    GW_REF_DUPLICATE_NAME,
    GW_REF_READING_TOO_LARGE,
    GW_REF_REPLAY, /* counted only: a duplicate reading is answered 200 */
    /* the gateway's own state */
    GW_REF_OUT_OF_MEMORY,
    GW_REF_SHUTTING_DOWN,
    GW_REF_OUTBOX_FULL,
    GW_REF_OUTBOX_DEVICE_SHARE,
    GW_REF_STORAGE_ERROR,
    GW_REF_NOT_CONFIRMED,  /* acknowledge = confirmed: stored, the broker has not confirmed it */
    GW_REF_BROKER_REFUSED, /* acknowledge = confirmed: the broker refused it for good */
    /* firmware updates (updates.c) */
    GW_REF_RANGE_NOT_SATISFIABLE, /* 416: past the end, malformed, or more than one range */
    GW_REF_IMAGE_NOT_OFFERED,     /* an image no rollout offers this device */
    GW_REF_INVALID_REPORT,        /* a status report that is not one */
    GW_REF_ROLLOUT_UNKNOWN,       /* a report for a release the device was not offered */
    GW_REF_REPORT_CONFLICT,       /* a report that would change a final state */
    GW_REF_UPDATE_DEFERRED,       /* the rollout's per-minute cap: ask again later */
    GW_REF_UPDATE_UNAVAILABLE,    /* the rollout file or an image cannot be read now */
    /* enrollment (est.c) and the certificates it brings (tls.c, admission.c) */
    GW_REF_CERTIFICATE_REQUIRED,  /* no client certificate: only cacerts and simpleenroll */
    GW_REF_BOOTSTRAP_CERTIFICATE, /* a bootstrap certificate: only simpleenroll */
    GW_REF_ISSUER_REVOKED,        /* a device certificate of a revoked intermediate */
    GW_REF_EST_ENROLLED,          /* simpleenroll with a device certificate */
    GW_REF_EST_AUTH_MISSING,      /* simpleenroll with neither Basic nor a bootstrap cert */
    GW_REF_EST_TOKEN_UNKNOWN,
    GW_REF_EST_TOKEN_USED,
    GW_REF_EST_TOKEN_EXPIRED,
    GW_REF_EST_TOKEN_REVOKED,
    GW_REF_EST_TOKEN_WRONG_DEVICE,
    GW_REF_EST_CSR_INVALID, /* bad base64, not a PKCS#10, wrong key or name */
    GW_REF_EST_DENIED,      /* an operator denied it */
    GW_REF_EST_NAME_TAKEN,
    GW_REF_EST_DEVICE_REVOKED,
    GW_REF_EST_DEVICE_UNKNOWN,
    GW_REF_EST_CERT_REPLACED, /* renewal with a certificate that is no longer the device's */
    GW_REF_EST_KEY_REUSED,
    GW_REF_EST_RENEWAL_CONFLICT,
    GW_REF_EST_ISSUER_REVOKED,
    GW_REF_EST_ISSUER_EXPIRED,
    GW_REF_EST_ISSUER_UNKNOWN,
    GW_REF_EST_UNAVAILABLE,  /* the registry or the signer failed */
    GW_REF_EST_RATE_LIMITED, /* est_max_failures within est_failure_window */
    /* the admin listener */
    GW_REF_ADMIN_UNAUTHORIZED,
    GW_REF_ADMIN_OVER_CAPACITY,
    GW_REF_ADMIN_INVALID_TARGET, /* the router's answers, on the admin listener */
    GW_REF_ADMIN_NOT_FOUND,
    GW_REF_ADMIN_METHOD_NOT_ALLOWED,
    GW_REF_COUNT
} gw_refusal;

typedef struct gw_refusal_row {
    uint16_t status;            /* HTTP status; 0: no answer, the connection is closed */
    const char *error;          /* the JSON answer's "error" */
    gw_refusal_class cls;       /* the log line's class */
    gw_refusal_counter counter; /* the metric's reason */
    gw_log_level level;         /* the log line's level */
} gw_refusal_row;

/* The row of a refusal; r must be below GW_REF_COUNT. */
const gw_refusal_row *gw_refusal_row_of(gw_refusal r);

/* "security", "quality" or "overload". */
const char *gw_refusal_class_name(gw_refusal_class c);

/* The counter's `reason` label and `class` label. */
const char *gw_refusal_counter_name(gw_refusal_counter c);
gw_refusal_class gw_refusal_counter_class(gw_refusal_counter c);

/* The reason phrase of a status the table uses ("Bad Request"). */
const char *gw_refusal_reason_phrase(int status);

#endif
