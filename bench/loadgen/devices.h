/* The devices the load generator speaks for: their TLS identities, their
 * sequence numbers and the readings the server acknowledged. */
#ifndef LG_DEVICES_H
#define LG_DEVICES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "options.h"

typedef struct lg_range {
    uint32_t lo, hi;
} lg_range;

typedef struct lg_device {
    char name[72];
    SSL_CTX *ctx; /* NULL with --plain */
    _Atomic uint64_t next_seq;
    pthread_mutex_t lock; /* guards the acknowledged ranges and the session */
    SSL_SESSION *session; /* --resume: the last session the server gave */
    lg_range *acked;
    size_t n_acked, cap_acked;
    uint64_t acked_readings;
} lg_device;

typedef struct lg_devices {
    lg_device *dev;
    int n;
} lg_devices;

/* Loads every device's certificate and key into its own client context.
 * On failure writes why to err and returns -1. */
int lg_devices_load(const lg_options *o, lg_devices *out, char *err, size_t err_size);

/* Takes `count` sequence numbers; returns the first, or 0 when they would
 * pass 2^32 - 1. */
uint32_t lg_device_take_seq(lg_device *d, uint32_t count);

/* --resume: offers the device's last session on a connection about to
 * shake hands (nothing when it has none yet). */
void lg_device_offer_session(lg_device *d, SSL *ssl);

/* Records readings lo..hi as acknowledged (a 2xx). */
void lg_device_ack(lg_device *d, uint32_t lo, uint32_t hi);

/* The highest sequence number handed out, plus one. */
uint64_t lg_devices_seq_next(const lg_devices *ds);

uint64_t lg_devices_acked(const lg_devices *ds);

/* Writes the acknowledged readings for mqtt-latency:
 *   window START_NS END_NS        (Unix time of the measured window)
 *   DEVICE LO HI                  (one line per range of sequence numbers)
 * Returns 0, or -1 with errno set. */
int lg_devices_write_acked(const lg_devices *ds, const char *path, uint64_t start_ns,
                           uint64_t end_ns);

void lg_devices_free(lg_devices *ds);

#endif
