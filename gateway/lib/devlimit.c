#include "devlimit.h"

#include <pthread.h>
#include <stdlib.h>

#include "devmap.h"

struct gw_dev_limit {
    pthread_mutex_t lock;
    uint32_t cap;
    gw_devmap *held;
};

gw_dev_limit *gw_dev_limit_new(uint32_t cap)
{
    gw_dev_limit *dl = calloc(1, sizeof(*dl));
    if (dl == NULL)
        return NULL;
    dl->held = gw_devmap_new();
    if (dl->held == NULL) {
        free(dl);
        return NULL;
    }
    pthread_mutex_init(&dl->lock, NULL);
    dl->cap = cap;
    return dl;
}

bool gw_dev_limit_acquire(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    gw_dev_count *c = gw_devmap_get(dl->held, device, true);
    bool ok = c != NULL && c->n < (int64_t)dl->cap;
    if (ok)
        c->n++;
    pthread_mutex_unlock(&dl->lock);
    return ok;
}

void gw_dev_limit_release(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    gw_dev_count *c = gw_devmap_get(dl->held, device, false);
    if (c != NULL && c->n > 0)
        c->n--;
    pthread_mutex_unlock(&dl->lock);
}

uint32_t gw_dev_limit_held(gw_dev_limit *dl, const char *device)
{
    pthread_mutex_lock(&dl->lock);
    gw_dev_count *c = gw_devmap_get(dl->held, device, false);
    uint32_t held = c != NULL ? (uint32_t)c->n : 0;
    pthread_mutex_unlock(&dl->lock);
    return held;
}

void gw_dev_limit_free(gw_dev_limit *dl)
{
    if (dl == NULL)
        return;
    gw_devmap_free(dl->held);
    pthread_mutex_destroy(&dl->lock);
    free(dl);
}
