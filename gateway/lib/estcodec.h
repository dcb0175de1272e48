/* The wire forms of enrollment (EST, RFC 7030), on memory only: the
 * base64 bodies, the certs-only PKCS#7 answer, the request's Content-Type
 * and its HTTP Basic credentials. est.c does the rest (who may enroll, the
 * registry, the signing). */
#ifndef GW_ESTCODEC_H
#define GW_ESTCODEC_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/x509.h>

#include "iot/identity.h"

#define GW_EST_PREFIX         "/.well-known/est/"
#define GW_EST_CACERTS        GW_EST_PREFIX "cacerts"
#define GW_EST_SIMPLEENROLL   GW_EST_PREFIX "simpleenroll"
#define GW_EST_SIMPLEREENROLL GW_EST_PREFIX "simplereenroll"
#define GW_EST_BODY_MAX       (8 * 1024)                /* bytes of a request body: a base64 CSR */
#define GW_EST_CSR_MAX        (GW_EST_BODY_MAX / 4 * 3) /* bytes of the DER it can hold */
#define GW_EST_USER_MAX       IOT_ID_MAX                /* a Basic user name: a device ID */
#define GW_EST_PASSWORD_MAX   64                        /* a token is 43 characters */

/* Decodes base64 (RFC 4648 alphabet, '=' padding) with line breaks and
 * other white space allowed anywhere, as RFC 7030 bodies come. Returns 0
 * with *out_len bytes in out; -1 if it is not base64 (a byte outside the
 * alphabet, bad padding, data after it, nothing at all); -2 if the result
 * would be over cap. */
int gw_est_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                         size_t *out_len);

/* Encodes in base64 lines of 64 characters, each ended by CRLF. Returns the
 * length written (NUL-terminated), or 0 if it does not fit in cap. */
size_t gw_est_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap);

/* The bytes gw_est_base64_encode needs for len bytes, NUL included. */
size_t gw_est_base64_size(size_t len);

/* Whether a Content-Type is application/pkcs10 (any case; parameters
 * allowed). */
bool gw_est_is_pkcs10(const char *content_type);

/* Parses "Basic base64(user:password)". Returns false for another scheme,
 * bad base64, no colon, an empty part, a control byte, or a part longer
 * than its buffer. */
bool gw_est_basic_parse(const char *authorization, char user[GW_EST_USER_MAX + 1],
                        char password[GW_EST_PASSWORD_MAX + 1]);

/* A certs-only PKCS#7 (a SignedData without signers or content) holding
 * the n certificates in order, as DER in *der (OPENSSL_free it). Returns
 * false when out of memory. */
bool gw_est_certs_only(X509 *const *certs, size_t n, unsigned char **der, size_t *der_len);

#endif
