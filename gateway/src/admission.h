/* Who may speak: a snapshot of the device registry and the CRL, checked on
 * every TLS handshake and every request.
 *
 * A device is admitted only if its certificate chains to the project CA
 * (OpenSSL checks that, and validity dates), its serial is in the registry
 * as an active *device* whose name equals the certificate CN and whose
 * fingerprint matches, and the serial is not in the CRL. The CRL's
 * issuer and signature are checked against the CA before it is used, and a
 * CRL older than the one in force (lower CRL Number or thisUpdate) is
 * refused.
 *
 * The snapshot is immutable and reference counted: a reload (SIGHUP or a
 * changed file) builds a new one and swaps it in; checks in progress keep
 * the one they started with. A registry that cannot be read keeps the
 * previous snapshot; a CRL that cannot be used does not: the registry's
 * revocations are applied with the CRL in force kept (iotgw_crl_stale 1).
 */
#ifndef GW_ADMISSION_H
#define GW_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "iot/identity.h"
#include "iot/registry.h"
#include "iot/status.h"
#include "refusal.h"

typedef struct gw_admission gw_admission;

typedef enum gw_admission_verdict {
    GW_ADMISSION_OK,
    GW_ADMISSION_UNKNOWN,        /* serial not in the registry */
    GW_ADMISSION_REVOKED,        /* revoked in the registry or listed in the CRL */
    GW_ADMISSION_NOT_DEVICE,     /* a server or client certificate, not a device */
    GW_ADMISSION_MISMATCH,       /* CN or fingerprint differ from the registry record */
    GW_ADMISSION_ISSUER_REVOKED, /* signed by an intermediate that is revoked or unknown */
} gw_admission_verdict;

/* What an admitted certificate's entry says besides the device ID. */
typedef struct gw_admission_facts {
    char serial[IOT_SERIAL_HEX_MAX + 1];
    bool in_grace;   /* a certificate replaced by a renewal, still in its grace */
    bool ends_grace; /* the renewed certificate: its first use ends its predecessor's grace */
} gw_admission_facts;

typedef struct gw_admission_options {
    const char *registry_path; /* registry.db from iotctl (registry) */
    const char *crl_path;      /* the CRL from iotctl (crl_file) */
    const char *ca_path;       /* the CA that issues device certificates and the CRL (client_ca) */
    int64_t cert_expiry_warning_s; /* iotgw_devices_cert_expiring; 0: not counted */
} gw_admission_options;

/* Loads the first snapshot; the paths are copied. An unusable registry or
 * CRL fails the call: there is nothing in force to fall back on yet. */
iot_status gw_admission_open(const gw_admission_options *opt, gw_admission **out, iot_err *err);
void gw_admission_close(gw_admission *id);

/* Rebuilds the snapshot from the files; keeps the old one if the registry
 * cannot be read. An unusable CRL file is logged (identity.crl_rejected)
 * and counted, and the CRL in force stays; it fails the call only when
 * there is none yet (at open). */
iot_status gw_admission_reload(gw_admission *id, iot_err *err);

/* Reloads if either file changed since the last load (mtime, size, inode).
 * Returns IOT_OK when nothing changed. */
iot_status gw_admission_reload_if_changed(gw_admission *id, bool *reloaded, iot_err *err);

/* Checks a peer certificate; on GW_ADMISSION_OK copies the device ID into
 * device_id. Thread-safe. */
gw_admission_verdict gw_admission_check(gw_admission *id, X509 *cert,
                                        char device_id[IOT_ID_MAX + 1]);

/* gw_admission_check, with the entry's facts (facts may be NULL). */
gw_admission_verdict gw_admission_check_facts(gw_admission *id, X509 *cert,
                                              char device_id[IOT_ID_MAX + 1],
                                              gw_admission_facts *facts);

/* Enrollment writes the registry itself and puts what it wrote in force at
 * once, without waiting for the next reload (which reads the same state
 * from the file): add_issued admits a certificate just issued (a renewal's
 * predecessor goes into grace, or out with grace false); end_grace ends the
 * grace of the replaced certificates of device `name`. */
iot_status gw_admission_add_issued(gw_admission *id, const iot_cert_record *rec, bool grace,
                                   iot_err *err);
iot_status gw_admission_end_grace(gw_admission *id, const char *name, iot_err *err);

/* Checks a device by name alone. Only for development mode, where a
 * device without a certificate names itself in a header. */
gw_admission_verdict gw_admission_check_name(gw_admission *id, const char *name);

/* Changes whenever a reload installs a new snapshot, and only then: a
 * verdict on a certificate holds while the generation it was computed in
 * is current. */
uint64_t gw_admission_generation(gw_admission *id);

/* The CRL in force, with a reference the caller frees (X509_CRL_free);
 * NULL if none. */
X509_CRL *gw_admission_crl(gw_admission *id);

const char *gw_admission_verdict_name(gw_admission_verdict v);
/* The refusal (refusal.h) a verdict other than GW_ADMISSION_OK stands for. */
gw_refusal gw_admission_verdict_refusal(gw_admission_verdict v);

#endif
