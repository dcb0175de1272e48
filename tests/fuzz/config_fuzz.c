/* libFuzzer harness for the gateway configuration parser (gw_config_parse).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Igateway/lib -Icommon/include -Icore/include tests/fuzz/config_fuzz.c \
 *     gateway/lib/config.c gateway/lib/config_parse.c gateway/lib/brokers.c \
 *     gateway/lib/proxyv2.c common/src/status.c -o config_fuzz
 *   ./config_fuzz -max_len=70000 tests/fuzz/corpus/config
 *
 * Besides the sanitizers' checks, every outcome must keep the contract:
 * either an accepted configuration (spot checks: strings terminated,
 * numbers within their bounds) or one line of printable error text, and
 * validating an accepted one gives a status and, on refusal, one line of
 * printable text too. Validation opens no file (gateway/lib is pure), so
 * it runs on every input; the file checks are not fuzzed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

/* One line of printable text. */
static void require_message(const iot_err *err)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));
    require(n > 0 && n < sizeof(err->msg));
    for (size_t i = 0; i < n; i++)
        require(err->msg[i] >= 0x20 && err->msg[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_config cfg;
    gw_config_defaults(&cfg);
    iot_err err = {0};
    iot_status st = gw_config_parse((const char *)data, size, "fuzz.conf", &cfg, &err);
    if (st != IOT_OK) {
        require_message(&err);
        return 0;
    }
    require(strnlen(cfg.device_listen, sizeof(cfg.device_listen)) < sizeof(cfg.device_listen));
    require(strnlen(cfg.outbox, sizeof(cfg.outbox)) < sizeof(cfg.outbox));
    require(strnlen(cfg.topic_prefix, sizeof(cfg.topic_prefix)) < sizeof(cfg.topic_prefix));
    require(strnlen(cfg.log_level, sizeof(cfg.log_level)) < sizeof(cfg.log_level));
    require(cfg.workers >= 0 && cfg.mqtt_port >= 1 && cfg.mqtt_port <= 65535);
    require(cfg.rate_limit >= 0 && cfg.rate_burst >= 0);
    memset(&err, 0, sizeof(err));
    st = gw_config_validate(&cfg, NULL, NULL, &err);
    if (st != IOT_OK)
        require_message(&err);
    return 0;
}
