/* libFuzzer harness for the gateway's telemetry body parser.
 *
 * Every input is parsed as both content types, and as a Content-Type header.
 * Besides the sanitizers, it checks what callers rely on: success yields
 * validated, finite readings; failure yields an empty batch and a detail of
 * printable ASCII without quote or backslash.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Igateway/lib \
 *     $(pkg-config --cflags libcjson) tests/fuzz/payload_fuzz.c \
 *     gateway/lib/payload.c gateway/lib/utf8.c \
 *     $(pkg-config --libs libcjson) -o payload_fuzz
 *   ./payload_fuzz -max_len=20000 tests/fuzz/corpus/payload
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

#define NOW 1764086500.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > GW_SENSOR_NAME_MAX || s[0] == '_' || s[0] == '.' || s[0] == '-')
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static void check_batch(const gw_batch *b, const gw_payload_limits *lim)
{
    size_t next = 0;

    check(b->n_readings >= 1 && b->n_readings <= lim->max_readings);
    for (size_t i = 0; i < b->n_readings; i++) {
        const gw_reading *r = &b->readings[i];
        check(r->first == next && r->count >= 1);
        check(r->t >= NOW - (double)lim->past_window_s &&
              r->t <= NOW + (double)lim->future_window_s);
        check(r->has_seq == b->readings[0].has_seq);
        check(!r->has_seq || r->seq >= 1);
        check(i == 0 || !r->has_seq || r->seq > b->readings[i - 1].seq);
        next += r->count;
    }
    check(next == b->n_values);
    for (size_t i = 0; i < b->n_values; i++) {
        check(isfinite(b->values[i].v));
        check(name_ok(b->values[i].name));
        check(strlen(b->values[i].unit) <= GW_UNIT_MAX);
    }
}

static void check_error(const gw_payload_error *err, const gw_batch *b)
{
    check(err->code != NULL && err->detail[0] != '\0');
    check((unsigned)err->refusal < GW_REF_COUNT);
    for (const char *p = err->detail; *p != '\0'; p++)
        check(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
    check(b->readings == NULL && b->values == NULL && b->n_readings == 0 && b->n_values == 0);
}

static void parse_as(const uint8_t *data, size_t size, gw_content_type ct)
{
    gw_payload_limits lim;
    gw_batch b;
    gw_payload_error err;

    gw_payload_limits_default(&lim);
    memset(&err, 0, sizeof(err));
    if (gw_payload_parse((const char *)data, size, ct, "dev-001", NOW, &lim, &b, &err) == 0)
        check_batch(&b, &lim);
    else
        check_error(&err, &b);
    gw_batch_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_content_type ct;
    char header[256];
    size_t n = size < sizeof(header) - 1 ? size : sizeof(header) - 1;

    parse_as(data, size, GW_CT_SENML);
    parse_as(data, size, GW_CT_JSON);
    memcpy(header, data, n);
    header[n] = '\0';
    (void)gw_content_type_parse(header, &ct);
    return 0;
}
