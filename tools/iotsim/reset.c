/* Factory reset of simulated devices (iotd/reset.h over the POSIX port):
 * `iotsim --factory-reset --state DIR --device ID...` erases each device's
 * keys, certificates, queued readings and stored state; a device whose
 * reset was cut short finishes it when it next starts. */
#include <stdio.h>
#include <string.h>

#include "iot/fsutil.h"
#include "iotd/reset.h"
#include "iotd_posix/reset.h"
#include "sim.h"

typedef struct reset_ctx {
    iotd_posix_kv kv;
    const char *id;
} reset_ctx;

static iotd_status kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    return iotd_posix_kv_get(&((reset_ctx *)ctx)->kv, key, buf, cap, len);
}

static iotd_status kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    return iotd_posix_kv_set(&((reset_ctx *)ctx)->kv, key, data, len);
}

static void log_event(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    (void)level;
    fprintf(stderr, "iotsim: %s: %s: %s\n", ((reset_ctx *)ctx)->id, event, msg);
}

/* Opens the device's state (locked) and the two ports over it. */
static int open_state(reset_ctx *r, const char *state, const char *id, iotd_port *port,
                      iotd_reset_port *rp)
{
    char dir[IOTD_POSIX_CRED_PATH_MAX];
    iot_err err = {0};
    memset(port, 0, sizeof(*port));
    r->id = id;
    if (iot_path_join(dir, sizeof(dir), state, id, &err) != IOT_OK ||
        iotd_posix_kv_open(&r->kv, dir, &err) != IOT_OK) {
        sim_errorf("%s: %s", id, err.msg);
        return -1;
    }
    port->ctx = r;
    port->kv_get = kv_get;
    port->kv_set = kv_set;
    port->log = log_event;
    iotd_posix_reset_port(&r->kv, rp);
    return 0;
}

static int reset_one(const char *state, const char *id, bool only_pending)
{
    reset_ctx r;
    iotd_port port;
    iotd_reset_port rp;
    if (open_state(&r, state, id, &port, &rp) != 0)
        return -1;
    int rc = 0;
    if (!only_pending || iotd_factory_reset_pending(&port)) {
        iotd_status st = iotd_factory_reset(&port, &rp);
        if (st != IOTD_OK) {
            sim_errorf("%s: the factory reset of %s/%s stopped: %s; run it again", id, state, id,
                       iotd_strerror(st));
            rc = -1;
        }
    }
    iotd_posix_kv_close(&r.kv);
    return rc;
}

int sim_factory_reset(const char *state, const char *const *ids, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (reset_one(state, ids[i], false) != 0)
            rc = 1;
        else
            printf("%s: factory reset: keys, certificates, readings and state erased\n", ids[i]);
    return rc;
}

int sim_finish_reset(const char *state, const char *id)
{
    return reset_one(state, id, true);
}
