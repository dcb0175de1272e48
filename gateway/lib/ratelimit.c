#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/identity.h"

#define BUCKETS_MAX 1000000 /* bounded: one per enrolled device at most */

typedef struct bucket {
    char device[IOT_ID_MAX + 1];
    gw_bucket b;
    struct bucket *next;
} bucket;

struct gw_ratelimit {
    double rate;
    double burst;
    pthread_mutex_t lock;
    bucket **table;
    size_t n_slots;
    size_t n_buckets;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

bool gw_bucket_take(gw_bucket *b, double rate, double burst, double now)
{
    if (now > b->updated) {
        b->tokens = fmin(burst, b->tokens + (now - b->updated) * rate);
        b->updated = now;
    }
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

gw_ratelimit *gw_ratelimit_new(double rate, double burst)
{
    gw_ratelimit *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    rl->n_slots = 4096;
    rl->table = calloc(rl->n_slots, sizeof(*rl->table));
    if (rl->table == NULL) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->lock, NULL);
    return rl;
}

void gw_ratelimit_free(gw_ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < rl->n_slots; i++) {
        bucket *b = rl->table[i];
        while (b) {
            bucket *next = b->next;
            free(b);
            b = next;
        }
    }
    free(rl->table);
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static bucket *find_or_add(gw_ratelimit *rl, const char *device, double now)
{
    size_t slot = hash(device) % rl->n_slots;
    for (bucket *b = rl->table[slot]; b; b = b->next)
        if (strcmp(b->device, device) == 0)
            return b;
    if (rl->n_buckets >= BUCKETS_MAX)
        return NULL;
    bucket *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    snprintf(b->device, sizeof(b->device), "%s", device);
    b->b = (gw_bucket){rl->burst, now};
    b->next = rl->table[slot];
    rl->table[slot] = b;
    rl->n_buckets++;
    return b;
}

bool gw_ratelimit_take(gw_ratelimit *rl, const char *device, double now, int *retry_after_s)
{
    if (rl == NULL || rl->rate <= 0)
        return true;
    bool ok = false;
    pthread_mutex_lock(&rl->lock);
    bucket *b = find_or_add(rl, device, now);
    if (b == NULL) {
        /* No memory for a bucket: fail open would let a flood through;
         * fail closed for a moment instead. */
        *retry_after_s = 1;
        goto out;
    }
    ok = gw_bucket_take(&b->b, rl->rate, rl->burst, now);
    if (!ok) {
        double wait = (1.0 - b->b.tokens) / rl->rate;
        *retry_after_s = (int)ceil(wait);
        if (*retry_after_s < 1)
            *retry_after_s = 1;
    }
out:
    pthread_mutex_unlock(&rl->lock);
    return ok;
}
