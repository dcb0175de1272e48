/* The offline queue: a bounded ring of readings in persistent storage,
 * oldest first.
 *
 * Slot i of the ring is the key "q.<i>" (one reading, CRC-checked); the ring
 * state (capacity, head, count, dropped) is an iotd_record under "qm.0" and
 * "qm.1". A push writes the slot before the state; into a full ring it first
 * stores the state without the oldest reading. So power loss at any point
 * leaves a consistent queue, oldest first: a reading being added may be
 * lost, a reading in the queue never is, and a dropped one is counted.
 *
 * When the ring is full, push drops the oldest reading and adds 1 to
 * `dropped`, the count of readings lost without delivery that the next
 * upload reports (it is persistent too).
 */
#ifndef IOTD_QUEUE_H
#define IOTD_QUEUE_H

#include <stdint.h>

#include "iotd/port.h"
#include "iotd/reading.h"
#include "iotd/record.h"
#include "iotd/status.h"

#define IOTD_QUEUE_CAPACITY_MAX 4096
#define IOTD_QUEUE_META_KEY0    "qm.0"
#define IOTD_QUEUE_META_KEY1    "qm.1"

/* Bytes of one stored reading: version, count, seq, time, 6 per value, CRC. */
#define IOTD_QUEUE_SLOT_MAX (14 + 6 * IOTD_MAX_VALUES)

typedef struct iotd_queue {
    const iotd_port *port;
    iotd_record meta;
    uint32_t capacity;
    uint32_t head;    /* slot of the oldest reading */
    uint32_t count;   /* readings in the queue */
    uint32_t dropped; /* readings lost and not yet reported */
} iotd_queue;

/* Loads the ring state. A stored ring of another capacity is emptied, its
 * readings counted as dropped. IOTD_ECORRUPT: the state was damaged and the
 * queue starts empty (still usable); IOTD_EIO: storage could not be read. */
iotd_status iotd_queue_open(iotd_queue *q, const iotd_port *port, uint32_t capacity);

/* Appends r, dropping the oldest reading first when the ring is full. */
iotd_status iotd_queue_push(iotd_queue *q, const iotd_reading *r);

/* Reads the i-th oldest reading (0 is the oldest). IOTD_ECORRUPT or
 * IOTD_ENOENT when its slot is damaged: the reading is lost and should be
 * popped with the others and counted in `lost`. */
iotd_status iotd_queue_peek(const iotd_queue *q, uint32_t i, iotd_reading *out);

/* Removes the n oldest readings, adds `lost` to the dropped count and
 * subtracts `reported` (what an accepted upload carried) from it. */
iotd_status iotd_queue_pop(iotd_queue *q, uint32_t n, uint32_t lost, uint32_t reported);

/* Counts a reading lost outside the queue (it could not be stored); kept in
 * memory until the next change of the ring state is stored. */
void iotd_queue_note_lost(iotd_queue *q, uint32_t n);

#endif
