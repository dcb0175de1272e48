/* Connections per client address: one host, or one IPv6 /64, may hold at
 * most `per_address` device connections at a time, so that a single source
 * cannot take every slot of max_connections (a flood of silent or
 * abandoned connections) and lock devices out.
 *
 * An IPv4 address counts as itself, an IPv4-mapped IPv6 address as the
 * IPv4 address it carries, and any other IPv6 address by its /64 prefix,
 * which one host usually controls whole. Thread-safe: the device workers
 * share one table. It never allocates after gw_addr_limit_new().
 */
#ifndef GW_ADDRLIMIT_H
#define GW_ADDRLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct gw_addr_key {
    uint8_t family;   /* 4 or 6 */
    uint8_t bytes[8]; /* IPv4: 4 bytes; IPv6: the /64 prefix */
} gw_addr_key;

typedef struct gw_addr_limit gw_addr_limit;

/* A table for up to `max_addresses` distinct addresses holding connections
 * at once (the gateway passes max_connections); NULL if out of memory. */
gw_addr_limit *gw_addr_limit_new(uint32_t per_address, uint32_t max_addresses);
void gw_addr_limit_free(gw_addr_limit *lim);

/* The key an accepted socket's peer address counts under; false for an
 * address family other than IPv4 and IPv6. */
bool gw_addr_key_of(const struct sockaddr *sa, socklen_t len, gw_addr_key *key);

/* Takes one connection slot for `key`; false (and nothing taken) if the
 * address already holds per_address connections or the table is full.
 * *first (if not NULL) tells whether the address held none before. */
bool gw_addr_limit_acquire(gw_addr_limit *lim, const gw_addr_key *key, bool *first);

/* Gives back a slot taken by gw_addr_limit_acquire(); true if that was the
 * address's last one. */
bool gw_addr_limit_release(gw_addr_limit *lim, const gw_addr_key *key);

/* Connections `key` holds now. */
uint32_t gw_addr_limit_count(gw_addr_limit *lim, const gw_addr_key *key);

/* Distinct addresses holding connections now. */
uint32_t gw_addr_limit_addresses(gw_addr_limit *lim);

/* Writes the key as text ("192.0.2.7" or "2001:db8:1:2::/64"). */
void gw_addr_key_format(const gw_addr_key *key, char *buf, size_t size);

/* Writes a socket's peer as "address:port" ("[address]:port" for IPv6), or
 * "?" for another family: the one form of a peer in log lines, made once
 * per connection (conn.c). Both formatters share one writer. */
#define GW_PEER_MAX 64
void gw_peer_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* New connections per address over time: a token bucket of `burst`
 * connections refilled at `rate` per second. The buckets are a fixed table
 * indexed by a seeded hash of the key, so any number of addresses costs the
 * same memory and nothing has to be evicted; two addresses that share a
 * bucket share its rate, which with GW_ADDR_RATE_BUCKETS buckets is rare
 * and cannot be aimed at without the seed. */
#define GW_ADDR_RATE_BUCKETS 65536

typedef struct gw_addr_rate gw_addr_rate;

/* seed 0: a random seed. NULL if out of memory. */
gw_addr_rate *gw_addr_rate_new(double rate, double burst, uint64_t seed);
void gw_addr_rate_free(gw_addr_rate *r);

/* Takes one connection from the key's bucket at time `now` (seconds, any
 * monotonic clock); false if the bucket is empty. */
bool gw_addr_rate_take(gw_addr_rate *r, const gw_addr_key *key, double now);

/* Whether two keys share a bucket (for tests). */
bool gw_addr_rate_same_bucket(const gw_addr_rate *r, const gw_addr_key *a, const gw_addr_key *b);

#endif
