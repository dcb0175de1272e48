/* Process-wide protections for the host programs that hold private keys
 * (the gateway and iotctl).
 */
#ifndef IOT_PROCESS_H
#define IOT_PROCESS_H

#include "iot/status.h"

/* Keeps key material out of core files and away from other processes of
 * the same user: sets RLIMIT_CORE to 0 (soft and hard, so it cannot be
 * raised again) and marks the process not dumpable (PR_SET_DUMPABLE 0: no
 * core file, no ptrace attach by the same user, /proc/PID files owned by
 * root). Call it first thing in main(), before any key is loaded. Returns
 * IOT_EIO with the failing step named if the kernel refuses either. */
iot_status iot_harden_process(iot_err *err);

#endif
