/* The console's own state, one SQLite file (mode 0600): the audit log of
 * operator actions and the security events received from the broker, with
 * their acknowledgements. Used from the event loop's thread only. */
#ifndef IC_STORE_H
#define IC_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "iot/status.h"

typedef struct ic_store ic_store;

#define IC_EVENTS_KEPT 100000 /* the oldest go first beyond this */
#define IC_AUDIT_LIMIT 1000   /* rows in one answer, at most */

iot_status ic_store_open(const char *path, ic_store **out, iot_err *err);
void ic_store_close(ic_store *s);

/* One audit row: who (operator, "" before a login), from where, what
 * (login, login_failed, logout, rollout.pause, event.ack, ...), on what,
 * and how it ended (ok, or the refusal). */
iot_status ic_store_audit(ic_store *s, int64_t now, const char *op, const char *addr,
                          const char *action, const char *target, const char *result);

/* {"audit":[{"id","time","operator","address","action","target","result"}]},
 * newest first; NULL on error. */
cJSON *ic_store_audit_json(ic_store *s, int limit);

/* Records a security event document (as published); *id its number. */
iot_status ic_store_event_add(ic_store *s, int64_t now, const char *topic, const char *doc,
                              int64_t *id);

/* {"events":[...]} newest first, each with its document; unacked: only
 * those not acknowledged; device: only that device's ("" all). */
cJSON *ic_store_events_json(ic_store *s, int limit, bool unacked, const char *device);

/* IOT_ENOENT no such event; IOT_ESTATE already acknowledged. */
iot_status ic_store_event_ack(ic_store *s, int64_t id, const char *op, int64_t now);

#endif
