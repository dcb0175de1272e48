/* See secagg.h. Open addressing over a fixed table: a lookup scans the
 * whole probe window (PROBES slots), so freeing a slot needs no tombstone. */
#include "secagg.h"

#include <stdlib.h>
#include <string.h>

#define PROBES 16

typedef struct slot {
    bool used;
    unsigned type;
    uint64_t hash;
    char source[GW_SECAGG_SOURCE_MAX];
    int64_t window_end;
    uint32_t count; /* counted, not yet reported */
    int64_t first_ms, last_ms;
} slot;

struct gw_secagg {
    slot *slots;
    size_t n_slots;
    slot *overflow; /* one per type, source "*" */
    unsigned n_types;
    int64_t window_ms;
};

gw_secagg *gw_secagg_new(size_t slots, unsigned n_types, int64_t window_ms)
{
    if (slots == 0 || n_types == 0 || window_ms <= 0)
        return NULL;
    gw_secagg *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->slots = calloc(slots, sizeof(slot));
    a->overflow = calloc(n_types, sizeof(slot));
    if (a->slots == NULL || a->overflow == NULL) {
        gw_secagg_free(a);
        return NULL;
    }
    a->n_slots = slots;
    a->n_types = n_types;
    a->window_ms = window_ms;
    for (unsigned t = 0; t < n_types; t++) {
        a->overflow[t].type = t;
        memcpy(a->overflow[t].source, GW_SECAGG_OVERFLOW, sizeof(GW_SECAGG_OVERFLOW));
    }
    return a;
}

void gw_secagg_free(gw_secagg *a)
{
    if (a == NULL)
        return;
    free(a->slots);
    free(a->overflow);
    free(a);
}

/* FNV-1a over the type and the source. */
static uint64_t hash_of(unsigned type, const char *source)
{
    uint64_t h = 14695981039346656037ull ^ type;
    for (const unsigned char *p = (const unsigned char *)source; *p; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return h;
}

static slot *find(gw_secagg *a, unsigned type, const char *source, uint64_t h, slot **free_slot)
{
    *free_slot = NULL;
    for (size_t i = 0; i < PROBES && i < a->n_slots; i++) {
        slot *s = &a->slots[(h + i) % a->n_slots];
        if (!s->used) {
            if (*free_slot == NULL)
                *free_slot = s;
        } else if (s->hash == h && s->type == type && strcmp(s->source, source) == 0) {
            return s;
        }
    }
    return NULL;
}

static void count(slot *s, int64_t now_ms)
{
    if (s->count == 0)
        s->first_ms = now_ms;
    if (s->count < UINT32_MAX)
        s->count++;
    s->last_ms = now_ms;
}

bool gw_secagg_seen(gw_secagg *a, unsigned type, const char *source, int64_t now_ms)
{
    char src[GW_SECAGG_SOURCE_MAX];
    size_t n = strnlen(source, sizeof(src) - 1);
    memcpy(src, source, n);
    src[n] = '\0';
    if (type >= a->n_types)
        return true; /* not ours to count: never hide it */
    uint64_t h = hash_of(type, src);
    slot *free_slot;
    slot *s = find(a, type, src, h, &free_slot);
    if (s != NULL) {
        /* Within the window, or past it with a summary still to report:
         * counted, so the summary carries it. */
        if (now_ms < s->window_end || s->count > 0) {
            count(s, now_ms);
            return false;
        }
        s->window_end = now_ms + a->window_ms;
        return true;
    }
    if (free_slot == NULL) {
        slot *o = &a->overflow[type];
        if (o->count == 0)
            o->window_end = now_ms + a->window_ms;
        count(o, now_ms);
        return false;
    }
    *free_slot = (slot){.used = true, .type = type, .hash = h, .window_end = now_ms + a->window_ms};
    memcpy(free_slot->source, src, n + 1);
    return true;
}

/* A slot whose window ended: its summary if it counted any, then either a
 * new window (a flood goes on) or the slot is freed (it went quiet). */
static void expire_one(gw_secagg *a, slot *s, int64_t now_ms, bool all, gw_secagg_fn fn, void *ctx)
{
    if (!all && now_ms < s->window_end)
        return;
    if (s->count > 0) {
        fn(s->type, s->source, s->count, s->first_ms, s->last_ms, ctx);
        s->count = 0;
        s->window_end = now_ms + a->window_ms;
    } else {
        s->used = false;
    }
}

void gw_secagg_expire(gw_secagg *a, int64_t now_ms, bool all, gw_secagg_fn fn, void *ctx)
{
    for (size_t i = 0; i < a->n_slots; i++)
        if (a->slots[i].used)
            expire_one(a, &a->slots[i], now_ms, all, fn, ctx);
    for (unsigned t = 0; t < a->n_types; t++)
        if (a->overflow[t].count > 0 && (all || now_ms >= a->overflow[t].window_end)) {
            slot *o = &a->overflow[t];
            fn(t, o->source, o->count, o->first_ms, o->last_ms, ctx);
            o->count = 0;
        }
}
