/* libFuzzer harness for the device core's handling of gateway responses.
 *
 * A device runs iotd_device_step over a port whose HTTPS service answers
 * from the fuzzer's bytes: no response at all, or any status code, any
 * Retry-After (present or not, any value) and any body, including a port
 * that reports more body bytes than the buffer holds. Storage is an
 * in-memory table that never fails, so every reading must be accounted for.
 *
 * Input: two bytes of configuration (response buffer size, batch size),
 * then one record per request:
 *   kind u8 (kind % 5 == 0: no response), status i16, flags u8 (bit 0:
 *   Retry-After present), retry_after_s u32, body_len u16 (as reported),
 *   then up to body_len body bytes (as many as remain and fit).
 * The run ends when a request finds the input used up.
 *
 * Checked besides the sanitizers (the response buffer is heap-allocated at
 * its exact size, so writing its NUL one byte too far is caught):
 *   - readings taken = sent + rejected + dropped + still queued;
 *   - the queue never holds more than its capacity;
 *   - a step never asks to sleep longer than the sampling interval;
 *   - every request: the configured path and content type, a body within
 *     its buffer, the response capacity leaving room for the NUL;
 *   - no request after a 403;
 *   - after a 429/503 with Retry-After, no request before the time asked
 *     (bounded by retry_after_max_s, at least backoff_base_ms); after any
 *     other failure, none before backoff_base_ms / 2;
 *   - log messages (the gateway's body for refusals) are NUL-terminated
 *     within the response buffer.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/include \
 *     tests/fuzz/core_response_fuzz.c core/src/status.c core/src/record.c \
 *     core/src/seq.c core/src/queue.c core/src/backoff.c core/src/senml.c \
 *     core/src/device.c -o core_response_fuzz
 *   ./core_response_fuzz -max_len=4096 tests/fuzz/corpus/core_response
 * (tests/fuzz/build.sh and run.sh do the same for every harness.)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iotd/device.h"
#include "iotd/senml.h"

#define KV_SLOTS     40
#define KV_KEY_MAX   16
#define KV_BLOB_MAX  64
#define QUEUE_CAP    8
#define INTERVAL_MS  60000u
#define BASE_MS      2000u
#define MAX_MS       300000u
#define RETRY_MAX_S  3600u
#define STEPS_MAX    400
#define BODY_CAP     2048
#define START_UPTIME 1000u
#define WALL_START   1764086400

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct kv_entry {
    bool used;
    char key[KV_KEY_MAX];
    uint8_t blob[KV_BLOB_MAX];
    size_t len;
} kv_entry;

typedef struct harness {
    const uint8_t *in;
    size_t left;
    bool exhausted;
    uint64_t now;
    uint64_t not_before; /* no request may come earlier */
    bool halted;         /* a 403 was answered */
    const char *resp;    /* the response buffer */
    size_t resp_cap;     /* its size, as configured */
    uint32_t lcg;
    kv_entry kv[KV_SLOTS];
} harness;

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool take(harness *h, void *out, size_t n)
{
    if (h->left < n) {
        h->exhausted = true;
        return false;
    }
    memcpy(out, h->in, n);
    h->in += n;
    h->left -= n;
    return true;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static iotd_status https_post(void *ctx, const char *path, const char *content_type,
                              const char *body, size_t body_len, char *resp, size_t resp_cap,
                              iotd_http_result *result)
{
    harness *h = ctx;
    uint8_t rec[10];

    require(!h->halted);
    require(h->now >= h->not_before);
    require(strcmp(path, IOTD_PROTOCOL_PATH) == 0);
    require(strcmp(content_type, IOTD_PROTOCOL_CT_SENML) == 0);
    require(body != NULL && body_len > 0 && body_len <= BODY_CAP);
    require(body[0] == '[' && body[body_len - 1] == ']');
    require(resp_cap == h->resp_cap - 1);

    if (h->exhausted || !take(h, rec, sizeof(rec)))
        return IOTD_ENET;
    if (rec[0] % 5 == 0) {
        h->not_before = h->now + BASE_MS / 2;
        return IOTD_ENET;
    }
    result->status = (int16_t)le16(&rec[1]);
    result->has_retry_after = (rec[3] & 1) != 0;
    result->retry_after_s = le32(&rec[4]);
    result->body_len = le16(&rec[8]);
    /* The body the port stores respects resp_cap; the reported length may not. */
    size_t n = result->body_len < resp_cap ? result->body_len : resp_cap;
    n = n < h->left ? n : h->left;
    memcpy(resp, h->in, n);
    h->in += n;
    h->left -= n;

    int s = result->status;
    if (s == 403) {
        h->halted = true;
    } else if ((s == 429 || s == 503) && result->has_retry_after) {
        uint64_t ms =
            (uint64_t)(result->retry_after_s < RETRY_MAX_S ? result->retry_after_s : RETRY_MAX_S) *
            1000u;
        h->not_before = h->now + (ms < BASE_MS ? BASE_MS : ms);
    } else if (!(s >= 200 && s < 300) && !(s >= 400 && s < 500 && s != 408 && s != 429)) {
        h->not_before = h->now + BASE_MS / 2;
    }
    return IOTD_OK;
}

static bool wall_time(void *ctx, int64_t *unix_s)
{
    harness *h = ctx;
    *unix_s = WALL_START + (int64_t)(h->now / 1000u);
    return true;
}

static uint64_t uptime_ms(void *ctx)
{
    return ((harness *)ctx)->now;
}

static void sleep_ms(void *ctx, uint32_t ms)
{
    ((harness *)ctx)->now += ms;
}

static kv_entry *kv_find(harness *h, const char *key, bool create)
{
    kv_entry *free_slot = NULL;
    for (size_t i = 0; i < KV_SLOTS; i++) {
        if (h->kv[i].used && strcmp(h->kv[i].key, key) == 0)
            return &h->kv[i];
        if (!h->kv[i].used && free_slot == NULL)
            free_slot = &h->kv[i];
    }
    if (!create || free_slot == NULL)
        return NULL;
    free_slot->used = true;
    memcpy(free_slot->key, key, strlen(key) + 1);
    return free_slot;
}

static iotd_status kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    kv_entry *e = kv_find(ctx, key, false);
    if (e == NULL)
        return IOTD_ENOENT;
    if (e->len > cap)
        return IOTD_ENOSPC;
    memcpy(buf, e->blob, e->len);
    *len = e->len;
    return IOTD_OK;
}

static iotd_status kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    require(strlen(key) < KV_KEY_MAX && len <= KV_BLOB_MAX);
    kv_entry *e = kv_find(ctx, key, true);
    require(e != NULL);
    memcpy(e->blob, data, len);
    e->len = len;
    return IOTD_OK;
}

static uint32_t random_u32(void *ctx)
{
    harness *h = ctx;
    h->lcg = h->lcg * 1664525u + 1013904223u;
    return h->lcg;
}

static void log_event(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    harness *h = ctx;
    require(level <= IOTD_LOG_DEBUG && event != NULL && msg != NULL);
    if (strcmp(event, "upload.rejected") == 0 || strcmp(event, "upload.forbidden") == 0)
        require(msg == h->resp && memchr(msg, '\0', h->resp_cap) != NULL);
}

static iotd_status read_temperature(void *ctx, iotd_value *out)
{
    (void)ctx;
    out->mantissa = 215;
    out->exp10 = -1;
    return IOTD_OK;
}

static iotd_status read_humidity(void *ctx, iotd_value *out)
{
    (void)ctx;
    out->mantissa = -4021;
    out->exp10 = -2;
    return IOTD_OK;
}

static const iotd_sensor sensors[] = {
    {"temperature", "Cel", read_temperature, NULL},
    {"humidity", "%RH", read_humidity, NULL},
};

static void check_accounting(const iotd_device *dev)
{
    const iotd_stats *s = iotd_device_stats(dev);
    uint32_t queued = iotd_device_queued(dev);
    require(queued <= QUEUE_CAP);
    require(s->readings == s->sent + s->rejected + s->dropped + queued);
    require(s->storage_errors == 0 && s->sensor_errors == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static harness h;
    static iotd_device dev;
    iotd_port port = {
        .ctx = &h,
        .https_post = https_post,
        .wall_time = wall_time,
        .uptime_ms = uptime_ms,
        .sleep_ms = sleep_ms,
        .kv_get = kv_get,
        .kv_set = kv_set,
        .random_u32 = random_u32,
        .log = log_event,
    };
    iotd_config cfg;
    char *body = NULL;
    char *resp = NULL;

    if (size < 2)
        return 0;
    memset(&h, 0, sizeof(h));
    h.resp_cap = 1u + data[0] % 64u;
    h.in = data + 2;
    h.left = size - 2;
    h.now = START_UPTIME;
    h.lcg = 1;
    body = malloc(BODY_CAP);
    resp = malloc(h.resp_cap);
    require(body != NULL && resp != NULL);
    h.resp = resp;

    iotd_config_init(&cfg);
    cfg.device_id = "dev-001";
    cfg.sensors = sensors;
    cfg.n_sensors = sizeof(sensors) / sizeof(sensors[0]);
    cfg.sample_interval_ms = INTERVAL_MS;
    cfg.queue_capacity = QUEUE_CAP;
    cfg.batch_max = 1u + data[1] % 8u;
    cfg.backoff_base_ms = BASE_MS;
    cfg.backoff_max_ms = MAX_MS;
    cfg.retry_after_max_s = RETRY_MAX_S;
    cfg.body = body;
    cfg.body_cap = BODY_CAP;
    cfg.resp = resp;
    cfg.resp_cap = h.resp_cap;
    require(iotd_device_init(&dev, &port, &cfg) == IOTD_OK);

    for (int i = 0; i < STEPS_MAX && !h.exhausted; i++) {
        uint32_t ms = iotd_device_step(&dev, h.now);
        require(ms <= INTERVAL_MS);
        require(iotd_device_halted(&dev) == h.halted);
        check_accounting(&dev);
        port.sleep_ms(port.ctx, ms);
    }
    free(body);
    free(resp);
    return 0;
}
