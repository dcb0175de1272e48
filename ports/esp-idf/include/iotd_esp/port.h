/* The device core's port contract (iotd/port.h) on ESP-IDF 5.x.
 *
 * HTTPS with mutual TLS: the POSTs (readings, health) over esp-tls, with
 * the TLS session kept across deep sleep (iotd_esp/session.h) and the
 * response read by http-parser; the update's GETs through esp_http_client
 * (esp_http_client gives no access to the TLS session). The key-value store in
 * NVS, the clock from newlib's time() (set by SNTP), uptime from esp_timer,
 * sleep with vTaskDelay, randomness from the hardware RNG and the log
 * through ESP_LOGx. Written against ESP-IDF v5.2 (the API reference of that
 * release and the headers of the 5.x branch); every call used also exists
 * in v5.1, except the BME280's I2C driver (iotd_esp/sensors.h).
 *
 * The application initialises NVS (nvs_flash_init) and the network before
 * calling iotd_esp_init, and keeps the iotd_esp object, the port it fills
 * and the PEM strings alive for as long as the device runs: esp_http_client
 * keeps pointers to the PEM buffers, it does not copy them.
 */
#ifndef IOTD_ESP_PORT_H
#define IOTD_ESP_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_http_client.h"
#include "esp_tls.h"
#include "nvs.h"

#include "iotd/port.h"
#include "iotd/status.h"
#include "iotd/update_port.h"

#define IOTD_ESP_URL_MAX           256 /* gateway URL plus the request path */
#define IOTD_ESP_RETRY_AFTER_MAX   40  /* longest Retry-After value kept ("Sun, 06 Nov ...") */
#define IOTD_ESP_CONTENT_RANGE_MAX 48  /* longest Content-Range value kept */

typedef struct iotd_esp_config {
    const char *gateway_url;  /* "https://host[:port]", no path; plain http is refused */
    const char *ca_pem;       /* the project CA: the gateway's certificate must chain to it */
    const char *cert_pem;     /* this device's certificate (CN = device ID) */
    const char *key_pem;      /* its private key */
    int timeout_ms;           /* bound on each network operation (connect, TLS, write, read) */
    uint32_t reuse_idle_ms;   /* a connection idle longer than this is closed, not reused */
    const char *kv_namespace; /* NVS namespace (default partition) for the core's records */
    uint64_t uptime_base_ms;  /* added to esp_timer's time since boot (uptime across deep sleep) */
} iotd_esp_config;

/* The port's state. Fields are private. */
typedef struct iotd_esp {
    esp_http_client_handle_t http;
    const char *base_url;
    char url[IOTD_ESP_URL_MAX];
    uint32_t reuse_idle_ms;
    bool open;             /* a connection may be open and reusable */
    uint64_t last_used_ms; /* uptime of the end of the last exchange */
    nvs_handle_t kv;
    bool kv_open;
    uint64_t uptime_base_ms;
    /* What the event handler saw of the response being read. A header
     * that came twice, or longer than its buffer, is not used. */
    bool has_retry_after;
    bool retry_after_bad;
    char retry_after[IOTD_ESP_RETRY_AFTER_MAX];
    bool has_content_range;
    bool content_range_bad;
    char content_range[IOTD_ESP_CONTENT_RANGE_MAX];
    bool server_closes; /* "Connection: close" */
    /* The POST connection (tls_post.c), over esp-tls. The PEM strings are
     * the configuration's, which the caller keeps. */
    esp_tls_t *tls;
    bool tls_session_kept;     /* this connection's session went to RTC memory */
    uint64_t tls_last_used_ms; /* uptime of the end of its last exchange */
    const char *ca_pem;
    const char *cert_pem;
    const char *key_pem;
    int timeout_ms;
    uint8_t session_binding[32]; /* iotd/tls_session.h, over cert_pem and ca_pem */
    bool session_bound;
} iotd_esp;

/* Opens the NVS namespace, creates the HTTP client (no connection yet) and
 * fills *port with the functions below and ctx = esp. IOTD_EINVAL for a bad
 * configuration (not https, a PEM missing, a URL too long), IOTD_EIO when
 * NVS or the HTTP client cannot be set up. */
iotd_status iotd_esp_init(iotd_esp *esp, const iotd_esp_config *cfg, iotd_port *port);

/* Replaces the HTTP client with one that presents cfg's certificate and
 * key (after a renewal was committed): the open connection is closed, the
 * NVS handle and the uptime base stay (cfg's kv_namespace and
 * uptime_base_ms are not read again). The old PEM strings may be freed or
 * overwritten once this returns, the new ones must stay. The TLS session
 * kept for the old certificate is erased. IOTD_EINVAL for a
 * configuration iotd_esp_init would refuse (nothing changed); IOTD_EIO
 * when the new client cannot be created (the port then has none, and its
 * requests fail until a later call succeeds). */
iotd_status iotd_esp_set_identity(iotd_esp *esp, const iotd_esp_config *cfg);

/* Closes the gateway connections, if any (before deep sleep or Wi-Fi
 * stop); the TLS session stays kept for the next one. */
void iotd_esp_disconnect(iotd_esp *esp);

/* Releases the HTTP client and the NVS handle. */
void iotd_esp_deinit(iotd_esp *esp);

/* The port contract, each taking the iotd_esp as ctx. */
iotd_status iotd_esp_https_post(void *ctx, const char *path, const char *content_type,
                                const char *body, size_t body_len, char *resp, size_t resp_cap,
                                iotd_http_result *result);
bool iotd_esp_wall_time(void *ctx, int64_t *unix_s);

/* The update port's https_get (iotd/update_port.h), on the same client,
 * connection and mutual TLS as https_post; ctx is the iotd_esp. A body cut
 * short of its Content-Length (or its last chunk) is IOTD_ENET, so a
 * download retries the range instead of judging half of it. */
iotd_status iotd_esp_https_get(void *ctx, const char *path, uint32_t range_start,
                               uint32_t range_len, void *buf, size_t cap, iotd_get_result *result);
uint64_t iotd_esp_uptime_ms(void *ctx);
void iotd_esp_sleep_ms(void *ctx, uint32_t ms);
iotd_status iotd_esp_kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len);
iotd_status iotd_esp_kv_set(void *ctx, const char *key, const void *data, size_t len);
uint32_t iotd_esp_random_u32(void *ctx);
void iotd_esp_log(void *ctx, iotd_log_level level, const char *event, const char *msg);

#endif
