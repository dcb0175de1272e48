/* The message published for each reading (docs/gateway.md, "Message
 * format"), on topic <prefix>/<device-id>/telemetry:
 *
 *   {"device":"dev-001","seq":17,"dseq":42,"t":1764086400,"rx":1764086400.512,
 *    "values":[{"n":"temperature","u":"Cel","v":21.5}]}
 *
 * `seq` is the gateway's per-device sequence (1, 2, 3, ... without gaps, so
 * consumers detect loss and drop duplicates); `dseq` the device's own
 * sequence when it sent one; `t` the reading time; `rx` the gateway receive
 * time; `dropped` (when non-zero) what the device reported losing from its
 * own queue before this upload.
 *
 * The outbox stores the part after "seq"; the forwarder adds the head when
 * publishing, because `seq` is assigned in the outbox transaction.
 */
#ifndef GW_MESSAGE_H
#define GW_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "payload.h"

/* Renders the stored tail of one reading's message into a malloc'd buffer. */
int gw_message_tail(const gw_batch *batch, size_t reading, double rx, uint32_t dropped, char **out,
                    size_t *out_len);

/* Renders the topic; returns -1 if it does not fit. */
int gw_message_topic(const char *prefix, const char *device, char *buf, size_t size);

/* Renders the whole message from a stored tail into buf; returns its
 * length, or -1 if it does not fit. */
int gw_message_full(const char *device, int64_t gseq, const char *tail, size_t tail_len, char *buf,
                    size_t size);

#endif
