/* Per-device token buckets: `rate` requests per second with bursts up to
 * `burst`. Shared by every worker thread, so a device cannot multiply its
 * rate by opening connections to different workers. */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdbool.h>

/* One token bucket, the primitive of both limiters (this one per device,
 * addrlimit.h's per address): `tokens` left, as of `updated` (seconds). */
typedef struct gw_bucket {
    double tokens;
    double updated;
} gw_bucket;

/* Refills the bucket at `rate` tokens per second, up to `burst`, for the
 * time since it was last updated (a clock that steps back refills
 * nothing), then takes one token if there is one. */
bool gw_bucket_take(gw_bucket *b, double rate, double burst, double now);

typedef struct gw_ratelimit gw_ratelimit;

/* rate <= 0 disables limiting (every call allowed). */
gw_ratelimit *gw_ratelimit_new(double rate, double burst);
void gw_ratelimit_free(gw_ratelimit *rl);

/* Takes one token for device at time now (seconds, monotonic). When none
 * is left returns false and sets *retry_after_s (>= 1). */
bool gw_ratelimit_take(gw_ratelimit *rl, const char *device, double now, int *retry_after_s);

#endif
