/* The HTTP requests the load generator sends. */
#ifndef LG_REQUEST_H
#define LG_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Bytes a request of `batch` readings needs at most. */
size_t lg_request_cap(const lg_options *o);

/* Writes one POST into buf: `batch` readings of device `device` with
 * sequence numbers seq, seq+1, ... (seq 0: readings without a sequence
 * number), all taken at Unix time t_ns. The time is written with
 * microsecond precision (SenML `bt`, JSON `t`) so that a subscriber can
 * measure end-to-end latency from it. Returns the length, or 0 if buf is
 * too small. */
size_t lg_request_build(const lg_options *o, const char *device, uint32_t seq, uint64_t t_ns,
                        char *buf, size_t cap);

/* The body alone, for the report: its length for one reading. */
size_t lg_request_body_len(const lg_options *o, const char *device);

#endif
