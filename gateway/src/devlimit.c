#include "devlimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/identity.h"

#define BUCKETS 4096 /* power of two */

typedef struct dev_entry {
    struct dev_entry *next;
    uint32_t held;
    char device[IOT_ID_MAX + 1];
} dev_entry;

struct gw_dev_limit {
    pthread_mutex_t lock;
    uint32_t cap;
    dev_entry *buckets[BUCKETS];
};

static size_t bucket_of(const char *device)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)device; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (BUCKETS - 1);
}

/* The device's entry; made when `create`. Called with the lock held. */
static dev_entry *entry_of(gw_dev_limit *dl, const char *device, bool create)
{
    dev_entry **slot = &dl->buckets[bucket_of(device)];
    for (dev_entry *e = *slot; e != NULL; e = e->next)
        if (strcmp(e->device, device) == 0)
            return e;
    if (!create)
        return NULL;
    dev_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    snprintf(e->device, sizeof(e->device), "%s", device);
    e->next = *slot;
    *slot = e;
    return e;
}

gw_dev_limit *gw_dev_limit_new(uint32_t cap)
{
    gw_dev_limit *dl = calloc(1, sizeof(*dl));
    if (dl == NULL)
        return NULL;
    pthread_mutex_init(&dl->lock, NULL);
    dl->cap = cap;
    return dl;
}

bool gw_dev_limit_acquire(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    dev_entry *e = entry_of(dl, device, true);
    bool ok = e != NULL && e->held < dl->cap;
    if (ok)
        e->held++;
    pthread_mutex_unlock(&dl->lock);
    return ok;
}

void gw_dev_limit_release(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    dev_entry *e = entry_of(dl, device, false);
    if (e != NULL && e->held > 0)
        e->held--;
    pthread_mutex_unlock(&dl->lock);
}

uint32_t gw_dev_limit_held(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    dev_entry *e = entry_of(dl, device, false);
    uint32_t held = e != NULL ? e->held : 0;
    pthread_mutex_unlock(&dl->lock);
    return held;
}

void gw_dev_limit_free(gw_dev_limit *dl)
{
    if (dl == NULL)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        while (dl->buckets[i] != NULL) {
            dev_entry *next = dl->buckets[i]->next;
            free(dl->buckets[i]);
            dl->buckets[i] = next;
        }
    }
    pthread_mutex_destroy(&dl->lock);
    free(dl);
}
