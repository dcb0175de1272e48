/* The reference consumer's store: the readings it took, and the keys it
 * has seen, in one SQLite file. A reading is stored and its key recorded in
 * one transaction, committed (synchronous=FULL) before the broker is
 * acknowledged: a crash at any point leaves the reading either stored with
 * its key, or not acknowledged and sent again by the broker. A reading a
 * second gateway published again (a device's retry that reached another
 * gateway) has a key already seen: counted as a duplicate, not stored.
 *
 * The key is (device, dseq), the device's own sequence number, which is the
 * same whichever gateway the device reached; a reading without one (a
 * device that sends none) is known by (device, gateway, seq), so its
 * duplicates across gateways cannot be told apart (docs/protocol.md). */
#ifndef IC_STORE_H
#define IC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "iot/status.h"

typedef struct ic_store {
    sqlite3 *db;
    sqlite3_stmt *seen, *add;
} ic_store;

typedef struct ic_reading {
    char device[65];
    char gateway[65];
    int64_t seq; /* the gateway's; -1 if absent */
    char key[96];
} ic_reading;

typedef enum ic_result {
    IC_NEW,       /* stored: acknowledge it */
    IC_DUPLICATE, /* seen before: acknowledge it */
    IC_INVALID,   /* not a reading (no device, or no key): acknowledge and count it */
    IC_FAILED,    /* the store failed: do not acknowledge, the broker sends it again */
} ic_result;

iot_status ic_store_open(const char *path, ic_store *s, iot_err *err);
void ic_store_close(ic_store *s);

/* Takes one message payload (the gateway's JSON); fills *r with what
 * identifies it when it is a reading. */
ic_result ic_store_take(ic_store *s, const char *payload, size_t len, ic_reading *r, iot_err *err);

/* Forgets keys first seen before older_than (Unix seconds): a duplicate
 * arriving later than that is taken as new. */
iot_status ic_store_prune(ic_store *s, int64_t older_than, iot_err *err);

#endif
