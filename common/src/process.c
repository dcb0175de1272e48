#include "iot/process.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

iot_status iot_harden_process(iot_err *err)
{
    struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return iot_err_set(err, IOT_EIO, "cannot disable core dumps (setrlimit RLIMIT_CORE): %s",
                           strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return iot_err_set(err, IOT_EIO, "cannot mark the process not dumpable (prctl): %s",
                           strerror(errno));
    return IOT_OK;
}
