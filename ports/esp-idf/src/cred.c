/* See iotd_esp/cred.h. */
#include "iotd_esp/cred.h"

#include <string.h>

#include "esp_log.h"

#include "pem.h"

static const char *TAG = "iotd";

static const char *const KEY_NAME[2] = {"s0.key", "s1.key"};
static const char *const CRT_NAME[2] = {"s0.crt", "s1.crt"};

iotd_status iotd_esp_cred_open(iotd_esp_cred *c, const char *nvs_namespace, const char *device_id)
{
    memset(c, 0, sizeof(*c));
    c->device_id = device_id;
    esp_err_t err = nvs_open(nvs_namespace, NVS_READWRITE, &c->nvs);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "cred.open_failed: %s", esp_err_to_name(err));
        return IOTD_EIO;
    }
    return IOTD_OK;
}

void iotd_esp_cred_close(iotd_esp_cred *c)
{
    nvs_close(c->nvs);
}

/* The slot index of `slot`: "active" names the active one (0 when never set). */
static unsigned slot_index(const iotd_esp_cred *c, iotd_cred_slot slot)
{
    uint8_t active = 0;
    if (nvs_get_u8(c->nvs, "active", &active) != ESP_OK || active > 1)
        active = 0;
    return slot == IOTD_CRED_ACTIVE ? active : 1u - active;
}

static iotd_status get_blob(const iotd_esp_cred *c, const char *name, void *buf, size_t cap,
                            size_t *len)
{
    size_t n = cap;
    esp_err_t err = nvs_get_blob(c->nvs, name, buf, &n);
    if (err == ESP_ERR_NVS_NOT_FOUND)
        return IOTD_ENOENT;
    if (err != ESP_OK)
        return err == ESP_ERR_NVS_INVALID_LENGTH ? IOTD_ECORRUPT : IOTD_EIO;
    *len = n;
    return IOTD_OK;
}

static iotd_status set_blob(const iotd_esp_cred *c, const char *name, const void *data, size_t len)
{
    esp_err_t err = len > 0 ? nvs_set_blob(c->nvs, name, data, len) : nvs_erase_key(c->nvs, name);
    if (err == ESP_ERR_NVS_NOT_FOUND)
        err = ESP_OK;
    if (err == ESP_OK)
        err = nvs_commit(c->nvs);
    return err == ESP_OK ? IOTD_OK : IOTD_EIO;
}

iotd_status iotd_esp_cred_load(iotd_esp_cred *c, iotd_cred_slot slot)
{
    unsigned i = slot_index(c, slot);
    iotd_status st = get_blob(c, CRT_NAME[i], c->chain, sizeof(c->chain), &c->chain_len);
    if (st == IOTD_OK)
        st = get_blob(c, KEY_NAME[i], c->key, sizeof(c->key), &c->key_len);
    return st;
}

iotd_status iotd_esp_cred_load_pem(iotd_esp_cred *c, iotd_cred_slot slot, char *cert_pem,
                                   size_t cert_cap, char *key_pem, size_t key_cap)
{
    iotd_status st = iotd_esp_cred_load(c, slot);

    if (st == IOTD_ECORRUPT ||
        (st == IOTD_OK && (!iotd_esp__pem_chain(c->chain, c->chain_len, cert_pem, cert_cap) ||
                           !iotd_esp__pem_key(c->key, c->key_len, key_pem, key_cap))))
        st = IOTD_ECORRUPT;
    memset(c->key, 0, sizeof(c->key));
    return st;
}

static iotd_status key_generate(void *ctx)
{
    iotd_esp_cred *c = ctx;
    unsigned i = slot_index(c, IOTD_CRED_CANDIDATE);
    iotd_status st = set_blob(c, CRT_NAME[i], NULL, 0);
    if (st == IOTD_OK)
        st = iotd_mbedtls_key_generate(c->key, sizeof(c->key), &c->key_len);
    if (st == IOTD_OK)
        st = set_blob(c, KEY_NAME[i], c->key, c->key_len);
    return st;
}

static iotd_status csr_make(void *ctx, uint8_t *der, size_t cap, size_t *len)
{
    iotd_esp_cred *c = ctx;
    unsigned i = slot_index(c, IOTD_CRED_CANDIDATE);
    iotd_status st = get_blob(c, KEY_NAME[i], c->key, sizeof(c->key), &c->key_len);
    if (st != IOTD_OK)
        return st == IOTD_ENOENT ? st : IOTD_EIO;
    return iotd_mbedtls_csr(c->key, c->key_len, c->device_id, der, cap, len);
}

/* The first certificate of a stored chain: a DER SEQUENCE, its length from
 * its header. */
static size_t first_cert_len(const uint8_t *p, size_t n)
{
    if (n < 4 || p[0] != 0x30)
        return 0;
    if (p[1] < 0x80)
        return 2u + p[1] <= n ? 2u + p[1] : 0;
    if (p[1] == 0x82 && n >= 4) {
        size_t l = 4u + ((size_t)p[2] << 8) + p[3];
        return l <= n ? l : 0;
    }
    return 0;
}

static iotd_status cert_info(void *ctx, iotd_cred_slot slot, iotd_cert_info *info)
{
    iotd_esp_cred *c = ctx;
    unsigned i = slot_index(c, slot);
    iotd_status st = get_blob(c, CRT_NAME[i], c->chain, sizeof(c->chain), &c->chain_len);
    if (st != IOTD_OK)
        return st;
    size_t first = first_cert_len(c->chain, c->chain_len);
    return first == 0 ? IOTD_ECORRUPT : iotd_mbedtls_cert_validity(c->chain, first, info);
}

static iotd_status candidate_store(void *ctx, const uint8_t *p7, size_t len)
{
    iotd_esp_cred *c = ctx;
    unsigned i = slot_index(c, IOTD_CRED_CANDIDATE);
    const uint8_t *crt = NULL;
    size_t crt_len = 0, used = 0;
    iotd_status st = get_blob(c, KEY_NAME[i], c->key, sizeof(c->key), &c->key_len);
    if (st != IOTD_OK)
        return st;
    if (iotd_mbedtls_pkcs7_cert(p7, len, 0, &crt, &crt_len) != IOTD_OK ||
        iotd_mbedtls_cert_matches_key(crt, crt_len, c->key, c->key_len) != IOTD_OK)
        return IOTD_ECORRUPT;
    for (size_t k = 0; iotd_mbedtls_pkcs7_cert(p7, len, k, &crt, &crt_len) == IOTD_OK; k++) {
        if (used + crt_len > sizeof(c->chain))
            return IOTD_ECORRUPT;
        memcpy(c->chain + used, crt, crt_len);
        used += crt_len;
    }
    c->chain_len = used;
    return set_blob(c, CRT_NAME[i], c->chain, used);
}

static iotd_status commit(void *ctx)
{
    iotd_esp_cred *c = ctx;
    iotd_cert_info info;
    unsigned next = slot_index(c, IOTD_CRED_CANDIDATE);
    iotd_status st = cert_info(c, IOTD_CRED_CANDIDATE, &info);
    if (st != IOTD_OK)
        return st == IOTD_ENOENT ? st : IOTD_EIO;
    esp_err_t err = nvs_set_u8(c->nvs, "active", (uint8_t)next);
    if (err == ESP_OK)
        err = nvs_commit(c->nvs);
    return err == ESP_OK ? IOTD_OK : IOTD_EIO;
}

static iotd_status candidate_drop(void *ctx)
{
    iotd_esp_cred *c = ctx;
    unsigned i = slot_index(c, IOTD_CRED_CANDIDATE);
    iotd_status st = set_blob(c, CRT_NAME[i], NULL, 0);
    return st == IOTD_OK ? set_blob(c, KEY_NAME[i], NULL, 0) : st;
}

static iotd_status cacerts_store(void *ctx, const uint8_t *p7, size_t len)
{
    iotd_esp_cred *c = ctx;
    const uint8_t *crt = NULL;
    size_t crt_len = 0;
    if (iotd_mbedtls_pkcs7_cert(p7, len, 0, &crt, &crt_len) != IOTD_OK)
        return IOTD_ECORRUPT;
    return len <= 4000u ? set_blob(c, "cacerts", p7, len) : IOTD_ECORRUPT;
}

void iotd_esp_cred_port(iotd_esp_cred *c, iotd_cred_port *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = c;
    out->key_generate = key_generate;
    out->csr_make = csr_make;
    out->cert_info = cert_info;
    out->candidate_store = candidate_store;
    out->commit = commit;
    out->candidate_drop = candidate_drop;
    out->cacerts_store = cacerts_store;
}
