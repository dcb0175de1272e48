/* The queue of requests waiting for the broker: released in commit order
 * once the lowest pending row is above their top, on their deadline, or
 * as refused when one of their own rows went to quarantine; never before;
 * a refused or confirmed entry behind a waiting one waits its turn. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "confirmq.h"

typedef struct {
    int order[16];
    gw_confirm_outcome outcome[16];
    int n;
} seen;

static void record(void *item, gw_confirm_outcome outcome, void *ctx)
{
    seen *s = ctx;
    s->order[s->n] = *(int *)item;
    s->outcome[s->n++] = outcome;
}

static void count(void *item, gw_confirm_outcome outcome, void *ctx)
{
    (void)item, (void)outcome;
    ++*(int *)ctx;
}

static int ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static void released_when_rows_up_to_top_are_confirmed(void **state)
{
    (void)state;
    gw_confirmq q = {0};
    seen s = {0};
    assert_int_equal(gw_confirmq_push(&q, &ids[0], 1, 2, 2, 100), 0);
    assert_int_equal(gw_confirmq_push(&q, &ids[1], 3, 3, 3, 100), 0);
    /* a duplicate-only request: no rows of its own, waits for all before it */
    assert_int_equal(gw_confirmq_push(&q, &ids[2], 1, 0, 3, 100), 0);
    assert_int_equal(gw_confirmq_release(&q, 2, 10, record, &s), 0); /* row 2 pending */
    assert_int_equal(gw_confirmq_release(&q, 3, 10, record, &s), 1);
    assert_int_equal(s.order[0], 0);
    assert_int_equal(s.outcome[0], GW_CONFIRM_OK);
    assert_int_equal(gw_confirmq_release(&q, INT64_MAX, 10, record, &s), 2);
    assert_int_equal(s.order[1], 1);
    assert_int_equal(s.order[2], 2);
    assert_int_equal(gw_confirmq_next_deadline(&q), -1);
    gw_confirmq_drain(&q, GW_CONFIRM_TIMEOUT, record, &s);
    assert_int_equal(s.n, 3);
}

static void deadline_releases_as_timeout(void **state)
{
    (void)state;
    gw_confirmq q = {0};
    seen s = {0};
    gw_confirmq_push(&q, &ids[0], 1, 1, 1, 100);
    gw_confirmq_push(&q, &ids[1], 2, 2, 2, 200);
    assert_int_equal(gw_confirmq_next_deadline(&q), 100);
    assert_int_equal(gw_confirmq_release(&q, 1, 99, record, &s), 0);
    assert_int_equal(gw_confirmq_release(&q, 1, 100, record, &s), 1);
    assert_int_equal(s.outcome[0], GW_CONFIRM_TIMEOUT);
    assert_int_equal(gw_confirmq_next_deadline(&q), 200);
    gw_confirmq_drain(&q, GW_CONFIRM_TIMEOUT, record, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.outcome[1], GW_CONFIRM_TIMEOUT);
}

static void quarantined_row_refuses_its_owner_only(void **state)
{
    (void)state;
    gw_confirmq q = {0};
    seen s = {0};
    gw_confirmq_push(&q, &ids[0], 1, 1, 1, 100);
    gw_confirmq_push(&q, &ids[1], 2, 4, 4, 100);
    gw_confirmq_push(&q, &ids[2], 5, 5, 5, 100);
    gw_confirmq_refuse(&q, 3);
    /* the refused entry waits behind the head, which is still pending */
    assert_int_equal(gw_confirmq_release(&q, 1, 10, record, &s), 0);
    assert_int_equal(gw_confirmq_release(&q, 5, 10, record, &s), 2);
    assert_int_equal(s.outcome[0], GW_CONFIRM_OK);
    assert_int_equal(s.outcome[1], GW_CONFIRM_REFUSED);
    assert_int_equal(gw_confirmq_release(&q, 5, 10, record, &s), 0);
    assert_int_equal(gw_confirmq_release(&q, 6, 10, record, &s), 1);
    assert_int_equal(s.outcome[2], GW_CONFIRM_OK);
    gw_confirmq_drain(&q, GW_CONFIRM_TIMEOUT, record, &s);
}

static void grows_across_the_wrap(void **state)
{
    (void)state;
    gw_confirmq q = {0};
    seen s = {0};
    int64_t row = 0;
    /* fill, release some, fill past the first capacity: order is kept */
    for (int i = 0; i < 60; i++, row++)
        assert_int_equal(gw_confirmq_push(&q, &ids[i % 8], row, row, row, 1000), 0);
    int n = 0;
    assert_int_equal(gw_confirmq_release(&q, 50, 0, count, &n), 50);
    for (int i = 0; i < 100; i++, row++)
        assert_int_equal(gw_confirmq_push(&q, &ids[i % 8], row, row, row, 1000), 0);
    assert_true(q.cap >= 110);
    assert_int_equal(gw_confirmq_release(&q, 59, 0, count, &n), 9);
    assert_int_equal(gw_confirmq_release(&q, 61, 0, record, &s), 2);
    assert_int_equal(s.order[0], 59 % 8);
    assert_int_equal(s.order[1], 0); /* row 60 is the first of the second fill */
    gw_confirmq_drain(&q, GW_CONFIRM_TIMEOUT, count, &n);
    assert_int_equal(n + s.n, 160);
    assert_null(q.ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(released_when_rows_up_to_top_are_confirmed),
        cmocka_unit_test(deadline_releases_as_timeout),
        cmocka_unit_test(quarantined_row_refuses_its_owner_only),
        cmocka_unit_test(grows_across_the_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
