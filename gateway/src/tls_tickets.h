/* TLS session tickets for the device listener: OpenSSL seals and opens
 * them with the keys of a gw_ticket_keys ring (ticketkeys.h), so the keys
 * rotate on our schedule and every worker thread shares them. Which
 * sessions may resume is decided elsewhere (tls.c admits a resumed
 * session like a new one). */
#ifndef GW_TLS_TICKETS_H
#define GW_TLS_TICKETS_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "iot/status.h"

/* Turns stateless session tickets on for ctx (TLS 1.2 and 1.3; one ticket
 * per full handshake; sessions last lifetime_s; no early data), with a key
 * ring that lives and dies with ctx. */
iot_status gw_tls_tickets_enable(SSL_CTX *ctx, int64_t lifetime_s, iot_err *err);

#endif
