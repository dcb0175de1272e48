/* Factory reset: the device forgets everything of its owner, so it can be
 * passed on or disposed of (CRA Annex I Part I (2)(m), EN 303 645 5.11):
 * its private keys and certificates, the settings it was installed with
 * (Wi-Fi, gateway, device ID, enrollment token), and everything the core
 * stored (the sequence record, the offline queue and its readings, the
 * update state). What remains is the firmware, as it left the factory
 * (or as last updated), with nothing to speak to any gateway with.
 *
 * Resumable across power loss: a marker is stored first (the core's
 * key-value storage, key IOTD_RESET_MARKER_KEY), then the three erasures
 * run, the storage last and the marker with it. A device that starts with
 * the marker present (iotd_factory_reset_pending) finishes the reset
 * before anything else, so a reset once begun always completes: the
 * device never comes back half its old self.
 *
 * The port contract: what each platform erases, and how. Every function
 * is idempotent (erasing what is already gone is IOTD_OK) and is called
 * from the application's thread before the device core runs. */
#ifndef IOTD_RESET_H
#define IOTD_RESET_H

#include <stdbool.h>

#include "iotd/port.h"
#include "iotd/status.h"

#define IOTD_RESET_MARKER_KEY "reset"

typedef struct iotd_reset_port {
    void *ctx; /* passed to every function below */

    /* Every private key and certificate of the device: both credential
     * slots (iotd/cred_port.h), the CA certificates it fetched, a
     * provisioned identity, a bootstrap credential. IOTD_EIO on a storage
     * failure (then called again). */
    iotd_status (*erase_credentials)(void *ctx);

    /* The settings it was installed with: network credentials, the
     * gateway's address, its device ID, an enrollment token. */
    iotd_status (*erase_settings)(void *ctx);

    /* Every key of the core's storage (iotd_port.kv_*) and the update
     * slots' state, IOTD_RESET_MARKER_KEY last: once it is gone, so is
     * everything else. */
    iotd_status (*erase_storage)(void *ctx);
} iotd_reset_port;

/* Runs, or finishes, a factory reset. IOTD_OK: everything is erased.
 * IOTD_EINVAL for a NULL argument or function; otherwise the first
 * failure (the marker stays, the next call or boot goes on). */
iotd_status iotd_factory_reset(const iotd_port *port, const iotd_reset_port *rp);

/* True when a reset was begun and not finished. */
bool iotd_factory_reset_pending(const iotd_port *port);

#endif
