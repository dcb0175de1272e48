/* Internal to the ESP-IDF port: what its source files share. */
#ifndef IOTD_ESP_PORT_INTERNAL_H
#define IOTD_ESP_PORT_INTERNAL_H

#include "iotd_esp/port.h"

/* A core message (or the gateway's body in it) as it reaches the console,
 * escaped; longer ones are cut. */
#define IOTD_ESP_LOG_MSG_MAX 160

/* Creates esp->http from the configuration (https.c). */
iotd_status iotd_esp__http_create(iotd_esp *esp, const iotd_esp_config *cfg);

/* Cleans esp->http up, if it exists. */
void iotd_esp__http_destroy(iotd_esp *esp);

/* The TLS session kept across deep sleep (session.c, iotd_esp/session.h).
 * bind computes esp's binding from the PEM in use; offer returns the kept
 * session when it was made under that binding (NULL: none, and a damaged
 * or foreign one is erased); keep stores the session of a connection that
 * has just completed an exchange; failed erases it after a handshake that
 * failed. */
void iotd_esp__session_bind(iotd_esp *esp, const char *cert_pem, const char *ca_pem);
esp_tls_client_session_t *iotd_esp__session_offer(const iotd_esp *esp);
void iotd_esp__session_keep(const iotd_esp *esp, esp_tls_t *tls);
void iotd_esp__session_failed(void);

/* Closes the POST connection, if open (tls_post.c). */
void iotd_esp__tls_close(iotd_esp *esp);

#endif
