/* Noise control for the security event stream: a flood of one event type
 * from one source becomes one event and then one summary per window with
 * the count, never a silent drop.
 *
 *   - The first event of a (type, source) is published at once.
 *   - Repeats within `window_ms` of it are counted, not published.
 *   - When the window ends with repeats counted, gw_secagg_expire reports a
 *     summary (count, first and last time) and a new window starts, so a
 *     flood that goes on gives one summary per window; a window that ends
 *     quiet frees its slot, and the next event is published at once again.
 *   - Sources are kept in a fixed table. When it is full (a flood from very
 *     many addresses), events of that type are counted in one bucket per
 *     type with source "*" and reported as summaries only.
 *
 * Pure: no clock, no threads (the caller locks); time is passed in. */
#ifndef GW_SECAGG_H
#define GW_SECAGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SECAGG_SOURCE_MAX 128 /* a device ID or an IPv6 address, and a reason */
#define GW_SECAGG_OVERFLOW   "*"

typedef struct gw_secagg gw_secagg;

/* slots: distinct (type, source) pairs tracked at once; n_types: types are
 * 0..n_types-1. NULL when out of memory or an argument is 0. */
gw_secagg *gw_secagg_new(size_t slots, unsigned n_types, int64_t window_ms);
void gw_secagg_free(gw_secagg *a);

/* An event of `type` from `source` (cut to GW_SECAGG_SOURCE_MAX - 1 bytes)
 * at now_ms. True: publish it. False: it was counted for a summary. */
bool gw_secagg_seen(gw_secagg *a, unsigned type, const char *source, int64_t now_ms);

typedef void (*gw_secagg_fn)(unsigned type, const char *source, uint32_t count, int64_t first_ms,
                             int64_t last_ms, void *ctx);

/* Reports every window that ended by now_ms with events counted; with
 * all = true every window with events counted, ended or not (at shutdown). */
void gw_secagg_expire(gw_secagg *a, int64_t now_ms, bool all, gw_secagg_fn fn, void *ctx);

#endif
