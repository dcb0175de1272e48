/* iotctl firmware key create|list|retire: the keys that sign firmware
 * manifests, apart from the TLS CA (fwstore.h says where each file is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/pem.h>

#include "cmds.h"
#include "fwstore.h"
#include "iot/fsutil.h"
#include "iot/pki.h"

/* Parses "--name NAME" (required), the only option of create and retire. */
static int parse_name(const cli_command *self, int argc, char **argv, const char **name)
{
    static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    *name = NULL;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'n')
            *name = optarg;
        else if (c == 'h')
            return cli_help(self) == CLI_EXIT_OK ? -1 : CLI_EXIT_USAGE;
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    if (*name == NULL)
        return cli_usage(self, "missing --name");
    return CLI_EXIT_OK;
}

static iot_status pub_pem(EVP_PKEY *key, char **pem, size_t *len, iot_err *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    iot_status st = IOT_OK;
    if (bio == NULL || PEM_write_bio_PUBKEY(bio, key) != 1) {
        st = iot_err_set(err, IOT_ECRYPTO, "cannot encode the public key");
        goto out;
    }
    long n = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)n);
    if (*pem == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*pem, data, (size_t)n);
    *len = (size_t)n;
out:
    BIO_free(bio);
    return st;
}

/* The two files of a new key; created[] records what to remove on failure. */
typedef struct key_files {
    char priv[CLI_PATH_MAX];
    char pub[CLI_PATH_MAX];
    bool created[2];
} key_files;

static iot_status write_key_files(EVP_PKEY *key, key_files *f, iot_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    iot_status st = pki_key_pem(key, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(f->priv, pem, len, 0600, err);
    OPENSSL_clear_free(pem, len);
    if (st != IOT_OK)
        return st;
    f->created[0] = true;
    st = pub_pem(key, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_create(f->pub, pem, len, 0644, err);
    free(pem);
    f->created[1] = st == IOT_OK;
    return st;
}

/* A new name, a free slot, no file in the way. */
static iot_status check_new_key(const fw_store *s, fw_keyring *ring, const char *name, key_files *f,
                                iot_err *err)
{
    iot_status st = iot_id_check("key name", name, err);
    if (st != IOT_OK)
        return st;
    const fw_key *old = fw_keyring_find(ring, name);
    if (old != NULL)
        return iot_err_set(err, IOT_EEXIST,
                           "signing key '%s' already exists (%s); a name is never used twice: "
                           "choose another --name",
                           name, old->retired ? "retired" : "trusted");
    if (ring->n == FW_KEYS_MAX)
        return iot_err_set(err, IOT_ENOMEM, "%s already records %d keys, the most it can hold",
                           s->keyring, FW_KEYS_MAX);
    st = fw_key_path(s, name, true, f->priv, err);
    if (st == IOT_OK)
        st = fw_key_path(s, name, false, f->pub, err);
    if (st != IOT_OK)
        return st;
    if (iot_path_exists(f->priv) || iot_path_exists(f->pub))
        return iot_err_set(err, IOT_EEXIST,
                           "%s or %s already exists but the keyring does not name it; move it "
                           "away first",
                           f->priv, f->pub);
    return iot_mkdir_p(s->keys_dir, 0700, err);
}

static size_t count_trusted(const fw_keyring *ring)
{
    size_t n = 0;
    for (size_t i = 0; i < ring->n; i++)
        n += ring->keys[i].retired ? 0 : 1;
    return n;
}

static void print_created(const fw_store *s, const fw_keyring *ring, const fw_key *k,
                          const key_files *f)
{
    char id[FW_KEY_ID_HEX + 1];
    iot_hex(k->id, sizeof(k->id), id);
    printf("firmware signing key %s: created, trusted\n", k->name);
    printf("  key ID       %s\n", id);
    printf("  private key  %s (mode 0600)\n", f->priv);
    printf("  public key   %s\n", f->pub);
    printf("  trusted set  %s (%zu keys)\n", s->trusted, count_trusted(ring));
}

int cmd_firmware_key_create(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL;
    int rc = parse_name(cmd_find("firmware key", "create"), argc, argv, &name);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    fw_store s;
    fw_keyring ring;
    key_files f = {0};
    EVP_PKEY *key = NULL;
    bool saved = false;
    iot_status st = fw_store_open(ctx, &s, true, &err);
    if (st == IOT_OK)
        st = fw_keyring_load(&s, &ring, &err);
    if (st == IOT_OK)
        st = check_new_key(&s, &ring, name, &f, &err);
    if (st != IOT_OK)
        goto out;
    fw_key *k = &ring.keys[ring.n];
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->created = (int64_t)ctx->now;
    iotd_manifest_key row;
    st = pki_key_generate(&key, &err);
    if (st == IOT_OK)
        st = iot_manifest_key_row(key, &row, &err);
    if (st == IOT_OK)
        st = write_key_files(key, &f, &err);
    if (st != IOT_OK)
        goto out;
    memcpy(k->id, row.id, sizeof(k->id));
    ring.n++;
    st = fw_keyring_save(&s, &ring, &err);
    if (st != IOT_OK)
        goto out;
    saved = true;
    st = fw_trusted_export(&s, &ring, &err);
    if (st != IOT_OK)
        goto out;
    print_created(&s, &ring, k, &f);
out:
    if (st != IOT_OK && saved) {
        ring.n--;
        (void)fw_keyring_save(&s, &ring, NULL);
    }
    for (int i = 0; st != IOT_OK && i < 2; i++)
        if (f.created[i])
            unlink(i == 0 ? f.priv : f.pub);
    EVP_PKEY_free(key);
    fw_store_close(&s);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}

static cJSON *key_json(const fw_key *k)
{
    char id[FW_KEY_ID_HEX + 1], created[32], retired[32];
    iot_hex(k->id, sizeof(k->id), id);
    cli_format_time(k->created, created, sizeof(created));
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "key_id", id);
    cJSON_AddStringToObject(o, "created", created);
    cJSON_AddStringToObject(o, "state", k->retired ? "retired" : "trusted");
    if (k->retired) {
        cli_format_time(k->retired_at, retired, sizeof(retired));
        cJSON_AddStringToObject(o, "retired", retired);
    }
    return o;
}

static int print_keys_json(const fw_keyring *ring)
{
    iot_err err;
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < ring->n; i++) {
        cJSON *o = key_json(&ring->keys[i]);
        if (o == NULL || !cJSON_AddItemToArray(a, o)) {
            cJSON_Delete(o);
            cJSON_Delete(a);
            a = NULL;
        }
    }
    char *text = a == NULL ? NULL : cJSON_Print(a);
    cJSON_Delete(a);
    if (text == NULL) {
        iot_err_set(&err, IOT_ENOMEM, "out of memory formatting JSON");
        return cli_fail(&err);
    }
    puts(text);
    cJSON_free(text);
    return CLI_EXIT_OK;
}

static void print_keys_table(const fw_keyring *ring)
{
    printf("%-32s %-16s %-8s %-21s %s\n", "NAME", "KEY ID", "STATE", "CREATED", "RETIRED");
    for (size_t i = 0; i < ring->n; i++) {
        const fw_key *k = &ring->keys[i];
        char id[FW_KEY_ID_HEX + 1], created[32], retired[32] = "-";
        iot_hex(k->id, sizeof(k->id), id);
        cli_format_time(k->created, created, sizeof(created));
        if (k->retired)
            cli_format_time(k->retired_at, retired, sizeof(retired));
        printf("%-32s %-16s %-8s %-21s %s\n", k->name, id, k->retired ? "retired" : "trusted",
               created, retired);
    }
}

int cmd_firmware_key_list(cli_ctx *ctx, int argc, char **argv)
{
    const cli_command *self = cmd_find("firmware key", "list");
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool json = false;
    for (int c = cmd_getopt(argc, argv, opts); c != -1; c = cmd_getopt(argc, argv, opts)) {
        if (c == 'j')
            json = true;
        else if (c == 'h')
            return cli_help(self);
        else
            return cmd_bad_option(self, argc, argv, c);
    }
    if (optind != argc)
        return cli_usage(self, "unexpected argument '%s'", argv[optind]);
    iot_err err = {0};
    fw_store s;
    fw_keyring ring;
    int rc = CLI_EXIT_OK;
    iot_status st = fw_store_open(ctx, &s, false, &err);
    if (st == IOT_OK)
        st = fw_keyring_load(&s, &ring, &err);
    if (st != IOT_OK)
        goto out;
    if (json)
        rc = print_keys_json(&ring);
    else
        print_keys_table(&ring);
out:
    fw_store_close(&s);
    return st == IOT_OK ? rc : cli_fail(&err);
}

int cmd_firmware_key_retire(cli_ctx *ctx, int argc, char **argv)
{
    const char *name = NULL;
    int rc = parse_name(cmd_find("firmware key", "retire"), argc, argv, &name);
    if (rc != CLI_EXIT_OK)
        return rc < 0 ? CLI_EXIT_OK : rc;
    iot_err err = {0};
    fw_store s;
    fw_keyring ring;
    iot_status st = fw_store_open(ctx, &s, true, &err);
    if (st == IOT_OK)
        st = fw_keyring_load(&s, &ring, &err);
    if (st != IOT_OK)
        goto out;
    fw_key *k = fw_keyring_find(&ring, name);
    if (k == NULL) {
        st = iot_err_set(&err, IOT_ENOENT,
                         "no signing key '%s' in %s; 'iotctl firmware key list' shows the keys",
                         name, s.keyring);
        goto out;
    }
    if (k->retired) {
        char when[32];
        cli_format_time(k->retired_at, when, sizeof(when));
        st =
            iot_err_set(&err, IOT_ESTATE, "signing key '%s' was already retired on %s", name, when);
        goto out;
    }
    k->retired = true;
    k->retired_at = (int64_t)ctx->now;
    /* Trust goes first: once trusted-keys.pem is written, no verifier given
     * it accepts the key, whatever happens to the keyring after. */
    st = fw_trusted_export(&s, &ring, &err);
    if (st == IOT_OK)
        st = fw_keyring_save(&s, &ring, &err);
    if (st != IOT_OK)
        goto out;
    char id[FW_KEY_ID_HEX + 1];
    iot_hex(k->id, sizeof(k->id), id);
    printf("firmware signing key %s: retired (no longer trusted; its files are kept)\n", name);
    printf("  key ID       %s\n", id);
    printf("  trusted set  %s (%zu keys)\n", s.trusted, count_trusted(&ring));
    if (count_trusted(&ring) == 0)
        printf("  note         no key is trusted now: create one before the next release\n");
out:
    fw_store_close(&s);
    return st == IOT_OK ? CLI_EXIT_OK : cli_fail(&err);
}
