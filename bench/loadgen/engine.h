/* The load: worker threads, each an epoll loop over its connections. */
#ifndef LG_ENGINE_H
#define LG_ENGINE_H

#include <stdint.h>

#include "../common/hist.h"
#include "devices.h"
#include "options.h"

#define LG_STATUS_MAX 600

/* What happened, summed over the workers. */
typedef struct lg_stats {
    uint64_t ok;                    /* 2xx answers in the measured window */
    uint64_t readings;              /* readings in those */
    uint64_t status[LG_STATUS_MAX]; /* every answer of the run, by status */
    uint64_t err_connect, err_tls, err_http, err_closed, unanswered;
    uint64_t duplicates;       /* readings the server acknowledged as already stored */
    uint64_t reconnects;       /* connections the server ended after an answer */
    uint64_t established;      /* --idle: connections up after setup */
    uint64_t closed_by_server; /* --idle: connections lost while held */
    uint64_t last_answer_ns;   /* --requests: when the last one was answered */
    /* --handshake: the wake-ups answered 2xx in the window, and per wake-up
     * summed: TCP payload bytes each way (TCP_INFO), the times the client
     * waited for the server (round trips, the TCP connect included) */
    uint64_t wakes, wakes_resumed, wire_out, wire_in, waits;
    bench_hist *hist; /* latency of the 2xx answers in the window, ns */
    char first_error[200];
} lg_stats;

typedef struct lg_engine lg_engine;

/* Starts the threads; in keep-alive and idle modes they open their
 * connections before returning. Returns NULL with err filled on failure. */
lg_engine *lg_engine_start(const lg_options *o, lg_devices *devs, char *err, size_t err_size);

/* Starts the load with the clock: warm-up, then the measured window. Returns
 * the start of the measured window (monotonic ns). */
uint64_t lg_engine_go(lg_engine *e);

/* --idle: ends the hold. */
void lg_engine_stop(lg_engine *e);

/* Waits for the threads and sums their figures into *out (whose hist must be
 * zeroed storage). Returns 1 if the run stopped on --max-errors. */
int lg_engine_join(lg_engine *e, lg_stats *out);

/* After lg_engine_start: how many connections are up (for --idle). */
void lg_engine_setup_figures(lg_engine *e, uint64_t *established, uint64_t *errors);

void lg_engine_free(lg_engine *e);

uint64_t lg_now_ns(void);

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, taken once at start. */
uint64_t lg_wall_offset_ns(void);

#endif
