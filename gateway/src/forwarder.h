/* The forwarder: publishes the outbox to the broker with QoS 1 and asks the
 * outbox to delete each reading once its PUBACK arrives.
 *
 * libmosquitto runs inside the main libevent loop: its socket is watched
 * for reading (and for writing when it has data queued), a timer drives
 * keep-alives. No thread per message, no busy polling. A bounded window of
 * messages is in flight; the rest wait on disk. After any disconnect the
 * client is rebuilt and publishing restarts from the oldest reading still
 * in the outbox, so nothing unacknowledged is skipped (duplicates are
 * possible and carry the same `seq`). Reconnects back off exponentially
 * with jitter.
 */
#ifndef GW_FORWARDER_H
#define GW_FORWARDER_H

#include <stdbool.h>

#include <event2/event.h>

#include "app.h"
#include "iot/status.h"

iot_status gw_forwarder_start(gw_app *app, struct event_base *base, gw_forwarder **out,
                              iot_err *err);

/* New readings were committed. Thread-safe (called by the committer). */
void gw_forwarder_notify(void *forwarder);

bool gw_forwarder_connected(const gw_forwarder *fw);

void gw_forwarder_stop(gw_forwarder *fw);

#endif
