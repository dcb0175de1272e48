/* The operators file's lines (operators.h). */
#include "operators.h"

#include <stdlib.h>
#include <string.h>

#include "iot/identity.h"

#define LINE_MAX_LEN (IOT_ID_MAX + 1 + IC_PWHASH_MAX + 2)

typedef struct line_view {
    char name[IOT_ID_MAX + 1];
    char hash[IC_PWHASH_MAX];
} line_view;

/* Splits "NAME HASH" into v; false if malformed. */
static bool split_line(const char *p, size_t n, line_view *v)
{
    const char *sp = memchr(p, ' ', n);
    if (sp == NULL)
        return false;
    size_t nl = (size_t)(sp - p), hl = n - nl - 1;
    if (nl > IOT_ID_MAX || hl >= IC_PWHASH_MAX)
        return false;
    memcpy(v->name, p, nl);
    v->name[nl] = '\0';
    memcpy(v->hash, sp + 1, hl);
    v->hash[hl] = '\0';
    return iot_id_is_valid(v->name) && ic_pwhash_valid(v->hash);
}

iot_status ic_operators_foreach(const char *text, size_t len, ic_operator_fn fn, void *ctx,
                                iot_err *err)
{
    iot_status st = IOT_OK;
    size_t pos = 0;
    unsigned no = 0;
    char(*names)[IOT_ID_MAX + 1] = NULL;
    size_t n_names = 0;
    if (len > IC_OPERATORS_FILE_MAX)
        return iot_err_set(err, IOT_ECORRUPT, "operators file larger than %d bytes",
                           IC_OPERATORS_FILE_MAX);
    names = calloc(len / 8 + 1, sizeof(*names));
    if (names == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    while (pos < len && st == IOT_OK) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        line_view v;
        no++;
        if (n == 0 || text[pos] == '#') {
            pos += n + 1;
            continue;
        }
        if (!split_line(text + pos, n, &v)) {
            st = iot_err_set(err, IOT_ECORRUPT, "operators file, line %u: not NAME HASH", no);
            goto out;
        }
        for (size_t i = 0; i < n_names; i++)
            if (strcmp(names[i], v.name) == 0) {
                st = iot_err_set(err, IOT_ECORRUPT, "operators file, line %u: %s given twice", no,
                                 v.name);
                goto out;
            }
        memcpy(names[n_names++], v.name, sizeof(v.name));
        if (fn(v.name, v.hash, ctx) != 0)
            goto out;
        pos += n + 1;
    }
out:
    free(names);
    return st;
}

typedef struct find_ctx {
    const char *name;
    char *hash;
    bool found;
} find_ctx;

static int find_one(const char *name, const char *hash, void *ctx)
{
    find_ctx *f = ctx;
    if (strcmp(name, f->name) != 0)
        return 0;
    memcpy(f->hash, hash, strlen(hash) + 1);
    f->found = true;
    return 1;
}

iot_status ic_operators_find(const char *text, size_t len, const char *name,
                             char hash[IC_PWHASH_MAX], iot_err *err)
{
    find_ctx f = {.name = name, .hash = hash, .found = false};
    iot_status st = ic_operators_foreach(text, len, find_one, &f, err);
    if (st != IOT_OK)
        return st;
    if (!f.found)
        return iot_err_set(err, IOT_ENOENT, "no operator %s", name);
    return IOT_OK;
}

typedef struct rewrite_ctx {
    const char *name;
    const char *hash; /* NULL: remove */
    char *buf;
    size_t len, cap;
    bool found;
} rewrite_ctx;

static void append(rewrite_ctx *w, const char *name, const char *hash)
{
    size_t nl = strlen(name), hl = strlen(hash);
    memcpy(w->buf + w->len, name, nl);
    w->buf[w->len + nl] = ' ';
    memcpy(w->buf + w->len + nl + 1, hash, hl);
    w->buf[w->len + nl + 1 + hl] = '\n';
    w->len += nl + hl + 2;
    w->buf[w->len] = '\0';
}

static int rewrite_one(const char *name, const char *hash, void *ctx)
{
    rewrite_ctx *w = ctx;
    if (strcmp(name, w->name) != 0) {
        append(w, name, hash);
        return 0;
    }
    w->found = true;
    if (w->hash != NULL)
        append(w, name, w->hash);
    return 0;
}

static iot_status rewrite(const char *text, size_t len, rewrite_ctx *w, iot_err *err)
{
    /* every line is rewritten at most as long as NAME HASH\n */
    w->cap = len + LINE_MAX_LEN + 1;
    w->buf = malloc(w->cap);
    if (w->buf == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    w->buf[0] = '\0';
    iot_status st = ic_operators_foreach(text, len, rewrite_one, w, err);
    if (st != IOT_OK) {
        free(w->buf);
        w->buf = NULL;
    }
    return st;
}

iot_status ic_operators_set(const char *text, size_t len, const char *name, const char *hash,
                            bool replace, char **out, size_t *out_len, iot_err *err)
{
    if (!iot_id_is_valid(name))
        return iot_err_set(err, IOT_EINVAL,
                           "operator name '%s' breaks the name rule (1-64 of [A-Za-z0-9._-])",
                           name);
    if (!ic_pwhash_valid(hash))
        return iot_err_set(err, IOT_EINVAL, "not a password hash");
    rewrite_ctx w = {.name = name, .hash = hash};
    iot_status st = rewrite(text, len, &w, err);
    if (st != IOT_OK)
        return st;
    if (w.found && !replace) {
        free(w.buf);
        return iot_err_set(err, IOT_EEXIST, "operator %s exists", name);
    }
    if (!w.found)
        append(&w, name, hash);
    *out = w.buf;
    *out_len = w.len;
    return IOT_OK;
}

iot_status ic_operators_remove(const char *text, size_t len, const char *name, char **out,
                               size_t *out_len, iot_err *err)
{
    rewrite_ctx w = {.name = name, .hash = NULL};
    iot_status st = rewrite(text, len, &w, err);
    if (st != IOT_OK)
        return st;
    if (!w.found) {
        free(w.buf);
        return iot_err_set(err, IOT_ENOENT, "no operator %s", name);
    }
    *out = w.buf;
    *out_len = w.len;
    return IOT_OK;
}
