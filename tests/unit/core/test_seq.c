/* Sequence numbers must never go back: across reboots, across power lost
 * in the middle of any storage write, and whatever state the two record
 * slots are left in. */
#include "core_test.h"

#include "fake_port.h"
#include "iotd/seq.h"

static fake_port fp;

static uint32_t next_ok(iotd_seq *seq)
{
    uint32_t v = 0;
    CT_EQ(iotd_seq_next(seq, &v), IOTD_OK);
    return v;
}

static void first_boot_counts_from_one_in_blocks(void **state)
{
    (void)state;
    iotd_seq seq;
    fake_port_init(&fp);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(fp.kv_sets, 0); /* nothing is written before a number is needed */
    for (uint32_t i = 1; i <= 250; i++)
        CT_EQ(next_ok(&seq), i);
    CT_EQ(fp.kv_sets, 3); /* at 1, 101 and 201 */
}

static void reboot_resumes_above_the_reserved_block(void **state)
{
    (void)state;
    iotd_seq seq;
    fake_port_init(&fp);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    for (uint32_t i = 1; i <= 5; i++)
        CT_EQ(next_ok(&seq), i);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(next_ok(&seq), 101);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(next_ok(&seq), 201);
    CT_EQ(next_ok(&seq), 202);
    /* A reboot before any number was used keeps the block reserved. */
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(next_ok(&seq), 301);
}

/* Tears the k-th storage write in each of the three ways power loss can
 * leave it, then reboots: the first number after the reboot must be above
 * every number handed out before. */
static void torn_write_at_every_point(void **state)
{
    (void)state;
    static const fake_tear tears[] = {FAKE_TEAR_GARBAGE, FAKE_TEAR_OLD, FAKE_TEAR_NEW};
    for (size_t m = 0; m < sizeof(tears) / sizeof(tears[0]); m++) {
        for (int32_t k = 0; k < 6; k++) {
            iotd_seq seq;
            uint32_t highest = 0, v = 0;
            fake_port_init(&fp);
            fp.tear = tears[m];
            /* A few boots first, so both slots hold records. */
            for (int boot = 0; boot < 3; boot++) {
                CT_EQ(iotd_seq_open(&seq, &fp.port, 4), IOTD_OK);
                highest = next_ok(&seq);
            }
            fp.tear_after = k;
            for (int i = 0; i < 40 && iotd_seq_next(&seq, &v) == IOTD_OK; i++) {
                CT_TRUE(v > highest);
                highest = v;
            }
            CT_TRUE(fp.powered_off);
            fake_reboot(&fp);
            CT_EQ(iotd_seq_open(&seq, &fp.port, 4), IOTD_OK);
            CT_TRUE(next_ok(&seq) > highest);
        }
    }
}

static void torn_first_write_starts_fresh(void **state)
{
    (void)state;
    iotd_seq seq;
    uint32_t v = 0;
    fake_port_init(&fp);
    fp.tear = FAKE_TEAR_GARBAGE;
    fp.tear_after = 0;
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    CT_EQ(iotd_seq_next(&seq, &v), IOTD_EIO);
    fake_reboot(&fp);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    CT_EQ(next_ok(&seq), 1);
}

static void damaged_slots(void **state)
{
    (void)state;
    iotd_seq seq;
    static const uint8_t junk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

    /* Both written, neither valid: refuse rather than reuse numbers. */
    fake_port_init(&fp);
    fake_kv_put(&fp, IOTD_SEQ_KEY0, junk, sizeof(junk));
    fake_kv_put(&fp, IOTD_SEQ_KEY1, junk, 3);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_ECORRUPT);

    /* One valid slot is enough, whichever it is. */
    fake_port_init(&fp);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    CT_EQ(next_ok(&seq), 1); /* slot 0: limit 10 */
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    CT_EQ(next_ok(&seq), 11); /* slot 1: limit 20 */
    fake_kv_entry *e = fake_kv_find(&fp, IOTD_SEQ_KEY1);
    CT_TRUE(e != NULL);
    e->data[8] ^= 0x01; /* flip a bit of the newer limit: the CRC catches it */
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    CT_EQ(next_ok(&seq), 11); /* from slot 0; 11..20 reserved again */

    /* Storage that cannot be read is not guessed about. */
    fp.get_fails = true;
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_EIO);
}

static void failed_reservation_hands_out_nothing(void **state)
{
    (void)state;
    iotd_seq seq;
    uint32_t v = 0;
    fake_port_init(&fp);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 10), IOTD_OK);
    fp.set_fails = true;
    CT_EQ(iotd_seq_next(&seq, &v), IOTD_EIO);
    CT_EQ(iotd_seq_next(&seq, &v), IOTD_EIO);
    fp.set_fails = false;
    CT_EQ(next_ok(&seq), 1);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 0), IOTD_EINVAL);
}

static void generation_counter_wraps(void **state)
{
    (void)state;
    iotd_record rec;
    uint32_t w = 0;
    fake_port_init(&fp);
    iotd_record_init(&rec, "r.0", "r.1", 0x12345678u);
    rec.gen = 0xFFFFFFFEu;
    w = 7;
    CT_EQ(iotd_record_store(&rec, &fp.port, &w, 1), IOTD_OK); /* slot 0, gen 0xFFFFFFFF */
    w = 8;
    CT_EQ(iotd_record_store(&rec, &fp.port, &w, 1), IOTD_OK); /* slot 1, gen 0 */
    CT_EQ(rec.gen, 0);
    iotd_record_init(&rec, "r.0", "r.1", 0x12345678u);
    CT_EQ(iotd_record_load(&rec, &fp.port, &w, 1), IOTD_OK);
    CT_EQ(w, 8);
    CT_EQ(rec.active, 1);
    /* Another record's blob under the same keys is not taken for this one. */
    iotd_record_init(&rec, "r.0", "r.1", 0x87654321u);
    CT_EQ(iotd_record_load(&rec, &fp.port, &w, 1), IOTD_ECORRUPT);
}

static void numbers_run_out_at_the_top(void **state)
{
    (void)state;
    iotd_seq seq;
    iotd_record rec;
    uint32_t limit = UINT32_MAX - 2u, v = 0;
    fake_port_init(&fp);
    iotd_record_init(&rec, IOTD_SEQ_KEY0, IOTD_SEQ_KEY1, 0x31514553u);
    CT_EQ(iotd_record_store(&rec, &fp.port, &limit, 1), IOTD_OK);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(next_ok(&seq), UINT32_MAX - 1u);
    CT_EQ(next_ok(&seq), UINT32_MAX);
    CT_EQ(iotd_seq_next(&seq, &v), IOTD_ERANGE);
    CT_EQ(iotd_seq_open(&seq, &fp.port, 100), IOTD_OK);
    CT_EQ(iotd_seq_next(&seq, &v), IOTD_ERANGE);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(first_boot_counts_from_one_in_blocks),
        CT_TEST(reboot_resumes_above_the_reserved_block),
        CT_TEST(torn_write_at_every_point),
        CT_TEST(torn_first_write_starts_fresh),
        CT_TEST(damaged_slots),
        CT_TEST(failed_reservation_hands_out_nothing),
        CT_TEST(generation_counter_wraps),
        CT_TEST(numbers_run_out_at_the_top),
    };
    return CT_RUN(tests);
}
