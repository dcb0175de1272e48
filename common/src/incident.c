/* The incident and vulnerability register and the reporting deadlines of
 * CRA Art. 14 (iot/incident.h): the rules first, then the SQL. */
#include "iot/incident.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "registry_internal.h"

#define REGISTER_SCHEMA 6
#define CLOCK_SKEW_S    300 /* how far in the future aware_at may lie */
#define EVENT_MAX       600

static const char *const KIND_NAMES[] = {
    [IOT_INCIDENT_VULNERABILITY] = "vulnerability",
    [IOT_INCIDENT_INCIDENT] = "incident",
};
static const char *const STATE_NAMES[] = {
    [IOT_INCIDENT_OPEN] = "open",
    [IOT_INCIDENT_MITIGATED] = "mitigated",
    [IOT_INCIDENT_CLOSED] = "closed",
};
static const char *const REPORT_NAMES[] = {
    [IOT_REPORT_EARLY_WARNING] = "early-warning",
    [IOT_REPORT_NOTIFICATION] = "notification",
    [IOT_REPORT_FINAL] = "final",
    [IOT_REPORT_USER_NOTICE] = "user-notice",
};
static const char *const STATUS_NAMES[] = {
    [IOT_REPORT_NOT_REQUIRED] = "not-required",
    [IOT_REPORT_WAITING] = "waiting",
    [IOT_REPORT_DUE] = "due",
    [IOT_REPORT_OVERDUE] = "overdue",
    [IOT_REPORT_SUBMITTED] = "submitted",
    [IOT_REPORT_SUBMITTED_LATE] = "submitted-late",
};
static const char *const SEVERITIES[] = {"low", "medium", "high", "critical"};
static const char *const MALICIOUS[] = {"yes", "no", "unknown"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
    return i < n ? names[i] : "?";
}

static int index_of(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *iot_incident_kind_name(iot_incident_kind kind)
{
    return name_of(KIND_NAMES, COUNT(KIND_NAMES), kind);
}

const char *iot_incident_state_name(iot_incident_state state)
{
    return name_of(STATE_NAMES, COUNT(STATE_NAMES), state);
}

const char *iot_report_type_name(iot_report_type type)
{
    return name_of(REPORT_NAMES, COUNT(REPORT_NAMES), type);
}

const char *iot_report_status_name(iot_report_status status)
{
    return name_of(STATUS_NAMES, COUNT(STATUS_NAMES), status);
}

bool iot_incident_kind_parse(const char *s, iot_incident_kind *out)
{
    int i = index_of(KIND_NAMES, COUNT(KIND_NAMES), s);
    if (i >= 0)
        *out = (iot_incident_kind)i;
    return i >= 0;
}

bool iot_report_type_parse(const char *s, iot_report_type *out)
{
    int i = index_of(REPORT_NAMES, COUNT(REPORT_NAMES), s);
    if (i >= 0)
        *out = (iot_report_type)i;
    return i >= 0;
}

/* --- the text fields, one table for validation, binding and reading -------- */

typedef struct text_field {
    const char *column;
    size_t offset;
    size_t max;     /* the longest value, without the NUL */
    bool multiline; /* tabs and newlines allowed */
} text_field;

#define TEXT(col, ml)                                                                              \
    {                                                                                              \
#col, offsetof(iot_incident, col), sizeof(((iot_incident *)0)->col) - 1, ml                \
    }
static const text_field TEXTS[] = {
    TEXT(severity, false),      TEXT(malicious, false), TEXT(title, false),
    TEXT(description, true),    TEXT(devices, false),   TEXT(versions, false),
    TEXT(member_states, false), TEXT(corrective, true), TEXT(user_measures, true),
    TEXT(actor, true),          TEXT(root_cause, true), TEXT(sensitivity, false),
    TEXT(cve, false),           TEXT(notes, true),
};
#define N_TEXTS COUNT(TEXTS)

static char *text_of(iot_incident *inc, const text_field *f)
{
    return (char *)inc + f->offset;
}

static const char *ctext_of(const iot_incident *inc, const text_field *f)
{
    return (const char *)inc + f->offset;
}

/* Printable UTF-8 or ASCII: no control bytes but, where allowed, tab and
 * newline. */
static bool text_ok(const char *s, bool multiline)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p >= 0x20 && *p != 0x7f)
            continue;
        if (!multiline || (*p != '\n' && *p != '\t'))
            return false;
    }
    return true;
}

static iot_status check_texts(const iot_incident *inc, iot_err *err)
{
    for (size_t i = 0; i < N_TEXTS; i++) {
        const char *v = ctext_of(inc, &TEXTS[i]);
        if (strnlen(v, TEXTS[i].max + 1) > TEXTS[i].max)
            return iot_err_set(err, IOT_EINVAL, "incident %s is longer than %zu bytes",
                               TEXTS[i].column, TEXTS[i].max);
        if (!text_ok(v, TEXTS[i].multiline))
            return iot_err_set(err, IOT_EINVAL, "incident %s contains control characters",
                               TEXTS[i].column);
    }
    return IOT_OK;
}

static iot_status check_times(const iot_incident *inc, int64_t now, iot_err *err)
{
    if (inc->aware_at <= 0)
        return iot_err_set(err, IOT_EINVAL, "incident: the time it became known is missing");
    if (inc->aware_at > now + CLOCK_SKEW_S)
        return iot_err_set(err, IOT_EINVAL,
                           "incident: it cannot have become known in the future (aware at %lld, "
                           "now %lld)",
                           (long long)inc->aware_at, (long long)now);
    if (inc->fixed_at < 0 || (inc->fixed_at != 0 && inc->fixed_at < inc->aware_at))
        return iot_err_set(err, IOT_EINVAL,
                           "incident: the fix time is before the time it became known");
    for (int r = 0; r < IOT_REPORT_COUNT; r++)
        if (inc->submitted[r] != 0 && inc->submitted[r] < inc->aware_at)
            return iot_err_set(err, IOT_EINVAL,
                               "incident: the %s cannot have been submitted before the time it "
                               "became known",
                               iot_report_type_name((iot_report_type)r));
    return IOT_OK;
}

iot_status iot_incident_validate(const iot_incident *inc, int64_t now, iot_err *err)
{
    if ((unsigned)inc->kind >= COUNT(KIND_NAMES))
        return iot_err_set(err, IOT_EINVAL, "incident: unknown kind %d", (int)inc->kind);
    iot_status s = check_texts(inc, err);
    if (s != IOT_OK)
        return s;
    if (inc->title[0] == '\0')
        return iot_err_set(err, IOT_EINVAL, "incident: the title (what happened) is missing");
    if (index_of(SEVERITIES, COUNT(SEVERITIES), inc->severity) < 0)
        return iot_err_set(err, IOT_EINVAL,
                           "incident: severity '%s' is not low, medium, high or critical",
                           inc->severity);
    if (index_of(MALICIOUS, COUNT(MALICIOUS), inc->malicious) < 0)
        return iot_err_set(err, IOT_EINVAL, "incident: malicious '%s' is not yes, no or unknown",
                           inc->malicious);
    return check_times(inc, now, err);
}

/* --- the deadlines ----------------------------------------------------------- */

static int days_in_month(int year, int mon)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[mon] + (mon == 1 && leap ? 1 : 0);
}

/* t plus one calendar month in UTC, the day clamped to the end of the
 * next month (31 January + 1 month = 28 or 29 February); the time of day
 * stays as it was. */
static int64_t add_month(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL)
        return t + 31 * IOT_INCIDENT_DAY;
    int year = tm.tm_year + 1900;
    int this_month = days_in_month(year, tm.tm_mon);
    int next_month =
        tm.tm_mon == 11 ? days_in_month(year + 1, 0) : days_in_month(year, tm.tm_mon + 1);
    int mday = tm.tm_mday > next_month ? next_month : tm.tm_mday;
    return t + (int64_t)(this_month - tm.tm_mday + mday) * IOT_INCIDENT_DAY;
}

static bool final_deadline(const iot_incident *inc, int64_t *due)
{
    if (inc->kind == IOT_INCIDENT_VULNERABILITY) {
        /* Art. 14(2)(c): 14 days after a corrective or mitigating measure
         * is available. */
        if (inc->fixed_at == 0)
            return false;
        *due = inc->fixed_at + 14 * IOT_INCIDENT_DAY;
        return true;
    }
    /* Art. 14(4)(c): one month after the incident notification. */
    if (inc->submitted[IOT_REPORT_NOTIFICATION] == 0)
        return false;
    *due = add_month(inc->submitted[IOT_REPORT_NOTIFICATION]);
    return true;
}

bool iot_incident_deadline(const iot_incident *inc, iot_report_type type, int64_t *due)
{
    if (!inc->reportable)
        return false;
    switch (type) {
    case IOT_REPORT_EARLY_WARNING:
        *due = inc->aware_at + 24 * IOT_INCIDENT_HOUR;
        return true;
    case IOT_REPORT_NOTIFICATION:
        *due = inc->aware_at + 72 * IOT_INCIDENT_HOUR;
        return true;
    case IOT_REPORT_FINAL:
        return final_deadline(inc, due);
    default:
        return false; /* the user notice: "in a timely manner" */
    }
}

iot_report_status iot_incident_report_status(const iot_incident *inc, iot_report_type type,
                                             int64_t now)
{
    int64_t due = 0;
    bool has_due = iot_incident_deadline(inc, type, &due);
    int64_t sent = (unsigned)type < IOT_REPORT_COUNT ? inc->submitted[type] : 0;
    if (sent != 0)
        return has_due && sent > due ? IOT_REPORT_SUBMITTED_LATE : IOT_REPORT_SUBMITTED;
    bool required = inc->reportable && type < IOT_REPORT_COUNT;
    if (!required || inc->state == IOT_INCIDENT_CLOSED)
        return IOT_REPORT_NOT_REQUIRED;
    if (!has_due)
        return IOT_REPORT_WAITING;
    return now > due ? IOT_REPORT_OVERDUE : IOT_REPORT_DUE;
}

int iot_incident_overdue(const iot_incident *inc, int64_t now)
{
    int n = 0;
    for (int r = 0; r < IOT_REPORT_COUNT; r++)
        n += iot_incident_report_status(inc, (iot_report_type)r, now) == IOT_REPORT_OVERDUE;
    return n;
}

/* --- storage ------------------------------------------------------------------ */

static const char *const SUBMITTED_COLUMNS[] = {
    [IOT_REPORT_EARLY_WARNING] = "early_warning_at",
    [IOT_REPORT_NOTIFICATION] = "notification_at",
    [IOT_REPORT_FINAL] = "final_at",
    [IOT_REPORT_USER_NOTICE] = "user_notice_at",
};

/* The columns in the order rows are read and bound: the texts, then these. */
#define FIXED_COLUMNS                                                                              \
    "kind, state, reportable, aware_at, fixed_at, closed_at, created, early_warning_at,"           \
    " notification_at, final_at, user_notice_at"
#define N_FIXED 11

/* "col1, col2, ..." of the texts, then the fixed columns. */
static void column_list(char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_TEXTS && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s, ", TEXTS[i].column);
    if (n < size)
        snprintf(buf + n, size - n, "%s", FIXED_COLUMNS);
}

static iot_incident_state state_for(const iot_incident *inc)
{
    if (inc->state == IOT_INCIDENT_CLOSED)
        return IOT_INCIDENT_CLOSED;
    return inc->fixed_at != 0 ? IOT_INCIDENT_MITIGATED : IOT_INCIDENT_OPEN;
}

/* Binds every column from position 1; ?N_TEXTS+N_FIXED+1 is left for the
 * id. */
static void bind_incident(sqlite3_stmt *st, const iot_incident *inc)
{
    int p = 1;
    for (size_t i = 0; i < N_TEXTS; i++)
        sqlite3_bind_text(st, p++, ctext_of(inc, &TEXTS[i]), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, p++, iot_incident_kind_name(inc->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, p++, iot_incident_state_name(inc->state), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, p++, inc->reportable ? 1 : 0);
    sqlite3_bind_int64(st, p++, inc->aware_at);
    sqlite3_bind_int64(st, p++, inc->fixed_at);
    sqlite3_bind_int64(st, p++, inc->closed_at);
    sqlite3_bind_int64(st, p++, inc->created);
    for (int r = 0; r < IOT_REPORT_COUNT; r++)
        sqlite3_bind_int64(st, p++, inc->submitted[r]);
}

/* Reads a row of "SELECT id, <column_list> ...". */
static void read_incident(sqlite3_stmt *st, iot_incident *inc)
{
    memset(inc, 0, sizeof(*inc));
    inc->id = sqlite3_column_int64(st, 0);
    int c = 1;
    for (size_t i = 0; i < N_TEXTS; i++, c++)
        iot__registry_text(text_of(inc, &TEXTS[i]), TEXTS[i].max + 1, st, c);
    char name[32];
    iot__registry_text(name, sizeof(name), st, c++);
    iot_incident_kind_parse(name, &inc->kind);
    iot__registry_text(name, sizeof(name), st, c++);
    int s = index_of(STATE_NAMES, COUNT(STATE_NAMES), name);
    inc->state = s < 0 ? IOT_INCIDENT_OPEN : (iot_incident_state)s;
    inc->reportable = sqlite3_column_int(st, c++) != 0;
    inc->aware_at = sqlite3_column_int64(st, c++);
    inc->fixed_at = sqlite3_column_int64(st, c++);
    inc->closed_at = sqlite3_column_int64(st, c++);
    inc->created = sqlite3_column_int64(st, c++);
    for (int r = 0; r < IOT_REPORT_COUNT; r++)
        inc->submitted[r] = sqlite3_column_int64(st, c++);
}

static iot_status need_register(iot_registry *reg, iot_err *err)
{
    return iot__registry_need(reg, REGISTER_SCHEMA, err);
}

static iot_status add_event(iot_registry *reg, int64_t id, int64_t at, const char *event,
                            iot_err *err)
{
    char line[EVENT_MAX + 1];
    iot__registry_printable(line, sizeof(line), event != NULL ? event : "");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db,
                                "INSERT INTO incident_events (incident, at, event)"
                                " VALUES (?1, ?2, ?3)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_text(st, 3, line, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : iot__registry_fail(reg, rc, "recording an incident", err);
}

/* Runs one INSERT or UPDATE of a whole entry. */
static iot_status write_incident(iot_registry *reg, const char *sql, const iot_incident *inc,
                                 iot_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_incident(st, inc);
        if (sqlite3_bind_parameter_count(st) > (int)(N_TEXTS + N_FIXED))
            sqlite3_bind_int64(st, (int)(N_TEXTS + N_FIXED + 1), inc->id);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : iot__registry_fail(reg, rc, "recording an incident", err);
}

/* Ends the transaction: commits after success, else rolls back. */
static iot_status in_transaction(iot_registry *reg, iot_status s, iot_err *err)
{
    if (s == IOT_OK)
        return iot_registry_commit(reg, err);
    iot_registry_rollback(reg);
    return s;
}

iot_status iot_incident_open(iot_registry *reg, iot_incident *inc, int64_t now, iot_err *err)
{
    iot_status s = need_register(reg, err);
    if (s == IOT_OK)
        s = iot_incident_validate(inc, now, err);
    if (s != IOT_OK)
        return s;
    inc->id = 0;
    inc->created = now;
    inc->closed_at = 0;
    inc->state = inc->fixed_at != 0 ? IOT_INCIDENT_MITIGATED : IOT_INCIDENT_OPEN;
    char cols[512], sql[1024];
    column_list(cols, sizeof(cols));
    snprintf(sql, sizeof(sql),
             "INSERT INTO incidents (%s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
             " ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
             cols);
    s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    s = write_incident(reg, sql, inc, err);
    if (s == IOT_OK) {
        inc->id = sqlite3_last_insert_rowid(reg->db);
        s = add_event(reg, inc->id, now, "opened", err);
    }
    return in_transaction(reg, s, err);
}

iot_status iot_incident_get(iot_registry *reg, int64_t id, iot_incident *out, iot_err *err)
{
    if (reg->version < REGISTER_SCHEMA)
        return iot_err_set(err, IOT_ENOENT, "no incident %lld in registry %s", (long long)id,
                           reg->path);
    char cols[512], sql[700];
    column_list(cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "SELECT id, %s FROM incidents WHERE id = ?1", cols);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
    }
    iot_status s = IOT_OK;
    if (rc == SQLITE_ROW)
        read_incident(st, out);
    else if (rc == SQLITE_DONE)
        s = iot_err_set(err, IOT_ENOENT,
                        "no incident %lld in registry %s (see 'iotctl incident "
                        "list --all')",
                        (long long)id, reg->path);
    else
        s = iot__registry_fail(reg, rc, "reading an incident", err);
    sqlite3_finalize(st);
    return s;
}

/* The stored entry must exist and not be closed. */
static iot_status check_changeable(iot_registry *reg, int64_t id, iot_err *err)
{
    iot_incident *old = sqlite3_malloc(sizeof(*old));
    if (old == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory reading an incident");
    iot_status s = iot_incident_get(reg, id, old, err);
    if (s == IOT_OK && old->state == IOT_INCIDENT_CLOSED)
        s = iot_err_set(err, IOT_ESTATE, "incident %lld is closed; it can no longer be changed",
                        (long long)id);
    sqlite3_free(old);
    return s;
}

static iot_status save(iot_registry *reg, const iot_incident *inc, const char *event, int64_t now,
                       iot_err *err)
{
    char sql[1024];
    size_t n = (size_t)snprintf(sql, sizeof(sql), "UPDATE incidents SET ");
    for (size_t i = 0; i < N_TEXTS; i++)
        n += (size_t)snprintf(sql + n, sizeof(sql) - n, "%s = ?%zu, ", TEXTS[i].column, i + 1);
    snprintf(sql + n, sizeof(sql) - n,
             "kind = ?15, state = ?16, reportable = ?17, aware_at = ?18, fixed_at = ?19,"
             " closed_at = ?20, created = ?21, %s = ?22, %s = ?23, %s = ?24, %s = ?25"
             " WHERE id = ?26",
             SUBMITTED_COLUMNS[0], SUBMITTED_COLUMNS[1], SUBMITTED_COLUMNS[2],
             SUBMITTED_COLUMNS[3]);
    iot_status s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    s = check_changeable(reg, inc->id, err);
    if (s == IOT_OK)
        s = write_incident(reg, sql, inc, err);
    if (s == IOT_OK)
        s = add_event(reg, inc->id, now, event, err);
    return in_transaction(reg, s, err);
}

iot_status iot_incident_update(iot_registry *reg, iot_incident *inc, const char *event, int64_t now,
                               iot_err *err)
{
    iot_status s = need_register(reg, err);
    if (s == IOT_OK)
        s = iot_incident_validate(inc, now, err);
    if (s != IOT_OK)
        return s;
    if (inc->state == IOT_INCIDENT_CLOSED)
        return iot_err_set(err, IOT_ESTATE, "incident %lld is closed; it can no longer be changed",
                           (long long)inc->id);
    inc->state = state_for(inc);
    return save(reg, inc, event, now, err);
}

static iot_status mark_closed(iot_registry *reg, int64_t id, int64_t now, iot_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        reg->db, "UPDATE incidents SET state = 'closed', closed_at = ?1 WHERE id = ?2", -1, &st,
        NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, id);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? IOT_OK : iot__registry_fail(reg, rc, "closing an incident", err);
}

iot_status iot_incident_close(iot_registry *reg, int64_t id, const char *event, int64_t now,
                              iot_err *err)
{
    iot_status s = need_register(reg, err);
    if (s == IOT_OK)
        s = iot_registry_begin(reg, err);
    if (s != IOT_OK)
        return s;
    s = check_changeable(reg, id, err);
    if (s == IOT_OK)
        s = mark_closed(reg, id, now, err);
    if (s == IOT_OK)
        s = add_event(reg, id, now, event != NULL ? event : "closed", err);
    return in_transaction(reg, s, err);
}

/* Steps st to its end, calling fn on each row; a non-zero return from fn
 * stops the walk and is returned. */
typedef int (*row_fn)(sqlite3_stmt *st, void *ctx);
static iot_status walk_rows(iot_registry *reg, sqlite3_stmt *st, row_fn fn, void *ctx,
                            const char *doing, iot_err *err)
{
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            return IOT_OK;
        if (rc != SQLITE_ROW)
            return iot__registry_fail(reg, rc, doing, err);
        int r = fn(st, ctx);
        if (r != 0)
            return (iot_status)r;
    }
}

typedef struct incident_rows {
    iot_incident *inc;
    iot_incident_fn fn;
    void *ctx;
} incident_rows;

static int incident_row(sqlite3_stmt *st, void *arg)
{
    incident_rows *w = arg;
    read_incident(st, w->inc);
    return w->fn(w->inc, w->ctx);
}

iot_status iot_incident_foreach(iot_registry *reg, iot_incident_fn fn, void *ctx, iot_err *err)
{
    if (reg->version < REGISTER_SCHEMA)
        return IOT_OK;
    char cols[512], sql[700];
    column_list(cols, sizeof(cols));
    snprintf(sql, sizeof(sql), "SELECT id, %s FROM incidents ORDER BY id", cols);
    incident_rows w = {.inc = sqlite3_malloc(sizeof(iot_incident)), .fn = fn, .ctx = ctx};
    if (w.inc == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory reading incidents");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, &st, NULL);
    iot_status s = rc == SQLITE_OK ? walk_rows(reg, st, incident_row, &w, "reading incidents", err)
                                   : iot__registry_fail(reg, rc, "reading incidents", err);
    sqlite3_finalize(st);
    sqlite3_free(w.inc);
    return s;
}

typedef struct event_rows {
    iot_incident_event_fn fn;
    void *ctx;
} event_rows;

static int event_row(sqlite3_stmt *st, void *arg)
{
    event_rows *w = arg;
    const unsigned char *ev = sqlite3_column_text(st, 1);
    return w->fn(sqlite3_column_int64(st, 0), ev ? (const char *)ev : "", w->ctx);
}

iot_status iot_incident_history(iot_registry *reg, int64_t id, iot_incident_event_fn fn, void *ctx,
                                iot_err *err)
{
    if (reg->version < REGISTER_SCHEMA)
        return IOT_OK;
    static const char doing[] = "reading an incident's history";
    sqlite3_stmt *st = NULL;
    event_rows w = {.fn = fn, .ctx = ctx};
    int rc = sqlite3_prepare_v2(reg->db,
                                "SELECT at, event FROM incident_events WHERE incident = ?1"
                                " ORDER BY rowid",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(st, 1, id);
    iot_status s = rc == SQLITE_OK ? walk_rows(reg, st, event_row, &w, doing, err)
                                   : iot__registry_fail(reg, rc, doing, err);
    sqlite3_finalize(st);
    return s;
}

typedef struct overdue_count {
    int64_t now;
    int count;
} overdue_count;

static int count_one(const iot_incident *inc, void *arg)
{
    overdue_count *c = arg;
    c->count += iot_incident_overdue(inc, c->now);
    return 0;
}

iot_status iot_incident_count_overdue(iot_registry *reg, int64_t now, int *count, iot_err *err)
{
    overdue_count c = {.now = now, .count = 0};
    iot_status s = iot_incident_foreach(reg, count_one, &c, err);
    *count = s == IOT_OK ? c.count : 0;
    return s;
}
