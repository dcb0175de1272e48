/* iotgw: the telemetry gateway daemon.
 *
 *   iotgw --config FILE          run
 *   iotgw --check-config FILE    validate a configuration and exit
 *   iotgw --print-example-config print the documented example configuration
 *
 * Threads: N device workers (ingest.c), one outbox committer (outbox.c),
 * and this main thread, whose event loop runs the MQTT forwarder, the admin
 * listener, signal handling and identity reloads.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <mosquitto.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "app.h"
#include "config_files.h"
#include "forwarder.h"
#include "admission.h"
#include "ingest.h"
#include "iot/fsutil.h"
#include "iot/process.h"
#include "log.h"
#include "message.h"
#include "metrics.h"
#include "outbox_store.h"
#include "secevent.h"
#include "fleet.h"
#include "iot/incident.h"
#include "iot/registry.h"
#include "tls.h"
#include "updates.h"
#include "regshare.h"
#include "rollshare.h"
#include "shared.h"
#include "est.h"

#define SHUTDOWN_GRACE_MS 10000

/* Descriptors the gateway holds besides its device connections: stdio,
 * the outbox and the registry (SQLite with its WAL and shared memory),
 * the broker connection, the admin listener and its connections, the
 * signal and event-loop plumbing; and per worker its listening socket,
 * its event loop and its wake-up descriptor (docs/deploy.md). */
#define OVERDUE_COUNT_INTERVAL_S 60
#define FLEET_FLUSH_INTERVAL_S   5
#define FD_OVERHEAD              64
#define FD_OVERHEAD_PER_WORKER   4

typedef struct daemon_state {
    gw_config cfg;
    gw_app app;
    struct event_base *base;
    gw_ingest *ingest;
    gw_forwarder_store store;
    gw_forwarder *forwarder;
    /* the security event stream: its own outbox and MQTT connection */
    gw_outbox *sec_outbox;
    gw_forwarder_store sec_store;
    gw_forwarder *sec_forwarder;
    char sec_path[GW_PATH_MAX];
    time_t overdue_counted_at; /* count_overdue_reports */
    time_t fleet_flushed_at;   /* keep_fleet */
    char config_sha256[65];    /* of the configuration file read at start */
    gw_admin *admin;
    /* several gateways: the etcd client and the rollout progress on it */
    gw_shared *shared;         /* enrollment's */
    gw_shared *rollshare_etcd; /* the rollout sharing thread's own: a slow
                                * call of one never holds up the other */
    gw_rollshare *rollshare;
    gw_shared *regshare_etcd; /* the registry sharing thread's */
    gw_regshare *regshare;
    char gateway_name[128]; /* in what it shares: the MQTT client ID's rule */
    struct event *sigterm_ev;
    struct event *sigint_ev;
    struct event *sighup_ev;
    struct event *reload_ev;
} daemon_state;

static void usage(FILE *out)
{
    fprintf(out, "usage: iotgw --config FILE\n"
                 "       iotgw --check-config FILE\n"
                 "       iotgw --print-example-config\n"
                 "       iotgw --version\n\n"
                 "The telemetry gateway: HTTPS ingest with mutual TLS, a durable outbox, and\n"
                 "MQTT over TLS to the broker. See docs/gateway.md and docs/configuration.md.\n"
                 "Signals: SIGTERM/SIGINT stop gracefully; SIGHUP reloads the registry and CRL.\n"
                 "Exit status: 0 success, 1 the configuration is invalid or the gateway failed,\n"
                 "2 the command line is wrong.\n");
}

/* The versions of the libraries the binary runs with (not those it was
 * built against): what a vulnerability notice is checked against. */
static void print_version(void)
{
    int major = 0, minor = 0, revision = 0;
    mosquitto_lib_version(&major, &minor, &revision);
    printf("iotgw %s\n"
           "OpenSSL %s\n"
           "libevent %s\n"
           "libmosquitto %d.%d.%d\n"
           "SQLite %s\n"
           "cJSON %s\n",
           IOT_VERSION, OpenSSL_version(OPENSSL_VERSION_STRING), event_get_version(), major, minor,
           revision, sqlite3_libversion(), cJSON_Version());
}

/* The gateway holds the private keys of its TLS server and MQTT client
 * identities: a core dump would write them to disk, and a dumpable process
 * can be read through ptrace and /proc/PID/mem by its user. */
/* Keys are loaded into this process: no core file may hold them. */
static void disable_core_dumps(void)
{
    iot_err err = {0};
    if (iot_harden_process(&err) != IOT_OK)
        gw_log(GW_LOG_WARN, "gateway.core_dumps_enabled",
               "error=\"%s\" action=\"set LimitCORE=0 in the unit\"", err.msg);
}

/* glibc gives the free memory at the top of a thread's heap back to the
 * kernel (madvise) as soon as it exceeds 128 KiB, and takes it again at the
 * next allocation: draining an outbox, the forwarder's and committer's
 * batches made about 7,000 madvise calls a second, each a TLB shootdown on
 * every core running a thread of the gateway, for 13 % of its CPU per
 * message (docs/performance.md, Drain). Keeping up to 4 MiB per heap ends
 * that; allocations up to 1 MiB stay in the heaps as well. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

static int worker_count(const gw_config *c)
{
    if (c->workers > 0)
        return c->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 && n < 64 ? (int)n : 2;
}

/* Raises the soft limit on open descriptors to the hard limit (systemd's
 * LimitNOFILE=, or ulimit -Hn), and warns when even that is below what
 * max_connections needs: connections over the limit would fail in accept()
 * instead of being refused cleanly at max_connections. */
static void raise_fd_limit(const gw_config *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t before = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
        else
            gw_log(GW_LOG_WARN, "gateway.fd_limit_not_raised", "soft=%llu hard=%llu error=\"%s\"",
                   (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                   strerror(errno));
    }
    unsigned long long need = (unsigned long long)c->max_connections + FD_OVERHEAD +
                              (unsigned long long)worker_count(c) * FD_OVERHEAD_PER_WORKER;
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur < need)
        gw_log(GW_LOG_WARN, "gateway.fd_limit_low",
               "limit=%llu was=%llu needed=%llu max_connections=%d action=\"raise the hard limit "
               "(LimitNOFILE= in the unit, ulimit -n) to at least %llu, or lower "
               "max_connections\"",
               (unsigned long long)rl.rlim_cur, (unsigned long long)before, need,
               c->max_connections, need);
    else
        gw_log(
            GW_LOG_INFO, "gateway.fd_limit", "limit=%llu was=%llu needed=%llu max_connections=%d",
            (unsigned long long)rl.rlim_cur, (unsigned long long)before, need, c->max_connections);
}

/* systemd's readiness protocol (Type=notify); sd_notify does nothing when
 * NOTIFY_SOCKET is not set, as outside systemd. */
static void notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0)
        gw_log(GW_LOG_WARN, "gateway.notify_failed", "state=\"%.32s\" error=\"%s\"", state,
               strerror(-rc));
}

static void warn_insecure(void *ctx, const char *key, const char *message)
{
    (void)ctx;
    gw_log(GW_LOG_WARN, "config.insecure",
           "key=%s detail=\"%s\" DEVELOPMENT MODE: NOT FOR PRODUCTION", key, message);
}

static void limits_from_config(const gw_config *c, gw_payload_limits *l)
{
    gw_payload_limits_default(l);
    l->max_body = c->max_body;
    l->max_depth = c->max_depth;
    l->max_records = c->max_records;
    l->max_readings = c->max_readings;
    l->past_window_s = c->past_window_ms / 1000;
    l->future_window_s = c->future_window_ms / 1000;
}

static void identity_options_from_config(const gw_config *c, gw_admission_options *o)
{
    memset(o, 0, sizeof(*o));
    o->registry_path = c->registry;
    o->crl_path = c->crl_file;
    o->ca_path = c->client_ca;
    o->cert_expiry_warning_s = c->cert_expiry_warning_s;
}

static void est_options_from_config(const gw_config *c, gw_admission *identity, gw_est_options *o)
{
    memset(o, 0, sizeof(*o));
    o->ca_cert = c->est_ca_cert;
    o->ca_key = c->est_ca_key;
    o->root = c->client_ca;
    o->bootstrap_ca = c->est_bootstrap_ca;
    o->registry = c->registry;
    o->identity = identity;
    o->lifetime_s = c->est_cert_lifetime_s;
    o->grace_s = c->est_renewal_grace_s;
    o->require_approval = c->est_require_approval;
    o->retry_after_s = c->est_retry_after_s;
    o->max_failures = c->est_max_failures;
    o->failure_window_s = c->est_failure_window_s;
}

static void forwarder_options_from_config(const gw_config *c, gw_admission *identity,
                                          gw_forwarder_options *o)
{
    memset(o, 0, sizeof(*o));
    /* Validated with the configuration: a list that parses then parses now. */
    (void)gw_brokers_parse(c->mqtt_host, c->mqtt_port, o->brokers, &o->n_brokers);
    o->mqtt311 = strcmp(c->mqtt_protocol, "3.1.1") == 0;
    o->ca_path = c->mqtt_ca;
    o->cert_path = c->mqtt_cert;
    o->key_path = c->mqtt_key;
    o->crl_path = c->crl_file;
    o->client_id = c->mqtt_client_id;
    o->topic_prefix = c->topic_prefix;
    o->keepalive_ms = c->mqtt_keepalive_ms;
    o->inflight = c->mqtt_inflight;
    o->max_packet = c->mqtt_max_packet;
    o->reconnect_min_ms = c->reconnect_min_ms;
    o->reconnect_max_ms = c->reconnect_max_ms;
    o->identity = identity;
}

/* /healthz: ready means "accepting readings", so the outbox and the
 * broker are reported, not judged. */
static void admin_status(void *ctx, gw_admin_status *out)
{
    const daemon_state *d = ctx;
    out->draining = atomic_load(&d->app.draining);
    out->broker_connected = gw_forwarder_connected(d->forwarder);
    out->needs_broker = strcmp(d->cfg.acknowledge, "confirmed") == 0;
    out->outbox_depth = d->app.outbox != NULL ? gw_outbox_depth(d->app.outbox) : 0;
    out->outbox_max = d->cfg.outbox_max;
}

/* /fleet: the inventory as JSON, malloc'd. */
static char *admin_fleet(void *ctx)
{
    const daemon_state *d = ctx;
    return d->app.fleet != NULL ? gw_fleet_json(d->app.fleet, (int64_t)time(NULL)) : NULL;
}

static void ingest_options_from_config(const gw_config *c, gw_ingest_options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = c->device_listen;
    o->workers = worker_count(c);
    o->tls = c->device_tls;
    o->require_client_cert = c->require_client_cert;
    o->max_connections = c->max_connections;
    o->max_connections_per_address = c->max_connections_per_address;
    o->connection_rate_per_address = c->connection_rate_per_address;
    o->connection_burst_per_address = c->connection_burst_per_address;
    o->proxy_protocol_from = c->proxy_protocol_from;
    o->request_timeout_ms = c->request_timeout_ms;
    o->max_buffered_bytes = c->max_buffered_bytes;
    o->retry_after_s = c->retry_after_s;
    o->topic_prefix = c->topic_prefix;
    o->mqtt_max_packet = c->mqtt_max_packet;
}

static void admin_options_from_config(daemon_state *d, gw_admin_options *o)
{
    const gw_config *c = &d->cfg;
    memset(o, 0, sizeof(*o));
    o->listen = c->admin_listen;
    o->remote = c->admin_remote;
    o->token_file = c->admin_token_file;
    o->max_connections = c->admin_max_connections;
    o->status = admin_status;
    o->fleet = admin_fleet;
    o->status_ctx = d;
}

/* The trusted firmware signing keys, on SIGHUP: a retired key stops
 * verifying manifests without a restart. */
static void reload_update_keys(daemon_state *d)
{
    iot_err err = {0};
    if (d->app.updates != NULL && gw_updates_reload_keys(d->app.updates, &err) != IOT_OK)
        gw_log(GW_LOG_ERROR, "update.keys_reload_failed",
               "error=\"%s\" action=\"kept the trusted keys in use\"", err.msg);
}

static void reload_identity(daemon_state *d, const char *why)
{
    iot_err err = {0};
    if (gw_admission_reload(d->app.identity, &err) != IOT_OK)
        gw_log(GW_LOG_ERROR, "identity.reload_failed",
               "trigger=%s error=\"%s\" action=\"kept the previous registry and CRL\"", why,
               err.msg);
}

static void on_shutdown(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    daemon_state *d = arg;
    if (atomic_exchange(&d->app.draining, true))
        return;
    notify("STOPPING=1");
    gw_log(GW_LOG_INFO, "gateway.stopping", "signal=%d", (int)sig);
    event_base_loopbreak(d->base);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char state[64];
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
    notify(state);
    reload_identity(arg, "SIGHUP");
    reload_update_keys(arg);
    notify("READY=1");
}

/* iotgw_incident_reports_overdue: the CRA Art. 14 reports of the incident
 * register (iotctl incident, in the registry) past their deadline. Time
 * alone makes a report overdue, so it is counted again every minute, not
 * only when the registry changes. */
static void count_overdue_reports(daemon_state *d)
{
    time_t now = time(NULL);
    if (now - d->overdue_counted_at < OVERDUE_COUNT_INTERVAL_S)
        return;
    d->overdue_counted_at = now;
    iot_registry *reg = NULL;
    iot_err err = {0};
    int overdue = 0;
    if (iot_registry_open(d->cfg.registry, IOT_REGISTRY_READONLY, &reg, &err) == IOT_OK &&
        iot_incident_count_overdue(reg, (int64_t)now, &overdue, &err) == IOT_OK)
        gw_gauge_set(GW_G_INCIDENT_REPORTS_OVERDUE, overdue);
    else
        gw_log(GW_LOG_WARN, "incident.count_failed", "registry=%s error=\"%s\"", d->cfg.registry,
               err.msg);
    iot_registry_close(reg);
}

/* Writes the fleet inventory's changes and counts the silent devices,
 * every FLEET_FLUSH_INTERVAL_S. */
static void keep_fleet(daemon_state *d)
{
    time_t now = time(NULL);
    if (d->app.fleet == NULL || now - d->fleet_flushed_at < FLEET_FLUSH_INTERVAL_S)
        return;
    d->fleet_flushed_at = now;
    iot_err err = {0};
    if (gw_fleet_flush(d->app.fleet, &err) != IOT_OK)
        gw_log(GW_LOG_ERROR, "fleet.flush_failed",
               "error=\"%s\" action=\"kept in memory; written again with the next flush\"",
               err.msg);
    gw_gauge_set(GW_G_DEVICES_SILENT,
                 gw_fleet_silent(d->app.fleet, (int64_t)now, d->cfg.device_silent_after_s));
}

static void on_reload_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    daemon_state *d = arg;
    count_overdue_reports(d);
    keep_fleet(d);
    bool reloaded = false;
    iot_err err = {0};
    if (gw_admission_reload_if_changed(d->app.identity, &reloaded, &err) != IOT_OK)
        gw_log(GW_LOG_ERROR, "identity.reload_failed",
               "trigger=file_change error=\"%s\" action=\"kept the previous registry and CRL\"",
               err.msg);
}

/* The file an option names, or `name` in the directory of the outbox when
 * it names none (security_outbox, fleet_inventory). */
static iot_status path_beside_outbox(const gw_config *c, const char *key, const char *configured,
                                     const char *name, char *out, size_t size, iot_err *err)
{
    int n;
    if (configured[0] != '\0') {
        n = snprintf(out, size, "%s", configured);
    } else {
        const char *slash = strrchr(c->outbox, '/');
        int dir = slash != NULL ? (int)(slash - c->outbox) + 1 : 0;
        n = snprintf(out, size, "%.*s%s", dir, c->outbox, name);
    }
    if (n < 0 || (size_t)n >= size)
        return iot_err_set(err, IOT_EINVAL, "%s: the path is too long", key);
    return IOT_OK;
}

/* Several gateways (shared_state): the etcd client, and the thread that
 * shares rollout progress when this gateway serves updates. */
static iot_status open_shared(daemon_state *d, iot_err *err)
{
    const gw_config *c = &d->cfg;
    if (c->shared_state[0] == '\0')
        return IOT_OK;
    if (c->mqtt_client_id[0] != '\0') {
        snprintf(d->gateway_name, sizeof(d->gateway_name), "%s", c->mqtt_client_id);
    } else {
        char host[64] = "localhost";
        (void)gethostname(host, sizeof(host) - 1);
        snprintf(d->gateway_name, sizeof(d->gateway_name), "iotgw-%s", host);
    }
    gw_shared_options so = {.members = c->shared_state,
                            .ca = c->shared_state_ca,
                            .cert = c->shared_state_cert,
                            .key = c->shared_state_key};
    iot_status st = gw_shared_open(&so, &d->shared, err);
    if (st != IOT_OK || d->app.updates == NULL)
        return st;
    st = gw_shared_open(&so, &d->rollshare_etcd, err);
    if (st != IOT_OK)
        return st;
    gw_rollshare_options ro = {.rollouts = c->rollouts,
                               .shared = d->rollshare_etcd,
                               .gateway = d->gateway_name,
                               .poll_ms = (int)c->shared_state_poll_ms};
    st = gw_rollshare_start(&ro, &d->rollshare, err);
    if (st == IOT_OK)
        gw_updates_share(d->app.updates, d->rollshare);
    return st;
}

/* Several gateways with enrollment on: the thread that takes the
 * certificates and revocations the others made into this registry. */
static iot_status start_regshare(daemon_state *d, iot_err *err)
{
    const gw_config *c = &d->cfg;
    if (d->shared == NULL)
        return IOT_OK;
    gw_shared_options so = {.members = c->shared_state,
                            .ca = c->shared_state_ca,
                            .cert = c->shared_state_cert,
                            .key = c->shared_state_key};
    iot_status st = gw_shared_open(&so, &d->regshare_etcd, err);
    if (st != IOT_OK)
        return st;
    gw_regshare_options ro = {.registry = c->registry,
                              .shared = d->regshare_etcd,
                              .identity = d->app.identity,
                              .issuers = gw_est_issuers(d->app.est),
                              .gateway = d->gateway_name,
                              .poll_ms = (int)c->shared_state_poll_ms};
    return gw_regshare_start(&ro, &d->regshare, err);
}

/* The registry, the outbox and the per-address rate limit. */
static iot_status open_stores(daemon_state *d, iot_err *err)
{
    gw_app *app = &d->app;
    gw_admission_options iopt;
    identity_options_from_config(&d->cfg, &iopt);
    iot_status st = gw_admission_open(&iopt, &app->identity, err);
    if (st != IOT_OK)
        goto out;
    st = gw_outbox_open(d->cfg.outbox, d->cfg.outbox_max, &app->outbox, err);
    if (st != IOT_OK)
        goto out;
    gw_outbox_set_limits(app->outbox, (int64_t)d->cfg.outbox_max_bytes, d->cfg.outbox_device_share);
    if (strcmp(d->cfg.acknowledge, "confirmed") == 0)
        gw_outbox_set_confirm(app->outbox, d->cfg.confirm_timeout_ms);
    gw_gauge_set(GW_G_OUTBOX_MAX, d->cfg.outbox_max);
    char fleet_path[GW_PATH_MAX];
    st = path_beside_outbox(&d->cfg, "fleet_inventory", d->cfg.fleet_inventory, "fleet.db",
                            fleet_path, sizeof(fleet_path), err);
    if (st == IOT_OK)
        st = gw_fleet_open(fleet_path, &app->fleet, err);
    if (st != IOT_OK)
        goto out;
    app->ratelimit = gw_ratelimit_new(d->cfg.rate_limit, d->cfg.rate_burst);
    if (app->ratelimit == NULL) {
        st = iot_err_set(err, IOT_ENOMEM, "out of memory");
        goto out;
    }
    if (d->cfg.rollouts[0] != '\0')
        st = gw_updates_open(d->cfg.rollouts, d->cfg.firmware_dir, &app->updates, err);
    if (st == IOT_OK)
        st = open_shared(d, err);
    if (st != IOT_OK || d->cfg.est_ca_cert[0] == '\0')
        goto out;
    gw_est_options eopt;
    est_options_from_config(&d->cfg, app->identity, &eopt);
    eopt.shared = d->shared;
    eopt.gateway = d->gateway_name;
    st = gw_est_open(&eopt, &app->est, err);
    if (st == IOT_OK)
        st = start_regshare(d, err);
out:
    return st;
}

/* The TLS context devices connect to, when the device listener uses TLS. */
static iot_status open_device_tls(daemon_state *d, iot_err *err)
{
    gw_app *app = &d->app;
    if (!d->cfg.device_tls)
        return IOT_OK;
    gw_tls_options topt = {.cert_path = d->cfg.tls_cert,
                           .key_path = d->cfg.tls_key,
                           .client_ca_path = d->cfg.client_ca,
                           .require_client_cert = d->cfg.require_client_cert,
                           .max_connections_per_device = d->cfg.max_connections_per_device,
                           .session_lifetime_s = d->cfg.tls_session_lifetime_s};
    if (app->est != NULL) {
        topt.enrollment = true;
        topt.est_issuer = gw_est_issuer(app->est);
        topt.est_issuers = gw_est_issuers(app->est);
        topt.bootstrap_ca = gw_est_bootstrap_ca(app->est);
    }
    iot_status st = gw_tls_server_ctx(&topt, app->identity, &app->device_tls, err);
    if (st != IOT_OK)
        return st;
    /* iotgw_certificate_expiry_timestamp_seconds{certificate="server"} */
    gw_cert_expiry_set(GW_CERT_SERVER, gw_asn1_time_unix(X509_get0_notAfter(
                                           SSL_CTX_get0_certificate(app->device_tls))));
    return IOT_OK;
}

/* The outbox's reader, the forwarder it wakes, and the outbox's committer. */
static iot_status start_forwarding(daemon_state *d, iot_err *err)
{
    gw_app *app = &d->app;
    gw_forwarder_options fopt;
    forwarder_options_from_config(&d->cfg, app->identity, &fopt);
    iot_status st = gw_outbox_store_open(app->outbox, d->cfg.outbox, &d->store, err);
    if (st != IOT_OK)
        goto out;
    st = gw_forwarder_start(&fopt, &d->store, d->base, &d->forwarder, err);
    if (st != IOT_OK)
        goto out;
    st = gw_outbox_start(app->outbox, gw_forwarder_notify, d->forwarder, err);
out:
    return st;
}

/* The security event stream (secevent.h): its outbox, its forwarder on a
 * second MQTT connection, and the log tap that feeds them. */
static iot_status start_security_events(daemon_state *d, iot_err *err)
{
    static const gw_forwarder_metrics sec_metrics = {
        .connected = GW_G_SECEV_CONNECTED,
        .inflight = -1,
        .connects = -1,
        .disconnects = -1,
        .publish_refused = GW_M_SECEV_PUBLISH_REFUSED,
        .cert_refused = -1,
    };
    const gw_config *c = &d->cfg;
    if (!c->security_events)
        return IOT_OK;
    iot_status st = path_beside_outbox(c, "security_outbox", c->security_outbox,
                                       "security-events.db", d->sec_path, sizeof(d->sec_path), err);
    if (st == IOT_OK)
        st = gw_outbox_open(d->sec_path, c->security_outbox_max, &d->sec_outbox, err);
    if (st != IOT_OK)
        return st;
    gw_outbox_set_metrics(d->sec_outbox, &gw_secev_outbox_metrics);
    gw_forwarder_options fopt;
    forwarder_options_from_config(c, d->app.identity, &fopt);
    fopt.stream = GW_STREAM_SECURITY;
    fopt.metrics = &sec_metrics;
    st = gw_outbox_store_open(d->sec_outbox, d->sec_path, &d->sec_store, err);
    if (st == IOT_OK)
        st = gw_forwarder_start(&fopt, &d->sec_store, d->base, &d->sec_forwarder, err);
    if (st == IOT_OK)
        st = gw_outbox_start(d->sec_outbox, gw_forwarder_notify, d->sec_forwarder, err);
    if (st != IOT_OK)
        return st;
    gw_secev_options sopt = {
        .outbox = d->sec_outbox, .window_ms = c->security_event_window_ms, .sources = 4096};
    return gw_secev_start(&sopt, err);
}

static iot_status start_admin(daemon_state *d, iot_err *err)
{
    if (!d->cfg.admin_listen[0])
        return IOT_OK;
    gw_admin_options aopt;
    admin_options_from_config(d, &aopt);
    return gw_admin_start(&aopt, d->base, &d->admin, err);
}

/* SIGTERM and SIGINT drain and stop, SIGHUP reloads the registry and CRL,
 * and a timer reloads them when their files change. */
static iot_status watch_signals(daemon_state *d, iot_err *err)
{
    d->sigterm_ev = evsignal_new(d->base, SIGTERM, on_shutdown, d);
    d->sigint_ev = evsignal_new(d->base, SIGINT, on_shutdown, d);
    d->sighup_ev = evsignal_new(d->base, SIGHUP, on_sighup, d);
    d->reload_ev = event_new(d->base, -1, EV_PERSIST, on_reload_tick, d);
    if (!d->sigterm_ev || !d->sigint_ev || !d->sighup_ev || !d->reload_ev)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    event_add(d->sigterm_ev, NULL);
    event_add(d->sigint_ev, NULL);
    event_add(d->sighup_ev, NULL);
    const gw_config *c = &d->cfg;
    if (c->reload_interval_ms > 0) {
        struct timeval tv = {(time_t)(c->reload_interval_ms / 1000),
                             (suseconds_t)((c->reload_interval_ms % 1000) * 1000)};
        event_add(d->reload_ev, &tv);
    }
    return IOT_OK;
}

static iot_status start(daemon_state *d, iot_err *err)
{
    gw_app *app = &d->app;
    limits_from_config(&d->cfg, &app->limits);
    ingest_options_from_config(&d->cfg, &app->opt);
    iot_status st = open_stores(d, err);
    if (st != IOT_OK)
        goto out;
    st = open_device_tls(d, err);
    if (st != IOT_OK)
        goto out;
    st = start_forwarding(d, err);
    if (st != IOT_OK)
        goto out;
    st = start_security_events(d, err);
    if (st != IOT_OK)
        goto out;
    count_overdue_reports(d);
    st = gw_ingest_start(app, &d->ingest, err);
    if (st != IOT_OK)
        goto out;
    st = start_admin(d, err);
    if (st != IOT_OK)
        goto out;
    st = watch_signals(d, err);
    if (st != IOT_OK)
        goto out;
    gw_log(GW_LOG_INFO, "gateway.started",
           "version=%s device_listen=%s admin_listen=%s workers=%d outbox=%s outbox_depth=%lld "
           "brokers=\"%s\" mqtt_port=%d acknowledge=%s shared_state=\"%s\" gateway_name=%s "
           "config_sha256=%s",
           IOT_VERSION, d->cfg.device_listen, d->cfg.admin_listen[0] ? d->cfg.admin_listen : "-",
           app->opt.workers, d->cfg.outbox, (long long)gw_outbox_depth(app->outbox),
           d->cfg.mqtt_host, d->cfg.mqtt_port, d->cfg.acknowledge,
           d->cfg.shared_state[0] ? d->cfg.shared_state : "-",
           d->gateway_name[0] ? d->gateway_name : "-", d->config_sha256);
out:
    return st;
}

static void stop(daemon_state *d)
{
    gw_app *app = &d->app;
    atomic_store(&app->draining, true);
    /* Order matters: stop taking requests and answer those in flight, then
     * let the outbox commit everything queued, and only then free workers
     * (the outbox hands finished jobs back to them). */
    gw_ingest_stop(d->ingest, SHUTDOWN_GRACE_MS);
    gw_outbox_close(app->outbox);
    app->outbox = NULL;
    gw_regshare_stop(d->regshare); /* borrows the enrollment's issuers */
    d->regshare = NULL;
    gw_shared_close(d->regshare_etcd);
    d->regshare_etcd = NULL;
    gw_est_close(app->est); /* hands back what it still holds to the workers */
    app->est = NULL;
    gw_ingest_free(d->ingest);
    gw_rollshare_stop(d->rollshare); /* the workers that hand it reports are gone */
    d->rollshare = NULL;
    gw_shared_close(d->rollshare_etcd);
    d->rollshare_etcd = NULL;
    gw_shared_close(d->shared);
    d->shared = NULL;
    gw_admin_stop(d->admin);
    gw_fleet_close(app->fleet); /* writes what changed since the last flush */
    app->fleet = NULL;
    /* Everything that reports security events has stopped: the stream's
     * last summaries go to its outbox, which commits them before closing. */
    gw_secev_stop();
    if (d->sec_outbox != NULL)
        gw_outbox_close(d->sec_outbox);
    d->sec_outbox = NULL;
    gw_forwarder_stop(d->sec_forwarder);
    gw_outbox_store_close(&d->sec_store);
    gw_forwarder_stop(d->forwarder);
    gw_outbox_store_close(&d->store);
    struct event *evs[] = {d->sigterm_ev, d->sigint_ev, d->sighup_ev, d->reload_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i])
            event_free(evs[i]);
    gw_admission_close(app->identity);
    gw_updates_close(app->updates);
    SSL_CTX_free(app->device_tls);
    gw_ratelimit_free(app->ratelimit);
}

/* The SHA-256 of the configuration file, for the gateway.started event:
 * a changed configuration is visible in the security event stream. */
static void config_digest(const char *path, char out[65])
{
    char *text = NULL;
    size_t len = 0;
    unsigned char md[32];
    iot_err err = {0};
    snprintf(out, 65, "-");
    if (iot_file_read(path, 1024 * 1024, &text, &len, &err) == IOT_OK &&
        EVP_Digest(text, len, md, NULL, EVP_sha256(), NULL) == 1)
        for (size_t i = 0; i < sizeof(md); i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(text);
}

static int run(const char *config_path)
{
    daemon_state d;
    memset(&d, 0, sizeof(d));
    iot_err err = {0};
    gw_config_defaults(&d.cfg);
    if (gw_config_load(config_path, &d.cfg, warn_insecure, NULL, &err) != IOT_OK) {
        fprintf(stderr, "iotgw: error: %s\n", err.msg);
        return 1; /* as --check-config: 2 is for a wrong command line */
    }
    config_digest(config_path, d.config_sha256);
    int level = gw_log_level_parse(d.cfg.log_level);
    gw_log_set_level(level < 0 ? GW_LOG_INFO : (gw_log_level)level);
    raise_fd_limit(&d.cfg);
    char why[512];
    if (gw_message_check_limits(&d.cfg, why, sizeof(why)) != 0)
        gw_log(GW_LOG_WARN, "config.limits", "detail=\"%s\"", why);
    d.base = event_base_new();
    if (d.base == NULL) {
        fprintf(stderr, "iotgw: error: cannot create the event loop\n");
        return 1;
    }
    int rc = 0;
    if (start(&d, &err) != IOT_OK) {
        gw_log(GW_LOG_ERROR, "gateway.start_failed", "error=\"%s\"", err.msg);
        fprintf(stderr, "iotgw: error: %s\n", err.msg);
        rc = 1;
    } else {
        /* The listeners are open: systemd may now start what depends on
         * the gateway. */
        notify("READY=1");
        event_base_dispatch(d.base);
    }
    stop(&d);
    event_base_free(d.base);
    if (rc == 0)
        gw_log(GW_LOG_INFO, "gateway.stopped", NULL);
    return rc;
}

static int check_config(const char *path)
{
    gw_config cfg;
    iot_err err = {0};
    gw_config_defaults(&cfg);
    if (gw_config_load(path, &cfg, warn_insecure, NULL, &err) != IOT_OK) {
        fprintf(stderr, "iotgw: error: %s\n", err.msg);
        return 1;
    }
    char why[512];
    if (gw_message_check_limits(&cfg, why, sizeof(why)) != 0)
        fprintf(stderr, "iotgw: warning: %s: %s\n", path, why);
    printf("iotgw: configuration %s is valid\n", path);
    return 0;
}

static int print_example(void)
{
    size_t size = 64 * 1024, n = 0;
    char *buf = malloc(size);
    if (buf == NULL || gw_config_write_example(buf, size, &n) != IOT_OK) {
        free(buf);
        fprintf(stderr, "iotgw: error: cannot render the example configuration\n");
        return 1;
    }
    fwrite(buf, 1, n, stdout);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", required_argument, NULL, 'k'},
                                         {"print-example-config", no_argument, NULL, 'e'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *config = NULL;
    /* Security events logged before the stream starts reach it then. */
    gw_secev_hold();
    /* First: --check-config reads the key files too. */
    disable_core_dumps();
    tune_malloc();
    opterr = 0;
    for (int c = getopt_long(argc, argv, "c:h", opts, NULL); c != -1;
         c = getopt_long(argc, argv, "c:h", opts, NULL)) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            return check_config(optarg);
        case 'e':
            return print_example();
        case 'v':
            print_version();
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "iotgw: unknown option or missing value: '%s'\n\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (config == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "iotgw: error: libevent has no thread support\n");
        return 1;
    }
    mosquitto_lib_init();
    int rc = run(config);
    mosquitto_lib_cleanup();
    return rc;
}
