/* Enrollment: a device gets its first certificate over the network and
 * renews it itself (EST, RFC 7030, served by the gateway), authorised by a
 * one-time token or a factory bootstrap certificate, optionally after an
 * operator's approval. One implementation of the rules, used by the
 * gateway (which answers devices) and by iotctl (which creates tokens and
 * decides approvals), on the same registry file.
 *
 * Tokens are 32 random bytes, base64url without padding (43 characters),
 * bound to one device ID, expiring, single use. The registry keeps only
 * their SHA-256; `tok-` and the first 12 hex digits of it name a token in
 * listings (the handle reveals nothing that helps to guess the token).
 *
 * The subject of an issued certificate is fixed by the registry
 * (O=IoT Telemetry, OU=device, CN=<device ID>); a CSR must carry a valid
 * self-signature, an ECDSA P-256 key never seen by the registry (any name,
 * any state, the device's own earlier keys included, and not the bootstrap
 * certificate's key) and exactly one CN equal to the device ID.
 *
 * Every call runs in its own registry transaction: a refusal or a failure
 * leaves nothing written, except that a redeemed token stays used once a
 * certificate or a pending request exists for it.
 */
#ifndef IOT_ENROLL_H
#define IOT_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "iot/pki.h"
#include "iot/registry.h"
#include "iot/status.h"

#define IOT_TOKEN_LEN     43 /* base64url of 32 bytes, no padding */
#define IOT_TOKEN_ID_LEN  16 /* "tok-" + 12 hex digits */
#define IOT_TOKEN_TTL_MAX (90 * 86400)

typedef struct iot_token_record {
    char id[IOT_TOKEN_ID_LEN + 1];
    char device[IOT_ID_MAX + 1];
    int64_t created;
    int64_t expires;
    int64_t used_at;                     /* 0 until redeemed */
    int64_t revoked_at;                  /* 0 unless revoked */
    char serial[IOT_SERIAL_HEX_MAX + 1]; /* the certificate it produced; "" */
} iot_token_record;

typedef int (*iot_token_fn)(const iot_token_record *rec, void *ctx);

/* Makes a token for `device`, valid for ttl_s seconds (1 s to
 * IOT_TOKEN_TTL_MAX), and returns it in `token` (NUL-terminated); only its
 * hash is stored. IOT_EINVAL for a device ID that breaks the rule or a bad
 * ttl; IOT_EEXIST if the name is already in the registry (any kind) or a
 * usable token for it exists (revoke that one first). */
iot_status iot_token_create(iot_registry *reg, const char *device, int64_t ttl_s, int64_t now,
                            char token[IOT_TOKEN_LEN + 1], iot_token_record *out, iot_err *err);

/* Revokes an unused token by its id. IOT_ENOENT if there is none;
 * IOT_ESTATE if it was already used or revoked. */
iot_status iot_token_revoke(iot_registry *reg, const char *id, int64_t now, iot_err *err);

/* Every token, newest first. */
iot_status iot_token_foreach(iot_registry *reg, iot_token_fn fn, void *ctx, iot_err *err);

/* Every token with its hash (the SHA-256 the registry keeps), oldest
 * first: what a gateway shares so that a token created at one gateway is
 * good at the others (iot_token_import). The hash reveals nothing that
 * helps to guess the token. */
typedef int (*iot_token_hash_fn)(const iot_token_record *rec, const char *hash, void *ctx);
iot_status iot_token_foreach_hash(iot_registry *reg, iot_token_hash_fn fn, void *ctx, iot_err *err);

typedef enum iot_enroll_state {
    IOT_ENROLL_PENDING,  /* waits for an operator */
    IOT_ENROLL_APPROVED, /* the device's next request gets its certificate */
    IOT_ENROLL_DENIED,
    IOT_ENROLL_ISSUED,
} iot_enroll_state;

/* A first enrollment that needed (or got) an operator's decision. */
typedef struct iot_enroll_record {
    char device[IOT_ID_MAX + 1];
    char method[16];                   /* "token" or "bootstrap" */
    char auth[IOT_SERIAL_HEX_MAX + 1]; /* the token's id, or the bootstrap certificate's serial */
    char spki[IOT_FPR_HEX_LEN + 1];    /* the CSR's key */
    char peer[64];                     /* address the request came from */
    int64_t requested;
    int64_t decided; /* 0 while pending */
    iot_enroll_state state;
    char serial[IOT_SERIAL_HEX_MAX + 1]; /* once issued */
} iot_enroll_record;

typedef int (*iot_enroll_fn)(const iot_enroll_record *rec, void *ctx);

const char *iot_enroll_state_name(iot_enroll_state state);

/* Every request that waited for a decision, pending ones first, then
 * newest first. */
iot_status iot_enroll_foreach(iot_registry *reg, iot_enroll_fn fn, void *ctx, iot_err *err);

/* Approves or denies the pending request of `device`. IOT_ENOENT if there
 * is none; IOT_ESTATE if it is not pending. */
iot_status iot_enroll_decide(iot_registry *reg, const char *device, bool approve, int64_t now,
                             iot_err *err);

typedef enum iot_enroll_method {
    IOT_ENROLL_BY_TOKEN,     /* simpleenroll, HTTP Basic device-ID:token */
    IOT_ENROLL_BY_BOOTSTRAP, /* simpleenroll, a bootstrap-CA client certificate */
    IOT_ENROLL_RENEW,        /* simplereenroll, the device's own certificate */
} iot_enroll_method;

/* Several gateways, one set of tokens (the gateway's shared state): a
 * token that passed every check of this registry is claimed before it is
 * spent, by its hash (SHA-256 hex), the device and the SPKI fingerprint
 * of the CSR's key. IOT_OK: this request may spend it (nobody had, or the
 * same device with the same key did, an answer it lost); IOT_EEXIST:
 * another gateway spent it for something else (refused as token_used);
 * another status: no answer now, and the enrollment fails with nothing
 * written. */
typedef iot_status (*iot_enroll_claim_fn)(void *ctx, const char *token_hash, const char *device,
                                          const char *spki, iot_err *err);

typedef struct iot_enroll_policy {
    int64_t lifetime_s;    /* of an issued device certificate */
    int64_t grace_s;       /* a replaced certificate works this long unless its successor is used */
    bool require_approval; /* first enrollments wait for iot_enroll_decide */
    iot_enroll_claim_fn claim_token; /* NULL: this registry alone decides */
    void *claim_ctx;
} iot_enroll_policy;

typedef struct iot_enroll_request {
    iot_enroll_method method;
    /* BY_TOKEN: the Basic user name; BY_BOOTSTRAP: the bootstrap
     * certificate's CN; RENEW: the device the gateway admitted. */
    const char *device_id;
    const char *token; /* BY_TOKEN only */
    /* BY_BOOTSTRAP: the bootstrap certificate's serial and key (SPKI
     * SHA-256 hex; a CSR may not reuse it). RENEW: the serial of the
     * certificate the device presented (its key is in the registry). */
    const char *auth_serial;
    const char *auth_spki;
    const void *csr; /* DER PKCS#10 */
    size_t csr_len;
    const char *peer; /* the client's address, recorded with a pending request */
    int64_t now;
} iot_enroll_request;

typedef enum iot_enroll_outcome {
    IOT_ENROLL_OUT_ISSUED,      /* 200: a new certificate */
    IOT_ENROLL_OUT_REISSUED,    /* 200: the one issued before for this key (an answer was lost) */
    IOT_ENROLL_OUT_PENDING,     /* 202: waits for an operator; ask again later */
    IOT_ENROLL_OUT_BAD_CSR,     /* 400 */
    IOT_ENROLL_OUT_BAD_AUTH,    /* 401: the token is unknown, used, expired, revoked or another's */
    IOT_ENROLL_OUT_FORBIDDEN,   /* 403: denied by an operator, the name is taken, or revoked */
    IOT_ENROLL_OUT_KEY_REUSED,  /* 409: the CSR's key is one the registry has seen */
    IOT_ENROLL_OUT_CONFLICT,    /* 409: a renewal was already issued for another key */
    IOT_ENROLL_OUT_UNAVAILABLE, /* 503: the issuing CA is revoked, expired or unknown */
} iot_enroll_outcome;

typedef struct iot_enroll_result {
    iot_enroll_outcome outcome;
    /* A stable token for logs and answers: "token_unknown", "token_used",
     * "token_expired", "token_revoked", "token_wrong_device", "csr_invalid",
     * "key_reused", "name_taken", "device_revoked", "denied", "pending",
     * "renewal_conflict", "issuer_revoked", "issuer_expired",
     * "issuer_unknown", "issued", "reissued". */
    const char *reason;
    X509 *cert;             /* ISSUED and REISSUED: the certificate; the caller frees it */
    iot_cert_record issued; /* ISSUED and REISSUED: its registry record */
} iot_enroll_result;

/* Runs one enrollment or renewal, signed by `issuer` (an intermediate CA
 * recorded in the registry as IOT_KIND_ISSUER). IOT_OK with the outcome in
 * *res (refusals included, with `err` saying why in words); another status
 * when the registry or the crypto failed, with nothing written. */
iot_status iot_enroll(iot_registry *reg, const pki_ca *issuer, const iot_enroll_policy *policy,
                      const iot_enroll_request *req, iot_enroll_result *res, iot_err *err);

/* ---- several gateways ------------------------------------------------------
 *
 * Several gateways behind one balancer each keep a registry of their own.
 * What one of them decides is published in the shared state and taken in
 * by the others with the two calls below, so that a device is admitted,
 * renewed or refused the same everywhere. Each call runs in one registry
 * transaction of its own: a refusal or a failure leaves nothing written. */

/* A device certificate another gateway issued (shared state). */
typedef struct iot_enroll_import {
    const unsigned char *der; /* the certificate, DER (at most 4096 bytes) */
    size_t der_len;
    const char *device;   /* the device ID it was issued to */
    const char *previous; /* serial it renewed ("" or NULL: a first enrollment) */
    int64_t grace_until;  /* with previous: until when the replaced one still works (<= now: not) */
    /* The issuing CAs this gateway trusts: what gw_est_issuers() gives
     * (every active intermediate of its registry). Borrowed; only their
     * certificates are used. */
    const STACK_OF(X509) * issuers;
} iot_enroll_import;

typedef enum iot_import_outcome {
    IOT_IMPORT_ADDED,   /* a device this registry did not have */
    IOT_IMPORT_RENEWED, /* the device's certificate `previous` is replaced */
    IOT_IMPORT_KNOWN,   /* the registry has this certificate already: nothing written */
} iot_import_outcome;

/* Takes a device certificate another gateway issued into this registry,
 * recorded as iot_enroll records the certificates it issues (created at
 * `now`, the issuing CA's serial, the key's SPKI fingerprint, the DER kept).
 *
 * The certificate must be one DER certificate of at most 4096 bytes, for
 * a valid device ID, with the subject O=IoT Telemetry, OU=device,
 * CN=<device> exactly, for TLS client authentication and not a CA, and not
 * expired at `now`: otherwise IOT_EINVAL, naming the device and what is
 * wrong. It must be signed by one of `issuers` (name and signature) that
 * this registry also has as an active issuer: otherwise IOT_EPERM.
 *
 * Then, with *out set:
 *  - its serial is in the registry already (active, revoked or replaced)
 *    as the same certificate of the same device: IOT_OK, KNOWN (a replay);
 *    as anything else: IOT_EEXIST;
 *  - the device is revoked here: IOT_ESTATE (a revoked device is not
 *    brought back);
 *  - `previous` empty, or the device unknown here: the device is added,
 *    ADDED (a renewal of a device this gateway never saw admits it as a new
 *    one); IOT_EEXIST, the registry's message, if the name or the key is
 *    another certificate's;
 *  - `previous` given: it must be the device's active certificate here
 *    (IOT_ESTATE if this registry has another one for it); it is replaced,
 *    working on until `grace_until` if that is later than `now`, RENEWED.
 * *out is meaningful with IOT_OK only. */
iot_status iot_enroll_import_cert(iot_registry *reg, const iot_enroll_import *in, int64_t now,
                                  iot_import_outcome *out, iot_err *err);

/* Applies a revocation another gateway made: `serial` (upper-case hex, as
 * the registry writes it) of `device`. If it is the device's active
 * certificate here, the device is revoked at `now` with `reason` (an RFC
 * 5280 name as iotctl takes it, pki_reason_names; anything else is
 * recorded as "unspecified") and *changed is true. Already revoked, or
 * replaced by a renewal: IOT_OK, *changed false. IOT_ENOENT if the
 * registry has no certificate with that serial; IOT_EINVAL if it is the
 * certificate of another name, or for a malformed device ID or serial. */
iot_status iot_enroll_import_revocation(iot_registry *reg, const char *device, const char *serial,
                                        const char *reason, int64_t now, bool *changed,
                                        iot_err *err);

/* Takes in a token created at another gateway: its id, device, created
 * and expires from `rec`, with its hash; unused and unrevoked here (its
 * use is claimed in the shared state, its revocation comes with
 * iot_token_revoke). *added is false when the registry has that token
 * already (nothing written). IOT_EINVAL for a malformed device ID or hash,
 * an id that is not "tok-" and the hash's first 12 digits, or an expiry
 * before the creation. One transaction. */
iot_status iot_token_import(iot_registry *reg, const iot_token_record *rec, const char *hash,
                            bool *added, iot_err *err);

/* Takes in a request that waits (or waited) for an operator at another
 * gateway, or the operator's decision on it (state pending, approved or
 * denied; e->serial is ignored). Unknown here: it is added (as issued, if
 * this registry has that key's certificate for the device already). A
 * request pending here for the same key: the decision is taken. Anything
 * else changes nothing: a decision is not undone. *changed says whether
 * something was written. IOT_EINVAL for a malformed record. One
 * transaction. A certificate taken in with iot_enroll_import_cert settles
 * the device's pending or approved request for the same key as issued. */
iot_status iot_enroll_import_request(iot_registry *reg, const iot_enroll_record *e, bool *changed,
                                     iot_err *err);

#endif
