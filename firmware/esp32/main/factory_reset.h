/* Factory reset at boot (iotd/reset.h over iotd_esp/reset.h): a reset that
 * was cut short is finished, and holding the reset button
 * (CONFIG_IOTD_FACTORY_RESET_GPIO, the BOOT button) low for
 * CONFIG_IOTD_FACTORY_RESET_HOLD_S seconds at power-on starts one. Either
 * way the chip then restarts with nothing of its owner: no key, no
 * certificate, no queued readings, no settings. Call once NVS is up,
 * before anything reads the identity or the settings. */
#ifndef FACTORY_RESET_H
#define FACTORY_RESET_H

void factory_reset_at_boot(const char *kv_namespace);

#endif
