/* iotconsole's configuration: one option table (config.c) drives the
 * defaults, the parser and the validation, as the gateway's does
 * (gateway/lib/config.c), and with the same file syntax and value syntaxes
 * (gateway/lib/config_parse.h): `key = value` lines, `#` comments,
 * durations with a unit, booleans yes/no. Works on memory; the daemon
 * reads the file and checks the files it names (console/src/main.c). */
#ifndef IC_CONFIG_H
#define IC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"

#define IC_PATH_LEN        512
#define IC_HOST_LEN        256
#define IC_CONFIG_FILE_MAX (32 * 1024)

typedef struct ic_config {
    char listen[IC_HOST_LEN]; /* "host:port"; default 127.0.0.1:8444 */
    bool listen_remote;       /* default no: listen must be loopback */
    char origin[IC_HOST_LEN]; /* the URL operators open; default https://localhost:PORT */
    char tls_cert[IC_PATH_LEN];
    char tls_key[IC_PATH_LEN];
    char operators[IC_PATH_LEN]; /* iotctl operator add's file */
    char state[IC_PATH_LEN];     /* SQLite: audit log, acknowledgements, events */
    char web_dir[IC_PATH_LEN];   /* the pages, scripts and Chart.js */
    char registry[IC_PATH_LEN];
    char rollouts[IC_PATH_LEN]; /* "" = no rollouts shown */
    char gateways[1024];        /* admin URLs http://host:port, space-separated; "" = none */
    char gateway_token_file[IC_PATH_LEN];
    int64_t fleet_interval_ms;
    char mqtt_host[IC_HOST_LEN]; /* "" = no live readings nor events */
    int mqtt_port;
    char mqtt_ca[IC_PATH_LEN];
    char mqtt_cert[IC_PATH_LEN];
    char mqtt_key[IC_PATH_LEN];
    char topic_prefix[128];
    int64_t session_idle_ms;
    int64_t session_max_ms;
    int max_sessions;
    int max_connections;
    int sse_max_clients;
    int sse_queue_kib; /* bytes waiting for one stream client, at most (KiB) */
    double login_rate; /* failed logins per minute, per operator and per address */
    int login_burst;
    double login_rate_total; /* login attempts per minute over all addresses */
} ic_config;

void ic_config_defaults(ic_config *cfg);

/* Parses the text over the defaults; errors name origin, line and key. */
iot_status ic_config_parse(const char *text, size_t len, const char *origin, ic_config *cfg,
                           iot_err *err);

/* Required keys, loopback unless listen_remote, the MQTT keys all or none.
 * Fills origin when left empty. */
iot_status ic_config_validate(ic_config *cfg, iot_err *err);

/* The keys of the table, for the documentation check. */
size_t ic_config_keys(const char **out, size_t max);

/* The paths a key names and what the daemon needs of them: readable
 * (files it reads), private (keys: no access for group or others). */
typedef struct ic_config_path {
    const char *key;
    const char *path;
    bool private_key;
} ic_config_path;
size_t ic_config_files(const ic_config *cfg, ic_config_path *out, size_t max);

#endif
