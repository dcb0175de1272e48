/* See iotd_esp/session.h. The record lives in RTC memory; the session
 * being offered is decoded from it into ordinary RAM for the handshake
 * (esp-tls copies it into the connection with mbedtls_ssl_set_session). */
#include "iotd_esp/session.h"

#include <string.h>

#include "esp_attr.h"
#include "esp_log.h"
#include "esp_tls.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/sha256.h"
#include "mbedtls/ssl.h"
#include "sdkconfig.h"

#include "iotd/tls_session.h"

#include "port_internal.h"

#if !CONFIG_ESP_TLS_CLIENT_SESSION_TICKETS
#error "the TLS session across deep sleep needs CONFIG_ESP_TLS_CLIENT_SESSION_TICKETS=y"
#endif

static const char *TAG = "iotd";

#define RECORD_MAX (IOTD_TLS_RECORD_OVERHEAD + IOTD_ESP_SESSION_MAX)

/* Zero (no record) at power-on and after any reset but a deep-sleep
 * wake-up. */
RTC_DATA_ATTR static uint8_t s_record[RECORD_MAX];
RTC_DATA_ATTR static iotd_esp_session_stats s_stats;

/* The session offered on the connection being made, to tell afterwards
 * whether it resumed. */
static esp_tls_client_session_t s_offered;
static bool s_offering;

static void drop_offered(void)
{
    if (s_offering)
        mbedtls_ssl_session_free(&s_offered.saved_session);
    s_offering = false;
}

void iotd_esp_session_erase(void)
{
    drop_offered();
    mbedtls_platform_zeroize(s_record, sizeof(s_record));
}

iotd_esp_session_stats iotd_esp_session_get_stats(void)
{
    return s_stats;
}

static iotd_status sha_begin(void *ctx)
{
    return mbedtls_sha256_starts(ctx, 0) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_update(void *ctx, const void *data, size_t len)
{
    return mbedtls_sha256_update(ctx, data, len) == 0 ? IOTD_OK : IOTD_EIO;
}

static iotd_status sha_finish(void *ctx, uint8_t out[IOTD_TLS_BINDING_LEN])
{
    return mbedtls_sha256_finish(ctx, out) == 0 ? IOTD_OK : IOTD_EIO;
}

void iotd_esp__session_bind(iotd_esp *esp, const char *cert_pem, const char *ca_pem)
{
    mbedtls_sha256_context h;
    const iotd_sha256_ops ops = {&h, sha_begin, sha_update, sha_finish};
    iotd_tls_binder b;

    mbedtls_sha256_init(&h);
    iotd_tls_bind_begin(&b, &ops);
    iotd_tls_bind_add(&b, IOTD_TLS_PART_OWN_CERT, cert_pem, strlen(cert_pem));
    iotd_tls_bind_add(&b, IOTD_TLS_PART_CA, ca_pem, strlen(ca_pem));
    esp->session_bound = iotd_tls_bind_finish(&b, esp->session_binding) == IOTD_OK;
    mbedtls_sha256_free(&h);
}

esp_tls_client_session_t *iotd_esp__session_offer(const iotd_esp *esp)
{
    const uint8_t *session = NULL;
    size_t len = 0;

    drop_offered();
    if (!esp->session_bound)
        return NULL;
    iotd_status st = iotd_tls_record_open(s_record, sizeof(s_record), esp->session_binding,
                                          IOTD_ESP_SESSION_MAX, &session, &len);
    if (st == IOTD_ENOENT)
        return NULL;
    if (st == IOTD_OK) {
        mbedtls_ssl_session_init(&s_offered.saved_session);
        s_offering = true;
        if (mbedtls_ssl_session_load(&s_offered.saved_session, session, len) == 0)
            return &s_offered;
        st = IOTD_ECORRUPT; /* intact record, but not a session this mbedTLS reads */
    }
    ESP_LOGW(TAG, "tls.session_discarded: %s",
             st == IOTD_ESTATE ? "made under another certificate or CA" : "damaged");
    iotd_esp_session_erase();
    return NULL;
}

void iotd_esp__session_failed(void)
{
    if (s_offering)
        ESP_LOGW(TAG, "tls.session_dropped: the handshake offering it failed");
    iotd_esp_session_erase();
}

/* A resumed session keeps its master secret; a full handshake makes a new
 * one. */
static bool resumed(const mbedtls_ssl_session *fresh)
{
    return s_offering &&
           memcmp(fresh->MBEDTLS_PRIVATE(master), s_offered.saved_session.MBEDTLS_PRIVATE(master),
                  sizeof(fresh->MBEDTLS_PRIVATE(master))) == 0;
}

void iotd_esp__session_keep(const iotd_esp *esp, esp_tls_t *tls)
{
    size_t len = 0;

    /* Allocated by esp-tls; mbedTLS exports a connection's session once. */
    esp_tls_client_session_t *fresh = esp_tls_get_client_session(tls);
    if (fresh == NULL) {
        iotd_esp_session_erase();
        return;
    }
    bool again = resumed(&fresh->saved_session);
    s_stats.handshakes++;
    s_stats.resumed += again ? 1u : 0u;
    ESP_LOGD(TAG, "tls.handshake: %s", again ? "resumed" : "full");
    drop_offered();
    /* Serialized straight into the RTC slot, then packed around it. */
    if (!esp->session_bound ||
        mbedtls_ssl_session_save(&fresh->saved_session, s_record + IOTD_TLS_RECORD_HEAD,
                                 IOTD_ESP_SESSION_MAX, &len) != 0 ||
        iotd_tls_record_pack(esp->session_binding, s_record + IOTD_TLS_RECORD_HEAD, len, s_record,
                             sizeof(s_record), &len) != IOTD_OK) {
        ESP_LOGW(TAG, "tls.session_not_kept: larger than %u bytes or not serializable",
                 (unsigned)IOTD_ESP_SESSION_MAX);
        iotd_esp_session_erase();
    }
    esp_tls_free_client_session(fresh);
}
