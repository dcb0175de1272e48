/* Helpers of the gateway's unit tests that drive real programs (iotctl,
 * Mosquitto) and real sockets. */
#ifndef GW_TEST_H
#define GW_TEST_H

/* Runs a shell command made like printf; its system() status, or -1 when
 * the command would not fit. */
int gwt_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int gwt_free_port(void);

#endif
