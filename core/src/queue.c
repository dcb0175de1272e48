#include "iotd/queue.h"

#include "internal.h"

#define META_MAGIC   0x3151454Du /* "MEQ1" */
#define META_WORDS   4u
#define SLOT_VERSION 1u
#define SLOT_KEY_MAX 8u /* "q.4095" and the NUL */

static uint32_t ring_add(const iotd_queue *q, uint32_t a, uint32_t b)
{
    uint32_t sum = a + b; /* both < capacity <= 4096: no overflow */
    return sum >= q->capacity ? sum - q->capacity : sum;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

static void slot_key(char key[SLOT_KEY_MAX], uint32_t slot)
{
    char digits[4];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + slot % 10u);
        slot /= 10u;
    } while (slot != 0 && n < sizeof(digits));
    key[0] = 'q';
    key[1] = '.';
    size_t k = 2;
    while (n > 0)
        key[k++] = digits[--n];
    key[k] = '\0';
}

/* Stores the ring state and adopts it only once it is stored. */
static iotd_status store_meta(iotd_queue *q, uint32_t head, uint32_t count, uint32_t dropped)
{
    uint32_t words[META_WORDS] = {q->capacity, head, count, dropped};
    iotd_status st = iotd_record_store(&q->meta, q->port, words, META_WORDS);
    if (st != IOTD_OK)
        return st;
    q->head = head;
    q->count = count;
    q->dropped = dropped;
    return IOTD_OK;
}

iotd_status iotd_queue_open(iotd_queue *q, const iotd_port *port, uint32_t capacity)
{
    uint32_t words[META_WORDS];

    if (capacity == 0 || capacity > IOTD_QUEUE_CAPACITY_MAX)
        return IOTD_EINVAL;
    q->port = port;
    q->capacity = capacity;
    q->head = 0;
    q->count = 0;
    q->dropped = 0;
    iotd_record_init(&q->meta, IOTD_QUEUE_META_KEY0, IOTD_QUEUE_META_KEY1, META_MAGIC);
    iotd_status st = iotd_record_load(&q->meta, port, words, META_WORDS);
    if (st == IOTD_ENOENT)
        return IOTD_OK;
    if (st != IOTD_OK)
        return st;
    if (words[0] == 0 || words[1] >= words[0] || words[2] > words[0])
        return IOTD_ECORRUPT;
    if (words[0] != capacity) {
        /* Slot numbers depend on the capacity: the old ring cannot be read
         * as the new one. Its readings are reported as dropped, and the new
         * state is stored before any slot of the new ring is written. */
        return store_meta(q, 0, 0, sat_add(words[3], words[2]));
    }
    q->head = words[1];
    q->count = words[2];
    q->dropped = words[3];
    return IOTD_OK;
}

static size_t encode_slot(uint8_t *buf, const iotd_reading *r)
{
    buf[0] = SLOT_VERSION;
    buf[1] = r->count;
    iotd__put_u32(buf + 2, r->seq);
    iotd__put_u32(buf + 6, r->time);
    size_t len = 10;
    for (uint8_t i = 0; i < r->count; i++) {
        buf[len] = r->values[i].sensor;
        buf[len + 1] = (uint8_t)r->values[i].value.exp10;
        iotd__put_u32(buf + len + 2, (uint32_t)r->values[i].value.mantissa);
        len += 6;
    }
    iotd__put_u32(buf + len, iotd_crc32(buf, len));
    return len + 4;
}

static iotd_status decode_slot(const uint8_t *buf, size_t len, iotd_reading *r)
{
    if (len < 14 || buf[0] != SLOT_VERSION || buf[1] == 0 || buf[1] > IOTD_MAX_VALUES)
        return IOTD_ECORRUPT;
    if (len != 14u + 6u * buf[1] || iotd__get_u32(buf + len - 4) != iotd_crc32(buf, len - 4))
        return IOTD_ECORRUPT;
    r->count = buf[1];
    r->seq = iotd__get_u32(buf + 2);
    r->time = iotd__get_u32(buf + 6);
    for (uint8_t i = 0; i < r->count; i++) {
        const uint8_t *v = buf + 10 + 6 * i;
        r->values[i].sensor = v[0];
        r->values[i].value.exp10 = (int8_t)v[1];
        r->values[i].value.mantissa = (int32_t)iotd__get_u32(v + 2);
    }
    return r->seq == 0 ? IOTD_ECORRUPT : IOTD_OK;
}

iotd_status iotd_queue_push(iotd_queue *q, const iotd_reading *r)
{
    uint8_t buf[IOTD_QUEUE_SLOT_MAX];
    char key[SLOT_KEY_MAX];

    if (r->count == 0 || r->count > IOTD_MAX_VALUES || r->seq == 0)
        return IOTD_EINVAL;
    if (q->count == q->capacity) {
        /* The oldest reading leaves the ring before its slot is reused:
         * were the slot written first, power loss could leave the newest
         * reading at the head, sent before older ones. */
        iotd_status st =
            store_meta(q, ring_add(q, q->head, 1), q->count - 1u, sat_add(q->dropped, 1));
        if (st != IOTD_OK)
            return st;
    }
    slot_key(key, ring_add(q, q->head, q->count));
    size_t len = encode_slot(buf, r);
    if (q->port->kv_set(q->port->ctx, key, buf, len) != IOTD_OK)
        return IOTD_EIO;
    return store_meta(q, q->head, q->count + 1u, q->dropped);
}

iotd_status iotd_queue_peek(const iotd_queue *q, uint32_t i, iotd_reading *out)
{
    uint8_t buf[IOTD_QUEUE_SLOT_MAX];
    char key[SLOT_KEY_MAX];
    size_t len = 0;

    if (i >= q->count)
        return IOTD_EINVAL;
    slot_key(key, ring_add(q, q->head, i));
    iotd_status st = q->port->kv_get(q->port->ctx, key, buf, sizeof(buf), &len);
    if (st == IOTD_ENOSPC)
        return IOTD_ECORRUPT;
    if (st != IOTD_OK)
        return st == IOTD_ENOENT ? IOTD_ENOENT : IOTD_EIO;
    return decode_slot(buf, len, out);
}

iotd_status iotd_queue_pop(iotd_queue *q, uint32_t n, uint32_t lost, uint32_t reported)
{
    if (n > q->count)
        return IOTD_EINVAL;
    if (n == 0 && lost == 0 && reported == 0)
        return IOTD_OK;
    uint32_t dropped = sat_add(q->dropped, lost);
    dropped -= reported < dropped ? reported : dropped;
    return store_meta(q, ring_add(q, q->head, n == q->capacity ? 0 : n), q->count - n, dropped);
}

void iotd_queue_note_lost(iotd_queue *q, uint32_t n)
{
    q->dropped = sat_add(q->dropped, n);
}
