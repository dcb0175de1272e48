/* Noise control of the security event stream (secagg.h) and reading the
 * log's fields back (logfmt.h), on memory with a given clock. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "logfmt.h"
#include "secagg.h"

typedef struct seen {
    unsigned type;
    char source[GW_SECAGG_SOURCE_MAX];
    uint32_t count;
    int64_t first, last;
} seen;

typedef struct sink {
    seen s[16];
    int n;
} sink;

static void collect(unsigned type, const char *source, uint32_t count, int64_t first_ms,
                    int64_t last_ms, void *ctx)
{
    sink *k = ctx;
    assert_true(k->n < 16);
    seen *s = &k->s[k->n++];
    s->type = type;
    snprintf(s->source, sizeof(s->source), "%s", source);
    s->count = count;
    s->first = first_ms;
    s->last = last_ms;
}

/* The first event is published, repeats in the window are counted and
 * reported once it ends; a flood that goes on gives one summary per
 * window; a quiet window frees the source, whose next event is published. */
static void flood_from_one_source(void **state)
{
    (void)state;
    gw_secagg *a = gw_secagg_new(64, 3, 1000);
    assert_non_null(a);
    sink k = {0};
    assert_true(gw_secagg_seen(a, 1, "a:192.0.2.7", 0));
    for (int i = 1; i <= 10; i++)
        assert_false(gw_secagg_seen(a, 1, "a:192.0.2.7", i * 50));
    assert_true(gw_secagg_seen(a, 2, "a:192.0.2.7", 100));    /* another type */
    assert_true(gw_secagg_seen(a, 1, "a:198.51.100.1", 100)); /* another source */
    gw_secagg_expire(a, 999, false, collect, &k);
    assert_int_equal(k.n, 0); /* nothing has ended */
    gw_secagg_expire(a, 1000, false, collect, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.s[0].type, 1);
    assert_string_equal(k.s[0].source, "a:192.0.2.7");
    assert_int_equal(k.s[0].count, 10);
    assert_int_equal(k.s[0].first, 50);
    assert_int_equal(k.s[0].last, 500);
    /* The flood goes on: counted into the next window, not published. */
    assert_false(gw_secagg_seen(a, 1, "a:192.0.2.7", 1500));
    k.n = 0;
    gw_secagg_expire(a, 2000, false, collect, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.s[0].count, 1);
    /* A quiet window frees it: the next one is published again. */
    k.n = 0;
    gw_secagg_expire(a, 3000, false, collect, &k);
    assert_int_equal(k.n, 0);
    assert_true(gw_secagg_seen(a, 1, "a:192.0.2.7", 3001));
    gw_secagg_free(a);
}

/* Past its window with a summary not yet reported, a repeat still goes
 * into that summary: nothing is published twice or lost. */
static void late_expire_keeps_count(void **state)
{
    (void)state;
    gw_secagg *a = gw_secagg_new(8, 1, 100);
    sink k = {0};
    assert_true(gw_secagg_seen(a, 0, "d:dev-1|replay", 0));
    assert_false(gw_secagg_seen(a, 0, "d:dev-1|replay", 50));
    assert_false(gw_secagg_seen(a, 0, "d:dev-1|replay", 500));
    gw_secagg_expire(a, 600, false, collect, &k);
    assert_int_equal(k.n, 1);
    assert_int_equal(k.s[0].count, 2);
    gw_secagg_free(a);
}

/* More sources than the table holds: the rest are counted per type under
 * "*", reported as summaries, never dropped; at shutdown everything still
 * counting is reported. */
static void table_full(void **state)
{
    (void)state;
    gw_secagg *a = gw_secagg_new(4, 2, 1000);
    sink k = {0};
    int published = 0, counted = 0;
    char src[32];
    for (int i = 0; i < 100; i++) {
        snprintf(src, sizeof(src), "a:10.0.0.%d", i);
        if (gw_secagg_seen(a, 1, src, i))
            published++;
        else
            counted++;
    }
    assert_int_equal(published, 4);
    gw_secagg_expire(a, 100, true, collect, &k);
    uint32_t total = 0;
    for (int i = 0; i < k.n; i++) {
        total += k.s[i].count;
        if (k.s[i].count > 0)
            assert_string_equal(k.s[i].source, GW_SECAGG_OVERFLOW);
    }
    assert_int_equal(total, (uint32_t)counted);
    /* A type out of range is never hidden. */
    assert_true(gw_secagg_seen(a, 7, "a:10.0.0.1", 0));
    assert_null(gw_secagg_new(0, 1, 1));
    assert_null(gw_secagg_new(1, 0, 1));
    gw_secagg_free(a);
}

/* A long source is cut, and the cut name is one key. */
static void long_source(void **state)
{
    (void)state;
    char longer[200];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    gw_secagg *a = gw_secagg_new(8, 1, 100);
    assert_true(gw_secagg_seen(a, 0, longer, 0));
    longer[150] = 'y'; /* beyond the cut: the same key */
    assert_false(gw_secagg_seen(a, 0, longer, 1));
    gw_secagg_free(a);
}

static void logfmt_fields(void **state)
{
    (void)state;
    const char *f = "peer=192.0.2.7:5123 device=dev-1 status=403 error=identity_mismatch "
                    "detail=\"say \\\"hi\\\" \\\\ x=1 \\x01 end\" none=- empty=\"\" "
                    "xdevice=other";
    size_t n = strlen(f);
    char v[64];
    assert_true(gw_logfmt_get(f, n, "peer", v, sizeof(v)));
    assert_string_equal(v, "192.0.2.7:5123");
    assert_true(gw_logfmt_get(f, n, "device", v, sizeof(v)));
    assert_string_equal(v, "dev-1"); /* not xdevice's */
    assert_true(gw_logfmt_get(f, n, "detail", v, sizeof(v)));
    assert_string_equal(v, "say \"hi\" \\ x=1 \x01 end");
    /* A key inside a quoted value is not a field. */
    assert_false(gw_logfmt_get(f, n, "x", v, sizeof(v)));
    assert_false(gw_logfmt_get(f, n, "none", v, sizeof(v)));
    assert_false(gw_logfmt_get(f, n, "empty", v, sizeof(v)));
    assert_false(gw_logfmt_get(f, n, "missing", v, sizeof(v)));
    assert_string_equal(v, "");
    /* Cut at the buffer, always terminated. */
    assert_true(gw_logfmt_get(f, n, "error", v, 6));
    assert_string_equal(v, "ident");
    /* Only the first len bytes count. */
    assert_false(gw_logfmt_get(f, 10, "device", v, sizeof(v)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flood_from_one_source),
        cmocka_unit_test(late_expire_keeps_count),
        cmocka_unit_test(table_full),
        cmocka_unit_test(long_source),
        cmocka_unit_test(logfmt_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
