/* Certificate authority operations on OpenSSL 3's libcrypto: key
 * generation, certificate issuance from a fixed set of profiles, CSR
 * checks and CRL generation. Nothing here touches the registry's rules or
 * prints; callers decide what is allowed and what to say.
 */
#ifndef IOT_PKI_H
#define IOT_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "iot/registry.h"
#include "iot/status.h"

#define PKI_ORGANIZATION "IoT Telemetry" /* O= of every certificate */
#define PKI_MAX_SANS     16
#define PKI_CSR_MAX      (64 * 1024) /* a CSR is a few hundred bytes; cap hostile input */
#define PKI_PEM_MAX      (256 * 1024)

typedef enum pki_profile_type {
    PKI_PROFILE_CA,           /* self-signed root: keyCertSign, cRLSign, pathlen 1 */
    PKI_PROFILE_INTERMEDIATE, /* issuing CA signed by the root: keyCertSign, cRLSign, pathlen 0 */
    PKI_PROFILE_SERVER,       /* TLS server: serverAuth, DNS and IP SANs */
    PKI_PROFILE_CLIENT,       /* TLS client (devices, gateway, operators): clientAuth */
} pki_profile_type;

typedef struct pki_profile {
    pki_profile_type type;
    const char *common_name;
    const char *organization;
    const char *unit; /* OU: the role, e.g. "device", "gateway", "consumer" */
    time_t not_before;
    time_t not_after;
    const char *dns[PKI_MAX_SANS];
    size_t n_dns;
    const char *ips[PKI_MAX_SANS];
    size_t n_ips;
    bool also_client; /* PKI_PROFILE_SERVER: clientAuth next to serverAuth (etcd members) */
} pki_profile;

typedef struct pki_ca {
    EVP_PKEY *key;
    X509 *cert;
} pki_ca;

/* Facts about an issued certificate, in the form the registry stores. */
typedef struct pki_cert_facts {
    char serial[IOT_SERIAL_HEX_MAX + 1];
    char fingerprint[IOT_FPR_HEX_LEN + 1];
    int64_t not_before;
    int64_t not_after;
} pki_cert_facts;

/* Loads ca.key and ca.crt, refusing a key that group/others can read or a
 * key that does not match the certificate. */
iot_status pki_ca_load(const char *key_path, const char *cert_path, pki_ca *ca, iot_err *err);
void pki_ca_free(pki_ca *ca);

/* New ECDSA P-256 key. */
iot_status pki_key_generate(EVP_PKEY **out, iot_err *err);

/* Issues a certificate for subject_key. ca == NULL means self-signed (the
 * subject key signs), which only PKI_PROFILE_CA may use. */
iot_status pki_issue(const pki_ca *ca, EVP_PKEY *subject_key, const pki_profile *profile,
                     X509 **out, iot_err *err);

/* PEM encodings into malloc'd buffers; the caller frees *pem (and should
 * wipe a private key's buffer with OPENSSL_cleanse before freeing). */
iot_status pki_key_pem(EVP_PKEY *key, char **pem, size_t *len, iot_err *err);
iot_status pki_cert_pem(X509 *cert, char **pem, size_t *len, iot_err *err);
iot_status pki_crl_pem(X509_CRL *crl, char **pem, size_t *len, iot_err *err);

iot_status pki_cert_facts_get(X509 *cert, pki_cert_facts *facts, iot_err *err);

/* SHA-256 of the key's SubjectPublicKeyInfo (DER), lower-case hex: what
 * the registry records to keep one key to one identity. The same as
 * `openssl pkey -pubin -outform DER | sha256sum`. */
iot_status pki_key_fingerprint(EVP_PKEY *key, char out[IOT_FPR_HEX_LEN + 1], iot_err *err);

/* Reads a PEM certificate file (at most PKI_PEM_MAX bytes); caller frees. */
iot_status pki_cert_load(const char *path, X509 **out, iot_err *err);

/* The certificate's subject as RFC 2253 text ("CN=x,OU=y,O=z"), the form
 * Mosquitto's use_subject_as_username gives the broker's ACL. */
iot_status pki_subject_text(X509 *cert, char *buf, size_t size, iot_err *err);

/* Checks a PEM or DER CSR of len bytes (at most PKI_CSR_MAX): verifies its
 * self-signature, requires an ECDSA P-256 key and a subject whose only CN
 * equals expected_cn. Returns the CSR's public key (caller frees). source
 * names the input in error messages (the file's path). */
iot_status pki_csr_parse(const void *buf, size_t len, const char *source, const char *expected_cn,
                         EVP_PKEY **pubkey, iot_err *err);

/* Reads a CSR from path (at most PKI_CSR_MAX bytes) and checks it as
 * pki_csr_parse does. */
iot_status pki_csr_load(const char *path, const char *expected_cn, EVP_PKEY **pubkey, iot_err *err);

/* Builds and signs a v2 CRL listing every revoked or replaced record of the
 * registry that the root signed (issuer ""), revoked intermediates
 * included; certificates an intermediate signed are not listed. */
iot_status pki_crl_build(const pki_ca *ca, iot_registry *reg, uint64_t number, time_t now,
                         int valid_days, X509_CRL **out, iot_err *err);

/* Maps a reason name ("key-compromise", ...) to its RFC 5280 code; -1 if
 * unknown. pki_reason_names lists the accepted names for help text. */
int pki_reason_code(const char *name);
extern const char *const pki_reason_names;

#endif
