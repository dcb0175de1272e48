/* Latency histogram for the benchmark tools, in the manner of HdrHistogram:
 * log-linear buckets, 128 per power of two, so every recorded value is
 * known to within 0.8 %. Percentiles report the upper bound of the bucket
 * that holds them (never lower than the truth), capped by the exact maximum.
 * Recording is O(1) and allocation-free; histograms of several threads are
 * merged at the end.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB      (1u << BENCH_HIST_SUB_BITS)
#define BENCH_HIST_BUCKETS  (64u * BENCH_HIST_SUB)

typedef struct bench_hist {
    uint64_t count;
    uint64_t max;
    uint64_t b[BENCH_HIST_BUCKETS];
} bench_hist;

/* Records one value (nanoseconds in every tool). */
void bench_hist_add(bench_hist *h, uint64_t v);

void bench_hist_merge(bench_hist *into, const bench_hist *from);

/* The q-quantile (0 < q <= 1) in the recorded unit; 0 when empty. */
uint64_t bench_hist_quantile(const bench_hist *h, double q);

/* The quantiles every report gives, in microseconds. */
typedef struct bench_percentiles {
    double p50, p90, p99, p999, max;
} bench_percentiles;

bench_percentiles bench_hist_percentiles_us(const bench_hist *h);

#endif
