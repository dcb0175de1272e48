/* See iotd/reset.h. */
#include "iotd/reset.h"

#include <stddef.h>

#include "internal.h"

static const char MARK = 'R';

bool iotd_factory_reset_pending(const iotd_port *port)
{
    char v = 0;
    size_t len = 0;
    iotd_status st = port->kv_get(port->ctx, IOTD_RESET_MARKER_KEY, &v, sizeof(v), &len);
    /* A marker that cannot be read is one a reset was writing. */
    return st == IOTD_ECORRUPT || st == IOTD_ENOSPC || (st == IOTD_OK && len >= 1u);
}

iotd_status iotd_factory_reset(const iotd_port *port, const iotd_reset_port *rp)
{
    if (port == NULL || rp == NULL || rp->erase_credentials == NULL || rp->erase_settings == NULL ||
        rp->erase_storage == NULL)
        return IOTD_EINVAL;
    iotd_status st = port->kv_set(port->ctx, IOTD_RESET_MARKER_KEY, &MARK, 1u);
    if (st == IOTD_OK)
        st = rp->erase_credentials(rp->ctx);
    if (st == IOTD_OK)
        st = rp->erase_settings(rp->ctx);
    if (st == IOTD_OK)
        st = rp->erase_storage(rp->ctx);
    iotd__log(port, st == IOTD_OK ? IOTD_LOG_WARN : IOTD_LOG_ERROR,
              st == IOTD_OK ? "reset.done" : "reset.incomplete",
              st == IOTD_OK ? "keys, certificates, readings and settings erased"
                            : "the factory reset stopped; it goes on at the next attempt or boot");
    return st;
}
