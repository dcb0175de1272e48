/* Enrollment (EST, RFC 7030 subset) on the device listener:
 *
 *   GET  /.well-known/est/cacerts         the issuing intermediate and the
 *                                         root, certs-only PKCS#7, base64
 *   POST /.well-known/est/simpleenroll    a first certificate: HTTP Basic
 *                                         DEVICE-ID:TOKEN without a client
 *                                         certificate, or a bootstrap-CA
 *                                         client certificate
 *   POST /.well-known/est/simplereenroll  a renewal, with the device's
 *                                         current certificate
 *
 * The rules are iot_enroll()'s (iot/enroll.h), shared with iotctl. They
 * run on one thread of their own, which holds the gateway's only registry
 * write handle and the issuing key: workers check what needs no registry
 * (Content-Type, base64, credentials' form, the per-address failure
 * limit), hand the request over and answer when the thread hands it back
 * (ingest.c wakes their loop). A certificate issued is admitted at once
 * (gw_admission_add_issued); the first admitted request with a renewed
 * certificate ends its predecessor's grace, also on this thread.
 *
 * Every refusal is counted (iotgw_refusals_total by reason,
 * iotgw_est_requests_total by result) and logged as request.refused; an
 * issue is logged as est.issued, a request that waits as est.pending. */
#ifndef GW_EST_H
#define GW_EST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "admission.h"
#include "estcodec.h"
#include "iot/enroll.h"
#include "iot/status.h"
#include "refusal.h"

struct gw_conn;
struct gw_http_request;

typedef struct gw_est gw_est;

typedef struct gw_est_options {
    const char *ca_cert;      /* est_ca_cert: the issuing intermediate */
    const char *ca_key;       /* est_ca_key */
    const char *root;         /* client_ca: the root it must chain to */
    const char *bootstrap_ca; /* est_bootstrap_ca; "" = none */
    const char *registry;     /* the registry the gateway writes */
    gw_admission *identity;   /* where issued certificates are admitted */
    int64_t lifetime_s;
    int64_t grace_s;
    bool require_approval;
    int64_t retry_after_s; /* with 202 */
    int max_failures;      /* per address and window */
    int64_t failure_window_s;
    /* Several gateways: tokens are claimed here before they are spent
     * (shared.h, /iot/tokens/); NULL: this gateway's registry alone. */
    struct gw_shared *shared;
    const char *gateway; /* this gateway's name in what it shares */
} gw_est_options;

/* Loads the issuing CA (which must chain to the root and be an issuer of
 * the registry), opens the registry for writing and starts the thread. */
iot_status gw_est_open(const gw_est_options *opt, gw_est **out, iot_err *err);
/* Stops the thread; requests still queued are answered 503. */
void gw_est_close(gw_est *est);

/* For the TLS context: the issuing CA (a chain element of the devices'
 * certificates) and the bootstrap CA (NULL if none). Borrowed. */
X509 *gw_est_issuer(const gw_est *est);
X509 *gw_est_bootstrap_ca(const gw_est *est);
/* Every active intermediate the registry keeps (this one and those it
 * replaced), chain elements for their devices' certificates. Borrowed. */
STACK_OF(X509) * gw_est_issuers(const gw_est *est);

/* The renewed certificate of `device` was used: its predecessor's grace
 * ends (on the thread). Any thread. */
void gw_est_end_grace(gw_est *est, const char *device);

/* The endpoints' handlers (gw_route_fn; rows with .anyone = true: each
 * decides who may call it). */
void gw_est_cacerts(struct gw_conn *c, struct gw_http_request *req, const char *device);
void gw_est_simpleenroll(struct gw_conn *c, struct gw_http_request *req, const char *device);
void gw_est_simplereenroll(struct gw_conn *c, struct gw_http_request *req, const char *device);

/* A request handed to the thread and back. */
typedef struct gw_est_job {
    struct gw_est_job *next;
    struct gw_conn *conn; /* NULL: ending a grace */
    gw_est *est;
    iot_enroll_method method;
    char device[IOT_ID_MAX + 1];
    char token[GW_EST_PASSWORD_MAX + 1];
    char auth_serial[IOT_SERIAL_HEX_MAX + 1];
    char auth_spki[IOT_FPR_HEX_LEN + 1];
    char peer[64];
    char address[64];
    unsigned char *csr;
    size_t csr_len;
    /* the answer */
    int status;         /* 200, 202, or the refusal's */
    gw_refusal refusal; /* GW_REF_COUNT: none */
    char detail[160];
    char *body; /* 200: base64 PKCS#7 */
    size_t body_len;
} gw_est_job;

/* On the worker thread, once the thread handed the job back: answers the
 * request (if its connection is still open) and frees the job. */
void gw_est_answer(gw_est_job *job);
void gw_est_job_free(gw_est_job *job);

#endif
