/* Gateway configuration: one table (config.c) drives parsing, defaults,
 * validation, `--check-config` and the commented example file
 * (deploy/gateway/iotgw.conf.example), so the three cannot disagree.
 *
 * Everything here works on memory. Reading the file from a path and
 * checking the files it names (existence, key file modes) is
 * gateway/src/config_files.h: gw_config_load, gw_config_check_files.
 *
 * File format: one `key = value` per line; `#` starts a comment; blank
 * lines ignored; values may be quoted with "..." (no escapes). Unknown keys,
 * duplicate keys, and malformed values are errors naming the file, line
 * and key. Durations take a unit suffix (ms, s, m, h, d); sizes take
 * B, KiB, MiB, GiB; booleans are yes/no/true/false/on/off.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iot/status.h"

#define GW_PATH_MAX           512
#define GW_HOST_MAX           256
#define GW_MQTT_HOSTS_MAX     1024        /* mqtt_host: up to 8 brokers */
#define GW_CONFIG_OPTIONS_MAX 128         /* room in gw_config.set_line; checked in config.c */
#define GW_CONFIG_FILE_MAX    (64 * 1024) /* bytes of configuration text, at most */

typedef struct gw_config {
    /* device listener (HTTPS, mutual TLS) */
    char device_listen[GW_HOST_MAX]; /* "host:port" or "[v6]:port"; default "0.0.0.0:8443" */
    bool device_tls;                 /* default yes; "no" (plaintext) needs development_mode */
    bool require_client_cert;        /* default yes; "no" needs development_mode, and then the
                                        device ID comes from the X-Device-Id header */
    char tls_cert[GW_PATH_MAX];      /* gateway server certificate (PEM); required */
    char tls_key[GW_PATH_MAX];   /* its private key; required; must not be group/other readable */
    char client_ca[GW_PATH_MAX]; /* CA that signs device certificates; required */
    char crl_file[GW_PATH_MAX];  /* CRL from iotctl; required */
    char registry[GW_PATH_MAX];  /* registry.db from iotctl; required */
    int workers;                 /* event-loop threads for devices; 0 = one per core (default) */
    int64_t request_timeout_ms;  /* silence allowed on a connection; default 10 s */
    int64_t tls_session_lifetime_s;  /* session ticket lifetime; 0 = no resumption; default 2 h */
    int max_connections;             /* default 20000 */
    int max_connections_per_address; /* per IPv4 address or IPv6 /64; 0 = no cap; default 256 */
    int max_connections_per_device;  /* per device ID; 0 = no cap; default 4 */
    size_t max_buffered_bytes;       /* request bytes buffered in all; default 256 MiB */
    double connection_rate_per_address;  /* new connections/s per address; 0 = none; default 20 */
    double connection_burst_per_address; /* bucket size; default 200 */
    char proxy_protocol_from[512]; /* balancers sending PROXY v2 headers; "" = none (default) */
    int64_t reload_interval_ms;    /* poll registry/CRL for changes; 0 = SIGHUP only; default 2 s */

    /* admin listener (plain HTTP: /healthz, /metrics) */
    char admin_listen[GW_HOST_MAX];     /* default "127.0.0.1:9100"; "" disables */
    bool admin_remote;                  /* default no: admin_listen must be loopback */
    char admin_token_file[GW_PATH_MAX]; /* bearer token; required when admin_remote */
    int admin_max_connections;          /* default 16 */

    /* payload limits (see gateway/lib/payload.h) */
    size_t max_body;          /* default 16 KiB */
    int max_depth;            /* default 4 */
    size_t max_records;       /* default 256 */
    size_t max_readings;      /* default 64 */
    int64_t past_window_ms;   /* default 7 d */
    int64_t future_window_ms; /* default 5 m */

    /* per-device rate limit (token bucket) */
    double rate_limit; /* requests per second; default 10; 0 disables */
    double rate_burst; /* bucket size; default 20 */

    /* durable outbox */
    char outbox[GW_PATH_MAX];   /* SQLite file; default "/var/lib/iotgw/outbox.db" */
    int64_t outbox_max;         /* readings held at most; default 1000000 */
    size_t outbox_max_bytes;    /* bytes of stored messages held at most; default 1 GiB */
    int outbox_device_share;    /* percent of both bounds one device may hold; default 10 */
    int64_t retry_after_s;      /* Retry-After on 503; default 5 */
    char acknowledge[16];       /* "stored" (default) or "confirmed" (by the broker) */
    int64_t confirm_timeout_ms; /* acknowledge = confirmed: 503 past it; default 10 s */

    /* firmware updates (both "" or both set) */
    char rollouts[GW_PATH_MAX];     /* rollout file shared with iotctl; "" = updates off */
    char firmware_dir[GW_PATH_MAX]; /* images/DIGEST.bin and trusted-keys.pem */

    /* enrollment (EST): on when est_ca_cert and est_ca_key are set */
    char est_ca_cert[GW_PATH_MAX];      /* the issuing intermediate CA; "" = enrollment off */
    char est_ca_key[GW_PATH_MAX];       /* its key; must not be group/other readable */
    char est_bootstrap_ca[GW_PATH_MAX]; /* the bootstrap (factory) CA; "" = none */
    int64_t est_cert_lifetime_s;        /* of issued device certificates; default 90 d */
    int64_t est_renewal_grace_s;        /* the old certificate after a renewal; default 7 d */
    bool est_require_approval;          /* first enrollments wait for an operator; default no */
    int64_t est_retry_after_s;          /* Retry-After with 202; default 60 s */
    int est_max_failures;               /* refused enrollments per address and window; 10 */
    int64_t est_failure_window_s;       /* default 10 m */
    int64_t cert_expiry_warning_s;      /* iotgw_devices_cert_expiring; default 30 d */

    /* security event stream */
    bool security_events;              /* default yes */
    char security_outbox[GW_PATH_MAX]; /* "" = security-events.db beside outbox */
    int64_t security_outbox_max;       /* events held at most; default 100000 */
    int64_t security_event_window_ms;  /* aggregation window; default 60 s */

    /* fleet inventory */
    char fleet_inventory[GW_PATH_MAX]; /* "" = fleet.db beside outbox */
    int64_t device_silent_after_s;     /* iotgw_devices_silent; default 2 h */

    /* shared state of several gateways (etcd) */
    char shared_state[GW_MQTT_HOSTS_MAX]; /* etcd members; "" = this gateway alone (default) */
    char shared_state_ca[GW_PATH_MAX];    /* CA of the members' certificates */
    char shared_state_cert[GW_PATH_MAX];  /* the gateway's client certificate at etcd */
    char shared_state_key[GW_PATH_MAX];   /* its key; must not be group/other readable */
    int64_t shared_state_poll_ms;         /* how often other gateways' reports are read */

    /* MQTT forwarder */
    char mqtt_host[GW_MQTT_HOSTS_MAX]; /* one or more brokers (brokers.h); required */
    int mqtt_port;                     /* for entries without one; default 8883 */
    char mqtt_protocol[8];             /* "5" (default) or "3.1.1" */
    char mqtt_ca[GW_PATH_MAX];         /* CA that signs the broker certificate; required */
    char mqtt_cert[GW_PATH_MAX];       /* gateway's MQTT client certificate; required */
    char mqtt_key[GW_PATH_MAX];        /* its key; required; must not be group/other readable */
    char mqtt_client_id[128];          /* default "iotgw-<hostname>" when empty */
    char topic_prefix[128];    /* default "telemetry"; no wildcards, no leading/trailing '/' */
    int64_t mqtt_keepalive_ms; /* default 30 s */
    int mqtt_inflight;         /* QoS 1 messages in flight; default 256 */
    size_t mqtt_max_packet;    /* the broker's max_packet_size; default 64 KiB */
    int64_t reconnect_min_ms;  /* default 500 ms */
    int64_t reconnect_max_ms;  /* default 30 s */

    /* operations */
    char log_level[16];    /* debug, info, warn, error; default info */
    bool development_mode; /* allows insecure settings, loudly; default no */

    /* Where the values came from, so that validation errors name the file
     * and line like parse errors do: the origin given to gw_config_parse
     * (the file's path for gw_config_load) and the line that set each
     * option, in the option table's order (0: the default). Empty and 0 in
     * a struct built in code. */
    char origin[GW_PATH_MAX];
    unsigned set_line[GW_CONFIG_OPTIONS_MAX];
} gw_config;

/* Fills every field with its default. */
void gw_config_defaults(gw_config *cfg);

/* Parses configuration text (at most GW_CONFIG_FILE_MAX bytes) over the
 * defaults; `origin` (the file's path) names it in messages. */
iot_status gw_config_parse(const char *text, size_t len, const char *origin, gw_config *cfg,
                           iot_err *err);

/* Checks required keys, ranges, security rules and the rules between
 * values; touches no file (gw_config_check_files does, after it).
 * Each error starts with "FILE:LINE: " naming the line that set the value
 * at fault, or "FILE: " for a value left at its default (nothing for a
 * struct not made by the parser).
 * Insecure settings are refused unless development_mode is set; in that
 * case each one is reported through `warn` (may be NULL). */
typedef void (*gw_config_warn_fn)(void *ctx, const char *key, const char *message);
iot_status gw_config_validate(const gw_config *cfg, gw_config_warn_fn warn, void *warn_ctx,
                              iot_err *err);

/* Writes the documented example (every key, its default, its meaning). */
iot_status gw_config_write_example(char *buf, size_t size, size_t *written);

/* For gateway/src/config_files.c, the module's part that opens files. */

/* What the daemon needs of a path the configuration names. */
enum {
    GW__NEED_READ = 1u << 0,    /* a regular file it can read */
    GW__NEED_PRIVATE = 1u << 1, /* a private key: group and others have no access */
    GW__NEED_DIR = 1u << 2,     /* the directory it is created in exists */
};

typedef struct gw__config_path {
    const char *key;  /* the option naming it */
    const char *path; /* in cfg */
    unsigned need;    /* GW__NEED_* */
} gw__config_path;

/* The paths of `cfg` with a need, in the option table's order; at most
 * `max` (GW_CONFIG_OPTIONS_MAX is always enough). Returns how many. */
size_t gw__config_paths(const gw_config *cfg, gw__config_path *out, size_t max);

/* "FILE:LINE: " for the line that set `key`, "FILE: " when it kept its
 * default, "" in a struct the parser did not make: the prefix of every
 * validation error. */
void gw__config_where(const gw_config *cfg, const char *key, char *buf, size_t size);

/* An error about `key`, located where the file set it (gw__config_where),
 * with status: what gw_config_validate and the file checks return. */
__attribute__((format(printf, 5, 6))) iot_status gw__config_invalid(const gw_config *cfg,
                                                                    iot_err *err, iot_status status,
                                                                    const char *key,
                                                                    const char *fmt, ...);

#endif
