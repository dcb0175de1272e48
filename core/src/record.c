#include "iotd/record.h"

#include "internal.h"

#define SLOT_BYTES(n) (12u + 4u * (n))
#define SLOT_NONE     2u

uint32_t iotd_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

void iotd_record_init(iotd_record *rec, const char *key0, const char *key1, uint32_t magic)
{
    rec->key[0] = key0;
    rec->key[1] = key1;
    rec->magic = magic;
    rec->gen = 0;
    rec->active = SLOT_NONE;
}

/* Reads one slot: IOTD_OK with its generation and words when it is valid,
 * IOTD_ENOENT when never written, IOTD_ECORRUPT when written but invalid. */
static iotd_status load_slot(const iotd_record *rec, const iotd_port *port, unsigned slot,
                             uint32_t *gen, uint32_t *words, size_t n)
{
    uint8_t buf[SLOT_BYTES(IOTD_RECORD_WORDS_MAX)];
    size_t len = 0;
    iotd_status st = port->kv_get(port->ctx, rec->key[slot], buf, sizeof(buf), &len);
    if (st == IOTD_ENOSPC)
        return IOTD_ECORRUPT;
    if (st != IOTD_OK)
        return st;
    if (len != SLOT_BYTES(n) || iotd__get_u32(buf) != rec->magic)
        return IOTD_ECORRUPT;
    if (iotd__get_u32(buf + len - 4) != iotd_crc32(buf, len - 4))
        return IOTD_ECORRUPT;
    *gen = iotd__get_u32(buf + 4);
    for (size_t i = 0; i < n; i++)
        words[i] = iotd__get_u32(buf + 8 + 4 * i);
    return IOTD_OK;
}

/* The valid slot with the later generation (compared with wraparound), or
 * SLOT_NONE. */
static unsigned newest_valid(const iotd_status st[2], const uint32_t gen[2])
{
    if (st[0] == IOTD_OK && st[1] == IOTD_OK)
        return (int32_t)(gen[1] - gen[0]) > 0 ? 1u : 0u;
    if (st[0] == IOTD_OK)
        return 0;
    if (st[1] == IOTD_OK)
        return 1;
    return SLOT_NONE;
}

iotd_status iotd_record_load(iotd_record *rec, const iotd_port *port, uint32_t *words, size_t n)
{
    uint32_t gen[2] = {0, 0};
    uint32_t tmp[2][IOTD_RECORD_WORDS_MAX];
    iotd_status st[2];

    if (n == 0 || n > IOTD_RECORD_WORDS_MAX)
        return IOTD_EINVAL;
    for (unsigned s = 0; s < 2; s++) {
        st[s] = load_slot(rec, port, s, &gen[s], tmp[s], n);
        /* A slot that cannot be read might hold the newest value: choosing
         * the other one could hand out used sequence numbers again. */
        if (st[s] != IOTD_OK && st[s] != IOTD_ENOENT && st[s] != IOTD_ECORRUPT)
            return IOTD_EIO;
    }

    unsigned best = newest_valid(st, gen);
    if (best == SLOT_NONE) {
        rec->active = SLOT_NONE;
        rec->gen = 0;
        return (st[0] == IOTD_ENOENT || st[1] == IOTD_ENOENT) ? IOTD_ENOENT : IOTD_ECORRUPT;
    }
    rec->active = (uint8_t)best;
    rec->gen = gen[best];
    for (size_t i = 0; i < n; i++)
        words[i] = tmp[best][i];
    return IOTD_OK;
}

iotd_status iotd_record_store(iotd_record *rec, const iotd_port *port, const uint32_t *words,
                              size_t n)
{
    uint8_t buf[SLOT_BYTES(IOTD_RECORD_WORDS_MAX)];

    if (n == 0 || n > IOTD_RECORD_WORDS_MAX)
        return IOTD_EINVAL;
    unsigned slot = rec->active == 0 ? 1u : 0u;
    uint32_t gen = rec->gen + 1u;
    iotd__put_u32(buf, rec->magic);
    iotd__put_u32(buf + 4, gen);
    for (size_t i = 0; i < n; i++)
        iotd__put_u32(buf + 8 + 4 * i, words[i]);
    size_t len = SLOT_BYTES(n);
    iotd__put_u32(buf + len - 4, iotd_crc32(buf, len - 4));

    iotd_status st = port->kv_set(port->ctx, rec->key[slot], buf, len);
    if (st != IOTD_OK)
        return st == IOTD_EINVAL ? IOTD_EINVAL : IOTD_EIO;
    rec->active = (uint8_t)slot;
    rec->gen = gen;
    return IOTD_OK;
}
