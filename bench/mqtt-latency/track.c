#include "track.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SHIFT 16
#define PAGE_WORDS ((1u << PAGE_SHIFT) / 64)

typedef struct ml_page {
    uint64_t idx;
    uint64_t bits[PAGE_WORDS];
} ml_page;

static ml_page *find_page(const ml_bitset *s, uint64_t idx)
{
    /* Few pages per device, and the newest is the likeliest. */
    for (size_t i = s->n; i-- > 0;)
        if (s->pages[i]->idx == idx)
            return s->pages[i];
    return NULL;
}

static ml_page *add_page(ml_bitset *s, uint64_t idx)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        ml_page **grown = realloc(s->pages, cap * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        s->pages = grown;
        s->cap = cap;
    }
    ml_page *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->idx = idx;
    s->pages[s->n++] = p;
    return p;
}

int ml_bitset_add(ml_bitset *s, uint64_t v)
{
    uint64_t idx = v >> PAGE_SHIFT;
    uint32_t bit = (uint32_t)(v & ((1u << PAGE_SHIFT) - 1));
    ml_page *p = find_page(s, idx);
    if (p == NULL && (p = add_page(s, idx)) == NULL)
        return -1;
    uint64_t mask = 1ull << (bit % 64);
    if (p->bits[bit / 64] & mask)
        return 1;
    p->bits[bit / 64] |= mask;
    return 0;
}

int ml_bitset_has(const ml_bitset *s, uint64_t v)
{
    const ml_page *p = find_page(s, v >> PAGE_SHIFT);
    uint32_t bit = (uint32_t)(v & ((1u << PAGE_SHIFT) - 1));
    return p != NULL && (p->bits[bit / 64] >> (bit % 64)) & 1u;
}

void ml_bitset_free(ml_bitset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->pages[i]);
    free(s->pages);
    s->pages = NULL;
    s->n = s->cap = 0;
}

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t slot_of(ml_device **slots, size_t cap, const char *name)
{
    size_t i = hash(name) & (cap - 1);
    while (slots[i] != NULL && strcmp(slots[i]->name, name) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

static int grow(ml_devices *ds)
{
    size_t cap = ds->cap ? ds->cap * 2 : 64;
    ml_device **slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < ds->cap; i++)
        if (ds->slots[i] != NULL)
            slots[slot_of(slots, cap, ds->slots[i]->name)] = ds->slots[i];
    free(ds->slots);
    ds->slots = slots;
    ds->cap = cap;
    return 0;
}

ml_device *ml_devices_find(const ml_devices *ds, const char *name)
{
    if (ds->cap == 0)
        return NULL;
    return ds->slots[slot_of(ds->slots, ds->cap, name)];
}

ml_device *ml_devices_get(ml_devices *ds, const char *name)
{
    ml_device *d = ml_devices_find(ds, name);
    if (d != NULL)
        return d;
    if ((ds->n + 1) * 2 > ds->cap && grow(ds) != 0)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->gseq_min = INT64_MAX;
    d->gseq_max = INT64_MIN;
    ds->slots[slot_of(ds->slots, ds->cap, name)] = d;
    ds->n++;
    return d;
}

void ml_devices_free(ml_devices *ds)
{
    for (size_t i = 0; i < ds->cap; i++) {
        ml_device *d = ds->slots[i];
        if (d == NULL)
            continue;
        ml_bitset_free(&d->gseq);
        ml_bitset_free(&d->dseq);
        free(d);
    }
    free(ds->slots);
    ds->slots = NULL;
    ds->cap = ds->n = 0;
}
