#include "fwstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "iot/fsutil.h"

#define KEYRING_MAX  (FW_KEYS_MAX * 160 + 256)
#define SEQUENCE_MAX 64

static iot_status store_paths(const cli_ctx *ctx, fw_store *s, iot_err *err)
{
    char *paths[] = {s->keys_dir, s->keyring, s->trusted, s->sequence, s->images};
    static const char *const names[] = {"keys", "keyring", "trusted-keys.pem", "sequence",
                                        "images"};
    iot_status st = cli_path(ctx, s->dir, "firmware", err);
    for (size_t i = 0; st == IOT_OK && i < sizeof(paths) / sizeof(paths[0]); i++)
        st = iot_path_join(paths[i], CLI_PATH_MAX, s->dir, names[i], err);
    return st;
}

/* One command at a time changes the store: two signers must never take
 * the same sequence number. */
static iot_status take_lock(fw_store *s, bool write, iot_err *err)
{
    char path[CLI_PATH_MAX];
    iot_status st = iot_path_join(path, sizeof(path), s->dir, "lock", err);
    if (st != IOT_OK)
        return st;
    if (!write && !iot_path_exists(path))
        return IOT_OK; /* nothing written yet: nothing to read half-written */
    s->lock_fd = open(path, (write ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return iot_err_set(err, IOT_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(s->lock_fd, write ? LOCK_EX : LOCK_SH) != 0)
        return iot_err_set(err, IOT_EBUSY, "cannot lock %s: %s", path, strerror(errno));
    return IOT_OK;
}

iot_status fw_store_open(const cli_ctx *ctx, fw_store *s, bool write, iot_err *err)
{
    memset(s, 0, sizeof(*s));
    s->lock_fd = -1;
    iot_status st = cli_check_pki(ctx, err);
    if (st != IOT_OK)
        return st;
    if (!iot_path_exists(ctx->dir))
        return iot_err_set(err, IOT_ENOENT,
                           "no PKI directory %s; create one with 'iotctl --dir %s pki init' or "
                           "point --dir at an existing PKI",
                           ctx->dir, ctx->dir);
    st = store_paths(ctx, s, err);
    if (st != IOT_OK)
        return st;
    st = iot_owner_mode_check("firmware directory", s->dir, false, err);
    if (st != IOT_OK && st != IOT_ENOENT)
        return st;
    if (write) {
        st = iot_mkdir_p(s->dir, 0700, err);
        if (st != IOT_OK)
            return st;
    } else if (!iot_path_exists(s->dir)) {
        return IOT_OK;
    }
    return take_lock(s, write, err);
}

void fw_store_close(fw_store *s)
{
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    s->lock_fd = -1;
}

static bool parse_hex(const char *hex, uint8_t *out, size_t len)
{
    if (strlen(hex) != 2 * len)
        return false;
    for (size_t i = 0; i < 2 * len; i++) {
        const char *d = strchr("0123456789abcdef", hex[i]);
        if (hex[i] == '\0' || d == NULL)
            return false;
        int v = (int)(d - "0123456789abcdef");
        out[i / 2] = (uint8_t)(i % 2 == 0 ? v << 4 : (out[i / 2] | v));
    }
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return false;
    *out = (int64_t)v;
    return true;
}

/* "NAME KEYID CREATED trusted|retired RETIRED_AT" */
static bool parse_key_line(char *line, fw_key *k)
{
    char *save = NULL;
    char *f[6];
    size_t n = 0;
    for (char *t = strtok_r(line, " ", &save); t != NULL && n < 6; t = strtok_r(NULL, " ", &save))
        f[n++] = t;
    if (n != 5 || !iot_id_is_valid(f[0]) || !parse_hex(f[1], k->id, sizeof(k->id)) ||
        !parse_i64(f[2], &k->created) || !parse_i64(f[4], &k->retired_at))
        return false;
    snprintf(k->name, sizeof(k->name), "%s", f[0]);
    k->retired = strcmp(f[3], "retired") == 0;
    return k->retired || (strcmp(f[3], "trusted") == 0 && k->retired_at == 0);
}

iot_status fw_keyring_load(const fw_store *s, fw_keyring *ring, iot_err *err)
{
    char *text = NULL, *save = NULL;
    size_t len = 0;
    unsigned lineno = 0;
    ring->n = 0;
    iot_status st = iot_file_read(s->keyring, KEYRING_MAX, &text, &len, err);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st != IOT_OK)
        return st;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        if (ring->n == FW_KEYS_MAX) {
            st =
                iot_err_set(err, IOT_ENOMEM, "%s holds more than %d keys", s->keyring, FW_KEYS_MAX);
            goto out;
        }
        if (!parse_key_line(line, &ring->keys[ring->n])) {
            st = iot_err_set(err, IOT_ECORRUPT,
                             "%s line %u is damaged; restore the file from a backup of the PKI "
                             "directory",
                             s->keyring, lineno);
            goto out;
        }
        ring->n++;
    }
out:
    free(text);
    return st;
}

iot_status fw_keyring_save(const fw_store *s, const fw_keyring *ring, iot_err *err)
{
    char buf[KEYRING_MAX];
    int n = snprintf(buf, sizeof(buf),
                     "# firmware signing keys: name, key ID, created, state, retired "
                     "(Unix seconds)\n");
    size_t used = (size_t)n;
    for (size_t i = 0; i < ring->n; i++) {
        const fw_key *k = &ring->keys[i];
        char id[FW_KEY_ID_HEX + 1];
        iot_hex(k->id, sizeof(k->id), id);
        n = snprintf(buf + used, sizeof(buf) - used, "%s %s %" PRId64 " %s %" PRId64 "\n", k->name,
                     id, k->created, k->retired ? "retired" : "trusted", k->retired_at);
        if (n < 0 || (size_t)n >= sizeof(buf) - used)
            return iot_err_set(err, IOT_ENOMEM, "the keyring does not fit in %zu bytes",
                               sizeof(buf));
        used += (size_t)n;
    }
    return iot_file_replace(s->keyring, buf, used, 0644, err);
}

fw_key *fw_keyring_find(fw_keyring *ring, const char *name)
{
    for (size_t i = 0; i < ring->n; i++)
        if (strcmp(ring->keys[i].name, name) == 0)
            return &ring->keys[i];
    return NULL;
}

const fw_key *fw_keyring_find_id(const fw_keyring *ring, const uint8_t id[IOTD_MANIFEST_KEY_ID_LEN])
{
    for (size_t i = 0; i < ring->n; i++)
        if (memcmp(ring->keys[i].id, id, IOTD_MANIFEST_KEY_ID_LEN) == 0)
            return &ring->keys[i];
    return NULL;
}

iot_status fw_key_path(const fw_store *s, const char *name, bool private_key, char *buf,
                       iot_err *err)
{
    char file[IOT_ID_MAX + 8];
    snprintf(file, sizeof(file), "%s%s", name, private_key ? ".key" : ".pub");
    return iot_path_join(buf, CLI_PATH_MAX, s->keys_dir, file, err);
}

/* Appends the trusted key k's public key file to buf; its ID is checked
 * against the keyring's so that a replaced file is not trusted. */
static iot_status append_pub(const fw_store *s, const fw_key *k, char *buf, size_t cap,
                             size_t *used, iot_err *err)
{
    char path[CLI_PATH_MAX];
    char *pem = NULL;
    size_t len = 0;
    iot_status st = fw_key_path(s, k->name, false, path, err);
    if (st != IOT_OK)
        return st;
    st = iot_file_read(path, 4096, &pem, &len, err);
    if (st != IOT_OK)
        return st;
    if (len > cap - *used)
        st = iot_err_set(err, IOT_ENOMEM, "the trusted keys do not fit in %zu bytes", cap);
    else
        memcpy(buf + *used, pem, len);
    *used += st == IOT_OK ? len : 0;
    free(pem);
    return st;
}

iot_status fw_trusted_export(const fw_store *s, const fw_keyring *ring, iot_err *err)
{
    size_t cap = IOT_MANIFEST_KEYS_FILE_MAX, used = 0;
    char *buf = malloc(cap);
    iotd_manifest_key rows[FW_KEYS_MAX];
    size_t n = 0;
    char tmp[CLI_PATH_MAX];
    iot_status st = buf == NULL ? iot_err_set(err, IOT_ENOMEM, "out of memory") : IOT_OK;
    for (size_t i = 0; st == IOT_OK && i < ring->n; i++)
        if (!ring->keys[i].retired)
            st = append_pub(s, &ring->keys[i], buf, cap, &used, err);
    if (st != IOT_OK)
        goto out;
    /* Checked before it is installed: every key parses, and each is the
     * key the keyring names. */
    st = iot_path_join(tmp, sizeof(tmp), s->dir, ".trusted-keys.check", err);
    if (st != IOT_OK)
        goto out;
    st = iot_file_replace(tmp, buf, used, 0600, err);
    if (st != IOT_OK)
        goto out;
    st = iot_manifest_keys_load(tmp, rows, FW_KEYS_MAX, &n, err);
    unlink(tmp);
    for (size_t i = 0; st == IOT_OK && i < n; i++)
        if (fw_keyring_find_id(ring, rows[i].id) == NULL)
            st = iot_err_set(err, IOT_ECORRUPT,
                             "a public key in %s is not the one its keyring entry names; restore "
                             "the file from a backup",
                             s->keys_dir);
    if (st != IOT_OK)
        goto out;
    st = iot_file_replace(s->trusted, buf, used, 0644, err);
out:
    free(buf);
    return st;
}

iot_status fw_trusted_load(const fw_store *s, iotd_manifest_key *keys, size_t *n, iot_err *err)
{
    *n = 0;
    if (!iot_path_exists(s->trusted))
        return IOT_OK;
    return iot_manifest_keys_load(s->trusted, keys, FW_KEYS_MAX, n, err);
}

iot_status fw_sequence_last(const fw_store *s, uint64_t *last, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    *last = 0;
    iot_status st = iot_file_read(s->sequence, SEQUENCE_MAX, &text, &len, err);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st != IOT_OK)
        return st;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || strcmp(end, "\n") != 0 || text[0] == '-' || v > INT64_MAX)
        st = iot_err_set(err, IOT_ECORRUPT,
                         "%s is damaged; it must hold the last sequence number signed: restore it "
                         "(never lower) from a backup or from the highest manifest released",
                         s->sequence);
    else
        *last = (uint64_t)v;
    free(text);
    return st;
}

iot_status fw_sequence_record(const fw_store *s, uint64_t seq, iot_err *err)
{
    char buf[SEQUENCE_MAX];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", seq);
    return iot_file_replace(s->sequence, buf, (size_t)n, 0644, err);
}
