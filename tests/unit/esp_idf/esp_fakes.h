/* An esp_http_client, an NVS, a clock and a log of the tests' own, behind the ESP-IDF
 * stand-ins (tests/support/esp-idf-stubs), for host tests that compile the port's and the
 * firmware's ESP-only sources as they are: one scripted exchange at a time, and everything
 * the request carried recorded. */
#ifndef TEST_ESP_FAKES_H
#define TEST_ESP_FAKES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "esp_http_client.h"
#include "nvs.h"

#include "iotd_esp/cred.h"
#include "iotd_esp/port.h"
#include "pem.h"

typedef struct fake_http {
    /* the answer; route (when set) may change it from the URL once the request is sent */
    void (*route)(const char *url);
    bool fail_open;
    int status;
    const char *body;
    const char *retry_after[2]; /* Retry-After headers sent, NULL: fewer */
    /* the request */
    int inits, cleanups;
    esp_http_client_config_t cfg;
    char url[IOTD_ESP_URL_MAX];
    char cert[IOTD_ESP_PEM_CHAIN_MAX];
    char key[IOTD_ESP_PEM_KEY_MAX];
    bool has_cert, has_key;
    char auth[IOTD_ESP_AUTH_MAX];
    char content_type[64];
    char sent[1024];
    size_t read_at;
} fake_http;

extern fake_http http;
extern int64_t fake_now;     /* the wall clock, Unix seconds */
extern uint64_t fake_uptime; /* ms; iotd_esp_sleep_ms advances it */
extern char fake_log[8192];  /* every line logged, "event: message\n" */

/* Empties NVS, the log and the recorded request; answers 200 with an empty body. */
void fakes_reset(void);

/* NVS (one store whatever the namespace): a blob or string as stored. */
bool fake_nvs_has(const char *key);

#endif
