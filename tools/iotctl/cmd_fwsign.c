/* iotctl firmware sign|verify: making a release's manifest and checking
 * one with the verifier every device and the gateway run (iotd/manifest.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

#include "cmds.h"
#include "fwrelease.h"
#include "iot/fsutil.h"

#define PRIVATE_KEY_MAX 16384

typedef struct sign_request {
    const char *image;
    const char *vendor;
    const char *class_id;
    const char *version;
    const char *secure_version;
    const char *key;
    const char *not_after;
    const char *uri;
    const char *sequence;
    const char *out;
} sign_request;

static int parse_sign(const cli_command *self, int argc, char **argv, sign_request *r)
{
    static const struct option opts[] = {{"image", required_argument, NULL, 'i'},
                                         {"vendor", required_argument, NULL, 'V'},
                                         {"class", required_argument, NULL, 'c'},
                                         {"version", required_argument, NULL, 'v'},
                                         {"secure-version", required_argument, NULL, 's'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"not-after", required_argument, NULL, 'a'},
                                         {"uri", required_argument, NULL, 'u'},
                                         {"sequence", required_argument, NULL, 'n'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char **slot[128] = {0};
    slot['i'] = &r->image;
    slot['V'] = &r->vendor;
    slot['c'] = &r->class_id;
    slot['v'] = &r->version;
    slot['s'] = &r->secure_version;
    slot['k'] = &r->key;
    slot['a'] = &r->not_after;
    slot['u'] = &r->uri;
    slot['n'] = &r->sequence;
    slot['o'] = &r->out;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        if (c <= 0 || c >= 128 || slot[c] == NULL)
            return cmd_bad_option(self, argc, argv, c);
        *slot[c] = optarg;
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    const char *required[][2] = {{r->image, "--image"},
                                 {r->vendor, "--vendor"},
                                 {r->class_id, "--class"},
                                 {r->version, "--version"},
                                 {r->secure_version, "--secure-version"},
                                 {r->key, "--key"},
                                 {r->out, "--out"}};
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (required[i][0] == NULL)
            return cli_usage(self, "missing %s", required[i][1]);
    return CLI_EXIT_OK;
}

/* The manifest's fields from the options, each checked with a message
 * that names it; the format function is the last judge. */
static iot_status fill_fields(const cli_ctx *ctx, const sign_request *r, iotd_manifest *m,
                              iot_err *err)
{
    uint64_t v = 0;
    iot_status st = fw_check_id("--vendor", r->vendor, m->vendor_id, err);
    if (st == IOT_OK)
        st = fw_check_id("--class", r->class_id, m->class_id, err);
    if (st == IOT_OK)
        st = fw_check_version(r->version, m->version, err);
    if (st == IOT_OK)
        st = fw_parse_u64("--secure-version", r->secure_version, 0, UINT32_MAX, &v, err);
    if (st != IOT_OK)
        return st;
    m->secure_version = (uint32_t)v;
    if (r->not_after != NULL) {
        time_t t = 0;
        st = cli_parse_time("--not-after", r->not_after, &t, err);
        if (st != IOT_OK)
            return st;
        if (t <= ctx->now)
            return iot_err_set(err, IOT_EINVAL, "--not-after '%s' is already past", r->not_after);
        m->has_not_after = true;
        m->not_after = (int64_t)t;
    }
    return IOT_OK;
}

/* The image's size, digest and default URI. */
static iot_status take_image(const sign_request *r, iotd_manifest *m, iot_err *err)
{
    fw_image img;
    iot_status st = fw_image_read(r->image, &img, err);
    if (st != IOT_OK)
        return st;
    m->image_size = img.size;
    memcpy(m->image_digest, img.digest, sizeof(m->image_digest));
    free(img.data);
    if (r->uri != NULL)
        return fw_check_uri(r->uri, m->image_uri, err);
    char hex[2 * IOTD_MANIFEST_DIGEST_LEN + 1];
    iot_hex(m->image_digest, sizeof(m->image_digest), hex);
    snprintf(m->image_uri, sizeof(m->image_uri), "%s%s", FW_URI_PREFIX, hex);
    return IOT_OK;
}

static iot_status load_private_key(const char *path, EVP_PKEY **key, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    iot_status st = iot_key_mode_check(path, err);
    if (st == IOT_OK)
        st = iot_file_read(path, PRIVATE_KEY_MAX, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    bio = BIO_new_mem_buf(pem, (int)len);
    *key = bio == NULL ? NULL : PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (*key == NULL)
        st = iot_err_set(err, IOT_ECORRUPT, "%s is not a readable private key", path);
    BIO_free(bio);
    OPENSSL_clear_free(pem, len);
    return st;
}

/* The named key, trusted, its private key the one the keyring records. */
static iot_status take_key(const fw_store *s, fw_keyring *ring, const char *name, EVP_PKEY **key,
                           iotd_manifest *m, iot_err *err)
{
    char path[CLI_PATH_MAX];
    iotd_manifest_key row;
    const fw_key *k = fw_keyring_find(ring, name);
    if (k == NULL)
        return iot_err_set(err, IOT_ENOENT,
                           "no signing key '%s' in %s; create one with 'iotctl firmware key "
                           "create --name %s'",
                           name, s->keyring, name);
    if (k->retired)
        return iot_err_set(err, IOT_ESTATE,
                           "signing key '%s' is retired; sign with a trusted key ('iotctl "
                           "firmware key list')",
                           name);
    iot_status st = fw_key_path(s, name, true, path, err);
    if (st == IOT_OK)
        st = load_private_key(path, key, err);
    if (st == IOT_OK)
        st = iot_manifest_key_row(*key, &row, err);
    if (st != IOT_OK)
        return st;
    if (memcmp(row.id, k->id, sizeof(row.id)) != 0)
        return iot_err_set(err, IOT_ECORRUPT,
                           "%s is not the key the keyring records for '%s'; restore it from a "
                           "backup",
                           path, name);
    memcpy(m->key_id, row.id, sizeof(m->key_id));
    return IOT_OK;
}

/* The sequence number: the next one, or --sequence when it is above every
 * one used. Numbers are never reused, whatever became of their manifest. */
static iot_status take_sequence(const fw_store *s, const char *opt, uint64_t *seq, iot_err *err)
{
    uint64_t last = 0;
    iot_status st = fw_sequence_last(s, &last, err);
    if (st != IOT_OK)
        return st;
    if (opt == NULL) {
        if (last >= (uint64_t)INT64_MAX)
            return iot_err_set(err, IOT_ESTATE, "the sequence numbers are used up");
        *seq = last + 1;
        return IOT_OK;
    }
    st = fw_parse_u64("--sequence", opt, 1, (uint64_t)INT64_MAX, seq, err);
    if (st != IOT_OK)
        return st;
    if (*seq <= last)
        return iot_err_set(err, IOT_EINVAL,
                           "--sequence %" PRIu64 " is not above the last sequence number signed "
                           "(%" PRIu64 ", in %s); a sequence number is never reused",
                           *seq, last, s->sequence);
    return IOT_OK;
}

/* The text: the signed part, its signature, the signature line. */
static iot_status make_text(EVP_PKEY *key, iotd_manifest *m, char *buf, size_t *len, iot_err *err)
{
    iotd_status ds = iotd_manifest_format_signed_part(m, buf, IOTD_MANIFEST_MAX, len);
    if (ds != IOTD_OK)
        return iot_err_set(err, IOT_EINVAL,
                           "the manifest's fields break the format (iotd/manifest.h): %s",
                           ds == IOTD_ENOSPC ? "longer than the limit" : "a field is invalid");
    iot_status st = iot_manifest_sign(key, buf, *len, m->signature, err);
    if (st != IOT_OK)
        return st;
    if (iotd_manifest_append_signature(m->signature, buf, IOTD_MANIFEST_MAX, len) != IOTD_OK)
        return iot_err_set(err, IOT_ENOMEM, "the manifest is longer than %d bytes",
                           IOTD_MANIFEST_MAX);
    return IOT_OK;
}

/* Writes the manifest, then reads it back and verifies what is on disk. */
static iot_status write_checked(const fw_store *s, const char *path, const char *text, size_t len,
                                iot_err *err)
{
    fw_verdict v;
    iot_status st = iot_file_create(path, text, len, 0644, err);
    if (st != IOT_OK)
        return st;
    st = fw_verify_file(s, path, NULL, NULL, &v, err);
    if (st == IOT_OK && v.result != IOTD_MANIFEST_OK)
        st = iot_err_set(err, IOT_ECRYPTO, "%s as written does not verify (%s); it was removed",
                         path, iotd_manifest_result_name(v.result));
    if (st != IOT_OK)
        unlink(path);
    return st;
}

static void print_signed(const char *out, const iotd_manifest *m, const fw_keyring *ring)
{
    printf("firmware manifest signed: %s\n", out);
    fw_print_fields(m, ring);
    printf("  %-15s %s\n", "verified", "ok (read back and checked with the trusted keys)");
}

int cmd_firmware_sign(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("firmware", "sign");
    sign_request r = {0};
    int rc = parse_sign(self, argc, argv, &r);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    iotd_manifest m = {.manifest_version = IOTD_MANIFEST_VERSION};
    if (fill_fields(ctx, &r, &m, &err) != IOT_OK)
        return cli_usage(self, "%s", err.msg);
    fw_store s = {.lock_fd = -1};
    fw_keyring ring;
    EVP_PKEY *key = NULL;
    char text[IOTD_MANIFEST_MAX];
    size_t len = 0;
    iot_status st = iot_path_exists(r.out)
                        ? iot_err_set(&err, IOT_EEXIST,
                                      "%s already exists; refusing to overwrite it (choose "
                                      "another --out)",
                                      r.out)
                        : fw_store_open(ctx, &s, true, &err);
    if (st == IOT_OK)
        st = fw_keyring_load(&s, &ring, &err);
    if (st == IOT_OK)
        st = take_key(&s, &ring, r.key, &key, &m, &err);
    if (st == IOT_OK)
        st = take_image(&r, &m, &err);
    if (st == IOT_OK)
        st = take_sequence(&s, r.sequence, &m.sequence, &err);
    if (st == IOT_OK)
        st = make_text(key, &m, text, &len, &err);
    /* The number is spent before the manifest exists: a crash between the
     * two loses a number, never reuses one. */
    if (st == IOT_OK)
        st = fw_sequence_record(&s, m.sequence, &err);
    if (st == IOT_OK)
        st = write_checked(&s, r.out, text, len, &err);
    if (st == IOT_OK)
        print_signed(r.out, &m, &ring);
    EVP_PKEY_free(key);
    fw_store_close(&s);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

typedef struct verify_request {
    const char *manifest;
    const char *image;
    const char *class_id;
    const char *vendor;
} verify_request;

static int parse_verify(const cli_command *self, int argc, char **argv, verify_request *r)
{
    static const struct option opts[] = {
        {"manifest", required_argument, NULL, 'm'}, {"image", required_argument, NULL, 'i'},
        {"class", required_argument, NULL, 'c'},    {"vendor", required_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        switch (c) {
        case 'm':
            r->manifest = optarg;
            break;
        case 'i':
            r->image = optarg;
            break;
        case 'c':
            r->class_id = optarg;
            break;
        case 'V':
            r->vendor = optarg;
            break;
        case 'h':
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        default:
            return cmd_bad_option(self, argc, argv, c);
        }
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (r->manifest == NULL)
        return cli_usage(self, "missing --manifest");
    return CLI_EXIT_OK;
}

int cmd_firmware_verify(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("firmware", "verify");
    verify_request r = {0};
    int rc = parse_verify(self, argc, argv, &r);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    fw_store s;
    fw_verdict v;
    fw_policy_opts p = {.vendor = r.vendor, .class_id = r.class_id, .now = (int64_t)ctx->now};
    iot_status st = fw_store_open(ctx, &s, false, &err);
    if (st == IOT_OK)
        st = fw_verify_file(&s, r.manifest, r.image, &p, &v, &err);
    if (st != IOT_OK)
        goto out;
    printf("manifest %s\n", r.manifest);
    if (v.parsed)
        fw_print_fields(&v.m, &v.ring);
    if (r.image != NULL && v.image != FW_IMAGE_NOT_CHECKED)
        printf("  %-15s %s\n", "image", r.image);
    printf("  %-15s %s\n", "verdict", fw_verdict_name(&v));
    st = fw_verdict_error(&s, r.manifest, &p, &v, &err);
out:
    fw_store_close(&s);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
