/* Status codes of the device core.
 *
 * Every core function that can fail returns an iotd_status. The core never
 * prints; what went wrong is the return value, the device statistics and the
 * events it hands to the port's log function.
 */
#ifndef IOTD_STATUS_H
#define IOTD_STATUS_H

typedef enum iotd_status {
    IOTD_OK = 0,
    IOTD_EINVAL,   /* a value given by the caller is malformed or out of range */
    IOTD_ENOENT,   /* the key or record does not exist */
    IOTD_ENOSPC,   /* a caller buffer is too small for what must go in it */
    IOTD_EIO,      /* a port operation (storage, sensor) failed */
    IOTD_ECORRUPT, /* stored data is present but not what it should be */
    IOTD_ENET,     /* no HTTP response: connect, TLS or timeout failure */
    IOTD_ERANGE,   /* the sequence numbers are used up */
    IOTD_ESTATE,   /* the object is in the wrong state for this call */
} iotd_status;

/* Short, stable description of a status code ("storage I/O failed", ...). */
const char *iotd_strerror(iotd_status status);

#endif
