/* TLS for the device listener, behind a narrow interface: the rest of the
 * gateway asks for a context and, per connection, for the device identity.
 *
 * Policy: TLS 1.3, or TLS 1.2 with ECDHE + AEAD suites only; no
 * renegotiation, no compression; a client certificate is required (optional
 * with enrollment on) and must chain to the client CA, directly or through
 * the issuing intermediate; the admission snapshot (admission.h) then decides
 * whether the certificate belongs to an active device. Every refusal is
 * logged as `tls.refused` with the peer and the reason, and counted.
 */
#ifndef GW_TLS_H
#define GW_TLS_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "admission.h"
#include "iot/status.h"

typedef struct gw_tls_options {
    const char *cert_path;
    const char *key_path;
    const char *client_ca_path;
    bool require_client_cert;
    int max_connections_per_device; /* 0: no cap */
    int64_t session_lifetime_s;     /* session tickets (tls_tickets.h); 0: none */
    /* Enrollment (est.h): with it on, a client certificate is optional
     * (the endpoints decide), the issuing intermediate joins the store so
     * that root -> intermediate -> device chains verify, and a certificate
     * the bootstrap CA signed verifies and is marked (gw_conn.bootstrap)
     * instead of being judged as a device's. */
    bool enrollment;
    X509 *est_issuer;   /* borrowed; NULL without enrollment */
    X509 *bootstrap_ca; /* borrowed; NULL: no bootstrap certificates */
    /* Borrowed: every active intermediate the registry keeps, earlier ones
     * included, so that their devices verify after a rotation; may be NULL. */
    STACK_OF(X509) * est_issuers;
} gw_tls_options;

/* Largest certificate chain a device may send (SSL_CTX_set_max_cert_list):
 * a device sends one P-256 certificate of under 1 KiB, and OpenSSL's
 * default of 100 KiB would let any client make every handshake buffer that
 * much before anything is verified. */
#define GW_TLS_MAX_CERT_LIST (8 * 1024)

iot_status gw_tls_server_ctx(const gw_tls_options *opt, gw_admission *identity, SSL_CTX **out,
                             iot_err *err);

typedef struct gw_conn gw_conn;

/* A new connection's SSL, pointing to its connection. */
SSL *gw_tls_new_connection(SSL_CTX *ctx, gw_conn *conn);

/* After the handshake: checks the peer certificate against the current
 * admission snapshot (a revocation after the handshake is seen here) and
 * copies the device ID. The verdict is kept with the connection for as
 * long as the snapshot it was made in is current. */
gw_admission_verdict gw_tls_peer_device(gw_conn *conn, gw_admission *identity,
                                        char device_id[IOT_ID_MAX + 1]);

#endif
