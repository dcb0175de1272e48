#include "outbox_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct outbox_store {
    gw_outbox *outbox;
    gw_outbox_reader *reader;
} outbox_store;

static iot_status store_fetch(void *ctx, int64_t after_id, int limit, gw_outbox_row_fn fn,
                              void *fn_ctx, int *count, iot_err *err)
{
    outbox_store *s = ctx;
    /* The last groups' rows from memory when they are all that is asked
     * for: after every commit, a query would read the pages again. */
    if (gw_outbox_fetch_recent(s->outbox, after_id, limit, fn, fn_ctx, count) == 0)
        return IOT_OK;
    return gw_outbox_fetch(s->reader, after_id, limit, fn, fn_ctx, count, err);
}

static void store_ack(void *ctx, const int64_t *ids, size_t n)
{
    outbox_store *s = ctx;
    gw_outbox_ack(s->outbox, ids, n);
}

static void store_quarantine(void *ctx, int64_t id, const char *reason)
{
    outbox_store *s = ctx;
    gw_outbox_quarantine(s->outbox, id, reason);
}

static int64_t store_depth(void *ctx)
{
    outbox_store *s = ctx;
    return gw_outbox_depth(s->outbox);
}

iot_status gw_outbox_store_open(gw_outbox *ob, const char *path, gw_forwarder_store *store,
                                iot_err *err)
{
    memset(store, 0, sizeof(*store));
    outbox_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st = gw_outbox_reader_open(path, &s->reader, err);
    if (st != IOT_OK) {
        free(s);
        return st;
    }
    s->outbox = ob;
    store->ctx = s;
    store->fetch = store_fetch;
    store->ack = store_ack;
    store->quarantine = store_quarantine;
    store->depth = store_depth;
    return IOT_OK;
}

void gw_outbox_store_close(gw_forwarder_store *store)
{
    outbox_store *s = store->ctx;
    if (s != NULL) {
        gw_outbox_reader_close(s->reader);
        free(s);
    }
    memset(store, 0, sizeof(*store));
}
