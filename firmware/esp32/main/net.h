/* Wi-Fi station and SNTP for the application. */
#ifndef FW_NET_H
#define FW_NET_H

#include <stdbool.h>
#include <stdint.h>

/* Starts the station and waits up to wait_ms for an IP address. The
 * station keeps reconnecting on its own after a loss. False when the
 * driver could not start (true but not yet connected is normal: the
 * device queues until the network is there). */
bool net_start(const char *ssid, const char *password, uint32_t wait_ms);

/* Whether the station has an IP address now. */
bool net_connected(void);

/* Starts SNTP against server; when the clock was never set, waits up to
 * wait_ms (0: not at all) for the first synchronisation. */
void net_sntp_start(const char *server, uint32_t wait_ms);

/* Stops SNTP and Wi-Fi (before deep sleep). */
void net_stop(void);

#endif
