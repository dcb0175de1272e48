#include "devmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/identity.h"

#define BUCKETS 4096 /* power of two; chains stay short up to ~100k devices */

typedef struct entry {
    struct entry *next;
    gw_dev_count count;
    char device[IOT_ID_MAX + 1];
} entry;

struct gw_devmap {
    entry *buckets[BUCKETS];
};

static size_t bucket_of(const char *device)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)device; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (BUCKETS - 1);
}

gw_devmap *gw_devmap_new(void)
{
    return calloc(1, sizeof(gw_devmap));
}

gw_dev_count *gw_devmap_get(gw_devmap *m, const char *device, bool create)
{
    entry **slot = &m->buckets[bucket_of(device)];
    for (entry *e = *slot; e != NULL; e = e->next)
        if (strcmp(e->device, device) == 0)
            return &e->count;
    if (!create)
        return NULL;
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    snprintf(e->device, sizeof(e->device), "%s", device);
    e->next = *slot;
    *slot = e;
    return &e->count;
}

void gw_devmap_clear(gw_devmap *m)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        while (m->buckets[i] != NULL) {
            entry *next = m->buckets[i]->next;
            free(m->buckets[i]);
            m->buckets[i] = next;
        }
    }
}

void gw_devmap_free(gw_devmap *m)
{
    if (m == NULL)
        return;
    gw_devmap_clear(m);
    free(m);
}
