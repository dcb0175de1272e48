/* The outbox on a real SQLite file: group commit, de-duplication by device
 * sequence, the bound, acknowledgements, and what survives a reopen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "outbox.h"

static char dir[64];
static char path[128];

typedef struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
} waiter;

static waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_done(gw_store_job *job)
{
    (void)job;
    pthread_mutex_lock(&w.lock);
    w.done++;
    pthread_cond_signal(&w.cond);
    pthread_mutex_unlock(&w.lock);
}

static void wait_done(int n)
{
    pthread_mutex_lock(&w.lock);
    while (w.done < n)
        pthread_cond_wait(&w.cond, &w.lock);
    w.done = 0;
    pthread_mutex_unlock(&w.lock);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/iot-outbox.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/outbox.db", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A job of n readings with device sequences first, first+1, ... */
static gw_store_job *make_job(const char *device, uint32_t first, size_t n)
{
    gw_store_job *job = calloc(1, sizeof(*job));
    assert_non_null(job);
    snprintf(job->device, sizeof(job->device), "%s", device);
    job->items = calloc(n, sizeof(*job->items));
    job->n_items = n;
    for (size_t i = 0; i < n; i++) {
        job->items[i].has_dseq = true;
        job->items[i].dseq = first + (uint32_t)i;
        char body[64];
        int len = snprintf(body, sizeof(body), "\"dseq\":%u}", first + (unsigned)i);
        job->items[i].body = strdup(body);
        job->items[i].body_len = (size_t)len;
    }
    job->done = on_done;
    return job;
}

static void free_job(gw_store_job *job)
{
    gw_store_job_free_items(job);
    free(job);
}

typedef struct collected {
    int n;
    int64_t ids[64];
    int64_t gseq[64];
    char devices[64][IOT_ID_MAX + 1];
} collected;

static int collect(const gw_outbox_row *row, void *ctx)
{
    collected *c = ctx;
    c->ids[c->n] = row->id;
    c->gseq[c->n] = row->gseq;
    snprintf(c->devices[c->n], sizeof(c->devices[0]), "%s", row->device);
    c->n++;
    return 0;
}

static void stores_dedups_and_numbers(void **state)
{
    (void)state;
    gw_outbox *ob = NULL;
    iot_err err = {0};
    assert_int_equal(gw_outbox_open(path, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);

    gw_store_job *a = make_job("dev-a", 1, 3);
    gw_store_job *b = make_job("dev-b", 5, 2);
    gw_outbox_submit(ob, a);
    gw_outbox_submit(ob, b);
    wait_done(2);
    assert_int_equal(a->result, GW_STORE_OK);
    assert_int_equal(a->stored, 3);
    assert_true(a->first_stored);
    assert_int_equal(b->stored, 2);
    assert_int_equal(gw_outbox_depth(ob), 5);

    /* 2 and 3 were accepted already: duplicates; 4 is new. */
    gw_store_job *again = make_job("dev-a", 2, 3);
    gw_outbox_submit(ob, again);
    wait_done(1);
    assert_int_equal(again->result, GW_STORE_OK);
    assert_int_equal(again->stored, 1);
    assert_int_equal(again->duplicates, 2);
    assert_false(again->first_stored); /* what items[0] carried was counted */

    /* 6 more would exceed the bound of 10: refused whole. */
    gw_store_job *big = make_job("dev-b", 100, 6);
    gw_outbox_submit(ob, big);
    wait_done(1);
    assert_int_equal(big->result, GW_STORE_FULL);
    assert_int_equal(big->stored, 0);
    assert_false(big->first_stored);
    assert_int_equal(gw_outbox_depth(ob), 6);
    free_job(a);
    free_job(b);
    free_job(again);
    free_job(big);
    gw_outbox_close(ob);
}

static void survives_reopen_in_order(void **state)
{
    (void)state;
    gw_outbox_reader *r = NULL;
    iot_err err = {0};
    collected c = {0};
    int count = 0;
    assert_int_equal(gw_outbox_reader_open(path, &r, &err), IOT_OK);
    assert_int_equal(gw_outbox_fetch(r, 0, 64, collect, &c, &count, &err), IOT_OK);
    assert_int_equal(count, 6);
    /* dev-a's gateway sequence is 1, 2, 3, 4 in id order; dev-b's 1, 2. */
    int64_t next_a = 1, next_b = 1;
    for (int i = 0; i < c.n; i++) {
        if (i > 0)
            assert_true(c.ids[i] > c.ids[i - 1]);
        if (strcmp(c.devices[i], "dev-a") == 0)
            assert_int_equal(c.gseq[i], next_a++);
        else
            assert_int_equal(c.gseq[i], next_b++);
    }
    assert_int_equal(next_a, 5);
    assert_int_equal(next_b, 3);
    gw_outbox_reader_close(r);

    /* The sequence state survives too: dev-a's 4 is still a duplicate. */
    gw_outbox *ob = NULL;
    assert_int_equal(gw_outbox_open(path, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_depth(ob), 6);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_store_job *dup = make_job("dev-a", 4, 1);
    gw_outbox_submit(ob, dup);
    wait_done(1);
    assert_int_equal(dup->duplicates, 1);
    free_job(dup);
    gw_outbox_close(ob);
}

static void acks_delete(void **state)
{
    (void)state;
    gw_outbox *ob = NULL;
    gw_outbox_reader *r = NULL;
    iot_err err = {0};
    collected c = {0};
    int count = 0;
    assert_int_equal(gw_outbox_open(path, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    assert_int_equal(gw_outbox_reader_open(path, &r, &err), IOT_OK);
    assert_int_equal(gw_outbox_fetch(r, 0, 2, collect, &c, &count, &err), IOT_OK);
    assert_int_equal(count, 2);
    uint64_t published = gw_metric_get(GW_M_READINGS_PUBLISHED);
    gw_outbox_ack(ob, c.ids, 2);
    /* A job after the ack is committed after it (FIFO through one thread). */
    gw_store_job *j = make_job("dev-c", 1, 1);
    gw_outbox_submit(ob, j);
    wait_done(1);
    assert_int_equal(gw_outbox_depth(ob), 5);
    assert_int_equal(gw_metric_get(GW_M_READINGS_PUBLISHED), published + 2);
    collected rest = {0};
    assert_int_equal(gw_outbox_fetch(r, 0, 64, collect, &rest, &count, &err), IOT_OK);
    assert_int_equal(count, 5);
    for (int i = 0; i < rest.n; i++)
        assert_true(rest.ids[i] != c.ids[0] && rest.ids[i] != c.ids[1]);
    free_job(j);
    gw_outbox_reader_close(r);
    gw_outbox_close(ob);
}

/* One device may hold its share and no more; others still store. */
static void device_share_and_byte_bound(void **state)
{
    (void)state;
    char other[160];
    snprintf(other, sizeof(other), "%s/share.db", dir);
    gw_outbox *ob = NULL;
    iot_err err = {0};
    assert_int_equal(gw_outbox_open(other, 100, &ob, &err), IOT_OK);
    gw_outbox_set_limits(ob, 0, 10); /* 10 readings per device */
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_store_job *a = make_job("dev-a", 1, 10);
    gw_outbox_submit(ob, a);
    wait_done(1);
    assert_int_equal(a->result, GW_STORE_OK);
    gw_store_job *more = make_job("dev-a", 11, 1);
    gw_outbox_submit(ob, more);
    wait_done(1);
    assert_int_equal(more->result, GW_STORE_DEVICE_FULL);
    assert_int_equal(more->stored, 0);
    gw_store_job *b = make_job("dev-b", 1, 10);
    gw_outbox_submit(ob, b);
    wait_done(1);
    assert_int_equal(b->result, GW_STORE_OK);
    assert_int_equal(gw_outbox_depth(ob), 20);
    gw_outbox_close(ob);

    /* Reopened, the shares are counted from the file; an ack frees one. */
    gw_outbox_reader *r = NULL;
    collected c = {0};
    int count = 0;
    assert_int_equal(gw_outbox_open(other, 100, &ob, &err), IOT_OK);
    gw_outbox_set_limits(ob, 0, 10);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_outbox_submit(ob, more);
    wait_done(1);
    assert_int_equal(more->result, GW_STORE_DEVICE_FULL);
    assert_int_equal(gw_outbox_reader_open(other, &r, &err), IOT_OK);
    assert_int_equal(gw_outbox_fetch(r, 0, 1, collect, &c, &count, &err), IOT_OK);
    assert_string_equal(c.devices[0], "dev-a");
    gw_outbox_ack(ob, c.ids, 1);
    gw_outbox_submit(ob, more);
    wait_done(1);
    assert_int_equal(more->result, GW_STORE_OK);
    gw_outbox_reader_close(r);
    gw_outbox_close(ob);

    /* Bytes: each item is 9 bytes ("dseq":N} for N < 10); 50 bytes hold 5. */
    snprintf(other, sizeof(other), "%s/bytes.db", dir);
    assert_int_equal(gw_outbox_open(other, 100, &ob, &err), IOT_OK);
    gw_outbox_set_limits(ob, 50, 100);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_store_job *five = make_job("dev-c", 1, 5);
    gw_outbox_submit(ob, five);
    wait_done(1);
    assert_int_equal(five->result, GW_STORE_OK);
    gw_store_job *sixth = make_job("dev-d", 1, 1);
    gw_outbox_submit(ob, sixth);
    wait_done(1);
    assert_int_equal(sixth->result, GW_STORE_FULL);
    gw_outbox_close(ob);
    free_job(a);
    free_job(more);
    free_job(b);
    free_job(five);
    free_job(sixth);
}

/* A quarantined row leaves the queue, is kept with its reason, and is
 * counted; the rows behind it are fetched as before. */
static void quarantine_moves_a_row(void **state)
{
    (void)state;
    char other[160];
    snprintf(other, sizeof(other), "%s/quarantine.db", dir);
    gw_outbox *ob = NULL;
    gw_outbox_reader *r = NULL;
    iot_err err = {0};
    collected c = {0};
    int count = 0;
    assert_int_equal(gw_outbox_open(other, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_store_job *j = make_job("dev-q", 1, 3);
    gw_outbox_submit(ob, j);
    wait_done(1);
    assert_int_equal(gw_outbox_reader_open(other, &r, &err), IOT_OK);
    assert_int_equal(gw_outbox_fetch(r, 0, 1, collect, &c, &count, &err), IOT_OK);
    uint64_t before = gw_metric_get(GW_M_READINGS_QUARANTINED);
    gw_outbox_quarantine(ob, c.ids[0], "packet_too_large");
    gw_store_job *next = make_job("dev-q", 4, 1); /* committed after the move */
    gw_outbox_submit(ob, next);
    wait_done(1);
    assert_int_equal(gw_metric_get(GW_M_READINGS_QUARANTINED), before + 1);
    assert_int_equal(gw_outbox_quarantined(ob), 1);
    assert_int_equal(gw_outbox_depth(ob), 3);
    collected rest = {0};
    assert_int_equal(gw_outbox_fetch(r, 0, 64, collect, &rest, &count, &err), IOT_OK);
    assert_int_equal(count, 3);
    assert_true(rest.ids[0] > c.ids[0]);
    gw_outbox_reader_close(r);
    gw_outbox_close(ob);
    /* Kept across a reopen, with its reason. */
    assert_int_equal(gw_outbox_open(other, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_quarantined(ob), 1);
    gw_outbox_close(ob);
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "test \"$(sqlite3 %s \"SELECT device || ' ' || reason FROM quarantine\")\" = "
             "'dev-q packet_too_large'",
             other);
    assert_int_equal(system(cmd), 0);
    free_job(j);
    free_job(next);
}

static void submit_after_close_is_refused(void **state)
{
    (void)state;
    gw_outbox *ob = NULL;
    iot_err err = {0};
    assert_int_equal(gw_outbox_open(path, 10, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    gw_outbox_close(ob);
    assert_int_equal(gw_outbox_open("/nonexistent-dir/outbox.db", 10, &ob, &err), IOT_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/outbox.db"));
}

/* The last groups' rows from memory: the same rows as the query, and no
 * answer where memory cannot answer for every row (rows older than it, or
 * a deleted row above the cursor). */
static void recent_rows_match_the_query(void **state)
{
    (void)state;
    char other[160];
    snprintf(other, sizeof(other), "%s/recent.db", dir);
    gw_outbox *ob = NULL;
    gw_outbox_reader *r = NULL;
    iot_err err = {0};
    int count = 0;
    assert_int_equal(gw_outbox_open(other, 100, &ob, &err), IOT_OK);
    assert_int_equal(gw_outbox_start(ob, NULL, NULL, &err), IOT_OK);
    assert_int_equal(gw_outbox_reader_open(other, &r, &err), IOT_OK);
    collected none = {0};
    assert_int_equal(gw_outbox_fetch_recent(ob, 0, 64, collect, &none, &count), -1);
    gw_store_job *a = make_job("dev-a", 1, 3);
    gw_store_job *b = make_job("dev-b", 1, 2);
    gw_outbox_submit(ob, a);
    wait_done(1);
    gw_outbox_submit(ob, b);
    wait_done(1);
    collected mem = {0}, db = {0};
    assert_int_equal(gw_outbox_fetch_recent(ob, 0, 64, collect, &mem, &count), 0);
    assert_int_equal(count, 5);
    assert_int_equal(gw_outbox_fetch(r, 0, 64, collect, &db, &count, &err), IOT_OK);
    assert_int_equal(db.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(mem.ids[i], db.ids[i]);
        assert_int_equal(mem.gseq[i], db.gseq[i]);
        assert_string_equal(mem.devices[i], db.devices[i]);
    }
    /* Above a cursor, and bounded by the limit. */
    collected tail = {0};
    assert_int_equal(gw_outbox_fetch_recent(ob, mem.ids[2], 1, collect, &tail, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(tail.ids[0], mem.ids[3]);
    /* An acknowledged row above the cursor: the query answers, not memory. */
    gw_outbox_ack(ob, &mem.ids[1], 1);
    gw_store_job *c = make_job("dev-c", 1, 1);
    gw_outbox_submit(ob, c);
    wait_done(1);
    collected after = {0};
    assert_int_equal(gw_outbox_fetch_recent(ob, 0, 64, collect, &after, &count), -1);
    assert_int_equal(gw_outbox_fetch_recent(ob, mem.ids[1], 64, collect, &after, &count), 0);
    assert_int_equal(count, 4);
    free_job(a);
    free_job(b);
    free_job(c);
    gw_outbox_reader_close(r);
    gw_outbox_close(ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stores_dedups_and_numbers),
        cmocka_unit_test(survives_reopen_in_order),
        cmocka_unit_test(acks_delete),
        cmocka_unit_test(device_share_and_byte_bound),
        cmocka_unit_test(quarantine_moves_a_row),
        cmocka_unit_test(submit_after_close_is_refused),
        cmocka_unit_test(recent_rows_match_the_query),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
