/* How the benchmark tools report latency: the same percentiles, in the
 * same names, in text and in JSON. */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "hist.h"

/* Adds KEY: {"count":N,"p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"max_us":..}.
 * Returns 0, or -1 out of memory. */
int bench_json_latency(cJSON *obj, const char *key, const bench_hist *h);

/* "p50 0.41  p90 0.80  p99 1.93  p99.9 3.10  max 4.20 ms (N samples)". */
void bench_text_latency(char *buf, size_t size, const bench_hist *h);

/* Prints obj as one line on stdout and frees it. Returns 0, or -1. */
int bench_json_print(cJSON *obj);

#endif
