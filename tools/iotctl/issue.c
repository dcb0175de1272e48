#include "issue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "iot/fsutil.h"
#include "iot/identity.h"

/* Files an identity's directory holds; the key only when generated here. */
typedef struct identity_files {
    char dir[CLI_PATH_MAX];
    char key[CLI_PATH_MAX];
    char cert[CLI_PATH_MAX];
    char ca[CLI_PATH_MAX];
    bool created[3]; /* key, cert, ca: for cleanup on failure */
} identity_files;

static const char *kind_dir(iot_cert_kind kind)
{
    switch (kind) {
    case IOT_KIND_DEVICE:
        return "devices";
    case IOT_KIND_SERVER:
        return "servers";
    case IOT_KIND_CLIENT:
        return "clients";
    case IOT_KIND_ISSUER:
        return "issuers";
    }
    return "other";
}

/* Registries from before schema 3 record no keys: the rows get them from
 * their certificate files, when the file is where iotctl put it and its
 * SHA-256 is the one recorded. */
typedef struct unkeyed_list {
    iot_cert_record *recs;
    size_t n, cap;
} unkeyed_list;

static int collect_unkeyed(const iot_cert_record *rec, void *arg)
{
    unkeyed_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        iot_cert_record *grown = cap > (1u << 20) ? NULL : realloc(l->recs, cap * sizeof(*grown));
        if (grown == NULL)
            return IOT_ENOMEM;
        l->recs = grown;
        l->cap = cap;
    }
    l->recs[l->n++] = *rec;
    return 0;
}

/* The key of rec from DIR/<kind>s/<name>/cert.pem or, for a replaced
 * certificate, .../superseded-<serial>/cert.pem; false if neither file is
 * rec's certificate. */
static bool key_from_files(const cli_ctx *ctx, const iot_cert_record *rec, char *spki)
{
    for (int i = 0; i < 2; i++) {
        char sub[CLI_PATH_MAX], path[CLI_PATH_MAX];
        X509 *cert = NULL;
        pki_cert_facts facts;
        int n = i == 0
                    ? snprintf(sub, sizeof(sub), "%s/%s/cert.pem", kind_dir(rec->kind), rec->name)
                    : snprintf(sub, sizeof(sub), "%s/%s/superseded-%s/cert.pem",
                               kind_dir(rec->kind), rec->name, rec->serial);
        bool ok = n > 0 && (size_t)n < sizeof(sub) && cli_path(ctx, path, sub, NULL) == IOT_OK &&
                  iot_path_exists(path) && pki_cert_load(path, &cert, NULL) == IOT_OK &&
                  pki_cert_facts_get(cert, &facts, NULL) == IOT_OK &&
                  strcmp(facts.fingerprint, rec->fingerprint) == 0 &&
                  pki_key_fingerprint(X509_get0_pubkey(cert), spki, NULL) == IOT_OK;
        X509_free(cert);
        if (ok)
            return true;
    }
    return false;
}

static int warn_shared(const iot_cert_record *rec, void *arg)
{
    (void)arg;
    fprintf(stderr,
            "iotctl: warning: %s '%s' (serial %s) shares its public key %s with another "
            "identity; revoke all but one of them\n",
            iot_cert_kind_name(rec->kind), rec->name, rec->serial, rec->spki);
    return 0;
}

/* Fills in the keys the registry lacks, in one transaction. */
static iot_status fill_missing_keys(const cli_ctx *ctx, iot_registry *reg, iot_err *err)
{
    unkeyed_list l = {0};
    size_t missing = 0;
    bool began = false;
    iot_status st = iot_registry_foreach_unkeyed(reg, collect_unkeyed, &l, err);
    if (st == IOT_ENOMEM)
        iot_err_set(err, IOT_ENOMEM, "out of memory listing the registry's certificates");
    if (st != IOT_OK || l.n == 0)
        goto out;
    st = iot_registry_begin(reg, err);
    if (st != IOT_OK)
        goto out;
    began = true;
    for (size_t i = 0; i < l.n; i++) {
        char spki[IOT_FPR_HEX_LEN + 1];
        if (!key_from_files(ctx, &l.recs[i], spki)) {
            missing++;
            continue;
        }
        st = iot_registry_set_key(reg, l.recs[i].serial, spki, err);
        if (st != IOT_OK)
            goto out;
    }
    st = iot_registry_commit(reg, err);
    if (st != IOT_OK)
        goto out;
    if (missing > 0 && iot_registry_upgraded_from(reg) != 0)
        fprintf(stderr,
                "iotctl: warning: %zu certificates in %s/registry.db have no recorded public key "
                "(their certificate files are not in %s); a CSR that reuses one of their keys "
                "cannot be refused\n",
                missing, ctx->dir, ctx->dir);
out:
    if (st != IOT_OK && began)
        iot_registry_rollback(reg);
    free(l.recs);
    return st;
}

static iot_status record_keys(const cli_ctx *ctx, iot_registry *reg, iot_err *err)
{
    iot_status st = fill_missing_keys(ctx, reg, err);
    if (st != IOT_OK || iot_registry_upgraded_from(reg) == 0)
        return st;
    return iot_registry_foreach_shared_key(reg, warn_shared, NULL, err);
}

/* The CA key, CA certificate and registry of ctx->dir, each CLI_PATH_MAX. */
static iot_status pki_paths(const cli_ctx *ctx, char *key, char *cert, char *db, iot_err *err)
{
    iot_status st = cli_path(ctx, key, "ca.key", err);
    if (st != IOT_OK)
        return st;
    st = cli_path(ctx, cert, "ca.crt", err);
    if (st != IOT_OK)
        return st;
    return cli_path(ctx, db, "registry.db", err);
}

/* The CA and the registry, opened in mode (IOT_REGISTRY_WRITE or
 * IOT_REGISTRY_READONLY); a writer also records the keys of certificates
 * the registry has none for. */
static iot_status open_pki_as(const cli_ctx *ctx, pki_ca *ca, iot_registry **reg, int mode,
                              iot_err *err)
{
    char key[CLI_PATH_MAX], cert[CLI_PATH_MAX], db[CLI_PATH_MAX];
    *reg = NULL;
    iot_status st = cli_check_pki(ctx, err);
    if (st != IOT_OK)
        return st;
    st = pki_paths(ctx, key, cert, db, err);
    if (st != IOT_OK)
        return st;
    if (!iot_path_exists(key) && !iot_path_exists(cert))
        return iot_err_set(err, IOT_ENOENT,
                           "no CA in %s (ca.key and ca.crt are missing); create one with "
                           "'iotctl --dir %s pki init' or point --dir at an existing PKI",
                           ctx->dir, ctx->dir);
    st = pki_ca_load(key, cert, ca, err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_open(db, mode, reg, err);
    if (st != IOT_OK)
        goto out;
    if (mode == IOT_REGISTRY_WRITE)
        st = record_keys(ctx, *reg, err);
out:
    if (st != IOT_OK) {
        iot_registry_close(*reg);
        *reg = NULL;
        pki_ca_free(ca);
    }
    return st;
}

iot_status open_pki(const cli_ctx *ctx, pki_ca *ca, iot_registry **reg, iot_err *err)
{
    return open_pki_as(ctx, ca, reg, IOT_REGISTRY_WRITE, err);
}

iot_status crl_regenerate(const cli_ctx *ctx, const pki_ca *ca, iot_registry *reg, int days,
                          uint64_t *number, iot_err *err)
{
    char path[CLI_PATH_MAX];
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    iot_status st = cli_path(ctx, path, "crl.pem", err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_next_crl_number(reg, number, err);
    if (st != IOT_OK)
        return st;
    st = pki_crl_build(ca, reg, *number, ctx->now, days, &crl, err);
    if (st != IOT_OK)
        goto out;
    st = pki_crl_pem(crl, &pem, &len, err);
    if (st != IOT_OK)
        goto out;
    st = iot_file_replace(path, pem, len, 0644, err);
out:
    free(pem);
    X509_CRL_free(crl);
    return st;
}

/* A renewed identity's old files, moved aside so that the new ones take
 * their names; put back if the renewal fails. */
typedef struct archived_files {
    char dir[CLI_PATH_MAX];
    char from[3][CLI_PATH_MAX];
    char to[3][CLI_PATH_MAX];
    bool moved[3];
    bool made_dir;
} archived_files;

static iot_status archive_files(const identity_files *f, const char *serial, archived_files *a,
                                iot_err *err)
{
    static const char *const names[] = {"key.pem", "cert.pem", "ca.pem"};
    const char *from[] = {f->key, f->cert, f->ca};
    char sub[sizeof("superseded-") + IOT_SERIAL_HEX_MAX];
    if (!iot_path_exists(f->key) && !iot_path_exists(f->cert) && !iot_path_exists(f->ca))
        return IOT_OK; /* issued with --out elsewhere: nothing here to move */
    snprintf(sub, sizeof(sub), "superseded-%s", serial);
    iot_status st = iot_path_join(a->dir, sizeof(a->dir), f->dir, sub, err);
    if (st != IOT_OK)
        return st;
    if (mkdir(a->dir, 0700) != 0)
        return iot_err_set(err, IOT_EIO, "cannot create %s for the replaced files: %s", a->dir,
                           strerror(errno));
    a->made_dir = true;
    for (size_t i = 0; i < 3; i++) {
        if (!iot_path_exists(from[i]))
            continue;
        snprintf(a->from[i], sizeof(a->from[i]), "%s", from[i]);
        st = iot_path_join(a->to[i], sizeof(a->to[i]), a->dir, names[i], err);
        if (st != IOT_OK)
            return st;
        if (rename(a->from[i], a->to[i]) != 0)
            return iot_err_set(err, IOT_EIO, "cannot move %s to %s: %s", a->from[i], a->to[i],
                               strerror(errno));
        a->moved[i] = true;
    }
    return IOT_OK;
}

static void restore_files(archived_files *a)
{
    for (size_t i = 0; i < 3; i++)
        if (a->moved[i])
            (void)rename(a->to[i], a->from[i]);
    if (a->made_dir)
        (void)rmdir(a->dir);
}

static iot_status plan_paths(const cli_ctx *ctx, const issue_request *req, identity_files *f,
                             iot_err *err)
{
    memset(f, 0, sizeof(*f));
    if (req->out_dir != NULL) {
        int n = snprintf(f->dir, sizeof(f->dir), "%s", req->out_dir);
        if (n < 0 || (size_t)n >= sizeof(f->dir))
            return iot_err_set(err, IOT_EINVAL, "--out path is too long");
    } else {
        char sub[CLI_PATH_MAX];
        int n = snprintf(sub, sizeof(sub), "%s/%s", kind_dir(req->kind), req->name);
        if (n < 0 || (size_t)n >= sizeof(sub) || cli_path(ctx, f->dir, sub, err) != IOT_OK)
            return iot_err_set(err, IOT_EINVAL, "output path is too long");
    }
    iot_status st = iot_path_join(f->key, sizeof(f->key), f->dir, "key.pem", err);
    if (st != IOT_OK)
        return st;
    st = iot_path_join(f->cert, sizeof(f->cert), f->dir, "cert.pem", err);
    if (st != IOT_OK)
        return st;
    return iot_path_join(f->ca, sizeof(f->ca), f->dir, "ca.pem", err);
}

/* All or nothing: refuse before any work if a file is in the way. */
static iot_status check_paths_free(const issue_request *req, const identity_files *f, iot_err *err)
{
    const char *paths[] = {req->csr_path ? NULL : f->key, f->cert, f->ca};
    for (size_t i = 0; i < 3; i++)
        if (paths[i] && iot_path_exists(paths[i]))
            return iot_err_set(err, IOT_EEXIST,
                               "%s already exists; refusing to overwrite it (move it away or "
                               "choose another --out)",
                               paths[i]);
    return IOT_OK;
}

static void remove_created(identity_files *f)
{
    const char *paths[] = {f->key, f->cert, f->ca};
    for (size_t i = 0; i < 3; i++)
        if (f->created[i])
            unlink(paths[i]);
}

/* Writes a certificate's PEM to a new file; created records it. */
static iot_status write_cert_file(X509 *cert, const char *path, bool *created, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = pki_cert_pem(cert, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(path, pem, len, 0644, err);
    free(pem);
    *created = st == IOT_OK;
    return st;
}

static iot_status write_key_file(EVP_PKEY *key, const char *path, bool *created, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = pki_key_pem(key, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(path, pem, len, 0600, err);
    OPENSSL_clear_free(pem, len);
    *created = st == IOT_OK;
    return st;
}

static iot_status write_identity_files(const pki_ca *ca, EVP_PKEY *key, X509 *cert,
                                       identity_files *f, iot_err *err)
{
    iot_status st = iot_mkdir_p(f->dir, 0700, err);
    if (st != IOT_OK)
        return st;
    if (key != NULL) {
        st = write_key_file(key, f->key, &f->created[0], err);
        if (st != IOT_OK)
            return st;
    }
    st = write_cert_file(cert, f->cert, &f->created[1], err);
    if (st != IOT_OK)
        return st;
    return write_cert_file(ca->cert, f->ca, &f->created[2], err);
}

/* One key, one identity: the new certificate's key must not be the CA's,
 * nor the key of any certificate of another name, active, revoked or
 * replaced. The name's own earlier keys may serve again (a renewal with the
 * same key). */
static iot_status check_key_unused(const pki_ca *ca, iot_registry *reg, const issue_request *req,
                                   const char *spki, iot_err *err)
{
    char ca_spki[IOT_FPR_HEX_LEN + 1];
    const char *source = req->csr_path ? req->csr_path : "the new key";
    iot_status st = pki_key_fingerprint(X509_get0_pubkey(ca->cert), ca_spki, err);
    if (st != IOT_OK)
        return st;
    if (strcmp(ca_spki, spki) == 0)
        return iot_err_set(err, IOT_EEXIST,
                           "CSR %s carries the CA's own public key; one key, one identity: make "
                           "a new key and CSR on the device",
                           source);
    iot_cert_record holder;
    iot_err lookup;
    st = iot_registry_find_key(reg, spki, req->name, &holder, &lookup);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st != IOT_OK) {
        *err = lookup;
        return st;
    }
    bool replaced = holder.revoked && strcmp(holder.revoke_reason, "superseded") == 0;
    return iot_err_set(
        err, IOT_EEXIST,
        "CSR %s carries the public key of %s '%s' (%s, serial %s); one key, one "
        "identity: make a new key and CSR on the device",
        source, iot_cert_kind_name(holder.kind), holder.name,
        !holder.revoked ? "active" : (replaced ? "a certificate replaced by a renewal" : "revoked"),
        holder.serial);
}

/* A certificate must not outlive the CA that vouches for it. */
static iot_status check_within_ca(const pki_ca *ca, const pki_profile *p, iot_err *err)
{
    pki_cert_facts ca_facts;
    iot_status st = pki_cert_facts_get(ca->cert, &ca_facts, err);
    if (st != IOT_OK)
        return st;
    if ((int64_t)p->not_after > ca_facts.not_after) {
        char when[32];
        cli_format_time(ca_facts.not_after, when, sizeof(when));
        return iot_err_set(err, IOT_EINVAL,
                           "the certificate would outlive the CA, which expires %s; choose a "
                           "shorter --days",
                           when);
    }
    return IOT_OK;
}

static void print_issued(const issue_request *req, const identity_files *f,
                         const pki_cert_facts *facts, const char *subject)
{
    char until[32];
    cli_format_time(facts->not_after, until, sizeof(until));
    printf("%s %s: certificate %s\n", iot_cert_kind_name(req->kind), req->name,
           req->renew ? "renewed" : "issued");
    printf("  serial       %s\n", facts->serial);
    printf("  sha256       %s\n", facts->fingerprint);
    printf("  expires      %s\n", until);
    if (req->class_id != NULL && req->class_id[0] != '\0')
        printf("  class        %s\n", req->class_id);
    printf("  certificate  %s\n", f->cert);
    if (req->csr_path == NULL)
        printf("  private key  %s (mode 0600)\n", f->key);
    printf("  CA           %s\n", f->ca);
    if (req->kind == IOT_KIND_CLIENT) /* the broker knows a client by its subject */
        printf("  broker ACL   user %s\n", subject);
}

/* An issue needs a free name; a renewal an enrolled name of the same kind
 * that is not revoked. existing is the name's current certificate. */
static iot_status check_enrollment(iot_registry *reg, const issue_request *req, const char *what,
                                   iot_cert_record *existing, iot_err *err)
{
    bool found = iot_registry_get_by_name(reg, req->name, existing, NULL) == IOT_OK;
    if (found && !req->renew)
        return iot_err_set(err, IOT_EEXIST, "%s '%s' is already taken by %s %s certificate", what,
                           req->name,
                           existing->revoked ? "a revoked" : iot_cert_kind_article(existing->kind),
                           iot_cert_kind_name(existing->kind));
    if (req->renew && (!found || existing->kind != req->kind))
        return iot_err_set(err, IOT_ENOENT, "%s '%s' is not enrolled; enroll it with 'iotctl %s'",
                           what, req->name,
                           req->kind == IOT_KIND_DEVICE ? "device add" : "cert server|client");
    if (req->renew && existing->revoked)
        return iot_err_set(err, IOT_ESTATE,
                           "%s '%s' is revoked; a revoked identity is not renewed (enroll the "
                           "device under a new ID)",
                           what, req->name);
    return IOT_OK;
}

/* Where the files go, a renewal's old files moved aside; refused before
 * any work if the certificate would outlive the CA or a file is in the
 * way. */
static iot_status prepare_files(const cli_ctx *ctx, const pki_ca *ca, const issue_request *req,
                                const char *old_serial, identity_files *files,
                                archived_files *archived, iot_err *err)
{
    iot_status st = plan_paths(ctx, req, files, err);
    if (st != IOT_OK)
        return st;
    st = check_within_ca(ca, &req->profile, err);
    if (st != IOT_OK)
        return st;
    if (req->renew && req->out_dir == NULL) {
        st = archive_files(files, old_serial, archived, err);
        if (st != IOT_OK)
            return st;
    }
    return check_paths_free(req, files, err);
}

/* The new certificate's key, from the CSR or generated here, and its
 * fingerprint; a key that another identity holds is refused. */
static iot_status take_key(const pki_ca *ca, iot_registry *reg, const issue_request *req,
                           EVP_PKEY **key, char *spki, iot_err *err)
{
    iot_status st;
    if (req->csr_path != NULL)
        st = pki_csr_load(req->csr_path, req->name, key, err);
    else
        st = pki_key_generate(key, err);
    if (st != IOT_OK)
        return st;
    st = pki_key_fingerprint(*key, spki, err);
    if (st != IOT_OK)
        return st;
    return check_key_unused(ca, reg, req, spki, err);
}

/* The certificate, its facts and its subject (a client's broker user). */
static iot_status make_cert(const pki_ca *ca, EVP_PKEY *key, issue_request *req, X509 **cert,
                            pki_cert_facts *facts, char *subject, size_t subject_size, iot_err *err)
{
    req->profile.common_name = req->name;
    req->profile.organization = CLI_ORGANIZATION;
    req->profile.unit = req->role;
    iot_status st = pki_issue(ca, key, &req->profile, cert, err);
    if (st != IOT_OK)
        return st;
    st = pki_cert_facts_get(*cert, facts, err);
    if (st != IOT_OK)
        return st;
    return pki_subject_text(*cert, subject, subject_size, err);
}

/* The registry row: added, or for a renewal replacing the old one. */
static iot_status record_cert(const cli_ctx *ctx, iot_registry *reg, const issue_request *req,
                              const pki_cert_facts *facts, const char *spki, iot_err *err)
{
    iot_cert_record rec = {0};
    snprintf(rec.name, sizeof(rec.name), "%s", req->name);
    rec.kind = req->kind;
    snprintf(rec.role, sizeof(rec.role), "%s", req->kind == IOT_KIND_CLIENT ? req->role : "");
    snprintf(rec.class_id, sizeof(rec.class_id), "%s", req->class_id ? req->class_id : "");
    memcpy(rec.serial, facts->serial, sizeof(rec.serial));
    memcpy(rec.fingerprint, facts->fingerprint, sizeof(rec.fingerprint));
    memcpy(rec.spki, spki, sizeof(rec.spki));
    rec.not_before = facts->not_before;
    rec.not_after = facts->not_after;
    rec.created = (int64_t)ctx->now;
    if (req->renew)
        return iot_registry_renew(reg, &rec, (int64_t)ctx->now, err);
    return iot_registry_add(reg, &rec, err);
}

static void print_renewed(const cli_ctx *ctx, const iot_cert_record *old, uint64_t crl_number,
                          const archived_files *archived)
{
    printf("  replaced     serial %s, revoked as superseded; %s/crl.pem regenerated (CRL "
           "number %llu)\n",
           old->serial, ctx->dir, (unsigned long long)crl_number);
    if (archived->made_dir)
        printf("  old files    %s\n", archived->dir);
}

/* What an issue or a renewal holds between its steps. */
typedef struct issuance {
    iot_err err;
    pki_ca ca;
    iot_registry *reg;
    EVP_PKEY *key;
    X509 *cert;
    identity_files files;
    archived_files archived;
    iot_cert_record existing;
    uint64_t crl_number;
    pki_cert_facts facts;
    char spki[IOT_FPR_HEX_LEN + 1];
    char subject[256];
} issuance;

/* The checks, in the registry transaction, before any key is made. */
static iot_status issue_begin(cli_ctx *ctx, const issue_request *req, const char *what,
                              issuance *is)
{
    iot_status st = iot_id_check(what, req->name, &is->err);
    if (st != IOT_OK)
        return st;
    if (req->class_id != NULL && req->class_id[0] != '\0' && !iot_class_id_is_valid(req->class_id))
        return iot_err_set(&is->err, IOT_EINVAL,
                           "--class '%s' is not a class-id: 1-%d of [A-Za-z0-9._-], first a "
                           "letter or a digit",
                           req->class_id, IOT_CLASS_ID_MAX);
    st = open_pki(ctx, &is->ca, &is->reg, &is->err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_begin(is->reg, &is->err);
    if (st != IOT_OK)
        return st;
    st = check_enrollment(is->reg, req, what, &is->existing, &is->err);
    if (st != IOT_OK)
        return st;
    return prepare_files(ctx, &is->ca, req, is->existing.serial, &is->files, &is->archived,
                         &is->err);
}

/* Key, certificate, registry row, files, a renewal's CRL, then the commit. */
static iot_status issue_store(cli_ctx *ctx, issue_request *req, issuance *is)
{
    iot_status st = take_key(&is->ca, is->reg, req, &is->key, is->spki, &is->err);
    if (st != IOT_OK)
        return st;
    st = make_cert(&is->ca, is->key, req, &is->cert, &is->facts, is->subject, sizeof(is->subject),
                   &is->err);
    if (st != IOT_OK)
        return st;
    st = record_cert(ctx, is->reg, req, &is->facts, is->spki, &is->err);
    if (st != IOT_OK)
        return st;
    st = write_identity_files(&is->ca, req->csr_path ? NULL : is->key, is->cert, &is->files,
                              &is->err);
    if (st != IOT_OK)
        return st;
    if (req->renew) {
        st = crl_regenerate(ctx, &is->ca, is->reg, CLI_DEFAULT_CRL_DAYS, &is->crl_number, &is->err);
        if (st != IOT_OK)
            return st;
    }
    return iot_registry_commit(is->reg, &is->err);
}

int issue_identity(cli_ctx *ctx, issue_request *req)
{
    issuance is = {0};
    const char *what = req->kind == IOT_KIND_DEVICE ? "device ID" : "certificate name";
    iot_status st = issue_begin(ctx, req, what, &is);
    if (st != IOT_OK)
        goto out;
    st = issue_store(ctx, req, &is);
    if (st != IOT_OK)
        goto out;
    print_issued(req, &is.files, &is.facts, is.subject);
    if (req->renew)
        print_renewed(ctx, &is.existing, is.crl_number, &is.archived);
out:
    if (st != IOT_OK) {
        if (is.reg != NULL)
            iot_registry_rollback(is.reg);
        remove_created(&is.files);
        restore_files(&is.archived);
    }
    X509_free(is.cert);
    EVP_PKEY_free(is.key);
    iot_registry_close(is.reg);
    pki_ca_free(&is.ca);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&is.err);
}

static int count_one(const iot_cert_record *rec, void *arg)
{
    (void)rec;
    (*(size_t *)arg)++;
    return 0;
}

/* The certificate a revocation of name would revoke, and how many the CRL
 * lists now, from a registry opened read-only. */
static iot_status revoke_lookup(cli_ctx *ctx, iot_cert_kind kind, const char *name,
                                iot_cert_record *rec, size_t *listed, iot_err *err)
{
    pki_ca ca = {0};
    iot_registry *reg = NULL;
    iot_status st = open_pki_as(ctx, &ca, &reg, IOT_REGISTRY_READONLY, err);
    if (st != IOT_OK)
        return st;
    st = iot_registry_revoke_check(reg, kind, name, rec, err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_foreach_revoked(reg, count_one, listed, err);
out:
    iot_registry_close(reg);
    pki_ca_free(&ca);
    return st;
}

/* revoke --dry-run: the same checks, in a read-only registry. */
static int revoke_dry_run(cli_ctx *ctx, iot_cert_kind kind, const char *name, const char *reason)
{
    iot_err err = {0};
    iot_cert_record rec;
    size_t listed = 0;
    const char *what = kind == IOT_KIND_DEVICE ? "device ID" : "certificate name";
    iot_status st = iot_id_check(what, name, &err);
    if (st != IOT_OK)
        goto out;
    st = revoke_lookup(ctx, kind, name, &rec, &listed, &err);
    if (st != IOT_OK)
        goto out;
    char until[32];
    cli_format_time(rec.not_after, until, sizeof(until));
    printf("%s %s: would be revoked (dry run: nothing was changed)\n", iot_cert_kind_name(kind),
           name);
    printf("  serial       %s\n", rec.serial);
    printf("  sha256       %s\n", rec.fingerprint);
    printf("  expires      %s\n", until);
    printf("  reason       %s\n", reason);
    printf("  CRL          %s/crl.pem would be regenerated listing %zu certificates\n", ctx->dir,
           listed + 1);
out:
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

int revoke_identity(cli_ctx *ctx, iot_cert_kind kind, const char *name, const char *reason,
                    bool dry_run)
{
    if (dry_run)
        return revoke_dry_run(ctx, kind, name, reason);
    iot_err err = {0};
    pki_ca ca = {0};
    iot_registry *reg = NULL;
    uint64_t number = 0;
    const char *what = kind == IOT_KIND_DEVICE ? "device ID" : "certificate name";
    iot_status st = iot_id_check(what, name, &err);
    if (st != IOT_OK)
        goto out;
    st = open_pki(ctx, &ca, &reg, &err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_begin(reg, &err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_revoke(reg, kind, name, reason, (int64_t)ctx->now, &err);
    if (st != IOT_OK)
        goto out;
    st = crl_regenerate(ctx, &ca, reg, CLI_DEFAULT_CRL_DAYS, &number, &err);
    if (st != IOT_OK)
        goto out;
    st = iot_registry_commit(reg, &err);
    if (st != IOT_OK)
        goto out;
    printf("%s %s: revoked; %s/crl.pem regenerated (CRL number %llu)\n", iot_cert_kind_name(kind),
           name, ctx->dir, (unsigned long long)number);
out:
    if (st != IOT_OK && reg != NULL)
        iot_registry_rollback(reg);
    iot_registry_close(reg);
    pki_ca_free(&ca);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
