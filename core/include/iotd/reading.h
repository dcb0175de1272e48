/* A reading: the values of one sampling instant of one device, with one
 * time and one sequence number. */
#ifndef IOTD_READING_H
#define IOTD_READING_H

#include <stdint.h>

#include "iotd/port.h"

/* Values per reading, and so sensors per device. Queued readings are stored
 * with their own count, so raising it keeps old queues readable. */
#ifndef IOTD_MAX_VALUES
#define IOTD_MAX_VALUES 8
#endif

typedef struct iotd_sample {
    uint8_t sensor; /* index into the sensor table */
    iotd_value value;
} iotd_sample;

typedef struct iotd_reading {
    uint32_t seq;  /* 1..2^32-1, see iotd/seq.h */
    uint32_t time; /* Unix seconds; 0 when the wall clock was not set */
    uint8_t count; /* values[0..count) are valid */
    iotd_sample values[IOTD_MAX_VALUES];
} iotd_reading;

#endif
