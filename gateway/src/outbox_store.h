/* The outbox as the forwarder's store: rows are read through a reader
 * connection of its own, acknowledgements and quarantines are queued for
 * the committer thread (outbox.h). */
#ifndef GW_OUTBOX_STORE_H
#define GW_OUTBOX_STORE_H

#include "forwarder.h"
#include "iot/status.h"
#include "outbox.h"

/* Opens a reader on the outbox file at `path` and fills *store. The
 * outbox must stay open while the forwarder may ack or quarantine. */
iot_status gw_outbox_store_open(gw_outbox *ob, const char *path, gw_forwarder_store *store,
                                iot_err *err);

/* Closes the reader; *store is cleared. */
void gw_outbox_store_close(gw_forwarder_store *store);

#endif
