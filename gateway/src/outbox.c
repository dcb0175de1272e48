#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "confirmq.h"
#include "devmap.h"
#include "log.h"
#include "metrics.h"

#define ACK_BATCH_MAX  65536
#define QUARANTINE_MAX 1024 /* pending moves; more wait for the next fetch */

typedef struct quarantine_req {
    int64_t id;
    char reason[48];
} quarantine_req;

/* The rows of the last groups, kept after their commit so that the
 * forwarder takes them from memory (gw_outbox_fetch_recent) rather than by
 * a query, which after every commit reads its pages again: SQLite drops a
 * reader's cache whenever the database changed. */
#define RECENT_MAX 1024

typedef struct recent_row {
    int64_t id;
    int64_t gseq;
    char device[IOT_ID_MAX + 1];
    char *body;
    size_t body_len;
} recent_row;

/* A row inserted by the open transaction; its body is the job's until the
 * job is done, after the commit. */
typedef struct staged_row {
    int64_t id;
    int64_t gseq;
    const char *device;
    const gw_store_item *item;
} staged_row;

struct gw_outbox {
    int lock_fd; /* flock on <path>.lock: one gateway per outbox */
    sqlite3 *db;
    char path[512];
    int64_t max_items;
    int64_t max_bytes; /* 0: no bound */
    int device_share;  /* percent of both bounds per device; 100: none */
    atomic_int_fast64_t depth;
    int64_t bytes; /* committer thread only */
    atomic_int_fast64_t quarantined;
    gw_devmap *held; /* each device's rows and bytes; committer thread only (and open) */

    sqlite3_stmt *insert_row;
    sqlite3_stmt *select_device;
    sqlite3_stmt *upsert_device;
    sqlite3_stmt *delete_row;
    sqlite3_stmt *quarantine_row;
    sqlite3_stmt *min_row;

    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    gw_store_job *jobs_head; /* FIFO, guarded by lock */
    gw_store_job *jobs_tail;
    int64_t *acks; /* guarded by lock */
    size_t n_acks;
    size_t cap_acks;
    quarantine_req quarantine[QUARANTINE_MAX]; /* guarded by lock */
    size_t n_quarantine;
    bool stopping;
    recent_row recent[RECENT_MAX]; /* a ring, guarded by lock */
    size_t recent_first;           /* index of the oldest */
    size_t recent_n;
    int64_t recent_floor; /* guarded by lock: no row above it was deleted */
    staged_row *staged;   /* committer thread only */
    size_t n_staged, cap_staged;
    bool staged_lost; /* a row could not be staged: the ring is emptied */

    gw_outbox_notify_fn notify;
    void *notify_ctx;
    gw_outbox_metrics metrics;

    int64_t top_id;             /* committer thread only: the highest row inserted */
    int64_t confirm_timeout_ns; /* 0: acknowledge = stored */
    gw_confirmq confirm;        /* committer thread only */
};

/* The readings' metrics: what an outbox counts unless told otherwise. */
static const gw_outbox_metrics READINGS_METRICS = {
    .depth = GW_G_OUTBOX_DEPTH,
    .bytes = GW_G_OUTBOX_BYTES,
    .quarantined_now = GW_G_OUTBOX_QUARANTINED,
    .stored = GW_M_READINGS_STORED,
    .duplicate = GW_M_READINGS_DUPLICATE,
    .published = GW_M_READINGS_PUBLISHED,
    .quarantined = GW_M_READINGS_QUARANTINED,
};

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS outbox ("
                             "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                             "  device TEXT NOT NULL,"
                             "  gseq INTEGER NOT NULL,"
                             "  body BLOB NOT NULL);"
                             "CREATE TABLE IF NOT EXISTS devices ("
                             "  device TEXT PRIMARY KEY,"
                             "  last_dseq INTEGER NOT NULL DEFAULT 0,"
                             "  next_gseq INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;"
                             "CREATE TABLE IF NOT EXISTS quarantine ("
                             "  id INTEGER PRIMARY KEY,"
                             "  device TEXT NOT NULL,"
                             "  gseq INTEGER NOT NULL,"
                             "  body BLOB NOT NULL,"
                             "  reason TEXT NOT NULL,"
                             "  at INTEGER NOT NULL);";

static iot_status db_error(sqlite3 *db, const char *path, const char *doing, iot_err *err)
{
    return iot_err_set(err, IOT_EIO, "outbox %s: %s: %s", path, doing,
                       db ? sqlite3_errmsg(db) : "out of memory");
}

static iot_status prepare(gw_outbox *ob, const char *sql, sqlite3_stmt **st, iot_err *err)
{
    if (sqlite3_prepare_v3(ob->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_error(ob->db, ob->path, "preparing a statement", err);
    return IOT_OK;
}

static void held_release(gw_outbox *ob, const char *device, int64_t bytes)
{
    gw_dev_count *h = gw_devmap_get(ob->held, device, false);
    if (h != NULL) {
        h->n--;
        h->bytes -= bytes;
    }
    ob->bytes -= bytes;
}

/* Rows, bytes and each device's part of them, as the file holds them. */
static iot_status count_rows(gw_outbox *ob, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int64_t rows = 0;
    int rc = sqlite3_prepare_v2(ob->db,
                                "SELECT device, count(*), total(length(body)) FROM outbox"
                                " GROUP BY device",
                                -1, &st, NULL);
    while (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        const unsigned char *dev = sqlite3_column_text(st, 0);
        gw_dev_count *h = gw_devmap_get(ob->held, dev ? (const char *)dev : "", true);
        if (h == NULL) {
            s = iot_err_set(err, IOT_ENOMEM, "out of memory counting outbox %s", ob->path);
            goto out;
        }
        h->n = sqlite3_column_int64(st, 1);
        h->bytes = (int64_t)sqlite3_column_double(st, 2);
        rows += h->n;
        ob->bytes += h->bytes;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        s = db_error(ob->db, ob->path, "counting readings", err);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    atomic_store(&ob->depth, rows);
    if (sqlite3_prepare_v2(ob->db, "SELECT coalesce(max(id), 0) FROM outbox", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        s = db_error(ob->db, ob->path, "finding the last reading", err);
        goto out;
    }
    ob->top_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(ob->db, "SELECT count(*) FROM quarantine", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        s = db_error(ob->db, ob->path, "counting quarantined readings", err);
        goto out;
    }
    atomic_store(&ob->quarantined, sqlite3_column_int64(st, 0));
out:
    sqlite3_finalize(st);
    return s;
}

/* Two gateways on one outbox would both publish and delete its readings, and
 * (with SO_REUSEPORT) silently share the device port: refuse the second. */
static iot_status take_lock(gw_outbox *ob, iot_err *err)
{
    char lock_path[sizeof(ob->path) + 8];
    snprintf(lock_path, sizeof(lock_path), "%s.lock", ob->path);
    ob->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ob->lock_fd < 0)
        return iot_err_set(err, IOT_EIO, "cannot open %s: %s", lock_path, strerror(errno));
    if (flock(ob->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return iot_err_set(err, IOT_EBUSY,
                           "outbox %s is in use by another iotgw (lock %s); stop that one first",
                           ob->path, lock_path);
    return IOT_OK;
}

/* The statements the committer runs, prepared once. */
static iot_status prepare_statements(gw_outbox *ob, iot_err *err)
{
    const struct {
        const char *sql;
        sqlite3_stmt **stmt;
    } want[] = {
        {"INSERT INTO outbox (device, gseq, body) VALUES (?1, ?2, ?3)", &ob->insert_row},
        {"SELECT last_dseq, next_gseq FROM devices WHERE device = ?1", &ob->select_device},
        {"INSERT INTO devices (device, last_dseq, next_gseq) VALUES (?1, ?2, ?3)"
         " ON CONFLICT(device) DO UPDATE SET last_dseq = ?2, next_gseq = ?3",
         &ob->upsert_device},
        {"DELETE FROM outbox WHERE id = ?1 RETURNING device, length(body)", &ob->delete_row},
        {"INSERT OR IGNORE INTO quarantine (id, device, gseq, body, reason, at)"
         " SELECT id, device, gseq, body, ?2, CAST(strftime('%s','now') AS INTEGER)"
         " FROM outbox WHERE id = ?1",
         &ob->quarantine_row},
        {"SELECT min(id) FROM outbox", &ob->min_row},
    };
    iot_status s = IOT_OK;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && s == IOT_OK; i++)
        s = prepare(ob, want[i].sql, want[i].stmt, err);
    return s;
}

iot_status gw_outbox_open(const char *path, int64_t max_items, gw_outbox **out, iot_err *err)
{
    *out = NULL;
    gw_outbox *ob = calloc(1, sizeof(*ob));
    if (ob == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory opening outbox %s", path);
    snprintf(ob->path, sizeof(ob->path), "%s", path);
    ob->max_items = max_items;
    ob->device_share = 100;
    ob->metrics = READINGS_METRICS;
    ob->lock_fd = -1;
    ob->held = gw_devmap_new();
    pthread_mutex_init(&ob->lock, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC); /* confirm deadlines */
    pthread_cond_init(&ob->wake, &cattr);
    pthread_condattr_destroy(&cattr);
    iot_status s = IOT_OK;
    if (ob->held == NULL) {
        s = iot_err_set(err, IOT_ENOMEM, "out of memory opening outbox %s", path);
        goto out;
    }
    s = take_lock(ob, err);
    if (s != IOT_OK)
        goto out;
    if (sqlite3_open_v2(path, &ob->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        s = db_error(ob->db, path, "opening", err);
        goto out;
    }
    sqlite3_busy_timeout(ob->db, 5000);
    /* WAL + FULL: each commit is fsynced; readers never block the writer. */
    if (sqlite3_exec(ob->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     "PRAGMA journal_size_limit=67108864;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(ob->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        s = db_error(ob->db, path, "initialising", err);
        goto out;
    }
    s = count_rows(ob, err);
    if (s != IOT_OK)
        goto out;
    s = prepare_statements(ob, err);
    if (s != IOT_OK)
        goto out;
out:
    if (s != IOT_OK) {
        gw_outbox_close(ob);
        ob = NULL;
    }
    *out = ob;
    return s;
}

void gw_outbox_set_metrics(gw_outbox *ob, const gw_outbox_metrics *m)
{
    ob->metrics = *m;
}

void gw_outbox_set_confirm(gw_outbox *ob, int64_t timeout_ms)
{
    ob->confirm_timeout_ns = timeout_ms * 1000000;
}

void gw_outbox_set_limits(gw_outbox *ob, int64_t max_bytes, int device_share_percent)
{
    ob->max_bytes = max_bytes;
    ob->device_share = device_share_percent;
}

int64_t gw_outbox_quarantined(const gw_outbox *ob)
{
    return atomic_load(&((gw_outbox *)ob)->quarantined);
}

int64_t gw_outbox_depth(const gw_outbox *ob)
{
    return atomic_load(&((gw_outbox *)ob)->depth);
}

void gw_store_job_free_items(gw_store_job *job)
{
    for (size_t i = 0; i < job->n_items; i++)
        free(job->items[i].body);
    free(job->items);
    job->items = NULL;
    job->n_items = 0;
}

void gw_outbox_submit(gw_outbox *ob, gw_store_job *job)
{
    job->next = NULL;
    job->stored = 0;
    job->duplicates = 0;
    job->first_stored = false;
    job->first_id = 1;
    job->last_id = 0;
    pthread_mutex_lock(&ob->lock);
    if (ob->stopping) {
        pthread_mutex_unlock(&ob->lock);
        job->result = GW_STORE_SHUTDOWN;
        job->done(job);
        return;
    }
    if (ob->jobs_tail)
        ob->jobs_tail->next = job;
    else
        ob->jobs_head = job;
    ob->jobs_tail = job;
    pthread_cond_signal(&ob->wake);
    pthread_mutex_unlock(&ob->lock);
}

void gw_outbox_ack(gw_outbox *ob, const int64_t *ids, size_t n)
{
    pthread_mutex_lock(&ob->lock);
    if (ob->n_acks + n > ob->cap_acks) {
        size_t cap = ob->cap_acks ? ob->cap_acks : 1024;
        while (cap < ob->n_acks + n)
            cap *= 2;
        int64_t *grown = realloc(ob->acks, cap * sizeof(*grown));
        if (grown == NULL) {
            /* Not deleting is safe: the rows are published again later and
             * consumers drop them as duplicates. */
            pthread_mutex_unlock(&ob->lock);
            gw_log(GW_LOG_ERROR, "outbox.ack_dropped", "count=%zu", n);
            return;
        }
        ob->acks = grown;
        ob->cap_acks = cap;
    }
    memcpy(ob->acks + ob->n_acks, ids, n * sizeof(*ids));
    ob->n_acks += n;
    pthread_cond_signal(&ob->wake);
    pthread_mutex_unlock(&ob->lock);
}

void gw_outbox_quarantine(gw_outbox *ob, int64_t id, const char *reason)
{
    pthread_mutex_lock(&ob->lock);
    if (ob->n_quarantine < QUARANTINE_MAX) {
        quarantine_req *q = &ob->quarantine[ob->n_quarantine++];
        q->id = id;
        snprintf(q->reason, sizeof(q->reason), "%s", reason);
        pthread_cond_signal(&ob->wake);
    }
    /* When full, the row stays and is found again after the forwarder's
     * next reconnect or restart: nothing is lost, the move is only later. */
    pthread_mutex_unlock(&ob->lock);
}

/* Looks up (or starts) a device's sequence state inside the transaction. */
static int device_state(gw_outbox *ob, const char *device, int64_t *last_dseq, int64_t *next_gseq)
{
    sqlite3_stmt *st = ob->select_device;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *last_dseq = sqlite3_column_int64(st, 0);
        *next_gseq = sqlite3_column_int64(st, 1);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        *last_dseq = 0;
        *next_gseq = 1;
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return rc;
}

static int save_device_state(gw_outbox *ob, const char *device, int64_t last_dseq,
                             int64_t next_gseq)
{
    sqlite3_stmt *st = ob->upsert_device;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, last_dseq);
    sqlite3_bind_int64(st, 3, next_gseq);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Notes an inserted row for the ring. Without memory the ring is given up
 * for this group (recent_lost): the forwarder queries the database. */
static void stage_row(gw_outbox *ob, int64_t id, int64_t gseq, const char *device,
                      const gw_store_item *item)
{
    if (ob->n_staged == ob->cap_staged) {
        size_t cap = ob->cap_staged ? 2 * ob->cap_staged : 256;
        staged_row *grown = realloc(ob->staged, cap * sizeof(*grown));
        if (grown == NULL) {
            ob->staged_lost = true;
            return;
        }
        ob->staged = grown;
        ob->cap_staged = cap;
    }
    ob->staged[ob->n_staged++] = (staged_row){id, gseq, device, item};
}

static int insert_row(gw_outbox *ob, const char *device, int64_t gseq, const gw_store_item *item)
{
    sqlite3_stmt *st = ob->insert_row;
    sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, gseq);
    sqlite3_bind_blob(st, 3, item->body, (int)item->body_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return rc;
    int64_t id = sqlite3_last_insert_rowid(ob->db);
    if (id > ob->top_id)
        ob->top_id = id;
    stage_row(ob, id, gseq, device, item);
    return SQLITE_OK;
}

/* Whether the job fits the outbox's bounds and the device's share, counting
 * every item as new (duplicates are found later, inside the transaction). */
static gw_store_result admit_job(gw_outbox *ob, const gw_store_job *job, const gw_dev_count *dev,
                                 int64_t added, int64_t added_bytes)
{
    int64_t rows = (int64_t)job->n_items, bytes = 0;
    for (size_t i = 0; i < job->n_items; i++)
        bytes += (int64_t)job->items[i].body_len;
    if (atomic_load(&ob->depth) + added + rows > ob->max_items ||
        (ob->max_bytes > 0 && ob->bytes + added_bytes + bytes > ob->max_bytes))
        return GW_STORE_FULL;
    if (ob->device_share >= 100 || dev == NULL)
        return GW_STORE_OK;
    int64_t share_rows = ob->max_items * ob->device_share / 100;
    int64_t share_bytes = ob->max_bytes * ob->device_share / 100;
    if (share_rows < 1)
        share_rows = 1;
    if (dev->n + rows > share_rows || (ob->max_bytes > 0 && dev->bytes + bytes > share_bytes))
        return GW_STORE_DEVICE_FULL;
    return GW_STORE_OK;
}

/* Stores one job inside the open transaction. *added counts new rows and
 * *added_bytes their size; the device's share is updated as rows go in (a
 * failed transaction rebuilds it, see commit_group). */
static int store_job(gw_outbox *ob, gw_store_job *job, int64_t *added, int64_t *added_bytes)
{
    gw_dev_count *dev = gw_devmap_get(ob->held, job->device, true);
    if (dev == NULL)
        return SQLITE_NOMEM;
    job->result = admit_job(ob, job, dev, *added, *added_bytes);
    if (job->result != GW_STORE_OK)
        return SQLITE_OK;
    int64_t last_dseq = 0, next_gseq = 1;
    int rc = device_state(ob, job->device, &last_dseq, &next_gseq);
    if (rc != SQLITE_OK)
        goto out;
    for (size_t i = 0; i < job->n_items; i++) {
        const gw_store_item *item = &job->items[i];
        if (item->has_dseq && (int64_t)item->dseq <= last_dseq) {
            job->duplicates++;
            continue;
        }
        rc = insert_row(ob, job->device, next_gseq, item);
        if (rc != SQLITE_OK)
            goto out;
        if (job->stored == 0)
            job->first_id = ob->top_id;
        job->last_id = ob->top_id;
        next_gseq++;
        if (item->has_dseq)
            last_dseq = item->dseq;
        job->first_stored |= i == 0;
        job->stored++;
        dev->n++;
        dev->bytes += (int64_t)item->body_len;
        *added_bytes += (int64_t)item->body_len;
    }
    if (job->stored > 0)
        rc = save_device_state(ob, job->device, last_dseq, next_gseq);
out:
    *added += (int64_t)job->stored;
    return rc;
}

/* Deletes one row; *found says whether it was there, and the device's
 * share gives back what it held. */
static int delete_row(gw_outbox *ob, int64_t id, int64_t *freed_bytes, bool *found)
{
    *found = false;
    sqlite3_bind_int64(ob->delete_row, 1, id);
    int rc = sqlite3_step(ob->delete_row);
    if (rc == SQLITE_ROW) {
        const unsigned char *dev = sqlite3_column_text(ob->delete_row, 0);
        int64_t bytes = sqlite3_column_int64(ob->delete_row, 1);
        held_release(ob, dev ? (const char *)dev : "", bytes);
        *freed_bytes += bytes;
        *found = true;
        rc = sqlite3_step(ob->delete_row);
    }
    sqlite3_reset(ob->delete_row);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int delete_acked(gw_outbox *ob, const int64_t *ids, size_t n, int64_t *deleted,
                        int64_t *freed_bytes)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        int rc = delete_row(ob, ids[i], freed_bytes, &found);
        if (rc != SQLITE_OK)
            return rc;
        *deleted += found;
    }
    return SQLITE_OK;
}

static int quarantine_rows(gw_outbox *ob, const quarantine_req *q, size_t n, int64_t *moved,
                           int64_t *freed_bytes)
{
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(ob->quarantine_row, 1, q[i].id);
        sqlite3_bind_text(ob->quarantine_row, 2, q[i].reason, -1, SQLITE_STATIC);
        int rc = sqlite3_step(ob->quarantine_row);
        sqlite3_reset(ob->quarantine_row);
        if (rc != SQLITE_DONE)
            return rc;
        bool found = false;
        rc = delete_row(ob, q[i].id, freed_bytes, &found);
        if (rc != SQLITE_OK)
            return rc;
        *moved += found;
    }
    return SQLITE_OK;
}

/* After a rollback the in-memory shares no longer match the file: count
 * them again from it (rare: only a failed transaction gets here). */
static void recount(gw_outbox *ob)
{
    gw_devmap_clear(ob->held);
    ob->bytes = 0;
    iot_err err = {0};
    if (count_rows(ob, &err) != IOT_OK)
        gw_log(GW_LOG_ERROR, "outbox.recount_failed", "path=%s error=\"%s\"", ob->path, err.msg);
}

/* What one committed group changed. */
typedef struct {
    int64_t added, added_bytes, deleted, moved, freed_bytes;
    int64_t top_removed; /* the highest id acknowledged or moved to quarantine */
} group_tally;

/* Runs the group's deletes, quarantine moves and stores in one
 * transaction; an SQLite code, SQLITE_OK once committed. */
static int apply_group(gw_outbox *ob, gw_store_job *jobs, const int64_t *acks, size_t n_acks,
                       const quarantine_req *q, size_t n_q, group_tally *t)
{
    for (size_t i = 0; i < n_acks; i++)
        if (acks[i] > t->top_removed)
            t->top_removed = acks[i];
    for (size_t i = 0; i < n_q; i++)
        if (q[i].id > t->top_removed)
            t->top_removed = q[i].id;
    ob->n_staged = 0;
    ob->staged_lost = false;
    int rc = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = delete_acked(ob, acks, n_acks, &t->deleted, &t->freed_bytes);
    if (rc != SQLITE_OK)
        goto out;
    rc = quarantine_rows(ob, q, n_q, &t->moved, &t->freed_bytes);
    if (rc != SQLITE_OK)
        goto out;
    for (gw_store_job *j = jobs; j != NULL; j = j->next) {
        rc = store_job(ob, j, &t->added, &t->added_bytes);
        if (rc != SQLITE_OK)
            goto out;
    }
    rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
out:
    return rc;
}

/* A failed group is rolled back: its jobs answer an error, its acks and
 * quarantine moves wait for the next group. */
static void group_failed(gw_outbox *ob, int rc, gw_store_job *jobs, int64_t *acks, size_t n_acks,
                         const quarantine_req *q, size_t n_q)
{
    const char *why = sqlite3_errmsg(ob->db);
    gw_log(GW_LOG_ERROR, "outbox.commit_failed", "path=%s error=\"%s\" code=%d", ob->path, why, rc);
    sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
    recount(ob);
    gw_metric_inc(GW_M_STORE_ERRORS);
    for (gw_store_job *j = jobs; j != NULL; j = j->next) {
        j->result = GW_STORE_ERROR;
        j->stored = j->duplicates = 0;
        j->first_stored = false;
    }
    if (n_acks > 0) /* retry the deletes with the next group */
        gw_outbox_ack(ob, acks, n_acks);
    for (size_t i = 0; i < n_q; i++)
        gw_outbox_quarantine(ob, q[i].id, q[i].reason);
}

static void recent_clear(gw_outbox *ob)
{
    for (size_t i = 0; i < ob->recent_n; i++)
        free(ob->recent[(ob->recent_first + i) % RECENT_MAX].body);
    ob->recent_first = ob->recent_n = 0;
}

/* Adds a committed row to the ring, the oldest giving way; false without
 * memory. */
static bool recent_add(gw_outbox *ob, const staged_row *r)
{
    char *body = malloc(r->item->body_len ? r->item->body_len : 1);
    if (body == NULL)
        return false;
    memcpy(body, r->item->body, r->item->body_len);
    if (ob->recent_n == RECENT_MAX) {
        free(ob->recent[ob->recent_first].body);
        ob->recent_first = (ob->recent_first + 1) % RECENT_MAX;
        ob->recent_n--;
    }
    recent_row *slot = &ob->recent[(ob->recent_first + ob->recent_n) % RECENT_MAX];
    slot->id = r->id;
    slot->gseq = r->gseq;
    snprintf(slot->device, sizeof(slot->device), "%s", r->device);
    slot->body = body;
    slot->body_len = r->item->body_len;
    ob->recent_n++;
    return true;
}

/* After a commit: its rows join the ring, and the rows it deleted raise
 * the floor under which the ring may not answer. */
static void keep_recent(gw_outbox *ob, int64_t top_removed)
{
    pthread_mutex_lock(&ob->lock);
    if (top_removed > ob->recent_floor)
        ob->recent_floor = top_removed;
    bool lost = ob->staged_lost;
    for (size_t i = 0; i < ob->n_staged && !lost; i++)
        lost = !recent_add(ob, &ob->staged[i]);
    /* A row missing from the ring would be skipped: start it again. */
    if (lost)
        recent_clear(ob);
    pthread_mutex_unlock(&ob->lock);
    ob->n_staged = 0;
}

static void group_committed(gw_outbox *ob, const group_tally *t, const struct timespec *t0)
{
    struct timespec t1;
    gw_metric_inc(GW_M_STORE_COMMITS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    gw_histogram_observe(GW_H_OUTBOX_COMMIT, (double)(t1.tv_sec - t0->tv_sec) +
                                                 (double)(t1.tv_nsec - t0->tv_nsec) / 1e9);
    ob->bytes += t->added_bytes;
    int64_t change = t->added - t->deleted - t->moved;
    int64_t depth = atomic_fetch_add(&ob->depth, change) + change;
    gw_gauge_set_chosen(ob->metrics.depth, depth);
    gw_gauge_set_chosen(ob->metrics.bytes, ob->bytes);
    gw_metric_add_chosen(ob->metrics.published, (uint64_t)t->deleted);
    if (t->moved > 0) {
        int64_t total = atomic_fetch_add(&ob->quarantined, t->moved) + t->moved;
        gw_gauge_set_chosen(ob->metrics.quarantined_now, total);
        gw_metric_add_chosen(ob->metrics.quarantined, (uint64_t)t->moved);
    }
    keep_recent(ob, t->top_removed);
    if (t->added > 0 && ob->notify)
        ob->notify(ob->notify_ctx);
}

/* One transaction for every job, ack and quarantine move that arrived
 * meanwhile; whether it committed. */
static bool commit_group(gw_outbox *ob, gw_store_job *jobs, int64_t *acks, size_t n_acks,
                         const quarantine_req *q, size_t n_q)
{
    group_tally t = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = apply_group(ob, jobs, acks, n_acks, q, n_q, &t);
    if (rc != SQLITE_OK)
        group_failed(ob, rc, jobs, acks, n_acks, q, n_q);
    else
        group_committed(ob, &t, &t0);
    return rc == SQLITE_OK;
}

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The lowest row still waiting for the broker; INT64_MAX when none, and
 * INT64_MIN (nothing confirmed) when the query fails. */
static int64_t min_pending(gw_outbox *ob)
{
    if (atomic_load(&ob->depth) == 0)
        return INT64_MAX;
    int64_t id = INT64_MIN;
    if (sqlite3_step(ob->min_row) == SQLITE_ROW)
        id = sqlite3_column_type(ob->min_row, 0) == SQLITE_NULL
                 ? INT64_MAX
                 : sqlite3_column_int64(ob->min_row, 0);
    sqlite3_reset(ob->min_row);
    return id;
}

static void confirm_released(void *item, gw_confirm_outcome outcome, void *ctx)
{
    (void)ctx;
    gw_store_job *job = item;
    if (outcome == GW_CONFIRM_TIMEOUT)
        job->result = GW_STORE_UNCONFIRMED;
    else if (outcome == GW_CONFIRM_REFUSED)
        job->result = GW_STORE_REFUSED;
    job->done(job);
}

/* Hands each job of a group back to its owner or, with acknowledge =
 * confirmed, queues the stored ones for the broker's acknowledgement. */
static void jobs_committed(gw_outbox *ob, gw_store_job *jobs)
{
    int64_t deadline = mono_ns() + ob->confirm_timeout_ns;
    while (jobs != NULL) {
        gw_store_job *next = jobs->next;
        bool wait = jobs->result == GW_STORE_OK && ob->confirm_timeout_ns > 0;
        if (jobs->result == GW_STORE_OK) {
            gw_metric_add_chosen(ob->metrics.stored, jobs->stored);
            gw_metric_add_chosen(ob->metrics.duplicate, jobs->duplicates);
        }
        if (wait && gw_confirmq_push(&ob->confirm, jobs, jobs->first_id, jobs->last_id, ob->top_id,
                                     deadline) != 0) {
            jobs->result = GW_STORE_UNCONFIRMED; /* stored all the same */
            wait = false;
        }
        if (!wait)
            jobs->done(jobs);
        jobs = next;
    }
}

/* After a committed group: rows moved to quarantine refuse the requests
 * that stored them; rows the broker acknowledged release the requests
 * that waited for them. */
static void confirm_progress(gw_outbox *ob, const quarantine_req *q, size_t n_q)
{
    if (ob->confirm.n == 0)
        return;
    for (size_t i = 0; i < n_q; i++)
        gw_confirmq_refuse(&ob->confirm, q[i].id);
    gw_confirmq_release(&ob->confirm, min_pending(ob), mono_ns(), confirm_released, NULL);
}

static bool has_work(const gw_outbox *ob)
{
    return ob->jobs_head != NULL || ob->n_acks > 0 || ob->n_quarantine > 0;
}

/* Under ob->lock: sleeps until there is work, the outbox stops, or the
 * first waiting request's deadline. */
static void wait_for_work(gw_outbox *ob)
{
    while (!has_work(ob) && !ob->stopping) {
        int64_t deadline = gw_confirmq_next_deadline(&ob->confirm);
        if (deadline < 0) {
            pthread_cond_wait(&ob->wake, &ob->lock);
            continue;
        }
        if (mono_ns() >= deadline)
            return;
        struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&ob->wake, &ob->lock, &ts);
    }
}

static void *committer_main(void *arg)
{
    gw_outbox *ob = arg;
    int64_t *acks = NULL;
    quarantine_req *q = malloc(sizeof(ob->quarantine));
    for (;;) {
        pthread_mutex_lock(&ob->lock);
        wait_for_work(ob);
        if (!has_work(ob)) {
            bool stop = ob->stopping;
            pthread_mutex_unlock(&ob->lock);
            if (stop)
                break;
            /* a deadline: only expired requests can go */
            gw_confirmq_release(&ob->confirm, INT64_MIN, mono_ns(), confirm_released, NULL);
            continue;
        }
        gw_store_job *jobs = ob->jobs_head;
        ob->jobs_head = ob->jobs_tail = NULL;
        size_t n_acks = ob->n_acks;
        /* Take the ack array; the lock holder starts a fresh one. */
        acks = ob->acks;
        ob->acks = NULL;
        ob->n_acks = ob->cap_acks = 0;
        /* Without the copy's memory the moves simply wait for a later group. */
        size_t n_q = q != NULL ? ob->n_quarantine : 0;
        if (n_q > 0)
            memcpy(q, ob->quarantine, n_q * sizeof(*q));
        ob->n_quarantine -= n_q;
        pthread_mutex_unlock(&ob->lock);

        bool committed = commit_group(ob, jobs, acks, n_acks, q, n_q);
        free(acks);
        acks = NULL;
        jobs_committed(ob, jobs);
        if (committed)
            confirm_progress(ob, q, n_q);
    }
    /* Stored, not confirmed: the device resends and waits again elsewhere
     * or after the restart. */
    gw_confirmq_drain(&ob->confirm, GW_CONFIRM_TIMEOUT, confirm_released, NULL);
    free(q);
    return NULL;
}

iot_status gw_outbox_start(gw_outbox *ob, gw_outbox_notify_fn notify, void *ctx, iot_err *err)
{
    ob->notify = notify;
    ob->notify_ctx = ctx;
    gw_gauge_set_chosen(ob->metrics.depth, atomic_load(&ob->depth));
    gw_gauge_set_chosen(ob->metrics.quarantined_now, atomic_load(&ob->quarantined));
    if (pthread_create(&ob->thread, NULL, committer_main, ob) != 0)
        return iot_err_set(err, IOT_EIO, "cannot start the outbox thread");
    ob->started = true;
    return IOT_OK;
}

void gw_outbox_close(gw_outbox *ob)
{
    if (ob == NULL)
        return;
    if (ob->started) {
        pthread_mutex_lock(&ob->lock);
        ob->stopping = true;
        pthread_cond_signal(&ob->wake);
        pthread_mutex_unlock(&ob->lock);
        pthread_join(ob->thread, NULL);
    }
    sqlite3_finalize(ob->insert_row);
    sqlite3_finalize(ob->select_device);
    sqlite3_finalize(ob->upsert_device);
    sqlite3_finalize(ob->delete_row);
    sqlite3_finalize(ob->quarantine_row);
    sqlite3_finalize(ob->min_row);
    sqlite3_close(ob->db);
    gw_devmap_free(ob->held);
    free(ob->acks);
    recent_clear(ob);
    free(ob->staged);
    if (ob->lock_fd >= 0)
        close(ob->lock_fd);
    pthread_mutex_destroy(&ob->lock);
    pthread_cond_destroy(&ob->wake);
    free(ob);
}

/* --- reader --- */

struct gw_outbox_reader {
    sqlite3 *db;
    sqlite3_stmt *fetch;
    char path[512];
};

iot_status gw_outbox_reader_open(const char *path, gw_outbox_reader **out, iot_err *err)
{
    *out = NULL;
    gw_outbox_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    snprintf(r->path, sizeof(r->path), "%s", path);
    iot_status s = IOT_OK;
    if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(r->db,
                           "SELECT id, device, gseq, body FROM outbox WHERE id > ?1 ORDER BY id"
                           " LIMIT ?2",
                           -1, SQLITE_PREPARE_PERSISTENT, &r->fetch, NULL) != SQLITE_OK) {
        s = db_error(r->db, path, "opening for reading", err);
        gw_outbox_reader_close(r);
        return s;
    }
    sqlite3_busy_timeout(r->db, 5000);
    *out = r;
    return IOT_OK;
}

iot_status gw_outbox_fetch(gw_outbox_reader *r, int64_t after_id, int limit, gw_outbox_row_fn fn,
                           void *ctx, int *count, iot_err *err)
{
    *count = 0;
    sqlite3_stmt *st = r->fetch;
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int(st, 2, limit);
    int rc;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        gw_outbox_row row = {0};
        row.id = sqlite3_column_int64(st, 0);
        const unsigned char *dev = sqlite3_column_text(st, 1);
        snprintf(row.device, sizeof(row.device), "%s", dev ? (const char *)dev : "");
        row.gseq = sqlite3_column_int64(st, 2);
        row.body = sqlite3_column_blob(st, 3);
        row.body_len = (size_t)sqlite3_column_bytes(st, 3);
        (*count)++;
        if (fn(&row, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_error(r->db, r->path, "reading readings", err);
    return IOT_OK;
}

/* Copies the ring's rows above after_id (at most limit) under ob->lock;
 * -1 when the ring cannot answer for every such row: rows older than the
 * ring (ids are consecutive: AUTOINCREMENT, nothing else inserts), or a
 * deleted row above after_id (after a reconnect). */
static int recent_copy(gw_outbox *ob, int64_t after_id, int limit, gw_outbox_row **rows_out,
                       char **bodies_out)
{
    if (ob->recent_n == 0 || after_id < ob->recent_floor ||
        ob->recent[ob->recent_first].id > after_id + 1)
        return -1;
    size_t start = 0;
    while (start < ob->recent_n &&
           ob->recent[(ob->recent_first + start) % RECENT_MAX].id <= after_id)
        start++;
    size_t n = ob->recent_n - start, total = 0;
    if (limit >= 0 && n > (size_t)limit)
        n = (size_t)limit;
    for (size_t i = 0; i < n; i++)
        total += ob->recent[(ob->recent_first + start + i) % RECENT_MAX].body_len;
    gw_outbox_row *rows = calloc(n ? n : 1, sizeof(*rows));
    char *bodies = malloc(total ? total : 1);
    if (rows == NULL || bodies == NULL) {
        free(rows);
        free(bodies);
        return -1;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const recent_row *r = &ob->recent[(ob->recent_first + start + i) % RECENT_MAX];
        rows[i].id = r->id;
        rows[i].gseq = r->gseq;
        snprintf(rows[i].device, sizeof(rows[i].device), "%s", r->device);
        memcpy(bodies + off, r->body, r->body_len);
        rows[i].body = bodies + off;
        rows[i].body_len = r->body_len;
        off += r->body_len;
    }
    *rows_out = rows;
    *bodies_out = bodies;
    return (int)n;
}

int gw_outbox_fetch_recent(gw_outbox *ob, int64_t after_id, int limit, gw_outbox_row_fn fn,
                           void *ctx, int *count)
{
    gw_outbox_row *rows = NULL;
    char *bodies = NULL;
    *count = 0;
    pthread_mutex_lock(&ob->lock);
    int n = recent_copy(ob, after_id, limit, &rows, &bodies);
    pthread_mutex_unlock(&ob->lock);
    /* The rows are the caller's copies: fn runs without the lock. */
    for (int i = 0; i < n; i++) {
        (*count)++;
        if (fn(&rows[i], ctx) != 0)
            break;
    }
    free(rows);
    free(bodies);
    return n < 0 ? -1 : 0;
}

void gw_outbox_reader_close(gw_outbox_reader *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->fetch);
    sqlite3_close(r->db);
    free(r);
}
