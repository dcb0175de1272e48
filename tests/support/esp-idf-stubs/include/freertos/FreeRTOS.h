/* Stand-in for ESP-IDF's FreeRTOS.h: the types and macros the sources use,
 * with FreeRTOS's definitions (pdMS_TO_TICKS as in projdefs.h). */
#pragma once
#include <stdint.h>

typedef uint32_t TickType_t;
typedef int BaseType_t;
typedef unsigned int UBaseType_t;

#define configTICK_RATE_HZ 100
#define pdFALSE            ((BaseType_t)0)
#define pdTRUE             ((BaseType_t)1)
#define portMAX_DELAY      ((TickType_t)0xffffffffUL)
#define pdMS_TO_TICKS(xTimeInMs)                                                                   \
    ((TickType_t)(((TickType_t)(xTimeInMs) * (TickType_t)configTICK_RATE_HZ) / (TickType_t)1000U))
