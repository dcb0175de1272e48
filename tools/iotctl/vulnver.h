/* Version ordering and OSV range evaluation for 'iotctl vuln scan'.
 *
 * Debian versions compare as dpkg does (deb-version(7): epoch, upstream
 * version, Debian revision; '~' sorts before everything, even the end).
 * SEMVER versions compare as Semantic Versioning 2.0.0 says (build
 * metadata ignored, a pre-release before its release), with a leading 'v'
 * and missing minor or patch numbers (5.2 = 5.2.0) accepted.
 */
#ifndef IOTCTL_VULNVER_H
#define IOTCTL_VULNVER_H

#include <stdbool.h>
#include <stddef.h>

#include "iot/status.h"

#define IOT_VULN_VERSION_MAX 128 /* longest version string looked at */
#define IOT_VULN_EVENTS_MAX  64  /* events in one OSV range */

typedef enum iot_ver_scheme {
    IOT_VER_DPKG,   /* Debian ecosystem */
    IOT_VER_SEMVER, /* SEMVER ranges, ESP-IDF and our own components */
} iot_ver_scheme;

/* True if v is a well-formed version of the scheme (at most
 * IOT_VULN_VERSION_MAX characters). */
bool iot_vuln_version_valid(iot_ver_scheme scheme, const char *v);

/* <0, 0, >0 as a sorts before, with or after b. Both must be valid. */
int iot_vuln_dpkg_cmp(const char *a, const char *b);
int iot_vuln_semver_cmp(const char *a, const char *b);
int iot_vuln_version_cmp(iot_ver_scheme scheme, const char *a, const char *b);

typedef enum iot_vuln_event_kind {
    IOT_VULN_INTRODUCED,    /* "0" means before every version */
    IOT_VULN_FIXED,         /* the first version without the flaw */
    IOT_VULN_LAST_AFFECTED, /* the last version with it */
} iot_vuln_event_kind;

typedef struct iot_vuln_event {
    iot_vuln_event_kind kind;
    const char *version;
} iot_vuln_event;

/* Evaluates one OSV range (its events in any order) for version, as the
 * OSV schema's algorithm does: sorted by version, an introduced event at
 * or below version turns "affected" on, a fixed event at or below it or a
 * last_affected event below it turns it off. *fixed is the fixed version
 * that ends the affected span (NULL if none is known). IOT_EINVAL when a
 * version is not valid in the scheme or there are too many events; err
 * names the version. */
iot_status iot_vuln_range_match(iot_ver_scheme scheme, const char *version,
                                const iot_vuln_event *events, size_t n, bool *affected,
                                const char **fixed, iot_err *err);

#endif
