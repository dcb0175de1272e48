/* HTTPS POST and GET to the gateway over mutual TLS with mbedTLS.
 *
 * The client verifies the gateway against the project CA and its host name
 * (and against a CRL when one is given: a revoked, or a CRL past its
 * nextUpdate, fails the handshake),
 * presents the device certificate, speaks TLS 1.2 or later with ECDHE and
 * AEAD suites only, and keeps the connection open between requests. A
 * request on a kept connection that the gateway had meanwhile closed is
 * sent again once on a new connection (safe: the gateway de-duplicates by
 * sequence number). Every wait is bounded: connect by connect_timeout_ms,
 * the handshake and the whole request/response exchange by
 * request_timeout_ms.
 *
 * Uses only mbedTLS API present in both 2.28 (Debian 12) and 3.x (ESP-IDF
 * 5), except where marked in https.c: parsing and checking the key, the
 * minimum protocol version, and reading a received alert's code.
 */
#ifndef IOTD_POSIX_HTTPS_H
#define IOTD_POSIX_HTTPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>

#include "iot/status.h"
#include "iotd_posix/session.h"
#include "iotd/port.h"
#include "iotd/update_port.h"

#define IOTD_POSIX_HOST_MAX 253
/* The longest "user:password" of Basic authentication. */
#define IOTD_POSIX_AUTH_MAX 160

/* Why the last request got no response. */
typedef enum iotd_posix_net_error {
    IOTD_POSIX_NET_NONE = 0,
    IOTD_POSIX_NET_RESOLVE,     /* the host name did not resolve */
    IOTD_POSIX_NET_CONNECT,     /* no TCP connection (refused, unreachable, timed out) */
    IOTD_POSIX_NET_TIMEOUT,     /* connected, but the gateway did not answer in time */
    IOTD_POSIX_NET_SERVER_CERT, /* the gateway's certificate did not verify */
    IOTD_POSIX_NET_REFUSED,     /* the gateway refused this device's certificate (alert) */
    IOTD_POSIX_NET_TLS,         /* another TLS failure */
    IOTD_POSIX_NET_IO,          /* the connection broke during the exchange */
    IOTD_POSIX_NET_HTTP,        /* the answer was not a valid HTTP response */
} iotd_posix_net_error;

typedef struct iotd_posix_https_config {
    const char *url;             /* https://HOST[:PORT], PORT 443 by default */
    const char *ca_file;         /* PEM: the CA the gateway's certificate must chain to */
    const char *crl_file;        /* PEM CRL of that CA, or NULL: no revocation check */
    const char *cert_file;       /* PEM: this device's certificate (and the CAs
                                  * between it and the root, sent along);
                                  * NULL: no client certificate (enrollment) */
    const char *key_file;        /* PEM: its private key; refused if group or others may read it */
    const char *device_id;       /* when set, the certificate's CN must be this */
    uint32_t connect_timeout_ms; /* 0: 5000 */
    uint32_t request_timeout_ms; /* 0: 10000 */
    const char *session_file;    /* the TLS session kept across runs (session.h);
                                  * NULL: kept in memory only */
} iotd_posix_https_config;

typedef struct iotd_posix_https_stats {
    uint32_t connects;  /* TLS sessions established */
    uint32_t resumed;   /* of them, by resuming the session kept */
    uint32_t reuses;    /* requests sent on a kept connection */
    uint32_t failures;  /* requests that got no response */
    uint32_t responses; /* requests that got one */
} iotd_posix_https_stats;

typedef struct iotd_posix_https {
    char host[IOTD_POSIX_HOST_MAX + 1];
    char port[6];
    char authority[IOTD_POSIX_HOST_MAX + 10]; /* host:port as people and Host: write it */
    uint32_t connect_timeout_ms;
    uint32_t request_timeout_ms;

    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_x509_crt ca;
    mbedtls_x509_crl crl;
    bool has_crl;
    mbedtls_x509_crt cert;
    mbedtls_pk_context key;
    bool has_cert;                              /* a client certificate is presented */
    char extra_header[IOTD_POSIX_AUTH_MAX * 2]; /* "" or "Authorization: ...\r\n" */
    mbedtls_ssl_config conf;
    iotd_posix_session session; /* resumed at the next connection */

    /* the connection, when open */
    mbedtls_ssl_context ssl;
    bool open;
    int fd;
    uint64_t deadline_ms; /* of the exchange in progress (CLOCK_MONOTONIC) */
    bool timed_out;
    bool handshaking;
    bool reset_in_handshake; /* a send failed: the gateway closed on us */

    iotd_posix_https_stats stats;
    iotd_posix_net_error last_error;
    int last_alert; /* TLS alert code the gateway sent, or -1 */
    char last_msg[256];
} iotd_posix_https;

/* Loads the CA, the CRL if any, the certificate and the key and prepares
 * the TLS settings.
 * Makes no connection. The error names the file at fault. */
iot_status iotd_posix_https_init(iotd_posix_https *c, const iotd_posix_https_config *cfg,
                                 iot_err *err);

/* Sends "Authorization: Basic base64(user:password)" with every request
 * from now on (EST enrollment with a token). IOT_EINVAL when too long or
 * not printable. */
iot_status iotd_posix_https_set_basic_auth(iotd_posix_https *c, const char *user,
                                           const char *password);

/* Closes the connection (with close_notify) and frees everything. */
void iotd_posix_https_free(iotd_posix_https *c);

/* The port contract's https_post (iotd/port.h). On IOTD_ENET, last_error
 * and last_msg say why. */
iotd_status iotd_posix_https_post(iotd_posix_https *c, const char *path, const char *content_type,
                                  const char *body, size_t body_len, char *resp, size_t resp_cap,
                                  iotd_http_result *result);

/* The update port contract's https_get (iotd/update_port.h): GET path,
 * with "Range: bytes=START-END" when range_len > 0. The same connection,
 * retry and timeout rules as a POST. On IOTD_ENET, last_error and
 * last_msg say why. */
iotd_status iotd_posix_https_get(iotd_posix_https *c, const char *path, uint32_t range_start,
                                 uint32_t range_len, void *buf, size_t cap,
                                 iotd_get_result *result);

/* Closes the kept connection, if any. */
void iotd_posix_https_close(iotd_posix_https *c);

/* Splits an https:// URL into host (IPv6 without brackets) and port.
 * IOT_EINVAL for another scheme, a path other than "/", user info, a
 * query or a fragment. */
iot_status iotd_posix_url_parse(const char *url, char *host, size_t host_cap, char *port,
                                size_t port_cap, iot_err *err);

/* The name of a TLS alert a server sends when it does not accept the
 * client's certificate ("certificate_revoked", ...), NULL for any other. */
const char *iotd_posix_tls_alert_name(int alert);

#endif
