/* Internal to the manifest's sources: the field table and the value rules
 * that the parser (manifest.c) and the writer (manifest_write.c) share, so
 * the two cannot disagree on a name or a spelling. */
#ifndef IOTD_MANIFEST_INTERNAL_H
#define IOTD_MANIFEST_INTERNAL_H

#include <stdbool.h>

#define IOTD__MANIFEST_DIGEST_PREFIX    "sha-256:"
#define IOTD__MANIFEST_SIGNATURE_PREFIX "ecdsa-p256-sha256:"

/* The lines, in their one order. */
typedef enum iotd__manifest_field {
    F_MANIFEST_VERSION,
    F_SEQUENCE,
    F_VENDOR,
    F_CLASS,
    F_VERSION,
    F_SECURE_VERSION,
    F_IMAGE_SIZE,
    F_IMAGE_DIGEST,
    F_IMAGE_URI,
    F_NOT_AFTER,
    F_KEY_ID,
    F_SIGNATURE,
    F_COUNT
} iotd__manifest_field;

extern const char *const iotd__manifest_field_names[F_COUNT];

/* The rules of manifest.h for vendor-id and class-id, version, image-uri. */
bool iotd__manifest_id_valid(const char *s);
bool iotd__manifest_version_valid(const char *s);
bool iotd__manifest_uri_valid(const char *s);

#endif
