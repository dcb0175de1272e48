/* Enrollment and renewal of the device's certificate (EST, RFC 7030).
 *
 * A state machine over iotd_port (clock, random, log) and iotd_cred_port
 * (keys, slots, EST requests). It allocates nothing: the caller owns the
 * iotd_enroll and one work buffer.
 *
 *   no certificate  -> first enrollment: cacerts, then simpleenroll with the
 *                      token or the bootstrap certificate; the answer becomes
 *                      the active certificate at once (there is no other).
 *   certificate     -> waits until about two thirds of its lifetime (plus
 *                      random jitter up to a twelfth, so a fleet enrolled
 *                      together does not renew together), then a new key,
 *                      simplereenroll with the current certificate; the
 *                      answer goes to the candidate slot; one probe request
 *                      with it; only when the gateway admits it does the
 *                      candidate become active. A refused candidate is
 *                      dropped and the old certificate stays in use.
 *
 * Answers: 200 stores; 202 (pending approval) asks again after Retry-After;
 * 429/503 with Retry-After wait that long; 409 (key reused, renewal
 * conflict) makes a new key; no answer or any other refusal backs off
 * exponentially with jitter (iotd/backoff.h). After no answer the next
 * request uses the same key, so a lost answer is issued again, not twice.
 */
#ifndef IOTD_ENROLL_H
#define IOTD_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/backoff.h"
#include "iotd/cred_port.h"
#include "iotd/port.h"
#include "iotd/status.h"

/* The work buffer must hold the CSR, its base64 form and the longest
 * answer (base64 PKCS#7 of the device and CA certificates). */
#define IOTD_ENROLL_WORK_MIN 4096u

typedef enum iotd_enroll_auth {
    IOTD_ENROLL_AUTH_TOKEN = 0, /* HTTP Basic DEVICE-ID:TOKEN */
    IOTD_ENROLL_AUTH_BOOTSTRAP, /* the bootstrap (factory) client certificate */
} iotd_enroll_auth;

typedef struct iotd_enroll_config {
    iotd_enroll_auth first_auth; /* how the first enrollment authenticates */
    bool fetch_cacerts;          /* GET cacerts before the first enrollment */
    uint32_t backoff_base_ms;    /* first retry ceiling (default 5 s) */
    uint32_t backoff_max_ms;     /* retry ceiling (default 1 h) */
    uint32_t retry_after_max_s;  /* longest Retry-After honoured (default 1 day) */
    uint32_t pending_s;          /* 202 without Retry-After: ask again after (default 60 s) */
} iotd_enroll_config;

typedef enum iotd_enroll_state {
    IOTD_ENROLL_WAIT = 0, /* an active certificate; renewal not yet due */
    IOTD_ENROLL_CACERTS,  /* first enrollment: fetching the CA certificates */
    IOTD_ENROLL_REQUEST,  /* asking for a certificate (simpleenroll or simplereenroll) */
    IOTD_ENROLL_PROBE,    /* a candidate certificate waits for its first admitted request */
} iotd_enroll_state;

typedef struct iotd_enroll_stats {
    uint32_t enrolled;  /* first enrollments completed */
    uint32_t renewed;   /* renewals committed */
    uint32_t requests;  /* EST requests sent (cacerts included) */
    uint32_t pending;   /* 202 answers */
    uint32_t conflicts; /* 409 answers (each made a new key) */
    uint32_t refused;   /* other refusals (4xx, 5xx, unusable answers) */
    uint32_t no_answer; /* requests and probes without a response */
    uint32_t rollbacks; /* candidates refused by the gateway and dropped */
} iotd_enroll_stats;

typedef struct iotd_enroll {
    const iotd_port *port;
    const iotd_cred_port *cred;
    iotd_enroll_config cfg;
    char *work; /* caller's buffer; nothing in it survives a call */
    size_t work_cap;
    iotd_enroll_state state;
    iotd_backoff backoff;
    uint64_t due_ms;    /* uptime at which the next action is due */
    bool has_active;    /* the active slot holds a certificate */
    bool renew_now;     /* iotd_enroll_renew_now was called */
    int64_t renew_at;   /* Unix seconds at which renewal starts */
    int64_t active_end; /* the active certificate's notAfter */
    iotd_enroll_stats stats;
} iotd_enroll;

void iotd_enroll_config_init(iotd_enroll_config *cfg);

/* Reads the slots: a candidate certificate left by a reset resumes at its
 * probe; no active certificate starts the first enrollment. `work` (cap
 * bytes, at least IOTD_ENROLL_WORK_MIN) is used only during the calls of
 * iotd_enroll_step and belongs to the caller between them; port, cred and
 * work must outlive the machine. IOTD_EINVAL for a NULL argument or a short
 * buffer; IOTD_ECORRUPT when the active certificate cannot be read. */
iotd_status iotd_enroll_init(iotd_enroll *e, const iotd_port *port, const iotd_cred_port *cred,
                             const iotd_enroll_config *cfg, char *work, size_t cap);

/* Does what is due at uptime now_ms (at most one request) and returns the
 * milliseconds until it wants to be called again. */
uint32_t iotd_enroll_step(iotd_enroll *e, uint64_t now_ms);

/* Starts a renewal at the next step, whatever the certificate's age. */
void iotd_enroll_renew_now(iotd_enroll *e);

/* True once the active slot holds a certificate. */
bool iotd_enroll_has_certificate(const iotd_enroll *e);

iotd_enroll_state iotd_enroll_get_state(const iotd_enroll *e);

/* Unix seconds at which the renewal of the active certificate starts;
 * 0 without one. */
int64_t iotd_enroll_renew_at(const iotd_enroll *e);

/* Base64 (RFC 4648, with padding) of in[0..len) into out (cap bytes, a NUL
 * added): IOTD_ENOSPC when it does not fit. out may not overlap in. */
iotd_status iotd_base64_encode(const uint8_t *in, size_t len, char *out, size_t cap,
                               size_t *out_len);

/* Decodes base64 in place (whitespace skipped, padding optional): the bytes
 * overwrite buf from its start. IOTD_EINVAL on any other character or a
 * truncated group. */
iotd_status iotd_base64_decode_inplace(char *buf, size_t len, size_t *out_len);

#endif
