#include "iotd/seq.h"

#define SEQ_MAGIC 0x31514553u /* "SEQ1" */

iotd_status iotd_seq_open(iotd_seq *seq, const iotd_port *port, uint32_t block)
{
    uint32_t limit = 0;

    if (block == 0)
        return IOTD_EINVAL;
    seq->port = port;
    seq->block = block;
    iotd_record_init(&seq->rec, IOTD_SEQ_KEY0, IOTD_SEQ_KEY1, SEQ_MAGIC);
    iotd_status st = iotd_record_load(&seq->rec, port, &limit, 1);
    if (st == IOTD_ENOENT)
        limit = 0; /* no limit was ever stored, so no number was ever used */
    else if (st != IOTD_OK)
        return st;
    /* Everything up to the stored limit may have been used before the
     * reboot; the first number of this boot needs a new reservation. */
    seq->reserved = limit;
    seq->next = limit == UINT32_MAX ? 0 : limit + 1u;
    return IOTD_OK;
}

iotd_status iotd_seq_next(iotd_seq *seq, uint32_t *out)
{
    if (seq->next == 0)
        return IOTD_ERANGE;
    if (seq->next > seq->reserved) {
        uint32_t limit = seq->next + (seq->block - 1u);
        if (limit < seq->next)
            limit = UINT32_MAX;
        iotd_status st = iotd_record_store(&seq->rec, seq->port, &limit, 1);
        if (st != IOTD_OK)
            return st;
        seq->reserved = limit;
    }
    *out = seq->next;
    seq->next = seq->next == UINT32_MAX ? 0 : seq->next + 1u;
    return IOTD_OK;
}
