/* The factory reset's port contract (iotd/reset.h) for Linux: the device's
 * state directory holds everything it has of its own.
 *
 *   erase_credentials  device.pem, candidate.pem, cacerts.pem (keys and
 *                      certificates of both slots, the CAs fetched)
 *   erase_settings     nothing stored: the simulator's settings are its
 *                      command line
 *   erase_storage      every other file (the core's keys, the queue, the
 *                      update slots), then the reset marker; only the lock
 *                      file stays
 *
 * Each unlink is followed by an fsync of the directory, so IOTD_OK means
 * the files are gone for good. */
#ifndef IOTD_POSIX_RESET_H
#define IOTD_POSIX_RESET_H

#include "iotd/reset.h"
#include "iotd_posix/kv.h"

/* Fills out with ctx = kv, which must be open and outlive its use. */
void iotd_posix_reset_port(iotd_posix_kv *kv, iotd_reset_port *out);

#endif
