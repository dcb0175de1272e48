/* POST to the gateway over HTTPS with mutual TLS, through esp_http_client's
 * streaming calls (open, write, fetch_headers, read), so the response body
 * goes straight into the core's capped buffer.
 *
 * esp_http_client_get_header() returns *request* headers (esp_http_client.h,
 * ESP-IDF 5.x), so Retry-After and Connection are taken from the
 * HTTP_EVENT_ON_HEADER events fired while the headers are parsed.
 *
 * Keep-alive: esp_http_client_open() reuses the connection when the
 * previous exchange left it open (esp_http_client.c, connect step). This
 * port keeps it open only after a response read to its end without
 * "Connection: close", and closes it when it has been idle longer than
 * reuse_idle_ms, because the gateway closes silent connections (its
 * request_timeout, 10 s by default) and a request sent into a connection
 * the peer has just closed gets no answer.
 */
#include <limits.h>
#include <string.h>

#include "esp_http_client.h"
#include "esp_log.h"
#include "iotd/protocol.h"

#include "port_internal.h"
#include "text.h"

static const char *TAG = "iotd";

/* Body bytes read and thrown away after resp_cap so the connection stays
 * usable; a longer body closes the connection instead. */
#define DRAIN_MAX   2048
#define DRAIN_CHUNK 128

static esp_err_t on_event(esp_http_client_event_t *evt)
{
    iotd_esp *esp = evt->user_data;

    if (evt->event_id != HTTP_EVENT_ON_HEADER || esp == NULL || evt->header_key == NULL ||
        evt->header_value == NULL)
        return ESP_OK;
    if (iotd_esp__ieq(evt->header_key, "Retry-After")) {
        size_t n = strlen(evt->header_value);
        esp->has_retry_after = true;
        esp->retry_after_cut = n >= sizeof(esp->retry_after);
        if (!esp->retry_after_cut)
            memcpy(esp->retry_after, evt->header_value, n + 1);
    } else if (iotd_esp__ieq(evt->header_key, "Connection") &&
               iotd_esp__has_token(evt->header_value, "close")) {
        esp->server_closes = true;
    }
    return ESP_OK;
}

iotd_status iotd_esp__http_create(iotd_esp *esp, const iotd_esp_config *cfg)
{
    /* cert_len, client_cert_len and client_key_len stay 0: the strings are
     * NUL-terminated PEM. The server's name is checked against its
     * certificate (skip_cert_common_name_check stays false), and only the
     * project CA is trusted (no certificate bundle). */
    const esp_http_client_config_t hc = {
        .url = cfg->gateway_url,
        .cert_pem = cfg->ca_pem,
        .client_cert_pem = cfg->cert_pem,
        .client_key_pem = cfg->key_pem,
        .user_agent = "iotd-esp32",
        .method = HTTP_METHOD_POST,
        .timeout_ms = cfg->timeout_ms,
        .disable_auto_redirect = true,
        .event_handler = on_event,
        .transport_type = HTTP_TRANSPORT_OVER_SSL,
        .user_data = esp,
    };

    esp->http = esp_http_client_init(&hc);
    if (esp->http == NULL) {
        ESP_LOGE(TAG, "https.init_failed: the HTTP client could not be created");
        return IOTD_EIO;
    }
    return IOTD_OK;
}

void iotd_esp__http_destroy(iotd_esp *esp)
{
    if (esp->http != NULL) {
        esp_http_client_cleanup(esp->http);
        esp->http = NULL;
    }
    esp->open = false;
}

void iotd_esp_disconnect(iotd_esp *esp)
{
    if (esp->http != NULL && esp->open)
        esp_http_client_close(esp->http);
    esp->open = false;
}

/* Reads up to cap body bytes into resp, then the rest of the body up to
 * DRAIN_MAX. True when the whole response was read, so the connection can
 * carry the next request. */
static bool read_body(esp_http_client_handle_t c, char *resp, size_t cap, size_t *len)
{
    char scratch[DRAIN_CHUNK];
    size_t n = 0, drained = 0;

    while (n < cap) {
        size_t want = cap - n > INT_MAX ? INT_MAX : cap - n;
        int r = esp_http_client_read(c, resp + n, (int)want);
        if (r < 0) {
            *len = n;
            return false;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    while (!esp_http_client_is_complete_data_received(c)) {
        if (drained >= DRAIN_MAX)
            return false;
        int r = esp_http_client_read(c, scratch, (int)sizeof(scratch));
        if (r <= 0)
            return false;
        drained += (size_t)r;
    }
    return true;
}

static void take_retry_after(iotd_esp *esp, iotd_http_result *result)
{
    int64_t now = 0;
    bool known;

    if (!esp->has_retry_after)
        return;
    if (esp->retry_after_cut) {
        ESP_LOGW(TAG, "https.retry_after_ignored: the Retry-After value is too long");
        return;
    }
    known = iotd_esp_wall_time(esp, &now);
    result->has_retry_after = iotd_protocol_retry_after(esp->retry_after, strlen(esp->retry_after),
                                                        known, now, &result->retry_after_s);
    if (!result->has_retry_after)
        ESP_LOGW(TAG, "https.retry_after_ignored: a Retry-After value that is not delta-seconds "
                      "or an HTTP-date the clock can convert");
}

/* Sets the request's URL and content type and opens it, with the
 * connection if none is open. */
static esp_err_t open_request(iotd_esp *esp, const char *content_type, size_t body_len)
{
    esp_http_client_handle_t c = esp->http;
    esp_err_t err = esp_http_client_set_url(c, esp->url);

    if (err != ESP_OK)
        goto out;
    err = esp_http_client_set_header(c, "Content-Type", content_type);
    if (err != ESP_OK)
        goto out;
    /* From here a connection may be open: every failure closes it, so the
     * next request starts on a fresh one. */
    esp->open = true;
    err = esp_http_client_open(c, (int)body_len);
out:
    return err;
}

/* One request and its response on the current connection (opening one if
 * needed). IOTD_ENET when no complete status line and headers came back. */
static iotd_status exchange(iotd_esp *esp, const char *content_type, const char *body,
                            size_t body_len, char *resp, size_t resp_cap, iotd_http_result *result)
{
    esp_http_client_handle_t c = esp->http;
    iotd_status st = IOTD_ENET;
    esp_err_t err;

    memset(result, 0, sizeof(*result));
    esp->has_retry_after = false;
    esp->retry_after_cut = false;
    esp->server_closes = false;

    err = open_request(esp, content_type, body_len);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "https.connect_failed: %s", esp_err_to_name(err));
        goto out;
    }
    if (esp_http_client_write(c, body, (int)body_len) != (int)body_len) {
        ESP_LOGW(TAG, "https.write_failed: the request could not be sent in full");
        goto out;
    }
    /* int64_t in the 5.x header (int in older ones, which int64_t also
     * holds). Negative: an error or a timeout before the headers. */
    if (esp_http_client_fetch_headers(c) < 0) {
        ESP_LOGW(TAG, "https.no_response: no complete response headers");
        goto out;
    }
    /* Read the body before judging the status: what fetch_headers already
     * received of it is kept inside the client until it is read. */
    bool whole = read_body(c, resp, resp_cap, &result->body_len);
    int status = esp_http_client_get_status_code(c);
    if (status < 100 || status > 599) {
        ESP_LOGW(TAG, "https.bad_status: %d", status);
        result->body_len = 0;
        goto out;
    }
    result->status = status;
    take_retry_after(esp, result);
    if (!whole || esp->server_closes)
        iotd_esp_disconnect(esp);
    st = IOTD_OK;
out:
    if (st != IOTD_OK)
        iotd_esp_disconnect(esp);
    return st;
}

iotd_status iotd_esp_https_post(void *ctx, const char *path, const char *content_type,
                                const char *body, size_t body_len, char *resp, size_t resp_cap,
                                iotd_http_result *result)
{
    iotd_esp *esp = ctx;
    iotd_status st;

    memset(result, 0, sizeof(*result));
    if (body_len > (size_t)INT_MAX ||
        !iotd_esp__join(esp->url, sizeof(esp->url), esp->base_url, path))
        return IOTD_EINVAL;
    if (esp->open && iotd_esp_uptime_ms(esp) - esp->last_used_ms > esp->reuse_idle_ms)
        iotd_esp_disconnect(esp);

    bool reused = esp->open;
    st = exchange(esp, content_type, body, body_len, resp, resp_cap, result);
    if (st == IOTD_ENET && reused) {
        /* The gateway may have closed the idle connection as the request
         * went out. Sending again is safe: it acknowledges a sequence
         * number it already stored as a duplicate. */
        st = exchange(esp, content_type, body, body_len, resp, resp_cap, result);
    }
    esp->last_used_ms = iotd_esp_uptime_ms(esp);
    return st;
}
