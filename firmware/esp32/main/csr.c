/* Key generation and the certificate request with mbedTLS 3.x, as ESP-IDF
 * 5.x ships it: mbedtls_pk_setup, mbedtls_ecp_gen_key, mbedtls_pk_write_key_pem,
 * mbedtls_pk_parse_key, mbedtls_x509write_csr_* (x509_csr.h). iotctl accepts
 * a CSR with an ECDSA P-256 key and exactly one CN equal to the device ID
 * (docs/pki.md); it sets the rest of the certificate's subject itself. */
#include "csr.h"

#include <string.h>

#include "esp_log.h"
#include "esp_random.h"
#include "mbedtls/ecp.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"
#include "mbedtls/x509_csr.h"
#include "nvs.h"

#include "identity.h"

#if !defined(MBEDTLS_X509_CSR_WRITE_C) || !defined(MBEDTLS_PEM_WRITE_C)
#error "the on-device CSR needs MBEDTLS_X509_CSR_WRITE_C and MBEDTLS_PEM_WRITE_C"
#endif

static const char *TAG = "iotd";

static int rng(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    esp_fill_random(buf, len);
    return 0;
}

static esp_err_t make_key(char *pem, size_t cap)
{
    mbedtls_pk_context pk;
    int rc;

    mbedtls_pk_init(&pk);
    rc = mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc != 0)
        goto out;
    rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk), rng, NULL);
    if (rc != 0)
        goto out;
    rc = mbedtls_pk_write_key_pem(&pk, (unsigned char *)pem, cap);
out:
    mbedtls_pk_free(&pk);
    return rc == 0 ? ESP_OK : ESP_FAIL;
}

/* A new key, stored under h before it is used. */
static esp_err_t store_new_key(nvs_handle_t h, char *key_pem, size_t cap)
{
    esp_err_t err = make_key(key_pem, cap);
    if (err != ESP_OK)
        goto out;
    err = nvs_set_str(h, "key", key_pem);
    if (err != ESP_OK)
        goto out;
    err = nvs_commit(h);
    if (err != ESP_OK)
        goto out;
    ESP_LOGI(TAG, "identity.key_made: a new ECDSA P-256 key is stored on the device");
out:
    return err;
}

esp_err_t csr_key(char *key_pem, size_t cap)
{
    nvs_handle_t h;
    size_t n = cap;
    esp_err_t err = nvs_open(DEVKEY_NAMESPACE, NVS_READWRITE, &h);

    if (err != ESP_OK)
        return err;
    err = nvs_get_str(h, "key", key_pem, &n);
    if (err == ESP_ERR_NVS_NOT_FOUND)
        err = store_new_key(h, key_pem, cap);
    nvs_close(h);
    return err;
}

esp_err_t csr_request(const char *device_id, const char *key_pem, char *out, size_t cap)
{
    static const char prefix[] = "CN=";
    char subject[IDENTITY_ID_MAX + sizeof(prefix)];
    mbedtls_pk_context pk;
    mbedtls_x509write_csr req;
    size_t id_len = strlen(device_id);
    int rc;

    if (id_len == 0 || id_len >= IDENTITY_ID_MAX)
        return ESP_ERR_INVALID_ARG;
    memcpy(subject, prefix, sizeof(prefix) - 1);
    memcpy(subject + sizeof(prefix) - 1, device_id, id_len + 1);

    mbedtls_pk_init(&pk);
    mbedtls_x509write_csr_init(&req);
    rc = mbedtls_pk_parse_key(&pk, (const unsigned char *)key_pem, strlen(key_pem) + 1, NULL, 0,
                              rng, NULL);
    if (rc != 0)
        goto out;
    rc = mbedtls_x509write_csr_set_subject_name(&req, subject);
    if (rc != 0)
        goto out;
    mbedtls_x509write_csr_set_key(&req, &pk);
    mbedtls_x509write_csr_set_md_alg(&req, MBEDTLS_MD_SHA256);
    rc = mbedtls_x509write_csr_pem(&req, (unsigned char *)out, cap, rng, NULL);
out:
    mbedtls_x509write_csr_free(&req);
    mbedtls_pk_free(&pk);
    return rc == 0 ? ESP_OK : ESP_FAIL;
}
