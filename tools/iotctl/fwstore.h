/* The firmware side of the PKI directory, apart from the TLS CA:
 *
 *   DIR/firmware/                 0700
 *     keys/NAME.key               a signing key's private key, 0600 (dir 0700)
 *     keys/NAME.pub               its public key (PEM)
 *     keyring                     every key made here: name, ID, created,
 *                                 trusted or retired (the record)
 *     trusted-keys.pem            the public keys of the trusted ones: what
 *                                 every verifier is given (the trusted set)
 *     sequence                    the last sequence number signed, fleet-wide
 *     images/DIGEST.bin           released images, named by SHA-256
 *     images/DIGEST.manifest      and their manifests
 *     lock                        taken by every command, shared or exclusive
 *
 * The keyring and trusted-keys.pem are replaced whole (write, fsync,
 * rename). When they change together, the change that takes trust away is
 * written first, so an interrupted retire leaves the key untrusted.
 */
#ifndef IOTCTL_FWSTORE_H
#define IOTCTL_FWSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "iot/identity.h"
#include "iot/manifest_crypto.h"

#define FW_KEYS_MAX   IOT_MANIFEST_KEYS_MAX
#define FW_IMAGE_MAX  (32u * 1024 * 1024) /* larger than any device's app slot */
#define FW_KEY_ID_HEX (2 * IOTD_MANIFEST_KEY_ID_LEN)

typedef struct fw_key {
    char name[IOT_ID_MAX + 1];
    uint8_t id[IOTD_MANIFEST_KEY_ID_LEN];
    int64_t created;
    bool retired;
    int64_t retired_at; /* 0 while trusted */
} fw_key;

typedef struct fw_keyring {
    fw_key keys[FW_KEYS_MAX];
    size_t n;
} fw_keyring;

typedef struct fw_store {
    char dir[CLI_PATH_MAX]; /* DIR/firmware */
    char keys_dir[CLI_PATH_MAX];
    char keyring[CLI_PATH_MAX];
    char trusted[CLI_PATH_MAX];
    char sequence[CLI_PATH_MAX];
    char images[CLI_PATH_MAX];
    int lock_fd;
} fw_store;

/* Opens DIR/firmware: a writer creates it (0700) and holds the lock
 * exclusively, a reader shares it. The PKI directory must exist. */
iot_status fw_store_open(const cli_ctx *ctx, fw_store *s, bool write, iot_err *err);
void fw_store_close(fw_store *s);

/* The keyring; an empty one before the first key. */
iot_status fw_keyring_load(const fw_store *s, fw_keyring *ring, iot_err *err);
iot_status fw_keyring_save(const fw_store *s, const fw_keyring *ring, iot_err *err);
fw_key *fw_keyring_find(fw_keyring *ring, const char *name);
const fw_key *fw_keyring_find_id(const fw_keyring *ring,
                                 const uint8_t id[IOTD_MANIFEST_KEY_ID_LEN]);

/* DIR/firmware/keys/NAME.key or NAME.pub. */
iot_status fw_key_path(const fw_store *s, const char *name, bool private_key, char *buf,
                       iot_err *err);

/* Rewrites trusted-keys.pem from the public keys of the trusted keys. */
iot_status fw_trusted_export(const fw_store *s, const fw_keyring *ring, iot_err *err);

/* The trusted set, as the verifier takes it: from trusted-keys.pem (none
 * before the first key). */
iot_status fw_trusted_load(const fw_store *s, iotd_manifest_key *keys, size_t *n, iot_err *err);

/* The last sequence number signed (0: none yet), and recording a new one. */
iot_status fw_sequence_last(const fw_store *s, uint64_t *last, iot_err *err);
iot_status fw_sequence_record(const fw_store *s, uint64_t seq, iot_err *err);

#endif
