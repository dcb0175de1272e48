#include "iot/registry.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/fsutil.h"
#include "registry_internal.h"

/* 'IOTR' in the SQLite header: tells a registry from any other database. */
#define REGISTRY_APP_ID 0x494f5452
/* 2 added `superseded`, 3 the key fingerprints (`spki`), 4 the device
 * class (`class_id`), 5 issuing CAs, enrollment and renewal grace, 6 the
 * incident and vulnerability register; older files are read as they are
 * and upgraded on a write open. */
#define REGISTRY_SCHEMA_VERSION 6
#define DEFAULT_BUSY_MS         2000

/* Certificates replaced by a renewal under the same name: the row in
 * `certificates` now describes the new one, and the CRL lists these. */
#define SUPERSEDED_TABLE                                                                           \
    "CREATE TABLE superseded ("                                                                    \
    "  serial TEXT NOT NULL PRIMARY KEY,"                                                          \
    "  name TEXT NOT NULL,"                                                                        \
    "  kind TEXT NOT NULL CHECK (kind IN ('device','server','client')),"                           \
    "  fingerprint TEXT NOT NULL,"                                                                 \
    "  not_before INTEGER NOT NULL,"                                                               \
    "  not_after INTEGER NOT NULL,"                                                                \
    "  created INTEGER NOT NULL,"                                                                  \
    "  replaced_at INTEGER NOT NULL);"

#define DEVICES_VIEW                                                                               \
    "CREATE VIEW devices AS SELECT name AS id, serial, fingerprint, not_after, state, created,"    \
    "  revoked_at FROM certificates WHERE kind = 'device';"

static const char SCHEMA[] = "CREATE TABLE certificates ("
                             "  name TEXT NOT NULL UNIQUE,"
                             "  kind TEXT NOT NULL CHECK (kind IN ('device','server','client')),"
                             "  role TEXT NOT NULL DEFAULT '',"
                             "  serial TEXT NOT NULL UNIQUE,"
                             "  fingerprint TEXT NOT NULL,"
                             "  not_before INTEGER NOT NULL,"
                             "  not_after INTEGER NOT NULL,"
                             "  state TEXT NOT NULL CHECK (state IN ('active','revoked')),"
                             "  created INTEGER NOT NULL,"
                             "  revoked_at INTEGER NOT NULL DEFAULT 0,"
                             "  revoke_reason TEXT NOT NULL DEFAULT '');"
                             "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                             "INSERT INTO meta VALUES ('crl_number', 0);"
    /* The device view is the registry as the gateway and operators see it. */
    DEVICES_VIEW SUPERSEDED_TABLE;

/* Schema 3: the SHA-256 of each certificate's SubjectPublicKeyInfo, indexed,
 * so that "is this key already someone's?" is one lookup. '' where it is not
 * known (rows from before schema 3 whose certificate could not be read). A
 * new registry is made the same way an old one is upgraded. */
static const char SCHEMA_V3[] = "ALTER TABLE certificates ADD COLUMN spki TEXT NOT NULL DEFAULT '';"
                                "ALTER TABLE superseded ADD COLUMN spki TEXT NOT NULL DEFAULT '';"
                                "CREATE INDEX certificates_spki ON certificates (spki);"
                                "CREATE INDEX superseded_spki ON superseded (spki);";

/* Schema 4: a device's class, the class-id of the firmware it runs, so a
 * rollout can name a kind of device; '' where it is not set. */
static const char SCHEMA_V4[] =
    "ALTER TABLE certificates ADD COLUMN class_id TEXT NOT NULL DEFAULT '';";

/* Schema 5: enrollment over the network. `certificates` is rebuilt (a
 * CHECK cannot be altered) to admit the kind 'issuer', the intermediate
 * CAs the gateway signs with; every certificate names its issuer ('' for
 * the root) and may keep its DER (those the gateway issued, so that a lost
 * answer can be given again). A replaced certificate may keep working for
 * a grace period, until its successor is first used. Tokens are kept as
 * hashes; enrollments record what an operator must approve. */
static const char SCHEMA_V5[] =
    "DROP VIEW IF EXISTS devices;"
    "CREATE TABLE certificates_v5 ("
    "  name TEXT NOT NULL UNIQUE,"
    "  kind TEXT NOT NULL CHECK (kind IN ('device','server','client','issuer')),"
    "  role TEXT NOT NULL DEFAULT '',"
    "  serial TEXT NOT NULL UNIQUE,"
    "  fingerprint TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('active','revoked')),"
    "  created INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  revoke_reason TEXT NOT NULL DEFAULT '',"
    "  spki TEXT NOT NULL DEFAULT '',"
    "  class_id TEXT NOT NULL DEFAULT '',"
    "  issuer TEXT NOT NULL DEFAULT '',"
    "  der BLOB);"
    "INSERT INTO certificates_v5 (name, kind, role, serial, fingerprint, not_before, not_after,"
    "  state, created, revoked_at, revoke_reason, spki, class_id)"
    "  SELECT name, kind, role, serial, fingerprint, not_before, not_after, state, created,"
    "  revoked_at, revoke_reason, spki, class_id FROM certificates;"
    "DROP TABLE certificates;"
    "ALTER TABLE certificates_v5 RENAME TO certificates;"
    "CREATE INDEX certificates_spki ON certificates (spki);" DEVICES_VIEW
    "ALTER TABLE superseded ADD COLUMN issuer TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE superseded ADD COLUMN successor TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE superseded ADD COLUMN grace_until INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE superseded ADD COLUMN der BLOB;"
    "CREATE INDEX superseded_successor ON superseded (successor);"
    "CREATE TABLE tokens ("
    "  id TEXT PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  hash TEXT NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL,"
    "  expires INTEGER NOT NULL,"
    "  used_at INTEGER NOT NULL DEFAULT 0,"
    "  revoked_at INTEGER NOT NULL DEFAULT 0,"
    "  serial TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX tokens_device ON tokens (device);"
    "CREATE TABLE enrollments ("
    "  device TEXT PRIMARY KEY,"
    "  method TEXT NOT NULL CHECK (method IN ('token','bootstrap')),"
    "  auth TEXT NOT NULL,"
    "  spki TEXT NOT NULL,"
    "  peer TEXT NOT NULL DEFAULT '',"
    "  requested INTEGER NOT NULL,"
    "  decided INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL CHECK (state IN ('pending','approved','denied','issued')),"
    "  serial TEXT NOT NULL DEFAULT '');";

/* Schema 6: the incident and vulnerability register (iot/incident.h), with
 * the time each CRA Art. 14 report was submitted (0: not yet), and each
 * entry's history, one line per change. */
static const char SCHEMA_V6[] =
    "CREATE TABLE incidents ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  kind TEXT NOT NULL CHECK (kind IN ('vulnerability','incident')),"
    "  state TEXT NOT NULL CHECK (state IN ('open','mitigated','closed')),"
    "  reportable INTEGER NOT NULL CHECK (reportable IN (0,1)),"
    "  severity TEXT NOT NULL CHECK (severity IN ('low','medium','high','critical')),"
    "  malicious TEXT NOT NULL CHECK (malicious IN ('yes','no','unknown')),"
    "  title TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  devices TEXT NOT NULL DEFAULT '',"
    "  versions TEXT NOT NULL DEFAULT '',"
    "  member_states TEXT NOT NULL DEFAULT '',"
    "  corrective TEXT NOT NULL DEFAULT '',"
    "  user_measures TEXT NOT NULL DEFAULT '',"
    "  actor TEXT NOT NULL DEFAULT '',"
    "  root_cause TEXT NOT NULL DEFAULT '',"
    "  sensitivity TEXT NOT NULL DEFAULT '',"
    "  cve TEXT NOT NULL DEFAULT '',"
    "  notes TEXT NOT NULL DEFAULT '',"
    "  aware_at INTEGER NOT NULL,"
    "  fixed_at INTEGER NOT NULL DEFAULT 0,"
    "  closed_at INTEGER NOT NULL DEFAULT 0,"
    "  created INTEGER NOT NULL,"
    "  early_warning_at INTEGER NOT NULL DEFAULT 0,"
    "  notification_at INTEGER NOT NULL DEFAULT 0,"
    "  final_at INTEGER NOT NULL DEFAULT 0,"
    "  user_notice_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE incident_events ("
    "  incident INTEGER NOT NULL REFERENCES incidents (id),"
    "  at INTEGER NOT NULL,"
    "  event TEXT NOT NULL);"
    "CREATE INDEX incident_events_incident ON incident_events (incident);";

const char *iot_cert_kind_name(iot_cert_kind kind)
{
    switch (kind) {
    case IOT_KIND_DEVICE:
        return "device";
    case IOT_KIND_SERVER:
        return "server";
    case IOT_KIND_CLIENT:
        return "client";
    case IOT_KIND_ISSUER:
        return "issuer";
    }
    return "?";
}

const char *iot_cert_kind_article(iot_cert_kind kind)
{
    return kind == IOT_KIND_ISSUER ? "an" : "a";
}

static int kind_from_name(const char *s)
{
    if (strcmp(s, "device") == 0)
        return IOT_KIND_DEVICE;
    if (strcmp(s, "server") == 0)
        return IOT_KIND_SERVER;
    if (strcmp(s, "client") == 0)
        return IOT_KIND_CLIENT;
    if (strcmp(s, "issuer") == 0)
        return IOT_KIND_ISSUER;
    return -1;
}

/* Copies src into dst with every byte outside printable ASCII replaced by
 * '?': text from the file (a name, or SQLite's message quoting a damaged
 * schema) must not put control characters into a one-line message. */
void iot__registry_printable(char *dst, size_t size, const char *src)
{
    size_t i = 0;
    for (; src[i] != '\0' && i + 1 < size; i++)
        dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
    dst[i] = '\0';
}

/* Maps an SQLite failure to a status with a message naming the file. */
iot_status iot__registry_fail(iot_registry *reg, int rc, const char *doing, iot_err *err)
{
    int base = rc & 0xff;
    char detail[256];
    iot__registry_printable(detail, sizeof(detail),
                            reg->db ? sqlite3_errmsg(reg->db) : sqlite3_errstr(rc));
    if (base == SQLITE_BUSY || base == SQLITE_LOCKED)
        return iot_err_set(err, IOT_EBUSY,
                           "registry %s is locked by another process while %s; try again when "
                           "it has finished",
                           reg->path, doing);
    if (base == SQLITE_NOTADB || base == SQLITE_CORRUPT)
        return iot_err_set(err, IOT_ECORRUPT,
                           "registry %s is corrupt or not a database (%s); restore it from a "
                           "backup",
                           reg->path, detail);
    if (base == SQLITE_READONLY || base == SQLITE_PERM || base == SQLITE_CANTOPEN)
        return iot_err_set(err, IOT_EPERM, "registry %s cannot be %s: %s", reg->path,
                           base == SQLITE_CANTOPEN ? "opened" : "written", detail);
    return iot_err_set(err, IOT_EIO, "registry %s: %s failed: %s", reg->path, doing, detail);
}

static iot_status exec(iot_registry *reg, const char *sql, const char *doing, iot_err *err)
{
    int rc = sqlite3_exec(reg->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? IOT_OK : iot__registry_fail(reg, rc, doing, err);
}

/* A statement and what it does, for the message if it fails. */
typedef struct sql_step {
    const char *sql; /* NULL: skipped */
    const char *doing;
} sql_step;

/* Runs the steps in order up to the first that fails. */
static iot_status exec_steps(iot_registry *reg, const sql_step *steps, size_t n, iot_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (steps[i].sql == NULL)
            continue;
        iot_status st = exec(reg, steps[i].sql, steps[i].doing, err);
        if (st != IOT_OK)
            return st;
    }
    return IOT_OK;
}

/* The first column of the first row of sql as an integer: SQLITE_OK,
 * SQLITE_DONE when there is no row, or SQLite's error. */
static int query_int64(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        goto out;
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_OK;
out:
    sqlite3_finalize(st);
    return rc;
}

static iot_status pragma_int(iot_registry *reg, const char *pragma, int *out, iot_err *err)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA %s", pragma);
    int64_t v = 0;
    int rc = query_int64(reg->db, sql, &v);
    if (rc != SQLITE_OK)
        return iot__registry_fail(reg, rc, "reading the header", err);
    *out = (int)v;
    return IOT_OK;
}

static iot_status reg_alloc(const char *path, iot_registry **out, iot_err *err)
{
    iot_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory opening %s", path);
    snprintf(reg->path, sizeof(reg->path), "%s", path);
    *out = reg;
    return IOT_OK;
}

static iot_status reg_connect(iot_registry *reg, int flags, iot_err *err)
{
    int rc = sqlite3_open_v2(reg->path, &reg->db, flags, NULL);
    if (rc != SQLITE_OK)
        return iot__registry_fail(reg, rc, "opening", err);
    sqlite3_busy_timeout(reg->db, DEFAULT_BUSY_MS);
    sqlite3_extended_result_codes(reg->db, 1);
    return IOT_OK;
}

iot_status iot_registry_create(const char *path, iot_registry **out, iot_err *err)
{
    *out = NULL;
    if (iot_path_exists(path))
        return iot_err_set(err, IOT_EEXIST, "registry %s already exists", path);
    iot_registry *reg = NULL;
    iot_status st = reg_alloc(path, &reg, err);
    if (st != IOT_OK)
        return st;
    st = reg_connect(reg, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE, err);
    if (st != IOT_OK)
        goto out;
    char sql[128];
    snprintf(sql, sizeof(sql), "PRAGMA application_id=%d; PRAGMA user_version=%d;", REGISTRY_APP_ID,
             REGISTRY_SCHEMA_VERSION);
    const sql_step steps[] = {
        {"BEGIN IMMEDIATE", "creating"},    {sql, "creating"},
        {SCHEMA, "creating the schema"},    {SCHEMA_V3, "creating the schema"},
        {SCHEMA_V4, "creating the schema"}, {SCHEMA_V5, "creating the schema"},
        {SCHEMA_V6, "creating the schema"}, {"COMMIT", "creating"},
    };
    st = exec_steps(reg, steps, sizeof(steps) / sizeof(steps[0]), err);
    if (st != IOT_OK)
        goto out;
    reg->version = REGISTRY_SCHEMA_VERSION;
    *out = reg;
    reg = NULL;
out:
    iot_registry_close(reg);
    return st;
}

/* The schema version of a registry this program understands. */
static iot_status read_header(iot_registry *reg, const char *path, int *version, iot_err *err)
{
    int app_id = 0;
    iot_status st = pragma_int(reg, "application_id", &app_id, err);
    if (st != IOT_OK)
        return st;
    st = pragma_int(reg, "user_version", version, err);
    if (st != IOT_OK)
        return st;
    if (app_id != REGISTRY_APP_ID)
        return iot_err_set(err, IOT_ECORRUPT, "%s is not a device registry (application id %#x)",
                           path, (unsigned)app_id);
    if (*version < 1 || *version > REGISTRY_SCHEMA_VERSION)
        return iot_err_set(err, IOT_ECORRUPT,
                           "registry %s has schema version %d; this program understands 1 to %d",
                           path, *version, REGISTRY_SCHEMA_VERSION);
    return IOT_OK;
}

/* One transaction from any older version to the current one. */
static iot_status upgrade_schema(iot_registry *reg, int version, iot_err *err)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version=%d;", REGISTRY_SCHEMA_VERSION);
    iot_status st = exec(reg, "BEGIN IMMEDIATE", "upgrading the schema", err);
    if (st != IOT_OK)
        return st;
    const sql_step steps[] = {
        {version < 2 ? SUPERSEDED_TABLE : NULL, "upgrading the schema"},
        {version < 3 ? SCHEMA_V3 : NULL, "upgrading the schema"},
        {version < 4 ? SCHEMA_V4 : NULL, "upgrading the schema"},
        {version < 5 ? SCHEMA_V5 : NULL, "upgrading the schema"},
        {SCHEMA_V6, "upgrading the schema"},
        {sql, "upgrading the schema"},
        {"COMMIT", "upgrading the schema"},
    };
    st = exec_steps(reg, steps, sizeof(steps) / sizeof(steps[0]), err);
    if (st != IOT_OK) {
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
        return st;
    }
    reg->upgraded_from = version;
    reg->version = REGISTRY_SCHEMA_VERSION;
    return IOT_OK;
}

iot_status iot_registry_open(const char *path, int mode, iot_registry **out, iot_err *err)
{
    *out = NULL;
    if (!iot_path_exists(path))
        return iot_err_set(err, IOT_ENOENT, "registry %s does not exist (run 'iotctl pki init')",
                           path);
    iot_registry *reg = NULL;
    iot_status st = reg_alloc(path, &reg, err);
    if (st != IOT_OK)
        return st;
    int flags = mode == IOT_REGISTRY_WRITE ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY;
    st = reg_connect(reg, flags, err);
    if (st != IOT_OK)
        goto out;
    int version = 0;
    st = read_header(reg, path, &version, err);
    if (st != IOT_OK)
        goto out;
    reg->version = version;
    if (mode == IOT_REGISTRY_WRITE && version < REGISTRY_SCHEMA_VERSION) {
        st = upgrade_schema(reg, version, err);
        if (st != IOT_OK)
            goto out;
    }
    *out = reg;
    reg = NULL;
out:
    iot_registry_close(reg);
    return st;
}

void iot_registry_close(iot_registry *reg)
{
    if (reg == NULL)
        return;
    sqlite3_close(reg->db);
    free(reg);
}

void iot_registry_set_busy_timeout(iot_registry *reg, int ms)
{
    sqlite3_busy_timeout(reg->db, ms);
}

iot_status iot_registry_begin(iot_registry *reg, iot_err *err)
{
    return exec(reg, "BEGIN IMMEDIATE", "starting a change", err);
}

iot_status iot_registry_commit(iot_registry *reg, iot_err *err)
{
    return exec(reg, "COMMIT", "saving a change", err);
}

void iot_registry_rollback(iot_registry *reg)
{
    if (!sqlite3_get_autocommit(reg->db))
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
}

void iot__registry_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", s ? (const char *)s : "");
}

/* Columns of a record, the 16 of IOT__CERT_COLUMNS in every schema: `spki`
 * is '' in files older than schema 3, `class_id` in files older than 4 and
 * for replaced certificates, `issuer` in files older than 5. */
#define SELECT_FIELDS IOT__RECORD_FIELDS
#define SELECT_V5     IOT__CERT_COLUMNS
#define SELECT_V4     SELECT_FIELDS "spki, class_id, '', '', 0 FROM certificates "
#define SELECT_V3     SELECT_FIELDS "spki, '', '', '', 0 FROM certificates "
#define SELECT_V2     SELECT_FIELDS "'', '', '', '', 0 FROM certificates "
#define SELECT_COLUMNS(tail)                                                                       \
    (reg->version >= 5   ? SELECT_V5 tail                                                          \
     : reg->version >= 4 ? SELECT_V4 tail                                                          \
     : reg->version >= 3 ? SELECT_V3 tail                                                          \
                         : SELECT_V2 tail)
/* For the calls that need schema 3 or later. */
#define SELECT_KEYED(tail)                                                                         \
    (reg->version >= 5 ? SELECT_V5 tail : reg->version >= 4 ? SELECT_V4 tail : SELECT_V3 tail)
#define SUPERSEDED_FIELDS IOT__SUPERSEDED_FIELDS
#define SUPERSEDED_V5     IOT__SUPERSEDED_COLUMNS
#define SUPERSEDED_V3     SUPERSEDED_FIELDS "spki, '', '', '', 0 FROM superseded "
#define SUPERSEDED_V2     SUPERSEDED_FIELDS "'', '', '', '', 0 FROM superseded "
#define SUPERSEDED_COLUMNS(tail)                                                                   \
    (reg->version >= 5   ? SUPERSEDED_V5 tail                                                      \
     : reg->version >= 3 ? SUPERSEDED_V3 tail                                                      \
                         : SUPERSEDED_V2 tail)

iot_status iot__registry_row(iot_registry *reg, sqlite3_stmt *st, iot_cert_record *rec,
                             iot_err *err)
{
    memset(rec, 0, sizeof(*rec));
    iot__registry_text(rec->name, sizeof(rec->name), st, 0);
    char kind[16];
    iot__registry_text(kind, sizeof(kind), st, 1);
    int k = kind_from_name(kind);
    if (k < 0) {
        char name[IOT_ID_MAX + 1];
        iot__registry_printable(name, sizeof(name), rec->name);
        iot__registry_printable(kind, sizeof(kind), kind);
        return iot_err_set(err, IOT_ECORRUPT, "registry %s: record '%s' has unknown kind '%s'",
                           reg->path, name, kind);
    }
    rec->kind = (iot_cert_kind)k;
    iot__registry_text(rec->role, sizeof(rec->role), st, 2);
    iot__registry_text(rec->serial, sizeof(rec->serial), st, 3);
    iot__registry_text(rec->fingerprint, sizeof(rec->fingerprint), st, 4);
    rec->not_before = sqlite3_column_int64(st, 5);
    rec->not_after = sqlite3_column_int64(st, 6);
    rec->created = sqlite3_column_int64(st, 7);
    const unsigned char *state = sqlite3_column_text(st, 8);
    rec->revoked = state != NULL && strcmp((const char *)state, "revoked") == 0;
    rec->revoked_at = sqlite3_column_int64(st, 9);
    iot__registry_text(rec->revoke_reason, sizeof(rec->revoke_reason), st, 10);
    iot__registry_text(rec->spki, sizeof(rec->spki), st, 11);
    iot__registry_text(rec->class_id, sizeof(rec->class_id), st, 12);
    iot__registry_text(rec->issuer, sizeof(rec->issuer), st, 13);
    iot__registry_text(rec->successor, sizeof(rec->successor), st, 14);
    rec->grace_until = sqlite3_column_int64(st, 15);
    return IOT_OK;
}

static iot_status get_one2(iot_registry *reg, const char *sql, const char *key, const char *key2,
                           iot_cert_record *out, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        s = iot__registry_fail(reg, rc, "looking up a record", err);
        goto out;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (key2 != NULL)
        sqlite3_bind_text(st, 2, key2, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        s = iot__registry_row(reg, st, out, err);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT, "'%s' is not in registry %s", key, reg->path);
    else
        s = iot__registry_fail(reg, rc, "looking up a record", err);
out:
    sqlite3_finalize(st);
    return s;
}

static iot_status get_one(iot_registry *reg, const char *sql, const char *key, iot_cert_record *out,
                          iot_err *err)
{
    return get_one2(reg, sql, key, NULL, out, err);
}

iot_status iot_registry_get_by_name(iot_registry *reg, const char *name, iot_cert_record *out,
                                    iot_err *err)
{
    return get_one(reg, SELECT_COLUMNS("WHERE name = ?1"), name, out, err);
}

iot_status iot_registry_get_by_serial(iot_registry *reg, const char *serial_hex,
                                      iot_cert_record *out, iot_err *err)
{
    return get_one(reg, SELECT_COLUMNS("WHERE serial = ?1"), serial_hex, out, err);
}

iot_status iot__registry_need(iot_registry *reg, int version, iot_err *err)
{
    if (reg->version < version)
        return iot_err_set(err, IOT_ESTATE,
                           "registry %s was opened read-only (schema %d); a write open upgrades it",
                           reg->path, reg->version);
    return IOT_OK;
}

static iot_status need_v3(iot_registry *reg, iot_err *err)
{
    return iot__registry_need(reg, 3, err);
}

iot_status iot_registry_find_key(iot_registry *reg, const char *spki, const char *other_than,
                                 iot_cert_record *out, iot_err *err)
{
    if (reg->version < 3 || spki == NULL || spki[0] == '\0')
        return iot_err_set(err, IOT_ENOENT, "no key fingerprints in registry %s", reg->path);
    /* The active or revoked certificate first: it says more than a
     * replaced one. */
    iot_status s =
        get_one2(reg,
                 SELECT_FIELDS "spki, '', '', '', 0, 0 FROM certificates WHERE spki = ?1 AND"
                               " name <> ?2 UNION ALL " SUPERSEDED_FIELDS
                               "spki, '', '', '', 0, 1 FROM superseded WHERE spki = ?1 AND"
                               " name <> ?2 ORDER BY 17, 1 LIMIT 1",
                 spki, other_than ? other_than : "", out, err);
    if (s == IOT_ENOENT)
        return iot_err_set(err, IOT_ENOENT, "no certificate in registry %s has key %s", reg->path,
                           spki);
    return s;
}

/* One key, one identity: refuses a key that a certificate of another name
 * has or had. */
static iot_status check_key_free(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    iot_cert_record holder;
    iot_err lookup;
    iot_status s = iot_registry_find_key(reg, rec->spki, rec->name, &holder, &lookup);
    if (s == IOT_ENOENT)
        return IOT_OK;
    if (s != IOT_OK) {
        if (err)
            *err = lookup;
        return s;
    }
    bool replaced = strcmp(holder.revoke_reason, "superseded") == 0 && holder.revoked;
    return iot_err_set(err, IOT_EEXIST,
                       "the public key of '%s' is already the key of %s%s %s '%s' (serial %s); "
                       "one key, one identity",
                       rec->name, replaced ? "a replaced certificate of" : "",
                       replaced ? "" : (holder.revoked ? " the revoked" : " the"),
                       iot_cert_kind_name(holder.kind), holder.name, holder.serial);
}

/* A new certificate's key needs schema 3 and must be no other name's. */
iot_status iot__registry_check_new_key(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    iot_status s = need_v3(reg, err);
    if (s != IOT_OK)
        return s;
    return check_key_free(reg, rec, err);
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool iot_class_id_is_valid(const char *s)
{
    size_t len = s != NULL ? strnlen(s, IOT_CLASS_ID_MAX + 1) : 0;
    if (len == 0 || len > IOT_CLASS_ID_MAX || !is_alnum(s[0]))
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

static iot_status class_invalid(const char *class_id, iot_err *err)
{
    char shown[IOT_CLASS_ID_MAX + 1];
    iot__registry_printable(shown, sizeof(shown), class_id);
    return iot_err_set(err, IOT_EINVAL,
                       "class '%s' is not a class-id: 1-%d of [A-Za-z0-9._-], first a letter or "
                       "a digit",
                       shown, IOT_CLASS_ID_MAX);
}

/* Only a device has a class, and it follows the manifest's class-id rule. */
static iot_status check_class(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    if (rec->class_id[0] == '\0')
        return IOT_OK;
    if (!iot_class_id_is_valid(rec->class_id))
        return class_invalid(rec->class_id, err);
    if (rec->kind != IOT_KIND_DEVICE)
        return iot_err_set(err, IOT_EINVAL, "'%s' is a %s certificate; only devices have a class",
                           rec->name, iot_cert_kind_name(rec->kind));
    if (reg->version < 4)
        return iot_err_set(err, IOT_ESTATE,
                           "registry %s was opened read-only (schema %d); a write open upgrades it",
                           reg->path, reg->version);
    return IOT_OK;
}

iot_status iot_registry_set_class(iot_registry *reg, const char *name, const char *class_id,
                                  iot_err *err)
{
    if (class_id[0] != '\0' && !iot_class_id_is_valid(class_id))
        return class_invalid(class_id, err);
    if (reg->version < 4)
        return iot_err_set(err, IOT_ESTATE,
                           "registry %s was opened read-only (schema %d); a write open upgrades it",
                           reg->path, reg->version);
    static const char sql[] = "UPDATE certificates SET class_id = ?2 WHERE name = ?1 AND"
                              " kind = 'device' AND state = 'active'";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, class_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return iot__registry_fail(reg, rc, "setting a class", err);
    if (sqlite3_changes(reg->db) == 0)
        return iot_err_set(err, IOT_ENOENT, "no active device '%s' in registry %s",
                           iot_id_is_valid(name) ? name : "?", reg->path);
    return IOT_OK;
}

iot_status iot_registry_add(iot_registry *reg, const iot_cert_record *rec, iot_err *err)
{
    iot_cert_record existing;
    iot_err lookup;
    iot_status s = iot_registry_get_by_name(reg, rec->name, &existing, &lookup);
    if (s == IOT_OK)
        return iot_err_set(err, IOT_EEXIST, "the name '%s' is already taken by %s %s certificate",
                           rec->name,
                           existing.revoked ? "a revoked" : iot_cert_kind_article(existing.kind),
                           iot_cert_kind_name(existing.kind));
    if (s != IOT_ENOENT) {
        if (err)
            *err = lookup;
        return s;
    }
    s = iot__registry_need(reg, 5, err);
    if (s == IOT_OK)
        s = iot__registry_check_new_key(reg, rec, err);
    if (s == IOT_OK)
        s = check_class(reg, rec, err);
    if (s != IOT_OK)
        return s;
    static const char sql[] =
        "INSERT INTO certificates (name, kind, role, serial, fingerprint, not_before, not_after,"
        " state, created, spki, class_id, issuer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'active',"
        " ?8, ?9, ?10, ?11)";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, rec->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, iot_cert_kind_name(rec->kind), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, rec->role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, rec->serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, rec->fingerprint, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, rec->not_before);
        sqlite3_bind_int64(st, 7, rec->not_after);
        sqlite3_bind_int64(st, 8, rec->created);
        sqlite3_bind_text(st, 9, rec->spki, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, rec->class_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, rec->issuer, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return IOT_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return iot_err_set(err, IOT_EEXIST, "serial %s is already in registry %s", rec->serial,
                           reg->path);
    return iot__registry_fail(reg, rc, "adding a record", err);
}

iot_status iot_registry_revoke_check(iot_registry *reg, iot_cert_kind kind, const char *name,
                                     iot_cert_record *out, iot_err *err)
{
    iot_status s = iot_registry_get_by_name(reg, name, out, err);
    if (s != IOT_OK)
        return s;
    if (out->kind != kind)
        return iot_err_set(err, IOT_ENOENT, "'%s' is %s %s certificate, not %s %s", name,
                           iot_cert_kind_article(out->kind), iot_cert_kind_name(out->kind),
                           iot_cert_kind_article(kind), iot_cert_kind_name(kind));
    if (out->revoked)
        return iot_err_set(err, IOT_ESTATE, "%s '%s' is already revoked", iot_cert_kind_name(kind),
                           name);
    return IOT_OK;
}

iot_status iot_registry_revoke(iot_registry *reg, iot_cert_kind kind, const char *name,
                               const char *reason, int64_t now, iot_err *err)
{
    iot_cert_record rec;
    iot_status s = iot_registry_revoke_check(reg, kind, name, &rec, err);
    if (s != IOT_OK)
        return s;
    static const char sql[] = "UPDATE certificates SET state = 'revoked', revoked_at = ?1,"
                              " revoke_reason = ?2 WHERE name = ?3";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, reason ? reason : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : iot__registry_fail(reg, rc, "revoking", err);
}

iot_status iot__registry_walk(iot_registry *reg, const char *sql, const char *text, int64_t num,
                              iot_registry_fn fn, void *ctx, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    iot_status s = IOT_OK;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        s = iot__registry_fail(reg, rc, "listing records", err);
        goto out;
    }
    if (text != NULL)
        sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
    else if (sqlite3_bind_parameter_count(st) > 0)
        sqlite3_bind_int64(st, 1, num);
    for (rc = sqlite3_step(st); rc == SQLITE_ROW; rc = sqlite3_step(st)) {
        iot_cert_record rec;
        s = iot__registry_row(reg, st, &rec, err);
        if (s != IOT_OK)
            goto out;
        int stop = fn(&rec, ctx);
        if (stop != 0) {
            s = (iot_status)stop;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        s = iot__registry_fail(reg, rc, "listing records", err);
out:
    sqlite3_finalize(st);
    return s;
}

/* Runs `sql`, with `param` (if not NULL) bound to ?1, and calls fn on each
 * row. */
static iot_status walk(iot_registry *reg, const char *sql, const char *param, iot_registry_fn fn,
                       void *ctx, iot_err *err)
{
    return iot__registry_walk(reg, sql, param, 0, fn, ctx, err);
}

iot_status iot_registry_foreach(iot_registry *reg, int kind, iot_registry_fn fn, void *ctx,
                                iot_err *err)
{
    if (kind >= 0)
        return walk(reg, SELECT_COLUMNS("WHERE kind = ?1 ORDER BY name"),
                    iot_cert_kind_name((iot_cert_kind)kind), fn, ctx, err);
    return walk(reg, SELECT_COLUMNS("ORDER BY name"), NULL, fn, ctx, err);
}

iot_status iot_registry_foreach_revoked(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                        iot_err *err)
{
    if (reg->version < 2)
        return walk(reg, SELECT_COLUMNS("WHERE state = 'revoked' ORDER BY serial"), NULL, fn, ctx,
                    err);
    return walk(reg,
                reg->version >= 5 ? SELECT_V5 "WHERE state = 'revoked' UNION ALL " SUPERSEDED_V5
                                              "ORDER BY serial"
                : reg->version >= 3 ? SELECT_V3 "WHERE state = 'revoked' UNION ALL " SUPERSEDED_V3
                                                "ORDER BY serial"
                                    : SELECT_V2 "WHERE state = 'revoked' UNION ALL " SUPERSEDED_V2
                                                "ORDER BY serial",
                NULL, fn, ctx, err);
}

iot_status iot_registry_foreach_superseded(iot_registry *reg, const char *name, iot_registry_fn fn,
                                           void *ctx, iot_err *err)
{
    if (reg->version < 2)
        return IOT_OK;
    return walk(reg, SUPERSEDED_COLUMNS("WHERE name = ?1 ORDER BY replaced_at, rowid"), name, fn,
                ctx, err);
}

int iot_registry_upgraded_from(const iot_registry *reg)
{
    return reg->upgraded_from;
}

iot_status iot_registry_foreach_shared_key(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                           iot_err *err)
{
    if (reg->version < 3)
        return IOT_OK; /* no fingerprints before schema 3 */
#define SHARED_KEYS                                                                                \
    "WITH k (name, spki) AS (SELECT name, spki FROM certificates WHERE spki <> ''"                 \
    "  UNION ALL SELECT name, spki FROM superseded WHERE spki <> ''),"                             \
    " shared AS (SELECT spki FROM k GROUP BY spki HAVING COUNT(DISTINCT name) > 1) "
#define SHARED_TAIL                                                                                \
    "WHERE spki IN shared UNION ALL " SUPERSEDED_V3 "WHERE spki IN shared ORDER BY 12, 1, 4"
    return walk(reg,
                reg->version >= 5   ? SHARED_KEYS SELECT_V5 SHARED_TAIL
                : reg->version >= 4 ? SHARED_KEYS SELECT_V4 SHARED_TAIL
                                    : SHARED_KEYS SELECT_V3 SHARED_TAIL,
                NULL, fn, ctx, err);
}

iot_status iot_registry_foreach_unkeyed(iot_registry *reg, iot_registry_fn fn, void *ctx,
                                        iot_err *err)
{
    iot_status s = need_v3(reg, err);
    if (s != IOT_OK)
        return s;
    return walk(
        reg,
        SELECT_KEYED("WHERE spki = '' UNION ALL " SUPERSEDED_V3 "WHERE spki = '' ORDER BY 1, 4"),
        NULL, fn, ctx, err);
}

iot_status iot_registry_set_key(iot_registry *reg, const char *serial_hex, const char *spki,
                                iot_err *err)
{
    iot_status s = need_v3(reg, err);
    if (s != IOT_OK)
        return s;
    static const char *const sql[] = {
        "UPDATE certificates SET spki = ?2 WHERE serial = ?1 AND spki = ''",
        "UPDATE superseded SET spki = ?2 WHERE serial = ?1 AND spki = ''",
    };
    int changed = 0;
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(reg->db, sql[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, serial_hex, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, spki, -1, SQLITE_STATIC);
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return iot__registry_fail(reg, rc, "recording a key", err);
        changed += sqlite3_changes(reg->db);
    }
    if (changed == 0)
        return iot_err_set(err, IOT_ENOENT,
                           "registry %s has no certificate with serial %s and no recorded key",
                           reg->path, serial_hex);
    return IOT_OK;
}

iot_status iot_registry_next_crl_number(iot_registry *reg, uint64_t *out, iot_err *err)
{
    iot_status s = exec(reg, "UPDATE meta SET value = value + 1 WHERE key = 'crl_number'",
                        "numbering the CRL", err);
    if (s != IOT_OK)
        return s;
    int64_t number = 0;
    int rc = query_int64(reg->db, "SELECT value FROM meta WHERE key = 'crl_number'", &number);
    if (rc == SQLITE_DONE)
        return iot_err_set(err, IOT_ECORRUPT, "registry %s has no CRL number", reg->path);
    if (rc != SQLITE_OK)
        return iot__registry_fail(reg, rc, "numbering the CRL", err);
    *out = (uint64_t)number;
    return IOT_OK;
}
