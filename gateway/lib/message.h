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

#include "config.h"
#include "payload.h"

/* Renders the stored tail of one reading's message into a malloc'd buffer. */
int gw_message_tail(const gw_batch *batch, size_t reading, double rx, uint32_t dropped, char **out,
                    size_t *out_len);

/* Renders the topic; returns -1 if it does not fit. */
int gw_message_topic(const char *prefix, const char *device, char *buf, size_t size);

/* Renders the whole message from a stored tail into buf; returns its
 * length, or -1 if it does not fit. */
int gw_message_full(const char *device, const char *gateway, int64_t gseq, const char *tail,
                    size_t tail_len, char *buf, size_t size);

/* The security event stream (src/secevent.c): one event per message on
 * security/<gateway>/<type>, where <gateway> is the gateway's MQTT
 * certificate CN and <type> the event's stable name (the log event that
 * made it, "tls.refused"). The outbox row's device column holds the type,
 * so `seq` counts per topic as for readings; the head is
 *   {"id":"<gateway>/<type>/<seq>","gateway":"<gateway>","seq":<seq>,
 * and the rest is the stored tail (docs/schemas/security-event.schema.json).
 * Both return -1 when the result does not fit. */
int gw_message_security_topic(const char *gateway, const char *type, char *buf, size_t size);
int gw_message_security_full(const char *gateway, const char *type, int64_t gseq, const char *tail,
                             size_t tail_len, char *buf, size_t size);

/* Largest stored tail (gw_message_tail) whose PUBLISH packet still fits in
 * max_packet bytes on <prefix>/<device>/telemetry, whatever `seq` the
 * outbox gives it: the fixed header, the topic, the packet id and the
 * property length are counted at their largest. 0 when nothing fits. */
size_t gw_message_tail_max(const char *prefix, const char *device, size_t max_packet);

/* The largest tail one reading can have under these payload limits. */
size_t gw_message_tail_worst(const gw_payload_limits *lim);

/* Cross-checks the payload limits against mqtt_max_packet for the longest
 * device ID. Returns 0 when every acceptable reading fits; otherwise 1,
 * with what to change in `why`. Such a configuration works (the readings
 * that do not fit get 413 reading_too_large at ingest), but devices may
 * send what the limits promise to accept. */
int gw_message_check_limits(const gw_config *cfg, char *why, size_t size);

#endif
