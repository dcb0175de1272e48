#include "iot/rollout.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "iot/fsutil.h"

/* 'IOTO' in the SQLite header: tells a rollout file from any other database. */
#define ROLLOUT_APP_ID         0x494f544f
#define ROLLOUT_SCHEMA_VERSION 1
#define DEFAULT_BUSY_MS        2000
#define CAP_WINDOW_S           60
#define LIST_TEXT_MAX          ((IOT_ROLLOUT_WAVES_MAX + 1) * 8 + 1) /* 11 numbers to 1000000 */

struct iot_rollouts {
    sqlite3 *db;
    char path[512];
};

static const char SCHEMA[] =
    "CREATE TABLE rollouts ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  state TEXT NOT NULL CHECK (state IN ('running','paused','aborted','completed')),"
    "  pause_reason TEXT NOT NULL DEFAULT '',"
    "  security INTEGER NOT NULL,"
    "  canary INTEGER NOT NULL,"
    "  waves TEXT NOT NULL,"
    "  wave_sizes TEXT NOT NULL,"
    "  max_per_minute INTEGER NOT NULL,"
    "  success_percent INTEGER NOT NULL,"
    "  failure_percent INTEGER NOT NULL,"
    "  min_reports INTEGER NOT NULL,"
    "  seed INTEGER NOT NULL,"
    "  current_wave INTEGER NOT NULL,"
    "  manifest TEXT NOT NULL,"
    "  sequence INTEGER NOT NULL,"
    "  version TEXT NOT NULL,"
    "  class_id TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  image_uri TEXT NOT NULL,"
    "  image_size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  judged_since INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX rollouts_sequence ON rollouts (sequence);"
    "CREATE TABLE rollout_devices ("
    "  rollout_id INTEGER NOT NULL REFERENCES rollouts (id),"
    "  device TEXT NOT NULL,"
    "  wave INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','offered','downloading','downloaded',"
    "    'installing','confirmed','failed','rolled_back')),"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  offset_bytes INTEGER NOT NULL DEFAULT 0,"
    "  offered_at INTEGER NOT NULL DEFAULT 0,"
    "  updated INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (rollout_id, device));"
    "CREATE INDEX rollout_devices_device ON rollout_devices (device);"
    /* The per-minute cap looks at the devices started in the last minute. */
    "CREATE INDEX rollout_devices_offered ON rollout_devices (rollout_id, offered_at);"
    /* Devices per state, kept by the file itself: judging a report reads
     * 8 rows, not every device of the rollout. */
    "CREATE TABLE rollout_counts ("
    "  rollout_id INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (rollout_id, state)) WITHOUT ROWID;"
    "CREATE TRIGGER rollout_devices_added AFTER INSERT ON rollout_devices BEGIN"
    "  INSERT INTO rollout_counts VALUES (NEW.rollout_id, NEW.state, 1)"
    "    ON CONFLICT (rollout_id, state) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER rollout_devices_moved AFTER UPDATE OF state ON rollout_devices"
    " WHEN OLD.state <> NEW.state BEGIN"
    "  UPDATE rollout_counts SET n = n - 1 WHERE rollout_id = OLD.rollout_id AND state = OLD.state;"
    "  INSERT INTO rollout_counts VALUES (NEW.rollout_id, NEW.state, 1)"
    "    ON CONFLICT (rollout_id, state) DO UPDATE SET n = n + 1;"
    " END;";

#define FINAL_STATES "('confirmed','failed','rolled_back')"

static const char *const ROLLOUT_STATES[] = {"running", "paused", "aborted", "completed"};
static const char *const DEV_STATES[IOT_RDEV_STATE_COUNT] = {
    "pending",    "offered",   "downloading", "downloaded",
    "installing", "confirmed", "failed",      "rolled_back"};

#define N_ROLLOUT_STATES (sizeof(ROLLOUT_STATES) / sizeof(ROLLOUT_STATES[0]))

const char *iot_rollout_state_name(iot_rollout_state s)
{
    return (unsigned)s < N_ROLLOUT_STATES ? ROLLOUT_STATES[s] : "?";
}

const char *iot_rollout_dev_state_name(iot_rollout_dev_state s)
{
    return (unsigned)s < IOT_RDEV_STATE_COUNT ? DEV_STATES[s] : "?";
}

iot_status iot_rollout_dev_state_parse(const char *name, iot_rollout_dev_state *out)
{
    for (int s = IOT_RDEV_DOWNLOADING; name != NULL && s < IOT_RDEV_STATE_COUNT; s++) {
        if (strcmp(name, DEV_STATES[s]) == 0) {
            *out = (iot_rollout_dev_state)s;
            return IOT_OK;
        }
    }
    return IOT_EINVAL;
}

static bool is_final(iot_rollout_dev_state s)
{
    return s == IOT_RDEV_CONFIRMED || s == IOT_RDEV_FAILED || s == IOT_RDEV_ROLLED_BACK;
}

/* The index of text in names[0..n), or -1. */
static int name_index(const char *const *names, size_t n, const unsigned char *text)
{
    for (size_t i = 0; text != NULL && i < n; i++)
        if (strcmp(names[i], (const char *)text) == 0)
            return (int)i;
    return -1;
}

/* ---- SQLite glue ------------------------------------------------------------- */

/* Copies src with every byte outside printable ASCII replaced by '?': text
 * from the file must not put control characters into a one-line message. */
static void printable(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < size; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

static iot_status db_fail(const iot_rollouts *r, int rc, const char *doing, iot_err *err)
{
    int base = rc & 0xff;
    char detail[256];
    printable(detail, sizeof(detail), r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
    if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
        return iot_err_set(err, IOT_EBUSY,
                           "rollout file %s is locked by another process while %s; try again "
                           "when it has finished",
                           r->path, doing);
    if (base == SQLITE_NOTADB || base == SQLITE_CORRUPT)
        return iot_err_set(err, IOT_ECORRUPT,
                           "rollout file %s is corrupt or not a database (%s); restore it from a "
                           "backup",
                           r->path, detail);
    if (base == SQLITE_READONLY || base == SQLITE_PERM || base == SQLITE_CANTOPEN)
        return iot_err_set(err, IOT_EPERM, "rollout file %s cannot be %s: %s", r->path,
                           base == SQLITE_CANTOPEN ? "opened" : "written", detail);
    return iot_err_set(err, IOT_EIO, "rollout file %s: %s failed: %s", r->path, doing, detail);
}

static iot_status exec(iot_rollouts *r, const char *sql, const char *doing, iot_err *err)
{
    int rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? IOT_OK : db_fail(r, rc, doing, err);
}

static iot_status prepare(iot_rollouts *r, const char *sql, sqlite3_stmt **st, const char *doing,
                          iot_err *err)
{
    int rc = sqlite3_prepare_v2(r->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? IOT_OK : db_fail(r, rc, doing, err);
}

/* Runs a prepared statement that returns no row, then finalizes it. */
static iot_status step_done(iot_rollouts *r, sqlite3_stmt *st, const char *doing, iot_err *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : db_fail(r, rc, doing, err);
}

/* Every change is one transaction that takes the write lock at once, so
 * a concurrent writer is reported before any work is done. */
static iot_status begin_write(iot_rollouts *r, const char *doing, iot_err *err)
{
    return exec(r, "BEGIN IMMEDIATE", doing, err);
}

/* Reads of more than one statement see one snapshot. */
static iot_status begin_read(iot_rollouts *r, const char *doing, iot_err *err)
{
    return exec(r, "BEGIN", doing, err);
}

/* Commits on success, rolls back otherwise; returns st (or the commit's
 * failure). */
static iot_status finish(iot_rollouts *r, iot_status st, const char *doing, iot_err *err)
{
    if (st == IOT_OK)
        st = exec(r, "COMMIT", doing, err);
    if (st != IOT_OK && !sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static void copy_col(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", s ? (const char *)s : "");
}

static uint32_t col_u32(sqlite3_stmt *st, int col)
{
    int64_t v = sqlite3_column_int64(st, col);
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ---- opening ----------------------------------------------------------------- */

static iot_status pragma_int(iot_rollouts *r, const char *pragma, int64_t *out, iot_err *err)
{
    char sql[64];
    sqlite3_stmt *st = NULL;
    snprintf(sql, sizeof(sql), "PRAGMA %s", pragma);
    iot_status s = prepare(r, sql, &st, "reading the header", err);
    if (s != IOT_OK)
        return s;
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? IOT_OK : db_fail(r, rc, "reading the header", err);
}

/* Whether the file is still empty: no schema, no application id. */
static iot_status is_blank(iot_rollouts *r, bool *blank, iot_err *err)
{
    int64_t app_id = 0, objects = 0;
    iot_status st = pragma_int(r, "application_id", &app_id, err);
    sqlite3_stmt *q = NULL;
    if (st == IOT_OK)
        st = prepare(r, "SELECT COUNT(*) FROM sqlite_master", &q, "reading the schema", err);
    if (st != IOT_OK)
        return st;
    int rc = sqlite3_step(q);
    objects = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    *blank = app_id == 0 && objects == 0;
    return rc == SQLITE_ROW ? IOT_OK : db_fail(r, rc, "reading the schema", err);
}

/* Creates the schema in an empty file; a file another process set up
 * meanwhile is left as it is. */
static iot_status init_schema(iot_rollouts *r, iot_err *err)
{
    bool blank = false;
    iot_status st = begin_write(r, "creating the schema", err);
    if (st == IOT_OK)
        st = is_blank(r, &blank, err);
    if (st == IOT_OK && blank) {
        char sql[128];
        snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                 ROLLOUT_APP_ID, ROLLOUT_SCHEMA_VERSION);
        st = exec(r, sql, "creating the schema", err);
        if (st == IOT_OK)
            st = exec(r, SCHEMA, "creating the schema", err);
    }
    return finish(r, st, "creating the schema", err);
}

static iot_status check_header(iot_rollouts *r, iot_err *err)
{
    int64_t app_id = 0, version = 0;
    iot_status st = pragma_int(r, "application_id", &app_id, err);
    if (st == IOT_OK)
        st = pragma_int(r, "user_version", &version, err);
    if (st != IOT_OK)
        return st;
    if (app_id != ROLLOUT_APP_ID)
        return iot_err_set(err, IOT_ECORRUPT,
                           "%s is not a rollout file (application id %#x); give the path of the "
                           "rollout file (PKI/rollouts.db)",
                           r->path, (unsigned)app_id);
    if (version != ROLLOUT_SCHEMA_VERSION)
        return iot_err_set(err, IOT_ECORRUPT,
                           "rollout file %s has schema version %" PRId64
                           "; this program understands %d",
                           r->path, version, ROLLOUT_SCHEMA_VERSION);
    return IOT_OK;
}

/* An empty file is a rollout file still being made: the creator makes
 * the schema; anyone else finds no rollouts yet. */
static iot_status setup_file(iot_rollouts *r, bool create, iot_err *err)
{
    int64_t pages = 0;
    iot_status st = pragma_int(r, "page_count", &pages, err);
    if (st != IOT_OK)
        return st;
    if (pages == 0 && !create)
        return iot_err_set(err, IOT_ENOENT, "rollout file %s is empty: no rollout was created yet",
                           r->path);
    if (pages == 0)
        st = init_schema(r, err);
    return st == IOT_OK ? check_header(r, err) : st;
}

/* The new file is made 0600 before SQLite opens it: its journal files
 * take the same mode. */
static iot_status make_file(const char *path, iot_err *err)
{
    iot_err made;
    iot_status st = iot_file_create(path, "", 0, 0600, &made);
    if (st == IOT_EEXIST)
        return IOT_OK; /* another process made it first */
    if (st != IOT_OK && err != NULL)
        *err = made;
    return st;
}

static iot_status connect_file(iot_rollouts *r, bool write, bool create, iot_err *err)
{
    int flags = write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    int rc = sqlite3_open_v2(r->path, &r->db, flags, NULL);
    if (rc != SQLITE_OK)
        return db_fail(r, rc, "opening", err);
    sqlite3_busy_timeout(r->db, DEFAULT_BUSY_MS);
    sqlite3_extended_result_codes(r->db, 1);
    iot_status st = setup_file(r, create, err);
    /* WAL: the gateway reads while iotctl writes. Set only once the file
     * is known to be ours. */
    if (st == IOT_OK && write)
        st = exec(r, "PRAGMA journal_mode=WAL", "setting the journal mode", err);
    if (st == IOT_OK)
        st = exec(r, "PRAGMA synchronous=FULL", "setting the synchronous mode", err);
    return st;
}

iot_status iot_rollouts_open(const char *path, int mode, iot_rollouts **out, iot_err *err)
{
    *out = NULL;
    bool write = (mode & IOT_ROLLOUTS_WRITE) != 0;
    bool create = write && (mode & IOT_ROLLOUTS_CREATE) != 0;
    iot_status st = IOT_OK;
    if (!create && !iot_path_exists(path))
        return iot_err_set(err, IOT_ENOENT,
                           "rollout file %s does not exist (no rollout was created yet; "
                           "'iotctl rollout create' makes it)",
                           path);
    iot_rollouts *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory opening %s", path);
    if (snprintf(r->path, sizeof(r->path), "%s", path) >= (int)sizeof(r->path)) {
        st = iot_err_set(err, IOT_EINVAL, "rollout file path %.64s... is too long", path);
        goto out;
    }
    if (create)
        st = make_file(path, err);
    if (st == IOT_OK)
        st = connect_file(r, write, create, err);
    if (st != IOT_OK)
        goto out;
    *out = r;
    r = NULL;
out:
    iot_rollouts_close(r);
    return st;
}

void iot_rollouts_close(iot_rollouts *r)
{
    if (r == NULL)
        return;
    sqlite3_close(r->db);
    free(r);
}

void iot_rollouts_set_busy_timeout(iot_rollouts *r, int ms)
{
    sqlite3_busy_timeout(r->db, ms);
}

/* ---- the plan ---------------------------------------------------------------- */

static iot_status check_waves(const iot_rollout_plan *p, iot_err *err)
{
    if (p->n_waves < 1 || p->n_waves > IOT_ROLLOUT_WAVES_MAX)
        return iot_err_set(err, IOT_EINVAL, "waves: %zu waves; give 1 to %d", p->n_waves,
                           IOT_ROLLOUT_WAVES_MAX);
    for (size_t i = 0; i < p->n_waves; i++) {
        unsigned prev = i > 0 ? p->waves[i - 1] : 0;
        if (p->waves[i] <= prev || p->waves[i] > 100)
            return iot_err_set(err, IOT_EINVAL,
                               "waves: wave %zu is %u%%; the cumulative percentages must "
                               "increase, each in 1..100",
                               i + 1, (unsigned)p->waves[i]);
    }
    if (p->waves[p->n_waves - 1] != 100)
        return iot_err_set(err, IOT_EINVAL,
                           "waves: the last wave is %u%%; it must be 100 (every device)",
                           (unsigned)p->waves[p->n_waves - 1]);
    return IOT_OK;
}

iot_status iot_rollout_plan_check(const iot_rollout_plan *plan, iot_err *err)
{
    if (memchr(plan->name, '\0', sizeof(plan->name)) == NULL)
        return iot_err_set(err, IOT_EINVAL, "rollout name is longer than %d characters",
                           IOT_ROLLOUT_NAME_MAX);
    iot_status st = iot_id_check("rollout name", plan->name, err);
    if (st != IOT_OK)
        return st;
    st = check_waves(plan, err);
    if (st != IOT_OK)
        return st;
    if (plan->success_percent < 1 || plan->success_percent > 100)
        return iot_err_set(err, IOT_EINVAL, "success percent %u is not in 1..100",
                           (unsigned)plan->success_percent);
    if (plan->failure_percent < 1 || plan->failure_percent > 100)
        return iot_err_set(err, IOT_EINVAL, "failure percent %u is not in 1..100",
                           (unsigned)plan->failure_percent);
    if (plan->canary > IOT_ROLLOUT_DEVICES_MAX || plan->min_reports > IOT_ROLLOUT_DEVICES_MAX)
        return iot_err_set(err, IOT_EINVAL, "%s %" PRIu32 " is above %d devices",
                           plan->canary > IOT_ROLLOUT_DEVICES_MAX ? "canary" : "min reports",
                           plan->canary > IOT_ROLLOUT_DEVICES_MAX ? plan->canary
                                                                  : plan->min_reports,
                           IOT_ROLLOUT_DEVICES_MAX);
    return IOT_OK;
}

/* "10,50,100": the plan's waves and the wave sizes as stored. */
static void list_text(const uint32_t *v, size_t n, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int k = snprintf(buf + used, size - used, "%s%" PRIu32, i ? "," : "", v[i]);
        used += k > 0 ? (size_t)k : 0;
    }
}

/* The stored list back; false if the text is not ours. */
static bool list_parse(const unsigned char *text, uint32_t *v, size_t max, size_t *n)
{
    const char *s = (const char *)text;
    *n = 0;
    while (s != NULL && *s >= '0' && *s <= '9' && *n < max) {
        char *end = NULL;
        unsigned long long x = strtoull(s, &end, 10);
        if (x > IOT_ROLLOUT_DEVICES_MAX || (*end != ',' && *end != '\0'))
            return false;
        v[(*n)++] = (uint32_t)x;
        s = *end == ',' ? end + 1 : end;
    }
    return s != NULL && *s == '\0' && *n > 0;
}

static bool waves_parse(const unsigned char *text, iot_rollout_plan *p)
{
    uint32_t v[IOT_ROLLOUT_WAVES_MAX];
    if (!list_parse(text, v, IOT_ROLLOUT_WAVES_MAX, &p->n_waves))
        return false;
    for (size_t i = 0; i < p->n_waves; i++) {
        if (v[i] > 100)
            return false;
        p->waves[i] = (uint8_t)v[i];
    }
    return true;
}

/* ---- reading a rollout ------------------------------------------------------- */

#define ROLLOUT_COLUMNS                                                                            \
    "SELECT id, name, state, pause_reason, security, canary, waves, max_per_minute,"               \
    " success_percent, failure_percent, min_reports, seed, current_wave, sequence, version,"       \
    " class_id, digest, image_size, created, updated, wave_sizes FROM rollouts "

static iot_status corrupt_row(const iot_rollouts *r, const char *name, const char *what,
                              iot_err *err)
{
    char safe[IOT_ROLLOUT_NAME_MAX + 1];
    printable(safe, sizeof(safe), name);
    return iot_err_set(err, IOT_ECORRUPT, "rollout file %s: rollout '%s' has a bad %s", r->path,
                       safe, what);
}

static void row_to_plan(sqlite3_stmt *st, iot_rollout_plan *p)
{
    copy_col(p->name, sizeof(p->name), st, 1);
    p->security = sqlite3_column_int(st, 4) != 0;
    p->canary = col_u32(st, 5);
    p->max_per_minute = col_u32(st, 7);
    p->success_percent = (uint8_t)sqlite3_column_int(st, 8);
    p->failure_percent = (uint8_t)sqlite3_column_int(st, 9);
    p->min_reports = col_u32(st, 10);
    p->seed = (uint64_t)sqlite3_column_int64(st, 11);
}

static iot_status row_to_info(const iot_rollouts *r, sqlite3_stmt *st, iot_rollout_info *info,
                              iot_err *err)
{
    memset(info, 0, sizeof(*info));
    info->id = sqlite3_column_int64(st, 0);
    row_to_plan(st, &info->plan);
    int state = name_index(ROLLOUT_STATES, N_ROLLOUT_STATES, sqlite3_column_text(st, 2));
    if (state < 0)
        return corrupt_row(r, info->plan.name, "state", err);
    info->state = (iot_rollout_state)state;
    copy_col(info->pause_reason, sizeof(info->pause_reason), st, 3);
    size_t n_sizes = 0;
    if (!waves_parse(sqlite3_column_text(st, 6), &info->plan) ||
        !list_parse(sqlite3_column_text(st, 20), info->wave_size, IOT_ROLLOUT_WAVES_MAX + 1,
                    &n_sizes) ||
        n_sizes != info->plan.n_waves + 1)
        return corrupt_row(r, info->plan.name, "wave list", err);
    info->current_wave = col_u32(st, 12);
    if (info->current_wave > info->plan.n_waves)
        return corrupt_row(r, info->plan.name, "current wave", err);
    info->sequence = (uint64_t)sqlite3_column_int64(st, 13);
    copy_col(info->version, sizeof(info->version), st, 14);
    copy_col(info->class_id, sizeof(info->class_id), st, 15);
    copy_col(info->digest, sizeof(info->digest), st, 16);
    info->image_size = col_u32(st, 17);
    info->created = sqlite3_column_int64(st, 18);
    info->updated = sqlite3_column_int64(st, 19);
    return IOT_OK;
}

/* Devices per state, from the counters. */
static iot_status load_counts(iot_rollouts *r, iot_rollout_info *info, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, "SELECT state, n FROM rollout_counts WHERE rollout_id = ?1", &st,
                           "counting devices", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, info->id);
    int rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        int state = name_index(DEV_STATES, IOT_RDEV_STATE_COUNT, sqlite3_column_text(st, 0));
        uint32_t n = col_u32(st, 1);
        if (state >= 0)
            info->count[state] = n;
        info->devices += n;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : db_fail(r, rc, "counting devices", err);
}

/* The rollout whose `column` (id or name) is key; IOT_ENOENT if none. */
static iot_status load_info(iot_rollouts *r, bool by_name, const char *name, int64_t id,
                            iot_rollout_info *info, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s =
        prepare(r, by_name ? ROLLOUT_COLUMNS "WHERE name = ?1" : ROLLOUT_COLUMNS "WHERE id = ?1",
                &st, "reading a rollout", err);
    if (s != IOT_OK)
        return s;
    if (by_name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        s = row_to_info(r, st, info, err);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT,
                        "no rollout '%s' in %s ('iotctl rollout status' lists them)",
                        by_name ? name : "?", r->path);
    else
        s = db_fail(r, rc, "reading a rollout", err);
    sqlite3_finalize(st);
    return s == IOT_OK ? load_counts(r, info, err) : s;
}

static iot_status load_by_name(iot_rollouts *r, const char *name, iot_rollout_info *info,
                               iot_err *err)
{
    if (name == NULL || !iot_id_is_valid(name))
        return iot_err_set(err, IOT_ENOENT,
                           "no rollout of that name in %s (a rollout name is "
                           "1-64 of [A-Za-z0-9._-], not starting with '.')",
                           r->path);
    return load_info(r, true, name, 0, info, err);
}

iot_status iot_rollout_get(iot_rollouts *r, const char *name, iot_rollout_info *out, iot_err *err)
{
    iot_status st = begin_read(r, "reading a rollout", err);
    if (st == IOT_OK)
        st = load_by_name(r, name, out, err);
    return finish(r, st, "reading a rollout", err);
}

static iot_status walk_rollouts(iot_rollouts *r, iot_rollout_fn fn, void *ctx, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, "SELECT id FROM rollouts ORDER BY id", &st, "listing rollouts", err);
    if (s != IOT_OK)
        return s;
    int rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW && s == IOT_OK; rc = sqlite3_step(st)) {
        iot_rollout_info info;
        s = load_info(r, false, NULL, sqlite3_column_int64(st, 0), &info, err);
        int stop = s == IOT_OK ? fn(&info, ctx) : 0;
        if (stop != 0)
            s = (iot_status)stop;
    }
    if (s == IOT_OK && rc != SQLITE_DONE)
        s = db_fail(r, rc, "listing rollouts", err);
    sqlite3_finalize(st);
    return s;
}

iot_status iot_rollout_foreach(iot_rollouts *r, iot_rollout_fn fn, void *ctx, iot_err *err)
{
    iot_status st = begin_read(r, "listing rollouts", err);
    if (st == IOT_OK)
        st = walk_rollouts(r, fn, ctx, err);
    /* A walk stopped by fn ends the read all the same. */
    iot_status done = finish(r, IOT_OK, "listing rollouts", err);
    return st != IOT_OK ? st : done;
}

static iot_status row_to_device(const iot_rollouts *r, sqlite3_stmt *st, iot_rollout_device *d,
                                iot_err *err)
{
    memset(d, 0, sizeof(*d));
    copy_col(d->device, sizeof(d->device), st, 0);
    d->wave = col_u32(st, 1);
    int state = name_index(DEV_STATES, IOT_RDEV_STATE_COUNT, sqlite3_column_text(st, 2));
    if (state < 0) {
        char safe[IOT_ID_MAX + 1];
        printable(safe, sizeof(safe), d->device);
        return iot_err_set(err, IOT_ECORRUPT, "rollout file %s: device '%s' has a bad state",
                           r->path, safe);
    }
    d->state = (iot_rollout_dev_state)state;
    copy_col(d->reason, sizeof(d->reason), st, 3);
    d->offset = col_u32(st, 4);
    d->offered_at = sqlite3_column_int64(st, 5);
    d->updated = sqlite3_column_int64(st, 6);
    return IOT_OK;
}

static iot_status walk_devices(iot_rollouts *r, int64_t id, iot_rollout_device_fn fn, void *ctx,
                               iot_err *err)
{
    static const char sql[] = "SELECT device, wave, state, reason, offset_bytes, offered_at,"
                              " updated FROM rollout_devices WHERE rollout_id = ?1"
                              " ORDER BY wave, device";
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "listing devices", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW && s == IOT_OK; rc = sqlite3_step(st)) {
        iot_rollout_device d;
        s = row_to_device(r, st, &d, err);
        int stop = s == IOT_OK ? fn(&d, ctx) : 0;
        if (stop != 0)
            s = (iot_status)stop;
    }
    if (s == IOT_OK && rc != SQLITE_DONE)
        s = db_fail(r, rc, "listing devices", err);
    sqlite3_finalize(st);
    return s;
}

iot_status iot_rollout_foreach_device(iot_rollouts *r, const char *name, iot_rollout_device_fn fn,
                                      void *ctx, iot_err *err)
{
    iot_rollout_info info;
    iot_status st = begin_read(r, "listing devices", err);
    if (st == IOT_OK)
        st = load_by_name(r, name, &info, err);
    if (st == IOT_OK)
        st = walk_devices(r, info.id, fn, ctx, err);
    iot_status done = finish(r, IOT_OK, "listing devices", err);
    return st != IOT_OK ? st : done;
}

/* ---- creation ---------------------------------------------------------------- */

/* splitmix64: a small, well-mixed generator; the order it draws is the
 * same for the same seed on every platform. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t clock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
    uint64_t mixed = next_random(&s);
    return mixed != 0 ? mixed : 1;
}

/* Fisher-Yates over the indexes 0..n-1. The modulo's bias is below 2^-40
 * for a million devices. */
static void shuffle(uint32_t *v, size_t n, uint64_t seed)
{
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(next_random(&state) % i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The device list sorted (so that the order drawn depends only on the set
 * and the seed), each a valid ID, none twice. */
static iot_status sorted_devices(const char *const *devices, size_t n, const char ***out,
                                 iot_err *err)
{
    if (n < 1 || n > IOT_ROLLOUT_DEVICES_MAX)
        return iot_err_set(err, IOT_EINVAL, "a rollout has 1 to %d devices, not %zu",
                           IOT_ROLLOUT_DEVICES_MAX, n);
    for (size_t i = 0; i < n; i++) {
        iot_status st = iot_id_check("device ID", devices[i] ? devices[i] : "", err);
        if (st != IOT_OK)
            return st;
    }
    const char **v = malloc(n * sizeof(*v));
    if (v == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory for %zu devices", n);
    memcpy(v, devices, n * sizeof(*v));
    qsort(v, n, sizeof(*v), by_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1], v[i]) == 0) {
            iot_status st =
                iot_err_set(err, IOT_EINVAL, "device '%s' is listed more than once", v[i]);
            free(v);
            return st;
        }
    }
    *out = v;
    return IOT_OK;
}

/* bound[w] is the index one past wave w's last device: the canary first,
 * then each cumulative percentage of the rest, rounded up. */
static void wave_bounds(const iot_rollout_plan *p, size_t n, size_t bound[])
{
    size_t canary = p->canary < n ? p->canary : n;
    uint64_t rest = n - canary;
    bound[0] = canary;
    for (size_t w = 1; w <= p->n_waves; w++)
        bound[w] = canary + (size_t)(((uint64_t)p->waves[w - 1] * rest + 99) / 100);
    bound[p->n_waves] = n;
}

static void to_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

/* The text must be the manifest that was parsed into m. */
static iot_status check_manifest(const char *text, size_t len, const iotd_manifest *m, iot_err *err)
{
    iotd_manifest again;
    if (text == NULL || m == NULL || len < 1 || len > IOTD_MANIFEST_MAX)
        return iot_err_set(err, IOT_EINVAL, "the manifest is missing or longer than %d bytes",
                           IOTD_MANIFEST_MAX);
    if (iotd_manifest_parse(text, len, &again, NULL) != IOTD_MANIFEST_OK)
        return iot_err_set(err, IOT_EINVAL, "the manifest text is not a manifest");
    if (again.sequence != m->sequence || again.image_size != m->image_size ||
        memcmp(again.image_digest, m->image_digest, sizeof(again.image_digest)) != 0 ||
        strcmp(again.image_uri, m->image_uri) != 0 || strcmp(again.class_id, m->class_id) != 0 ||
        strcmp(again.version, m->version) != 0)
        return iot_err_set(err, IOT_EINVAL, "the manifest text is not the manifest given");
    return IOT_OK;
}

/* The name is free and no live rollout has the sequence number. */
static iot_status check_new(iot_rollouts *r, const char *name, uint64_t sequence, iot_err *err)
{
    static const char sql[] =
        "SELECT name, state FROM rollouts WHERE name = ?1 OR (sequence = ?2 AND state IN"
        " ('running','paused')) ORDER BY name = ?1 DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "creating a rollout", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)sequence);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        char other[IOT_ROLLOUT_NAME_MAX + 1], state[16];
        copy_col(other, sizeof(other), st, 0);
        copy_col(state, sizeof(state), st, 1);
        s = strcmp(other, name) == 0
                ? iot_err_set(err, IOT_EEXIST, "a rollout named '%s' already exists (%s) in %s",
                              name, state, r->path)
                : iot_err_set(err, IOT_ESTATE,
                              "rollout '%s' (%s) already rolls out sequence number %" PRIu64
                              "; abort it first or wait until it completes",
                              other, state, sequence);
    } else if (rc != SQLITE_DONE) {
        s = db_fail(r, rc, "creating a rollout", err);
    }
    sqlite3_finalize(st);
    return s;
}

/* A rollout being created: its plan, release, devices sorted by name and
 * the wave of each, and where each wave ends in the order drawn. */
typedef struct new_rollout {
    const iot_rollout_plan *plan;
    uint64_t seed;
    const char *text;
    size_t len;
    const iotd_manifest *m;
    const char **devices;
    uint8_t *wave;
    size_t n;
    size_t bound[IOT_ROLLOUT_WAVES_MAX + 1];
    int64_t now;
} new_rollout;

/* Each device's wave: its place in the order the seed draws. The devices
 * stay sorted, so that the rows go into the file in key order. */
static iot_status place_devices(new_rollout *nr, iot_err *err)
{
    uint32_t *order = malloc(nr->n * sizeof(*order));
    nr->wave = malloc(nr->n);
    if (order == NULL || nr->wave == NULL) {
        free(order);
        return iot_err_set(err, IOT_ENOMEM, "out of memory for %zu devices", nr->n);
    }
    shuffle(order, nr->n, nr->seed);
    wave_bounds(nr->plan, nr->n, nr->bound);
    uint8_t wave = 0;
    for (size_t i = 0; i < nr->n; i++) {
        while (i >= nr->bound[wave])
            wave++;
        nr->wave[order[i]] = wave;
    }
    free(order);
    return IOT_OK;
}

static void bind_plan(sqlite3_stmt *st, const iot_rollout_plan *p, uint64_t seed)
{
    char waves[LIST_TEXT_MAX];
    uint32_t v[IOT_ROLLOUT_WAVES_MAX];
    for (size_t i = 0; i < p->n_waves; i++)
        v[i] = p->waves[i];
    list_text(v, p->n_waves, waves, sizeof(waves));
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, p->security ? 1 : 0);
    sqlite3_bind_int64(st, 3, p->canary);
    sqlite3_bind_text(st, 4, waves, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, p->max_per_minute);
    sqlite3_bind_int(st, 6, p->success_percent);
    sqlite3_bind_int(st, 7, p->failure_percent);
    sqlite3_bind_int64(st, 8, p->min_reports);
    sqlite3_bind_int64(st, 9, (int64_t)seed);
    sqlite3_bind_int(st, 10, p->canary > 0 ? 0 : 1);
}

static void sizes_text(const new_rollout *nr, char *buf, size_t size)
{
    uint32_t v[IOT_ROLLOUT_WAVES_MAX + 1];
    for (size_t w = 0; w <= nr->plan->n_waves; w++)
        v[w] = (uint32_t)(nr->bound[w] - (w > 0 ? nr->bound[w - 1] : 0));
    list_text(v, nr->plan->n_waves + 1, buf, size);
}

static iot_status insert_rollout(iot_rollouts *r, const new_rollout *nr, int64_t *id, iot_err *err)
{
    static const char sql[] =
        "INSERT INTO rollouts (name, state, security, canary, waves, max_per_minute,"
        " success_percent, failure_percent, min_reports, seed, current_wave, manifest, sequence,"
        " version, class_id, digest, image_uri, image_size, created, updated, wave_sizes)"
        " VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
        " ?16, ?17, ?18, ?18, ?19)";
    const iotd_manifest *m = nr->m;
    char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1], sizes[LIST_TEXT_MAX];
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "creating a rollout", err);
    if (s != IOT_OK)
        return s;
    to_hex(m->image_digest, sizeof(m->image_digest), digest);
    sizes_text(nr, sizes, sizeof(sizes));
    bind_plan(st, nr->plan, nr->seed);
    sqlite3_bind_text(st, 11, nr->text, (int)nr->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 12, (int64_t)m->sequence);
    sqlite3_bind_text(st, 13, m->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, m->class_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, digest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 16, m->image_uri, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 17, m->image_size);
    sqlite3_bind_int64(st, 18, nr->now);
    sqlite3_bind_text(st, 19, sizes, -1, SQLITE_TRANSIENT);
    s = step_done(r, st, "creating a rollout", err);
    if (s == IOT_OK)
        *id = sqlite3_last_insert_rowid(r->db);
    return s;
}

static iot_status insert_devices(iot_rollouts *r, int64_t id, const new_rollout *nr, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "INSERT INTO rollout_devices (rollout_id, device, wave, state, updated)"
                           " VALUES (?1, ?2, ?3, 'pending', ?4)",
                           &st, "adding devices", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 4, nr->now);
    for (size_t i = 0; i < nr->n && s == IOT_OK; i++) {
        sqlite3_bind_text(st, 2, nr->devices[i], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, nr->wave[i]);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            s = db_fail(r, rc, "adding devices", err);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return s;
}

iot_status iot_rollout_create(iot_rollouts *r, const iot_rollout_plan *plan, const char *manifest,
                              size_t len, const iotd_manifest *m, const char *const *devices,
                              size_t n_devices, int64_t now, int64_t *id, iot_err *err)
{
    new_rollout nr = {
        .plan = plan, .text = manifest, .len = len, .m = m, .n = n_devices, .now = now};
    nr.seed = plan->seed != 0 ? plan->seed : clock_seed();
    iot_status st = iot_rollout_plan_check(plan, err);
    if (st == IOT_OK)
        st = check_manifest(manifest, len, m, err);
    if (st == IOT_OK)
        st = sorted_devices(devices, n_devices, &nr.devices, err);
    if (st == IOT_OK)
        st = place_devices(&nr, err);
    if (st == IOT_OK)
        st = begin_write(r, "creating a rollout", err);
    if (st == IOT_OK)
        st = check_new(r, plan->name, m->sequence, err);
    if (st == IOT_OK)
        st = insert_rollout(r, &nr, id, err);
    if (st == IOT_OK)
        st = insert_devices(r, *id, &nr, err);
    st = finish(r, st, "creating a rollout", err);
    free(nr.devices);
    free(nr.wave);
    return st;
}

/* ---- state changes ----------------------------------------------------------- */

static iot_status set_state(iot_rollouts *r, int64_t id, iot_rollout_state state,
                            const char *reason, int64_t now, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "UPDATE rollouts SET state = ?2, pause_reason = ?3, updated = ?4"
                           " WHERE id = ?1",
                           &st, "changing a rollout's state", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, iot_rollout_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    return step_done(r, st, "changing a rollout's state", err);
}

/* The last wave earned from the current one on: the next starts while
 * the devices of the waves started so far have reached the success
 * threshold; an empty wave is passed at once. confirmed[w] is wave w's
 * confirmations. */
static uint32_t earned_wave(const iot_rollout_info *info, const uint64_t confirmed[])
{
    uint64_t started = 0, ok = 0;
    uint32_t wave = info->current_wave;
    for (uint32_t w = 0; w <= wave; w++) {
        started += info->wave_size[w];
        ok += confirmed[w];
    }
    while (wave < info->plan.n_waves &&
           ok * 100 >= (uint64_t)info->plan.success_percent * started) {
        wave++;
        started += info->wave_size[wave];
        ok += confirmed[wave];
    }
    return wave;
}

/* Confirmations per wave, from the device rows. */
static iot_status confirmed_by_wave(iot_rollouts *r, int64_t id,
                                    uint64_t confirmed[IOT_ROLLOUT_WAVES_MAX + 1], iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "SELECT wave, COUNT(*) FROM rollout_devices WHERE rollout_id = ?1"
                           " AND state = 'confirmed' GROUP BY wave",
                           &st, "starting a wave", err);
    if (s != IOT_OK)
        return s;
    memset(confirmed, 0, (IOT_ROLLOUT_WAVES_MAX + 1) * sizeof(confirmed[0]));
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        int64_t wave = sqlite3_column_int64(st, 0);
        if (wave >= 0 && wave <= IOT_ROLLOUT_WAVES_MAX)
            confirmed[wave] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : db_fail(r, rc, "starting a wave", err);
}

/* The wave to be in now. count[CONFIRMED] counts every wave's
 * confirmations: an upper bound of those of the waves started, and
 * exactly them while every report came through this file (only a
 * started device reports). A final state applied from another gateway
 * may be of a device whose wave has not started here, so a wave is
 * started only once the confirmations of each wave, read from the rows,
 * earn it; the rows are read only when the counter says a wave may
 * start. */
static iot_status wave_due(iot_rollouts *r, const iot_rollout_info *info, uint32_t *wave,
                           iot_err *err)
{
    uint64_t confirmed[IOT_ROLLOUT_WAVES_MAX + 1] = {info->count[IOT_RDEV_CONFIRMED]};
    *wave = earned_wave(info, confirmed);
    if (*wave == info->current_wave)
        return IOT_OK;
    iot_status s = confirmed_by_wave(r, info->id, confirmed, err);
    *wave = s == IOT_OK ? earned_wave(info, confirmed) : info->current_wave;
    return s;
}

/* Starts the waves earned (wave_due). */
static iot_status advance_waves(iot_rollouts *r, iot_rollout_info *info, int64_t now,
                                iot_report_outcome *out, iot_err *err)
{
    uint32_t wave = info->current_wave;
    iot_status s = wave_due(r, info, &wave, err);
    if (s != IOT_OK || wave == info->current_wave)
        return s;
    sqlite3_stmt *st = NULL;
    s = prepare(r, "UPDATE rollouts SET current_wave = ?2, updated = ?3 WHERE id = ?1", &st,
                "starting a wave", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, info->id);
    sqlite3_bind_int64(st, 2, wave);
    sqlite3_bind_int64(st, 3, now);
    s = step_done(r, st, "starting a wave", err);
    info->current_wave = wave;
    if (out != NULL) {
        out->wave_started = true;
        out->new_wave = wave;
    }
    return s;
}

/* Resume starts a new count for the failure threshold. */
static iot_status restart_judgement(iot_rollouts *r, int64_t id, int64_t now, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, "UPDATE rollouts SET judged_since = ?2 WHERE id = ?1", &st,
                           "resuming a rollout", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return step_done(r, st, "resuming a rollout", err);
}

typedef enum op_kind { OP_PAUSE, OP_RESUME, OP_ABORT } op_kind;

static iot_status op_refused(const iot_rollout_info *info, op_kind op, iot_err *err)
{
    static const char *const verbs[] = {"paused", "resumed", "aborted"};
    static const char *const hints[] = {
        [IOT_ROLLOUT_RUNNING] = "it is already running",
        [IOT_ROLLOUT_PAUSED] = "it is already paused; resume or abort it",
        [IOT_ROLLOUT_ABORTED] = "an aborted rollout stays aborted; create a new rollout",
        [IOT_ROLLOUT_COMPLETED] = "every device has a final state",
    };
    return iot_err_set(err, IOT_ESTATE, "rollout '%s' is %s and cannot be %s: %s", info->plan.name,
                       iot_rollout_state_name(info->state), verbs[op], hints[info->state]);
}

static bool op_allowed(iot_rollout_state from, op_kind op)
{
    if (op == OP_PAUSE)
        return from == IOT_ROLLOUT_RUNNING;
    if (op == OP_RESUME)
        return from == IOT_ROLLOUT_PAUSED;
    return from == IOT_ROLLOUT_RUNNING || from == IOT_ROLLOUT_PAUSED;
}

static iot_status apply_op(iot_rollouts *r, iot_rollout_info *info, op_kind op, int64_t now,
                           iot_err *err)
{
    static const iot_rollout_state to[] = {IOT_ROLLOUT_PAUSED, IOT_ROLLOUT_RUNNING,
                                           IOT_ROLLOUT_ABORTED};
    if (!op_allowed(info->state, op))
        return op_refused(info, op, err);
    iot_status st = set_state(r, info->id, to[op], op == OP_PAUSE ? "operator" : "", now, err);
    /* Confirmations that came in while paused may have reached a wave's
     * threshold: resume starts what they earned. */
    if (st == IOT_OK && op == OP_RESUME)
        st = restart_judgement(r, info->id, now, err);
    if (st == IOT_OK && op == OP_RESUME)
        st = advance_waves(r, info, now, NULL, err);
    return st;
}

static iot_status operator_action(iot_rollouts *r, const char *name, op_kind op, int64_t now,
                                  iot_err *err)
{
    iot_rollout_info info;
    iot_status st = begin_write(r, "changing a rollout", err);
    if (st == IOT_OK)
        st = load_by_name(r, name, &info, err);
    if (st == IOT_OK)
        st = apply_op(r, &info, op, now, err);
    return finish(r, st, "changing a rollout", err);
}

iot_status iot_rollout_pause(iot_rollouts *r, const char *name, int64_t now, iot_err *err)
{
    return operator_action(r, name, OP_PAUSE, now, err);
}

iot_status iot_rollout_resume(iot_rollouts *r, const char *name, int64_t now, iot_err *err)
{
    return operator_action(r, name, OP_RESUME, now, err);
}

iot_status iot_rollout_abort(iot_rollouts *r, const char *name, int64_t now, iot_err *err)
{
    return operator_action(r, name, OP_ABORT, now, err);
}

/* ---- offers ------------------------------------------------------------------ */

/* The device's candidate: its wave started, no final state, the rollout
 * running, or paused with the device already started; the highest
 * sequence number first. */
static const char OFFER_SQL[] =
    "SELECT r.id, r.name, r.security, r.sequence, r.digest, r.image_size, r.image_uri,"
    " r.manifest, r.max_per_minute, d.state FROM rollout_devices d JOIN rollouts r"
    " ON r.id = d.rollout_id WHERE d.device = ?1 AND d.wave <= r.current_wave"
    " AND d.state NOT IN " FINAL_STATES " AND (r.state = 'running'"
    " OR (r.state = 'paused' AND d.state <> 'pending')) ORDER BY r.sequence DESC, r.id DESC"
    " LIMIT 1";

static iot_status row_to_offer(const iot_rollouts *r, sqlite3_stmt *st, iot_rollout_offer *o,
                               uint32_t *max_per_minute, bool *pending, iot_err *err)
{
    memset(o, 0, sizeof(*o));
    o->rollout_id = sqlite3_column_int64(st, 0);
    copy_col(o->name, sizeof(o->name), st, 1);
    o->security = sqlite3_column_int(st, 2) != 0;
    o->sequence = (uint64_t)sqlite3_column_int64(st, 3);
    copy_col(o->digest, sizeof(o->digest), st, 4);
    o->image_size = col_u32(st, 5);
    copy_col(o->image_uri, sizeof(o->image_uri), st, 6);
    const void *text = sqlite3_column_text(st, 7);
    int len = sqlite3_column_bytes(st, 7);
    if (text == NULL || len < 1 || len > IOTD_MANIFEST_MAX)
        return corrupt_row(r, o->name, "manifest", err);
    memcpy(o->manifest, text, (size_t)len);
    o->manifest[len] = '\0';
    o->manifest_len = (size_t)len;
    *max_per_minute = col_u32(st, 8);
    const unsigned char *state = sqlite3_column_text(st, 9);
    *pending = state != NULL && strcmp((const char *)state, "pending") == 0;
    return IOT_OK;
}

/* IOT_ENOENT when nothing is for the device now. */
static iot_status find_offer(iot_rollouts *r, const char *device, iot_rollout_offer *o,
                             uint32_t *max_per_minute, bool *pending, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, OFFER_SQL, &st, "looking up an offer", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        s = row_to_offer(r, st, o, max_per_minute, pending, err);
    else
        s = rc == SQLITE_DONE ? IOT_ENOENT : db_fail(r, rc, "looking up an offer", err);
    sqlite3_finalize(st);
    return s;
}

/* Whether the cap lets one more device start now; if not, *retry_after_s
 * is when the oldest start of the last minute leaves the window. */
static iot_status cap_allows(iot_rollouts *r, int64_t id, uint32_t max, int64_t now, bool *allowed,
                             uint32_t *retry_after_s, iot_err *err)
{
    *allowed = true;
    if (max == 0)
        return IOT_OK;
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "SELECT COUNT(*), MIN(offered_at) FROM rollout_devices"
                           " WHERE rollout_id = ?1 AND offered_at > 0 AND offered_at > ?2",
                           &st, "checking the start rate", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now - CAP_WINDOW_S);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) >= (int64_t)max) {
        int64_t wait = sqlite3_column_int64(st, 1) + CAP_WINDOW_S - now;
        *allowed = false;
        *retry_after_s = wait < 1 ? 1 : wait > CAP_WINDOW_S ? CAP_WINDOW_S : (uint32_t)wait;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? IOT_OK : db_fail(r, rc, "checking the start rate", err);
}

static iot_status start_device(iot_rollouts *r, int64_t id, const char *device, int64_t now,
                               iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "UPDATE rollout_devices SET state = 'offered', offered_at = ?3,"
                           " updated = ?3 WHERE rollout_id = ?1 AND device = ?2",
                           &st, "starting a device", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return step_done(r, st, "starting a device", err);
}

static iot_status decide_offer(iot_rollouts *r, const char *device, int64_t now,
                               iot_offer_result *result, iot_rollout_offer *offer,
                               uint32_t *retry_after_s, iot_err *err)
{
    uint32_t max = 0;
    bool pending = false, allowed = true;
    iot_status st = find_offer(r, device, offer, &max, &pending, err);
    if (st == IOT_ENOENT)
        return IOT_OK;
    if (st == IOT_OK && pending)
        st = cap_allows(r, offer->rollout_id, max, now, &allowed, retry_after_s, err);
    if (st != IOT_OK)
        return st;
    if (!allowed) {
        *result = IOT_OFFER_DEFERRED;
        return IOT_OK;
    }
    if (pending)
        st = start_device(r, offer->rollout_id, device, now, err);
    offer->started = pending;
    *result = st == IOT_OK ? IOT_OFFER_MADE : IOT_OFFER_NONE;
    return st;
}

iot_status iot_rollout_offer_for(iot_rollouts *r, const char *device, int64_t now,
                                 iot_offer_result *result, iot_rollout_offer *offer,
                                 uint32_t *retry_after_s, iot_err *err)
{
    *result = IOT_OFFER_NONE;
    *retry_after_s = 0;
    iot_status st = begin_write(r, "making an offer", err);
    if (st == IOT_OK)
        st = decide_offer(r, device, now, result, offer, retry_after_s, err);
    st = finish(r, st, "making an offer", err);
    if (st != IOT_OK)
        *result = IOT_OFFER_NONE;
    return st;
}

iot_status iot_rollout_image_for(iot_rollouts *r, const char *device, const char *uri,
                                 char digest[2 * IOTD_MANIFEST_DIGEST_LEN + 1], uint32_t *size,
                                 iot_err *err)
{
    static const char sql[] =
        "SELECT r.digest, r.image_size FROM rollout_devices d JOIN rollouts r"
        " ON r.id = d.rollout_id WHERE d.device = ?1 AND r.image_uri = ?2"
        " AND d.state NOT IN ('pending','confirmed','failed','rolled_back')"
        " AND r.state IN ('running','paused') ORDER BY r.sequence DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "looking up an image", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, uri, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_col(digest, 2 * IOTD_MANIFEST_DIGEST_LEN + 1, st, 0);
        *size = col_u32(st, 1);
    } else if (rc == SQLITE_DONE) {
        s = iot_err_set(err, IOT_ENOENT, "no rollout offers device '%s' that image",
                        iot_id_is_valid(device) ? device : "?");
    } else {
        s = db_fail(r, rc, "looking up an image", err);
    }
    sqlite3_finalize(st);
    return s;
}

/* ---- reports ----------------------------------------------------------------- */

/* What a report, or a final state applied from another gateway, writes
 * for one device. An applied state comes without an offset: the one
 * recorded here is kept. */
typedef struct dev_change {
    const char *device;
    iot_rollout_dev_state state;
    const char *reason;
    bool has_offset;
    uint32_t offset;
} dev_change;

/* The rollout's ID and name and the device's state from a row of (id,
 * name, state); IOT_ECORRUPT if the state is not one of ours. */
static iot_status row_to_outcome(const iot_rollouts *r, sqlite3_stmt *st, iot_report_outcome *out,
                                 iot_err *err)
{
    int state = name_index(DEV_STATES, IOT_RDEV_STATE_COUNT, sqlite3_column_text(st, 2));
    out->rollout_id = sqlite3_column_int64(st, 0);
    copy_col(out->name, sizeof(out->name), st, 1);
    out->previous = (iot_rollout_dev_state)(state < 0 ? 0 : state);
    return state < 0 ? corrupt_row(r, out->name, "device state", err) : IOT_OK;
}

/* The rollout of that sequence number in which the device was started: a
 * live one before an ended one, then the newest. */
static iot_status find_reported(iot_rollouts *r, const char *device, uint64_t sequence,
                                iot_report_outcome *out, iot_err *err)
{
    static const char sql[] =
        "SELECT r.id, r.name, d.state FROM rollout_devices d JOIN rollouts r"
        " ON r.id = d.rollout_id WHERE d.device = ?1 AND r.sequence = ?2"
        " AND d.state <> 'pending' ORDER BY r.state IN ('running','paused') DESC, r.id DESC"
        " LIMIT 1";
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "recording a report", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)sequence);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        s = row_to_outcome(r, st, out, err);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT,
                        "device '%s' was offered no rollout of sequence number %" PRIu64,
                        iot_id_is_valid(device) ? device : "?", sequence);
    else
        s = db_fail(r, rc, "recording a report", err);
    sqlite3_finalize(st);
    return s;
}

/* A reason is a short word from the device: kept printable and short. */
static void clean_reason(char *dst, const char *src, bool failure)
{
    size_t i = 0;
    for (; failure && src != NULL && src[i] != '\0' && i < IOT_ROLLOUT_REASON_MAX; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

static iot_status update_device(iot_rollouts *r, int64_t id, const dev_change *ch, int64_t now,
                                iot_err *err)
{
    char reason[IOT_ROLLOUT_REASON_MAX + 1];
    clean_reason(reason, ch->reason,
                 ch->state == IOT_RDEV_FAILED || ch->state == IOT_RDEV_ROLLED_BACK);
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r,
                           "UPDATE rollout_devices SET state = ?3, reason = ?4,"
                           " offset_bytes = COALESCE(?5, offset_bytes), updated = ?6"
                           " WHERE rollout_id = ?1 AND device = ?2",
                           &st, "recording a report", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, ch->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, DEV_STATES[ch->state], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, reason, -1, SQLITE_TRANSIENT);
    if (ch->has_offset)
        sqlite3_bind_int64(st, 5, ch->offset);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, now);
    return step_done(r, st, "recording a report", err);
}

/* The failure threshold, judged on the final states reported since the
 * rollout was created or last resumed (judged_since): an operator who
 * resumes after looking at the failures starts a new count, and the
 * rollout pauses again only if the devices started after that fail too. */
static iot_status failure_threshold_reached(iot_rollouts *r, const iot_rollout_info *info,
                                            bool *reached, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    *reached = false;
    iot_status s = prepare(r,
                           "SELECT COUNT(*), COALESCE(SUM(d.state IN ('failed','rolled_back')), 0)"
                           " FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id"
                           " WHERE d.rollout_id = ?1 AND d.state IN " FINAL_STATES
                           " AND d.updated >= r.judged_since",
                           &st, "judging the failure threshold", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_int64(st, 1, info->id);
    int rc = sqlite3_step(st);
    uint64_t final = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    uint64_t failed = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 1) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return db_fail(r, rc, "judging the failure threshold", err);
    *reached = final >= info->plan.min_reports && final > 0 &&
               failed * 100 >= (uint64_t)info->plan.failure_percent * final;
    return IOT_OK;
}

/* After a report: completion, then (running only) the pause, then the waves. */
static iot_status judge(iot_rollouts *r, int64_t id, iot_rollout_dev_state reported, int64_t now,
                        iot_report_outcome *out, iot_err *err)
{
    iot_rollout_info info;
    iot_status st = load_info(r, false, NULL, id, &info, err);
    if (st != IOT_OK)
        return st;
    bool live = info.state == IOT_ROLLOUT_RUNNING || info.state == IOT_ROLLOUT_PAUSED;
    uint64_t final = (uint64_t)info.count[IOT_RDEV_CONFIRMED] + info.count[IOT_RDEV_FAILED] +
                     info.count[IOT_RDEV_ROLLED_BACK];
    if (live && final == info.devices) {
        out->completed = true;
        return set_state(r, id, IOT_ROLLOUT_COMPLETED, "", now, err);
    }
    if (info.state != IOT_ROLLOUT_RUNNING)
        return IOT_OK;
    /* Judged at every final report, so failures that came before the
     * minimum number of reports still count once it is reached. */
    bool reached = false;
    if (is_final(reported))
        st = failure_threshold_reached(r, &info, &reached, err);
    if (st != IOT_OK)
        return st;
    if (reached) {
        out->paused = true;
        return set_state(r, id, IOT_ROLLOUT_PAUSED, "failure_threshold", now, err);
    }
    return advance_waves(r, &info, now, out, err);
}

/* Writes the change of the device whose rollout and state before are in
 * *out, then judges the rollout: one path for a device's report and for
 * a final state applied from another gateway. A final state does not
 * change: the same one again changes nothing, another is refused. */
static iot_status settle(iot_rollouts *r, const dev_change *ch, int64_t now,
                         iot_report_outcome *out, iot_err *err)
{
    if (is_final(out->previous) && out->previous == ch->state)
        return IOT_OK;
    if (is_final(out->previous))
        return iot_err_set(err, IOT_ESTATE,
                           "device '%s' already reported %s for rollout '%s'; a final state "
                           "does not change (it reported %s)",
                           ch->device, DEV_STATES[out->previous], out->name, DEV_STATES[ch->state]);
    iot_status st = update_device(r, out->rollout_id, ch, now, err);
    if (st == IOT_OK)
        st = judge(r, out->rollout_id, ch->state, now, out, err);
    return st;
}

static iot_status apply_report(iot_rollouts *r, const char *device, const iot_rollout_report *rep,
                               int64_t now, iot_report_outcome *out, iot_err *err)
{
    dev_change ch = {.device = device,
                     .state = rep->state,
                     .reason = rep->reason,
                     .has_offset = true,
                     .offset = rep->offset};
    iot_status st = find_reported(r, device, rep->sequence, out, err);
    return st == IOT_OK ? settle(r, &ch, now, out, err) : st;
}

iot_status iot_rollout_record_report(iot_rollouts *r, const char *device,
                                     const iot_rollout_report *rep, int64_t now,
                                     iot_report_outcome *out, iot_err *err)
{
    memset(out, 0, sizeof(*out));
    if (rep->state < IOT_RDEV_DOWNLOADING || rep->state >= IOT_RDEV_STATE_COUNT)
        return iot_err_set(err, IOT_EINVAL, "a device reports downloading .. rolled_back, not %s",
                           iot_rollout_dev_state_name(rep->state));
    iot_status st = begin_write(r, "recording a report", err);
    if (st == IOT_OK)
        st = apply_report(r, device, rep, now, out, err);
    return finish(r, st, "recording a report", err);
}

/* The device in the named rollout, whatever its state and the
 * rollout's; IOT_ENOENT naming which of the two is missing. */
static iot_status find_member(iot_rollouts *r, const char *name, const char *device,
                              iot_report_outcome *out, iot_err *err)
{
    static const char sql[] =
        "SELECT r.id, r.name, d.state FROM rollouts r LEFT JOIN rollout_devices d"
        " ON d.rollout_id = r.id AND d.device = ?2 WHERE r.name = ?1";
    sqlite3_stmt *st = NULL;
    iot_status s = prepare(r, sql, &st, "applying a final state", err);
    if (s != IOT_OK)
        return s;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, device, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 2) != SQLITE_NULL)
        s = row_to_outcome(r, st, out, err);
    else if (rc == SQLITE_ROW)
        s = iot_err_set(err, IOT_ENOENT, "device '%s' is not in rollout '%s' in %s", device, name,
                        r->path);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT, "no rollout '%s' in %s", name, r->path);
    else
        s = db_fail(r, rc, "applying a final state", err);
    sqlite3_finalize(st);
    return s;
}

/* Names and the state are checked before the file is locked: a name that
 * is not an ID can name nothing in it. */
static iot_status check_applied(const iot_rollouts *r, const char *name, const char *device,
                                iot_rollout_dev_state state, iot_err *err)
{
    if (!is_final(state))
        return iot_err_set(err, IOT_EINVAL,
                           "only a final state (confirmed, failed, rolled_back) is applied from "
                           "another gateway, not %s",
                           iot_rollout_dev_state_name(state));
    if (name == NULL || !iot_id_is_valid(name))
        return iot_err_set(err, IOT_ENOENT, "no rollout of that name in %s", r->path);
    if (device == NULL || !iot_id_is_valid(device))
        return iot_err_set(err, IOT_ENOENT, "no such device in rollout '%s' in %s", name, r->path);
    return IOT_OK;
}

iot_status iot_rollout_apply_final(iot_rollouts *r, const char *name, const char *device,
                                   iot_rollout_dev_state state, const char *reason, int64_t now,
                                   iot_report_outcome *out, iot_err *err)
{
    dev_change ch = {.device = device, .state = state, .reason = reason};
    memset(out, 0, sizeof(*out));
    iot_status st = check_applied(r, name, device, state, err);
    if (st != IOT_OK)
        return st;
    st = begin_write(r, "applying a final state", err);
    if (st == IOT_OK)
        st = find_member(r, name, device, out, err);
    if (st == IOT_OK)
        st = settle(r, &ch, now, out, err);
    return finish(r, st, "applying a final state", err);
}
