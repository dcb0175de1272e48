/* Enrollment: the endpoints' handlers (worker threads) and the thread
 * that runs the rules; est.h says who does what. */
#include "est.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>

#include <cjson/cJSON.h>

#include "admission.h"
#include "conn.h"
#include "http1.h"
#include "ingest.h"
#include "iot/identity.h"
#include "iot/pki.h"
#include "log.h"
#include "metrics.h"
#include "regshare.h"
#include "shared.h"

#define FAIL_SLOTS 1024 /* addresses whose failures are remembered */

typedef struct fail_slot {
    char address[GW_PEER_MAX];
    int64_t since; /* start of its window */
    int count;
} fail_slot;

struct gw_est {
    gw_est_options opt;
    iot_enroll_policy policy;
    pki_ca issuer;
    X509 *root;
    X509 *bootstrap;
    STACK_OF(X509) * issuers; /* every active intermediate the registry keeps, this one included */
    iot_registry *reg;        /* the thread's */
    char *cacerts;            /* base64 PKCS#7 of the issuer and the root */
    size_t cacerts_len;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* the queue and stop */
    pthread_cond_t wake;
    gw_est_job *head, *tail;
    bool stop;
    pthread_mutex_t fail_lock; /* fails */
    fail_slot fails[FAIL_SLOTS];
};

static const char AUTH_HEADER[] = "WWW-Authenticate: Basic realm=\"est\"\r\n";
static const char PKCS7_TYPE[] = "application/pkcs7-mime; smime-type=certs-only";
static const char CACERTS_TYPE[] = "application/pkcs7-mime";
static const char B64_HEADER[] = "Content-Transfer-Encoding: base64\r\n";

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the per-address failure limit --------------------------------------- */

static fail_slot *fail_find(gw_est *est, const char *address, bool make)
{
    fail_slot *oldest = &est->fails[0];
    for (size_t i = 0; i < FAIL_SLOTS; i++) {
        fail_slot *s = &est->fails[i];
        if (strcmp(s->address, address) == 0)
            return s;
        if (s->since < oldest->since)
            oldest = s;
    }
    if (!make)
        return NULL;
    memset(oldest, 0, sizeof(*oldest));
    snprintf(oldest->address, sizeof(oldest->address), "%s", address);
    return oldest;
}

/* Whether the address is over its failures; *retry: seconds until its
 * window ends. */
static bool over_failures(gw_est *est, const char *address, int *retry)
{
    int64_t now = now_s();
    pthread_mutex_lock(&est->fail_lock);
    fail_slot *s = fail_find(est, address, false);
    bool over = s != NULL && s->count >= est->opt.max_failures &&
                now - s->since < est->opt.failure_window_s;
    if (over)
        *retry = (int)(s->since + est->opt.failure_window_s - now);
    pthread_mutex_unlock(&est->fail_lock);
    return over;
}

static void count_failure(gw_est *est, const char *address)
{
    int64_t now = now_s();
    pthread_mutex_lock(&est->fail_lock);
    fail_slot *s = fail_find(est, address, true);
    if (now - s->since >= est->opt.failure_window_s) {
        s->since = now;
        s->count = 0;
    }
    s->count++;
    pthread_mutex_unlock(&est->fail_lock);
}

/* ---- answers -------------------------------------------------------------- */

static gw_est_result result_of(int status)
{
    if (status == 429)
        return GW_EST_R_RATE_LIMITED;
    return status == 503 ? GW_EST_R_UNAVAILABLE : GW_EST_R_REFUSED;
}

/* Refuses an enrollment request: counted, logged, answered; a refused
 * authentication or enrollment (401, 403) counts against the address. */
static void refuse(gw_conn *c, gw_est *est, gw_refusal why, const char *device, const char *detail,
                   int retry)
{
    int status = gw_refusal_row_of(why)->status;
    gw_est_result_inc(result_of(status));
    if (est != NULL && (status == 401 || status == 403) && c->has_address)
        count_failure(est, c->address_text);
    if (status == 401)
        gw_conn_refuse_with(c, why, device, detail, AUTH_HEADER);
    else
        gw_conn_refuse(c, why, device, detail, retry);
}

static void answer_pending(gw_conn *c, gw_est *est, const char *device)
{
    char headers[64];
    char body[256];
    snprintf(headers, sizeof(headers), "Retry-After: %lld\r\n", (long long)est->opt.retry_after_s);
    size_t len = gw_http_error_body(body, sizeof(body), "pending",
                                    "the enrollment waits for an operator's approval; ask "
                                    "again after Retry-After");
    gw_est_result_inc(GW_EST_R_PENDING);
    gw_log(GW_LOG_INFO, "est.pending", "peer=%s device=%s", c->peer, device);
    gw_conn_reply(c, 202, headers, body, len);
}

void gw_est_job_free(gw_est_job *job)
{
    if (job == NULL)
        return;
    if (job->conn != NULL)
        gw_conn_unref(job->conn);
    free(job->csr);
    free(job->body);
    free(job);
}

void gw_est_answer(gw_est_job *job)
{
    gw_conn *c = job->conn;
    if (c != NULL && gw_conn_is_open(c)) {
        if (job->status == 200)
            gw_conn_reply_as(c, 200, PKCS7_TYPE, B64_HEADER, job->body, job->body_len);
        else if (job->status == 202)
            answer_pending(c, job->est, job->device);
        else /* a 503 says when to come back */
            refuse(c, job->est, job->refusal, job->device, job->detail,
                   job->status == 503 && job->est != NULL ? (int)job->est->opt.retry_after_s : 0);
    }
    gw_est_job_free(job);
}

/* ---- the thread ------------------------------------------------------------ */

/* The refusal each reason of iot_enroll() stands for. */
static const struct {
    const char *reason;
    gw_refusal refusal;
} REASONS[] = {
    {"token_unknown", GW_REF_EST_TOKEN_UNKNOWN},
    {"token_used", GW_REF_EST_TOKEN_USED},
    {"token_expired", GW_REF_EST_TOKEN_EXPIRED},
    {"token_revoked", GW_REF_EST_TOKEN_REVOKED},
    {"token_wrong_device", GW_REF_EST_TOKEN_WRONG_DEVICE},
    {"csr_invalid", GW_REF_EST_CSR_INVALID},
    {"key_reused", GW_REF_EST_KEY_REUSED},
    {"name_taken", GW_REF_EST_NAME_TAKEN},
    {"device_revoked", GW_REF_EST_DEVICE_REVOKED},
    {"device_unknown", GW_REF_EST_DEVICE_UNKNOWN},
    {"certificate_replaced", GW_REF_EST_CERT_REPLACED},
    {"denied", GW_REF_EST_DENIED},
    {"renewal_conflict", GW_REF_EST_RENEWAL_CONFLICT},
    {"issuer_revoked", GW_REF_EST_ISSUER_REVOKED},
    {"issuer_expired", GW_REF_EST_ISSUER_EXPIRED},
    {"issuer_unknown", GW_REF_EST_ISSUER_UNKNOWN},
};

static gw_refusal refusal_of(const char *reason)
{
    for (size_t i = 0; reason != NULL && i < sizeof(REASONS) / sizeof(REASONS[0]); i++)
        if (strcmp(REASONS[i].reason, reason) == 0)
            return REASONS[i].refusal;
    return GW_REF_EST_UNAVAILABLE;
}

/* The 200 body: the new certificate, then the issuer. */
static bool build_answer(gw_est *est, gw_est_job *job, X509 *cert)
{
    X509 *certs[2] = {cert, est->issuer.cert};
    unsigned char *der = NULL;
    size_t len = 0;
    if (!gw_est_certs_only(certs, 2, &der, &len))
        return false;
    size_t cap = gw_est_base64_size(len);
    job->body = malloc(cap);
    if (job->body != NULL)
        job->body_len = gw_est_base64_encode(der, len, job->body, cap);
    OPENSSL_free(der);
    return job->body != NULL;
}

static void issued(gw_est *est, gw_est_job *job, iot_enroll_result *res, double started)
{
    iot_err err = {0};
    bool again = res->outcome == IOT_ENROLL_OUT_REISSUED;
    if (!build_answer(est, job, res->cert)) {
        job->status = 503;
        job->refusal = GW_REF_EST_UNAVAILABLE;
        snprintf(job->detail, sizeof(job->detail), "out of memory; retry later");
        return;
    }
    /* Several gateways: the others must know the certificate before the
     * device has it (regshare.h); if they cannot, the device asks again
     * and gets the same one. */
    if (est->opt.shared != NULL &&
        gw_regshare_publish(est->opt.shared, est->opt.gateway, est->reg, job->device,
                            res->issued.serial, &err) != IOT_OK) {
        job->status = 503;
        job->refusal = GW_REF_EST_UNAVAILABLE;
        snprintf(job->detail, sizeof(job->detail),
                 "the certificate cannot be shared with the other gateways now; retry");
        return;
    }
    if (gw_admission_add_issued(est->opt.identity, &res->issued, est->opt.grace_s > 0, &err) !=
        IOT_OK)
        gw_log(GW_LOG_WARN, "est.admit_deferred",
               "device=%s serial=%s error=\"%s\" action=\"admitted at the next reload\"",
               job->device, res->issued.serial, err.msg);
    job->status = 200;
    gw_est_result_inc(again ? GW_EST_R_REISSUED : GW_EST_R_ISSUED);
    gw_log(GW_LOG_INFO, again ? "est.reissued" : "est.issued",
           "peer=%s device=%s serial=%s not_after=%lld method=%s duration_ms=%.1f", job->peer,
           job->device, res->issued.serial, (long long)res->issued.not_after,
           job->method == IOT_ENROLL_RENEW      ? "renew"
           : job->method == IOT_ENROLL_BY_TOKEN ? "token"
                                                : "bootstrap",
           now_ms() - started);
}

/* The root's CRL reaches the gateway with every CRL push, the registry
 * only through the gateway: an intermediate the CRL lists signs nothing
 * more, whatever the registry says. */
static bool issuer_on_crl(gw_est *est)
{
    X509_CRL *crl = gw_admission_crl(est->opt.identity);
    X509_REVOKED *entry = NULL;
    bool listed = crl != NULL &&
                  X509_CRL_get0_by_serial(
                      crl, &entry, (ASN1_INTEGER *)X509_get0_serialNumber(est->issuer.cert)) == 1;
    X509_CRL_free(crl);
    return listed;
}

static void run_job(gw_est *est, gw_est_job *job)
{
    if (issuer_on_crl(est)) {
        job->refusal = GW_REF_EST_ISSUER_REVOKED;
        job->status = gw_refusal_row_of(job->refusal)->status;
        snprintf(job->detail, sizeof(job->detail),
                 "the issuing CA is revoked by the root's CRL; enrollments resume once the "
                 "gateway has a new one (iotctl ca intermediate)");
        return;
    }
    double started = now_ms();
    iot_enroll_request req = {.method = job->method,
                              .device_id = job->device,
                              .token = job->token,
                              .auth_serial = job->auth_serial,
                              .auth_spki = job->auth_spki,
                              .csr = job->csr,
                              .csr_len = job->csr_len,
                              .peer = job->address,
                              .now = now_s()};
    iot_enroll_result res;
    iot_err err = {0};
    iot_status st = iot_enroll(est->reg, &est->issuer, &est->policy, &req, &res, &err);
    job->refusal = GW_REF_COUNT;
    if (st != IOT_OK) {
        job->status = 503;
        job->refusal = GW_REF_EST_UNAVAILABLE;
        snprintf(job->detail, sizeof(job->detail),
                 "the registry or the shared state cannot be written now; retry");
        gw_log(GW_LOG_ERROR, "est.failed", "peer=%s device=%s error=\"%s\"", job->peer, job->device,
               err.msg);
    } else if (res.outcome == IOT_ENROLL_OUT_ISSUED || res.outcome == IOT_ENROLL_OUT_REISSUED) {
        issued(est, job, &res, started);
    } else if (res.outcome == IOT_ENROLL_OUT_PENDING) {
        job->status = 202;
    } else {
        job->refusal = refusal_of(res.reason);
        job->status = gw_refusal_row_of(job->refusal)->status;
        snprintf(job->detail, sizeof(job->detail), "%.159s", err.msg);
    }
    X509_free(res.cert);
}

static void end_grace(gw_est *est, const char *device)
{
    iot_cert_record cur;
    iot_err err = {0};
    int ended = 0;
    iot_status st = iot_registry_get_by_name(est->reg, device, &cur, &err);
    if (st == IOT_OK)
        st = iot_registry_end_grace(est->reg, cur.serial, now_s(), &ended, &err);
    if (st != IOT_OK) {
        gw_log(GW_LOG_WARN, "est.end_grace_failed", "device=%s error=\"%s\"", device, err.msg);
        return;
    }
    gw_admission_end_grace(est->opt.identity, device, &err);
    if (ended > 0)
        gw_log(GW_LOG_INFO, "est.grace_ended", "device=%s serial=%s replaced=%d", device,
               cur.serial, ended);
}

static gw_est_job *next_job(gw_est *est)
{
    pthread_mutex_lock(&est->lock);
    while (est->head == NULL && !est->stop)
        pthread_cond_wait(&est->wake, &est->lock);
    gw_est_job *job = est->head;
    if (job != NULL) {
        est->head = job->next;
        if (est->head == NULL)
            est->tail = NULL;
        job->next = NULL;
    }
    pthread_mutex_unlock(&est->lock);
    return job;
}

static void *est_main(void *arg)
{
    gw_est *est = arg;
    for (gw_est_job *job = next_job(est); job != NULL; job = next_job(est)) {
        if (job->conn == NULL) {
            end_grace(est, job->device);
            gw_est_job_free(job);
            continue;
        }
        run_job(est, job);
        gw_ingest_est_done(job);
    }
    return NULL;
}

static void submit(gw_est *est, gw_est_job *job)
{
    pthread_mutex_lock(&est->lock);
    if (est->tail != NULL)
        est->tail->next = job;
    else
        est->head = job;
    est->tail = job;
    pthread_cond_signal(&est->wake);
    pthread_mutex_unlock(&est->lock);
}

void gw_est_end_grace(gw_est *est, const char *device)
{
    gw_est_job *job = calloc(1, sizeof(*job));
    if (job == NULL)
        return; /* the next request with the certificate asks again */
    job->est = est;
    snprintf(job->device, sizeof(job->device), "%s", device);
    submit(est, job);
}

/* ---- the handlers ---------------------------------------------------------- */

static gw_est *est_of(gw_conn *c)
{
    return c->env->app != NULL ? c->env->app->est : NULL;
}

static X509 *peer_cert(gw_conn *c)
{
    return c->ssl != NULL ? SSL_get0_peer_certificate(c->ssl) : NULL;
}

void gw_est_cacerts(gw_conn *c, gw_http_request *req, const char *device)
{
    (void)req;
    gw_est *est = est_of(c);
    if (est == NULL) {
        gw_conn_refuse(c, GW_REF_NOT_FOUND, device, "enrollment is off on this gateway", 0);
        return;
    }
    if (c->bootstrap) {
        refuse(c, est, GW_REF_BOOTSTRAP_CERTIFICATE, device,
               "a bootstrap certificate may only ask for enrollment (simpleenroll)", 0);
        return;
    }
    if (peer_cert(c) != NULL && c->pending != GW_REF_COUNT) {
        refuse(c, est, c->pending, c->pending_who, c->pending_detail, 0);
        return;
    }
    gw_est_result_inc(GW_EST_R_CACERTS);
    gw_conn_reply_as(c, 200, CACERTS_TYPE, B64_HEADER, est->cacerts, est->cacerts_len);
}

/* The checks before the thread: the endpoint is on, the address is not
 * over its failures, the body is a base64 PKCS#10 of at most
 * GW_EST_CSR_MAX bytes. Returns the job, or NULL with the request
 * answered. */
static gw_est_job *start_job(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_est *est = est_of(c);
    int retry = 0;
    if (est == NULL) {
        gw_conn_refuse(c, GW_REF_NOT_FOUND, device, "enrollment is off on this gateway", 0);
        return NULL;
    }
    if (c->has_address && over_failures(est, c->address_text, &retry)) {
        refuse(c, est, GW_REF_EST_RATE_LIMITED, device,
               "too many refused enrollments from this address (est_max_failures)", retry);
        return NULL;
    }
    if (!gw_est_is_pkcs10(req->content_type)) {
        refuse(c, est, GW_REF_MEDIA_TYPE, device, "send the CSR as application/pkcs10", 0);
        return NULL;
    }
    gw_est_job *job = calloc(1, sizeof(*job));
    unsigned char *csr = malloc(GW_EST_CSR_MAX);
    const char *body = req->body != NULL ? (const char *)req->body : "";
    int rc = job != NULL && csr != NULL
                 ? gw_est_base64_decode(body, req->body_len, csr, GW_EST_CSR_MAX, &job->csr_len)
                 : -3;
    if (rc != 0) {
        free(job);
        free(csr);
        refuse(c, est, rc == -3 ? GW_REF_OUT_OF_MEMORY : GW_REF_EST_CSR_INVALID, device,
               rc == -3 ? "out of memory; retry later" : "the body is not a base64 PKCS#10", 0);
        return NULL;
    }
    job->csr = csr;
    job->est = est;
    snprintf(job->peer, sizeof(job->peer), "%s", c->peer);
    snprintf(job->address, sizeof(job->address), "%s", c->address_text);
    return job;
}

static void hand_over(gw_conn *c, gw_est_job *job)
{
    job->conn = c;
    gw_conn_ref(c);
    gw_ingest_est_begin(c);
    submit(job->est, job);
}

static bool serial_of(X509 *cert, char out[IOT_SERIAL_HEX_MAX + 1])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    bool ok = hex != NULL && strlen(hex) <= IOT_SERIAL_HEX_MAX;
    if (ok)
        snprintf(out, IOT_SERIAL_HEX_MAX + 1, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return ok;
}

/* A bootstrap certificate: its CN names the device, its serial and key
 * are recorded (the CSR may not reuse the key). */
static bool by_bootstrap(gw_conn *c, gw_est_job *job)
{
    X509 *cert = peer_cert(c);
    iot_err err;
    job->method = IOT_ENROLL_BY_BOOTSTRAP;
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, job->device,
                                  sizeof(job->device)) <= 0)
        job->device[0] = '\0';
    return serial_of(cert, job->auth_serial) &&
           pki_key_fingerprint(X509_get0_pubkey(cert), job->auth_spki, &err) == IOT_OK;
}

void gw_est_simpleenroll(gw_conn *c, gw_http_request *req, const char *device)
{
    if (peer_cert(c) != NULL && !c->bootstrap) {
        refuse(c, est_of(c), GW_REF_EST_ENROLLED, device,
               "this device has a certificate: renew it with simplereenroll", 0);
        return;
    }
    gw_est_job *job = start_job(c, req, device);
    if (job == NULL)
        return;
    if (c->bootstrap) {
        if (!by_bootstrap(c, job)) {
            gw_est_job_free(job);
            refuse(c, est_of(c), GW_REF_EST_UNAVAILABLE, device,
                   "the bootstrap certificate cannot be read", 0);
            return;
        }
        hand_over(c, job);
        return;
    }
    job->method = IOT_ENROLL_BY_TOKEN;
    if (!gw_est_basic_parse(req->authorization, job->device, job->token)) {
        gw_est_job_free(job);
        refuse(c, est_of(c), GW_REF_EST_AUTH_MISSING, device,
               "authenticate with HTTP Basic DEVICE-ID:TOKEN or a bootstrap certificate", 0);
        return;
    }
    hand_over(c, job);
}

void gw_est_simplereenroll(gw_conn *c, gw_http_request *req, const char *device)
{
    gw_est *est = est_of(c);
    X509 *cert = peer_cert(c);
    if (est != NULL && (cert == NULL || c->bootstrap || c->pending != GW_REF_COUNT)) {
        gw_refusal why = cert == NULL   ? GW_REF_CERTIFICATE_REQUIRED
                         : c->bootstrap ? GW_REF_BOOTSTRAP_CERTIFICATE
                                        : c->pending;
        refuse(c, est, why, c->pending_who,
               cert == NULL ? "renewal needs the device's current certificate" : c->pending_detail,
               0);
        return;
    }
    gw_est_job *job = start_job(c, req, device);
    if (job == NULL)
        return;
    job->method = IOT_ENROLL_RENEW;
    snprintf(job->device, sizeof(job->device), "%s", device);
    if (!serial_of(cert, job->auth_serial)) {
        gw_est_job_free(job);
        refuse(c, est, GW_REF_EST_UNAVAILABLE, device, "the certificate cannot be read", 0);
        return;
    }
    hand_over(c, job);
}

/* ---- start and stop ----------------------------------------------------------- */

X509 *gw_est_issuer(const gw_est *est)
{
    return est->issuer.cert;
}

STACK_OF(X509) * gw_est_issuers(const gw_est *est)
{
    return est->issuers;
}

X509 *gw_est_bootstrap_ca(const gw_est *est)
{
    return est->bootstrap;
}

/* A new intermediate (first start, or rotation) is made on the machine
 * that holds the root key and recorded in that machine's registry; the
 * gateway's registry learns it here, once the root's signature on it has
 * been checked. Its name is its CN, which must not be taken. */
static iot_status record_issuer(gw_est *est, const pki_cert_facts *f, iot_err *err)
{
    iot_cert_record rec = {.kind = IOT_KIND_ISSUER, .created = now_s()};
    X509_NAME *subject = X509_get_subject_name(est->issuer.cert);
    if (X509_NAME_get_text_by_NID(subject, NID_commonName, rec.name, sizeof(rec.name)) <= 0 ||
        !iot_id_is_valid(rec.name))
        return iot_err_set(err, IOT_EINVAL,
                           "est_ca_cert %s has no usable CN to record it by: make the issuing CA "
                           "with 'iotctl ca intermediate NAME'",
                           est->opt.ca_cert);
    iot_status st = pki_key_fingerprint(est->issuer.key, rec.spki, err);
    if (st != IOT_OK)
        return st;
    snprintf(rec.role, sizeof(rec.role), "issuer");
    memcpy(rec.serial, f->serial, sizeof(rec.serial));
    memcpy(rec.fingerprint, f->fingerprint, sizeof(rec.fingerprint));
    rec.not_before = f->not_before;
    rec.not_after = f->not_after;
    st = iot_registry_add(est->reg, &rec, err);
    if (st != IOT_OK)
        return st;
    gw_log(GW_LOG_INFO, "est.issuer_recorded", "name=%s serial=%s registry=%s", rec.name,
           rec.serial, est->opt.registry);
    /* Admission vouches for its devices only once it knows it. */
    return gw_admission_reload(est->opt.identity, err);
}

/* The issuer must be signed by the root; the registry records it. */
static iot_status check_issuer(gw_est *est, iot_err *err)
{
    EVP_PKEY *root_key = X509_get0_pubkey(est->root);
    if (root_key == NULL || X509_verify(est->issuer.cert, root_key) != 1) {
        ERR_clear_error();
        return iot_err_set(err, IOT_ECRYPTO,
                           "est_ca_cert %s is not signed by client_ca %s: make the issuing CA "
                           "with 'iotctl ca intermediate'",
                           est->opt.ca_cert, est->opt.root);
    }
    pki_cert_facts f;
    iot_cert_record rec;
    iot_status st = pki_cert_facts_get(est->issuer.cert, &f, err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_get_by_serial(est->reg, f.serial, &rec, err);
    if (st == IOT_ENOENT)
        return record_issuer(est, &f, err);
    if (st != IOT_OK || rec.kind != IOT_KIND_ISSUER)
        return iot_err_set(err, IOT_EINVAL,
                           "est_ca_cert %s (serial %s) is not an issuer in the registry %s",
                           est->opt.ca_cert, f.serial, est->opt.registry);
    if (rec.revoked)
        gw_log(GW_LOG_WARN, "est.issuer_revoked",
               "serial=%s action=\"enrollments are refused (503); make a new issuer with "
               "'iotctl ca intermediate' and point est_ca_cert/est_ca_key at it\"",
               f.serial);
    return IOT_OK;
}

/* The registry keeps each intermediate the gateway has signed with, so
 * that after a rotation the devices of the previous one still verify
 * (they send their own certificate only) until they renew. */
static iot_status keep_issuer_der(gw_est *est, iot_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_X509(est->issuer.cert, &der);
    pki_cert_facts f;
    iot_status st = n > 0 ? pki_cert_facts_get(est->issuer.cert, &f, err)
                          : iot_err_set(err, IOT_ENOMEM, "cannot encode est_ca_cert");
    if (st == IOT_OK)
        st = iot_registry_set_der(est->reg, f.serial, der, (size_t)n, err);
    OPENSSL_free(der);
    return st;
}

typedef struct issuer_walk {
    gw_est *est;
    iot_err *err;
} issuer_walk;

static int add_issuer(const iot_cert_record *rec, void *arg)
{
    issuer_walk *w = arg;
    unsigned char buf[8192];
    size_t len = 0;
    iot_err ignored = {0};
    if (rec->revoked ||
        iot_registry_get_der(w->est->reg, rec->serial, buf, sizeof(buf), &len, &ignored) != IOT_OK)
        return 0; /* kept since this gateway signs with it, or not at all */
    const unsigned char *p = buf;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL || sk_X509_push(w->est->issuers, cert) <= 0) {
        X509_free(cert);
        iot_err_set(w->err, IOT_ENOMEM, "cannot load the kept certificate of issuer %s", rec->name);
        return 1;
    }
    return 0;
}

static iot_status load_issuers(gw_est *est, iot_err *err)
{
    iot_status st = keep_issuer_der(est, err);
    if (st != IOT_OK)
        return st;
    est->issuers = sk_X509_new_null();
    if (est->issuers == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    issuer_walk w = {.est = est, .err = err};
    st = iot_registry_foreach(est->reg, IOT_KIND_ISSUER, add_issuer, &w, err);
    if (st == IOT_OK && sk_X509_num(est->issuers) > 1)
        gw_log(GW_LOG_INFO, "est.issuers_trusted",
               "count=%d action=\"devices of every active intermediate verify\"",
               sk_X509_num(est->issuers));
    return st;
}

static iot_status build_cacerts(gw_est *est, iot_err *err)
{
    X509 *certs[2] = {est->issuer.cert, est->root};
    unsigned char *der = NULL;
    size_t len = 0;
    if (!gw_est_certs_only(certs, 2, &der, &len))
        return iot_err_set(err, IOT_ENOMEM, "out of memory building cacerts");
    size_t cap = gw_est_base64_size(len);
    est->cacerts = malloc(cap);
    if (est->cacerts != NULL)
        est->cacerts_len = gw_est_base64_encode(der, len, est->cacerts, cap);
    OPENSSL_free(der);
    return est->cacerts != NULL ? IOT_OK : iot_err_set(err, IOT_ENOMEM, "out of memory");
}

static iot_status load(gw_est *est, iot_err *err)
{
    const gw_est_options *o = &est->opt;
    iot_status st = pki_ca_load(o->ca_key, o->ca_cert, &est->issuer, err);
    if (st == IOT_OK)
        st = pki_cert_load(o->root, &est->root, err);
    if (st == IOT_OK && o->bootstrap_ca != NULL && o->bootstrap_ca[0] != '\0')
        st = pki_cert_load(o->bootstrap_ca, &est->bootstrap, err);
    if (st == IOT_OK)
        st = iot_registry_open(o->registry, IOT_REGISTRY_WRITE, &est->reg, err);
    if (st != IOT_OK)
        return st;
    iot_registry_set_busy_timeout(est->reg, 5000);
    st = check_issuer(est, err);
    if (st == IOT_OK)
        st = load_issuers(est, err);
    if (st == IOT_OK)
        st = build_cacerts(est, err);
    return st;
}

/* The claim's value: who spent the token, for which device and key. */
static char *claim_value(const gw_est *est, const char *device, const char *spki)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "device", device);
    cJSON_AddStringToObject(v, "spki", spki);
    cJSON_AddStringToObject(v, "gateway", est->opt.gateway);
    cJSON_AddNumberToObject(v, "at", (double)now_s());
    char *text = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return text;
}

/* A claim found in place: the same device with the same key (an answer
 * it lost, here or at another gateway) may go on; anything else spent it. */
static iot_status claim_found(const char *existing, const char *device, const char *spki,
                              iot_err *err)
{
    cJSON *v = cJSON_Parse(existing);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "device");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(v, "spki");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(v, "gateway");
    bool same = cJSON_IsString(d) && cJSON_IsString(k) && strcmp(d->valuestring, device) == 0 &&
                strcmp(k->valuestring, spki) == 0;
    char at[64];
    snprintf(at, sizeof(at), "%.63s", cJSON_IsString(g) ? g->valuestring : "?");
    cJSON_Delete(v);
    if (same)
        return IOT_OK;
    gw_log(GW_LOG_WARN, "est.token_spent_elsewhere", "device=%s spent_at=%s", device, at);
    return iot_err_set(err, IOT_EEXIST, "the token was spent at gateway %s", at);
}

/* iot_enroll_claim_fn on the shared state: one gateway spends a token. */
static iot_status claim_token(void *ctx, const char *token_hash, const char *device,
                              const char *spki, iot_err *err)
{
    gw_est *est = ctx;
    char key[GW_SHARED_KEY_MAX];
    char existing[GW_SHARED_VALUE_MAX];
    bool created = false;
    snprintf(key, sizeof(key), "/iot/tokens/%s", token_hash);
    char *value = claim_value(est, device, spki);
    if (value == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st =
        gw_shared_create(est->opt.shared, key, value, &created, existing, sizeof(existing), err);
    free(value);
    if (st != IOT_OK) {
        gw_metric_inc(GW_M_SHARED_ERRORS);
        gw_log(GW_LOG_ERROR, "shared.unavailable", "for=enrollment device=%s error=\"%s\"", device,
               err != NULL ? err->msg : "");
        return st;
    }
    return created ? IOT_OK : claim_found(existing, device, spki, err);
}

iot_status gw_est_open(const gw_est_options *opt, gw_est **out, iot_err *err)
{
    *out = NULL;
    gw_est *est = calloc(1, sizeof(*est));
    if (est == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    est->opt = *opt;
    est->policy = (iot_enroll_policy){.lifetime_s = opt->lifetime_s,
                                      .grace_s = opt->grace_s,
                                      .require_approval = opt->require_approval};
    if (opt->shared != NULL) {
        est->policy.claim_token = claim_token;
        est->policy.claim_ctx = est;
    }
    pthread_mutex_init(&est->lock, NULL);
    pthread_mutex_init(&est->fail_lock, NULL);
    pthread_cond_init(&est->wake, NULL);
    iot_status st = load(est, err);
    if (st == IOT_OK && pthread_create(&est->thread, NULL, est_main, est) != 0)
        st = iot_err_set(err, IOT_EIO, "cannot start the enrollment thread");
    est->started = st == IOT_OK;
    if (st != IOT_OK) {
        gw_est_close(est);
        return st;
    }
    gw_gauge_set(GW_G_EST_ENABLED, 1);
    *out = est;
    return IOT_OK;
}

/* Requests still queued at the stop: answered 503 by their workers (or
 * freed with them). */
static void drain_queue(gw_est *est)
{
    gw_est_job *job = est->head;
    est->head = est->tail = NULL;
    while (job != NULL) {
        gw_est_job *next = job->next;
        job->next = NULL;
        if (job->conn == NULL) {
            gw_est_job_free(job);
        } else {
            job->status = 503;
            job->refusal = GW_REF_SHUTTING_DOWN;
            snprintf(job->detail, sizeof(job->detail), "the gateway is shutting down; retry");
            gw_ingest_est_done(job);
        }
        job = next;
    }
}

void gw_est_close(gw_est *est)
{
    if (est == NULL)
        return;
    if (est->started) {
        pthread_mutex_lock(&est->lock);
        est->stop = true;
        pthread_cond_signal(&est->wake);
        pthread_mutex_unlock(&est->lock);
        pthread_join(est->thread, NULL);
    }
    drain_queue(est);
    iot_registry_close(est->reg);
    pki_ca_free(&est->issuer);
    X509_free(est->root);
    X509_free(est->bootstrap);
    sk_X509_pop_free(est->issuers, X509_free);
    free(est->cacerts);
    pthread_cond_destroy(&est->wake);
    pthread_mutex_destroy(&est->lock);
    pthread_mutex_destroy(&est->fail_lock);
    gw_gauge_set(GW_G_EST_ENABLED, 0);
    free(est);
}
