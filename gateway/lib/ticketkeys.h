/* The keys that seal TLS session tickets, rotated on a schedule and shared
 * by every worker thread: a ticket is sealed with the current key; a
 * ticket sealed with the previous key still opens, and is renewed under
 * the current one; older tickets do not open, so a device makes a full
 * handshake. With a rotation every session lifetime, every ticket still
 * within its lifetime opens, and a key lives at most two lifetimes.
 *
 * Memory only: a restart forgets every key (devices fall back to a full
 * handshake once), and no key is ever written to disk. The ring does no
 * cryptography; gateway/src/tls_tickets.c gives the keys to OpenSSL. */
#ifndef GW_TICKETKEYS_H
#define GW_TICKETKEYS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_TICKET_NAME_LEN 16 /* OpenSSL's key_name */
#define GW_TICKET_KEY_LEN  32 /* AES-256 and HMAC-SHA256 keys */

typedef struct gw_ticket_key {
    unsigned char name[GW_TICKET_NAME_LEN];
    unsigned char cipher[GW_TICKET_KEY_LEN];
    unsigned char mac[GW_TICKET_KEY_LEN];
    int64_t since; /* when it became the current key */
} gw_ticket_key;

/* Fills buf with len secret random bytes; 0 on success. */
typedef int (*gw_random_fn)(unsigned char *buf, size_t len);

typedef struct gw_ticket_keys {
    pthread_mutex_t lock;
    gw_ticket_key current, previous;
    bool have_previous;
    int64_t lifetime_s;
    gw_random_fn random;
    uint64_t rotations;
} gw_ticket_keys;

/* Draws the first key at `now` (seconds, monotonic). Returns 0, or -1 when
 * random bytes could not be drawn. */
int gw_ticket_keys_init(gw_ticket_keys *k, int64_t lifetime_s, int64_t now, gw_random_fn random);

/* Wipes every key. */
void gw_ticket_keys_destroy(gw_ticket_keys *k);

/* Copies the key to seal a new ticket with at `now`, rotating first when
 * the current key's time is up. Returns 0, or -1 when a due rotation could
 * not draw random bytes (then no ticket should be issued). */
int gw_ticket_keys_sealing(gw_ticket_keys *k, int64_t now, gw_ticket_key *out);

/* Looks up the key a ticket names at `now`: 1 the current key, 2 the
 * previous one (open the ticket and issue a new one), 0 none (a full
 * handshake). -1 when a due rotation could not draw random bytes. */
int gw_ticket_keys_opening(gw_ticket_keys *k, const unsigned char name[GW_TICKET_NAME_LEN],
                           int64_t now, gw_ticket_key *out);

#endif
