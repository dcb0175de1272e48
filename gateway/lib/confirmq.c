#include "confirmq.h"

#include <stdlib.h>

static gw_confirmq_entry *at(const gw_confirmq *q, size_t i)
{
    return &q->ring[(q->head + i) % q->cap];
}

/* Doubles the ring, unwrapping it. */
static int grow(gw_confirmq *q)
{
    size_t cap = q->cap ? 2 * q->cap : 64;
    if (cap > GW_CONFIRMQ_MAX)
        return -1;
    gw_confirmq_entry *ring = malloc(cap * sizeof(*ring));
    if (ring == NULL)
        return -1;
    for (size_t i = 0; i < q->n; i++)
        ring[i] = *at(q, i);
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int gw_confirmq_push(gw_confirmq *q, void *item, int64_t first, int64_t last, int64_t top,
                     int64_t deadline)
{
    if (q->n == q->cap && grow(q) != 0)
        return -1;
    *at(q, q->n) = (gw_confirmq_entry){item, first, last, top, deadline, 0};
    q->n++;
    return 0;
}

void gw_confirmq_refuse(gw_confirmq *q, int64_t id)
{
    for (size_t i = 0; i < q->n; i++) {
        gw_confirmq_entry *e = at(q, i);
        if (e->first <= id && id <= e->last)
            e->refused = 1;
    }
}

static int releasable(const gw_confirmq_entry *e, int64_t min_pending, int64_t now,
                      gw_confirm_outcome *outcome)
{
    if (e->refused)
        *outcome = GW_CONFIRM_REFUSED;
    else if (e->top < min_pending)
        *outcome = GW_CONFIRM_OK;
    else if (e->deadline <= now)
        *outcome = GW_CONFIRM_TIMEOUT;
    else
        return 0;
    return 1;
}

size_t gw_confirmq_release(gw_confirmq *q, int64_t min_pending, int64_t now, gw_confirmq_fn fn,
                           void *ctx)
{
    size_t released = 0;
    gw_confirm_outcome outcome;
    while (q->n > 0 && releasable(at(q, 0), min_pending, now, &outcome)) {
        void *item = at(q, 0)->item;
        q->head = (q->head + 1) % q->cap;
        q->n--;
        released++;
        fn(item, outcome, ctx);
    }
    return released;
}

int64_t gw_confirmq_next_deadline(const gw_confirmq *q)
{
    return q->n > 0 ? at(q, 0)->deadline : -1;
}

void gw_confirmq_drain(gw_confirmq *q, gw_confirm_outcome outcome, gw_confirmq_fn fn, void *ctx)
{
    while (q->n > 0) {
        void *item = at(q, 0)->item;
        q->head = (q->head + 1) % q->cap;
        q->n--;
        fn(item, outcome, ctx);
    }
    free(q->ring);
    *q = (gw_confirmq){0};
}
