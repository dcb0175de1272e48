/* See fleet.h. */
#include "fleet.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "iot/identity.h"

#define RESET_MAX 16

typedef struct entry {
    char device[IOT_ID_MAX + 1];
    bool has_report;
    char firmware[GW_HEALTH_VERSION_MAX + 1];
    uint32_t secure_version, boot_count, connect_failures;
    char reset_reason[RESET_MAX];
    int64_t since_upload_s, heap_min, cert_not_after;
    int64_t last_seen, last_report;
    char slot[GW_HEALTH_SLOT_MAX + 1];
    bool dirty;
} entry;

struct gw_fleet {
    pthread_mutex_t lock;
    sqlite3 *db;
    char path[512];
    entry *slots; /* open addressing, a power of two; device[0] == '\\0': empty */
    size_t cap, used;
};

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS fleet ("
                             "  device TEXT PRIMARY KEY,"
                             "  has_report INTEGER NOT NULL,"
                             "  firmware TEXT NOT NULL,"
                             "  secure_version INTEGER NOT NULL,"
                             "  boot_count INTEGER NOT NULL,"
                             "  reset_reason TEXT NOT NULL,"
                             "  connect_failures INTEGER NOT NULL,"
                             "  since_upload_s INTEGER NOT NULL,"
                             "  heap_min INTEGER NOT NULL,"
                             "  cert_not_after INTEGER NOT NULL,"
                             "  last_seen INTEGER NOT NULL,"
                             "  last_report INTEGER NOT NULL,"
                             "  slot TEXT NOT NULL DEFAULT '') WITHOUT ROWID;";

/* An inventory written before reports carried the slot gets the column. */
static int add_slot_column(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT slot FROM fleet LIMIT 0", -1, &st, NULL);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK)
        return SQLITE_OK;
    return sqlite3_exec(db, "ALTER TABLE fleet ADD COLUMN slot TEXT NOT NULL DEFAULT ''", NULL,
                        NULL, NULL);
}

static uint64_t hash_of(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static entry *probe(entry *slots, size_t cap, const char *device)
{
    size_t i = (size_t)hash_of(device) & (cap - 1);
    while (slots[i].device[0] != '\0' && strcmp(slots[i].device, device) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool grow(gw_fleet *f)
{
    size_t cap = f->cap ? f->cap * 2 : 256;
    entry *slots = calloc(cap, sizeof(entry));
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].device[0] != '\0')
            *probe(slots, cap, f->slots[i].device) = f->slots[i];
    free(f->slots);
    f->slots = slots;
    f->cap = cap;
    return true;
}

/* The device's entry, made if new; NULL when out of memory. Under lock. */
static entry *entry_of(gw_fleet *f, const char *device)
{
    if ((f->used + 1) * 10 > f->cap * 7 && !grow(f))
        return NULL;
    entry *e = probe(f->slots, f->cap, device);
    if (e->device[0] == '\0') {
        memset(e, 0, sizeof(*e));
        snprintf(e->device, sizeof(e->device), "%s", device);
        e->since_upload_s = e->heap_min = -1;
        f->used++;
    }
    return e;
}

static iot_status db_fail(gw_fleet *f, const char *doing, iot_err *err)
{
    return iot_err_set(err, IOT_EIO, "fleet inventory %s: %s: %s", f->path, doing,
                       f->db ? sqlite3_errmsg(f->db) : "cannot open");
}

static void load_row(gw_fleet *f, sqlite3_stmt *st)
{
    entry *e = entry_of(f, (const char *)sqlite3_column_text(st, 0));
    if (e == NULL)
        return;
    e->has_report = sqlite3_column_int(st, 1) != 0;
    snprintf(e->firmware, sizeof(e->firmware), "%s", (const char *)sqlite3_column_text(st, 2));
    e->secure_version = (uint32_t)sqlite3_column_int64(st, 3);
    e->boot_count = (uint32_t)sqlite3_column_int64(st, 4);
    snprintf(e->reset_reason, sizeof(e->reset_reason), "%s",
             (const char *)sqlite3_column_text(st, 5));
    e->connect_failures = (uint32_t)sqlite3_column_int64(st, 6);
    e->since_upload_s = sqlite3_column_int64(st, 7);
    e->heap_min = sqlite3_column_int64(st, 8);
    e->cert_not_after = sqlite3_column_int64(st, 9);
    e->last_seen = sqlite3_column_int64(st, 10);
    e->last_report = sqlite3_column_int64(st, 11);
    const unsigned char *slot = sqlite3_column_text(st, 12);
    snprintf(e->slot, sizeof(e->slot), "%s", slot != NULL ? (const char *)slot : "");
}

static iot_status load(gw_fleet *f, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(f->db, "SELECT * FROM fleet", -1, &st, NULL) != SQLITE_OK)
        return db_fail(f, "reading", err);
    int rc = sqlite3_step(st);
    for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        const char *device = (const char *)sqlite3_column_text(st, 0);
        if (device != NULL && iot_id_is_valid(device))
            load_row(f, st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : db_fail(f, "reading", err);
}

iot_status gw_fleet_open(const char *path, gw_fleet **out, iot_err *err)
{
    *out = NULL;
    gw_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL || !grow(f)) {
        free(f);
        return iot_err_set(err, IOT_ENOMEM, "out of memory for the fleet inventory");
    }
    pthread_mutex_init(&f->lock, NULL);
    snprintf(f->path, sizeof(f->path), "%s", path);
    iot_status st = IOT_OK;
    if (sqlite3_open_v2(path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(f->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_exec(f->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
        add_slot_column(f->db) != SQLITE_OK)
        st = db_fail(f, "opening", err);
    if (st == IOT_OK)
        st = load(f, err);
    if (st != IOT_OK) {
        gw_fleet_close(f);
        return st;
    }
    *out = f;
    return IOT_OK;
}

void gw_fleet_seen(gw_fleet *f, const char *device, int64_t now)
{
    pthread_mutex_lock(&f->lock);
    entry *e = entry_of(f, device);
    if (e != NULL && e->last_seen != now) {
        e->last_seen = now;
        e->dirty = true;
    }
    pthread_mutex_unlock(&f->lock);
}

void gw_fleet_report(gw_fleet *f, const char *device, const gw_health_report *r, int64_t now,
                     gw_fleet_change *change)
{
    memset(change, 0, sizeof(*change));
    pthread_mutex_lock(&f->lock);
    entry *e = entry_of(f, device);
    if (e != NULL) {
        change->known = e->has_report;
        change->prev_secure_version = e->secure_version;
        snprintf(change->prev_firmware, sizeof(change->prev_firmware), "%s", e->firmware);
        e->has_report = true;
        snprintf(e->firmware, sizeof(e->firmware), "%s", r->firmware);
        e->secure_version = r->secure_version;
        e->boot_count = r->boot_count;
        snprintf(e->reset_reason, sizeof(e->reset_reason), "%s", r->reset_reason);
        e->connect_failures = r->connect_failures;
        e->since_upload_s = r->since_upload_s;
        e->heap_min = r->heap_min;
        e->cert_not_after = r->cert_not_after;
        snprintf(e->slot, sizeof(e->slot), "%s", r->slot);
        e->last_seen = e->last_report = now;
        e->dirty = true;
    }
    pthread_mutex_unlock(&f->lock);
}

/* The dirty entries, copied so the disk is written without the lock. */
static entry *take_dirty(gw_fleet *f, size_t *n)
{
    pthread_mutex_lock(&f->lock);
    size_t count = 0;
    for (size_t i = 0; i < f->cap; i++)
        count += f->slots[i].device[0] != '\0' && f->slots[i].dirty;
    entry *copy = count > 0 ? malloc(count * sizeof(entry)) : NULL;
    *n = 0;
    for (size_t i = 0; copy != NULL && i < f->cap; i++)
        if (f->slots[i].device[0] != '\0' && f->slots[i].dirty) {
            copy[(*n)++] = f->slots[i];
            f->slots[i].dirty = false;
        }
    pthread_mutex_unlock(&f->lock);
    return copy;
}

static int bind_entry(sqlite3_stmt *st, const entry *e)
{
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, e->device, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, e->has_report);
    sqlite3_bind_text(st, 3, e->firmware, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->secure_version);
    sqlite3_bind_int64(st, 5, e->boot_count);
    sqlite3_bind_text(st, 6, e->reset_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, e->connect_failures);
    sqlite3_bind_int64(st, 8, e->since_upload_s);
    sqlite3_bind_int64(st, 9, e->heap_min);
    sqlite3_bind_int64(st, 10, e->cert_not_after);
    sqlite3_bind_int64(st, 11, e->last_seen);
    sqlite3_bind_int64(st, 12, e->last_report);
    sqlite3_bind_text(st, 13, e->slot, -1, SQLITE_STATIC);
    return sqlite3_step(st);
}

iot_status gw_fleet_flush(gw_fleet *f, iot_err *err)
{
    size_t n = 0;
    entry *dirty = take_dirty(f, &n);
    if (dirty == NULL)
        return IOT_OK;
    iot_status s = IOT_OK;
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(f->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO fleet VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        s = db_fail(f, "writing", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (bind_entry(st, &dirty[i]) != SQLITE_DONE) {
            s = db_fail(f, "writing", err);
            goto out;
        }
    if (sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        s = db_fail(f, "committing", err);
out:
    sqlite3_finalize(st);
    if (s != IOT_OK) {
        sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL);
        /* Written again with the next flush. */
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < n; i++) {
            entry *e = probe(f->slots, f->cap, dirty[i].device);
            if (e->device[0] != '\0')
                e->dirty = true;
        }
        pthread_mutex_unlock(&f->lock);
    }
    free(dirty);
    return s;
}

void gw_fleet_close(gw_fleet *f)
{
    if (f == NULL)
        return;
    iot_err err = {0};
    if (f->db != NULL)
        (void)gw_fleet_flush(f, &err);
    sqlite3_close(f->db);
    pthread_mutex_destroy(&f->lock);
    free(f->slots);
    free(f);
}

static int by_device(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->device, ((const entry *)b)->device);
}

static void add_entry(cJSON *arr, const entry *e)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return;
    cJSON_AddStringToObject(o, "device", e->device);
    cJSON_AddStringToObject(o, "firmware", e->firmware);
    cJSON_AddNumberToObject(o, "secure_version", e->secure_version);
    cJSON_AddStringToObject(o, "slot", e->slot);
    cJSON_AddNumberToObject(o, "last_seen", (double)e->last_seen);
    cJSON_AddNumberToObject(o, "last_report", (double)e->last_report);
    cJSON_AddNumberToObject(o, "cert_not_after", (double)e->cert_not_after);
    cJSON_AddNumberToObject(o, "boot_count", e->boot_count);
    cJSON_AddStringToObject(o, "reset_reason", e->reset_reason);
    cJSON_AddNumberToObject(o, "connect_failures", e->connect_failures);
    cJSON_AddNumberToObject(o, "since_upload_s", (double)e->since_upload_s);
    cJSON_AddNumberToObject(o, "heap_min", (double)e->heap_min);
    cJSON_AddItemToArray(arr, o);
}

char *gw_fleet_json(gw_fleet *f, int64_t now)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&f->lock);
    entry *all = f->used > 0 ? malloc(f->used * sizeof(entry)) : NULL;
    size_t n = 0;
    for (size_t i = 0; all != NULL && i < f->cap; i++)
        if (f->slots[i].device[0] != '\0')
            all[n++] = f->slots[i];
    pthread_mutex_unlock(&f->lock);
    if (root == NULL || arr == NULL || (f->used > 0 && all == NULL))
        goto out;
    if (n > 1) /* all is NULL while the inventory is empty: qsort must not see it */
        qsort(all, n, sizeof(entry), by_device);
    for (size_t i = 0; i < n; i++)
        add_entry(arr, &all[i]);
    cJSON_AddNumberToObject(root, "generated", (double)now);
    cJSON_AddItemToObject(root, "devices", arr);
    arr = NULL;
    text = cJSON_PrintUnformatted(root);
out:
    free(all);
    cJSON_Delete(arr);
    cJSON_Delete(root);
    return text;
}

int64_t gw_fleet_silent(gw_fleet *f, int64_t now, int64_t after_s)
{
    int64_t n = 0;
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].device[0] != '\0' && now - f->slots[i].last_seen > after_s)
            n++;
    pthread_mutex_unlock(&f->lock);
    return n;
}
