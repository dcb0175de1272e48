/* Connections open per device: one device's certificate (a copied key,
 * a bug in its firmware) cannot take the gateway's connection slots from
 * the others. Counted at the handshake, once the device is known, and
 * given back when the connection is freed.
 *
 * Thread-safe (one mutex; taken once per handshake and once per close).
 * An entry exists per device that ever connected; devices are bounded by
 * the registry, and only registered devices get this far. */
#ifndef GW_DEVLIMIT_H
#define GW_DEVLIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct gw_dev_limit gw_dev_limit;

/* cap: connections per device; NULL when out of memory. */
gw_dev_limit *gw_dev_limit_new(uint32_t cap);

/* Takes a slot for the device: false (and nothing taken) at its cap, or
 * when no memory is left for a new device's entry. */
bool gw_dev_limit_acquire(gw_dev_limit *dl, const char *device);

/* Gives back a slot taken by acquire. */
void gw_dev_limit_release(gw_dev_limit *dl, const char *device);

/* Slots the device holds now. */
uint32_t gw_dev_limit_held(gw_dev_limit *dl, const char *device);

void gw_dev_limit_free(gw_dev_limit *dl);

#endif
