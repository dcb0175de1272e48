#include "hist.h"

#include <math.h>

static uint32_t bucket_of(uint64_t v)
{
    if (v < 2 * BENCH_HIST_SUB)
        return (uint32_t)v;
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(v);
    uint32_t shift = msb - BENCH_HIST_SUB_BITS;
    return shift * BENCH_HIST_SUB + (uint32_t)(v >> shift);
}

static uint64_t bucket_upper(uint32_t idx)
{
    if (idx < 2 * BENCH_HIST_SUB)
        return idx;
    uint32_t shift = idx / BENCH_HIST_SUB - 1;
    uint64_t m = idx - shift * BENCH_HIST_SUB;
    return ((m + 1) << shift) - 1;
}

void bench_hist_add(bench_hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t bench_hist_quantile(const bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t target = (uint64_t)ceil(q * (double)h->count);
    if (target == 0)
        target = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= target) {
            uint64_t up = bucket_upper(i);
            return up < h->max ? up : h->max;
        }
    }
    return h->max;
}

bench_percentiles bench_hist_percentiles_us(const bench_hist *h)
{
    bench_percentiles p = {
        .p50 = (double)bench_hist_quantile(h, 0.50) / 1e3,
        .p90 = (double)bench_hist_quantile(h, 0.90) / 1e3,
        .p99 = (double)bench_hist_quantile(h, 0.99) / 1e3,
        .p999 = (double)bench_hist_quantile(h, 0.999) / 1e3,
        .max = (double)h->max / 1e3,
    };
    return p;
}
