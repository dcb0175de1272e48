/* A small record of 32-bit words kept in two key-value slots, so that a
 * write torn by power loss never loses the last good value.
 *
 * Each slot holds: magic (u32), generation (u32), the words, CRC-32 of all
 * that (u32), little-endian. A store writes the slot that does not hold the
 * newest valid record, with the generation one higher; a load takes the
 * valid slot with the higher generation (compared modulo 2^32). A torn store
 * leaves the other slot, the previous value, intact.
 */
#ifndef IOTD_RECORD_H
#define IOTD_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"
#include "iotd/status.h"

#define IOTD_RECORD_WORDS_MAX 13 /* 64 bytes a slot: the port's largest blob */

typedef struct iotd_record {
    const char *key[2]; /* the two slot keys; static strings */
    uint32_t magic;     /* tells this record from any other blob */
    uint32_t gen;       /* generation of the newest valid slot */
    uint8_t active;     /* that slot: 0 or 1, or 2 when neither is valid */
} iotd_record;

void iotd_record_init(iotd_record *rec, const char *key0, const char *key1, uint32_t magic);

/* Loads the newest valid record into words[0..n). IOTD_ENOENT: no slot
 * holds a valid record and at least one was never written, so no store ever
 * completed. IOTD_ECORRUPT: both slots were written and neither is valid.
 * IOTD_EIO: storage could not be read; nothing can be concluded. */
iotd_status iotd_record_load(iotd_record *rec, const iotd_port *port, uint32_t *words, size_t n);

/* Stores words[0..n) in the other slot. IOTD_OK means the new value
 * survives power loss; on error the previous value is still the one a load
 * returns (unless this call's slot happened to be written in full). */
iotd_status iotd_record_store(iotd_record *rec, const iotd_port *port, const uint32_t *words,
                              size_t n);

/* CRC-32 (IEEE 802.3, as zlib), bitwise: no table in flash. */
uint32_t iotd_crc32(const uint8_t *data, size_t len);

#endif
