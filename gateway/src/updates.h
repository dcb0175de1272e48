/* Firmware updates on the device listener: the three endpoints a device
 * uses, behind the same mutual TLS and identity checks as telemetry.
 *
 *   GET  /v1/firmware/manifest   the signed manifest of the release the
 *                                rollout file offers this device (chosen
 *                                by the identity in its certificate, never
 *                                by anything in the request): 200, or 204
 *                                nothing now, or 503 + Retry-After when
 *                                the rollout's per-minute cap defers it
 *   GET  <image-uri>             the image of that release, with Range
 *                                (206 + Content-Range, 416 for a range not
 *                                served), ETag = the image's digest; 404
 *                                for an image not offered to this device
 *   POST /v1/firmware/status     the device's report of each step (JSON,
 *                                iotd_update_report_json): 204 recorded
 *
 * The rollout file (iot/rollout.h) is shared with iotctl; the gateway
 * starts devices, records reports, starts waves and pauses a rollout at
 * its failure threshold, all in that file, so it survives restarts. Every
 * manifest is verified with the trusted keys of firmware_dir before it is
 * served: the one verifier of iotd/manifest.h.
 *
 * The rollout file is one SQLite handle behind a mutex, used by every
 * worker thread; each call is one short transaction. Images are read from
 * firmware_dir/images/DIGEST.bin and sent without copying them into the
 * heap (evbuffer file segments). */
#ifndef GW_UPDATES_H
#define GW_UPDATES_H

#include "iot/status.h"

struct gw_conn;
struct gw_http_request;

typedef struct gw_updates gw_updates;

#define GW_UPDATES_IMAGE_PREFIX "/v1/firmware/images/"
#define GW_UPDATES_REPORT_MAX   1024 /* bytes of a report's body */

/* Opens (creating) the rollout file and loads firmware_dir/trusted-keys.pem. */
iot_status gw_updates_open(const char *rollouts, const char *firmware_dir, gw_updates **out,
                           iot_err *err);
void gw_updates_close(gw_updates *u);

/* Several gateways (rollshare.h): each final report recorded here is
 * also handed to `share`, which outlives the workers' use of u. */
struct gw_rollshare;
void gw_updates_share(gw_updates *u, struct gw_rollshare *share);

/* Logs and counts what judging a final report did to its rollout (a wave
 * started, the rollout paused or completed): for a report taken here and
 * for one another gateway took (rollshare.c). */
struct iot_report_outcome;
void gw_updates_log_outcome(const struct iot_report_outcome *o);

/* Reads the trusted keys again (SIGHUP); on error the keys in use stay. */
iot_status gw_updates_reload_keys(gw_updates *u, iot_err *err);

/* The endpoints' handlers (gw_route_fn). With updates off (no gw_updates
 * in the app): the manifest is 204, an image 404, a report 404. */
void gw_updates_manifest(struct gw_conn *c, struct gw_http_request *req, const char *device);
void gw_updates_image(struct gw_conn *c, struct gw_http_request *req, const char *device);
void gw_updates_report(struct gw_conn *c, struct gw_http_request *req, const char *device);

#endif
