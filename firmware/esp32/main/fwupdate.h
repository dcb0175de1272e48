/* Firmware updates beside the device core (iotd/update.h over the port's
 * iotd_esp/update.h): the trusted keys built into the image, the setting
 * from Kconfig and NVS, the reports POSTed to the gateway, the restart
 * into a new image, and the self-test that confirms it or rolls it back. */
#ifndef FW_FWUPDATE_H
#define FW_FWUPDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "iotd/device.h"
#include "iotd/port.h"
#include "iotd_esp/port.h"

#include "identity.h"

/* Sets updates up over the device's port. hold_until_ms: no update step
 * before this uptime (after deep sleep: the check the sleep postponed; 0
 * otherwise). False when updates cannot run in this boot (logged); if the
 * running image is on trial it is then rolled back, since it could never
 * be confirmed. */
bool fwupdate_init(const iotd_port *port, iotd_esp *esp, const settings *s, uint64_t hold_until_ms);

/* Runs what is due at now_ms: one update step, a pending report, the
 * restart into a new image (does not return then), the self-test of an
 * image on trial against dev. Returns how long the caller may wait before
 * the next call; UINT32_MAX when updates are not running. */
uint32_t fwupdate_step(uint64_t now_ms, const iotd_device *dev);

/* True when nothing of an update is in progress, no report waits and no
 * image is on trial, so the chip may sleep deeply (a reset while on trial
 * rolls the image back). */
bool fwupdate_may_sleep(void);

/* When the running image is on trial, rolls it back now (restarting: does
 * not return then), saying why: for an image that stops before its
 * self-test could run, which would otherwise stay on trial until some
 * later reset. Usable before fwupdate_init. */
void fwupdate_give_up_trial(const char *why);

/* The uptime of the next update step, to carry across deep sleep. */
uint64_t fwupdate_due_ms(void);

#endif
