/* The per-device sequence number: 1..2^32-1, rising by at least 1 per
 * reading, never going back across reboots and power loss.
 *
 * Numbers are reserved in blocks: the highest number that may be handed out
 * (the limit) is stored before any number up to it is used, so storage is
 * written once per `block` readings. After a reboot numbering resumes above
 * the stored limit; the unused rest of a block is skipped. Keys "seq.0" and
 * "seq.1" hold the limit as an iotd_record.
 */
#ifndef IOTD_SEQ_H
#define IOTD_SEQ_H

#include <stdint.h>

#include "iotd/port.h"
#include "iotd/record.h"
#include "iotd/status.h"

#define IOTD_SEQ_KEY0 "seq.0"
#define IOTD_SEQ_KEY1 "seq.1"

typedef struct iotd_seq {
    const iotd_port *port;
    iotd_record rec;
    uint32_t next;     /* what iotd_seq_next hands out next; 0 when used up */
    uint32_t reserved; /* the stored limit: numbers up to it may be used */
    uint32_t block;
} iotd_seq;

/* Reads the stored limit. IOTD_ECORRUPT when both slots are damaged: the
 * device cannot know which numbers it used and must not number readings. */
iotd_status iotd_seq_open(iotd_seq *seq, const iotd_port *port, uint32_t block);

/* The next sequence number. Stores a new limit first when the reserved
 * block is used up; if that store fails nothing is handed out (IOTD_EIO).
 * IOTD_ERANGE once 2^32-1 was handed out. */
iotd_status iotd_seq_next(iotd_seq *seq, uint32_t *out);

#endif
