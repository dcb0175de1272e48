/* The update's (ranged) GET to the gateway over HTTPS with mutual TLS,
 * through esp_http_client's streaming calls
 * (open, write, fetch_headers, read), so the response body goes straight
 * into the caller's capped buffer. The core's POSTs go over esp-tls
 * instead, with the TLS session kept across deep sleep (tls_post.c).
 *
 * esp_http_client_get_header() returns *request* headers (esp_http_client.h,
 * ESP-IDF 5.x), so Retry-After, Content-Range and Connection are taken from
 * the HTTP_EVENT_ON_HEADER events fired while the headers are parsed. Those
 * values come from the network: each is copied only when it fits its
 * buffer, a header that comes twice is not used, and the text is parsed by
 * functions with host tests (iotd_protocol_retry_after in the core,
 * iotd_esp__content_range in text.c).
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

/* Body bytes read and thrown away after the caller's cap so the connection
 * stays usable; a longer body closes the connection instead. */
#define DRAIN_MAX   2048
#define DRAIN_CHUNK 128

/* How a response body ended. */
typedef enum body_end {
    BODY_WHOLE,  /* read to its end, within the cap */
    BODY_LONGER, /* the cap was filled and more followed */
    BODY_CUT,    /* the read failed or the peer closed before the end */
} body_end;

typedef struct request {
    esp_http_client_method_t method;
    const char *content_type; /* NULL: none */
    const char *range;        /* the Range header's value; NULL: none */
    const char *body;
    size_t body_len;
    char *resp;
    size_t resp_cap;
} request;

typedef struct response {
    int status;
    size_t body_len;
    body_end end;
} response;

static esp_err_t on_event(esp_http_client_event_t *evt)
{
    iotd_esp *esp = evt->user_data;

    if (evt->event_id != HTTP_EVENT_ON_HEADER || esp == NULL || evt->header_key == NULL ||
        evt->header_value == NULL)
        return ESP_OK;
    if (iotd_esp__ieq(evt->header_key, "Retry-After"))
        iotd_esp__keep_header(evt->header_value, esp->retry_after, sizeof(esp->retry_after),
                              &esp->has_retry_after, &esp->retry_after_bad);
    else if (iotd_esp__ieq(evt->header_key, "Content-Range"))
        iotd_esp__keep_header(evt->header_value, esp->content_range, sizeof(esp->content_range),
                              &esp->has_content_range, &esp->content_range_bad);
    else if (iotd_esp__ieq(evt->header_key, "Connection") &&
             iotd_esp__has_token(evt->header_value, "close"))
        esp->server_closes = true;
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

    esp->ca_pem = cfg->ca_pem;
    esp->cert_pem = cfg->cert_pem;
    esp->key_pem = cfg->key_pem;
    esp->timeout_ms = cfg->timeout_ms;
    iotd_esp__session_bind(esp, cfg->cert_pem, cfg->ca_pem);
    esp->http = esp_http_client_init(&hc);
    if (esp->http == NULL) {
        ESP_LOGE(TAG, "https.init_failed: the HTTP client could not be created");
        return IOTD_EIO;
    }
    return IOTD_OK;
}

void iotd_esp__http_destroy(iotd_esp *esp)
{
    iotd_esp__tls_close(esp);
    if (esp->http != NULL) {
        esp_http_client_cleanup(esp->http);
        esp->http = NULL;
    }
    esp->open = false;
}

void iotd_esp_disconnect(iotd_esp *esp)
{
    iotd_esp__tls_close(esp);
    if (esp->http != NULL && esp->open)
        esp_http_client_close(esp->http);
    esp->open = false;
}

/* Reads up to cap body bytes into buf. A read of 0 before the cap means the
 * body is over, or the peer closed early, which only the comparison with
 * its length tells apart. */
static body_end read_body(esp_http_client_handle_t c, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    body_end end = BODY_CUT;

    while (n < cap) {
        size_t want = cap - n > INT_MAX ? INT_MAX : cap - n;
        int r = esp_http_client_read(c, buf + n, (int)want);
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (esp_http_client_is_complete_data_received(c))
        end = BODY_WHOLE;
    else if (n == cap)
        end = BODY_LONGER;
out:
    *len = n;
    return end;
}

/* Reads the rest of a body longer than the caller wanted, up to DRAIN_MAX.
 * True when it ended there, so the connection can carry the next request. */
static bool drain(esp_http_client_handle_t c)
{
    char scratch[DRAIN_CHUNK];
    size_t drained = 0;

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

static void take_retry_after(iotd_esp *esp, bool *has, uint32_t *seconds)
{
    int64_t now = 0;
    bool known;

    *has = false;
    if (!esp->has_retry_after)
        return;
    if (esp->retry_after_bad) {
        ESP_LOGW(TAG, "https.retry_after_ignored: the Retry-After value is too long or repeated");
        return;
    }
    known = iotd_esp_wall_time(esp, &now);
    *has =
        iotd_protocol_retry_after(esp->retry_after, strlen(esp->retry_after), known, now, seconds);
    if (!*has)
        ESP_LOGW(TAG, "https.retry_after_ignored: a Retry-After value that is not delta-seconds "
                      "or an HTTP-date the clock can convert");
}

/* has_range stays false unless one Content-Range came and parses. */
static void take_content_range(iotd_esp *esp, iotd_get_result *result)
{
    char shown[IOTD_ESP_CONTENT_RANGE_MAX + 8];
    iotd_esp_range r;

    if (!esp->has_content_range)
        return;
    if (!esp->content_range_bad && iotd_esp__content_range(esp->content_range, &r)) {
        result->has_range = true;
        result->range_start = r.start;
        result->range_len = r.len;
        result->range_total = r.total;
        return;
    }
    iotd_esp__escape(esp->content_range_bad ? "(too long or repeated)" : esp->content_range, shown,
                     sizeof(shown));
    ESP_LOGW(TAG, "https.content_range_ignored: %s", shown);
}

/* esp_http_client keeps request headers between requests: a header this
 * request has no value for is removed (ESP_ERR_NOT_FOUND when it was not
 * there is no error). */
static esp_err_t set_or_drop_header(esp_http_client_handle_t c, const char *name, const char *value)
{
    if (value != NULL)
        return esp_http_client_set_header(c, name, value);
    (void)esp_http_client_delete_header(c, name);
    return ESP_OK;
}

/* Sets the request's URL, method and headers and opens it, with the
 * connection if none is open. A GET goes out with "Content-Length: 0"
 * (esp_http_client_open writes one for any length >= 0), which HTTP/1.1
 * allows. */
static esp_err_t open_request(iotd_esp *esp, const request *req)
{
    esp_http_client_handle_t c = esp->http;
    esp_err_t err = esp_http_client_set_url(c, esp->url);

    if (err == ESP_OK)
        err = esp_http_client_set_method(c, req->method);
    if (err == ESP_OK)
        err = set_or_drop_header(c, "Content-Type", req->content_type);
    if (err == ESP_OK)
        err = set_or_drop_header(c, "Range", req->range);
    if (err != ESP_OK)
        goto out;
    /* From here a connection may be open: every failure closes it, so the
     * next request starts on a fresh one. */
    esp->open = true;
    err = esp_http_client_open(c, (int)req->body_len);
out:
    return err;
}

static void reset_seen(iotd_esp *esp)
{
    esp->has_retry_after = false;
    esp->retry_after_bad = false;
    esp->has_content_range = false;
    esp->content_range_bad = false;
    esp->server_closes = false;
}

/* The status line and headers of the response: IOTD_ENET when they did not
 * come complete, or the status is not one. */
static iotd_status send_and_fetch(iotd_esp *esp, const request *req)
{
    esp_http_client_handle_t c = esp->http;
    esp_err_t err = open_request(esp, req);

    if (err != ESP_OK) {
        ESP_LOGW(TAG, "https.connect_failed: %s", esp_err_to_name(err));
        return IOTD_ENET;
    }
    if (esp_http_client_write(c, req->body, (int)req->body_len) != (int)req->body_len) {
        ESP_LOGW(TAG, "https.write_failed: the request could not be sent in full");
        return IOTD_ENET;
    }
    /* int64_t in the 5.x header (int in older ones, which int64_t also
     * holds). Negative: an error or a timeout before the headers. */
    if (esp_http_client_fetch_headers(c) < 0) {
        ESP_LOGW(TAG, "https.no_response: no complete response headers");
        return IOTD_ENET;
    }
    return IOTD_OK;
}

/* One request and its response on the current connection (opening one if
 * needed). IOTD_ENET when no complete status line and headers came back. */
static iotd_status exchange(iotd_esp *esp, const request *req, response *rsp)
{
    esp_http_client_handle_t c = esp->http;
    iotd_status st;

    memset(rsp, 0, sizeof(*rsp));
    reset_seen(esp);
    st = send_and_fetch(esp, req);
    if (st != IOTD_OK)
        goto out;
    /* Read the body before judging the status: what fetch_headers already
     * received of it is kept inside the client until it is read. */
    rsp->end = read_body(c, req->resp, req->resp_cap, &rsp->body_len);
    bool reusable = rsp->end == BODY_WHOLE || (rsp->end == BODY_LONGER && drain(c));
    int status = esp_http_client_get_status_code(c);
    if (status < 100 || status > 599) {
        ESP_LOGW(TAG, "https.bad_status: %d", status);
        st = IOTD_ENET;
        goto out;
    }
    rsp->status = status;
    if (!reusable || esp->server_closes)
        iotd_esp_disconnect(esp);
out:
    if (st != IOTD_OK) {
        rsp->body_len = 0;
        iotd_esp_disconnect(esp);
    }
    return st;
}

/* The request at path on the gateway, on a connection that is fresh enough
 * or a new one. Requests repeated here are safe to repeat: a GET changes
 * nothing, and the gateway acknowledges a POST of readings it already
 * stored as a duplicate. */
static iotd_status perform(iotd_esp *esp, const char *path, const request *req, response *rsp)
{
    iotd_status st;

    memset(rsp, 0, sizeof(*rsp));
    if (esp->http == NULL)
        return IOTD_ENET; /* iotd_esp_set_identity could not make a client */
    if (req->body_len > (size_t)INT_MAX ||
        !iotd_esp__join(esp->url, sizeof(esp->url), esp->base_url, path))
        return IOTD_EINVAL;
    if (esp->open && iotd_esp_uptime_ms(esp) - esp->last_used_ms > esp->reuse_idle_ms)
        iotd_esp_disconnect(esp);

    bool reused = esp->open;
    st = exchange(esp, req, rsp);
    if (st == IOTD_ENET && reused) {
        /* The gateway may have closed the idle connection as the request
         * went out. */
        st = exchange(esp, req, rsp);
    }
    esp->last_used_ms = iotd_esp_uptime_ms(esp);
    return st;
}

iotd_status iotd_esp_https_get(void *ctx, const char *path, uint32_t range_start,
                               uint32_t range_len, void *buf, size_t cap, iotd_get_result *result)
{
    iotd_esp *esp = ctx;
    char range[IOTD_ESP_RANGE_MAX];
    request req = {HTTP_METHOD_GET, NULL, NULL, "", 0, buf, cap};
    response rsp;

    memset(result, 0, sizeof(*result));
    if (range_len > 0) {
        if (!iotd_esp__range_header(range, sizeof(range), range_start, range_len))
            return IOTD_EINVAL; /* past 2^32 - 1 */
        req.range = range;
    }
    iotd_status st = perform(esp, path, &req, &rsp);
    if (st != IOTD_OK)
        return st;
    if (rsp.end == BODY_CUT) {
        ESP_LOGW(TAG, "https.body_cut: the response body ended before its length");
        return IOTD_ENET;
    }
    result->status = rsp.status;
    result->body_len = rsp.body_len;
    result->truncated = rsp.end == BODY_LONGER;
    take_retry_after(esp, &result->has_retry_after, &result->retry_after_s);
    take_content_range(esp, result);
    return IOTD_OK;
}
