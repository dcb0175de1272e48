/* Stand-in for ESP-IDF esp_tls.h (components/esp-tls, 5.2), the subset the
 * port uses: the client configuration keeps the real field names, types
 * and order up to tls_version, with the session-ticket option on
 * (CONFIG_ESP_TLS_CLIENT_SESSION_TICKETS, which the port requires). Unlike
 * the real header it leaves sdkconfig.h out: host tests build with -Wundef. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "esp_err.h"
#include "mbedtls/ssl.h"

#define ESP_ERR_ESP_TLS_BASE                 0x8000
#define ESP_ERR_MBEDTLS_SSL_HANDSHAKE_FAILED (ESP_ERR_ESP_TLS_BASE + 0x1A)
#define ESP_TLS_ERR_SSL_WANT_READ            MBEDTLS_ERR_SSL_WANT_READ
#define ESP_TLS_ERR_SSL_WANT_WRITE           MBEDTLS_ERR_SSL_WANT_WRITE

typedef struct esp_tls_last_error *esp_tls_error_handle_t;
typedef struct esp_tls_last_error {
    esp_err_t last_error;
    int esp_tls_error_code;
    int esp_tls_flags;
} esp_tls_last_error_t;

typedef struct esp_tls_client_session {
    mbedtls_ssl_session saved_session;
} esp_tls_client_session_t;

typedef struct psk_key_hint psk_hint_key_t;
typedef struct tls_keep_alive_cfg tls_keep_alive_cfg_t;
struct ifreq;

typedef enum { ESP_TLS_AF_UNSPEC = 0, ESP_TLS_AF_INET, ESP_TLS_AF_INET6 } esp_tls_addr_family_t;
typedef enum { ESP_TLS_VER_ANY = 0, ESP_TLS_VER_TLS_1_2, ESP_TLS_VER_TLS_1_3 } esp_tls_proto_ver_t;

typedef struct esp_tls_cfg {
    const char **alpn_protos;
    union {
        const unsigned char *cacert_buf;
        const unsigned char *cacert_pem_buf;
    };
    union {
        unsigned int cacert_bytes;
        unsigned int cacert_pem_bytes;
    };
    union {
        const unsigned char *clientcert_buf;
        const unsigned char *clientcert_pem_buf;
    };
    union {
        unsigned int clientcert_bytes;
        unsigned int clientcert_pem_bytes;
    };
    union {
        const unsigned char *clientkey_buf;
        const unsigned char *clientkey_pem_buf;
    };
    union {
        unsigned int clientkey_bytes;
        unsigned int clientkey_pem_bytes;
    };
    const unsigned char *clientkey_password;
    unsigned int clientkey_password_len;
    bool use_ecdsa_peripheral;
    uint8_t ecdsa_key_efuse_blk;
    bool non_block;
    bool use_secure_element;
    int timeout_ms;
    bool use_global_ca_store;
    const char *common_name;
    bool skip_common_name;
    tls_keep_alive_cfg_t *keep_alive_cfg;
    const psk_hint_key_t *psk_hint_key;
    esp_err_t (*crt_bundle_attach)(void *conf);
    void *ds_data;
    bool is_plain_tcp;
    struct ifreq *if_name;
    esp_tls_client_session_t *client_session;
    esp_tls_addr_family_t addr_family;
    const int *ciphersuites_list;
    esp_tls_proto_ver_t tls_version;
} esp_tls_cfg_t;

typedef struct esp_tls esp_tls_t;

esp_tls_t *esp_tls_init(void);
int esp_tls_conn_http_new_sync(const char *url, const esp_tls_cfg_t *cfg, esp_tls_t *tls);
ssize_t esp_tls_conn_write(esp_tls_t *tls, const void *data, size_t datalen);
ssize_t esp_tls_conn_read(esp_tls_t *tls, void *data, size_t datalen);
int esp_tls_conn_destroy(esp_tls_t *tls);
esp_err_t esp_tls_get_error_handle(esp_tls_t *tls, esp_tls_error_handle_t *error_handle);
esp_tls_client_session_t *esp_tls_get_client_session(esp_tls_t *tls);
void esp_tls_free_client_session(esp_tls_client_session_t *client_session);
