/* The transactions every identity goes through: issuance (key or CSR,
 * certificate, registry row, files), renewal under the same name (the same,
 * plus the replaced certificate into the CRL) and revocation (registry row,
 * CRL). Each is all-or-nothing: on failure the registry is rolled back, the
 * files this call created are removed and the files it moved aside are put
 * back. */
#ifndef IOTCTL_ISSUE_H
#define IOTCTL_ISSUE_H

#include "cli.h"
#include "iot/pki.h"

typedef struct issue_request {
    iot_cert_kind kind;
    const char *name;     /* CN and registry name, validated here */
    const char *role;     /* OU; also stored as the client role */
    pki_profile profile;  /* type, validity and SANs set by the caller */
    const char *csr_path; /* sign this CSR instead of generating a key */
    const char *out_dir;  /* NULL: DIR/<kind>s/<name> */
    bool renew;           /* replace the active certificate of an existing name */
    const char *class_id; /* a device's class; NULL or "": none */
} issue_request;

int issue_identity(cli_ctx *ctx, issue_request *req);
/* With dry_run, checks everything a revocation checks (the PKI directory,
 * the CA, the record), prints what would be revoked and changes nothing:
 * the registry is opened read-only and no file is written. */
int revoke_identity(cli_ctx *ctx, iot_cert_kind kind, const char *name, const char *reason,
                    bool dry_run);

/* Loads the CA and opens the registry for writing, with messages that say
 * what to run when the PKI does not exist yet. */
iot_status open_pki(const cli_ctx *ctx, pki_ca *ca, iot_registry **reg, iot_err *err);

/* Builds the next CRL and atomically replaces DIR/crl.pem. Runs inside the
 * caller's registry transaction. */
iot_status crl_regenerate(const cli_ctx *ctx, const pki_ca *ca, iot_registry *reg, int days,
                          uint64_t *number, iot_err *err);

#endif
