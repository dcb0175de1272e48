/* Identity and settings from NVS (or, for development, from the image).
 * NVS calls: nvs_flash_init_partition / nvs_flash_secure_init_partition,
 * nvs_open_from_partition, nvs_open, nvs_get_str (ESP-IDF 5.x nvs.h,
 * nvs_flash.h). Certificate checks with mbedTLS 3.x (ESP-IDF 5.x ships
 * 3.4 to 3.6): mbedtls_pk_parse_key and mbedtls_pk_check_pair take an RNG
 * since 3.0. */
#include "identity.h"

#include <string.h>

#include "esp_log.h"
#include "esp_partition.h"
#include "esp_random.h"
#include "mbedtls/pk.h"
#include "mbedtls/x509_crt.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "sdkconfig.h"

#include "dn.h"

static const char *TAG = "iotd";

#define IDENT_NAMESPACE    "ident"
#define SETTINGS_NAMESPACE "cfg"

static bool copy_str(char *out, size_t cap, const char *in)
{
    size_t n = strlen(in);
    if (n >= cap)
        return false;
    memcpy(out, in, n + 1);
    return true;
}

/* Replaces *out with the NVS string when there is one that fits; NVS
 * leaves the buffer alone on any error. */
static void override(nvs_handle_t h, const char *key, char *out, size_t cap)
{
    size_t n = cap;
    esp_err_t err = nvs_get_str(h, key, out, &n);

    if (err != ESP_OK && err != ESP_ERR_NVS_NOT_FOUND)
        ESP_LOGW(TAG, "settings.ignored: cfg/%s: %s", key, esp_err_to_name(err));
}

void settings_load(settings *s)
{
    nvs_handle_t h;

    memset(s, 0, sizeof(*s));
    if (!copy_str(s->ssid, sizeof(s->ssid), CONFIG_IOTD_WIFI_SSID) ||
        !copy_str(s->password, sizeof(s->password), CONFIG_IOTD_WIFI_PASSWORD) ||
        !copy_str(s->gateway_url, sizeof(s->gateway_url), CONFIG_IOTD_GATEWAY_URL) ||
        !copy_str(s->sntp_server, sizeof(s->sntp_server), CONFIG_IOTD_SNTP_SERVER) ||
        !copy_str(s->device_id, sizeof(s->device_id), CONFIG_IOTD_DEVICE_ID))
        ESP_LOGW(TAG, "settings.too_long: a Kconfig setting does not fit and is left empty");
    /* No "cfg" namespace is the usual case: Kconfig holds everything. */
    if (nvs_open(SETTINGS_NAMESPACE, NVS_READONLY, &h) != ESP_OK)
        return;
    override(h, "ssid", s->ssid, sizeof(s->ssid));
    override(h, "password", s->password, sizeof(s->password));
    override(h, "gateway_url", s->gateway_url, sizeof(s->gateway_url));
    override(h, "sntp_server", s->sntp_server, sizeof(s->sntp_server));
    override(h, "device_id", s->device_id, sizeof(s->device_id));
    override(h, "fw_mode", s->fw_mode, sizeof(s->fw_mode));
    override(h, "fw_window", s->fw_window, sizeof(s->fw_window));
    nvs_close(h);
}

static int rng(void *ctx, unsigned char *buf, size_t len)
{
    (void)ctx;
    esp_fill_random(buf, len);
    return 0;
}

#if CONFIG_IOTD_IDENTITY_EMBEDDED

/* EMBED_TXTFILES adds a NUL; the symbol names come from the file names. */
extern const char embedded_cert[] __asm__("_binary_device_cert_pem_start");
extern const char embedded_key[] __asm__("_binary_device_key_pem_start");
extern const char embedded_ca[] __asm__("_binary_ca_cert_pem_start");

static esp_err_t load_for_enrollment(identity *id, bootstrap *boot)
{
    boot->cert[0] = '\0';
    return copy_str(id->ca, sizeof(id->ca), embedded_ca) ? ESP_OK : ESP_ERR_NO_MEM;
}

static identity_state load(identity *id)
{
    ESP_LOGW(TAG, "identity.embedded: development identity built into the image");
    if (!copy_str(id->cert, sizeof(id->cert), embedded_cert) ||
        !copy_str(id->key, sizeof(id->key), embedded_key) ||
        !copy_str(id->ca, sizeof(id->ca), embedded_ca)) {
        ESP_LOGE(TAG, "identity.too_large: an embedded PEM file is larger than its buffer");
        return IDENTITY_BROKEN;
    }
    return IDENTITY_READY;
}

#else

static esp_err_t open_ident(nvs_handle_t *h)
{
    esp_err_t err;
#if CONFIG_NVS_ENCRYPTION
    /* nvs_flash_init() sets encryption up for "nvs" by itself; another
     * partition needs the keys passed explicitly. They come from the key
     * protection scheme chosen in menuconfig (NVS Security Provider): the
     * HMAC scheme derives them from the eFuse key
     * CONFIG_NVS_SEC_HMAC_EFUSE_KEY_ID, the flash-encryption scheme reads
     * them from the encrypted "nvs_keys" partition. */
    nvs_sec_cfg_t keys;
    nvs_sec_scheme_t *scheme = nvs_flash_get_default_security_scheme();
    err = scheme != NULL ? nvs_flash_read_security_cfg_v2(scheme, &keys) : ESP_ERR_NOT_FOUND;
    if (err != ESP_OK)
        goto out;
    err = nvs_flash_secure_init_partition(IDENTITY_PARTITION, &keys);
#else
    err = nvs_flash_init_partition(IDENTITY_PARTITION);
#endif
    if (err != ESP_OK)
        goto out;
    err = nvs_open_from_partition(IDENTITY_PARTITION, IDENT_NAMESPACE, NVS_READONLY, h);
out:
    return err;
}

static esp_err_t read_str(nvs_handle_t h, const char *key, char *out, size_t cap)
{
    size_t n = cap;
    return nvs_get_str(h, key, out, &n);
}

/* A key made on the device, kept apart from the "ident" partition. */
static esp_err_t read_device_key(char *out, size_t cap)
{
    nvs_handle_t h;
    esp_err_t err = nvs_open(DEVKEY_NAMESPACE, NVS_READONLY, &h);

    if (err != ESP_OK)
        return err;
    err = read_str(h, "key", out, cap);
    nvs_close(h);
    return err;
}

/* The certificate, the CA and the key: the provisioned key, else the one
 * made on the device. */
static identity_state read_identity(nvs_handle_t h, identity *id)
{
    identity_state st = IDENTITY_NO_CERT;
    esp_err_t err = read_str(h, "cert", id->cert, sizeof(id->cert));

    if (err == ESP_ERR_NVS_NOT_FOUND)
        goto out;
    st = IDENTITY_BROKEN;
    if (err != ESP_OK)
        goto out;
    err = read_str(h, "ca", id->ca, sizeof(id->ca));
    if (err != ESP_OK)
        goto out;
    err = read_str(h, "key", id->key, sizeof(id->key));
    if (err == ESP_ERR_NVS_NOT_FOUND)
        err = read_device_key(id->key, sizeof(id->key));
    if (err != ESP_OK)
        goto out;
    st = IDENTITY_READY;
out:
    if (st == IDENTITY_BROKEN)
        ESP_LOGE(TAG, "identity.incomplete: certificate, CA and key are needed: %s",
                 esp_err_to_name(err));
    return st;
}

static identity_state load(identity *id)
{
    nvs_handle_t h;
    esp_err_t err = open_ident(&h);

    if (err == ESP_ERR_NVS_NOT_FOUND)
        return IDENTITY_NO_CERT; /* the partition was never written */
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "identity.unreadable: partition %s: %s", IDENTITY_PARTITION,
                 esp_err_to_name(err));
        return IDENTITY_BROKEN;
    }
    identity_state st = read_identity(h, id);
    nvs_close(h);
    return st;
}

static esp_err_t load_for_enrollment(identity *id, bootstrap *boot)
{
    nvs_handle_t h;
    esp_err_t err = open_ident(&h);

    boot->cert[0] = '\0';
    boot->key[0] = '\0';
    if (err != ESP_OK)
        return err;
    err = read_str(h, "ca", id->ca, sizeof(id->ca));
    if (err == ESP_OK && read_str(h, "boot_cert", boot->cert, sizeof(boot->cert)) == ESP_OK &&
        read_str(h, "boot_key", boot->key, sizeof(boot->key)) != ESP_OK) {
        ESP_LOGW(TAG, "enroll.bootstrap_incomplete: boot_cert without boot_key; not used");
        boot->cert[0] = '\0';
    }
    nvs_close(h);
    return err;
}

#endif

/* The certificate parses, names a device, and belongs to the key: a
 * mismatch found here is a clear log line instead of a failed handshake. */
static identity_state check(identity *id)
{
    identity_state st = IDENTITY_BROKEN;
    mbedtls_x509_crt crt;
    mbedtls_pk_context key;
    char dn[192];

    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)id->cert, strlen(id->cert) + 1) != 0) {
        ESP_LOGE(TAG, "identity.bad_certificate: the device certificate does not parse");
        goto out;
    }
    if (mbedtls_x509_dn_gets(dn, sizeof(dn), &crt.subject) < 0 ||
        !dn_common_name(dn, id->device_id, sizeof(id->device_id))) {
        ESP_LOGE(TAG, "identity.bad_certificate: no usable CN in the certificate subject");
        goto out;
    }
    if (mbedtls_pk_parse_key(&key, (const unsigned char *)id->key, strlen(id->key) + 1, NULL, 0,
                             rng, NULL) != 0) {
        ESP_LOGE(TAG, "identity.bad_key: the private key does not parse");
        goto out;
    }
    if (mbedtls_pk_check_pair(&crt.pk, &key, rng, NULL) != 0) {
        ESP_LOGE(TAG, "identity.key_mismatch: the key is not the certificate's (%s)",
                 id->device_id);
        goto out;
    }
    st = IDENTITY_READY;
out:
    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    return st;
}

esp_err_t identity_load_for_enrollment(identity *id, bootstrap *boot)
{
    memset(id, 0, sizeof(*id));
    return load_for_enrollment(id, boot);
}

identity_state identity_check(identity *id)
{
    return check(id);
}

identity_state identity_load(identity *id)
{
    identity_state st;

    memset(id, 0, sizeof(*id));
    st = load(id);
    if (st == IDENTITY_READY)
        st = check(id);
    if (st == IDENTITY_READY)
        ESP_LOGI(TAG, "identity.loaded: device %s", id->device_id);
    return st;
}
