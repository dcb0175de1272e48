/* The TLS session a device keeps across deep sleep, as one self-checking
 * record: a resumed handshake checks no certificate, so a session may only
 * be offered under the credentials it was made with.
 *
 * The binding is a SHA-256 over what the session's trust rests on, in a
 * fixed order: the device's own certificate (a renewal starts anew), the
 * CAs the gateway's certificate was checked against and the CRL (a new CRL
 * may revoke the gateway's certificate, which only a full handshake
 * checks). Each part enters the hash as its kind, its length and its
 * bytes, so moving bytes from one part to another changes the binding. The
 * port supplies the hash (its TLS library has one).
 *
 * The record, all integers little-endian:
 *   magic "TLS1" (u32), session length (u32), binding (32 bytes),
 *   the serialized session (mbedtls_ssl_session_save), CRC-32 of all that.
 * The session holds its master secret: the caller keeps the record where
 * a key may be kept and wipes buffers that held one.
 *
 * C99, allocates nothing, keeps no state: every buffer is the caller's.
 */
#ifndef IOTD_TLS_SESSION_H
#define IOTD_TLS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "iotd/status.h"

#define IOTD_TLS_BINDING_LEN  32
#define IOTD_TLS_RECORD_MAGIC 0x31534c54u /* "TLS1" */
/* Magic, length, binding before the session; CRC-32 after it. */
#define IOTD_TLS_RECORD_HEAD     (4u + 4u + IOTD_TLS_BINDING_LEN)
#define IOTD_TLS_RECORD_OVERHEAD (IOTD_TLS_RECORD_HEAD + 4u)

/* A streaming SHA-256 from the port. Each returns IOTD_OK, or IOTD_EIO when
 * the service failed (the digest is then not used). */
typedef struct iotd_sha256_ops {
    void *ctx;
    iotd_status (*begin)(void *ctx);
    iotd_status (*update)(void *ctx, const void *data, size_t len);
    iotd_status (*finish)(void *ctx, uint8_t out[IOTD_TLS_BINDING_LEN]);
} iotd_sha256_ops;

/* What a part of the binding is. Values are part of the hash: never
 * renumbered. */
typedef enum iotd_tls_part {
    IOTD_TLS_PART_OWN_CERT = 1, /* a certificate of the device's chain */
    IOTD_TLS_PART_CA = 2,       /* a CA the gateway's certificate is checked against */
    IOTD_TLS_PART_CRL = 3,      /* a CRL it is checked against */
} iotd_tls_part;

/* A binding being computed: begin, add each part, finish. The first error
 * sticks and is what finish returns. */
typedef struct iotd_tls_binder {
    const iotd_sha256_ops *hash;
    iotd_status st;
} iotd_tls_binder;

void iotd_tls_bind_begin(iotd_tls_binder *b, const iotd_sha256_ops *hash);

/* Adds one part. len above UINT32_MAX is IOTD_EINVAL (sticky). */
void iotd_tls_bind_add(iotd_tls_binder *b, iotd_tls_part kind, const void *data, size_t len);

/* The binding into out; on any error out is zeroed, which matches no
 * record written with a real binding only by chance of 2^-256. */
iotd_status iotd_tls_bind_finish(iotd_tls_binder *b, uint8_t out[IOTD_TLS_BINDING_LEN]);

/* Size of the record for a session of session_len bytes (0 when it would
 * pass UINT32_MAX). */
size_t iotd_tls_record_size(size_t session_len);

/* Writes the record of session[0..session_len) under binding into
 * out[0..cap). The session may already be in place at out +
 * IOTD_TLS_RECORD_HEAD (serialized there, so no second buffer). IOTD_OK and *out_len; IOTD_ENOSPC
 * when it does not fit (nothing written that could be taken for a record: out is zeroed up to the
 * header); IOTD_EINVAL for a NULL pointer. */
iotd_status iotd_tls_record_pack(const uint8_t binding[IOTD_TLS_BINDING_LEN],
                                 const uint8_t *session, size_t session_len, uint8_t *out,
                                 size_t cap, size_t *out_len);

/* Checks the record in rec[0..rec_len) (rec_len may exceed the record: a
 * fixed-size slot) and finds its session. IOTD_OK: *session and
 * *session_len point into rec. IOTD_ENOENT: no record (all zero, as a slot
 * never written or erased). IOTD_ECORRUPT: damaged (magic, a length past
 * the slot or max_session, CRC). IOTD_ESTATE: intact but made under
 * another binding (renewal, new CA or CRL): not to be offered. */
iotd_status iotd_tls_record_open(const uint8_t *rec, size_t rec_len,
                                 const uint8_t binding[IOTD_TLS_BINDING_LEN], size_t max_session,
                                 const uint8_t **session, size_t *session_len);

#endif
