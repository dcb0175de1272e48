#include "fwrelease.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/fsutil.h"

#define MANIFEST_SUFFIX ".manifest"

static bool in_set(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr(extra, c) != NULL);
}

/* s is 1..max characters of [A-Za-z0-9] and extra; copied to dst. */
static iot_status check_chars(const char *what, const char *s, size_t max, const char *extra,
                              char *dst, iot_err *err)
{
    size_t len = strnlen(s, max + 1);
    if (len == 0 || len > max)
        return iot_err_set(err, IOT_EINVAL, "%s '%s' must be 1 to %zu characters", what, s, max);
    for (size_t i = 0; i < len; i++)
        if (!in_set(s[i], extra))
            return iot_err_set(err, IOT_EINVAL,
                               "%s '%s' has a character outside [A-Za-z0-9%s] at position %zu",
                               what, s, extra, i + 1);
    memcpy(dst, s, len + 1);
    return IOT_OK;
}

iot_status fw_check_id(const char *what, const char *s, char *dst, iot_err *err)
{
    iot_status st = check_chars(what, s, IOTD_MANIFEST_ID_MAX, "._-", dst, err);
    if (st == IOT_OK && !in_set(s[0], ""))
        return iot_err_set(err, IOT_EINVAL, "%s '%s' must start with a letter or a digit", what, s);
    return st;
}

iot_status fw_check_version(const char *s, char *dst, iot_err *err)
{
    return check_chars("--version", s, IOTD_MANIFEST_FW_VERSION_MAX, "._+-", dst, err);
}

iot_status fw_check_uri(const char *s, char *dst, iot_err *err)
{
    iot_status st = check_chars("--uri", s, IOTD_MANIFEST_URI_MAX, "._/-", dst, err);
    if (st == IOT_OK && s[0] != '/')
        return iot_err_set(err, IOT_EINVAL, "--uri '%s' must start with '/'", s);
    return st;
}

iot_status fw_parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out,
                        iot_err *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    if (end == NULL || errno != 0 || *end != '\0' || v < lo || v > hi)
        return iot_err_set(err, IOT_EINVAL, "%s '%s' is not a number in %" PRIu64 "..%" PRIu64,
                           what, s, lo, hi);
    *out = (uint64_t)v;
    return IOT_OK;
}

iot_status fw_image_read(const char *path, fw_image *img, iot_err *err)
{
    char *data = NULL;
    size_t len = 0;
    memset(img, 0, sizeof(*img));
    iot_status st = iot_file_read(path, FW_IMAGE_MAX, &data, &len, err);
    if (st != IOT_OK)
        return st;
    if (len == 0) {
        free(data);
        return iot_err_set(err, IOT_EINVAL, "image %s is empty", path);
    }
    const iotd_manifest_crypto *c = iot_manifest_crypto_openssl();
    if (c->sha256(c->ctx, data, len, img->digest) != IOTD_OK) {
        free(data);
        return iot_err_set(err, IOT_ECRYPTO, "cannot compute the SHA-256 of %s", path);
    }
    img->data = (uint8_t *)data;
    img->size = (uint32_t)len;
    return IOT_OK;
}

static void check_image(const fw_image *img, fw_verdict *v)
{
    v->image_size = img->size;
    if (img->size != v->m.image_size)
        v->image = FW_IMAGE_WRONG_SIZE;
    else if (memcmp(img->digest, v->m.image_digest, sizeof(img->digest)) != 0)
        v->image = FW_IMAGE_WRONG_DIGEST;
    else
        v->image = FW_IMAGE_MATCHES;
}

iot_status fw_verify_file(const fw_store *s, const char *path, const char *image,
                          const fw_policy_opts *p, fw_verdict *v, iot_err *err)
{
    iotd_manifest_key keys[FW_KEYS_MAX];
    char *text = NULL;
    size_t len = 0;
    fw_image img = {0};
    memset(v, 0, sizeof(*v));
    iot_status st = fw_keyring_load(s, &v->ring, err);
    if (st == IOT_OK)
        st = fw_trusted_load(s, keys, &v->n_trusted, err);
    if (st == IOT_OK)
        st = iot_file_read(path, IOTD_MANIFEST_MAX, &text, &len, err);
    if (st == IOT_ENOMEM)
        iot_err_set(err, st, "%s is larger than a manifest can be (%d bytes); it is not one", path,
                    IOTD_MANIFEST_MAX);
    if (st == IOT_OK && image != NULL)
        st = fw_image_read(image, &img, err);
    if (st != IOT_OK)
        goto out;
    iotd_manifest_policy policy = {.keys = keys, .n_keys = v->n_trusted};
    if (p != NULL) {
        policy.vendor_id = p->vendor;
        policy.class_id = p->class_id;
        policy.has_now = true;
        policy.now = p->now;
    }
    v->result = iotd_manifest_parse(text, len, &v->m, &v->line);
    v->parsed = v->result == IOTD_MANIFEST_OK;
    if (v->parsed)
        v->result = iotd_manifest_verify(text, len, &policy, iot_manifest_crypto_openssl(), &v->m);
    if (v->result == IOTD_MANIFEST_OK && image != NULL)
        check_image(&img, v);
out:
    free(img.data);
    free(text);
    return st;
}

const char *fw_verdict_name(const fw_verdict *v)
{
    if (v->result != IOTD_MANIFEST_OK)
        return iotd_manifest_result_name(v->result);
    if (v->image == FW_IMAGE_WRONG_SIZE)
        return "image_size_mismatch";
    if (v->image == FW_IMAGE_WRONG_DIGEST)
        return "image_digest_mismatch";
    return "ok";
}

/* Why the key is not trusted: retired here, or never made here. */
static iot_status unknown_key_error(const fw_store *s, const char *path, const fw_verdict *v,
                                    iot_err *err)
{
    char id[FW_KEY_ID_HEX + 1], when[32];
    iot_hex(v->m.key_id, sizeof(v->m.key_id), id);
    const fw_key *k = fw_keyring_find_id(&v->ring, v->m.key_id);
    if (k != NULL && k->retired) {
        cli_format_time(k->retired_at, when, sizeof(when));
        return iot_err_set(err, IOT_ECRYPTO,
                           "manifest %s refused (unknown_key): it is signed by key %s ('%s'), "
                           "retired on %s",
                           path, id, k->name, when);
    }
    return iot_err_set(err, IOT_ECRYPTO,
                       "manifest %s refused (unknown_key): signing key %s is not one of the %zu "
                       "trusted keys of %s",
                       path, id, v->n_trusted, s->trusted);
}

static const char *or_any(const char *s)
{
    return s != NULL ? s : "(any)";
}

iot_status fw_verdict_error(const fw_store *s, const char *path, const fw_policy_opts *p,
                            const fw_verdict *v, iot_err *err)
{
    const char *name = fw_verdict_name(v);
    char when[32];
    switch (v->result) {
    case IOTD_MANIFEST_OK:
        break;
    case IOTD_MANIFEST_MALFORMED:
        return iot_err_set(err, IOT_EINVAL,
                           "manifest %s refused (malformed): not a manifest of format %d "
                           "(line %u; 0 is the whole text)",
                           path, IOTD_MANIFEST_VERSION, v->line);
    case IOTD_MANIFEST_UNKNOWN_KEY:
        return unknown_key_error(s, path, v, err);
    case IOTD_MANIFEST_BAD_SIGNATURE:
        return iot_err_set(err, IOT_ECRYPTO,
                           "manifest %s refused (bad_signature): the signature does not verify; "
                           "the manifest was changed after signing or is not genuine",
                           path);
    case IOTD_MANIFEST_WRONG_VENDOR:
        return iot_err_set(err, IOT_EINVAL,
                           "manifest %s refused (wrong_vendor): vendor-id '%s' is not '%s'", path,
                           v->m.vendor_id, or_any(p ? p->vendor : NULL));
    case IOTD_MANIFEST_WRONG_CLASS:
        return iot_err_set(err, IOT_EINVAL,
                           "manifest %s refused (wrong_class): class-id '%s' is not '%s'", path,
                           v->m.class_id, or_any(p ? p->class_id : NULL));
    case IOTD_MANIFEST_EXPIRED:
        cli_format_time(v->m.not_after, when, sizeof(when));
        return iot_err_set(err, IOT_EINVAL, "manifest %s refused (expired): not-after %s is past",
                           path, when);
    default:
        return iot_err_set(err, IOT_EINVAL, "manifest %s refused (%s)", path, name);
    }
    if (v->image == FW_IMAGE_WRONG_SIZE)
        return iot_err_set(err, IOT_EINVAL,
                           "manifest %s refused (%s): the image is %" PRIu32
                           " bytes, the manifest says %" PRIu32,
                           path, name, v->image_size, v->m.image_size);
    if (v->image == FW_IMAGE_WRONG_DIGEST)
        return iot_err_set(err, IOT_EINVAL,
                           "manifest %s refused (%s): the image's SHA-256 is not the manifest's "
                           "image-digest; it is not the image that was signed",
                           path, name);
    return IOT_OK;
}

void fw_print_fields(const iotd_manifest *m, const fw_keyring *ring)
{
    char digest[FW_DIGEST_HEX + 1], id[FW_KEY_ID_HEX + 1], when[32];
    iot_hex(m->image_digest, sizeof(m->image_digest), digest);
    iot_hex(m->key_id, sizeof(m->key_id), id);
    const fw_key *k = fw_keyring_find_id(ring, m->key_id);
    printf("  %-15s %" PRIu64 "\n", "sequence", m->sequence);
    printf("  %-15s %s\n", "vendor-id", m->vendor_id);
    printf("  %-15s %s\n", "class-id", m->class_id);
    printf("  %-15s %s\n", "version", m->version);
    printf("  %-15s %" PRIu32 "\n", "secure-version", m->secure_version);
    printf("  %-15s %" PRIu32 "\n", "image-size", m->image_size);
    printf("  %-15s sha-256:%s\n", "image-digest", digest);
    printf("  %-15s %s\n", "image-uri", m->image_uri);
    if (m->has_not_after)
        cli_format_time(m->not_after, when, sizeof(when));
    printf("  %-15s %s\n", "not-after", m->has_not_after ? when : "(none)");
    if (k != NULL)
        printf("  %-15s %s ('%s', %s)\n", "signing-key-id", id, k->name,
               k->retired ? "retired" : "trusted");
    else
        printf("  %-15s %s (not a key of this PKI directory)\n", "signing-key-id", id);
}

/* ---- the store of releases ---------------------------------------------- */

iot_status fw_release_paths(const fw_store *s, const char *digest, char *manifest, char *image,
                            iot_err *err)
{
    char name[FW_DIGEST_HEX + sizeof(MANIFEST_SUFFIX)];
    snprintf(name, sizeof(name), "%s%s", digest, MANIFEST_SUFFIX);
    iot_status st = iot_path_join(manifest, CLI_PATH_MAX, s->images, name, err);
    if (st != IOT_OK)
        return st;
    snprintf(name, sizeof(name), "%s.bin", digest);
    return iot_path_join(image, CLI_PATH_MAX, s->images, name, err);
}

/* A stored name is 64 lower-case hex digits and the suffix. */
static bool digest_of_name(const char *name, char *digest)
{
    size_t len = strlen(name);
    if (len != FW_DIGEST_HEX + strlen(MANIFEST_SUFFIX) ||
        strcmp(name + FW_DIGEST_HEX, MANIFEST_SUFFIX) != 0 ||
        strspn(name, "0123456789abcdef") != FW_DIGEST_HEX)
        return false;
    memcpy(digest, name, FW_DIGEST_HEX);
    digest[FW_DIGEST_HEX] = '\0';
    return true;
}

static iot_status add_release(const fw_store *s, fw_release_list *l, const char *digest,
                              iot_err *err)
{
    char manifest[CLI_PATH_MAX], image[CLI_PATH_MAX];
    fw_verdict v;
    iot_status st = fw_release_paths(s, digest, manifest, image, err);
    if (st == IOT_OK)
        st = fw_verify_file(s, manifest, NULL, NULL, &v, err);
    if (st != IOT_OK)
        return st;
    if (!v.parsed)
        return iot_err_set(err, IOT_ECORRUPT, "%s is not a manifest (%s); move it out of %s",
                           manifest, iotd_manifest_result_name(v.result), s->images);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        fw_release *grown = cap > FW_RELEASE_MAX ? NULL : realloc(l->items, cap * sizeof(*grown));
        if (grown == NULL)
            return iot_err_set(err, IOT_ENOMEM, "%s holds more releases than can be listed",
                               s->images);
        l->items = grown;
        l->cap = cap;
    }
    fw_release *r = &l->items[l->n++];
    memcpy(r->digest, digest, sizeof(r->digest));
    r->m = v.m;
    r->result = v.result;
    return IOT_OK;
}

static int by_sequence(const void *a, const void *b)
{
    uint64_t x = ((const fw_release *)a)->m.sequence, y = ((const fw_release *)b)->m.sequence;
    return x < y ? -1 : x > y;
}

iot_status fw_releases_load(const fw_store *s, fw_release_list *l, iot_err *err)
{
    memset(l, 0, sizeof(*l));
    iot_status st = fw_keyring_load(s, &l->ring, err);
    if (st != IOT_OK || !iot_path_exists(s->images))
        return st;
    DIR *d = opendir(s->images);
    if (d == NULL)
        return iot_err_set(err, IOT_EIO, "cannot read the directory %s", s->images);
    for (struct dirent *e = readdir(d); e != NULL && st == IOT_OK; e = readdir(d)) {
        char digest[FW_DIGEST_HEX + 1];
        if (digest_of_name(e->d_name, digest))
            st = add_release(s, l, digest, err);
    }
    closedir(d);
    if (st == IOT_OK && l->n > 1)
        qsort(l->items, l->n, sizeof(l->items[0]), by_sequence);
    return st;
}

const fw_release *fw_release_find(const fw_release_list *l, const char *digest, uint64_t seq)
{
    const fw_release *found = NULL;
    size_t len = digest != NULL ? strlen(digest) : 0;
    for (size_t i = 0; i < l->n; i++) {
        bool match = digest != NULL ? strncmp(l->items[i].digest, digest, len) == 0
                                    : l->items[i].m.sequence == seq;
        if (match && found != NULL)
            return NULL;
        if (match)
            found = &l->items[i];
    }
    return found;
}

void fw_releases_free(fw_release_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}
