/* The firmware manifest: one small signed document per release, and the
 * one verifier of it, linked by the device core, the gateway and iotctl
 * (docs/firmware.md). The field names follow SUIT (RFC 9019,
 * RFC 9124), so that a later CBOR/COSE form is a mapping of this one.
 *
 * C99, no allocation, no OS call, no stdio. The cryptography is not done
 * here: the caller hands in SHA-256 and ECDSA P-256 verification
 * (iotd_manifest_crypto), mbedTLS on the device, OpenSSL on the gateway
 * and in iotctl, so no crypto call sits inside these rules.
 *
 * The text form, version 1. Lines end in LF (no CR); each is
 * "name: value" with exactly one space after the colon; the names come in
 * this order, each once, and no other name is allowed:
 *
 *   manifest-version: 1
 *   sequence-number: 42                 1..2^63-1, decimal, no leading zero
 *   vendor-id: example-vendor           the device ID rule (iotd/protocol.h)
 *   class-id: esp32c3-sensor            the same rule
 *   version: 1.4.2                      1-32 of [A-Za-z0-9._+-]
 *   secure-version: 3                   0..4294967295, decimal, no leading zero
 *   image-size: 1048576                 1..4294967295, decimal, no leading zero
 *   image-digest: sha-256:<64 lower-case hex digits>
 *   image-uri: /v1/firmware/images/<name>   1-200 of [A-Za-z0-9._/-], starting with '/',
 *                                       no empty, "." or ".." segment
 *   not-after: 2027-06-01T00:00:00Z     optional; UTC, exactly this shape
 *   signing-key-id: <16 lower-case hex digits>
 *   signature: ecdsa-p256-sha256:<128 lower-case hex digits>
 *
 * The signature is ECDSA P-256 over SHA-256 of every byte before the
 * "signature: " line (the signed part ends with the LF of the
 * signing-key-id line), encoded as r || s, 32 bytes each, big-endian. The
 * document ends with the LF of the signature line; it is at most
 * IOTD_MANIFEST_MAX bytes. A signing key's ID is the first 8 bytes of
 * SHA-256 of its public key as an uncompressed point (65 bytes, 0x04 X Y).
 *
 * A manifest that breaks any of these rules is IOTD_MANIFEST_MALFORMED,
 * signed or not: the format has one spelling of each document.
 */
#ifndef IOTD_MANIFEST_H
#define IOTD_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/status.h"

#define IOTD_MANIFEST_MAX            1024 /* bytes of a whole manifest */
#define IOTD_MANIFEST_VERSION        1
#define IOTD_MANIFEST_ID_MAX         64 /* vendor-id, class-id */
#define IOTD_MANIFEST_FW_VERSION_MAX 32
#define IOTD_MANIFEST_URI_MAX        200
#define IOTD_MANIFEST_DIGEST_LEN     32
#define IOTD_MANIFEST_KEY_ID_LEN     8
#define IOTD_MANIFEST_PUBKEY_LEN     65 /* uncompressed P-256 point */
#define IOTD_MANIFEST_SIG_LEN        64 /* r || s */

typedef struct iotd_manifest {
    uint32_t manifest_version;
    uint64_t sequence;
    char vendor_id[IOTD_MANIFEST_ID_MAX + 1];
    char class_id[IOTD_MANIFEST_ID_MAX + 1];
    char version[IOTD_MANIFEST_FW_VERSION_MAX + 1];
    uint32_t secure_version;
    uint32_t image_size;
    uint8_t image_digest[IOTD_MANIFEST_DIGEST_LEN];
    char image_uri[IOTD_MANIFEST_URI_MAX + 1];
    bool has_not_after;
    int64_t not_after; /* Unix seconds */
    uint8_t key_id[IOTD_MANIFEST_KEY_ID_LEN];
    uint8_t signature[IOTD_MANIFEST_SIG_LEN];
    size_t signed_len; /* bytes of the text the signature covers */
} iotd_manifest;

/* What a verifier refuses, in the order it checks. Stable: the names are
 * what devices report and the gateway counts. */
typedef enum iotd_manifest_result {
    IOTD_MANIFEST_OK = 0,
    IOTD_MANIFEST_MALFORMED,     /* not a manifest of this format (any rule above) */
    IOTD_MANIFEST_UNSUPPORTED,   /* manifest-version other than IOTD_MANIFEST_VERSION */
    IOTD_MANIFEST_UNKNOWN_KEY,   /* signing-key-id is not a trusted key */
    IOTD_MANIFEST_BAD_SIGNATURE, /* the signature does not verify with that key */
    IOTD_MANIFEST_WRONG_VENDOR,  /* vendor-id is not the device's */
    IOTD_MANIFEST_WRONG_CLASS,   /* class-id is not the device's */
    IOTD_MANIFEST_OLD_SEQUENCE,  /* sequence-number not above the last one accepted */
    IOTD_MANIFEST_ROLLBACK,      /* secure-version below the device's */
    IOTD_MANIFEST_TOO_LARGE,     /* image-size larger than the slot */
    IOTD_MANIFEST_EXPIRED,       /* not-after is in the past */
    IOTD_MANIFEST_CRYPTO_ERROR,  /* the crypto service failed (not a verdict on the manifest) */
    IOTD_MANIFEST_RESULT_COUNT
} iotd_manifest_result;

/* "ok", "malformed", "unsupported", "unknown_key", "bad_signature",
 * "wrong_vendor", "wrong_class", "old_sequence", "rollback", "too_large",
 * "expired", "crypto_error"; "?" for a value outside the enum. */
const char *iotd_manifest_result_name(iotd_manifest_result r);

/* The two operations the verifier needs, from the platform. */
typedef struct iotd_manifest_crypto {
    void *ctx; /* passed back to both */
    /* SHA-256 of len bytes at data into out. IOTD_OK, or IOTD_EIO. */
    iotd_status (*sha256)(void *ctx, const void *data, size_t len,
                          uint8_t out[IOTD_MANIFEST_DIGEST_LEN]);
    /* IOTD_OK when sig is a valid ECDSA P-256 signature of the SHA-256
     * digest by pub; IOTD_EINVAL when it is not (or pub is not a point on
     * the curve); IOTD_EIO when the service itself failed. */
    iotd_status (*p256_verify)(void *ctx, const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN],
                               const uint8_t digest[IOTD_MANIFEST_DIGEST_LEN],
                               const uint8_t sig[IOTD_MANIFEST_SIG_LEN]);
} iotd_manifest_crypto;

/* A trusted signing key. More than one may be trusted at once, so a key
 * can be rotated and a compromised one removed. */
typedef struct iotd_manifest_key {
    uint8_t id[IOTD_MANIFEST_KEY_ID_LEN];
    uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN];
} iotd_manifest_key;

/* What the verifying side requires. The strings and the key table are
 * read, not kept. */
typedef struct iotd_manifest_policy {
    const iotd_manifest_key *keys;
    size_t n_keys;
    const char *vendor_id;   /* NULL: any (iotctl verifying a release) */
    const char *class_id;    /* NULL: any */
    uint64_t last_sequence;  /* a manifest must be above it; 0: none accepted yet */
    uint32_t secure_version; /* the device's anti-rollback counter; 0: no floor */
    uint32_t slot_size;      /* bytes the image may have; 0: no limit */
    bool has_now;            /* false (clock not set): not-after is not checked */
    int64_t now;             /* Unix seconds */
} iotd_manifest_policy;

/* Parses text (len bytes, no NUL needed) into *out (required) without
 * verifying the signature. IOTD_MANIFEST_OK, MALFORMED or UNSUPPORTED. On MALFORMED,
 * *line (if not NULL) is the 1-based line at fault (0: the whole text,
 * e.g. too long or not ended). */
iotd_manifest_result iotd_manifest_parse(const char *text, size_t len, iotd_manifest *out,
                                         unsigned *line);

/* Parses, then checks in the order of iotd_manifest_result: the key, the
 * signature (before any other field is believed), then the policy. *out
 * is filled whatever the verdict past MALFORMED, for reporting. */
iotd_manifest_result iotd_manifest_verify(const char *text, size_t len,
                                          const iotd_manifest_policy *policy,
                                          const iotd_manifest_crypto *crypto, iotd_manifest *out);

/* Writes the signed part of m (every line before "signature: ", from the
 * fields of m; signature and signed_len are ignored) into buf. IOTD_OK and
 * *len, IOTD_EINVAL when a field breaks the rules above, IOTD_ENOSPC when
 * buf is too small. For the signing tool. */
iotd_status iotd_manifest_format_signed_part(const iotd_manifest *m, char *buf, size_t cap,
                                             size_t *len);

/* Appends the signature line for sig to the signed part in buf (len
 * bytes): IOTD_OK and *len updated, or IOTD_ENOSPC. */
iotd_status iotd_manifest_append_signature(const uint8_t sig[IOTD_MANIFEST_SIG_LEN], char *buf,
                                           size_t cap, size_t *len);

/* The key ID of an uncompressed P-256 public key. */
iotd_status iotd_manifest_key_id(const iotd_manifest_crypto *crypto,
                                 const uint8_t pub[IOTD_MANIFEST_PUBKEY_LEN],
                                 uint8_t id[IOTD_MANIFEST_KEY_ID_LEN]);

#endif
