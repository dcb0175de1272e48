/* The offline queue: oldest first, bounded, persistent, and consistent
 * after power loss in the middle of any write. */
#include "core_test.h"

#include "fake_port.h"
#include "iotd/queue.h"

static fake_port fp;

static iotd_reading make(uint32_t seq)
{
    iotd_reading r;
    memset(&r, 0, sizeof(r));
    r.seq = seq;
    r.time = 1764086400u + seq;
    r.count = 2;
    r.values[0].sensor = 0;
    r.values[0].value.mantissa = -(int32_t)seq;
    r.values[0].value.exp10 = -1;
    r.values[1].sensor = 3;
    r.values[1].value.mantissa = INT32_MIN;
    r.values[1].value.exp10 = 9;
    return r;
}

static void expect_at(const iotd_queue *q, uint32_t i, uint32_t seq)
{
    iotd_reading r;
    iotd_reading want = make(seq);
    CT_EQ(iotd_queue_peek(q, i, &r), IOTD_OK);
    CT_EQ(r.seq, want.seq);
    CT_EQ(r.time, want.time);
    CT_EQ(r.count, want.count);
    for (uint8_t v = 0; v < r.count; v++) {
        CT_EQ(r.values[v].sensor, want.values[v].sensor);
        CT_EQ(r.values[v].value.mantissa, want.values[v].value.mantissa);
        CT_EQ(r.values[v].value.exp10, want.values[v].value.exp10);
    }
}

static void push(iotd_queue *q, uint32_t seq)
{
    iotd_reading r = make(seq);
    CT_EQ(iotd_queue_push(q, &r), IOTD_OK);
}

static void oldest_first(void **state)
{
    (void)state;
    iotd_queue q;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 8), IOTD_OK);
    CT_EQ(q.count, 0);
    for (uint32_t s = 1; s <= 5; s++)
        push(&q, s);
    CT_EQ(q.count, 5);
    for (uint32_t i = 0; i < 5; i++)
        expect_at(&q, i, i + 1);
    CT_EQ(iotd_queue_pop(&q, 2, 0, 0), IOTD_OK);
    CT_EQ(q.count, 3);
    expect_at(&q, 0, 3);
    iotd_reading r;
    CT_EQ(iotd_queue_peek(&q, 3, &r), IOTD_EINVAL);
    CT_EQ(iotd_queue_pop(&q, 4, 0, 0), IOTD_EINVAL);
}

static void survives_reboot(void **state)
{
    (void)state;
    iotd_queue q;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 8), IOTD_OK);
    for (uint32_t s = 1; s <= 3; s++)
        push(&q, s);
    CT_EQ(iotd_queue_pop(&q, 1, 0, 0), IOTD_OK);
    CT_EQ(iotd_queue_open(&q, &fp.port, 8), IOTD_OK);
    CT_EQ(q.count, 2);
    expect_at(&q, 0, 2);
    expect_at(&q, 1, 3);
}

static void wraps_around_the_ring(void **state)
{
    (void)state;
    iotd_queue q;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 3), IOTD_OK);
    uint32_t next = 1, oldest = 1;
    for (int round = 0; round < 10; round++) {
        push(&q, next++);
        push(&q, next++);
        expect_at(&q, 0, oldest);
        CT_EQ(iotd_queue_pop(&q, 2, 0, 0), IOTD_OK);
        oldest += 2;
    }
    CT_EQ(q.count, 0);
    CT_EQ(q.dropped, 0);
}

static void full_ring_drops_the_oldest_and_counts(void **state)
{
    (void)state;
    iotd_queue q;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    for (uint32_t s = 1; s <= 6; s++)
        push(&q, s);
    CT_EQ(q.count, 4);
    CT_EQ(q.dropped, 2);
    for (uint32_t i = 0; i < 4; i++)
        expect_at(&q, i, i + 3);

    /* The count is persistent until an accepted upload reports it. */
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    CT_EQ(q.dropped, 2);
    CT_EQ(iotd_queue_pop(&q, 2, 1, 2), IOTD_OK); /* 1 more lost, 2 reported */
    CT_EQ(q.dropped, 1);
    CT_EQ(iotd_queue_pop(&q, 0, 0, 5), IOTD_OK); /* never below zero */
    CT_EQ(q.dropped, 0);
    iotd_queue_note_lost(&q, 3);
    CT_EQ(q.dropped, 3);
    push(&q, 7); /* stored with the next state change */
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    CT_EQ(q.dropped, 3);
    CT_EQ(q.count, 3);
    expect_at(&q, 2, 7);
}

/* Power lost during the k-th write of a push, full ring or not: after the
 * reboot the queue holds an unbroken run of the readings, oldest first, and
 * every reading that left it is counted as dropped. */
static void torn_push_keeps_the_queue_consistent(void **state)
{
    (void)state;
    static const fake_tear tears[] = {FAKE_TEAR_GARBAGE, FAKE_TEAR_OLD, FAKE_TEAR_NEW};
    for (uint32_t start = 2; start <= 3; start++) { /* ring of 3: not full, full */
        for (size_t m = 0; m < 3; m++) {
            for (int32_t k = 0; k < 3; k++) {
                iotd_queue q;
                iotd_reading r = make(start + 1);
                fake_port_init(&fp);
                CT_EQ(iotd_queue_open(&q, &fp.port, 3), IOTD_OK);
                for (uint32_t s = 1; s <= start; s++)
                    push(&q, s);
                fp.tear = tears[m];
                fp.tear_after = k;
                (void)iotd_queue_push(&q, &r);
                fake_reboot(&fp);
                CT_EQ(iotd_queue_open(&q, &fp.port, 3), IOTD_OK);
                iotd_reading first;
                CT_EQ(iotd_queue_peek(&q, 0, &first), IOTD_OK);
                CT_EQ(first.seq, 1 + q.dropped);
                for (uint32_t i = 0; i < q.count; i++)
                    expect_at(&q, i, first.seq + i);
                /* Lost at most the new reading and, if full, the oldest. */
                CT_TRUE(first.seq + q.count - 1 >= start);
                CT_TRUE(q.dropped <= (start == 3 ? 1u : 0u));
            }
        }
    }
}

static void damaged_slot_is_reported(void **state)
{
    (void)state;
    iotd_queue q;
    iotd_reading r;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    push(&q, 1);
    push(&q, 2);
    fake_kv_entry *e = fake_kv_find(&fp, "q.1");
    CT_TRUE(e != NULL);
    e->data[12] ^= 0x40;
    CT_EQ(iotd_queue_peek(&q, 1, &r), IOTD_ECORRUPT);
    e->len = 3;
    CT_EQ(iotd_queue_peek(&q, 1, &r), IOTD_ECORRUPT);
    e->used = false;
    CT_EQ(iotd_queue_peek(&q, 1, &r), IOTD_ENOENT);
    expect_at(&q, 0, 1);
    fp.get_fails = true;
    CT_EQ(iotd_queue_peek(&q, 0, &r), IOTD_EIO);
}

static void damaged_state_starts_empty(void **state)
{
    (void)state;
    iotd_queue q;
    static const uint8_t junk[28] = {0};
    fake_port_init(&fp);
    fake_kv_put(&fp, IOTD_QUEUE_META_KEY0, junk, sizeof(junk));
    fake_kv_put(&fp, IOTD_QUEUE_META_KEY1, junk, sizeof(junk));
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_ECORRUPT);
    CT_EQ(q.count, 0);
    push(&q, 9);
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    CT_EQ(q.count, 1);
    expect_at(&q, 0, 9);
}

static void new_capacity_drops_the_old_ring(void **state)
{
    (void)state;
    iotd_queue q;
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    for (uint32_t s = 1; s <= 3; s++)
        push(&q, s);
    CT_EQ(iotd_queue_open(&q, &fp.port, 8), IOTD_OK);
    CT_EQ(q.count, 0);
    CT_EQ(q.dropped, 3);
    CT_EQ(iotd_queue_open(&q, &fp.port, 8), IOTD_OK);
    CT_EQ(q.dropped, 3);
    CT_EQ(iotd_queue_open(&q, &fp.port, 0), IOTD_EINVAL);
    CT_EQ(iotd_queue_open(&q, &fp.port, IOTD_QUEUE_CAPACITY_MAX + 1), IOTD_EINVAL);
}

static void failed_write_leaves_the_queue_as_it_was(void **state)
{
    (void)state;
    iotd_queue q;
    iotd_reading r = make(5);
    fake_port_init(&fp);
    CT_EQ(iotd_queue_open(&q, &fp.port, 4), IOTD_OK);
    push(&q, 4);
    fp.set_fails = true;
    CT_EQ(iotd_queue_push(&q, &r), IOTD_EIO);
    CT_EQ(iotd_queue_pop(&q, 1, 0, 0), IOTD_EIO);
    CT_EQ(q.count, 1);
    fp.set_fails = false;
    r.seq = 0;
    CT_EQ(iotd_queue_push(&q, &r), IOTD_EINVAL);
    expect_at(&q, 0, 4);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(oldest_first),
        CT_TEST(survives_reboot),
        CT_TEST(wraps_around_the_ring),
        CT_TEST(full_ring_drops_the_oldest_and_counts),
        CT_TEST(torn_push_keeps_the_queue_consistent),
        CT_TEST(damaged_slot_is_reported),
        CT_TEST(damaged_state_starts_empty),
        CT_TEST(new_capacity_drops_the_old_ring),
        CT_TEST(failed_write_leaves_the_queue_as_it_was),
    };
    return CT_RUN(tests);
}
