/* Status codes and error details shared by the host programs.
 *
 * Library functions never print. They return an iot_status and, when given
 * a non-NULL iot_err, fill it with a one-line message that names the file,
 * value or peer at fault and, where there is one, what to do about it.
 */
#ifndef IOT_STATUS_H
#define IOT_STATUS_H

#include <stddef.h>

typedef enum iot_status {
    IOT_OK = 0,
    IOT_EINVAL,   /* a value given by the caller is malformed */
    IOT_EEXIST,   /* the thing to create already exists */
    IOT_ENOENT,   /* the thing to use does not exist */
    IOT_EPERM,    /* permissions are unsafe or access was denied */
    IOT_EIO,      /* an I/O operation failed */
    IOT_EBUSY,    /* a lock is held by someone else */
    IOT_ECORRUPT, /* stored data is not what it should be */
    IOT_ECRYPTO,  /* a cryptographic operation or check failed */
    IOT_ENOMEM,   /* out of memory, or a size cap was reached */
    IOT_ESTATE,   /* the object is in the wrong state for this operation */
} iot_status;

#define IOT_ERR_MSG_MAX 512

typedef struct iot_err {
    iot_status status;
    char msg[IOT_ERR_MSG_MAX];
} iot_err;

/* Short, stable description of a status code ("file exists", ...). */
const char *iot_strerror(iot_status status);

/* Records status and a printf-style message in err (if err is non-NULL) and
 * returns status, so callers can write `return iot_err_set(err, ...);`. */
iot_status iot_err_set(iot_err *err, iot_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("loading CA: <old>"). */
iot_status iot_err_wrap(iot_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
