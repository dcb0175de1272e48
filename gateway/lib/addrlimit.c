/* Open connections per address: open addressing with linear probing and
 * backward-shift deletion, sized at twice the most addresses that can hold
 * connections at once, so a probe stays short and a slot is always found
 * for an address under the cap. New connections per address over time: a
 * fixed table of token buckets. Both hashes are seeded at start-up: a
 * client cannot pick addresses that collide offline, to make every lookup
 * walk the whole table or to drain another address's bucket. */
#include "addrlimit.h"

#include "ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

typedef struct slot {
    gw_addr_key key;
    uint32_t count; /* 0: empty */
} slot;

struct gw_addr_limit {
    pthread_mutex_t lock;
    uint32_t per_address;
    uint32_t max_addresses;
    uint32_t used;
    uint64_t seed;
    size_t mask;
    slot *slots;
};

static uint64_t random_seed(const void *salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed) || seed == 0)
        seed = (uint64_t)(uintptr_t)salt ^ 0x9e3779b97f4a7c15u;
    return seed;
}

static uint64_t seeded_hash(uint64_t seed, const gw_addr_key *key)
{
    uint64_t h;
    memcpy(&h, key->bytes, sizeof(h));
    h ^= seed + key->family;
    /* the 64-bit finaliser of MurmurHash3: every input bit moves every output bit */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

gw_addr_limit *gw_addr_limit_new(uint32_t per_address, uint32_t max_addresses)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)max_addresses)
        cap *= 2;
    gw_addr_limit *lim = calloc(1, sizeof(*lim));
    if (lim == NULL)
        return NULL;
    lim->slots = calloc(cap, sizeof(slot));
    if (lim->slots == NULL) {
        free(lim);
        return NULL;
    }
    lim->seed = random_seed(lim);
    pthread_mutex_init(&lim->lock, NULL);
    lim->per_address = per_address;
    lim->max_addresses = max_addresses;
    lim->mask = cap - 1;
    return lim;
}

void gw_addr_limit_free(gw_addr_limit *lim)
{
    if (lim == NULL)
        return;
    pthread_mutex_destroy(&lim->lock);
    free(lim->slots);
    free(lim);
}

bool gw_addr_key_of(const struct sockaddr *sa, socklen_t len, gw_addr_key *key)
{
    memset(key, 0, sizeof(*key));
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key->family = 4;
        memcpy(key->bytes, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key->family = 4;
            memcpy(key->bytes, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            key->family = 6;
            memcpy(key->bytes, in6->sin6_addr.s6_addr, 8);
        }
        return true;
    }
    return false;
}

static size_t hash_of(const gw_addr_limit *lim, const gw_addr_key *key)
{
    return (size_t)seeded_hash(lim->seed, key);
}

static bool same(const gw_addr_key *a, const gw_addr_key *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* The slot holding `key`, or the empty slot where it would go. */
static size_t find(const gw_addr_limit *lim, const gw_addr_key *key)
{
    size_t i = hash_of(lim, key) & lim->mask;
    while (lim->slots[i].count != 0 && !same(&lim->slots[i].key, key))
        i = (i + 1) & lim->mask;
    return i;
}

bool gw_addr_limit_acquire(gw_addr_limit *lim, const gw_addr_key *key, bool *first)
{
    bool ok = false, added = false;
    pthread_mutex_lock(&lim->lock);
    slot *s = &lim->slots[find(lim, key)];
    if (s->count == 0) {
        if (lim->used < lim->max_addresses && lim->per_address > 0) {
            s->key = *key;
            s->count = 1;
            lim->used++;
            ok = added = true;
        }
    } else if (s->count < lim->per_address) {
        s->count++;
        ok = true;
    }
    pthread_mutex_unlock(&lim->lock);
    if (first != NULL)
        *first = added;
    return ok;
}

/* Empties slot i and moves later entries of its probe run back, so that
 * every entry stays reachable from its home slot without tombstones. */
static void remove_at(gw_addr_limit *lim, size_t i)
{
    size_t j = i;
    for (;;) {
        lim->slots[i].count = 0;
        for (;;) {
            j = (j + 1) & lim->mask;
            if (lim->slots[j].count == 0)
                return;
            size_t home = hash_of(lim, &lim->slots[j].key) & lim->mask;
            /* Entry j may move to i only if i lies on its probe path,
             * cyclically between its home slot and j. */
            bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!stays)
                break;
        }
        lim->slots[i] = lim->slots[j];
        i = j;
    }
}

bool gw_addr_limit_release(gw_addr_limit *lim, const gw_addr_key *key)
{
    bool last = false;
    pthread_mutex_lock(&lim->lock);
    size_t i = find(lim, key);
    if (lim->slots[i].count > 1) {
        lim->slots[i].count--;
    } else if (lim->slots[i].count == 1) {
        remove_at(lim, i);
        lim->used--;
        last = true;
    }
    pthread_mutex_unlock(&lim->lock);
    return last;
}

uint32_t gw_addr_limit_count(gw_addr_limit *lim, const gw_addr_key *key)
{
    pthread_mutex_lock(&lim->lock);
    uint32_t n = lim->slots[find(lim, key)].count;
    pthread_mutex_unlock(&lim->lock);
    return n;
}

uint32_t gw_addr_limit_addresses(gw_addr_limit *lim)
{
    pthread_mutex_lock(&lim->lock);
    uint32_t n = lim->used;
    pthread_mutex_unlock(&lim->lock);
    return n;
}

/* The one writer of addresses as text: "a.b.c.d" or an IPv6 address, then
 * "/64" (prefix) or ":port" ("[v6]:port"), or "?" for any other family. */
static void format_address(int family, const void *addr, bool prefix, int port, char *buf,
                           size_t size)
{
    char text[INET6_ADDRSTRLEN] = "?";
    bool known = (family == AF_INET || family == AF_INET6) &&
                 inet_ntop(family, addr, text, sizeof(text)) != NULL;
    if (!known)
        snprintf(buf, size, "?");
    else if (prefix)
        snprintf(buf, size, "%s%s", text, family == AF_INET6 ? "/64" : "");
    else if (family == AF_INET6)
        snprintf(buf, size, "[%s]:%d", text, port);
    else
        snprintf(buf, size, "%s:%d", text, port);
}

void gw_addr_key_format(const gw_addr_key *key, char *buf, size_t size)
{
    uint8_t full[16] = {0};
    memcpy(full, key->bytes, key->family == 4 ? 4 : 8);
    format_address(key->family == 4 ? AF_INET : AF_INET6, full, true, 0, buf, size);
}

void gw_peer_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        format_address(AF_INET, &in->sin_addr, false, ntohs(in->sin_port), buf, size);
    } else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        format_address(AF_INET6, &in6->sin6_addr, false, ntohs(in6->sin6_port), buf, size);
    } else {
        format_address(AF_UNSPEC, NULL, false, 0, buf, size);
    }
}

/* --- new connections per address over time -------------------------------- */

/* updated == 0: never used, full. */
typedef gw_bucket rate_bucket;

struct gw_addr_rate {
    pthread_mutex_t lock;
    double rate;
    double burst;
    uint64_t seed;
    rate_bucket buckets[GW_ADDR_RATE_BUCKETS];
};

gw_addr_rate *gw_addr_rate_new(double rate, double burst, uint64_t seed)
{
    gw_addr_rate *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->rate = rate;
    r->burst = burst < 1 ? 1 : burst;
    r->seed = seed != 0 ? seed : random_seed(r);
    return r;
}

void gw_addr_rate_free(gw_addr_rate *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static rate_bucket *bucket_of(gw_addr_rate *r, const gw_addr_key *key)
{
    return &r->buckets[seeded_hash(r->seed, key) % GW_ADDR_RATE_BUCKETS];
}

bool gw_addr_rate_take(gw_addr_rate *r, const gw_addr_key *key, double now)
{
    pthread_mutex_lock(&r->lock);
    rate_bucket *b = bucket_of(r, key);
    if (b->updated == 0)
        *b = (gw_bucket){r->burst, now};
    bool ok = gw_bucket_take(b, r->rate, r->burst, now);
    pthread_mutex_unlock(&r->lock);
    return ok;
}

bool gw_addr_rate_same_bucket(const gw_addr_rate *r, const gw_addr_key *a, const gw_addr_key *b)
{
    return seeded_hash(r->seed, a) % GW_ADDR_RATE_BUCKETS ==
           seeded_hash(r->seed, b) % GW_ADDR_RATE_BUCKETS;
}
