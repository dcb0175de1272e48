/* The TLS session of the device's POSTs (readings and health), kept across
 * deep sleep so that a wake-up resumes it instead of making a full
 * handshake: no ECDHE and no ECDSA signature on the device, a shorter
 * exchange on the air.
 *
 * Where it is kept: RTC memory (RTC_DATA_ATTR), never flash. RTC memory
 * survives deep sleep only; a power cut, a brown-out, a watchdog or any
 * other reset loses it (the bootloader loads RTC data afresh except after
 * a deep-sleep wake-up), and the next connection makes a full handshake.
 * Not NVS: with TLS 1.2 tickets the gateway may send a new ticket on every
 * resumption, and writing the session to flash at each wake-up would wear
 * it and put a master secret in flash.
 *
 * What it holds: the device core's session record (iotd/tls_session.h):
 * mbedTLS's serialized session (master secret, session ticket, the
 * gateway's certificate), a CRC-32, and a SHA-256 binding over the
 * device's certificate and the CA, as PEM (the device has no CRL). It is
 * offered only when the binding matches the credentials in use, so after
 * a renewal the old session is never offered; a damaged record is
 * discarded. The gateway decides whether it resumes: when it refuses (the
 * ticket's key has rotated, the device was revoked or renewed), mbedTLS
 * goes on with a full handshake by itself (ssl_tls12_client.c, server
 * hello: the session ID is not echoed), and a handshake that fails drops
 * the session.
 *
 * Erased: by the factory reset (iotd_esp/reset.h, with the credentials)
 * and when the port takes a renewed certificate (iotd_esp_set_identity).
 */
#ifndef IOTD_ESP_SESSION_H
#define IOTD_ESP_SESSION_H

#include <stdint.h>

/* The longest serialized session kept. The simulator's (mbedTLS 2.28,
 * the same fields) is 1,310 bytes against the gateway: a TLS 1.2 ticket
 * holding the device's certificate, plus the gateway's certificate. A
 * larger one is not kept. */
#define IOTD_ESP_SESSION_MAX 2048

/* Handshakes of the POST connection since boot, and how many resumed. */
typedef struct iotd_esp_session_stats {
    uint32_t handshakes;
    uint32_t resumed;
} iotd_esp_session_stats;

/* Forgets the kept session (RTC memory wiped). */
void iotd_esp_session_erase(void);

iotd_esp_session_stats iotd_esp_session_get_stats(void);

#endif
