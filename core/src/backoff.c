#include "iotd/backoff.h"

/* Beyond this many doublings every ceiling is max_ms anyway. */
#define ATTEMPTS_MAX 32u

void iotd_backoff_init(iotd_backoff *b, uint32_t base_ms, uint32_t max_ms)
{
    b->base_ms = base_ms;
    b->max_ms = max_ms < base_ms ? base_ms : max_ms;
    b->attempts = 0;
}

uint32_t iotd_backoff_ceiling(const iotd_backoff *b)
{
    uint32_t c = b->base_ms;
    for (uint32_t i = 0; i < b->attempts && c < b->max_ms; i++)
        c = c > b->max_ms / 2u ? b->max_ms : c * 2u;
    return c < b->max_ms ? c : b->max_ms;
}

uint32_t iotd_random_upto(uint32_t random, uint32_t n)
{
    /* Multiply-shift instead of modulo: no division, no bias worth naming. */
    return (uint32_t)(((uint64_t)random * ((uint64_t)n + 1u)) >> 32);
}

uint32_t iotd_backoff_fail(iotd_backoff *b, uint32_t random)
{
    uint32_t c = iotd_backoff_ceiling(b);
    if (b->attempts < ATTEMPTS_MAX)
        b->attempts++;
    return c / 2u + iotd_random_upto(random, c - c / 2u);
}

void iotd_backoff_reset(iotd_backoff *b)
{
    b->attempts = 0;
}

uint32_t iotd_retry_after_delay(uint32_t seconds, uint32_t max_s, uint32_t min_ms, uint32_t random)
{
    uint64_t ms = (uint64_t)(seconds < max_s ? seconds : max_s) * 1000u;
    if (ms < min_ms)
        ms = min_ms;
    ms += iotd_random_upto(random, (uint32_t)(ms / 8u > UINT32_MAX ? UINT32_MAX : ms / 8u));
    return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}
