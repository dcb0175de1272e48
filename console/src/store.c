/* The console's SQLite file (store.h). */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

struct ic_store {
    sqlite3 *db;
};

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS audit(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " operator TEXT NOT NULL, address TEXT NOT NULL, action TEXT NOT NULL,"
    " target TEXT NOT NULL, result TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " topic TEXT NOT NULL, type TEXT NOT NULL, severity TEXT NOT NULL, device TEXT NOT NULL,"
    " doc TEXT NOT NULL, acked_by TEXT, acked_at INTEGER);"
    "CREATE INDEX IF NOT EXISTS events_device ON events(device);";

iot_status ic_store_open(const char *path, ic_store **out, iot_err *err)
{
    ic_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st = IOT_OK;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = iot_err_set(err, IOT_EIO, "%s: %s", path, sqlite3_errmsg(s->db));
        goto out;
    }
    sqlite3_busy_timeout(s->db, 2000);
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
        st = iot_err_set(err, IOT_ECORRUPT, "%s: %s", path, sqlite3_errmsg(s->db));
out:
    if (st != IOT_OK) {
        ic_store_close(s);
        s = NULL;
    }
    *out = s;
    return st;
}

void ic_store_close(ic_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close(s->db);
    free(s);
}

iot_status ic_store_audit(ic_store *s, int64_t now, const char *op, const char *addr,
                          const char *action, const char *target, const char *result)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO audit(time,operator,address,action,target,result)"
                                " VALUES(?,?,?,?,?,?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, op, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, addr, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, action, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, target, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, result, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : IOT_EIO;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t != NULL ? (const char *)t : "";
}

cJSON *ic_store_audit_json(ic_store *s, int limit)
{
    sqlite3_stmt *st = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "audit");
    if (arr == NULL ||
        sqlite3_prepare_v2(s->db,
                           "SELECT id,time,operator,address,action,target,result FROM audit"
                           " ORDER BY id DESC LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK) {
        cJSON_Delete(root);
        root = NULL;
        goto out;
    }
    sqlite3_bind_int(st, 1, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
        cJSON_AddNumberToObject(o, "time", (double)sqlite3_column_int64(st, 1));
        cJSON_AddStringToObject(o, "operator", col_text(st, 2));
        cJSON_AddStringToObject(o, "address", col_text(st, 3));
        cJSON_AddStringToObject(o, "action", col_text(st, 4));
        cJSON_AddStringToObject(o, "target", col_text(st, 5));
        cJSON_AddStringToObject(o, "result", col_text(st, 6));
        cJSON_AddItemToArray(arr, o);
    }
out:
    sqlite3_finalize(st);
    return root;
}

static const char *doc_string(const cJSON *doc, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

iot_status ic_store_event_add(ic_store *s, int64_t now, const char *topic, const char *doc,
                              int64_t *id)
{
    cJSON *j = cJSON_Parse(doc);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT INTO events(time,topic,type,severity,device,doc)"
                                " VALUES(?,?,?,?,?,?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, topic, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, doc_string(j, "type"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 4, doc_string(j, "severity"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, doc_string(j, "device"), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 6, doc, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    cJSON_Delete(j);
    if (rc != SQLITE_DONE)
        return IOT_EIO;
    *id = sqlite3_last_insert_rowid(s->db);
    if (*id % 1000 == 0) {
        sqlite3_stmt *del = NULL;
        if (sqlite3_prepare_v2(s->db, "DELETE FROM events WHERE id <= ?", -1, &del, NULL) ==
            SQLITE_OK) {
            sqlite3_bind_int64(del, 1, *id - IC_EVENTS_KEPT);
            (void)sqlite3_step(del);
        }
        sqlite3_finalize(del);
    }
    return IOT_OK;
}

static cJSON *event_row(sqlite3_stmt *st)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddNumberToObject(o, "received", (double)sqlite3_column_int64(st, 1));
    cJSON_AddStringToObject(o, "topic", col_text(st, 2));
    cJSON_AddStringToObject(o, "type", col_text(st, 3));
    cJSON_AddStringToObject(o, "severity", col_text(st, 4));
    cJSON_AddStringToObject(o, "device", col_text(st, 5));
    cJSON *doc = cJSON_Parse(col_text(st, 6));
    cJSON_AddItemToObject(o, "document", doc != NULL ? doc : cJSON_CreateNull());
    bool acked = sqlite3_column_type(st, 7) != SQLITE_NULL;
    cJSON_AddBoolToObject(o, "acknowledged", acked);
    if (acked) {
        cJSON_AddStringToObject(o, "acknowledged_by", col_text(st, 7));
        cJSON_AddNumberToObject(o, "acknowledged_at", (double)sqlite3_column_int64(st, 8));
    }
    return o;
}

cJSON *ic_store_events_json(ic_store *s, int limit, bool unacked, const char *device)
{
    sqlite3_stmt *st = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "events");
    if (arr == NULL ||
        sqlite3_prepare_v2(s->db,
                           "SELECT id,time,topic,type,severity,device,doc,acked_by,acked_at"
                           " FROM events WHERE (?1 = 0 OR acked_by IS NULL)"
                           " AND (?2 = '' OR device = ?2) ORDER BY id DESC LIMIT ?3",
                           -1, &st, NULL) != SQLITE_OK) {
        cJSON_Delete(root);
        root = NULL;
        goto out;
    }
    sqlite3_bind_int(st, 1, unacked ? 1 : 0);
    sqlite3_bind_text(st, 2, device, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, limit);
    while (sqlite3_step(st) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, event_row(st));
out:
    sqlite3_finalize(st);
    return root;
}

iot_status ic_store_event_ack(ic_store *s, int64_t id, const char *op, int64_t now)
{
    sqlite3_stmt *st = NULL;
    iot_status result = IOT_EIO;
    if (sqlite3_prepare_v2(s->db, "SELECT acked_by IS NOT NULL FROM events WHERE id = ?", -1, &st,
                           NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        result = IOT_ENOENT;
        goto out;
    }
    if (rc != SQLITE_ROW)
        goto out;
    if (sqlite3_column_int(st, 0) != 0) {
        result = IOT_ESTATE;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE events SET acked_by = ?, acked_at = ? WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(st, 1, op, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, id);
    if (sqlite3_step(st) == SQLITE_DONE)
        result = IOT_OK;
out:
    sqlite3_finalize(st);
    return result;
}
