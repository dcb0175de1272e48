/* State that the gateways behind one balancer share, on an etcd cluster
 * (docs/cluster.md, Shared state): a Raft-replicated key-value store with
 * linearizable create-if-absent, reached through its JSON gateway
 * (POST /v3/kv/txn and /v3/kv/range, keys and values in base64) with
 * libcurl and mutual TLS. etcd trusts the root of a PKI of its own, which
 * signs its members and the gateways' client certificates and never a
 * device's, so only gateways reach the store (etcd's own users and roles
 * stay off: its JSON gateway refuses a certificate with a CN then).
 *
 * What lives there (the keys are this module's callers'):
 *   /iot/tokens/<sha256 of the token>    the gateway that spent an
 *                                        enrollment token, for which
 *                                        device and key (est.c)
 *   /iot/tokens-made/<id>, -revoked/<id> tokens made or revoked in one
 *                                        gateway's registry (regshare.c)
 *   /iot/certs/<serial>                  a device certificate a gateway
 *                                        issued, DER (est.c, regshare.c)
 *   /iot/revoked/<serial>                a device revoked in a gateway's
 *                                        registry (regshare.c)
 *   /iot/enroll/<device>/<state>         a request waiting for an
 *                                        operator, and the decision
 *                                        (regshare.c)
 *   /iot/rollouts/<rollout>/final/<dev>  a device's final update report,
 *                                        and the gateway that took it
 *                                        (rollshare.c)
 *
 * Calls block (a connection attempt is capped at 2 s, a call at 5 s) and
 * are serialized on the handle's one connection. Only threads of their
 * own call: the enrollment thread and the rollout sharing thread, each
 * with its own handle (rollshare.h); workers and readings never touch
 * etcd. A member that does not answer is left for the next one, in the
 * configured order; the one that answered last is asked first. */
#ifndef GW_SHARED_H
#define GW_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "iot/status.h"

#define GW_SHARED_KEY_MAX   512
#define GW_SHARED_VALUE_MAX 2048

typedef struct gw_shared gw_shared;

typedef struct gw_shared_options {
    const char *members; /* shared_state: HOST[:PORT] ..., port 2379 by default */
    const char *ca;      /* PEM files of shared_state_ca, _cert, _key */
    const char *cert;
    const char *key;
} gw_shared_options;

iot_status gw_shared_open(const gw_shared_options *o, gw_shared **out, iot_err *err);

/* NULL is ignored. */
void gw_shared_close(gw_shared *s);

/* Creates key with value unless the key exists, in one transaction of
 * the cluster: of gateways racing for the same key exactly one gets
 * *created true. Otherwise *created is false and existing (cap bytes)
 * holds the value that was there. IOT_EIO when no member answered or
 * etcd refused (err names the member and why). */
iot_status gw_shared_create(gw_shared *s, const char *key, const char *value, bool *created,
                            char *existing, size_t cap, iot_err *err);

/* Called for each key under a prefix, in the order the cluster wrote
 * them. The strings live until the callback returns. false: stop here;
 * the next call starts again at this key. */
typedef bool (*gw_shared_kv_fn)(void *ctx, const char *key, const char *value);

/* The keys under prefix written after *revision (0: all), oldest first,
 * at most `limit` of them, each passed to fn; *revision becomes the
 * revision of the last one fn took, so the next call goes on from there.
 * *n is how many the cluster gave (limit: ask again at once). IOT_EIO as
 * above. */
iot_status gw_shared_changes(gw_shared *s, const char *prefix, int64_t *revision, int limit, int *n,
                             gw_shared_kv_fn fn, void *ctx, iot_err *err);

/* ---- for the threads that call (rollshare.c, regshare.c) ------------------ */

/* Counts a failed call and logs shared.unavailable once per outage
 * (*down remembers it), and shared.available when a call succeeds again;
 * `what` says whose state it is ("rollouts", "registry"). */
void gw_shared_note(bool *down, const char *what, iot_status st, const iot_err *err);

/* Waits on `wake` (with `lock` held) for at most ms milliseconds. */
void gw_shared_timedwait(pthread_cond_t *wake, pthread_mutex_t *lock, int ms);

#endif
