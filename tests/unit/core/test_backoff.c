/* Retry delays: how they grow, how far jitter spreads them, and that a
 * Retry-After is never cut short. */
#include "core_test.h"

#include "iotd/backoff.h"

static void ceiling_doubles_up_to_the_cap(void **state)
{
    (void)state;
    static const uint32_t want[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    iotd_backoff b;
    iotd_backoff_init(&b, 1000, 30000);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        CT_EQ(iotd_backoff_ceiling(&b), want[i]);
        (void)iotd_backoff_fail(&b, 0);
    }
    iotd_backoff_reset(&b);
    CT_EQ(iotd_backoff_ceiling(&b), 1000);
    /* A cap below the base is raised to it. */
    iotd_backoff_init(&b, 5000, 10);
    CT_EQ(iotd_backoff_ceiling(&b), 5000);
}

static void jitter_stays_within_half_and_full_ceiling(void **state)
{
    (void)state;
    iotd_backoff lo, hi, mid;
    iotd_backoff_init(&lo, 1000, 60000);
    iotd_backoff_init(&hi, 1000, 60000);
    iotd_backoff_init(&mid, 1000, 60000);
    uint32_t prev_lo = 0;
    for (int i = 0; i < 12; i++) {
        uint32_t c = iotd_backoff_ceiling(&lo);
        uint32_t d_lo = iotd_backoff_fail(&lo, 0);
        uint32_t d_hi = iotd_backoff_fail(&hi, UINT32_MAX);
        uint32_t d_mid = iotd_backoff_fail(&mid, 0x80000000u);
        CT_EQ(d_lo, c / 2);
        CT_EQ(d_hi, c);
        CT_IN_RANGE(d_mid, c / 2 + 1, c - 1);
        CT_TRUE(d_lo >= prev_lo); /* the shortest possible delay grows too */
        prev_lo = d_lo;
    }
    CT_EQ(prev_lo, 30000);
}

static void pseudo_random_delays_cover_the_range(void **state)
{
    (void)state;
    iotd_backoff b;
    uint32_t x = 1, min = UINT32_MAX, max = 0;
    for (int i = 0; i < 2000; i++) {
        iotd_backoff_init(&b, 8000, 8000);
        x = x * 1664525u + 1013904223u;
        uint32_t d = iotd_backoff_fail(&b, x);
        CT_IN_RANGE(d, 4000, 8000);
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    /* Spread over the whole window, not stuck at one end. */
    CT_TRUE(min < 4100);
    CT_TRUE(max > 7900);
}

static void no_overflow_after_many_failures(void **state)
{
    (void)state;
    iotd_backoff b;
    iotd_backoff_init(&b, 3, UINT32_MAX);
    for (int i = 0; i < 100; i++)
        (void)iotd_backoff_fail(&b, UINT32_MAX);
    CT_EQ(iotd_backoff_ceiling(&b), UINT32_MAX);
    CT_EQ(iotd_backoff_fail(&b, UINT32_MAX), UINT32_MAX);
    CT_EQ(iotd_backoff_fail(&b, 0), UINT32_MAX / 2);
}

static void random_upto_is_inclusive(void **state)
{
    (void)state;
    CT_EQ(iotd_random_upto(0, 10), 0);
    CT_EQ(iotd_random_upto(UINT32_MAX, 10), 10);
    CT_EQ(iotd_random_upto(UINT32_MAX, 0), 0);
    CT_EQ(iotd_random_upto(UINT32_MAX, UINT32_MAX), UINT32_MAX);
    CT_EQ(iotd_random_upto(12345, UINT32_MAX), 12345);
    CT_EQ(iotd_random_upto(0x80000000u, 100), 50);
}

static void retry_after_is_honoured(void **state)
{
    (void)state;
    /* Exactly what was asked, plus at most an eighth. */
    CT_EQ(iotd_retry_after_delay(30, 3600, 1000, 0), 30000);
    CT_EQ(iotd_retry_after_delay(30, 3600, 1000, UINT32_MAX), 33750);
    CT_IN_RANGE(iotd_retry_after_delay(30, 3600, 1000, 0x12345678u), 30000, 33750);
    /* "Retry-After: 0" still waits the minimum, so a device cannot spin. */
    CT_EQ(iotd_retry_after_delay(0, 3600, 2000, 0), 2000);
    /* An absurd value is cut to the configured maximum. */
    CT_EQ(iotd_retry_after_delay(86400 * 365, 3600, 1000, 0), 3600000);
    CT_EQ(iotd_retry_after_delay(UINT32_MAX, UINT32_MAX, 0, UINT32_MAX), UINT32_MAX);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(ceiling_doubles_up_to_the_cap),
        CT_TEST(jitter_stays_within_half_and_full_ceiling),
        CT_TEST(pseudo_random_delays_cover_the_range),
        CT_TEST(no_overflow_after_many_failures),
        CT_TEST(random_upto_is_inclusive),
        CT_TEST(retry_after_is_honoured),
    };
    return CT_RUN(tests);
}
