/* The core's POST (readings, health) over esp-tls, so that the connection
 * offers the TLS session kept across deep sleep (iotd_esp/session.h):
 * esp_http_client exposes no TLS session. The response is read by
 * http-parser (ESP-IDF's http_parser component, the parser esp_http_client
 * uses) through the POSIX port's reader, ports/posix/src/http_response.c,
 * compiled here as it is: status, Retry-After, the body up to the
 * caller's cap, whether the connection may carry the next request.
 *
 * Keep-alive as in https.c: the connection stays open after a response
 * read to its end without "Connection: close", and is closed when idle
 * longer than reuse_idle_ms; a request that fails on a reused connection
 * is sent once more on a new one (the gateway acknowledges readings it
 * already has as duplicates).
 *
 * Every network wait is bounded by timeout_ms: esp-tls sets it as the
 * socket's receive and send timeouts, and a read that times out
 * (ESP_TLS_ERR_SSL_WANT_READ on a blocking socket) counts against the
 * same deadline.
 */
#include <limits.h>
#include <string.h>

#include "esp_log.h"
#include "esp_tls.h"
#include "iotd_posix/http_response.h"

#include "port_internal.h"

static const char *TAG = "iotd";

#define HEAD_MAX   (IOTD_ESP_URL_MAX + 192) /* request line and headers */
#define READ_CHUNK 512
/* Body bytes past the caller's cap read so the connection stays usable;
 * beyond, the connection is closed instead. */
#define DRAIN_MAX 2048

typedef struct text {
    char *buf;
    size_t cap;
    size_t len;
    bool ok;
} text;

/* Appends s; a value (header field) must hold no control character, so
 * nothing can split the request. */
static void put(text *t, const char *s, bool value)
{
    size_t n = strlen(s);

    for (size_t i = 0; value && i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            t->ok = false;
    if (!t->ok || n >= t->cap - t->len) {
        t->ok = false;
        return;
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static void put_u32(text *t, uint32_t v)
{
    char digits[11];
    size_t i = sizeof(digits) - 1;

    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    put(t, digits + i, false);
}

/* "POST path HTTP/1.1" and its headers. base_url is "https://authority"
 * (port.c checks the scheme): the Host header is the authority. */
static bool request_head(const iotd_esp *esp, const char *path, const char *content_type,
                         size_t body_len, char *buf, size_t cap)
{
    text t = {buf, cap, 0, true};

    buf[0] = '\0';
    put(&t, "POST ", false);
    put(&t, path, true);
    put(&t, " HTTP/1.1\r\nHost: ", false);
    put(&t, esp->base_url + strlen("https://"), true);
    put(&t, "\r\nUser-Agent: iotd-esp32\r\n", false);
    if (content_type != NULL) {
        put(&t, "Content-Type: ", false);
        put(&t, content_type, true);
        put(&t, "\r\n", false);
    }
    put(&t, "Content-Length: ", false);
    put_u32(&t, (uint32_t)body_len);
    put(&t, "\r\n\r\n", false);
    return t.ok && path[0] == '/';
}

void iotd_esp__tls_close(iotd_esp *esp)
{
    if (esp->tls != NULL)
        (void)esp_tls_conn_destroy(esp->tls);
    esp->tls = NULL;
    esp->tls_session_kept = false;
}

/* Whether a failed connection got as far as a TLS handshake that failed:
 * only then is the session it offered dropped (a network that is not
 * there says nothing about the session). */
static bool handshake_failed(esp_tls_t *tls)
{
    esp_tls_error_handle_t h = NULL;

    return esp_tls_get_error_handle(tls, &h) == ESP_OK && h != NULL &&
           h->last_error == ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED;
}

/* A new connection, offering the kept session. The PEM lengths count the
 * terminating NUL, as esp-tls wants for PEM. */
static iotd_status tls_connect(iotd_esp *esp)
{
    esp_tls_cfg_t cfg = {
        .cacert_buf = (const unsigned char *)esp->ca_pem,
        .cacert_bytes = (unsigned int)strlen(esp->ca_pem) + 1u,
        .clientcert_buf = (const unsigned char *)esp->cert_pem,
        .clientcert_bytes = (unsigned int)strlen(esp->cert_pem) + 1u,
        .clientkey_buf = (const unsigned char *)esp->key_pem,
        .clientkey_bytes = (unsigned int)strlen(esp->key_pem) + 1u,
        .timeout_ms = esp->timeout_ms,
    };

    cfg.client_session = iotd_esp__session_offer(esp);
    esp->tls = esp_tls_init();
    if (esp->tls == NULL) {
        ESP_LOGE(TAG, "https.connect_failed: no memory for the TLS connection");
        return IOTD_ENET;
    }
    if (esp_tls_conn_http_new_sync(esp->base_url, &cfg, esp->tls) != 1) {
        ESP_LOGW(TAG, "https.connect_failed: no TLS connection to the gateway");
        if (handshake_failed(esp->tls))
            iotd_esp__session_failed();
        iotd_esp__tls_close(esp);
        return IOTD_ENET;
    }
    return IOTD_OK;
}

static bool write_all(esp_tls_t *tls, const char *data, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = esp_tls_conn_write(tls, data + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n != ESP_TLS_ERR_SSL_WANT_WRITE && n != ESP_TLS_ERR_SSL_WANT_READ)
            return false;
    }
    return true;
}

/* Feeds the response into r until it is complete. IOTD_ENET when it did
 * not come whole and valid within the deadline; a body longer than the
 * cap plus DRAIN_MAX stops the reading with the headers in (r->complete
 * stays false, so the connection is closed). */
static iotd_status read_response(iotd_esp *esp, iotd_posix_http_response *r)
{
    char buf[READ_CHUNK];
    iotd_posix_http_rc rc = IOTD_POSIX_HTTP_MORE;
    uint64_t deadline = iotd_esp_uptime_ms(esp) + (uint64_t)esp->timeout_ms;

    while (rc == IOTD_POSIX_HTTP_MORE) {
        if (r->status != 0 && r->body_total > r->body_cap + DRAIN_MAX)
            return IOTD_OK;
        ssize_t n = esp_tls_conn_read(esp->tls, buf, sizeof(buf));
        if (n > 0)
            rc = iotd_posix_http_response_feed(r, buf, (size_t)n);
        else if (n == 0)
            rc = iotd_posix_http_response_eof(r);
        else if ((n != ESP_TLS_ERR_SSL_WANT_READ && n != ESP_TLS_ERR_SSL_WANT_WRITE) ||
                 iotd_esp_uptime_ms(esp) > deadline)
            break;
    }
    if (rc == IOTD_POSIX_HTTP_DONE)
        return IOTD_OK;
    ESP_LOGW(TAG, "https.no_response: %s",
             rc == IOTD_POSIX_HTTP_ERROR && r->error != NULL ? r->error
                                                             : "no complete response in time");
    return IOTD_ENET;
}

/* One request and its response on the open connection (or a new one). */
static iotd_status exchange(iotd_esp *esp, const char *head, const char *body, size_t body_len,
                            iotd_posix_http_response *r)
{
    iotd_status st = IOTD_OK;

    if (esp->tls == NULL)
        st = tls_connect(esp);
    if (st != IOTD_OK)
        goto out;
    if (!write_all(esp->tls, head, strlen(head)) || !write_all(esp->tls, body, body_len)) {
        ESP_LOGW(TAG, "https.write_failed: the request could not be sent in full");
        st = IOTD_ENET;
        goto out;
    }
    st = read_response(esp, r);
    if (st != IOTD_OK)
        goto out;
    /* The exchange went through: the gateway accepted this session. */
    if (!esp->tls_session_kept) {
        iotd_esp__session_keep(esp, esp->tls);
        esp->tls_session_kept = true;
    }
    if (!r->complete || !r->keep_alive)
        iotd_esp__tls_close(esp);
out:
    if (st != IOTD_OK)
        iotd_esp__tls_close(esp);
    return st;
}

iotd_status iotd_esp_https_post(void *ctx, const char *path, const char *content_type,
                                const char *body, size_t body_len, char *resp, size_t resp_cap,
                                iotd_http_result *result)
{
    iotd_esp *esp = ctx;
    char head[HEAD_MAX];
    iotd_posix_http_response r;
    int64_t now = 0;

    memset(result, 0, sizeof(*result));
    if (body_len > UINT32_MAX || (body == NULL && body_len > 0) ||
        !request_head(esp, path, content_type, body_len, head, sizeof(head)))
        return IOTD_EINVAL;
    if (esp->tls != NULL && iotd_esp_uptime_ms(esp) - esp->tls_last_used_ms > esp->reuse_idle_ms)
        iotd_esp__tls_close(esp);

    bool reused = esp->tls != NULL;
    bool known = iotd_esp_wall_time(esp, &now);
    iotd_posix_http_response_init(&r, resp, resp_cap, now);
    r.now_known = known;
    iotd_status st = exchange(esp, head, body, body_len, &r);
    if (st == IOTD_ENET && reused) {
        /* The gateway may have closed the idle connection as the request
         * went out. */
        iotd_posix_http_response_init(&r, resp, resp_cap, now);
        r.now_known = known;
        st = exchange(esp, head, body, body_len, &r);
    }
    esp->tls_last_used_ms = iotd_esp_uptime_ms(esp);
    if (st != IOTD_OK)
        return st;
    result->status = r.status;
    result->body_len = r.body_len;
    result->has_retry_after = r.has_retry_after;
    result->retry_after_s = r.retry_after_s;
    return IOTD_OK;
}
