/* The device's certificate from enrollment (EST) and its renewal, on the
 * core's enrollment machine (iotd/enroll.h) over the ESP-IDF credential
 * slots (iotd_esp/cred.h, NVS namespace "cred") and EST transport
 * (iotd_esp/est.h).
 *
 * At boot (enrollment_boot), in this order:
 *   1. the slots hold an active certificate: the device uses it (not the
 *      "ident" partition's certificate), and renews it by itself;
 *   2. else an enrollment token (NVS "cfg"/"enroll_token", written at
 *      install time) or a bootstrap certificate ("ident"/"boot_cert" and
 *      "boot_key") is there: the device makes its key, enrolls, and waits
 *      (with the machine's backoff) until it has a certificate; the token
 *      is erased from NVS once it has been used;
 *   3. else nothing changes: the "ident" partition's identity (or the CSR
 *      flow) as before.
 * The CA the gateway's certificate must chain to is "ident"/"ca" in every
 * case; the device ID to enroll is "cfg"/"device_id" (or
 * CONFIG_IOTD_DEVICE_ID), afterwards the certificate's CN.
 *
 * Deep sleep: the machine (its schedule, backoff and jitter) is kept in
 * RTC memory like the device object; enrollment_crc() goes into the
 * resume tag, and a machine whose CRC does not match is read again from
 * the slots in NVS (iotd_enroll_init), which loses only the backoff.
 */
#ifndef FW_ENROLLMENT_H
#define FW_ENROLLMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "iotd_esp/port.h"

#include "identity.h"

typedef enum enrollment_result {
    ENROLLMENT_OFF,    /* no enrolled certificate and nothing to enroll with */
    ENROLLMENT_READY,  /* id holds the active slot's certificate, key and the CA */
    ENROLLMENT_BROKEN, /* logged: storage or configuration that needs a person */
} enrollment_result;

/* esp is the port object whose clock the machine uses (it may still be
 * uninitialised: its uptime base is then 0); it outlives the machine.
 * resumed: woken from deep sleep with a valid resume tag, whose enrollment
 * CRC is crc. Blocks until the first enrollment has a certificate. */
enrollment_result enrollment_boot(const settings *s, iotd_esp *esp, identity *id, bool resumed,
                                  uint32_t crc);

/* One step of the machine at uptime now_ms, when enrollment_boot answered
 * ENROLLMENT_READY (else UINT32_MAX): the milliseconds until it wants the
 * next. *renewed is set when a new certificate became the active one. */
uint32_t enrollment_step(uint64_t now_ms, bool *renewed);

/* The active slot's certificate and key into id (after *renewed). */
bool enrollment_reload(identity *id);

/* CRC-32 of the machine, for the resume tag before deep sleep. */
uint32_t enrollment_crc(void);

#endif
