/* The port's time services: wall clock, uptime, sleep. They depend on
 * nothing else of the port, so the HTTPS client can use them. */
#include "iotd_esp/port.h"

#include <time.h>

#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

/* vTaskDelay takes ticks: pdMS_TO_TICKS multiplies ms by the tick rate in
 * a TickType_t (32 bits), so long sleeps go in slices that cannot overflow. */
#define SLEEP_SLICE_MS 60000u

bool iotd_esp_wall_time(void *ctx, int64_t *unix_s)
{
    (void)ctx;
    /* newlib's clock runs from the RTC timer, which keeps counting through
     * deep sleep and every reset but a power-on one; SNTP sets it. Before
     * that it starts at 1970, which the core's contract calls unset. */
    time_t now = time(NULL);

    if (now < (time_t)IOTD_MIN_WALL_TIME)
        return false;
    *unix_s = (int64_t)now;
    return true;
}

uint64_t iotd_esp_uptime_ms(void *ctx)
{
    const iotd_esp *esp = ctx;
    /* esp_timer counts microseconds from this boot; the base carries the
     * uptime over deep sleep, which restarts the chip. */
    int64_t us = esp_timer_get_time();

    return esp->uptime_base_ms + (uint64_t)(us < 0 ? 0 : us) / 1000u;
}

void iotd_esp_sleep_ms(void *ctx, uint32_t ms)
{
    (void)ctx;
    while (ms > 0) {
        uint32_t slice = ms < SLEEP_SLICE_MS ? ms : SLEEP_SLICE_MS;
        TickType_t ticks = pdMS_TO_TICKS(slice);
        vTaskDelay(ticks > 0 ? ticks : 1);
        ms -= slice;
    }
}
