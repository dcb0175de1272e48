/* The port's key-value storage: one small file per key in the device's
 * state directory.
 *
 * A set writes a temp file, fsyncs it, renames it over the key's file and
 * fsyncs the directory, so after a crash or power loss a key holds its old
 * or its new value, never a mix, and IOTD_OK means durable. The directory is
 * locked (flock) while open, so two processes cannot run the same device.
 */
#ifndef IOTD_POSIX_KV_H
#define IOTD_POSIX_KV_H

#include <stddef.h>

#include "iot/status.h"
#include "iotd/status.h"

#define IOTD_POSIX_KV_KEY_MAX  15 /* [a-z0-9.], as an ESP-IDF NVS key */
#define IOTD_POSIX_KV_BLOB_MAX 64

typedef struct iotd_posix_kv {
    int dirfd;  /* the state directory */
    int lockfd; /* holds the flock */
} iotd_posix_kv;

/* Opens (creating it 0700 if missing, parents included) and locks dir.
 * IOT_EBUSY when another process has it open. */
iot_status iotd_posix_kv_open(iotd_posix_kv *kv, const char *dir, iot_err *err);

void iotd_posix_kv_close(iotd_posix_kv *kv);

/* The contract of iotd_port's kv_get and kv_set (iotd/port.h). */
iotd_status iotd_posix_kv_get(iotd_posix_kv *kv, const char *key, void *buf, size_t cap,
                              size_t *len);
iotd_status iotd_posix_kv_set(iotd_posix_kv *kv, const char *key, const void *data, size_t len);

#endif
