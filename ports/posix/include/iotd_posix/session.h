/* The TLS session a device resumes after sleeping, so that a wake-up costs
 * no public-key operation: kept in memory from one connection to the next
 * and, with a file, from one run to the next (the simulator's deep sleep;
 * the ESP32 keeps it in RTC memory).
 *
 * The file is the device core's session record (iotd/tls_session.h, the
 * ESP32 firmware's too): mbedTLS's serialized session
 * (mbedtls_ssl_session_save) with a CRC-32 and a SHA-256 over the
 * device's certificate and the CAs and CRL the gateway's certificate is
 * checked against. A resumption checks no
 * certificate, so a session made under another certificate (a renewal),
 * CA or CRL (which may revoke the gateway's certificate), or a damaged
 * file, is not offered: the device makes a full handshake and keeps the
 * new session. The session
 * includes its master secret, so the file is created 0600, like a key. The
 * gateway decides whether a session resumes; this module only offers it
 * and tells afterwards whether it did. */
#ifndef IOTD_POSIX_SESSION_H
#define IOTD_POSIX_SESSION_H

#include <limits.h>
#include <stdbool.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#define IOTD_POSIX_SESSION_MAX 4096 /* serialized session with its ticket */

typedef struct iotd_posix_session {
    mbedtls_ssl_session kept;
    bool have;                   /* `kept` may be offered */
    unsigned char cert_hash[32]; /* binding: the certificate, CAs and CRL it is valid with */
    bool bound;                  /* a certificate is presented: sessions are kept */
    char path[PATH_MAX];         /* "" : memory only */
} iotd_posix_session;

/* Prepares the store for the device's certificate `own` (NULL: no client
 * certificate, nothing is kept), checking the gateway against `ca` and
 * `crl` (may be NULL), and loads `path` when it holds a session made with
 * the same three. path may be NULL (memory only). */
void iotd_posix_session_init(iotd_posix_session *ss, const char *path, const mbedtls_x509_crt *own,
                             const mbedtls_x509_crt *ca, const mbedtls_x509_crl *crl);

/* Offers the kept session on a connection about to shake hands. */
void iotd_posix_session_offer(iotd_posix_session *ss, mbedtls_ssl_context *ssl);

/* After a completed handshake: keeps the connection's session (in the file
 * too) and returns whether the handshake resumed the one offered. */
bool iotd_posix_session_keep(iotd_posix_session *ss, const mbedtls_ssl_context *ssl);

/* After a failed handshake: forgets the session, in the file too, so that
 * the next attempt is a full handshake. */
void iotd_posix_session_forget(iotd_posix_session *ss);

void iotd_posix_session_free(iotd_posix_session *ss);

#endif
