/* The durable outbox: readings stay here, on disk, from the moment the
 * gateway acknowledges them until the broker acknowledges them.
 *
 * SQLite in WAL mode with synchronous=FULL: a commit is on disk when it
 * returns. One committer thread owns the only write connection and runs
 * "group commit": every job submitted while the previous transaction was
 * syncing goes into the next transaction, so concurrent requests share one
 * fsync. The same thread applies broker acknowledgements (deletes), and
 * de-duplicates by the device's sequence number, so there is one writer and
 * one place where per-device order is decided.
 *
 * Readers (the forwarder) use their own connection (gw_outbox_reader_*).
 */
#ifndef GW_OUTBOX_H
#define GW_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/identity.h"
#include "iot/status.h"

typedef struct gw_outbox gw_outbox;

typedef enum gw_store_result {
    GW_STORE_OK,          /* every item stored or recognised as a duplicate */
    GW_STORE_FULL,        /* the outbox bound would be exceeded: nothing stored */
    GW_STORE_DEVICE_FULL, /* this device's share of the outbox would be exceeded */
    GW_STORE_ERROR,       /* the transaction failed (disk full, I/O error): nothing stored */
    GW_STORE_SHUTDOWN,    /* the outbox is closing: nothing stored */
    /* with gw_outbox_set_confirm only: stored, but ... */
    GW_STORE_UNCONFIRMED, /* ... the broker did not confirm it within the timeout */
    GW_STORE_REFUSED,     /* ... the broker refused one of its readings for good */
} gw_store_result;

/* One reading to store. `body` is the published message without its first
 * members (see message.h); the outbox owns it after submit.
 *
 * Why the message is built in two halves: everything but `device` and
 * `seq` is known at ingest and rendered there, on the worker threads, in
 * parallel and before the reading is acknowledged (so its size can be
 * checked against the broker's limit). `seq` is assigned inside the
 * outbox transaction, by its one writer, so the head can only be written
 * after it; the forwarder prepends it at publish time (a snprintf of two
 * fields). Rendering the whole message in the committer instead would put
 * the JSON work on the single thread every request waits for. */
typedef struct gw_store_item {
    bool has_dseq;
    uint32_t dseq;
    char *body;
    size_t body_len;
} gw_store_item;

typedef struct gw_store_job gw_store_job;
typedef void (*gw_store_done_fn)(gw_store_job *job);

struct gw_store_job {
    char device[IOT_ID_MAX + 1];
    gw_store_item *items;
    size_t n_items;
    /* results, valid in done() */
    gw_store_result result;
    size_t stored;
    size_t duplicates;
    bool first_stored; /* items[0] is new (not a duplicate) and was stored */
    /* called on the committer thread once the transaction is durable (or
     * failed); it must hand the job back to its owner's thread quickly */
    gw_store_done_fn done;
    gw_store_job *next;        /* internal */
    int64_t first_id, last_id; /* internal: its new rows */
};

/* Called on the committer thread after each commit that added rows. */
typedef void (*gw_outbox_notify_fn)(void *ctx);

iot_status gw_outbox_open(const char *path, int64_t max_items, gw_outbox **out, iot_err *err);

/* Bounds beyond the row count given to gw_outbox_open: bytes of stored
 * messages in all (0: no bound), and the percentage of both bounds one
 * device may hold (100: no share). Call before gw_outbox_start. */
void gw_outbox_set_limits(gw_outbox *ob, int64_t max_bytes, int device_share_percent);

/* The metrics an outbox keeps (metrics.h indexes; -1: not kept). Without
 * gw_outbox_set_metrics, the readings' (iotgw_outbox_*, iotgw_readings_*);
 * a second outbox (the security event stream) names its own. The outbox's
 * transactions are counted in iotgw_outbox_commits_total, errors and the
 * commit histogram whichever outbox made them. */
typedef struct gw_outbox_metrics {
    int depth, bytes, quarantined_now;             /* gauges */
    int stored, duplicate, published, quarantined; /* counters */
} gw_outbox_metrics;

/* Call before gw_outbox_start. */
void gw_outbox_set_metrics(gw_outbox *ob, const gw_outbox_metrics *m);

/* acknowledge = confirmed: a job that stored (or found as duplicates) its
 * readings is done only once the broker has acknowledged every row up to
 * the highest that existed when it committed (confirmq.h), or as
 * GW_STORE_UNCONFIRMED after timeout_ms, or GW_STORE_REFUSED when one of
 * its readings goes to quarantine. 0: done at commit (acknowledge =
 * stored). Call before gw_outbox_start. */
void gw_outbox_set_confirm(gw_outbox *ob, int64_t timeout_ms);

/* Starts the committer thread. */
iot_status gw_outbox_start(gw_outbox *ob, gw_outbox_notify_fn notify, void *ctx, iot_err *err);

/* Queues a job; done() will be called exactly once. Thread-safe. */
void gw_outbox_submit(gw_outbox *ob, gw_store_job *job);

/* Queues deletion of rows the broker acknowledged. Thread-safe. */
void gw_outbox_ack(gw_outbox *ob, const int64_t *ids, size_t n);

/* Moves a row the broker can never take (too large, malformed) out of the
 * queue into the quarantine table of the same database, with `reason`, so
 * the readings behind it flow again and it is never lost. Thread-safe;
 * applied with the next transaction. */
void gw_outbox_quarantine(gw_outbox *ob, int64_t id, const char *reason);

/* Readings in quarantine (read at open, then counted). */
int64_t gw_outbox_quarantined(const gw_outbox *ob);

/* Readings currently held. */
int64_t gw_outbox_depth(const gw_outbox *ob);

/* Finishes queued work, stops the thread and closes. */
void gw_outbox_close(gw_outbox *ob);

/* Frees the items of a job (bodies and array). */
void gw_store_job_free_items(gw_store_job *job);

/* --- reading side (forwarder) --- */
typedef struct gw_outbox_reader gw_outbox_reader;

typedef struct gw_outbox_row {
    int64_t id;
    char device[IOT_ID_MAX + 1];
    int64_t gseq;
    const char *body; /* valid until the next fetch */
    size_t body_len;
} gw_outbox_row;

typedef int (*gw_outbox_row_fn)(const gw_outbox_row *row, void *ctx);

/* The rows above after_id, at most limit, oldest first, from the rows of
 * the last groups committed, kept in memory: no query. -1 when those
 * cannot answer for every such row (the caller then uses
 * gw_outbox_fetch); 0 otherwise, with *count rows passed to fn (which may
 * stop it by returning non-zero; row bodies are valid during fn).
 * Thread-safe. */
int gw_outbox_fetch_recent(gw_outbox *ob, int64_t after_id, int limit, gw_outbox_row_fn fn,
                           void *ctx, int *count);

iot_status gw_outbox_reader_open(const char *path, gw_outbox_reader **out, iot_err *err);
/* Calls fn for up to `limit` rows with id > after_id, in id order; fn
 * returning non-zero stops early. *count gets the number delivered. */
iot_status gw_outbox_fetch(gw_outbox_reader *r, int64_t after_id, int limit, gw_outbox_row_fn fn,
                           void *ctx, int *count, iot_err *err);
void gw_outbox_reader_close(gw_outbox_reader *r);

#endif
