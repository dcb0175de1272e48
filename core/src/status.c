#include "iotd/status.h"

const char *iotd_strerror(iotd_status status)
{
    switch (status) {
    case IOTD_OK:
        return "success";
    case IOTD_EINVAL:
        return "invalid argument";
    case IOTD_ENOENT:
        return "not found";
    case IOTD_ENOSPC:
        return "buffer too small";
    case IOTD_EIO:
        return "I/O error";
    case IOTD_ECORRUPT:
        return "stored data is damaged";
    case IOTD_ENET:
        return "no response from the gateway";
    case IOTD_ERANGE:
        return "sequence numbers used up";
    case IOTD_ESTATE:
        return "wrong state";
    }
    return "unknown status";
}
