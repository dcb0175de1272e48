/* iotconsole: the fleet console daemon (docs/console.md).
 *
 *   iotconsole --config FILE [--check-config]
 *
 * Reads its configuration (console/lib/config.h), refuses key files that
 * others can read, opens its state, starts the HTTPS listener, the
 * gateways' inventory poll and the MQTT client, and runs until SIGTERM or
 * SIGINT. Logs are JSON lines on stderr. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "app.h"
#include "config.h"
#include "fleet.h"
#include "iot/fsutil.h"
#include "live.h"
#include "server.h"
#include "store.h"

#define FILES_MAX 32
/* Login attempts over all addresses allowed at once, before login_rate_total applies. */
#define LOGIN_TOTAL_BURST 10

int64_t ic_now(void)
{
    return (int64_t)time(NULL);
}

const char *ic_refusal_name(ic_refusal r)
{
    static const char *const names[IC_REF_COUNT] = {
        [IC_REF_UNAUTHENTICATED] = "unauthenticated",
        [IC_REF_CSRF] = "csrf",
        [IC_REF_LOGIN_FAILED] = "login_failed",
        [IC_REF_LOGIN_RATE] = "login_rate_limited",
        [IC_REF_BAD_REQUEST] = "bad_request",
        [IC_REF_NOT_FOUND] = "not_found",
        [IC_REF_METHOD] = "method_not_allowed",
        [IC_REF_CONFLICT] = "conflict",
        [IC_REF_HTTP] = "http_protocol",
        [IC_REF_OVERLOAD] = "overload",
        [IC_REF_UNAVAILABLE] = "unavailable",
    };
    return r < IC_REF_COUNT ? names[r] : "?";
}

void ic_log(const char *level, const char *event, ...)
{
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddStringToObject(o, "event", event);
    va_list ap;
    va_start(ap, event);
    for (const char *k = va_arg(ap, const char *); k != NULL; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        cJSON_AddStringToObject(o, k, v != NULL ? v : "");
    }
    va_end(ap);
    char *text = cJSON_PrintUnformatted(o);
    if (text != NULL)
        fprintf(stderr, "%s\n", text);
    free(text);
    cJSON_Delete(o);
}

static iot_status load_config(const char *path, ic_config *cfg, iot_err *err)
{
    char *text = NULL;
    size_t len = 0;
    ic_config_defaults(cfg);
    iot_status st = iot_file_read(path, IC_CONFIG_FILE_MAX, &text, &len, err);
    if (st == IOT_OK)
        st = ic_config_parse(text, len, path, cfg, err);
    free(text);
    if (st == IOT_OK)
        st = ic_config_validate(cfg, err);
    ic_config_path files[FILES_MAX];
    size_t n = st == IOT_OK ? ic_config_files(cfg, files, FILES_MAX) : 0;
    for (size_t i = 0; i < n && st == IOT_OK; i++) {
        struct stat sb;
        if (stat(files[i].path, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = iot_err_set(err, IOT_ENOENT, "%s: %s is not a readable file", files[i].key,
                             files[i].path);
        else if (files[i].private_key)
            st = iot_key_mode_check(files[i].path, err);
    }
    return st;
}

static iot_status make_tls(ic_app *app, iot_err *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return iot_err_set(err, IOT_ECRYPTO, "no TLS context");
    app->ssl = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, app->cfg.tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, app->cfg.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        return iot_err_set(err, IOT_ECRYPTO, "tls_cert/tls_key: %s",
                           e != 0 ? ERR_reason_error_string(e) : "refused");
    }
    return IOT_OK;
}

static void on_signal(evutil_socket_t sig, short what, void *ctx)
{
    ic_app *app = ctx;
    (void)sig;
    (void)what;
    event_base_loopbreak(app->base);
}

static iot_status start(ic_app *app, struct evconnlistener **listener, iot_err *err)
{
    size_t n = (size_t)app->cfg.max_sessions;
    ic_session *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    ic_sessions_init(&app->sessions, slots, n, app->cfg.session_idle_ms / 1000,
                     app->cfg.session_max_ms / 1000);
    double per_s = app->cfg.login_rate / 60.0;
    app->login_by_address = gw_ratelimit_new(per_s, app->cfg.login_burst);
    app->login_by_operator = gw_ratelimit_new(per_s, app->cfg.login_burst);
    app->login_total = gw_ratelimit_new(app->cfg.login_rate_total / 60.0, LOGIN_TOTAL_BURST);
    if (app->login_by_address == NULL || app->login_by_operator == NULL || app->login_total == NULL)
        return iot_err_set(err, IOT_ENOMEM, "out of memory");
    iot_status st = ic_store_open(app->cfg.state, &app->store, err);
    if (st == IOT_OK)
        st = make_tls(app, err);
    if (st == IOT_OK)
        st = ic_fleet_start(app, &app->fleet, err);
    if (st == IOT_OK)
        st = ic_live_start(app, &app->live, err);
    if (st != IOT_OK)
        return st;
    *listener = ic_server_listen(app);
    if (*listener == NULL)
        return iot_err_set(err, IOT_EIO, "cannot listen on %s", app->cfg.listen);
    return IOT_OK;
}

static void stop(ic_app *app, struct evconnlistener *listener)
{
    if (listener != NULL)
        evconnlistener_free(listener);
    ic_stream_close_all(app);
    ic_live_stop(app->live);
    ic_fleet_stop(app->fleet);
    ic_store_close(app->store);
    SSL_CTX_free(app->ssl);
    gw_ratelimit_free(app->login_by_address);
    gw_ratelimit_free(app->login_by_operator);
    gw_ratelimit_free(app->login_total);
    free(app->sessions.slots);
    if (app->base != NULL)
        event_base_free(app->base);
}

static int usage(void)
{
    fputs("usage: iotconsole --config FILE [--check-config]\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[++i];
        else if (strcmp(argv[i], "--check-config") == 0)
            check_only = true;
        else
            return usage();
    }
    if (config == NULL)
        return usage();
    /* The state file, its journal and anything else created are private. */
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    static ic_app app;
    iot_err err = {0};
    int rc = 1;
    struct evconnlistener *listener = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    iot_status st = load_config(config, &app.cfg, &err);
    if (st != IOT_OK || check_only)
        goto out;
    evthread_use_pthreads();
    app.base = event_base_new();
    app.started = ic_now();
    if (app.base == NULL) {
        st = iot_err_set(&err, IOT_ENOMEM, "no event loop");
        goto out;
    }
    st = start(&app, &listener, &err);
    if (st != IOT_OK)
        goto out;
    sigterm = evsignal_new(app.base, SIGTERM, on_signal, &app);
    sigint = evsignal_new(app.base, SIGINT, on_signal, &app);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    ic_log("info", "console.started", "listen", app.cfg.listen, "origin", app.cfg.origin, "version",
           IOT_VERSION, (char *)NULL);
    event_base_dispatch(app.base);
    ic_log("info", "console.stopped", (char *)NULL);
out:
    if (st != IOT_OK)
        ic_log("error", "console.start_failed", "detail", err.msg, (char *)NULL);
    else
        rc = 0;
    if (sigterm != NULL)
        event_free(sigterm);
    if (sigint != NULL)
        event_free(sigint);
    stop(&app, listener);
    return rc;
}
