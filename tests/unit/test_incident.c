/* The CRA Art. 14 deadlines (iot/incident.h) with a fake clock, and the
 * register on a real registry file: on time, overdue, submitted late,
 * closed, not reportable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iot/incident.h"
#include "iot/registry.h"

#include <sqlite3.h>

#define HOUR 3600
#define DAY  86400
/* 2027-01-31T10:00:00Z: the month after it is a short one. */
#define T0 1801389600

static iot_incident make(iot_incident_kind kind, bool reportable)
{
    iot_incident inc;
    memset(&inc, 0, sizeof(inc));
    inc.kind = kind;
    inc.reportable = reportable;
    snprintf(inc.title, sizeof(inc.title), "TLS stack accepts a forged certificate");
    snprintf(inc.severity, sizeof(inc.severity), "high");
    snprintf(inc.malicious, sizeof(inc.malicious), "unknown");
    inc.aware_at = T0;
    return inc;
}

static void test_vulnerability_deadlines(void **state)
{
    (void)state;
    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    int64_t due = 0;
    assert_true(iot_incident_deadline(&v, IOT_REPORT_EARLY_WARNING, &due));
    assert_int_equal(due, T0 + 24 * HOUR);
    assert_true(iot_incident_deadline(&v, IOT_REPORT_NOTIFICATION, &due));
    assert_int_equal(due, T0 + 72 * HOUR);
    /* The final report falls due 14 days after a measure is available. */
    assert_false(iot_incident_deadline(&v, IOT_REPORT_FINAL, &due));
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_FINAL, T0 + 30 * DAY),
                     IOT_REPORT_WAITING);
    v.fixed_at = T0 + 5 * DAY;
    assert_true(iot_incident_deadline(&v, IOT_REPORT_FINAL, &due));
    assert_int_equal(due, T0 + 19 * DAY);
    /* The notice to users has no fixed term (Art. 14(8)). */
    assert_false(iot_incident_deadline(&v, IOT_REPORT_USER_NOTICE, &due));
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_USER_NOTICE, T0 + 30 * DAY),
                     IOT_REPORT_WAITING);
}

static void test_incident_final_one_month_after_notification(void **state)
{
    (void)state;
    iot_incident i = make(IOT_INCIDENT_INCIDENT, true);
    int64_t due = 0;
    i.fixed_at = T0 + DAY; /* does not matter for an incident */
    assert_false(iot_incident_deadline(&i, IOT_REPORT_FINAL, &due));
    i.submitted[IOT_REPORT_NOTIFICATION] = T0; /* 31 January */
    assert_true(iot_incident_deadline(&i, IOT_REPORT_FINAL, &due));
    assert_int_equal(due, T0 + 28 * DAY);                /* 28 February 2027, 10:00 */
    i.submitted[IOT_REPORT_NOTIFICATION] = T0 + 2 * DAY; /* 2 February */
    assert_true(iot_incident_deadline(&i, IOT_REPORT_FINAL, &due));
    assert_int_equal(due, T0 + 2 * DAY + 28 * DAY);    /* 2 March */
    i.submitted[IOT_REPORT_NOTIFICATION] = 1796119200; /* 2026-12-01T10:00Z */
    assert_true(iot_incident_deadline(&i, IOT_REPORT_FINAL, &due));
    assert_int_equal(due, 1796119200 + 31 * DAY); /* 2027-01-01, across the year */
}

static void test_on_time_overdue_late(void **state)
{
    (void)state;
    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_EARLY_WARNING, T0 + 23 * HOUR),
                     IOT_REPORT_DUE);
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_EARLY_WARNING, T0 + 24 * HOUR),
                     IOT_REPORT_DUE);
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_EARLY_WARNING, T0 + 24 * HOUR + 1),
                     IOT_REPORT_OVERDUE);
    assert_int_equal(iot_incident_overdue(&v, T0 + 23 * HOUR), 0);
    assert_int_equal(iot_incident_overdue(&v, T0 + 25 * HOUR), 1);
    assert_int_equal(iot_incident_overdue(&v, T0 + 73 * HOUR), 2);
    v.submitted[IOT_REPORT_EARLY_WARNING] = T0 + 2 * HOUR;
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_EARLY_WARNING, T0 + 73 * HOUR),
                     IOT_REPORT_SUBMITTED);
    assert_int_equal(iot_incident_overdue(&v, T0 + 73 * HOUR), 1);
    v.submitted[IOT_REPORT_NOTIFICATION] = T0 + 80 * HOUR;
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_NOTIFICATION, T0 + 81 * HOUR),
                     IOT_REPORT_SUBMITTED_LATE);
    assert_int_equal(iot_incident_overdue(&v, T0 + 81 * HOUR), 0);
    v.fixed_at = T0 + 4 * DAY;
    assert_int_equal(iot_incident_overdue(&v, T0 + 18 * DAY), 0);
    assert_int_equal(iot_incident_overdue(&v, T0 + 18 * DAY + 1), 1);
}

static void test_closed_and_not_reportable(void **state)
{
    (void)state;
    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    v.state = IOT_INCIDENT_CLOSED;
    assert_int_equal(iot_incident_overdue(&v, T0 + 30 * DAY), 0);
    assert_int_equal(iot_incident_report_status(&v, IOT_REPORT_NOTIFICATION, T0 + 30 * DAY),
                     IOT_REPORT_NOT_REQUIRED);
    iot_incident n = make(IOT_INCIDENT_INCIDENT, false);
    int64_t due;
    assert_false(iot_incident_deadline(&n, IOT_REPORT_EARLY_WARNING, &due));
    assert_int_equal(iot_incident_overdue(&n, T0 + 300 * DAY), 0);
    assert_int_equal(iot_incident_report_status(&n, IOT_REPORT_EARLY_WARNING, T0 + 300 * DAY),
                     IOT_REPORT_NOT_REQUIRED);
}

static void test_validate(void **state)
{
    (void)state;
    iot_err err;
    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_OK);
    v.title[0] = '\0';
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "title"));
    v = make(IOT_INCIDENT_VULNERABILITY, true);
    snprintf(v.severity, sizeof(v.severity), "urgent");
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "urgent"));
    v = make(IOT_INCIDENT_VULNERABILITY, true);
    assert_int_equal(iot_incident_validate(&v, T0 - DAY, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "future"));
    v = make(IOT_INCIDENT_VULNERABILITY, true);
    v.fixed_at = T0 - 1;
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_EINVAL);
    v = make(IOT_INCIDENT_VULNERABILITY, true);
    snprintf(v.title, sizeof(v.title), "bell\arings");
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_EINVAL);
    assert_non_null(strstr(err.msg, "control"));
    v = make(IOT_INCIDENT_VULNERABILITY, true);
    snprintf(v.notes, sizeof(v.notes), "line one\nline two");
    assert_int_equal(iot_incident_validate(&v, T0, &err), IOT_OK);
}

static char dir[64];
static char db[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_incident.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(db, sizeof(db), "%s/registry.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(db);
    rmdir(dir);
    return 0;
}

static int count_events(int64_t at, const char *event, void *ctx)
{
    (void)at;
    (void)event;
    (*(int *)ctx)++;
    return 0;
}

static void test_register(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err;
    assert_int_equal(iot_registry_create(db, &reg, &err), IOT_OK);
    int n = -1;
    assert_int_equal(iot_incident_count_overdue(reg, T0, &n, &err), IOT_OK);
    assert_int_equal(n, 0);

    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    snprintf(v.devices, sizeof(v.devices), "sensor-1,sensor-2");
    assert_int_equal(iot_incident_open(reg, &v, T0 + HOUR, &err), IOT_OK);
    assert_int_equal(v.id, 1);
    iot_incident i = make(IOT_INCIDENT_INCIDENT, false);
    assert_int_equal(iot_incident_open(reg, &i, T0 + HOUR, &err), IOT_OK);
    assert_int_equal(i.id, 2);

    assert_int_equal(iot_incident_count_overdue(reg, T0 + 23 * HOUR, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(iot_incident_count_overdue(reg, T0 + 73 * HOUR, &n, &err), IOT_OK);
    assert_int_equal(n, 2);

    iot_incident got;
    assert_int_equal(iot_incident_get(reg, 1, &got, &err), IOT_OK);
    assert_string_equal(got.devices, "sensor-1,sensor-2");
    assert_int_equal(got.state, IOT_INCIDENT_OPEN);
    got.submitted[IOT_REPORT_EARLY_WARNING] = T0 + 3 * HOUR;
    got.fixed_at = T0 + 2 * DAY;
    assert_int_equal(iot_incident_update(reg, &got, "early warning submitted", T0 + 3 * HOUR, &err),
                     IOT_OK);
    assert_int_equal(iot_incident_get(reg, 1, &got, &err), IOT_OK);
    assert_int_equal(got.state, IOT_INCIDENT_MITIGATED);
    assert_int_equal(got.submitted[IOT_REPORT_EARLY_WARNING], T0 + 3 * HOUR);
    assert_int_equal(iot_incident_count_overdue(reg, T0 + 73 * HOUR, &n, &err), IOT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(iot_incident_count_overdue(reg, T0 + 17 * DAY, &n, &err), IOT_OK);
    assert_int_equal(n, 2); /* the notification and the final report */

    assert_int_equal(iot_incident_close(reg, 1, "closed", T0 + 20 * DAY, &err), IOT_OK);
    assert_int_equal(iot_incident_count_overdue(reg, T0 + 30 * DAY, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    assert_int_equal(iot_incident_get(reg, 1, &got, &err), IOT_OK);
    assert_int_equal(got.state, IOT_INCIDENT_CLOSED);
    assert_int_equal(got.closed_at, T0 + 20 * DAY);
    assert_int_equal(iot_incident_update(reg, &got, "late change", T0 + 21 * DAY, &err),
                     IOT_ESTATE);
    assert_int_equal(iot_incident_close(reg, 1, "again", T0 + 21 * DAY, &err), IOT_ESTATE);
    assert_int_equal(iot_incident_get(reg, 9, &got, &err), IOT_ENOENT);
    int events = 0;
    assert_int_equal(iot_incident_history(reg, 1, count_events, &events, &err), IOT_OK);
    assert_int_equal(events, 3); /* opened, early warning, closed */

    /* A refused entry writes nothing. */
    iot_incident bad = make(IOT_INCIDENT_VULNERABILITY, true);
    snprintf(bad.severity, sizeof(bad.severity), "huge");
    assert_int_equal(iot_incident_open(reg, &bad, T0, &err), IOT_EINVAL);
    assert_int_equal(iot_incident_get(reg, 3, &got, &err), IOT_ENOENT);
    iot_registry_close(reg);
}

/* A registry of schema 5 has no register: read-only it counts nothing and
 * refuses a new entry; a write open adds the tables. */
static void test_schema5_is_upgraded(void **state)
{
    (void)state;
    iot_registry *reg = NULL;
    iot_err err;
    assert_int_equal(iot_registry_create(db, &reg, &err), IOT_OK);
    iot_registry_close(reg);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "DROP TABLE incident_events; DROP TABLE incidents;"
                                  " PRAGMA user_version=5;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_READONLY, &reg, &err), IOT_OK);
    int n = -1;
    assert_int_equal(iot_incident_count_overdue(reg, T0, &n, &err), IOT_OK);
    assert_int_equal(n, 0);
    iot_incident v = make(IOT_INCIDENT_VULNERABILITY, true);
    assert_int_equal(iot_incident_open(reg, &v, T0, &err), IOT_ESTATE);
    iot_registry_close(reg);
    assert_int_equal(iot_registry_open(db, IOT_REGISTRY_WRITE, &reg, &err), IOT_OK);
    assert_int_equal(iot_incident_open(reg, &v, T0, &err), IOT_OK);
    assert_int_equal(iot_incident_count_overdue(reg, T0 + 25 * HOUR, &n, &err), IOT_OK);
    assert_int_equal(n, 1);
    iot_registry_close(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vulnerability_deadlines),
        cmocka_unit_test(test_incident_final_one_month_after_notification),
        cmocka_unit_test(test_on_time_overdue_late),
        cmocka_unit_test(test_closed_and_not_reportable),
        cmocka_unit_test(test_validate),
        cmocka_unit_test_setup_teardown(test_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema5_is_upgraded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
