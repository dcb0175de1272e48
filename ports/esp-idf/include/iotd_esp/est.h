/* The EST transport of the credential port (iotd/cred_port.h: est_request
 * and probe) on esp_http_client, for the slots of iotd_esp/cred.h.
 *
 * Each request is one esp_http_client of its own, created, used and
 * cleaned up inside the call (TLS sessions are not shared with the
 * telemetry client, whose identity may be the one being replaced). Only
 * the gateway CA is trusted. The client identity per request:
 *   cacerts          none
 *   token enrollment none; Authorization: Basic DEVICE-ID:TOKEN
 *   bootstrap        the bootstrap certificate and key (PEM, from the
 *                    application)
 *   reenroll         the active slot's key and chain
 *   probe            the candidate slot's key and chain
 * The slots hold DER; the key and chain are armoured as PEM into buffers
 * inside iotd_esp_est (esp_http_client takes PEM), and the key's copy is
 * wiped after the request. Answers are read up to the caller's cap,
 * Retry-After is parsed as https.c does. No allocation of ours beyond
 * esp_http_client's own.
 */
#ifndef IOTD_ESP_EST_H
#define IOTD_ESP_EST_H

#include <stdbool.h>
#include <stddef.h>

#include "iotd/cred_port.h"
#include "iotd_esp/cred.h"
#include "iotd_esp/port.h"

typedef struct iotd_esp_est_config {
    const char *gateway_url;        /* "https://host[:port]", as iotd_esp_config */
    const char *ca_pem;             /* the project CA the gateway's certificate chains to */
    const char *device_id;          /* the user of the token's Basic authorization */
    const char *token;              /* one-time enrollment token; NULL: none */
    const char *bootstrap_cert_pem; /* factory bootstrap certificate; NULL: none */
    const char *bootstrap_key_pem;  /* and its key */
    int timeout_ms;                 /* bound on each network operation */
} iotd_esp_est_config;

/* The transport's state. Fields are private. */
typedef struct iotd_esp_est {
    iotd_esp_est_config cfg;
    iotd_esp_cred *cred;
    char url[IOTD_ESP_URL_MAX];
    char cert_pem[3200]; /* IOTD_ESP_PEM_CHAIN_MAX */
    char key_pem[320];   /* IOTD_ESP_PEM_KEY_MAX */
    char auth[280];      /* IOTD_ESP_AUTH_MAX */
    bool has_retry_after;
    bool retry_after_bad;
    char retry_after[IOTD_ESP_RETRY_AFTER_MAX];
} iotd_esp_est;

/* Fills port->est_request and port->probe of a port made by
 * iotd_esp_cred_port(cred, port) with this transport (cred->transport
 * then points to est). The configuration's
 * strings and cred outlive est. IOTD_EINVAL for a URL that is not https or
 * too long, no CA, or a bootstrap certificate without its key. */
iotd_status iotd_esp_est_init(iotd_esp_est *est, const iotd_esp_est_config *cfg,
                              iotd_esp_cred *cred, iotd_cred_port *port);

/* Forgets the token (after a first enrollment that used it): later token
 * requests answer IOTD_ENOENT. */
void iotd_esp_est_forget_token(iotd_esp_est *est);

#endif
