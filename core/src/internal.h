/* Internal to the core: byte order and logging. */
#ifndef IOTD_INTERNAL_H
#define IOTD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "iotd/port.h"

/* Stored data is little-endian whatever the CPU, so a queue written by one
 * build is read by another. */
static inline void iotd__put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t iotd__get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void iotd__log(const iotd_port *port, iotd_log_level level, const char *event,
                             const char *msg)
{
    if (port->log != NULL)
        port->log(port->ctx, level, event, msg);
}

#endif
