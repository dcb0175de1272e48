#include "admission.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "iot/fsutil.h"
#include "iot/registry.h"
#include "log.h"
#include "metrics.h"

#define CRL_FILE_MAX (16 * 1024 * 1024)

typedef struct id_entry {
    char serial[IOT_SERIAL_HEX_MAX + 1];
    char name[IOT_ID_MAX + 1];
    char fingerprint[IOT_FPR_HEX_LEN + 1];
    char issuer[IOT_SERIAL_HEX_MAX + 1]; /* the intermediate that signed it; "" = the root */
    int64_t not_after;
    iot_cert_kind kind;
    bool revoked;
    bool in_grace;  /* replaced by a renewal, still working until its successor is used */
    bool successor; /* a certificate whose predecessor is in grace: its use ends that grace */
} id_entry;

/* Immutable once built: sorted by serial for bsearch. */
typedef struct id_snapshot {
    id_entry *entries;
    size_t n;
    int refs; /* guarded by gw_admission.lock */
} id_snapshot;

typedef struct file_stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_stamp;

struct gw_admission {
    int64_t expiry_warning_s;
    char registry_path[512];
    char crl_path[512];
    X509 *ca;
    X509_CRL *crl; /* the CRL in force: the last one that loaded and checked */
    pthread_mutex_t lock;
    id_snapshot *current;
    /* Bumped at every snapshot swap: a verdict computed in generation G
     * holds for as long as the generation is still G. */
    atomic_uint_fast64_t generation;
    file_stamp registry_stamp;
    file_stamp crl_stamp;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const id_entry *)a)->serial, ((const id_entry *)b)->serial);
}

static void snapshot_release(gw_admission *id, id_snapshot *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&id->lock);
    int refs = --s->refs;
    pthread_mutex_unlock(&id->lock);
    if (refs == 0) {
        free(s->entries);
        free(s);
    }
}

static id_snapshot *snapshot_acquire(gw_admission *id)
{
    pthread_mutex_lock(&id->lock);
    id_snapshot *s = id->current;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&id->lock);
    return s;
}

typedef struct load_ctx {
    id_snapshot *snap;
    size_t cap;
} load_ctx;

static int add_record(const iot_cert_record *rec, void *arg)
{
    load_ctx *lc = arg;
    if (lc->snap->n == lc->cap) {
        size_t cap = lc->cap ? lc->cap * 2 : 256;
        id_entry *grown = realloc(lc->snap->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return IOT_ENOMEM;
        lc->snap->entries = grown;
        lc->cap = cap;
    }
    id_entry *e = &lc->snap->entries[lc->snap->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->serial, rec->serial, sizeof(e->serial));
    memcpy(e->name, rec->name, sizeof(e->name));
    memcpy(e->fingerprint, rec->fingerprint, sizeof(e->fingerprint));
    memcpy(e->issuer, rec->issuer, sizeof(e->issuer));
    e->not_after = rec->not_after;
    e->kind = rec->kind;
    e->revoked = rec->revoked;
    return 0;
}

/* A replaced certificate still in its grace: it works as its device's. */
static int add_in_grace(const iot_cert_record *rec, void *arg)
{
    int rc = add_record(rec, arg);
    load_ctx *lc = arg;
    if (rc == 0) {
        lc->snap->entries[lc->snap->n - 1].kind = IOT_KIND_DEVICE;
        lc->snap->entries[lc->snap->n - 1].in_grace = true;
    }
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Marks the current certificate of every device with a predecessor in
 * grace, whose first use ends that grace: the names in grace are sorted
 * once, then each device looks its name up. */
static void mark_successors(id_snapshot *snap)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->n; i++)
        n += snap->entries[i].in_grace && !snap->entries[i].revoked;
    const char **names = n > 0 ? malloc(n * sizeof(*names)) : NULL;
    if (names == NULL)
        return; /* none in grace, or no memory: the grace then runs out by date */
    n = 0;
    for (size_t i = 0; i < snap->n; i++)
        if (snap->entries[i].in_grace && !snap->entries[i].revoked)
            names[n++] = snap->entries[i].name;
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t j = 0; j < snap->n; j++) {
        id_entry *e = &snap->entries[j];
        const char *key = e->name;
        if (!e->in_grace && e->kind == IOT_KIND_DEVICE &&
            bsearch(&key, names, n, sizeof(*names), name_cmp) != NULL)
            e->successor = true;
    }
    free(names);
}

static bool serial_hex(const ASN1_INTEGER *serial, char out[IOT_SERIAL_HEX_MAX + 1])
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    bool ok = hex != NULL && strlen(hex) <= IOT_SERIAL_HEX_MAX;
    if (ok)
        snprintf(out, IOT_SERIAL_HEX_MAX + 1, "%s", hex);
    OPENSSL_free(hex);
    return ok;
}

/* Reads the CRL file and checks that the CA issued and signed it. On
 * failure *reason is a stable token for the log and the error says what. */
static int report_shared_key(const iot_cert_record *rec, void *ctx)
{
    int64_t *n = ctx;
    (*n)++;
    gw_log(GW_LOG_WARN, "identity.shared_key",
           "name=%s kind=%s serial=%s key_sha256=%s revoked=%s action=\"one key must be one "
           "identity: revoke the certificates that share it and re-enrol with new keys\"",
           rec->name, iot_cert_kind_name(rec->kind), rec->serial, rec->spki,
           rec->revoked ? "yes" : "no");
    return 0;
}

/* An audit on every load: iotctl refuses a key already used by another
 * name, but a registry from before that check, or written by other means,
 * may hold such pairs. Each certificate involved is logged and counted;
 * the gateway still decides by certificate, as before. */
static void audit_shared_keys(iot_registry *reg)
{
    int64_t n = 0;
    iot_err err = {0};
    if (iot_registry_foreach_shared_key(reg, report_shared_key, &n, &err) != IOT_OK)
        gw_log(GW_LOG_WARN, "identity.audit_failed", "error=\"%s\"", err.msg);
    gw_gauge_set(GW_G_SHARED_KEYS, n);
}

static iot_status load_crl(gw_admission *id, X509_CRL **out, const char **reason, iot_err *err)
{
    char *data = NULL;
    size_t len = 0;
    *out = NULL;
    *reason = "unreadable";
    iot_status st = iot_file_read(id->crl_path, CRL_FILE_MAX, &data, &len, err);
    if (st != IOT_OK)
        return st;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    X509_CRL *crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(data);
    if (crl == NULL) {
        ERR_clear_error();
        *reason = "not_a_crl";
        return iot_err_set(err, IOT_ECORRUPT, "CRL %s is not a PEM CRL", id->crl_path);
    }
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(id->ca)) != 0) {
        X509_CRL_free(crl);
        *reason = "foreign_issuer";
        return iot_err_set(err, IOT_ECRYPTO, "CRL %s was issued by another CA than the client CA",
                           id->crl_path);
    }
    EVP_PKEY *ca_key = X509_get0_pubkey(id->ca);
    if (ca_key == NULL || X509_CRL_verify(crl, ca_key) != 1) {
        ERR_clear_error();
        X509_CRL_free(crl);
        *reason = "bad_signature";
        return iot_err_set(err, IOT_ECRYPTO, "CRL %s is not signed by the client CA", id->crl_path);
    }
    *out = crl;
    return IOT_OK;
}

/* A CRL may only replace the one in force if it is not older: its CRL
 * Number is not lower (and present if the old one had one) and its
 * thisUpdate is not earlier. Otherwise a saved copy put back would
 * un-revoke every certificate revoked since. */
static iot_status check_not_older(const gw_admission *id, const X509_CRL *in_force, X509_CRL *crl,
                                  const char **reason, iot_err *err)
{
    if (in_force == NULL)
        return IOT_OK;
    iot_status st = IOT_OK;
    ASN1_INTEGER *old_num = X509_CRL_get_ext_d2i(in_force, NID_crl_number, NULL, NULL);
    ASN1_INTEGER *new_num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    if (old_num != NULL && new_num == NULL) {
        *reason = "no_crl_number";
        st = iot_err_set(err, IOT_ECORRUPT,
                         "CRL %s has no CRL Number while the CRL in force has one", id->crl_path);
    } else if (old_num != NULL && ASN1_INTEGER_cmp(new_num, old_num) < 0) {
        *reason = "older_crl_number";
        st = iot_err_set(err, IOT_ECORRUPT,
                         "CRL %s has CRL Number %lld, lower than %lld of the CRL in force",
                         id->crl_path, (long long)ASN1_INTEGER_get(new_num),
                         (long long)ASN1_INTEGER_get(old_num));
    } else if (ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl),
                                 X509_CRL_get0_lastUpdate(in_force)) < 0) {
        *reason = "older_this_update";
        st = iot_err_set(err, IOT_ECORRUPT,
                         "CRL %s was issued (thisUpdate) before the CRL in force", id->crl_path);
    }
    ASN1_INTEGER_free(old_num);
    ASN1_INTEGER_free(new_num);
    ERR_clear_error();
    return st;
}

/* Marks every serial the CRL lists. A listed serial the registry no longer
 * has (a certificate replaced by a renewal under the same name) gets an
 * entry of its own, so that it is refused as revoked rather than as
 * unknown. */
static iot_status apply_crl(const X509_CRL *crl, id_snapshot *snap, size_t *listed, iot_err *err)
{
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED((X509_CRL *)crl);
    int n_listed = sk_X509_REVOKED_num(revoked);
    size_t in_registry = snap->n, orphans = 0;
    id_entry *grown = n_listed > 0
                          ? realloc(snap->entries, (snap->n + (size_t)n_listed) * sizeof(id_entry))
                          : snap->entries;
    if (n_listed > 0 && grown == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory applying the CRL");
    snap->entries = grown;
    *listed = 0;
    for (int i = 0; i < n_listed; i++) {
        id_entry key = {0};
        if (!serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)),
                        key.serial))
            continue;
        (*listed)++;
        id_entry *e = bsearch(&key, snap->entries, in_registry, sizeof(*e), entry_cmp);
        if (e != NULL) {
            e->revoked = true;
        } else {
            key.kind = IOT_KIND_DEVICE;
            key.revoked = true;
            snap->entries[in_registry + orphans++] = key;
        }
    }
    snap->n = in_registry + orphans;
    if (orphans > 0)
        qsort(snap->entries, snap->n, sizeof(id_entry), entry_cmp);
    return IOT_OK;
}

/* The CRL's number as a gauge value; -1 without one (or an absurd one). */
static int64_t crl_number_of(const X509_CRL *crl)
{
    ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    int64_t v = -1;
    if (num == NULL || !ASN1_INTEGER_get_int64(&v, num))
        v = -1;
    ASN1_INTEGER_free(num);
    ERR_clear_error();
    return v;
}

static void stamp_of(const char *path, file_stamp *st)
{
    struct stat sb;
    memset(st, 0, sizeof(*st));
    if (stat(path, &sb) == 0) {
        st->dev = sb.st_dev;
        st->ino = sb.st_ino;
        st->size = sb.st_size;
        st->mtime = sb.st_mtim;
    }
}

static bool stamp_equal(const file_stamp *a, const file_stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads the registry's records into snap, sorted for lookups. */
static iot_status load_registry(const gw_admission *id, id_snapshot *snap, iot_err *err)
{
    iot_registry *reg = NULL;
    load_ctx lc = {snap, 0};
    iot_status st = iot_registry_open(id->registry_path, IOT_REGISTRY_READONLY, &reg, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_foreach(reg, -1, add_record, &lc, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_foreach_in_grace(reg, (int64_t)time(NULL), add_in_grace, &lc, err);
    if (st != IOT_OK)
        goto out;
    audit_shared_keys(reg);
    qsort(snap->entries, snap->n, sizeof(id_entry), entry_cmp);
    mark_successors(snap);
out:
    iot_registry_close(reg);
    return st;
}

/* Loads the CRL file into *fresh and checks it does not go back on the
 * CRL in force; *reason names the failure. */
static iot_status load_usable_crl(gw_admission *id, const X509_CRL *in_force, X509_CRL **fresh,
                                  const char **reason, iot_err *err)
{
    iot_status st = load_crl(id, fresh, reason, err);
    if (st != IOT_OK)
        goto out;
    st = check_not_older(id, in_force, *fresh, reason, err);
out:
    return st;
}

/* An unusable CRL file: with a CRL in force it is logged and the reload
 * goes on; at startup, with nothing to fall back on, it is fatal. */
static iot_status crl_rejected(const gw_admission *id, bool have_in_force, iot_status crl_st,
                               const char *reason, const iot_err *crl_err, iot_err *err)
{
    gw_metric_inc(GW_M_CRL_LOAD_FAILURES);
    if (!have_in_force)
        return iot_err_set(err, crl_st, "%s", crl_err->msg);
    gw_log(GW_LOG_ERROR, "identity.crl_rejected",
           "path=%s reason=%s error=\"%s\" action=\"kept the CRL in force and applied the "
           "registry's revocations; install the current CRL from 'iotctl crl update'\"",
           id->crl_path, reason, crl_err->msg);
    return IOT_OK;
}

/* What a reload put in force, for the gauges and the log. */
typedef struct load_report {
    size_t active, listed;
    int64_t crl_number, next_update;
    bool stale;
} load_report;

static size_t count_active(const id_snapshot *snap)
{
    size_t active = 0;
    for (size_t i = 0; i < snap->n; i++)
        if (snap->entries[i].kind == IOT_KIND_DEVICE && !snap->entries[i].revoked &&
            !snap->entries[i].in_grace)
            active++;
    return active;
}

/* The enrollment gauges: devices whose certificate expires within the
 * warning (a renewed device counts with its new certificate), and
 * replaced certificates still in their grace. */
static void report_certificates(const gw_admission *id, const id_snapshot *snap)
{
    int64_t horizon = (int64_t)time(NULL) + id->expiry_warning_s;
    int64_t expiring = 0, in_grace = 0;
    for (size_t i = 0; i < snap->n; i++) {
        const id_entry *e = &snap->entries[i];
        if (e->kind != IOT_KIND_DEVICE || e->revoked)
            continue;
        if (e->in_grace)
            in_grace++;
        else if (id->expiry_warning_s > 0 && e->not_after < horizon)
            expiring++;
    }
    gw_gauge_set(GW_G_DEVICES_CERT_EXPIRING, expiring);
    gw_gauge_set(GW_G_CERTS_IN_GRACE, in_grace);
}

/* The CRL's number and next update; warns when that date is past. */
static void read_crl_dates(const gw_admission *id, const X509_CRL *use, load_report *r)
{
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(use);
    if (next != NULL && X509_cmp_current_time(next) < 0)
        gw_log(GW_LOG_WARN, "identity.crl_expired",
               "path=%s action=\"run 'iotctl crl update' and copy the CRL\"", id->crl_path);
    r->crl_number = crl_number_of(use);
    r->next_update = next != NULL ? gw_asn1_time_unix(next) : 0;
}

/* Puts snap, and fresh when there is one, in force: the identity owns
 * both from then on. */
static void publish(gw_admission *id, id_snapshot *snap, X509_CRL *fresh,
                    const file_stamp *reg_stamp, const file_stamp *crl_stamp)
{
    pthread_mutex_lock(&id->lock);
    id_snapshot *old = id->current;
    id->current = snap;
    if (fresh != NULL) {
        X509_CRL_free(id->crl);
        id->crl = fresh;
    }
    atomic_fetch_add(&id->generation, 1);
    id->registry_stamp = *reg_stamp;
    id->crl_stamp = *crl_stamp; /* a rejected file is not retried until it changes */
    pthread_mutex_unlock(&id->lock);
    snapshot_release(id, old);
}

static void report_loaded(const gw_admission *id, const load_report *r)
{
    gw_gauge_set(GW_G_REGISTRY_DEVICES, (int64_t)r->active);
    gw_gauge_set(GW_G_CRL_REVOKED, (int64_t)r->listed);
    gw_gauge_set(GW_G_CRL_STALE, r->stale ? 1 : 0);
    gw_gauge_set(GW_G_CRL_NUMBER, r->crl_number);
    gw_gauge_set(GW_G_CRL_NEXT_UPDATE, r->next_update);
    gw_metric_inc(GW_M_RELOADS);
    gw_log(r->stale ? GW_LOG_WARN : GW_LOG_INFO, "identity.loaded",
           "registry=%s crl=%s active_devices=%zu crl_entries=%zu crl_number=%lld crl_stale=%d",
           id->registry_path, id->crl_path, r->active, r->listed, (long long)r->crl_number,
           r->stale ? 1 : 0);
}

/* The registry is read first and must load: it is where iotctl records
 * every revocation. The CRL is then checked; one that cannot be used
 * (missing, corrupt, foreign, older than the one in force) does not stop
 * the reload: the new snapshot takes the registry's revocations and the
 * CRL in force stays, marked stale, logged and counted. Only at startup,
 * with no CRL in force yet, is an unusable CRL fatal. */
iot_status gw_admission_reload(gw_admission *id, iot_err *err)
{
    file_stamp reg_stamp, crl_stamp;
    stamp_of(id->registry_path, &reg_stamp);
    stamp_of(id->crl_path, &crl_stamp);
    id_snapshot *snap = calloc(1, sizeof(*snap));
    if (snap == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory loading the registry");
    snap->refs = 1;
    load_report r = {0};
    X509_CRL *fresh = NULL, *in_force = NULL;
    const char *reason = "";
    iot_err crl_err = {0};
    iot_status st = load_registry(id, snap, err);
    if (st != IOT_OK)
        goto out;
    in_force = gw_admission_crl(id);
    iot_status crl_st = load_usable_crl(id, in_force, &fresh, &reason, &crl_err);
    if (crl_st != IOT_OK) {
        X509_CRL_free(fresh);
        fresh = NULL;
        st = crl_rejected(id, in_force != NULL, crl_st, reason, &crl_err, err);
        if (st != IOT_OK)
            goto out;
    }
    const X509_CRL *use = fresh != NULL ? fresh : in_force;
    st = apply_crl(use, snap, &r.listed, err);
    if (st != IOT_OK)
        goto out;
    read_crl_dates(id, use, &r);
    r.active = count_active(snap);
    report_certificates(id, snap);
    r.stale = crl_st != IOT_OK;
    publish(id, snap, fresh, &reg_stamp, &crl_stamp);
    snap = NULL;
    fresh = NULL;
    report_loaded(id, &r);
out:
    X509_CRL_free(fresh);
    X509_CRL_free(in_force);
    if (snap != NULL) {
        free(snap->entries);
        free(snap);
    }
    if (st != IOT_OK)
        gw_metric_inc(GW_M_RELOAD_FAILURES);
    return st;
}

X509_CRL *gw_admission_crl(gw_admission *id)
{
    pthread_mutex_lock(&id->lock);
    X509_CRL *crl = id->crl;
    if (crl != NULL)
        X509_CRL_up_ref(crl);
    pthread_mutex_unlock(&id->lock);
    return crl;
}

iot_status gw_admission_reload_if_changed(gw_admission *id, bool *reloaded, iot_err *err)
{
    file_stamp reg_stamp, crl_stamp;
    stamp_of(id->registry_path, &reg_stamp);
    stamp_of(id->crl_path, &crl_stamp);
    pthread_mutex_lock(&id->lock);
    bool same =
        stamp_equal(&reg_stamp, &id->registry_stamp) && stamp_equal(&crl_stamp, &id->crl_stamp);
    pthread_mutex_unlock(&id->lock);
    *reloaded = false;
    if (same)
        return IOT_OK;
    iot_status st = gw_admission_reload(id, err);
    *reloaded = st == IOT_OK;
    return st;
}

static iot_status load_ca(const char *path, X509 **out, iot_err *err)
{
    char *data = NULL;
    size_t len = 0;
    iot_status st = iot_file_read(path, 1024 * 1024, &data, &len, err);
    if (st != IOT_OK)
        return st;
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    *out = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    free(data);
    if (*out == NULL) {
        ERR_clear_error();
        return iot_err_set(err, IOT_ECORRUPT, "%s is not a PEM certificate", path);
    }
    return IOT_OK;
}

iot_status gw_admission_open(const gw_admission_options *opt, gw_admission **out, iot_err *err)
{
    *out = NULL;
    gw_admission *id = calloc(1, sizeof(*id));
    if (id == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    pthread_mutex_init(&id->lock, NULL);
    id->expiry_warning_s = opt->cert_expiry_warning_s;
    snprintf(id->registry_path, sizeof(id->registry_path), "%s", opt->registry_path);
    snprintf(id->crl_path, sizeof(id->crl_path), "%s", opt->crl_path);
    iot_status st = load_ca(opt->ca_path, &id->ca, err);
    if (st == IOT_OK) {
        gw_cert_expiry_set(GW_CERT_CA, gw_asn1_time_unix(X509_get0_notAfter(id->ca)));
        st = gw_admission_reload(id, err);
    }
    if (st != IOT_OK) {
        gw_admission_close(id);
        return st;
    }
    *out = id;
    return IOT_OK;
}

void gw_admission_close(gw_admission *id)
{
    if (id == NULL)
        return;
    snapshot_release(id, id->current);
    X509_CRL_free(id->crl);
    X509_free(id->ca);
    pthread_mutex_destroy(&id->lock);
    free(id);
}

static bool cert_cn(X509 *cert, char out[IOT_ID_MAX + 1])
{
    X509_NAME *subject = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0)
        return false;
    ASN1_STRING *value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
    int len = ASN1_STRING_length(value);
    if (len <= 0 || len > IOT_ID_MAX)
        return false;
    memcpy(out, ASN1_STRING_get0_data(value), (size_t)len);
    out[len] = '\0';
    return strlen(out) == (size_t)len && iot_id_is_valid(out);
}

/* SHA-256 fetched once: EVP_sha256() would make OpenSSL 3 look it up by
 * name (locks, string compares) on every handshake and resumption. */
static EVP_MD *fpr_md;
static pthread_once_t fpr_md_once = PTHREAD_ONCE_INIT;

static void fetch_fpr_md(void)
{
    fpr_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static bool fingerprint_of(X509 *cert, char out[IOT_FPR_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    pthread_once(&fpr_md_once, fetch_fpr_md);
    if (fpr_md == NULL || !X509_digest(cert, fpr_md, md, &n) || n * 2 != IOT_FPR_HEX_LEN)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 0xf];
    }
    out[IOT_FPR_HEX_LEN] = '\0';
    return true;
}

/* A device certificate signed by an intermediate is only as good as that
 * intermediate: revoked (in the registry or the root CRL) or unknown, it
 * admits none of its devices. */
static bool issuer_usable(const id_snapshot *snap, const id_entry *e)
{
    if (e->issuer[0] == '\0')
        return true;
    id_entry key = {0};
    memcpy(key.serial, e->issuer, sizeof(key.serial));
    const id_entry *i = bsearch(&key, snap->entries, snap->n, sizeof(*i), entry_cmp);
    return i != NULL && i->kind == IOT_KIND_ISSUER && !i->revoked;
}

static gw_admission_verdict judge(const id_snapshot *snap, const id_entry *e, X509 *cert)
{
    char cn[IOT_ID_MAX + 1];
    char fpr[IOT_FPR_HEX_LEN + 1];
    if (e == NULL)
        return GW_ADMISSION_UNKNOWN;
    if (e->revoked)
        return GW_ADMISSION_REVOKED;
    if (e->kind != IOT_KIND_DEVICE)
        return GW_ADMISSION_NOT_DEVICE;
    if (!cert_cn(cert, cn) || strcmp(cn, e->name) != 0 || !fingerprint_of(cert, fpr) ||
        strcmp(fpr, e->fingerprint) != 0)
        return GW_ADMISSION_MISMATCH;
    if (!issuer_usable(snap, e))
        return GW_ADMISSION_ISSUER_REVOKED;
    return GW_ADMISSION_OK;
}

gw_admission_verdict gw_admission_check_facts(gw_admission *id, X509 *cert,
                                              char device_id[IOT_ID_MAX + 1],
                                              gw_admission_facts *facts)
{
    id_entry key = {0};
    device_id[0] = '\0';
    if (facts != NULL)
        memset(facts, 0, sizeof(*facts));
    if (!serial_hex(X509_get0_serialNumber(cert), key.serial))
        return GW_ADMISSION_UNKNOWN;
    id_snapshot *snap = snapshot_acquire(id);
    if (snap == NULL)
        return GW_ADMISSION_UNKNOWN;
    const id_entry *e = bsearch(&key, snap->entries, snap->n, sizeof(*e), entry_cmp);
    gw_admission_verdict v = judge(snap, e, cert);
    if (v == GW_ADMISSION_OK) {
        memcpy(device_id, e->name, sizeof(e->name));
        if (facts != NULL) {
            facts->ends_grace = e->successor;
            facts->in_grace = e->in_grace;
            memcpy(facts->serial, e->serial, sizeof(facts->serial));
        }
    }
    snapshot_release(id, snap);
    return v;
}

gw_admission_verdict gw_admission_check(gw_admission *id, X509 *cert,
                                        char device_id[IOT_ID_MAX + 1])
{
    return gw_admission_check_facts(id, cert, device_id, NULL);
}

/* ---- changes the gateway itself made (enrollment) ------------------------ */

/* A copy of the snapshot in force with room for `extra` more entries; the
 * caller changes it and publishes it with swap_in. */
static id_snapshot *snapshot_copy(gw_admission *id, size_t extra)
{
    id_snapshot *cur = snapshot_acquire(id);
    id_snapshot *copy = calloc(1, sizeof(*copy));
    size_t n = cur != NULL ? cur->n : 0;
    if (copy != NULL)
        copy->entries = calloc(n + extra + 1, sizeof(id_entry));
    if (copy != NULL && copy->entries != NULL) {
        if (n > 0)
            memcpy(copy->entries, cur->entries, n * sizeof(id_entry));
        copy->n = n;
        copy->refs = 1;
    } else if (copy != NULL) {
        free(copy);
        copy = NULL;
    }
    snapshot_release(id, cur);
    return copy;
}

/* Puts a changed copy in force; the file stamps stay, so the next reload
 * still reads the registry the change was written to. */
static void swap_in(gw_admission *id, id_snapshot *snap)
{
    pthread_mutex_lock(&id->lock);
    id_snapshot *old = id->current;
    id->current = snap;
    atomic_fetch_add(&id->generation, 1);
    pthread_mutex_unlock(&id->lock);
    snapshot_release(id, old);
    report_certificates(id, snap);
}

/* The device's current certificate becomes replaced: in grace, or gone
 * when there is none. Returns whether one went into grace. */
static bool replace_current(id_snapshot *snap, const char *name, bool grace)
{
    bool any = false;
    for (size_t i = 0; i < snap->n; i++) {
        id_entry *e = &snap->entries[i];
        if (e->kind != IOT_KIND_DEVICE || e->in_grace || e->revoked || strcmp(e->name, name) != 0)
            continue;
        e->in_grace = grace;
        e->revoked = !grace;
        e->successor = false;
        any = any || grace;
    }
    return any;
}

iot_status gw_admission_add_issued(gw_admission *id, const iot_cert_record *rec, bool grace,
                                   iot_err *err)
{
    id_snapshot *snap = snapshot_copy(id, 1);
    if (snap == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory updating the admission snapshot");
    id_entry key = {0};
    memcpy(key.serial, rec->serial, sizeof(key.serial));
    if (bsearch(&key, snap->entries, snap->n, sizeof(key), entry_cmp) != NULL) {
        free(snap->entries); /* reissued: it is in force already */
        free(snap);
        return IOT_OK;
    }
    bool replaced = replace_current(snap, rec->name, grace);
    load_ctx lc = {snap, snap->n + 1};
    add_record(rec, &lc);
    snap->entries[snap->n - 1].successor = replaced;
    qsort(snap->entries, snap->n, sizeof(id_entry), entry_cmp);
    swap_in(id, snap);
    return IOT_OK;
}

iot_status gw_admission_end_grace(gw_admission *id, const char *name, iot_err *err)
{
    id_snapshot *snap = snapshot_copy(id, 0);
    if (snap == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory updating the admission snapshot");
    for (size_t i = 0; i < snap->n; i++) {
        id_entry *e = &snap->entries[i];
        if (e->kind != IOT_KIND_DEVICE || strcmp(e->name, name) != 0)
            continue;
        e->revoked = e->revoked || e->in_grace;
        e->successor = false;
    }
    swap_in(id, snap);
    return IOT_OK;
}

uint64_t gw_admission_generation(gw_admission *id)
{
    return (uint64_t)atomic_load(&id->generation);
}

gw_admission_verdict gw_admission_check_name(gw_admission *id, const char *name)
{
    if (!iot_id_is_valid(name))
        return GW_ADMISSION_UNKNOWN;
    id_snapshot *snap = snapshot_acquire(id);
    if (snap == NULL)
        return GW_ADMISSION_UNKNOWN;
    gw_admission_verdict v = GW_ADMISSION_UNKNOWN;
    for (size_t i = 0; i < snap->n; i++) {
        const id_entry *e = &snap->entries[i];
        if (strcmp(e->name, name) != 0)
            continue;
        v = e->revoked                   ? GW_ADMISSION_REVOKED
            : e->kind != IOT_KIND_DEVICE ? GW_ADMISSION_NOT_DEVICE
                                         : GW_ADMISSION_OK;
        break;
    }
    snapshot_release(id, snap);
    return v;
}

const char *gw_admission_verdict_name(gw_admission_verdict v)
{
    switch (v) {
    case GW_ADMISSION_OK:
        return "ok";
    case GW_ADMISSION_UNKNOWN:
        return "device_unknown";
    case GW_ADMISSION_REVOKED:
        return "device_revoked";
    case GW_ADMISSION_NOT_DEVICE:
        return "not_a_device";
    case GW_ADMISSION_MISMATCH:
        return "certificate_mismatch";
    case GW_ADMISSION_ISSUER_REVOKED:
        return "issuer_revoked";
    }
    return "unknown";
}

gw_refusal gw_admission_verdict_refusal(gw_admission_verdict v)
{
    switch (v) {
    case GW_ADMISSION_REVOKED:
        return GW_REF_DEVICE_REVOKED;
    case GW_ADMISSION_NOT_DEVICE:
        return GW_REF_NOT_A_DEVICE;
    case GW_ADMISSION_MISMATCH:
        return GW_REF_CERT_MISMATCH;
    case GW_ADMISSION_ISSUER_REVOKED:
        return GW_REF_ISSUER_REVOKED;
    case GW_ADMISSION_OK:
    case GW_ADMISSION_UNKNOWN:
        break;
    }
    return GW_REF_DEVICE_UNKNOWN;
}
