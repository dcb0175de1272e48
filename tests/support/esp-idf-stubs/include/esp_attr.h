/* Stand-in for ESP-IDF esp_attr.h: RTC_DATA_ATTR places a variable in the
 * RTC memory section (".rtc.data"); here any section name will do. */
#pragma once

#define RTC_DATA_ATTR __attribute__((section(".rtc.data.stand_in")))
