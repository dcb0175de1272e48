/* Names that become certificate identities.
 *
 * A device ID is the subject CN of the device's certificate and a segment of
 * the MQTT topic its readings are published on, so the charset excludes
 * every MQTT separator or wildcard ('/', '+', '#'), '$' (broker-reserved
 * topics), whitespace and control characters. The same rule applies to the
 * names of the gateway, broker and operator certificates, since the broker's
 * ACL names them in the subject it uses as username ("CN=name,OU=role,..."):
 * the charset has no ',', '=', '+' or '\', so a name cannot add a
 * component of its own to that subject.
 */
#ifndef IOT_IDENTITY_H
#define IOT_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "iot/status.h"
#include "iotd/protocol.h"

#define IOT_ID_MAX IOTD_PROTOCOL_DEVICE_ID_MAX

/* True if s is 1..64 chars of [A-Za-z0-9._-] not starting with '.': the
 * device ID rule of the protocol (iotd_protocol_device_id_valid). */
bool iot_id_is_valid(const char *s);

/* As iot_id_is_valid, with an error that says what is wrong and where.
 * `what` names the value in the message ("device ID", "server name"). */
iot_status iot_id_check(const char *what, const char *s, iot_err *err);

/* DNS name for a subjectAltName: labels of [A-Za-z0-9-], not starting or
 * ending with '-', 1..63 chars each, 253 chars in all. No wildcards. */
bool iot_dns_name_is_valid(const char *s);

#endif
