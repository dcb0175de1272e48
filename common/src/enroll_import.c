/* What another gateway of the cluster decided, taken into this gateway's
 * registry (iot/enroll.h): a device certificate it issued, a revocation it
 * made. A shared certificate is checked as this gateway would check what
 * it admits (its own issuers, the device subject, not expired), so that a
 * write to the shared state alone cannot make a device. */
#include "iot/enroll.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "enroll_store.h"
#include "registry_internal.h"

#define DER_MAX 4096 /* as enroll.c keeps: a P-256 device certificate is about 600 bytes */

/* One import: the input, the certificate, and the record it makes. */
typedef struct import_job {
    iot_registry *reg;
    const iot_enroll_import *in;
    int64_t now;
    X509 *cert;
    iot_cert_record rec; /* as issue() in enroll.c records a certificate */
} import_job;

/* ---- the certificate ----------------------------------------------------- */

/* Exactly one DER certificate: bytes after it would be kept unchecked. */
static iot_status parse_der(import_job *job, iot_err *err)
{
    const iot_enroll_import *in = job->in;
    if (in->der == NULL || in->der_len == 0 || in->der_len > DER_MAX)
        return iot_err_set(err, IOT_EINVAL,
                           "the certificate shared for '%s' is %zu bytes; a device certificate is "
                           "1 to %d",
                           in->device, in->der == NULL ? (size_t)0 : in->der_len, DER_MAX);
    const unsigned char *p = in->der;
    job->cert = d2i_X509(NULL, &p, (long)in->der_len);
    if (job->cert == NULL || p != in->der + in->der_len) {
        ERR_clear_error();
        return iot_err_set(err, IOT_EINVAL,
                           "the certificate shared for '%s' is not one DER certificate",
                           in->device);
    }
    return IOT_OK;
}

/* The issuer among those trusted whose name and key signed the
 * certificate; NULL if none did. */
static X509 *signer_of(X509 *cert, const STACK_OF(X509) * issuers)
{
    for (int i = 0; issuers != NULL && i < sk_X509_num(issuers); i++) {
        X509 *ca = sk_X509_value(issuers, i);
        if (X509_check_issued(ca, cert) == X509_V_OK &&
            X509_verify(cert, X509_get0_pubkey(ca)) == 1)
            return ca;
    }
    /* A failed verification leaves its reasons queued; they are no
     * concern of the next OpenSSL call of this thread. */
    ERR_clear_error();
    return NULL;
}

/* The signer must also be an active issuer of this registry: one revoked
 * here after the gateway loaded its issuers signs nothing more in. */
static iot_status check_signer(import_job *job, X509 *ca, iot_err *err)
{
    pki_cert_facts f;
    iot_status s = pki_cert_facts_get(ca, &f, err);
    if (s != IOT_OK)
        return s;
    iot_cert_record rec;
    iot_err lookup;
    s = iot_registry_get_by_serial(job->reg, f.serial, &rec, &lookup);
    if (s == IOT_ENOENT || (s == IOT_OK && rec.kind != IOT_KIND_ISSUER))
        return iot_err_set(err, IOT_EPERM,
                           "the certificate shared for '%s' was signed by CA %s, which is not an "
                           "issuer in registry %s",
                           job->in->device, f.serial, job->reg->path);
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    if (rec.revoked)
        return iot_err_set(err, IOT_EPERM,
                           "the certificate shared for '%s' was signed by issuer '%s', which is "
                           "revoked in registry %s",
                           job->in->device, rec.name, job->reg->path);
    snprintf(job->rec.issuer, sizeof(job->rec.issuer), "%s", f.serial);
    return IOT_OK;
}

static iot_status check_trust(import_job *job, iot_err *err)
{
    X509 *ca = signer_of(job->cert, job->in->issuers);
    if (ca == NULL)
        return iot_err_set(err, IOT_EPERM,
                           "the certificate shared for '%s' is not signed by an issuing CA this "
                           "gateway trusts",
                           job->in->device);
    return check_signer(job, ca, err);
}

/* Entry i of the subject is `nid` = value, byte for byte: X509_NAME_cmp
 * folds case and would take 'DEV-1' for 'dev-1'. */
static bool entry_is(const X509_NAME *name, int i, int nid, const char *value)
{
    const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
    if (e == NULL || X509_NAME_ENTRY_set(e) != i ||
        OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != nid)
        return false;
    const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
    size_t len = strlen(value);
    return ASN1_STRING_length(d) == (int)len && memcmp(ASN1_STRING_get0_data(d), value, len) == 0;
}

/* The subject enrollment gives, in the order pki_issue writes it. */
static iot_status check_subject(import_job *job, iot_err *err)
{
    const X509_NAME *name = X509_get_subject_name(job->cert);
    const char *dev = job->in->device;
    if (X509_NAME_entry_count(name) == 3 &&
        entry_is(name, 0, NID_organizationName, PKI_ORGANIZATION) &&
        entry_is(name, 1, NID_organizationalUnitName, "device") &&
        entry_is(name, 2, NID_commonName, dev))
        return IOT_OK;
    char shown[256];
    iot_err ignored;
    if (pki_subject_text(job->cert, shown, sizeof(shown), &ignored) != IOT_OK)
        snprintf(shown, sizeof(shown), "?");
    return iot_err_set(err, IOT_EINVAL,
                       "the certificate shared for '%s' has the subject '%s', not "
                       "'CN=%s,OU=device,O=%s'",
                       dev, shown, dev, PKI_ORGANIZATION);
}

/* What PKI_PROFILE_CLIENT makes: an end entity for TLS client
 * authentication, nothing that could sign. */
static iot_status check_profile(import_job *job, iot_err *err)
{
    if (X509_check_ca(job->cert) != 0 ||
        X509_check_purpose(job->cert, X509_PURPOSE_SSL_CLIENT, 0) != 1) {
        ERR_clear_error();
        return iot_err_set(err, IOT_EINVAL,
                           "the certificate shared for '%s' is not a device certificate (a CA, "
                           "or not for TLS client authentication)",
                           job->in->device);
    }
    return IOT_OK;
}

/* The record issue() would have made of it, at `now`. */
static iot_status build_record(import_job *job, iot_err *err)
{
    pki_cert_facts f;
    iot_status s = pki_cert_facts_get(job->cert, &f, err);
    if (s != IOT_OK)
        return s;
    EVP_PKEY *key = X509_get0_pubkey(job->cert);
    if (key == NULL)
        return iot_err_set(err, IOT_EINVAL,
                           "the key of the certificate shared for '%s' is unreadable",
                           job->in->device);
    s = pki_key_fingerprint(key, job->rec.spki, err);
    if (s != IOT_OK)
        return s;
    if (f.not_after <= job->now)
        return iot_err_set(err, IOT_EINVAL,
                           "the certificate %s shared for '%s' expired at %lld (now %lld)",
                           f.serial, job->in->device, (long long)f.not_after, (long long)job->now);
    iot_cert_record *r = &job->rec;
    r->kind = IOT_KIND_DEVICE;
    r->not_before = f.not_before;
    r->not_after = f.not_after;
    r->created = job->now;
    snprintf(r->name, sizeof(r->name), "%s", job->in->device);
    snprintf(r->serial, sizeof(r->serial), "%s", f.serial);
    snprintf(r->fingerprint, sizeof(r->fingerprint), "%s", f.fingerprint);
    return IOT_OK;
}

static iot_status check_cert(import_job *job, iot_err *err)
{
    iot_status s = parse_der(job, err);
    if (s == IOT_OK)
        s = check_trust(job, err);
    if (s == IOT_OK)
        s = check_subject(job, err);
    if (s == IOT_OK)
        s = check_profile(job, err);
    if (s == IOT_OK)
        s = build_record(job, err);
    return s;
}

/* ---- the registry -------------------------------------------------------- */

typedef struct serial_walk {
    iot_cert_record *out;
    bool found;
} serial_walk;

static int take_row(const iot_cert_record *rec, void *arg)
{
    serial_walk *w = arg;
    *w->out = *rec;
    w->found = true;
    return 0;
}

/* The certificate with `serial`, active, revoked or replaced (a replaced
 * one comes back revoked, reason "superseded"); *found false if none. */
static iot_status find_serial(iot_registry *reg, const char *serial, iot_cert_record *out,
                              bool *found, iot_err *err)
{
    *found = false;
    iot_err lookup;
    iot_status s = iot_registry_get_by_serial(reg, serial, out, &lookup);
    if (s == IOT_OK)
        *found = true;
    if (s != IOT_ENOENT) {
        if (s != IOT_OK && err != NULL)
            *err = lookup;
        return s;
    }
    serial_walk w = {.out = out};
    s = iot__registry_walk(reg, IOT__SUPERSEDED_COLUMNS "WHERE serial = ?1", serial, 0, take_row,
                           &w, err);
    *found = s == IOT_OK && w.found;
    return s;
}

/* A serial the registry has: the same certificate again, which changes
 * nothing, or another one under the same serial. */
static iot_status check_known(import_job *job, const iot_cert_record *have, iot_err *err)
{
    const iot_cert_record *rec = &job->rec;
    if (strcmp(have->name, rec->name) != 0 || strcmp(have->fingerprint, rec->fingerprint) != 0)
        return iot_err_set(err, IOT_EEXIST,
                           "serial %s, shared for '%s', is already in registry %s as another "
                           "certificate, of '%s'",
                           rec->serial, rec->name, job->reg->path, have->name);
    return iot_err_set(err, IOT_OK, "certificate %s of '%s' is already in registry %s", rec->serial,
                       rec->name, job->reg->path);
}

static iot_status keep_der(import_job *job, iot_err *err)
{
    return iot_registry_set_der(job->reg, job->rec.serial, job->in->der, job->in->der_len, err);
}

/* A request of this device for this key that waited here (pending or
 * approved) was answered at another gateway: it is issued, with this
 * certificate, so that the device asking here gets the same one. */
static iot_status settle_request(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    iot_enroll_record e;
    iot_err lookup = {0};
    iot_status s = iot__enroll_get(reg, rec->name, &e, &lookup);
    if (s == IOT_ENOENT)
        return IOT_OK;
    if (s != IOT_OK) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    if (strcmp(e.spki, rec->spki) != 0 || e.state == IOT_ENROLL_DENIED ||
        e.state == IOT_ENROLL_ISSUED)
        return IOT_OK;
    e.state = IOT_ENROLL_ISSUED;
    if (e.decided == 0)
        e.decided = rec->created;
    snprintf(e.serial, sizeof(e.serial), "%s", rec->serial);
    return iot__enroll_put(reg, &e, err);
}

static iot_status add_device(import_job *job, iot_import_outcome *out, iot_err *err)
{
    iot_status s = iot_registry_add(job->reg, &job->rec, err);
    if (s == IOT_OK)
        s = keep_der(job, err);
    if (s == IOT_OK)
        s = settle_request(job->reg, &job->rec, err);
    if (s == IOT_OK)
        *out = IOT_IMPORT_ADDED;
    return s;
}

/* A renewal replaces the certificate it renewed, and only that one. */
static iot_status renew_device(import_job *job, const iot_cert_record *cur, iot_import_outcome *out,
                               iot_err *err)
{
    const iot_enroll_import *in = job->in;
    if (strcmp(cur->serial, in->previous) != 0)
        return iot_err_set(err, IOT_ESTATE,
                           "'%s' was renewed from certificate %s at another gateway, but registry "
                           "%s has certificate %s for it",
                           in->device, in->previous, job->reg->path, cur->serial);
    iot_status s =
        in->grace_until > job->now
            ? iot_registry_renew_with_grace(job->reg, &job->rec, job->now, in->grace_until, err)
            : iot_registry_renew(job->reg, &job->rec, job->now, err);
    if (s == IOT_OK)
        s = keep_der(job, err);
    if (s == IOT_OK)
        *out = IOT_IMPORT_RENEWED;
    return s;
}

/* The name's record here; *found false if the name is free. */
static iot_status current_of(import_job *job, iot_cert_record *cur, bool *found, iot_err *err)
{
    iot_err lookup;
    iot_status s = iot_registry_get_by_name(job->reg, job->in->device, cur, &lookup);
    *found = s == IOT_OK;
    if (s == IOT_ENOENT)
        return IOT_OK;
    if (s != IOT_OK && err != NULL)
        *err = lookup;
    return s;
}

static iot_status record_cert(import_job *job, iot_import_outcome *out, iot_err *err)
{
    iot_cert_record cur;
    bool found = false;
    iot_status s = current_of(job, &cur, &found, err);
    if (s != IOT_OK)
        return s;
    if (found && cur.kind == IOT_KIND_DEVICE && cur.revoked)
        return iot_err_set(err, IOT_ESTATE,
                           "device '%s' is revoked in registry %s; a certificate issued at "
                           "another gateway does not bring it back",
                           job->in->device, job->reg->path);
    /* A renewal of a device this registry never had (it missed the first
     * certificate) admits the device all the same; a name held by another
     * kind is refused by iot_registry_add, with its words. */
    bool renewal = job->in->previous != NULL && job->in->previous[0] != '\0';
    if (!found || !renewal || cur.kind != IOT_KIND_DEVICE)
        return add_device(job, out, err);
    return renew_device(job, &cur, out, err);
}

static iot_status import_cert(import_job *job, iot_import_outcome *out, iot_err *err)
{
    iot_status s = check_cert(job, err);
    if (s != IOT_OK)
        return s;
    iot_cert_record have;
    bool known = false;
    s = find_serial(job->reg, job->rec.serial, &have, &known, err);
    if (s != IOT_OK)
        return s;
    if (known)
        return check_known(job, &have, err);
    return record_cert(job, out, err);
}

iot_status iot_enroll_import_cert(iot_registry *reg, const iot_enroll_import *in, int64_t now,
                                  iot_import_outcome *out, iot_err *err)
{
    *out = IOT_IMPORT_KNOWN;
    import_job job = {.reg = reg, .in = in, .now = now};
    iot_status s = iot_id_check("the device ID of a shared certificate", in->device, err);
    if (s == IOT_OK)
        s = iot__registry_need(reg, 5, err);
    if (s == IOT_OK)
        s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        goto out;
    s = import_cert(&job, out, err);
    if (s == IOT_OK && *out != IOT_IMPORT_KNOWN)
        s = iot_registry_commit(reg, err);
    iot_registry_rollback(reg);
out:
    X509_free(job.cert);
    return s;
}

/* ---- one transaction for each change --------------------------------------- */

/* What one import writes: *changed says whether it wrote anything. */
typedef iot_status (*import_step)(iot_registry *reg, const void *in, bool *changed, iot_err *err);

/* Runs step in a transaction of its own, committed only when it changed
 * something: a refusal or a failure leaves nothing written. */
static iot_status in_transaction(iot_registry *reg, import_step step, const void *in, bool *changed,
                                 iot_err *err)
{
    *changed = false;
    iot_status s = iot__registry_need(reg, 5, err);
    if (s == IOT_OK)
        s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    s = step(reg, in, changed, err);
    if (s == IOT_OK && *changed)
        s = iot_registry_commit(reg, err);
    iot_registry_rollback(reg);
    if (s != IOT_OK)
        *changed = false;
    return s;
}

/* ---- revocations --------------------------------------------------------- */

/* A serial as the registry writes it: upper-case hex, 1 to 64 digits. */
static iot_status check_serial_text(const char *serial, iot_err *err)
{
    size_t len = serial != NULL ? strnlen(serial, IOT_SERIAL_HEX_MAX + 1) : 0;
    if (len == 0 || len > IOT_SERIAL_HEX_MAX || strspn(serial, "0123456789ABCDEF") != len)
        return iot_err_set(err, IOT_EINVAL,
                           "a shared revocation names a serial that is not 1 to %d upper-case hex "
                           "digits",
                           IOT_SERIAL_HEX_MAX);
    return IOT_OK;
}

/* The reasons iotctl records (pki_reason_code knows them); whatever else
 * another gateway sent is not written into this registry as it is. */
static const char *reason_name(const char *reason)
{
    if (reason == NULL || pki_reason_code(reason) < 0)
        return "unspecified";
    return reason;
}

typedef struct revocation_in {
    const char *device, *serial, *reason;
    int64_t now;
} revocation_in;

static iot_status revoke_serial(iot_registry *reg, const void *arg, bool *changed, iot_err *err)
{
    const revocation_in *in = arg;
    const char *device = in->device, *serial = in->serial;
    iot_cert_record rec;
    bool found = false;
    iot_status s = find_serial(reg, serial, &rec, &found, err);
    if (s != IOT_OK)
        return s;
    if (!found)
        return iot_err_set(err, IOT_ENOENT,
                           "certificate %s, revoked at another gateway for '%s', is not in "
                           "registry %s",
                           serial, device, reg->path);
    if (rec.kind != IOT_KIND_DEVICE || strcmp(rec.name, device) != 0)
        return iot_err_set(err, IOT_EINVAL,
                           "certificate %s, revoked at another gateway for '%s', is the "
                           "certificate of %s %s '%s' in registry %s",
                           serial, device, iot_cert_kind_article(rec.kind),
                           iot_cert_kind_name(rec.kind), rec.name, reg->path);
    if (rec.revoked)
        return IOT_OK; /* revoked already, or replaced by a renewal */
    s = iot_registry_revoke(reg, IOT_KIND_DEVICE, device, reason_name(in->reason), in->now, err);
    *changed = s == IOT_OK;
    return s;
}

iot_status iot_enroll_import_revocation(iot_registry *reg, const char *device, const char *serial,
                                        const char *reason, int64_t now, bool *changed,
                                        iot_err *err)
{
    *changed = false;
    iot_status s = iot_id_check("the device ID of a shared revocation", device, err);
    if (s == IOT_OK)
        s = check_serial_text(serial, err);
    revocation_in in = {device, serial, reason, now};
    return s == IOT_OK ? in_transaction(reg, revoke_serial, &in, changed, err) : s;
}

/* ---- tokens ---------------------------------------------------------------- */

/* 64 lower-case hex digits: a SHA-256 as the registry keeps it. */
static bool hash_ok(const char *hash)
{
    return strlen(hash) == 64 && strspn(hash, "0123456789abcdef") == 64;
}

static iot_status check_token(const iot_token_record *rec, const char *hash, iot_err *err)
{
    char id[IOT_TOKEN_ID_LEN + 1];
    iot_status s = iot_id_check("the device ID of a shared token", rec->device, err);
    if (s != IOT_OK)
        return s;
    if (!hash_ok(hash))
        return iot_err_set(err, IOT_EINVAL,
                           "a shared token's hash must be 64 lower-case hex digits");
    snprintf(id, sizeof(id), "tok-%.12s", hash);
    if (strcmp(id, rec->id) != 0)
        return iot_err_set(err, IOT_EINVAL, "a shared token's id must be %s for its hash", id);
    if (rec->expires <= rec->created)
        return iot_err_set(err, IOT_EINVAL, "token %s expires before it was created", rec->id);
    return IOT_OK;
}

typedef struct token_in {
    const iot_token_record *rec;
    const char *hash;
} token_in;

static iot_status take_token(iot_registry *reg, const void *arg, bool *added, iot_err *err)
{
    const token_in *in = arg;
    const iot_token_record *rec = in->rec;
    const char *hash = in->hash;
    iot_token_record have;
    iot_err lookup = {0};
    iot_status s = iot__token_find(reg, hash, &have, &lookup);
    if (s == IOT_OK)
        return IOT_OK; /* known: its revocation comes on its own */
    if (s != IOT_ENOENT) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    iot_token_record t = {0};
    snprintf(t.id, sizeof(t.id), "%s", rec->id);
    snprintf(t.device, sizeof(t.device), "%s", rec->device);
    t.created = rec->created;
    t.expires = rec->expires;
    s = iot__token_insert(reg, &t, hash, err);
    *added = s == IOT_OK;
    return s;
}

iot_status iot_token_import(iot_registry *reg, const iot_token_record *rec, const char *hash,
                            bool *added, iot_err *err)
{
    *added = false;
    iot_status s = check_token(rec, hash, err);
    token_in in = {rec, hash};
    return s == IOT_OK ? in_transaction(reg, take_token, &in, added, err) : s;
}

/* ---- requests that wait for an operator ------------------------------------ */

static iot_status check_request(const iot_enroll_record *e, iot_err *err)
{
    iot_status s = iot_id_check("the device ID of a shared enrollment request", e->device, err);
    if (s != IOT_OK)
        return s;
    if (strcmp(e->method, "token") != 0 && strcmp(e->method, "bootstrap") != 0)
        return iot_err_set(err, IOT_EINVAL, "a shared request's method must be token or bootstrap");
    if (!hash_ok(e->spki))
        return iot_err_set(err, IOT_EINVAL, "a shared request's key must be a SHA-256 in hex");
    if (e->state != IOT_ENROLL_PENDING && e->state != IOT_ENROLL_APPROVED &&
        e->state != IOT_ENROLL_DENIED)
        return iot_err_set(err, IOT_EINVAL, "a shared request is pending, approved or denied");
    return IOT_OK;
}

/* What this registry holds for the request's device decides: nothing (the
 * request is added, with this key's certificate already here: issued), a
 * pending request for the same key (the decision is taken), anything else
 * (nothing changes: a decision is not undone, a request for another key
 * is the device's own business here). */
static iot_status take_request(iot_registry *reg, const void *arg, bool *changed, iot_err *err)
{
    const iot_enroll_record *in = arg;
    iot_enroll_record have;
    iot_err lookup = {0};
    iot_status s = iot__enroll_get(reg, in->device, &have, &lookup);
    if (s == IOT_OK) {
        if (have.state != IOT_ENROLL_PENDING || in->state == IOT_ENROLL_PENDING ||
            strcmp(have.spki, in->spki) != 0)
            return IOT_OK;
        have.state = in->state;
        have.decided = in->decided;
        *changed = true;
        return iot__enroll_put(reg, &have, err);
    }
    if (s != IOT_ENOENT) {
        if (err != NULL)
            *err = lookup;
        return s;
    }
    iot_enroll_record e = *in;
    e.serial[0] = '\0';
    iot_cert_record cur;
    if (iot_registry_get_by_name(reg, in->device, &cur, &lookup) == IOT_OK && !cur.revoked &&
        strcmp(cur.spki, in->spki) == 0 && in->state != IOT_ENROLL_DENIED) {
        e.state = IOT_ENROLL_ISSUED;
        snprintf(e.serial, sizeof(e.serial), "%s", cur.serial);
    }
    *changed = true;
    return iot__enroll_put(reg, &e, err);
}

iot_status iot_enroll_import_request(iot_registry *reg, const iot_enroll_record *e, bool *changed,
                                     iot_err *err)
{
    *changed = false;
    iot_status s = check_request(e, err);
    return s == IOT_OK ? in_transaction(reg, take_request, e, changed, err) : s;
}
