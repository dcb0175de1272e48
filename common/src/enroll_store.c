/* The registry's enrollment tables: tokens (kept as hashes) and the first
 * enrollments, with the operator's decisions. SQL only; the rules that
 * decide what a request gets are in enroll.c. */
#include "enroll_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "registry_internal.h"

#define TOKEN_COLUMNS                                                                              \
    "SELECT id, device, created, expires, used_at, revoked_at, serial FROM tokens "
#define ENROLL_COLUMNS                                                                             \
    "SELECT device, method, auth, spki, peer, requested, decided, state, serial FROM enrollments "

static const char *const STATE_NAMES[] = {
    [IOT_ENROLL_PENDING] = "pending",
    [IOT_ENROLL_APPROVED] = "approved",
    [IOT_ENROLL_DENIED] = "denied",
    [IOT_ENROLL_ISSUED] = "issued",
};

const char *iot_enroll_state_name(iot_enroll_state state)
{
    return (unsigned)state < sizeof(STATE_NAMES) / sizeof(STATE_NAMES[0]) ? STATE_NAMES[state]
                                                                          : "?";
}

static iot_enroll_state state_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof(STATE_NAMES) / sizeof(STATE_NAMES[0]); i++)
        if (strcmp(s, STATE_NAMES[i]) == 0)
            return (iot_enroll_state)i;
    return IOT_ENROLL_DENIED; /* the CHECK constraint admits nothing else */
}

static void token_row(sqlite3_stmt *st, iot_token_record *t)
{
    memset(t, 0, sizeof(*t));
    iot__registry_text(t->id, sizeof(t->id), st, 0);
    iot__registry_text(t->device, sizeof(t->device), st, 1);
    t->created = sqlite3_column_int64(st, 2);
    t->expires = sqlite3_column_int64(st, 3);
    t->used_at = sqlite3_column_int64(st, 4);
    t->revoked_at = sqlite3_column_int64(st, 5);
    iot__registry_text(t->serial, sizeof(t->serial), st, 6);
}

static void enroll_row(sqlite3_stmt *st, iot_enroll_record *e)
{
    memset(e, 0, sizeof(*e));
    iot__registry_text(e->device, sizeof(e->device), st, 0);
    iot__registry_text(e->method, sizeof(e->method), st, 1);
    iot__registry_text(e->auth, sizeof(e->auth), st, 2);
    iot__registry_text(e->spki, sizeof(e->spki), st, 3);
    iot__registry_text(e->peer, sizeof(e->peer), st, 4);
    e->requested = sqlite3_column_int64(st, 5);
    e->decided = sqlite3_column_int64(st, 6);
    char state[16];
    iot__registry_text(state, sizeof(state), st, 7);
    e->state = state_from_name(state);
    iot__registry_text(e->serial, sizeof(e->serial), st, 8);
}

/* Binds each argument in turn: text for 's', int64 for 'i'. */
static void bind_args(sqlite3_stmt *st, const char *types, const char *const *texts,
                      const int64_t *nums)
{
    for (int i = 0; types[i] != '\0'; i++) {
        if (types[i] == 's')
            sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, i + 1, nums[i]);
    }
}

/* Runs one change; *changes is how many rows it changed. */
static iot_status change(iot_registry *reg, const char *sql, const char *types,
                         const char *const *texts, const int64_t *nums, const char *doing,
                         int *changes, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_args(st, types, texts, nums);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return iot__registry_fail(reg, rc, doing, err);
    if (changes != NULL)
        *changes = sqlite3_changes(reg->db);
    return IOT_OK;
}

iot_status iot__token_find(iot_registry *reg, const char *hash, iot_token_record *out, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(reg->db, TOKEN_COLUMNS "WHERE hash = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        token_row(st, out);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT, "no such token");
    else
        s = iot__registry_fail(reg, rc, "looking up a token", err);
    sqlite3_finalize(st);
    return s;
}

iot_status iot__token_live_for(iot_registry *reg, const char *device, int64_t now, bool *live,
                               iot_err *err)
{
    static const char sql[] = "SELECT 1 FROM tokens WHERE device = ?1 AND used_at = 0 AND"
                              " revoked_at = 0 AND expires > ?2";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return iot__registry_fail(reg, rc, "looking up tokens", err);
    *live = rc == SQLITE_ROW;
    return IOT_OK;
}

iot_status iot__token_insert(iot_registry *reg, const iot_token_record *t, const char *hash,
                             iot_err *err)
{
    const char *texts[] = {t->id, t->device, hash, NULL, NULL};
    const int64_t nums[] = {0, 0, 0, t->created, t->expires};
    return change(reg,
                  "INSERT INTO tokens (id, device, hash, created, expires) VALUES (?1, ?2, ?3, ?4,"
                  " ?5)",
                  "sssii", texts, nums, "storing a token", NULL, err);
}

iot_status iot__token_mark_used(iot_registry *reg, const char *id, int64_t now, iot_err *err)
{
    const char *texts[] = {id, NULL};
    const int64_t nums[] = {0, now};
    return change(reg, "UPDATE tokens SET used_at = ?2 WHERE id = ?1", "si", texts, nums,
                  "redeeming a token", NULL, err);
}

iot_status iot__token_set_serial(iot_registry *reg, const char *id, const char *serial,
                                 iot_err *err)
{
    const char *texts[] = {id, serial};
    return change(reg, "UPDATE tokens SET serial = ?2 WHERE id = ?1", "ss", texts, NULL,
                  "recording a token's certificate", NULL, err);
}

iot_status iot_token_revoke(iot_registry *reg, const char *id, int64_t now, iot_err *err)
{
    iot_status s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    const char *texts[] = {id, NULL};
    const int64_t nums[] = {0, now};
    int changed = 0;
    s = change(reg,
               "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND used_at = 0 AND"
               " revoked_at = 0",
               "si", texts, nums, "revoking a token", &changed, err);
    if (s != IOT_OK || changed > 0)
        return s;
    iot_token_record t;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, TOKEN_COLUMNS "WHERE id = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        token_row(st, &t);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return iot_err_set(err, IOT_ENOENT, "no token %s in registry %s (see 'iotctl token list')",
                           id, reg->path);
    if (rc != SQLITE_ROW)
        return iot__registry_fail(reg, rc, "revoking a token", err);
    return iot_err_set(err, IOT_ESTATE, "token %s was already %s", id,
                       t.revoked_at != 0 ? "revoked" : "used");
}

iot_status iot__enroll_get(iot_registry *reg, const char *device, iot_enroll_record *out,
                           iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(reg->db, ENROLL_COLUMNS "WHERE device = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        enroll_row(st, out);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT, "no enrollment request for '%s' in registry %s",
                        iot_id_is_valid(device) ? device : "?", reg->path);
    else
        s = iot__registry_fail(reg, rc, "looking up an enrollment", err);
    sqlite3_finalize(st);
    return s;
}

iot_status iot__enroll_put(iot_registry *reg, const iot_enroll_record *e, iot_err *err)
{
    const char *texts[] = {e->device, e->method, e->auth, e->spki,
                           e->peer,   NULL,      NULL,    iot_enroll_state_name(e->state),
                           e->serial};
    const int64_t nums[] = {0, 0, 0, 0, 0, e->requested, e->decided, 0, 0};
    return change(reg,
                  "INSERT OR REPLACE INTO enrollments (device, method, auth, spki, peer,"
                  " requested, decided, state, serial) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                  "sssssiiss", texts, nums, "recording an enrollment", NULL, err);
}

iot_status iot_enroll_foreach(iot_registry *reg, iot_enroll_fn fn, void *ctx, iot_err *err)
{
    if (reg->version < 5)
        return IOT_OK;
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(
        reg->db, ENROLL_COLUMNS "ORDER BY state <> 'pending', requested DESC, device", -1, &st,
        NULL);
    if (rc != SQLITE_OK) {
        s = iot__registry_fail(reg, rc, "listing enrollments", err);
        goto out;
    }
    for (rc = sqlite3_step(st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        iot_enroll_record e;
        enroll_row(st, &e);
        int stop = fn(&e, ctx);
        if (stop != 0) {
            s = (iot_status)stop;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        s = iot__registry_fail(reg, rc, "listing enrollments", err);
out:
    sqlite3_finalize(st);
    return s;
}

iot_status iot_enroll_decide(iot_registry *reg, const char *device, bool approve, int64_t now,
                             iot_err *err)
{
    iot_status s = iot__registry_need(reg, 5, err);
    if (s != IOT_OK)
        return s;
    s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    iot_enroll_record e;
    s = iot__enroll_get(reg, device, &e, err);
    if (s != IOT_OK)
        goto out;
    if (e.state != IOT_ENROLL_PENDING) {
        s = iot_err_set(err, IOT_ESTATE, "the enrollment of '%s' is %s, not pending", e.device,
                        iot_enroll_state_name(e.state));
        goto out;
    }
    e.state = approve ? IOT_ENROLL_APPROVED : IOT_ENROLL_DENIED;
    e.decided = now;
    s = iot__enroll_put(reg, &e, err);
    if (s == IOT_OK)
        s = iot_registry_commit(reg, err);
out:
    if (s != IOT_OK)
        iot_registry_rollback(reg);
    return s;
}

/* Every token with its hash, in the order `order_by` gives. */
static iot_status walk_tokens(iot_registry *reg, const char *order_by, iot_token_hash_fn fn,
                              void *ctx, iot_err *err)
{
    if (reg->version < 5)
        return IOT_OK; /* no tokens before schema 5 */
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id, device, created, expires, used_at, revoked_at, serial, hash FROM tokens "
             "ORDER BY %s",
             order_by);
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        s = iot__registry_fail(reg, rc, "listing tokens", err);
        goto out;
    }
    for (rc = sqlite3_step(st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        iot_token_record t;
        char hash[65];
        token_row(st, &t);
        iot__registry_text(hash, sizeof(hash), st, 7);
        int stop = fn(&t, hash, ctx);
        if (stop != 0) {
            s = (iot_status)stop;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        s = iot__registry_fail(reg, rc, "listing tokens", err);
out:
    sqlite3_finalize(st);
    return s;
}

typedef struct without_hash {
    iot_token_fn fn;
    void *ctx;
} without_hash;

static int drop_hash(const iot_token_record *rec, const char *hash, void *ctx)
{
    (void)hash;
    const without_hash *w = ctx;
    return w->fn(rec, w->ctx);
}

iot_status iot_token_foreach(iot_registry *reg, iot_token_fn fn, void *ctx, iot_err *err)
{
    without_hash w = {fn, ctx};
    return walk_tokens(reg, "created DESC, id", drop_hash, &w, err);
}

iot_status iot_token_foreach_hash(iot_registry *reg, iot_token_hash_fn fn, void *ctx, iot_err *err)
{
    return walk_tokens(reg, "created, id", fn, ctx, err);
}
