/* The incident and vulnerability register, kept in the registry database,
 * and the reporting deadlines of Article 14 of Regulation (EU) 2024/2847
 * (the Cyber Resilience Act):
 *
 *   early warning   24 hours after the manufacturer became aware
 *                   (Art. 14(2)(a) vulnerability, 14(4)(a) incident)
 *   notification    72 hours after it became aware (14(2)(b), 14(4)(b))
 *   final report    vulnerability: 14 days after a corrective or
 *                   mitigating measure is available (14(2)(c));
 *                   severe incident: one month after the notification
 *                   (14(4)(c))
 *   user notice     "in a timely manner" (14(8)): recorded, no fixed term
 *
 * Only an actively exploited vulnerability (14(1)) or a severe incident
 * (14(3)) must be reported; other entries are kept in the register with
 * no deadlines. A closed entry has no open deadlines. All times are Unix
 * seconds, given by the caller, so the rules can be checked with any
 * clock. */
#ifndef IOT_INCIDENT_H
#define IOT_INCIDENT_H

#include <stdbool.h>
#include <stdint.h>

#include "iot/registry.h"
#include "iot/status.h"

#define IOT_INCIDENT_HOUR 3600
#define IOT_INCIDENT_DAY  86400

typedef enum iot_incident_kind {
    IOT_INCIDENT_VULNERABILITY,
    IOT_INCIDENT_INCIDENT,
} iot_incident_kind;

typedef enum iot_incident_state {
    IOT_INCIDENT_OPEN,      /* no corrective or mitigating measure yet */
    IOT_INCIDENT_MITIGATED, /* a measure is available (fixed_at) */
    IOT_INCIDENT_CLOSED,
} iot_incident_state;

typedef enum iot_report_type {
    IOT_REPORT_EARLY_WARNING,
    IOT_REPORT_NOTIFICATION,
    IOT_REPORT_FINAL,
    IOT_REPORT_USER_NOTICE,
    IOT_REPORT_COUNT,
} iot_report_type;

/* Where a report stands at a given time. */
typedef enum iot_report_status {
    IOT_REPORT_NOT_REQUIRED,   /* not reportable, or closed before it fell due */
    IOT_REPORT_WAITING,        /* no deadline yet (final report before a fix) */
    IOT_REPORT_DUE,            /* deadline in the future, not submitted */
    IOT_REPORT_OVERDUE,        /* deadline passed, not submitted */
    IOT_REPORT_SUBMITTED,      /* submitted by its deadline */
    IOT_REPORT_SUBMITTED_LATE, /* submitted after its deadline */
} iot_report_status;

/* The free-text fields, each bounded; every one is printable text (tabs
 * and newlines allowed in the long ones). */
#define IOT_INCIDENT_TITLE_MAX 200
#define IOT_INCIDENT_TEXT_MAX  2000
#define IOT_INCIDENT_LIST_MAX  1000
#define IOT_INCIDENT_SHORT_MAX 120
#define IOT_INCIDENT_NOTES_MAX 8000

typedef struct iot_incident {
    int64_t id; /* assigned by iot_incident_open */
    iot_incident_kind kind;
    iot_incident_state state;
    bool reportable;    /* actively exploited (vulnerability) / severe (incident) */
    char severity[16];  /* low, medium, high, critical */
    char malicious[16]; /* suspected unlawful or malicious: yes, no, unknown */
    char title[IOT_INCIDENT_TITLE_MAX + 1];         /* what, in one line */
    char description[IOT_INCIDENT_TEXT_MAX + 1];    /* nature of the vulnerability or incident */
    char devices[IOT_INCIDENT_LIST_MAX + 1];        /* affected devices, comma-separated */
    char versions[IOT_INCIDENT_LIST_MAX + 1];       /* affected firmware/product versions */
    char member_states[IOT_INCIDENT_SHORT_MAX + 1]; /* where the product is made available */
    char corrective[IOT_INCIDENT_TEXT_MAX + 1];     /* corrective or mitigating measures */
    char user_measures[IOT_INCIDENT_TEXT_MAX + 1];  /* what users can do */
    char actor[IOT_INCIDENT_TEXT_MAX + 1];          /* malicious actor, where available */
    char root_cause[IOT_INCIDENT_TEXT_MAX + 1];     /* threat type or root cause */
    char sensitivity[IOT_INCIDENT_SHORT_MAX + 1];   /* how sensitive the information is */
    char cve[IOT_INCIDENT_SHORT_MAX + 1];           /* CVE or other identifiers */
    char notes[IOT_INCIDENT_NOTES_MAX + 1];         /* dated notes, one a line */
    int64_t aware_at;                               /* the manufacturer became aware */
    int64_t fixed_at; /* a corrective or mitigating measure is available; 0: not yet */
    int64_t closed_at;
    int64_t created;
    int64_t submitted[IOT_REPORT_COUNT]; /* when each report went out; 0: not yet */
} iot_incident;

const char *iot_incident_kind_name(iot_incident_kind kind);
const char *iot_incident_state_name(iot_incident_state state);
/* "early-warning", "notification", "final", "user-notice". */
const char *iot_report_type_name(iot_report_type type);
const char *iot_report_status_name(iot_report_status status);

/* Parses a kind or report type name; false if it is none. */
bool iot_incident_kind_parse(const char *s, iot_incident_kind *out);
bool iot_report_type_parse(const char *s, iot_report_type *out);

/* Checks the fields a caller sets (kind, severity, malicious, the texts,
 * the times): IOT_EINVAL naming the field at fault. */
iot_status iot_incident_validate(const iot_incident *inc, int64_t now, iot_err *err);

/* The deadline of a report under Art. 14: true with *due set, false when
 * the report has none (not reportable, the user notice, a final report
 * with no measure available or no notification yet). */
bool iot_incident_deadline(const iot_incident *inc, iot_report_type type, int64_t *due);

/* Where the report stands at `now`. */
iot_report_status iot_incident_report_status(const iot_incident *inc, iot_report_type type,
                                             int64_t now);

/* How many of the entry's reports are overdue at `now`. */
int iot_incident_overdue(const iot_incident *inc, int64_t now);

/* Adds an entry (state from fixed_at); sets inc->id and inc->created. */
iot_status iot_incident_open(iot_registry *reg, iot_incident *inc, int64_t now, iot_err *err);

/* Reads entry `id`: IOT_ENOENT if there is none. */
iot_status iot_incident_get(iot_registry *reg, int64_t id, iot_incident *out, iot_err *err);

/* Writes back an entry read with iot_incident_get and changed by the
 * caller, and records `event` (one line) in its history. A closed entry
 * is refused (IOT_ESTATE); the state follows fixed_at. */
iot_status iot_incident_update(iot_registry *reg, iot_incident *inc, const char *event, int64_t now,
                               iot_err *err);

/* Closes entry `id` at `now` with `event` in its history. */
iot_status iot_incident_close(iot_registry *reg, int64_t id, const char *event, int64_t now,
                              iot_err *err);

/* Calls fn on each entry, oldest first; a non-zero return stops the walk
 * and is returned. */
typedef int (*iot_incident_fn)(const iot_incident *inc, void *ctx);
iot_status iot_incident_foreach(iot_registry *reg, iot_incident_fn fn, void *ctx, iot_err *err);

/* One line of an entry's history. */
typedef int (*iot_incident_event_fn)(int64_t at, const char *event, void *ctx);
iot_status iot_incident_history(iot_registry *reg, int64_t id, iot_incident_event_fn fn, void *ctx,
                                iot_err *err);

/* The number of reports overdue at `now` across the register (the metric
 * iotgw_incident_reports_overdue). A registry older than the register
 * has none. */
iot_status iot_incident_count_overdue(iot_registry *reg, int64_t now, int *count, iot_err *err);

#endif
