#include "message.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iot/identity.h"

/* `{"device":"<id>","gateway":"<cn>","seq":<gseq>,` with the longest gseq
 * (int64) and gateway name (an ID). */
#define HEAD_FIXED  (sizeof("{\"device\":\"\",\"gateway\":\"\",\"seq\":,") - 1 + IOT_ID_MAX)
#define GSEQ_DIGITS 19
/* PUBLISH overhead besides the topic text: fixed header byte, remaining
 * length (at most 4 bytes), topic length (2), packet id (2, QoS 1), MQTT 5
 * property length (1, no properties). */
#define PUBLISH_OVERHEAD (1 + 4 + 2 + 2 + 1)
/* The longest number format_number writes: "-1.2345678901234567e-308". */
#define NUMBER_MAX 24

typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} strbuf;

static void sb_append(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_append(strbuf *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            sb->failed = 1;
            return;
        }
        if ((size_t)n < sb->cap - sb->len) {
            sb->len += (size_t)n;
            return;
        }
        size_t cap = sb->cap * 2 + (size_t)n;
        char *grown = realloc(sb->data, cap);
        if (grown == NULL) {
            sb->failed = 1;
            return;
        }
        sb->data = grown;
        sb->cap = cap;
    }
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void format_number(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, size, "%.17g", v);
}

int gw_message_tail(const gw_batch *batch, size_t reading, double rx, uint32_t dropped, char **out,
                    size_t *out_len)
{
    const gw_reading *r = &batch->readings[reading];
    strbuf sb = {malloc(256), 0, 256, 0};
    if (sb.data == NULL)
        return -1;
    char t[32], v[32], rxs[32];
    format_number(t, sizeof(t), r->t);
    snprintf(rxs, sizeof(rxs), "%.3f", rx);
    if (r->has_seq)
        sb_append(&sb, "\"dseq\":%u,", (unsigned)r->seq);
    sb_append(&sb, "\"t\":%s,\"rx\":%s,", t, rxs);
    if (dropped > 0)
        sb_append(&sb, "\"dropped\":%u,", (unsigned)dropped);
    sb_append(&sb, "\"values\":[");
    for (size_t i = 0; i < r->count; i++) {
        const gw_value *val = &batch->values[r->first + i];
        format_number(v, sizeof(v), val->v);
        /* Names and units were validated to a charset that needs no escaping. */
        sb_append(&sb, "%s{\"n\":\"%s\"", i ? "," : "", val->name);
        if (val->unit[0])
            sb_append(&sb, ",\"u\":\"%s\"", val->unit);
        sb_append(&sb, ",\"v\":%s}", v);
    }
    sb_append(&sb, "]}");
    if (sb.failed) {
        free(sb.data);
        return -1;
    }
    *out = sb.data;
    *out_len = sb.len;
    return 0;
}

int gw_message_topic(const char *prefix, const char *device, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s/%s/telemetry", prefix, device);
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}

int gw_message_full(const char *device, const char *gateway, int64_t gseq, const char *tail,
                    size_t tail_len, char *buf, size_t size)
{
    int n = snprintf(buf, size, "{\"device\":\"%s\",\"gateway\":\"%s\",\"seq\":%lld,", device,
                     gateway, (long long)gseq);
    if (n < 0 || (size_t)n + tail_len >= size)
        return -1;
    memcpy(buf + n, tail, tail_len);
    return n + (int)tail_len;
}

int gw_message_security_topic(const char *gateway, const char *type, char *buf, size_t size)
{
    int n = snprintf(buf, size, "security/%s/%s", gateway, type);
    return (n < 0 || (size_t)n >= size) ? -1 : n;
}

int gw_message_security_full(const char *gateway, const char *type, int64_t gseq, const char *tail,
                             size_t tail_len, char *buf, size_t size)
{
    int n = snprintf(buf, size, "{\"id\":\"%s/%s/%lld\",\"gateway\":\"%s\",\"seq\":%lld,", gateway,
                     type, (long long)gseq, gateway, (long long)gseq);
    if (n < 0 || (size_t)n + tail_len >= size)
        return -1;
    memcpy(buf + n, tail, tail_len);
    return n + (int)tail_len;
}

size_t gw_message_tail_max(const char *prefix, const char *device, size_t max_packet)
{
    size_t topic = strlen(prefix) + 1 + strlen(device) + sizeof("/telemetry") - 1;
    size_t head = HEAD_FIXED + strlen(device) + GSEQ_DIGITS;
    size_t used = PUBLISH_OVERHEAD + topic + head;
    return max_packet > used ? max_packet - used : 0;
}

size_t gw_message_tail_worst(const gw_payload_limits *lim)
{
    /* "dseq":4294967295,"t":N,"rx":N,"dropped":4294967295,"values":[...]} */
    size_t fixed = sizeof("\"dseq\":4294967295,\"t\":,\"rx\":,\"dropped\":4294967295,"
                          "\"values\":[]}") -
                   1 + 2 * NUMBER_MAX;
    /* ,{"n":"<name>","u":"<unit>","v":N} */
    size_t value = sizeof(",{\"n\":\"\",\"u\":\"\",\"v\":}") - 1 + GW_SENSOR_NAME_MAX +
                   GW_UNIT_MAX + NUMBER_MAX;
    return fixed + lim->max_records * value;
}

int gw_message_check_limits(const gw_config *cfg, char *why, size_t size)
{
    char longest[IOT_ID_MAX + 1];
    memset(longest, 'x', IOT_ID_MAX);
    longest[IOT_ID_MAX] = '\0';
    gw_payload_limits lim;
    gw_payload_limits_default(&lim);
    lim.max_records = cfg->max_records;
    size_t worst = gw_message_tail_worst(&lim);
    size_t fits = gw_message_tail_max(cfg->topic_prefix, longest, cfg->mqtt_max_packet);
    if (worst <= fits)
        return 0;
    snprintf(why, size,
             "max_records = %zu lets one reading make an MQTT message of up to about %zu bytes, "
             "more than mqtt_max_packet (%zu bytes) allows; such readings get 413 "
             "reading_too_large. Lower max_records, or raise mqtt_max_packet together with the "
             "broker's max_packet_size",
             cfg->max_records, worst + (cfg->mqtt_max_packet - fits), cfg->mqtt_max_packet);
    return 1;
}
