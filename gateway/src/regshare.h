/* Enrollment shared by the gateways behind one balancer (docs/cluster.md,
 * Shared state on etcd): a device enrolled, renewed or revoked at one
 * gateway is admitted, renewed or refused at every gateway.
 *
 * Each gateway keeps its own registry. A gateway that issues a device
 * certificate writes it to the shared state (shared.h) as
 * /iot/certs/<serial> before the device gets its 200, so no device holds
 * a certificate the others cannot learn; a revocation made in a gateway's
 * registry (iotctl device revoke on that gateway's host) is written as
 * /iot/revoked/<serial> by that gateway's thread, and so are the tokens
 * made or revoked there (/iot/tokens-made/, /iot/tokens-revoked/), the
 * requests waiting there for an operator and the decisions on them
 * (/iot/enroll/<device>/<state>). Every gateway's thread
 * reads both and takes into its own registry what others wrote: a
 * certificate only when it verifies against this gateway's own issuing
 * CAs and is a device certificate for the name it claims
 * (iot_enroll_import_cert), so a writer of the shared state cannot make
 * a gateway admit anything its own trust would refuse. What is taken is
 * put in force at once (gw_admission), as enrollment does.
 *
 * The thread has its own registry handle and etcd connection. */
#ifndef GW_REGSHARE_H
#define GW_REGSHARE_H

#include <openssl/x509.h>

#include "iot/registry.h"
#include "iot/status.h"

struct gw_shared;
struct gw_admission;
typedef struct gw_regshare gw_regshare;

typedef struct gw_regshare_options {
    const char *registry;          /* the registry file */
    struct gw_shared *shared;      /* borrowed; the thread's own connection */
    struct gw_admission *identity; /* borrowed: what is taken is put in force */
    STACK_OF(X509) * issuers;      /* borrowed: the issuing CAs a certificate must verify with */
    const char *gateway;           /* this gateway's name in what it shares */
    int poll_ms;
} gw_regshare_options;

iot_status gw_regshare_start(const gw_regshare_options *o, gw_regshare **out, iot_err *err);

/* Stops the thread and frees. NULL is ignored. */
void gw_regshare_stop(gw_regshare *rs);

/* On the enrollment thread, before the device's 200: writes the
 * certificate with this serial that `reg` holds for `device` (its DER and,
 * for a renewal, the serial it replaced and that one's grace) to the
 * shared state on `shared`. Writing it again is harmless. IOT_EIO when
 * the shared state did not take it: the device is told to retry, and gets
 * the same certificate. */
iot_status gw_regshare_publish(struct gw_shared *shared, const char *gateway, iot_registry *reg,
                               const char *device, const char *serial, iot_err *err);

#endif
