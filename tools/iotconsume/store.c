#include "store.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

static const char SCHEMA[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS seen ("
    "  device TEXT NOT NULL, reading TEXT NOT NULL, received INTEGER NOT NULL,"
    "  PRIMARY KEY (device, reading)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS readings ("
    "  id INTEGER PRIMARY KEY, device TEXT NOT NULL, reading TEXT NOT NULL,"
    "  gateway TEXT, seq INTEGER, received INTEGER NOT NULL, payload TEXT NOT NULL);";

static iot_status sql_fail(sqlite3 *db, iot_err *err, const char *what)
{
    return iot_err_set(err, IOT_EIO, "%s: %s", what, sqlite3_errmsg(db));
}

iot_status ic_store_open(const char *path, ic_store *s, iot_err *err)
{
    memset(s, 0, sizeof(*s));
    iot_status st = IOT_OK;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = iot_err_set(err, IOT_EIO, "cannot open %s: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK) {
        st = sql_fail(s->db, err, path);
        goto out;
    }
    if (sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO seen VALUES (?1, ?2, ?3)", -1, &s->seen,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO readings (device, reading, gateway, seq, received, "
                           "payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &s->add, NULL) != SQLITE_OK)
        st = sql_fail(s->db, err, path);
out:
    if (st != IOT_OK)
        ic_store_close(s);
    return st;
}

void ic_store_close(ic_store *s)
{
    sqlite3_finalize(s->seen);
    sqlite3_finalize(s->add);
    sqlite3_close(s->db);
    memset(s, 0, sizeof(*s));
}

/* What identifies a reading across gateways: the device's own sequence
 * number; a reading without one is known by the gateway and its seq. */
static bool reading_key(const cJSON *doc, ic_reading *r)
{
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(doc, "device");
    const cJSON *dseq = cJSON_GetObjectItemCaseSensitive(doc, "dseq");
    const cJSON *gateway = cJSON_GetObjectItemCaseSensitive(doc, "gateway");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(doc, "seq");
    if (!cJSON_IsString(device) || strlen(device->valuestring) >= sizeof(r->device))
        return false;
    snprintf(r->device, sizeof(r->device), "%s", device->valuestring);
    r->gateway[0] = '\0';
    if (cJSON_IsString(gateway) && strlen(gateway->valuestring) < sizeof(r->gateway))
        snprintf(r->gateway, sizeof(r->gateway), "%s", gateway->valuestring);
    r->seq = cJSON_IsNumber(seq) ? (int64_t)seq->valuedouble : -1;
    if (cJSON_IsNumber(dseq) && dseq->valuedouble >= 0) {
        snprintf(r->key, sizeof(r->key), "d%.0f", dseq->valuedouble);
        return true;
    }
    if (r->gateway[0] == '\0' || r->seq < 0)
        return false;
    snprintf(r->key, sizeof(r->key), "g%s/%lld", r->gateway, (long long)r->seq);
    return true;
}

static int insert_seen(ic_store *s, const ic_reading *r, int64_t now)
{
    sqlite3_reset(s->seen);
    sqlite3_bind_text(s->seen, 1, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->seen, 2, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->seen, 3, now);
    return sqlite3_step(s->seen);
}

static int insert_reading(ic_store *s, const ic_reading *r, const char *payload, size_t len,
                          int64_t now)
{
    sqlite3_reset(s->add);
    sqlite3_bind_text(s->add, 1, r->device, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->add, 2, r->key, -1, SQLITE_STATIC);
    if (r->gateway[0])
        sqlite3_bind_text(s->add, 3, r->gateway, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s->add, 3);
    if (r->seq >= 0)
        sqlite3_bind_int64(s->add, 4, r->seq);
    else
        sqlite3_bind_null(s->add, 4);
    sqlite3_bind_int64(s->add, 5, now);
    sqlite3_bind_text(s->add, 6, payload, (int)len, SQLITE_STATIC);
    return sqlite3_step(s->add);
}

ic_result ic_store_take(ic_store *s, const char *payload, size_t len, ic_reading *r, iot_err *err)
{
    cJSON *doc = cJSON_ParseWithLength(payload, len);
    ic_result res = IC_INVALID;
    bool in_tx = false;
    int64_t now = (int64_t)time(NULL);
    if (doc == NULL || !reading_key(doc, r))
        goto out;
    res = IC_FAILED;
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(s->db, err, "begin");
        goto out;
    }
    in_tx = true;
    if (insert_seen(s, r, now) != SQLITE_DONE) {
        sql_fail(s->db, err, "seen");
        goto out;
    }
    res = sqlite3_changes(s->db) == 1 ? IC_NEW : IC_DUPLICATE;
    if (res == IC_NEW && insert_reading(s, r, payload, len, now) != SQLITE_DONE) {
        sql_fail(s->db, err, "readings");
        res = IC_FAILED;
        goto out;
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(s->db, err, "commit");
        res = IC_FAILED;
        goto out;
    }
    in_tx = false;
out:
    if (in_tx)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    cJSON_Delete(doc);
    return res;
}

iot_status ic_store_prune(ic_store *s, int64_t older_than, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status rc = IOT_OK;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM seen WHERE received < ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = sql_fail(s->db, err, "prune");
        goto out;
    }
    sqlite3_bind_int64(st, 1, older_than);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = sql_fail(s->db, err, "prune");
out:
    sqlite3_finalize(st);
    return rc;
}
