/* The rules of enrollment and renewal (iot/enroll.h): who may have a
 * certificate, for which key, and what a repeated request gets. */
#include "iot/enroll.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "enroll_store.h"
#include "registry_internal.h"

#define TOKEN_BYTES 32
#define DER_MAX     4096 /* a P-256 device certificate is about 600 bytes */
/* Issued certificates start a little in the past: a device whose clock
 * is a few minutes behind the gateway's must not see a certificate that
 * is not valid yet. */
#define BACKDATE_S 300

/* What one enrollment works with: the request, and what it learns. */
typedef struct enroll_job {
    iot_registry *reg;
    const pki_ca *issuer;
    char issuer_serial[IOT_SERIAL_HEX_MAX + 1];
    int64_t issuer_not_after;
    const iot_enroll_policy *policy;
    const iot_enroll_request *req;
    iot_enroll_result *res;
    EVP_PKEY *key; /* the CSR's */
    char spki[IOT_FPR_HEX_LEN + 1];
} enroll_job;

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static iot_status token_hash(const char *token, char hash[IOT_FPR_HEX_LEN + 1], iot_err *err)
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n != sizeof(md))
        return iot_err_set(err, IOT_ECRYPTO, "cannot hash a token");
    to_hex(md, sizeof(md), hash);
    return IOT_OK;
}

/* 32 random bytes as base64url without padding. */
static iot_status token_generate(char token[IOT_TOKEN_LEN + 1], iot_err *err)
{
    unsigned char raw[TOKEN_BYTES];
    unsigned char b64[48];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return iot_err_set(err, IOT_ECRYPTO, "the random generator failed");
    int n = EVP_EncodeBlock(b64, raw, sizeof(raw));
    OPENSSL_cleanse(raw, sizeof(raw));
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
    memcpy(token, b64, IOT_TOKEN_LEN);
    token[IOT_TOKEN_LEN] = '\0';
    OPENSSL_cleanse(b64, sizeof(b64));
    return IOT_OK;
}

/* A name can get a token only while nothing in the registry holds it and
 * no usable token for it exists. */
static iot_status check_token_target(iot_registry *reg, const char *device, int64_t now,
                                     iot_err *err)
{
    iot_cert_record rec;
    iot_err lookup;
    iot_status s = iot_registry_get_by_name(reg, device, &rec, &lookup);
    if (s == IOT_OK)
        return iot_err_set(err, IOT_EEXIST,
                           "the name '%s' is already taken by %s %s certificate; a token "
                           "enrolls a new device only",
                           device, rec.revoked ? "a revoked" : iot_cert_kind_article(rec.kind),
                           iot_cert_kind_name(rec.kind));
    if (s != IOT_ENOENT) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    bool live = false;
    s = iot__token_live_for(reg, device, now, &live, err);
    if (s == IOT_OK && live)
        s = iot_err_set(err, IOT_EEXIST,
                        "device '%s' already has a usable token; revoke it first ('iotctl token "
                        "list', 'iotctl token revoke ID')",
                        device);
    return s;
}

iot_status iot_token_create(iot_registry *reg, const char *device, int64_t ttl_s, int64_t now,
                            char token[IOT_TOKEN_LEN + 1], iot_token_record *out, iot_err *err)
{
    token[0] = '\0';
    iot_status s = iot_id_check("device ID", device, err);
    if (s != IOT_OK)
        return s;
    if (ttl_s < 1 || ttl_s > IOT_TOKEN_TTL_MAX)
        return iot_err_set(err, IOT_EINVAL, "a token lives 1 s to %d days, not %lld s",
                           IOT_TOKEN_TTL_MAX / 86400, (long long)ttl_s);
    s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    char hash[IOT_FPR_HEX_LEN + 1];
    iot_token_record t = {.created = now, .expires = now + ttl_s};
    s = check_token_target(reg, device, now, err);
    if (s == IOT_OK)
        s = token_generate(token, err);
    if (s == IOT_OK)
        s = token_hash(token, hash, err);
    if (s == IOT_OK) {
        snprintf(t.id, sizeof(t.id), "tok-%.12s", hash);
        snprintf(t.device, sizeof(t.device), "%s", device);
        s = iot__token_insert(reg, &t, hash, err);
    }
    if (s == IOT_OK)
        s = iot_registry_commit(reg, err);
    if (s != IOT_OK) {
        iot_registry_rollback(reg);
        OPENSSL_cleanse(token, IOT_TOKEN_LEN + 1);
        return s;
    }
    if (out != NULL)
        *out = t;
    return IOT_OK;
}

/* ---- outcomes ------------------------------------------------------------ */

/* A refusal or a wait is a result, not an error: IOT_OK, with the outcome
 * in the result and the words in err. */
static iot_status outcome(enroll_job *job, iot_enroll_outcome o, const char *reason, iot_err *err,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static iot_status outcome(enroll_job *job, iot_enroll_outcome o, const char *reason, iot_err *err,
                          const char *fmt, ...)
{
    job->res->outcome = o;
    job->res->reason = reason;
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->status = IOT_OK;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return IOT_OK;
}

static iot_status refuse_auth(enroll_job *job, const char *reason, iot_err *err)
{
    return outcome(job, IOT_ENROLL_OUT_BAD_AUTH, reason, err, "enrollment token refused: %s",
                   reason);
}

/* ---- issuing ------------------------------------------------------------- */

/* The issuer must be an active, unexpired intermediate of the registry:
 * revoking it stops every enrollment it would sign. */
static iot_status check_issuer(enroll_job *job, bool *usable, iot_err *err)
{
    *usable = false;
    pki_cert_facts facts;
    iot_status s = pki_cert_facts_get(job->issuer->cert, &facts, err);
    if (s != IOT_OK)
        return s;
    snprintf(job->issuer_serial, sizeof(job->issuer_serial), "%s", facts.serial);
    job->issuer_not_after = facts.not_after;
    iot_cert_record rec;
    iot_err lookup;
    s = iot_registry_get_by_serial(job->reg, facts.serial, &rec, &lookup);
    if (s == IOT_ENOENT || (s == IOT_OK && rec.kind != IOT_KIND_ISSUER))
        return outcome(job, IOT_ENROLL_OUT_UNAVAILABLE, "issuer_unknown", err,
                       "the issuing CA (serial %s) is not an issuer in the registry; make one "
                       "with 'iotctl ca intermediate'",
                       facts.serial);
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    if (rec.revoked)
        return outcome(job, IOT_ENROLL_OUT_UNAVAILABLE, "issuer_revoked", err,
                       "the issuing CA '%s' is revoked; configure a new one", rec.name);
    if (rec.not_after <= job->req->now)
        return outcome(job, IOT_ENROLL_OUT_UNAVAILABLE, "issuer_expired", err,
                       "the issuing CA '%s' has expired; configure a new one", rec.name);
    *usable = true;
    return IOT_OK;
}

/* Signs a device certificate for the CSR's key, fixed subject. */
static iot_status sign_cert(enroll_job *job, X509 **cert, pki_cert_facts *facts, iot_err *err)
{
    const iot_enroll_request *req = job->req;
    int64_t not_after = req->now + job->policy->lifetime_s;
    if (not_after > job->issuer_not_after)
        not_after = job->issuer_not_after;
    pki_profile p = {
        .type = PKI_PROFILE_CLIENT,
        .common_name = req->device_id,
        .organization = PKI_ORGANIZATION,
        .unit = "device",
        .not_before = (time_t)(req->now - BACKDATE_S),
        .not_after = (time_t)not_after,
    };
    iot_status s = pki_issue(job->issuer, job->key, &p, cert, err);
    if (s == IOT_OK)
        s = pki_cert_facts_get(*cert, facts, err);
    return s;
}

static iot_status keep_der(enroll_job *job, X509 *cert, const char *serial, iot_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    if (n <= 0)
        return iot_err_set(err, IOT_ECRYPTO, "cannot encode the certificate");
    iot_status s = iot_registry_set_der(job->reg, serial, der, (size_t)n, err);
    OPENSSL_free(der);
    return s;
}

/* Issues the certificate and records it: a new device row, or a renewal
 * whose predecessor keeps working for the grace period. */
static iot_status issue(enroll_job *job, bool renew, iot_err *err)
{
    X509 *cert = NULL;
    pki_cert_facts facts;
    iot_status s = sign_cert(job, &cert, &facts, err);
    if (s != IOT_OK)
        goto out;
    iot_cert_record rec = {.kind = IOT_KIND_DEVICE,
                           .not_before = facts.not_before,
                           .not_after = facts.not_after,
                           .created = job->req->now};
    snprintf(rec.name, sizeof(rec.name), "%s", job->req->device_id);
    snprintf(rec.serial, sizeof(rec.serial), "%s", facts.serial);
    snprintf(rec.fingerprint, sizeof(rec.fingerprint), "%s", facts.fingerprint);
    snprintf(rec.spki, sizeof(rec.spki), "%s", job->spki);
    snprintf(rec.issuer, sizeof(rec.issuer), "%s", job->issuer_serial);
    s = renew ? iot_registry_renew_with_grace(job->reg, &rec, job->req->now,
                                              job->req->now + job->policy->grace_s, err)
              : iot_registry_add(job->reg, &rec, err);
    if (s == IOT_OK)
        s = keep_der(job, cert, rec.serial, err);
    if (s != IOT_OK)
        goto out;
    job->res->outcome = IOT_ENROLL_OUT_ISSUED;
    job->res->reason = "issued";
    job->res->issued = rec;
    job->res->cert = cert;
    cert = NULL;
out:
    X509_free(cert);
    return s;
}

/* The certificate issued before for this key, given again: the device
 * lost the answer and asks with the same CSR. */
static iot_status reissue(enroll_job *job, const char *serial, iot_err *err)
{
    unsigned char der[DER_MAX];
    size_t len = 0;
    iot_status s = iot_registry_get_der(job->reg, serial, der, sizeof(der), &len, err);
    if (s != IOT_OK)
        return s;
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)len);
    if (cert == NULL)
        return iot_err_set(err, IOT_ECORRUPT, "the kept certificate %s cannot be read", serial);
    s = iot_registry_get_by_serial(job->reg, serial, &job->res->issued, err);
    if (s != IOT_OK) {
        X509_free(cert);
        return s;
    }
    job->res->outcome = IOT_ENROLL_OUT_REISSUED;
    job->res->reason = "reissued";
    job->res->cert = cert;
    return IOT_OK;
}

/* ---- first enrollment ---------------------------------------------------- */

/* A new device's key must be new to the registry and not the bootstrap
 * certificate's: every identity has a key of its own. */
static iot_status check_key_new(enroll_job *job, bool *fresh, iot_err *err)
{
    *fresh = false;
    const char *boot = job->req->auth_spki;
    if (boot != NULL && strcmp(boot, job->spki) == 0)
        return outcome(job, IOT_ENROLL_OUT_KEY_REUSED, "key_reused", err,
                       "the CSR of '%s' carries the bootstrap certificate's key; make a new key",
                       job->req->device_id);
    iot_cert_record holder;
    iot_err lookup;
    iot_status s = iot_registry_find_key(job->reg, job->spki, NULL, &holder, &lookup);
    if (s == IOT_OK)
        return outcome(job, IOT_ENROLL_OUT_KEY_REUSED, "key_reused", err,
                       "the CSR's key is already the key of a certificate of '%s'; make a new key",
                       holder.name);
    if (s != IOT_ENOENT) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    *fresh = true;
    return IOT_OK;
}

static iot_status check_name_free(enroll_job *job, bool *free_name, iot_err *err)
{
    *free_name = false;
    iot_cert_record rec;
    iot_err lookup;
    iot_status s = iot_registry_get_by_name(job->reg, job->req->device_id, &rec, &lookup);
    /* Issued elsewhere with this very key (another gateway, whose
     * certificate this registry took in): the device lost that answer and
     * asks here; it gets the same certificate. */
    if (s == IOT_OK && rec.kind == IOT_KIND_DEVICE && !rec.revoked &&
        strcmp(rec.spki, job->spki) == 0)
        return reissue(job, rec.serial, err);
    if (s == IOT_OK)
        return outcome(job, IOT_ENROLL_OUT_FORBIDDEN, "name_taken", err,
                       "the name '%s' already has a certificate; a renewal uses simplereenroll",
                       job->req->device_id);
    if (s != IOT_ENOENT) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    *free_name = true;
    return IOT_OK;
}

static const char *method_name(iot_enroll_method m)
{
    return m == IOT_ENROLL_BY_TOKEN ? "token" : "bootstrap";
}

/* Issues to a device whose request is authorised, or records it for an
 * operator; the enrollment row remembers how it was authorised. */
static iot_status admit_new(enroll_job *job, const char *auth, iot_err *err)
{
    bool ok = false;
    iot_status s = check_name_free(job, &ok, err);
    if (s == IOT_OK && ok)
        s = check_key_new(job, &ok, err);
    if (s != IOT_OK || !ok)
        return s;
    const iot_enroll_request *req = job->req;
    iot_enroll_record e = {.requested = req->now, .state = IOT_ENROLL_PENDING};
    snprintf(e.device, sizeof(e.device), "%s", req->device_id);
    snprintf(e.method, sizeof(e.method), "%s", method_name(req->method));
    snprintf(e.auth, sizeof(e.auth), "%s", auth);
    snprintf(e.spki, sizeof(e.spki), "%s", job->spki);
    snprintf(e.peer, sizeof(e.peer), "%s", req->peer != NULL ? req->peer : "");
    if (!job->policy->require_approval) {
        s = issue(job, false, err);
        e.state = IOT_ENROLL_ISSUED;
        e.decided = req->now;
        snprintf(e.serial, sizeof(e.serial), "%s", job->res->issued.serial);
    } else {
        outcome(job, IOT_ENROLL_OUT_PENDING, "pending", err,
                "the enrollment of '%s' waits for an operator ('iotctl enroll approve')",
                req->device_id);
    }
    if (s == IOT_OK)
        s = iot__enroll_put(job->reg, &e, err);
    return s;
}

/* A device that asked before: pending, decided, or issued and asking
 * again because it lost the answer. */
static iot_status follow_up(enroll_job *job, iot_enroll_record *e, iot_err *err)
{
    const char *dev = job->req->device_id;
    if (e->state == IOT_ENROLL_DENIED)
        return outcome(job, IOT_ENROLL_OUT_FORBIDDEN, "denied", err,
                       "an operator denied the enrollment of '%s'", dev);
    if (strcmp(e->spki, job->spki) != 0)
        return outcome(job, IOT_ENROLL_OUT_CONFLICT, "key_changed", err,
                       "'%s' asked before with another key; ask again with the same CSR", dev);
    if (e->state == IOT_ENROLL_PENDING)
        return outcome(job, IOT_ENROLL_OUT_PENDING, "pending", err,
                       "the enrollment of '%s' waits for an operator ('iotctl enroll approve')",
                       dev);
    if (e->state == IOT_ENROLL_ISSUED)
        return reissue(job, e->serial, err);
    bool fresh = false;
    iot_status s = check_key_new(job, &fresh, err);
    if (s != IOT_OK || !fresh)
        return s;
    s = issue(job, false, err);
    if (s != IOT_OK)
        return s;
    e->state = IOT_ENROLL_ISSUED;
    snprintf(e->serial, sizeof(e->serial), "%s", job->res->issued.serial);
    return iot__enroll_put(job->reg, e, err);
}

/* An earlier request of this device with the same authorisation, if any. */
static iot_status earlier_request(enroll_job *job, const char *auth, iot_enroll_record *e,
                                  bool *found, iot_err *err)
{
    *found = false;
    iot_err lookup;
    iot_status s = iot__enroll_get(job->reg, job->req->device_id, e, &lookup);
    if (s == IOT_ENOENT)
        return IOT_OK;
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    *found = strcmp(e->method, method_name(job->req->method)) == 0 && strcmp(e->auth, auth) == 0;
    return IOT_OK;
}

/* Looks the request's token up: *found false when no token has its hash
 * (a short or guessed one included). */
static iot_status find_token(enroll_job *job, iot_token_record *t, bool *found, iot_err *err)
{
    *found = false;
    const char *token = job->req->token;
    if (token == NULL || strlen(token) != IOT_TOKEN_LEN)
        return IOT_OK;
    char hash[IOT_FPR_HEX_LEN + 1];
    iot_status s = token_hash(token, hash, err);
    if (s != IOT_OK)
        return s;
    iot_err lookup;
    s = iot__token_find(job->reg, hash, t, &lookup);
    if (s == IOT_ENOENT)
        return IOT_OK;
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    *found = true;
    return IOT_OK;
}

/* A token that was used once: only the key it was redeemed for may use it
 * again (a lost answer, a wait for approval); to anyone else a used token
 * is as good as none. */
static iot_status token_again(enroll_job *job, const iot_token_record *t, iot_err *err)
{
    iot_enroll_record e;
    bool found = false;
    iot_status s = earlier_request(job, t->id, &e, &found, err);
    if (s != IOT_OK)
        return s;
    if (!found || strcmp(e.spki, job->spki) != 0)
        return refuse_auth(job, "token_used", err);
    return follow_up(job, &e, err);
}

/* Spends the token on what admit_new did: a certificate or a request. */
static iot_status spend_token(enroll_job *job, const iot_token_record *t, iot_err *err)
{
    iot_enroll_outcome o = job->res->outcome;
    if (o != IOT_ENROLL_OUT_ISSUED && o != IOT_ENROLL_OUT_PENDING)
        return IOT_OK;
    iot_status s = iot__token_mark_used(job->reg, t->id, job->req->now, err);
    if (s == IOT_OK && o == IOT_ENROLL_OUT_ISSUED)
        s = iot__token_set_serial(job->reg, t->id, job->res->issued.serial, err);
    return s;
}

/* The token, valid here, is claimed where every gateway sees it. */
static iot_status claim_token(enroll_job *job, iot_err *err)
{
    if (job->policy->claim_token == NULL)
        return IOT_OK;
    char hash[IOT_FPR_HEX_LEN + 1];
    iot_status s = token_hash(job->req->token, hash, err);
    if (s == IOT_OK)
        s = job->policy->claim_token(job->policy->claim_ctx, hash, job->req->device_id, job->spki,
                                     err);
    return s;
}

static iot_status enroll_by_token(enroll_job *job, iot_err *err)
{
    iot_token_record t;
    bool found = false;
    iot_status s = find_token(job, &t, &found, err);
    if (s != IOT_OK)
        return s;
    if (!found)
        return refuse_auth(job, "token_unknown", err);
    if (strcmp(t.device, job->req->device_id) != 0)
        return refuse_auth(job, "token_wrong_device", err);
    if (t.revoked_at != 0)
        return refuse_auth(job, "token_revoked", err);
    if (t.used_at != 0)
        return token_again(job, &t, err);
    if (t.expires <= job->req->now)
        return refuse_auth(job, "token_expired", err);
    s = claim_token(job, err);
    if (s == IOT_EEXIST)
        return refuse_auth(job, "token_used", err);
    if (s == IOT_OK)
        s = admit_new(job, t.id, err);
    if (s == IOT_OK)
        s = spend_token(job, &t, err);
    return s;
}

static iot_status enroll_by_bootstrap(enroll_job *job, iot_err *err)
{
    const char *auth = job->req->auth_serial;
    if (auth == NULL || auth[0] == '\0')
        return iot_err_set(err, IOT_EINVAL, "a bootstrap enrollment needs the certificate serial");
    iot_enroll_record e;
    bool found = false;
    iot_status s = earlier_request(job, auth, &e, &found, err);
    if (s != IOT_OK)
        return s;
    return found ? follow_up(job, &e, err) : admit_new(job, auth, err);
}

/* ---- renewal ------------------------------------------------------------- */

/* A device renewing with the certificate its last renewal replaced: it
 * lost that answer. The same key gets the same certificate again. */
static iot_status renew_again(enroll_job *job, const iot_cert_record *current, iot_err *err)
{
    if (strcmp(current->spki, job->spki) == 0)
        return reissue(job, current->serial, err);
    return outcome(job, IOT_ENROLL_OUT_CONFLICT, "renewal_conflict", err,
                   "'%s' was renewed already for another key; use that certificate or ask "
                   "again with its key",
                   job->req->device_id);
}

/* Whether `serial` is a certificate of the device replaced by `current`
 * and still in its grace. */
static iot_status replaced_by(enroll_job *job, const char *serial, const iot_cert_record *current,
                              bool *yes, iot_err *err);

static iot_status renew(enroll_job *job, iot_err *err)
{
    const iot_enroll_request *req = job->req;
    iot_cert_record current;
    iot_err lookup;
    iot_status s = iot_registry_get_by_name(job->reg, req->device_id, &current, &lookup);
    if (s == IOT_ENOENT || (s == IOT_OK && current.kind != IOT_KIND_DEVICE))
        return outcome(job, IOT_ENROLL_OUT_FORBIDDEN, "device_unknown", err,
                       "'%s' is not an enrolled device", req->device_id);
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    if (current.revoked)
        return outcome(job, IOT_ENROLL_OUT_FORBIDDEN, "device_revoked", err,
                       "device '%s' is revoked; it cannot renew", req->device_id);
    const char *auth = req->auth_serial != NULL ? req->auth_serial : "";
    if (strcmp(auth, current.serial) != 0) {
        bool yes = false;
        s = replaced_by(job, auth, &current, &yes, err);
        if (s != IOT_OK)
            return s;
        if (yes)
            return renew_again(job, &current, err);
        return outcome(job, IOT_ENROLL_OUT_FORBIDDEN, "certificate_replaced", err,
                       "the certificate presented is no longer the one of '%s'", req->device_id);
    }
    bool fresh = false;
    s = check_key_new(job, &fresh, err);
    if (s != IOT_OK || !fresh)
        return s;
    return issue(job, true, err);
}

typedef struct replaced_walk {
    const char *serial;
    const char *successor;
    bool found;
} replaced_walk;

static int match_replaced(const iot_cert_record *rec, void *arg)
{
    replaced_walk *w = arg;
    if (strcmp(rec->serial, w->serial) == 0 && strcmp(rec->successor, w->successor) == 0)
        w->found = true;
    return 0;
}

static iot_status replaced_by(enroll_job *job, const char *serial, const iot_cert_record *current,
                              bool *yes, iot_err *err)
{
    replaced_walk w = {.serial = serial, .successor = current->serial};
    iot_status s = iot_registry_foreach_in_grace(job->reg, job->req->now, match_replaced, &w, err);
    *yes = s == IOT_OK && w.found;
    return s;
}

/* ---- the entry point ----------------------------------------------------- */

static iot_status parse_csr(enroll_job *job, bool *ok, iot_err *err)
{
    *ok = false;
    iot_err why;
    iot_status s = pki_csr_parse(job->req->csr, job->req->csr_len, "in the request",
                                 job->req->device_id, &job->key, &why);
    if (s == IOT_ENOMEM)
        return iot_err_set(err, s, "%s", why.msg);
    if (s != IOT_OK) {
        job->res->outcome = IOT_ENROLL_OUT_BAD_CSR;
        job->res->reason = "csr_invalid";
        if (err != NULL)
            *err = why;
        return IOT_OK;
    }
    s = pki_key_fingerprint(job->key, job->spki, err);
    *ok = s == IOT_OK;
    return s;
}

static iot_status run(enroll_job *job, iot_err *err)
{
    bool ok = false;
    iot_status s = check_issuer(job, &ok, err);
    if (s == IOT_OK && ok)
        s = parse_csr(job, &ok, err);
    if (s != IOT_OK || !ok)
        return s;
    switch (job->req->method) {
    case IOT_ENROLL_BY_TOKEN:
        return enroll_by_token(job, err);
    case IOT_ENROLL_BY_BOOTSTRAP:
        return enroll_by_bootstrap(job, err);
    case IOT_ENROLL_RENEW:
        return renew(job, err);
    }
    return iot_err_set(err, IOT_EINVAL, "unknown enrollment method");
}

/* The outcomes after which the transaction is kept: a certificate was
 * issued, a request recorded, or a token redeemed. */
static bool keeps_changes(iot_enroll_outcome o)
{
    return o == IOT_ENROLL_OUT_ISSUED || o == IOT_ENROLL_OUT_PENDING;
}

iot_status iot_enroll(iot_registry *reg, const pki_ca *issuer, const iot_enroll_policy *policy,
                      const iot_enroll_request *req, iot_enroll_result *res, iot_err *err)
{
    memset(res, 0, sizeof(*res));
    res->outcome = IOT_ENROLL_OUT_UNAVAILABLE;
    res->reason = "error";
    if (req->device_id == NULL || !iot_id_is_valid(req->device_id)) {
        /* A user name that cannot be a device ID names no token either. */
        res->outcome =
            req->method == IOT_ENROLL_RENEW ? IOT_ENROLL_OUT_FORBIDDEN : IOT_ENROLL_OUT_BAD_AUTH;
        res->reason = req->method == IOT_ENROLL_RENEW ? "device_unknown" : "token_unknown";
        return iot_err_set(err, IOT_OK, "the device ID is not valid");
    }
    enroll_job job = {.reg = reg, .issuer = issuer, .policy = policy, .req = req, .res = res};
    iot_status s = iot__registry_need(reg, 5, err);
    if (s == IOT_OK)
        s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    s = run(&job, err);
    if (s == IOT_OK && keeps_changes(res->outcome))
        s = iot_registry_commit(reg, err);
    iot_registry_rollback(reg);
    EVP_PKEY_free(job.key);
    if (s != IOT_OK) {
        X509_free(res->cert);
        memset(res, 0, sizeof(*res));
        res->outcome = IOT_ENROLL_OUT_UNAVAILABLE;
        res->reason = "error";
    }
    return s;
}
