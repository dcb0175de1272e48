/* The CN of a distinguished name as mbedTLS prints it
 * ("O=IoT Telemetry, OU=device, CN=sensor-042"). No ESP-IDF dependency:
 * the host tests build this file. */
#ifndef FW_DN_H
#define FW_DN_H

#include <stdbool.h>
#include <stddef.h>

/* Copies the value of the last CN attribute of dn into out (cap bytes, NUL
 * included). False when there is none, it is empty or it does not fit. */
bool dn_common_name(const char *dn, char *out, size_t cap);

#endif
