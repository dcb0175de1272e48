/* Where the device's identity and settings come from.
 *
 * Identity (NVS partition "ident", namespace "ident", written with
 * nvs_partition_gen.py): "cert", "ca" and, in the development flow, "key",
 * all PEM strings. A key made on the device (CONFIG_IOTD_CSR_ON_DEVICE)
 * lives instead in the default partition, namespace "devkey", so
 * re-flashing "ident" with a renewed certificate never erases it. The
 * device ID is the CN of the certificate.
 *
 * For enrollment (enrollment.h) the same namespace may hold, instead of
 * "cert" and "key", the factory bootstrap credential: "boot_cert" and
 * "boot_key" (PEM), besides "ca".
 *
 * Settings (namespace "cfg" of the default partition, optional): "ssid",
 * "password", "gateway_url", "sntp_server" and "device_id" (for a CSR made
 * on the device) override the Kconfig values; "fw_mode" and "fw_window"
 * override the update setting (read as fwrules.h says).
 */
#ifndef FW_IDENTITY_H
#define FW_IDENTITY_H

#include <stdbool.h>

#include "esp_err.h"

#define IDENTITY_ID_MAX    65   /* 64 characters (docs/pki.md) and the NUL */
#define IDENTITY_PEM_MAX   2048 /* a P-256 certificate is under 1 KiB */
#define IDENTITY_CHAIN_MAX 3200 /* an enrolled certificate and its issuing CAs */
#define IDENTITY_KEY_MAX   1024

#define IDENTITY_PARTITION "ident"
#define DEVKEY_NAMESPACE   "devkey"

typedef struct identity {
    char device_id[IDENTITY_ID_MAX];
    char cert[IDENTITY_CHAIN_MAX];
    char key[IDENTITY_KEY_MAX];
    char ca[IDENTITY_PEM_MAX];
} identity;

typedef struct settings {
    char ssid[33];
    char password[64];
    char gateway_url[128];
    char sntp_server[64];
    char device_id[IDENTITY_ID_MAX]; /* only for the CSR of a key made on the device */
    char fw_mode[8];                 /* "" unless NVS has one: the Kconfig choice holds */
    char fw_window[8];
} settings;

typedef enum identity_state {
    IDENTITY_READY,   /* certificate, CA and a matching key */
    IDENTITY_NO_CERT, /* nothing installed yet (a key may exist: CSR flow) */
    IDENTITY_BROKEN,  /* something is there but unusable; logged */
} identity_state;

/* Kconfig values, overridden by the "cfg" namespace. */
void settings_load(settings *s);

/* Loads and checks the identity: the certificate parses, its CN is a
 * device ID, the key is the certificate's. */
identity_state identity_load(identity *id);

/* The bootstrap credential of the factory, for enrollment. */
typedef struct bootstrap {
    char cert[IDENTITY_PEM_MAX];
    char key[IDENTITY_KEY_MAX];
} bootstrap;

/* For enrollment: the CA into id->ca (ESP_OK) and, when the partition has
 * one, the bootstrap certificate and key into *boot (boot->cert empty when
 * there is none). ESP_ERR_NVS_NOT_FOUND when there is no CA. */
esp_err_t identity_load_for_enrollment(identity *id, bootstrap *boot);

/* Checks id->cert and id->key as identity_load does (and sets
 * id->device_id from the CN), for a certificate that came from elsewhere. */
identity_state identity_check(identity *id);

#endif
