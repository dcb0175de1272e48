/* What the firmware commands share: the manifest's fields checked one by
 * one with messages that name them, an image's size and digest, a
 * manifest file judged by the verifier with the trusted keys, and the
 * releases stored in DIR/firmware/images. */
#ifndef IOTCTL_FWRELEASE_H
#define IOTCTL_FWRELEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "fwstore.h"

#define FW_URI_PREFIX  "/v1/firmware/images/"
#define FW_DIGEST_HEX  (2 * IOTD_MANIFEST_DIGEST_LEN)
#define FW_RELEASE_MAX 100000 /* manifests in one store: listing is capped */

/* vendor-id and class-id: 1-64 of [A-Za-z0-9._-], first a letter or digit. */
iot_status fw_check_id(const char *what, const char *s, char *dst, iot_err *err);
/* version: 1-32 of [A-Za-z0-9._+-]. */
iot_status fw_check_version(const char *s, char *dst, iot_err *err);
/* image-uri: 1-200 of [A-Za-z0-9._/-], starting with '/'. */
iot_status fw_check_uri(const char *s, char *dst, iot_err *err);
/* A decimal number in lo..hi, digits only. */
iot_status fw_parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                        iot_err *err);

typedef struct fw_image {
    uint8_t *data; /* malloc'd; the caller frees */
    uint32_t size;
    uint8_t digest[IOTD_MANIFEST_DIGEST_LEN];
} fw_image;

/* Reads an image (1..FW_IMAGE_MAX bytes) and its SHA-256. */
iot_status fw_image_read(const char *path, fw_image *img, iot_err *err);

/* What the operator asks of a manifest beyond its signature. */
typedef struct fw_policy_opts {
    const char *vendor;   /* NULL: any */
    const char *class_id; /* NULL: any */
    int64_t now;          /* not-after is checked against it */
} fw_policy_opts;

typedef enum fw_image_check {
    FW_IMAGE_NOT_CHECKED,
    FW_IMAGE_MATCHES,
    FW_IMAGE_WRONG_SIZE,
    FW_IMAGE_WRONG_DIGEST,
} fw_image_check;

typedef struct fw_verdict {
    iotd_manifest_result result;
    bool parsed; /* m holds the fields (past MALFORMED and UNSUPPORTED) */
    unsigned line;
    iotd_manifest m;
    fw_image_check image;
    uint32_t image_size; /* the image file's, when checked */
    size_t n_trusted;
    fw_keyring ring;
} fw_verdict;

/* Judges the manifest at path with the trusted keys and p (NULL: any
 * vendor and class, no clock) and, when image is not NULL and the
 * manifest verifies, the image's size and digest. IOT_OK once judged,
 * whatever the verdict; an error when a file cannot be read. */
iot_status fw_verify_file(const fw_store *s, const char *path, const char *image,
                          const fw_policy_opts *p, fw_verdict *v, iot_err *err);

/* The verdict's name: iotd_manifest_result_name, or image_size_mismatch,
 * image_digest_mismatch. */
const char *fw_verdict_name(const fw_verdict *v);

/* IOT_OK for a manifest accepted; else a one-line reason naming the file,
 * the verdict and what it means. */
iot_status fw_verdict_error(const fw_store *s, const char *path, const fw_policy_opts *p,
                            const fw_verdict *v, iot_err *err);

/* The manifest's fields, two-space indented, the key named when known. */
void fw_print_fields(const iotd_manifest *m, const fw_keyring *ring);

/* One stored release, as listed: its fields and its verdict today (a key
 * retired since makes it unknown_key). */
typedef struct fw_release {
    char digest[FW_DIGEST_HEX + 1];
    iotd_manifest m;
    iotd_manifest_result result;
} fw_release;

typedef struct fw_release_list {
    fw_release *items;
    size_t n, cap;
    fw_keyring ring;
} fw_release_list;

/* DIR/firmware/images/DIGEST.manifest and DIGEST.bin, each CLI_PATH_MAX. */
iot_status fw_release_paths(const fw_store *s, const char *digest, char *manifest, char *image,
                            iot_err *err);

/* Every release in DIR/firmware/images, by sequence number; none before
 * the first 'firmware add'. fw_releases_free releases the list. */
iot_status fw_releases_load(const fw_store *s, fw_release_list *l, iot_err *err);
void fw_releases_free(fw_release_list *l);

/* The stored release with this sequence number or this digest (a prefix
 * that only one release has); NULL if none, or if several match. */
const fw_release *fw_release_find(const fw_release_list *l, const char *digest, uint64_t seq);

#endif
