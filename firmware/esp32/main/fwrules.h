/* The firmware's update decisions that need no ESP-IDF: the update
 * setting from its NVS text, and the verdict of the self-test an image on
 * trial must pass before it is confirmed. The host tests build this file
 * (tests/unit/esp_idf). */
#ifndef FW_FWRULES_H
#define FW_FWRULES_H

#include <stdbool.h>
#include <stdint.h>

#include "iotd/device.h"
#include "iotd/update.h"

/* When updates may run (iotd_update_set_mode's arguments). */
typedef struct fw_setting {
    iotd_update_mode mode;
    uint8_t start_h; /* WINDOW: from this UTC hour */
    uint8_t end_h;   /* up to this one, excluded */
} fw_setting;

/* Applies the NVS text of the setting over *s (the Kconfig values):
 * mode "auto", "window" or "off"; window "H-H" or "HH-HH", UTC hours
 * 0-23 (start and end equal: the whole day). NULL or "" leaves that part
 * as it is. False when a value is malformed; *s is then unchanged, so a
 * typo on one device keeps the build's setting rather than a guess. */
bool fw_setting_apply(fw_setting *s, const char *mode, const char *window);

/* "auto", "window", "off". */
const char *fw_setting_mode_name(iotd_update_mode mode);

typedef enum fw_verdict {
    FW_TEST_RUNNING = 0, /* no verdict yet */
    FW_TEST_PASSED,
    FW_TEST_FAILED,
} fw_verdict;

/* The self-test of an image on trial, from the device core's counters
 * since boot: passed once the gateway acknowledged a reading (one
 * mutual-TLS upload succeeded and the reading is stored there) with every
 * storage operation successful; failed at once when the gateway refuses
 * the device (403: halted) or its readings (4xx), or storage failed, and
 * failed when elapsed_ms reaches limit_ms without a pass. */
fw_verdict fw_self_test(const iotd_stats *st, bool halted, uint64_t elapsed_ms, uint64_t limit_ms);

#endif
