/* Rollout progress shared by the gateways behind one balancer
 * (docs/cluster.md, Shared state): every device's final update report
 * (confirmed, failed, rolled_back), whichever gateway took it, counts in
 * every gateway's rollout file, so a rollout pauses on failures reported
 * through all of them and its waves start on all their confirmations.
 *
 * A gateway records a report in its own rollout file first (updates.c,
 * the device's 204), then hands it here: one thread writes it to the
 * shared state (shared.h) as /iot/rollouts/<rollout>/final/<device>, and
 * applies the final reports of the other gateways to the local file with
 * iot_rollout_apply_final, which judges waves and the pause as a local
 * report does. Handing over never blocks a worker. A report not yet
 * written when the gateway stops is not lost: at start the thread writes
 * every final state of the local file the shared state lacks (creating a
 * key that exists changes nothing), and reads the shared state from its
 * start, so a gateway that was down catches up.
 *
 * The thread has its own handle on the rollout file (SQLite, WAL), apart
 * from the workers'. */
#ifndef GW_ROLLSHARE_H
#define GW_ROLLSHARE_H

#include <stdint.h>

#include "iot/rollout.h"
#include "iot/status.h"

struct gw_shared;
typedef struct gw_rollshare gw_rollshare;

typedef struct gw_rollshare_options {
    const char *rollouts;     /* the rollout file */
    struct gw_shared *shared; /* borrowed; outlives the gw_rollshare */
    const char *gateway;      /* this gateway's name in what it shares */
    int poll_ms;              /* how often the shared state is read */
} gw_rollshare_options;

/* Opens the rollout file and starts the thread. */
iot_status gw_rollshare_start(const gw_rollshare_options *o, gw_rollshare **out, iot_err *err);

/* Stops the thread (a call under way ends within its timeout) and frees.
 * NULL is ignored. */
void gw_rollshare_stop(gw_rollshare *rs);

/* Queues a final report recorded in the local file for the shared state.
 * Never blocks on the network; a full queue makes the thread compare the
 * whole local file with the shared state once it can. */
void gw_rollshare_put(gw_rollshare *rs, const char *rollout, const char *device,
                      iot_rollout_dev_state state, const char *reason, uint64_t sequence);

#endif
