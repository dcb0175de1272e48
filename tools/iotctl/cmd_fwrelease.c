/* iotctl firmware add|list|show: the releases kept in the PKI directory,
 * each an image and its manifest, named by the image's SHA-256. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cmds.h"
#include "fwrelease.h"
#include "iot/fsutil.h"

static iot_status check_new_release(const fw_store *s, const fw_release_list *l,
                                    const iotd_manifest *m, const char *digest, iot_err *err)
{
    const fw_release *same = fw_release_find(l, NULL, m->sequence);
    if (same != NULL)
        return iot_err_set(err, IOT_EEXIST,
                           "sequence number %" PRIu64 " is already stored (release %s, %.16s in "
                           "%s); a sequence number is released once",
                           m->sequence, same->m.version, same->digest, s->images);
    same = fw_release_find(l, digest, 0);
    if (same != NULL)
        return iot_err_set(err, IOT_EEXIST,
                           "this image is already stored with sequence number %" PRIu64
                           " (%s/%s.bin)",
                           same->m.sequence, s->images, digest);
    return IOT_OK;
}

/* Both files, or neither. */
static iot_status store_files(const fw_store *s, const char *digest, const char *manifest_src,
                              const char *image_src, char *manifest, char *image, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    fw_image img = {0};
    iot_status st = fw_release_paths(s, digest, manifest, image, err);
    if (st == IOT_OK)
        st = iot_file_read(manifest_src, IOTD_MANIFEST_MAX, &text, &len, err);
    if (st == IOT_OK)
        st = fw_image_read(image_src, &img, err);
    if (st == IOT_OK)
        st = iot_mkdir_p(s->images, 0700, err);
    if (st == IOT_OK)
        st = iot_file_create(image, img.data, img.size, 0644, err);
    if (st != IOT_OK)
        goto out;
    st = iot_file_create(manifest, text, len, 0644, err);
    if (st != IOT_OK)
        unlink(image);
out:
    free(img.data);
    free(text);
    return st;
}

int cmd_firmware_add(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("firmware", "add");
    static const struct option opts[] = {{"manifest", required_argument, NULL, 'm'},
                                         {"image", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *manifest_src = NULL, *image_src = NULL;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'm')
            manifest_src = optarg;
        else if (c == 'i')
            image_src = optarg;
        else if (c == 'h')
            return cli_help(self);
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (manifest_src == NULL || image_src == NULL)
        return cli_usage(self, "missing %s", manifest_src == NULL ? "--manifest" : "--image");
    iot_err err = {0};
    fw_store s;
    fw_verdict v;
    fw_release_list l = {0};
    char digest[FW_DIGEST_HEX + 1], manifest[CLI_PATH_MAX], image[CLI_PATH_MAX];
    fw_policy_opts p = {.now = (int64_t)ctx->now};
    iot_status st = fw_store_open(ctx, &s, true, &err);
    if (st == IOT_OK)
        st = fw_verify_file(&s, manifest_src, image_src, &p, &v, &err);
    if (st == IOT_OK)
        st = fw_verdict_error(&s, manifest_src, &p, &v, &err);
    if (st == IOT_OK)
        st = fw_releases_load(&s, &l, &err);
    if (st != IOT_OK)
        goto out;
    iot_hex(v.m.image_digest, sizeof(v.m.image_digest), digest);
    st = check_new_release(&s, &l, &v.m, digest, &err);
    if (st == IOT_OK)
        st = store_files(&s, digest, manifest_src, image_src, manifest, image, &err);
    if (st != IOT_OK)
        goto out;
    printf("firmware release added: sequence %" PRIu64 ", %s %s\n", v.m.sequence, v.m.class_id,
           v.m.version);
    printf("  %-15s %s\n", "manifest", manifest);
    printf("  %-15s %s\n", "image", image);
    printf("  %-15s %s\n", "verified", "ok (signature, image size and SHA-256)");
out:
    fw_releases_free(&l);
    fw_store_close(&s);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

static cJSON *release_json(const fw_store *s, const fw_release *r, const fw_keyring *ring)
{
    char id[FW_KEY_ID_HEX + 1], when[32], manifest[CLI_PATH_MAX], image[CLI_PATH_MAX];
    iot_hex(r->m.key_id, sizeof(r->m.key_id), id);
    const fw_key *k = fw_keyring_find_id(ring, r->m.key_id);
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || fw_release_paths(s, r->digest, manifest, image, NULL) != IOT_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "sequence", (double)r->m.sequence);
    cJSON_AddStringToObject(o, "vendor_id", r->m.vendor_id);
    cJSON_AddStringToObject(o, "class_id", r->m.class_id);
    cJSON_AddStringToObject(o, "version", r->m.version);
    cJSON_AddNumberToObject(o, "secure_version", (double)r->m.secure_version);
    cJSON_AddNumberToObject(o, "image_size", (double)r->m.image_size);
    cJSON_AddStringToObject(o, "image_sha256", r->digest);
    cJSON_AddStringToObject(o, "image_uri", r->m.image_uri);
    if (r->m.has_not_after)
        cli_format_time(r->m.not_after, when, sizeof(when));
    if (r->m.has_not_after)
        cJSON_AddStringToObject(o, "not_after", when);
    else
        cJSON_AddNullToObject(o, "not_after");
    cJSON_AddStringToObject(o, "signing_key_id", id);
    if (k != NULL)
        cJSON_AddStringToObject(o, "signing_key", k->name);
    else
        cJSON_AddNullToObject(o, "signing_key");
    cJSON_AddStringToObject(o, "verdict", iotd_manifest_result_name(r->result));
    cJSON_AddStringToObject(o, "manifest", manifest);
    cJSON_AddStringToObject(o, "image", image);
    return o;
}

/* Prints item as JSON and frees it. */
static int print_json(cJSON *item)
{
    int rc = cmd_print_json(item);
    cJSON_Delete(item);
    return rc;
}

static int list_json(const fw_store *s, const fw_release_list *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < l->n; i++) {
        cJSON *o = release_json(s, &l->items[i], &l->ring);
        if (o == NULL || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    return print_json(a);
}

static void list_table(const fw_release_list *l)
{
    printf("%-10s %-20s %-16s %6s %10s %-16s %-13s %s\n", "SEQUENCE", "CLASS", "VERSION", "SECURE",
           "SIZE", "KEY", "VERDICT", "IMAGE SHA-256");
    for (size_t i = 0; i < l->n; i++) {
        const fw_release *r = &l->items[i];
        const fw_key *k = fw_keyring_find_id(&l->ring, r->m.key_id);
        char id[FW_KEY_ID_HEX + 1];
        iot_hex(r->m.key_id, sizeof(r->m.key_id), id);
        printf("%-10" PRIu64 " %-20s %-16s %6" PRIu32 " %10" PRIu32 " %-16s %-13s %.16s\n",
               r->m.sequence, r->m.class_id, r->m.version, r->m.secure_version, r->m.image_size,
               k != NULL ? k->name : id, iotd_manifest_result_name(r->result), r->digest);
    }
}

/* Parses [--json] and, for show, ID or --sequence N. */
static int parse_listing(const cli_command *self, int argc, char **argv, bool show, bool *json,
                         const char **id, const char **seq)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"sequence", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'j')
            *json = true;
        else if (c == 'n' && show)
            *seq = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (show && optind < argc)
        *id = argv[optind++];
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (show && (*id == NULL) == (*seq == NULL))
        return cli_usage(self, "give either an image SHA-256 (or its first 8+ digits) or "
                               "--sequence N");
    return CLI_EXIT_OK;
}

int cmd_firmware_list(cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    const char *unused = NULL;
    int rc =
        parse_listing(cmd_find("firmware", "list"), argc, argv, false, &json, &unused, &unused);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    fw_store s;
    fw_release_list l = {0};
    iot_status st = fw_store_open(ctx, &s, false, &err);
    if (st == IOT_OK)
        st = fw_releases_load(&s, &l, &err);
    if (st == IOT_OK && json)
        rc = list_json(&s, &l);
    else if (st == IOT_OK)
        list_table(&l);
    fw_releases_free(&l);
    fw_store_close(&s);
    return st == IOT_OK ? rc : cli_fail(&err);
}

static iot_status lookup(const fw_store *s, const fw_release_list *l, const char *id,
                         const char *seq_opt, const fw_release **r, iot_err *err)
{
    uint64_t seq = 0;
    if (id != NULL && (strlen(id) < 8 || strlen(id) > FW_DIGEST_HEX ||
                       strspn(id, "0123456789abcdef") != strlen(id)))
        return iot_err_set(err, IOT_EINVAL,
                           "'%s' is not an image SHA-256 (8 to 64 lower-case hex digits)", id);
    if (seq_opt != NULL) {
        iot_status st = fw_parse_u64("--sequence", seq_opt, 1, (uint64_t)INT64_MAX, &seq, err);
        if (st != IOT_OK)
            return st;
    }
    *r = fw_release_find(l, id, seq);
    size_t matches = 0;
    for (size_t i = 0; *r == NULL && id != NULL && i < l->n; i++)
        matches += strncmp(l->items[i].digest, id, strlen(id)) == 0;
    if (matches > 1)
        return iot_err_set(err, IOT_EINVAL,
                           "'%s' starts the SHA-256 of %zu releases; give more digits", id,
                           matches);
    if (*r == NULL)
        return iot_err_set(
            err, IOT_ENOENT, "no release %s%s in %s; 'iotctl firmware list' shows them",
            id != NULL ? "" : "with sequence number ", id != NULL ? id : seq_opt, s->images);
    return IOT_OK;
}

static void show_text(const fw_store *s, const fw_release *r, const fw_keyring *ring)
{
    char manifest[CLI_PATH_MAX], image[CLI_PATH_MAX];
    printf("release %s\n", r->digest);
    fw_print_fields(&r->m, ring);
    printf("  %-15s %s\n", "verdict", iotd_manifest_result_name(r->result));
    if (fw_release_paths(s, r->digest, manifest, image, NULL) == IOT_OK) {
        printf("  %-15s %s\n", "manifest", manifest);
        printf("  %-15s %s\n", "image", image);
    }
}

int cmd_firmware_show(cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    const char *id = NULL, *seq = NULL;
    int rc = parse_listing(cmd_find("firmware", "show"), argc, argv, true, &json, &id, &seq);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    fw_store s;
    fw_release_list l = {0};
    const fw_release *r = NULL;
    iot_status st = fw_store_open(ctx, &s, false, &err);
    if (st == IOT_OK)
        st = fw_releases_load(&s, &l, &err);
    if (st == IOT_OK)
        st = lookup(&s, &l, id, seq, &r, &err);
    if (st == IOT_OK && json)
        rc = print_json(release_json(&s, r, &l.ring));
    else if (st == IOT_OK)
        show_text(&s, r, &l.ring);
    fw_releases_free(&l);
    fw_store_close(&s);
    return st == IOT_OK ? rc : cli_fail(&err);
}
