/* See iotd_esp/est.h. The request is the streaming sequence of https.c
 * (open, write, fetch_headers, read) on a client made for it alone, and
 * Retry-After is taken from the HTTP_EVENT_ON_HEADER events the same way,
 * because esp_http_client_get_header() returns request headers. */
#include "iotd_esp/est.h"

#include <limits.h>
#include <string.h>

#include "esp_http_client.h"
#include "esp_log.h"
#include "iotd/protocol.h"

#include "pem.h"
#include "text.h"

static const char *TAG = "iotd";

/* The buffers of iotd_esp_est are the sizes pem.h asks for. */
typedef char
    est_chain_fits[sizeof(((iotd_esp_est *)0)->cert_pem) == IOTD_ESP_PEM_CHAIN_MAX ? 1 : -1];
typedef char est_key_fits[sizeof(((iotd_esp_est *)0)->key_pem) == IOTD_ESP_PEM_KEY_MAX ? 1 : -1];
typedef char est_auth_fits[sizeof(((iotd_esp_est *)0)->auth) == IOTD_ESP_AUTH_MAX ? 1 : -1];

/* One EST request: what goes out and as whom. */
typedef struct est_call {
    esp_http_client_method_t method;
    const char *path;
    const char *body; /* NULL for a GET */
    size_t body_len;
    const char *cert_pem; /* client certificate; NULL: none */
    const char *key_pem;
    const char *auth; /* Authorization value; NULL: none */
    char *resp;
    size_t resp_cap;
} est_call;

static esp_err_t on_event(esp_http_client_event_t *evt)
{
    iotd_esp_est *est = evt->user_data;

    if (evt->event_id != HTTP_EVENT_ON_HEADER || est == NULL || evt->header_key == NULL ||
        evt->header_value == NULL)
        return ESP_OK;
    if (iotd_esp__ieq(evt->header_key, "Retry-After"))
        iotd_esp__keep_header(evt->header_value, est->retry_after, sizeof(est->retry_after),
                              &est->has_retry_after, &est->retry_after_bad);
    return ESP_OK;
}

static void take_retry_after(const iotd_esp_est *est, iotd_http_result *result)
{
    int64_t now = 0;

    if (!est->has_retry_after)
        return;
    if (est->retry_after_bad) {
        ESP_LOGW(TAG, "est.retry_after_ignored: the Retry-After value is too long or repeated");
        return;
    }
    bool known = iotd_esp_wall_time(NULL, &now);
    result->has_retry_after = iotd_protocol_retry_after(est->retry_after, strlen(est->retry_after),
                                                        known, now, &result->retry_after_s);
    if (!result->has_retry_after)
        ESP_LOGW(TAG, "est.retry_after_ignored: a Retry-After value that is not delta-seconds "
                      "or an HTTP-date the clock can convert");
}

/* Up to cap body bytes; a longer answer is cut there (the caller's parser
 * refuses a cut PKCS#7). */
static size_t read_capped(esp_http_client_handle_t c, char *buf, size_t cap)
{
    size_t n = 0;

    while (n < cap) {
        size_t want = cap - n > INT_MAX ? INT_MAX : cap - n;
        int r = esp_http_client_read(c, buf + n, (int)want);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    return n;
}

static esp_err_t set_headers(esp_http_client_handle_t c, const est_call *call)
{
    esp_err_t err = ESP_OK;

    if (call->body != NULL)
        err = esp_http_client_set_header(c, "Content-Type", IOTD_EST_CSR_TYPE);
    if (err == ESP_OK && call->auth != NULL)
        err = esp_http_client_set_header(c, "Authorization", call->auth);
    return err;
}

/* Sends the request and reads the status line, headers and body.
 * IOTD_ENET when no complete response head came back. */
static iotd_status send_and_read(esp_http_client_handle_t c, const est_call *call,
                                 iotd_http_result *result)
{
    int len = call->body != NULL ? (int)call->body_len : 0;
    const char *body = call->body != NULL ? call->body : "";

    if (set_headers(c, call) != ESP_OK || esp_http_client_open(c, len) != ESP_OK) {
        ESP_LOGW(TAG, "est.connect_failed: %s", call->path);
        return IOTD_ENET;
    }
    if (esp_http_client_write(c, body, len) != len || esp_http_client_fetch_headers(c) < 0) {
        ESP_LOGW(TAG, "est.no_response: %s", call->path);
        return IOTD_ENET;
    }
    result->body_len = read_capped(c, call->resp, call->resp_cap);
    result->status = esp_http_client_get_status_code(c);
    if (result->status < 100 || result->status > 599) {
        ESP_LOGW(TAG, "est.bad_status: %d", result->status);
        return IOTD_ENET;
    }
    return IOTD_OK;
}

static iotd_status perform(iotd_esp_est *est, const est_call *call, iotd_http_result *result)
{
    iotd_status st = IOTD_ENET;
    esp_http_client_handle_t c = NULL;

    memset(result, 0, sizeof(*result));
    est->has_retry_after = false;
    est->retry_after_bad = false;
    if (call->body_len > (size_t)INT_MAX ||
        !iotd_esp__join(est->url, sizeof(est->url), est->cfg.gateway_url, call->path)) {
        st = IOTD_EINVAL;
        goto out;
    }
    const esp_http_client_config_t hc = {
        .url = est->url,
        .cert_pem = est->cfg.ca_pem,
        .client_cert_pem = call->cert_pem,
        .client_key_pem = call->key_pem,
        .user_agent = "iotd-esp32",
        .method = call->method,
        .timeout_ms = est->cfg.timeout_ms,
        .disable_auto_redirect = true,
        .event_handler = on_event,
        .transport_type = HTTP_TRANSPORT_OVER_SSL,
        .user_data = est,
    };
    c = esp_http_client_init(&hc);
    if (c == NULL) {
        ESP_LOGE(TAG, "est.client_failed: the HTTP client could not be created");
        goto out;
    }
    st = send_and_read(c, call, result);
    if (st == IOTD_OK)
        take_retry_after(est, result);
out:
    if (c != NULL)
        (void)esp_http_client_cleanup(c);
    if (st != IOTD_OK)
        result->body_len = 0;
    /* The key's PEM and the token's header live only for the request. */
    memset(est->key_pem, 0, sizeof(est->key_pem));
    memset(est->auth, 0, sizeof(est->auth));
    return st;
}

/* The key and chain of a slot, as PEM in est's buffers. IOTD_ENOENT when
 * the slot has no certificate or key. */
static iotd_status slot_identity(iotd_esp_est *est, iotd_cred_slot slot, est_call *call)
{
    iotd_status st = iotd_esp_cred_load_pem(est->cred, slot, est->cert_pem, sizeof(est->cert_pem),
                                            est->key_pem, sizeof(est->key_pem));

    if (st != IOTD_OK) {
        ESP_LOGW(TAG, "est.no_identity: the %s slot's key and certificate are not usable",
                 slot == IOTD_CRED_ACTIVE ? "active" : "candidate");
        return IOTD_ENOENT;
    }
    call->cert_pem = est->cert_pem;
    call->key_pem = est->key_pem;
    return IOTD_OK;
}

/* Who op's request is made as. IOTD_ENOENT when this device has no such
 * credential. */
static iotd_status identity_for(iotd_esp_est *est, iotd_est_op op, est_call *call)
{
    switch (op) {
    case IOTD_EST_CACERTS:
        return IOTD_OK;
    case IOTD_EST_ENROLL_TOKEN:
        if (est->cfg.token == NULL ||
            !iotd_esp__basic_auth(est->auth, sizeof(est->auth), est->cfg.device_id, est->cfg.token))
            return IOTD_ENOENT;
        call->auth = est->auth;
        return IOTD_OK;
    case IOTD_EST_ENROLL_BOOTSTRAP:
        if (est->cfg.bootstrap_cert_pem == NULL)
            return IOTD_ENOENT;
        call->cert_pem = est->cfg.bootstrap_cert_pem;
        call->key_pem = est->cfg.bootstrap_key_pem;
        return IOTD_OK;
    case IOTD_EST_REENROLL:
        return slot_identity(est, IOTD_CRED_ACTIVE, call);
    }
    return IOTD_ENOENT;
}

static const char *op_path(iotd_est_op op)
{
    if (op == IOTD_EST_CACERTS)
        return IOTD_EST_CACERTS_PATH;
    return op == IOTD_EST_REENROLL ? IOTD_EST_REENROLL_PATH : IOTD_EST_ENROLL_PATH;
}

static iotd_status est_request(void *ctx, iotd_est_op op, const char *body, size_t body_len,
                               char *resp, size_t resp_cap, iotd_http_result *result)
{
    iotd_esp_est *est = ((iotd_esp_cred *)ctx)->transport;
    est_call call = {
        .method = op == IOTD_EST_CACERTS ? HTTP_METHOD_GET : HTTP_METHOD_POST,
        .path = op_path(op),
        .body = op == IOTD_EST_CACERTS ? NULL : body,
        .body_len = op == IOTD_EST_CACERTS ? 0 : body_len,
        .resp = resp,
        .resp_cap = resp_cap,
    };

    memset(result, 0, sizeof(*result));
    iotd_status st = identity_for(est, op, &call);
    return st == IOTD_OK ? perform(est, &call, result) : st;
}

static iotd_status probe(void *ctx, iotd_http_result *result)
{
    iotd_esp_est *est = ((iotd_esp_cred *)ctx)->transport;
    char sink[128];
    est_call call = {
        .method = HTTP_METHOD_GET,
        .path = IOTD_EST_PROBE_PATH,
        .resp = sink,
        .resp_cap = sizeof(sink),
    };

    memset(result, 0, sizeof(*result));
    /* No candidate to try is no answer: the machine backs off. */
    if (slot_identity(est, IOTD_CRED_CANDIDATE, &call) != IOTD_OK)
        return IOTD_ENET;
    iotd_status st = perform(est, &call, result);
    result->body_len = 0;
    return st;
}

iotd_status iotd_esp_est_init(iotd_esp_est *est, const iotd_esp_est_config *cfg,
                              iotd_esp_cred *cred, iotd_cred_port *port)
{
    memset(est, 0, sizeof(*est));
    if (cfg->gateway_url == NULL || strncmp(cfg->gateway_url, "https://", 8) != 0 ||
        strlen(cfg->gateway_url) >= IOTD_ESP_URL_MAX / 2 || cfg->ca_pem == NULL ||
        cfg->ca_pem[0] == '\0' || cfg->device_id == NULL || cfg->timeout_ms <= 0 ||
        (cfg->bootstrap_cert_pem != NULL && cfg->bootstrap_key_pem == NULL)) {
        ESP_LOGE(TAG, "est.config_invalid: an https:// gateway URL, the CA and the device ID "
                      "are needed, and a bootstrap certificate needs its key");
        return IOTD_EINVAL;
    }
    est->cfg = *cfg;
    est->cred = cred;
    cred->transport = est;
    port->est_request = est_request;
    port->probe = probe;
    return IOTD_OK;
}

void iotd_esp_est_forget_token(iotd_esp_est *est)
{
    est->cfg.token = NULL;
}
