/* SenML JSON (RFC 8428) encoding of readings, as docs/protocol.md
 * specifies, into a caller buffer, without printf or floating point.
 *
 *   [{"bn":"dev-001:","bt":1764086400,"n":"temperature","u":"Cel","v":21.5,"seq":42},
 *    {"n":"humidity","u":"%RH","v":40.2},
 *    {"t":60,"n":"temperature","u":"Cel","v":21.6,"seq":43}, ...]
 *
 * Output is compact (no whitespace). Base name is "<device-id>:"; the base
 * time is the first reading's time; every record of a later reading carries
 * its offset `t` when not 0. A reading taken before the clock was set has
 * resolved time 0, which RFC 8428 reads as "now" at the receiver. The first
 * record of each reading carries `seq`; the pack's first record carries
 * `dropped` when readings were lost since the last accepted upload.
 */
#ifndef IOTD_SENML_H
#define IOTD_SENML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"
#include "iotd/protocol.h"
#include "iotd/reading.h"
#include "iotd/status.h"

typedef struct iotd_senml {
    char *buf; /* caller's buffer; must outlive the encoder */
    size_t cap;
    size_t len;            /* bytes written so far */
    const char *device_id; /* caller's string; must outlive the encoder */
    uint32_t dropped;
    uint32_t base_time; /* bt of the pack; 0 when none was written */
    uint32_t readings;
    uint32_t records;
    bool finished;
} iotd_senml;

/* Starts a pack in buf. Nothing is written until the first reading.
 * IOTD_EINVAL when the device ID breaks the rule of iotd/protocol.h. */
iotd_status iotd_senml_begin(iotd_senml *enc, char *buf, size_t cap, const char *device_id,
                             uint32_t dropped);

/* Appends one reading. IOTD_ENOSPC when it does not fit, with the buffer as
 * before the call (and room kept for the closing bracket), so the caller
 * can send what is there. IOTD_EINVAL for a bad name, unit, value or seq. */
iotd_status iotd_senml_add(iotd_senml *enc, const iotd_reading *r, const iotd_sensor *sensors,
                           size_t n_sensors);

/* Closes the pack and gives its length; nothing can be added after.
 * IOTD_ESTATE when it has no reading. */
iotd_status iotd_senml_finish(iotd_senml *enc, size_t *len);

/* Upper bound of the size of a pack holding one reading with every sensor of
 * the table; a body buffer at least this large can always send a reading. */
size_t iotd_senml_reading_max(const char *device_id, const iotd_sensor *sensors, size_t n_sensors);

#endif
