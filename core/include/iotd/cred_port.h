/* The port contract for the device's credentials: its private keys, its
 * certificates in two slots, and the enrollment requests (EST, RFC 7030)
 * that fill them.
 *
 * A struct of its own beside iotd_port, so a platform that is provisioned
 * at the factory fills nothing new. Used by the enrollment state machine
 * (iotd/enroll.h), which decides when to ask for what; the port does the
 * cryptography (mbedTLS) and the storage (files, NVS).
 *
 * Two slots:
 *   active     the key and certificate every mutual-TLS request uses
 *              (iotd_port.https_post, the firmware downloads)
 *   candidate  a new key, and once the gateway answered, its certificate:
 *              used only by `probe` until `commit` makes it the active one.
 * A candidate key outlives a reset: after a lost answer the device asks
 * again with the same key, which the gateway answers with the certificate
 * it already issued. Power lost during any function leaves both slots as
 * they were before the call or as the call leaves them, never a mixture
 * (the port writes a new file or NVS blob and then switches to it).
 *
 * The same rules as iotd_port: every function is called from the core's
 * thread, never re-entrantly; the port and everything it points to outlive
 * the iotd_enroll that uses it. All function pointers are required.
 */
#ifndef IOTD_CRED_PORT_H
#define IOTD_CRED_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"
#include "iotd/status.h"

typedef enum iotd_cred_slot {
    IOTD_CRED_ACTIVE = 0,
    IOTD_CRED_CANDIDATE,
} iotd_cred_slot;

/* A slot's certificate validity, in Unix seconds. */
typedef struct iotd_cert_info {
    int64_t not_before;
    int64_t not_after;
} iotd_cert_info;

/* The EST requests, each on the gateway's device TLS listener. */
typedef enum iotd_est_op {
    IOTD_EST_CACERTS = 0,      /* GET /.well-known/est/cacerts, no client certificate */
    IOTD_EST_ENROLL_TOKEN,     /* POST simpleenroll, Authorization: Basic DEVICE-ID:TOKEN,
                                * no client certificate */
    IOTD_EST_ENROLL_BOOTSTRAP, /* POST simpleenroll with the bootstrap (factory) certificate */
    IOTD_EST_REENROLL,         /* POST simplereenroll with the active certificate */
} iotd_est_op;

#define IOTD_EST_CACERTS_PATH  "/.well-known/est/cacerts"
#define IOTD_EST_ENROLL_PATH   "/.well-known/est/simpleenroll"
#define IOTD_EST_REENROLL_PATH "/.well-known/est/simplereenroll"
#define IOTD_EST_CSR_TYPE      "application/pkcs10"
/* The request a probe makes: admitted only for a valid device certificate,
 * answered 200 or 204, and it changes nothing on the gateway. */
#define IOTD_EST_PROBE_PATH "/v1/firmware/manifest"

typedef struct iotd_cred_port {
    void *ctx; /* passed as the first argument of every function below */

    /* ---- keys ----------------------------------------------------------- */

    /* Makes a new P-256 key pair in the candidate slot, replacing the
     * candidate key and certificate there (never the active ones), and keeps
     * it across resets. IOTD_OK; IOTD_EIO when the RNG or the storage failed
     * (the candidate slot then holds no key). */
    iotd_status (*key_generate)(void *ctx);

    /* Writes a PKCS#10 certificate request (DER) for the candidate key into
     * der (cap bytes) and its length into *len: subject CN = the device ID,
     * O = IoT Telemetry, OU = device, signed with the candidate key.
     * IOTD_ENOENT when the candidate slot has no key; IOTD_ENOSPC when cap
     * is too small; IOTD_EIO when signing failed. Changes nothing. */
    iotd_status (*csr_make)(void *ctx, uint8_t *der, size_t cap, size_t *len);

    /* ---- certificate slots ---------------------------------------------- */

    /* The validity of the slot's certificate. IOTD_ENOENT when the slot has
     * no certificate; IOTD_ECORRUPT when it cannot be parsed. Changes nothing. */
    iotd_status (*cert_info)(void *ctx, iotd_cred_slot slot, iotd_cert_info *info);

    /* Stores the answer of a simpleenroll or simplereenroll: a certs-only
     * PKCS#7 (DER, len bytes) whose first certificate is the device's, and
     * the issuing CA's certificates after it (kept as the chain the device
     * presents). IOTD_OK: the candidate slot holds the certificate.
     * IOTD_ECORRUPT when the PKCS#7 cannot be parsed, holds no certificate,
     * or the first one is not for the candidate key; IOTD_ENOENT when the
     * candidate slot has no key; IOTD_EIO on a storage failure. The active
     * slot is never touched. */
    iotd_status (*candidate_store)(void *ctx, const uint8_t *pkcs7, size_t len);

    /* Makes the candidate the active slot: afterwards every request uses the
     * new key and certificate, the old ones are gone and the candidate slot
     * is empty. Atomic across power loss. IOTD_ENOENT when the candidate
     * slot has no certificate; IOTD_EIO on a storage failure (nothing changed). */
    iotd_status (*commit)(void *ctx);

    /* Empties the candidate slot (key and certificate); the active slot
     * stays. IOTD_OK also when it was empty; IOTD_EIO on a storage failure. */
    iotd_status (*candidate_drop)(void *ctx);

    /* Stores the CA certificates of a cacerts answer (certs-only PKCS#7,
     * DER), which the port may use as the chain it presents or to check the
     * enrollment answers. IOTD_ECORRUPT when it cannot be parsed; IOTD_EIO
     * on a storage failure. */
    iotd_status (*cacerts_store)(void *ctx, const uint8_t *pkcs7, size_t len);

    /* ---- enrollment transport ------------------------------------------- */

    /* One EST request (op) over HTTPS to the gateway: for the POSTs, body is
     * the base64 CSR (body_len bytes, Content-Type IOTD_EST_CSR_TYPE); for
     * IOTD_EST_CACERTS it is NULL. The credentials are op's (see
     * iotd_est_op): the port holds the token or bootstrap certificate.
     * Returns like iotd_port.https_post: IOTD_OK when a response arrived,
     * whatever its status, with result filled (Retry-After included) and up
     * to resp_cap bytes of body in resp; IOTD_ENET when none arrived;
     * IOTD_ENOENT when the port has no credential for op (no token, no
     * bootstrap certificate). */
    iotd_status (*est_request)(void *ctx, iotd_est_op op, const char *body, size_t body_len,
                               char *resp, size_t resp_cap, iotd_http_result *result);

    /* One mutual-TLS request (GET IOTD_EST_PROBE_PATH) with the candidate's
     * key and certificate, to learn whether the gateway admits them. Returns
     * like est_request; the body is not kept. */
    iotd_status (*probe)(void *ctx, iotd_http_result *result);
} iotd_cred_port;

#endif
