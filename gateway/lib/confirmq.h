/* The requests that wait for the broker (acknowledge = confirmed): a FIFO
 * in the order the outbox committed them.
 *
 * A request is answered 200 only when every row of the outbox up to the
 * highest one that existed when it committed (`top`) has been
 * acknowledged by the broker, that is when the lowest row still pending
 * is above `top`. That covers its own new rows and, for a resent reading
 * recognised as a duplicate, the row that first stored it, without
 * keeping the rows of each device in memory. It can wait for rows of
 * other devices committed before it; they are published before it in any
 * case (the forwarder publishes in row order), so in practice it waits
 * for little more than its own.
 *
 * `top` and the deadlines grow along the queue (commit order, one
 * timeout), so confirmed and expired entries are always at its head:
 * releasing costs nothing per waiting entry. An entry whose own rows
 * (first..last) the broker refused for good (moved to quarantine) is
 * released as refused when it reaches the head.
 *
 * Not thread-safe: the outbox's committer thread owns it. Allocates as it
 * grows, up to GW_CONFIRMQ_MAX entries. */
#ifndef GW_CONFIRMQ_H
#define GW_CONFIRMQ_H

#include <stddef.h>
#include <stdint.h>

#define GW_CONFIRMQ_MAX (1u << 20)

typedef enum gw_confirm_outcome {
    GW_CONFIRM_OK,      /* the broker has every row up to its top */
    GW_CONFIRM_TIMEOUT, /* its deadline passed first (or the queue closes) */
    GW_CONFIRM_REFUSED, /* one of its own rows went to quarantine */
} gw_confirm_outcome;

typedef void (*gw_confirmq_fn)(void *item, gw_confirm_outcome outcome, void *ctx);

typedef struct gw_confirmq_entry {
    void *item;
    int64_t first, last; /* its own new rows; first > last: none */
    int64_t top;         /* the highest row that existed at its commit */
    int64_t deadline;    /* on the caller's clock */
    int refused;
} gw_confirmq_entry;

typedef struct gw_confirmq {
    gw_confirmq_entry *ring;
    size_t cap, head, n;
} gw_confirmq;

/* 0, or -1 when full or out of memory (nothing queued: the caller answers
 * the item itself). */
int gw_confirmq_push(gw_confirmq *q, void *item, int64_t first, int64_t last, int64_t top,
                     int64_t deadline);

/* Row `id` left the queue for quarantine: marks the entries that own it. */
void gw_confirmq_refuse(gw_confirmq *q, int64_t id);

/* Releases, in order, the head entries that are confirmed (top below
 * min_pending; INT64_MAX when the outbox is empty), refused, or past
 * their deadline at `now`. Returns how many were released. */
size_t gw_confirmq_release(gw_confirmq *q, int64_t min_pending, int64_t now, gw_confirmq_fn fn,
                           void *ctx);

/* The head's deadline, or -1 when empty. */
int64_t gw_confirmq_next_deadline(const gw_confirmq *q);

/* Releases every entry with `outcome` and frees the queue. */
void gw_confirmq_drain(gw_confirmq *q, gw_confirm_outcome outcome, gw_confirmq_fn fn, void *ctx);

#endif
