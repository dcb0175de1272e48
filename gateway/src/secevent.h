/* The security event stream: every security-relevant event the gateway
 * logs (refused handshakes and requests, revoked or unknown devices, rate
 * limits, replays, enrollment, registry and CRL reloads, update failures,
 * its own start and stop) also becomes one JSON document published with
 * QoS 1 on security/<gateway>/<type> (message.h; the schema is
 * docs/schemas/security-event.schema.json).
 *
 * Made from the log (log.h, gw_log_tap): one table here names the log
 * events that are security events, with their severity, so the log line
 * and the event of one occurrence come from one call and cannot disagree,
 * and every later log site of such an event is in the stream too.
 *
 * Durable like readings: the documents go through an outbox of their own
 * (its own file and committer) and a forwarder of their own (a second MQTT
 * connection), so a broker outage loses none, and a broker that refuses
 * the security topics (an old ACL) stops only this stream, never the
 * readings. Noise control: secagg.h. What the outbox cannot take is
 * counted and logged (security.event_lost), never dropped silently.
 *
 * A process-wide singleton, like the log and the metrics: any thread may
 * log, before, during and after the stream runs. */
#ifndef GW_SECEVENT_H
#define GW_SECEVENT_H

#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"
#include "outbox.h"

typedef struct gw_secev_options {
    gw_outbox *outbox; /* the security outbox; must outlive gw_secev_stop */
    int64_t window_ms; /* security_event_window */
    size_t sources;    /* (type, source) pairs tracked at once */
} gw_secev_options;

/* The security outbox's metrics (iotgw_security_events_*), for
 * gw_outbox_set_metrics. */
extern const gw_outbox_metrics gw_secev_outbox_metrics;

/* Keeps the security events logged from now until gw_secev_start (the
 * configuration's warnings, the first load of the registry and CRL, the
 * issuer's state: all logged before the stream can start), up to a few
 * dozen; gw_secev_start publishes them, with the time they were logged.
 * Call first thing in main. */
void gw_secev_hold(void);

/* Starts the stream: installs the log tap and the thread that publishes
 * summaries when their windows end. */
iot_status gw_secev_start(const gw_secev_options *opt, iot_err *err);

/* Publishes the summaries still counting, removes the tap and stops the
 * thread. Call before closing the outbox. Safe when not started (what
 * gw_secev_hold kept is then dropped). */
void gw_secev_stop(void);

/* The event types (log event names) the stream carries, in order; for the
 * documentation and tests. */
size_t gw_secev_type_count(void);
const char *gw_secev_type_name(size_t i);

#endif
