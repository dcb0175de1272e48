/* The credential port (iotd/cred_port.h) for Linux: the two slots as files
 * in the device's state directory, each one PEM file holding the private
 * key first and then the certificates (the device's, then its CAs):
 *
 *   device.pem     the active slot; the HTTPS client's cert_file and key_file
 *   candidate.pem  the candidate: a key, and once issued its certificates
 *   cacerts.pem    the CA certificates of the last cacerts answer
 *
 * Key and certificate in one file make the switch one rename(2): after a
 * power cut the active slot is the old pair or the new one. The key files
 * are written 0600 with an atomic replace (write, fsync, rename).
 *
 * Every EST request and probe opens its own TLS session with the identity
 * the request needs (none with Basic authentication for a token, the
 * bootstrap certificate, the active or the candidate slot) and closes it.
 */
#ifndef IOTD_POSIX_CRED_H
#define IOTD_POSIX_CRED_H

#include <stdint.h>

#include "iotd/cred_port.h"

#define IOTD_POSIX_CRED_PATH_MAX 512

typedef struct iotd_posix_cred_config {
    const char *device_id;      /* CN of the requests; user of Basic authentication */
    const char *state_dir;      /* the device's directory (must exist) */
    const char *url;            /* the gateway, https://HOST[:PORT] */
    const char *ca_file;        /* PEM: the CA the gateway's certificate chains to */
    const char *crl_file;       /* or NULL */
    const char *token;          /* enrollment token, or NULL */
    const char *bootstrap_cert; /* PEM bootstrap certificate, or NULL */
    const char *bootstrap_key;  /* its key */
    uint32_t connect_timeout_ms;
    uint32_t request_timeout_ms;
} iotd_posix_cred_config;

typedef struct iotd_posix_cred {
    iotd_posix_cred_config cfg; /* the strings are not copied: they outlive this */
    char active[IOTD_POSIX_CRED_PATH_MAX];
    char candidate[IOTD_POSIX_CRED_PATH_MAX];
    char cacerts[IOTD_POSIX_CRED_PATH_MAX];
} iotd_posix_cred;

/* -1 when a path does not fit. */
int iotd_posix_cred_init(iotd_posix_cred *c, const iotd_posix_cred_config *cfg);

void iotd_posix_cred_port(iotd_posix_cred *c, iotd_cred_port *out);

#endif
