/* Retry delays: exponential backoff with jitter, and Retry-After.
 *
 * Pure functions of their arguments and a random word, so a test can pin
 * every bound.
 */
#ifndef IOTD_BACKOFF_H
#define IOTD_BACKOFF_H

#include <stdint.h>

typedef struct iotd_backoff {
    uint32_t base_ms;  /* ceiling of the first delay */
    uint32_t max_ms;   /* the ceiling never grows above this */
    uint32_t attempts; /* failures since the last success */
} iotd_backoff;

void iotd_backoff_init(iotd_backoff *b, uint32_t base_ms, uint32_t max_ms);

/* The ceiling for the current attempt: min(max_ms, base_ms * 2^attempts). */
uint32_t iotd_backoff_ceiling(const iotd_backoff *b);

/* Records a failure and returns the delay before the next attempt: "equal
 * jitter", uniform in [ceiling/2, ceiling], so delays grow and devices that
 * failed together spread out. */
uint32_t iotd_backoff_fail(iotd_backoff *b, uint32_t random);

void iotd_backoff_reset(iotd_backoff *b);

/* Delay for a 429 or 503 with Retry-After: the given seconds (at most
 * max_s, at least min_ms) plus up to 1/8 more of jitter, so a gateway that
 * asked many devices to wait is not hit by all of them at the same instant.
 * Never earlier than the gateway asked, unless it asked for more than max_s. */
uint32_t iotd_retry_after_delay(uint32_t seconds, uint32_t max_s, uint32_t min_ms, uint32_t random);

/* Uniform in [0, n]: the high word of random * (n + 1). */
uint32_t iotd_random_upto(uint32_t random, uint32_t n);

#endif
