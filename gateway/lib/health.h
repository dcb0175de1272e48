/* A device's health report (POST /v1/device/health, docs/protocol.md): what
 * the fleet needs to spot compromise and drift, sent by the device core at
 * boot and then periodically:
 *
 *   {"firmware":"1.2.0","secure_version":3,"boot_count":12,
 *    "reset_reason":"watchdog","connect_failures":2,"since_upload_s":40,
 *    "heap_min":51234,"cert_not_after":1803000000,"slot":"ota_1"}
 *
 * Strict like readings: one JSON object of at most GW_HEALTH_BODY_MAX bytes,
 * valid UTF-8, no duplicate or unknown member, every member of its type and
 * range; heap_min, cert_not_after and slot may be left out (-1, 0 and "":
 * unknown).
 * A refusal names its row of the refusal table with a detail. */
#ifndef GW_HEALTH_H
#define GW_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "refusal.h"

#define GW_HEALTH_BODY_MAX    1024
#define GW_HEALTH_VERSION_MAX 32
#define GW_HEALTH_SLOT_MAX    16

typedef struct gw_health_report {
    char firmware[GW_HEALTH_VERSION_MAX + 1];
    uint32_t secure_version;
    uint32_t boot_count;
    const char *reset_reason; /* one of gw_health_reset_reasons, static */
    uint32_t connect_failures;
    int64_t since_upload_s;            /* -1: never uploaded since boot */
    int64_t heap_min;                  /* bytes; -1: not known */
    int64_t cert_not_after;            /* Unix seconds; 0: not known */
    char slot[GW_HEALTH_SLOT_MAX + 1]; /* "factory", "ota_0", ...; "": not known */
} gw_health_report;

/* Parses body[0..len); 0 on success. Otherwise -1 with *why set and a
 * sentence in detail (cap bytes). */
int gw_health_parse(const char *body, size_t len, gw_health_report *out, gw_refusal *why,
                    char *detail, size_t cap);

/* A reset the fleet should look at (a crash, a watchdog, a brown-out). */
bool gw_health_reset_is_abnormal(const char *reason);

#endif
