/* Counts per device ID: a chained hash table of small counters, for the
 * outbox's per-device share and the per-device connection cap. Not
 * thread-safe: its owner serialises access (one thread, or a lock).
 *
 * An entry lives until the map is cleared or freed: there is one per
 * device that ever counted, and devices are bounded by the registry. */
#ifndef GW_DEVMAP_H
#define GW_DEVMAP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_dev_count {
    int64_t n;     /* rows, connections: what the owner counts */
    int64_t bytes; /* the bytes those take, where the owner counts them */
} gw_dev_count;

typedef struct gw_devmap gw_devmap;

/* NULL when out of memory. */
gw_devmap *gw_devmap_new(void);

/* The device's counters; with `create`, made (zeroed) when absent. NULL
 * when absent and not created, or out of memory. */
gw_dev_count *gw_devmap_get(gw_devmap *m, const char *device, bool create);

/* Forgets every device. */
void gw_devmap_clear(gw_devmap *m);

void gw_devmap_free(gw_devmap *m);

#endif
