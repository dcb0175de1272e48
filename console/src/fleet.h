/* The fleet inventory as the gateways see it: every fleet_interval, GET
 * /fleet on each gateway's admin listener (gateways, with the bearer token
 * of gateway_token_file), through libevent's HTTP client. The last answer
 * of each gateway is kept; a gateway that does not answer keeps its last
 * one, marked stale. */
#ifndef IC_FLEET_H
#define IC_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "app.h"
#include "iot/status.h"

typedef struct ic_fleet ic_fleet;

iot_status ic_fleet_start(ic_app *app, ic_fleet **out, iot_err *err);
void ic_fleet_stop(ic_fleet *f);

/* The freshest entry for `device` across gateways (the one with the
 * latest last_seen), and the gateway's name (host:port); NULL if none. */
const cJSON *ic_fleet_lookup(const ic_fleet *f, const char *device, const char **gateway);

/* {"gateways":[{"gateway","ok","updated","devices"}]} */
cJSON *ic_fleet_status_json(const ic_fleet *f);

#endif
