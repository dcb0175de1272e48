/* The fleet inventory: per device, when the gateway last heard from it
 * and what its last health report said (firmware and secure_version, boot
 * count and reset reason, connection failures, free heap low-water mark,
 * certificate expiry). Served as JSON on the admin listener (GET /fleet)
 * for operators and `iotctl vuln scan --inventory`, and counted in
 * iotgw_devices_silent.
 *
 * In memory, one mutex (taken once per admitted request and per report),
 * and kept in SQLite (fleet_inventory): reports and last-seen times are
 * written in one transaction by gw_fleet_flush (the main loop, every few
 * seconds, and at stop), so a restart keeps the inventory, and a request
 * never waits for the disk. Entries exist only for devices the gateway
 * admitted, so the registry bounds them. */
#ifndef GW_FLEET_H
#define GW_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "health.h"
#include "iot/status.h"

typedef struct gw_fleet gw_fleet;

/* What a report changed that the security event stream reports. */
typedef struct gw_fleet_change {
    bool known;                   /* the device had reported before */
    uint32_t prev_secure_version; /* then: its secure_version */
    char prev_firmware[GW_HEALTH_VERSION_MAX + 1];
} gw_fleet_change;

iot_status gw_fleet_open(const char *path, gw_fleet **out, iot_err *err);

/* Flushes and frees; NULL is ignored. */
void gw_fleet_close(gw_fleet *f);

/* The device made an admitted request at `now` (Unix seconds). */
void gw_fleet_seen(gw_fleet *f, const char *device, int64_t now);

/* The device's health report; *change says what it had reported before. */
void gw_fleet_report(gw_fleet *f, const char *device, const gw_health_report *r, int64_t now,
                     gw_fleet_change *change);

/* Writes what changed since the last flush. */
iot_status gw_fleet_flush(gw_fleet *f, iot_err *err);

/* {"generated":NOW,"devices":[{"device":..,"firmware":..,...}]} sorted by
 * device, malloc'd; NULL when out of memory. */
char *gw_fleet_json(gw_fleet *f, int64_t now);

/* Devices last seen more than after_s seconds before now. */
int64_t gw_fleet_silent(gw_fleet *f, int64_t now, int64_t after_s);

#endif
