#include "iotd/senml.h"

#include "iotd/protocol.h"

#include <string.h>

/* Longest renderings, for iotd_senml_reading_max. */
#define U32_MAX_CHARS   10u /* 4294967295 */
#define T_MAX_CHARS     11u /* -4294967295 */
#define VALUE_MAX_CHARS 20u /* -2147483648000000000 */

/* Appends to buf up to limit; once something does not fit, everything
 * after it is refused too, and the caller rolls back. */
typedef struct writer {
    char *buf;
    size_t len;
    size_t limit;
    bool full;
} writer;

static void put_mem(writer *w, const char *s, size_t n)
{
    if (w->full || n > w->limit - w->len) {
        w->full = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_str(writer *w, const char *s)
{
    put_mem(w, s, strlen(s));
}

static void put_char(writer *w, char c)
{
    put_mem(w, &c, 1);
}

/* Writes the decimal digits of v into d, least significant first. */
static size_t digits_of(uint32_t v, char d[10])
{
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v != 0);
    return n;
}

static void put_digits(writer *w, const char *d, size_t from, size_t to)
{
    while (to > from)
        put_char(w, d[--to]);
}

static void put_u32(writer *w, uint32_t v)
{
    char d[10];
    put_digits(w, d, 0, digits_of(v, d));
}

/* |v| < 2^32 here: times are 32-bit, so their differences are too. */
static void put_i64(writer *w, int64_t v)
{
    if (v < 0) {
        put_char(w, '-');
        v = -v;
    }
    put_u32(w, (uint32_t)v);
}

/* mantissa * 10^exp10 in plain decimal, without trailing fractional zeros:
 * {215,-1} is 21.5, {-5,-3} is -0.005, {12,3} is 12000. */
static void put_value(writer *w, iotd_value v)
{
    char d[10];
    uint32_t mag = v.mantissa < 0 ? 0u - (uint32_t)v.mantissa : (uint32_t)v.mantissa;

    if (mag == 0) {
        put_char(w, '0');
        return;
    }
    if (v.mantissa < 0)
        put_char(w, '-');
    if (v.exp10 >= 0) {
        put_u32(w, mag);
        for (int8_t i = 0; i < v.exp10; i++)
            put_char(w, '0');
        return;
    }
    size_t frac = (size_t)(-v.exp10);
    while (frac > 0 && mag % 10u == 0) {
        mag /= 10u;
        frac--;
    }
    size_t n = digits_of(mag, d);
    if (frac >= n) {
        put_mem(w, "0.", 2);
        for (size_t i = n; i < frac; i++)
            put_char(w, '0');
        put_digits(w, d, 0, n);
        return;
    }
    put_digits(w, d, frac, n);
    if (frac > 0) {
        put_char(w, '.');
        put_digits(w, d, 0, frac);
    }
}

iotd_status iotd_senml_begin(iotd_senml *enc, char *buf, size_t cap, const char *device_id,
                             uint32_t dropped)
{
    if (buf == NULL || cap < 2 || !iotd_protocol_device_id_valid(device_id))
        return IOTD_EINVAL;
    enc->buf = buf;
    enc->cap = cap;
    enc->len = 0;
    enc->device_id = device_id;
    enc->dropped = dropped;
    enc->base_time = 0;
    enc->readings = 0;
    enc->records = 0;
    enc->finished = false;
    return IOTD_OK;
}

static bool reading_is_valid(const iotd_reading *r, const iotd_sensor *sensors, size_t n_sensors)
{
    if (r->seq == 0 || r->count == 0 || r->count > IOTD_MAX_VALUES)
        return false;
    for (uint8_t i = 0; i < r->count; i++) {
        const iotd_sample *s = &r->values[i];
        if (s->sensor >= n_sensors || s->value.exp10 < IOTD_EXP10_MIN ||
            s->value.exp10 > IOTD_EXP10_MAX)
            return false;
        if (!iotd_protocol_sensor_name_valid(sensors[s->sensor].name) ||
            !iotd_protocol_unit_valid(sensors[s->sensor].unit))
            return false;
    }
    return true;
}

static void put_pack_head(writer *w, const iotd_senml *enc)
{
    put_str(w, "\"bn\":\"");
    put_str(w, enc->device_id);
    put_char(w, IOTD_PROTOCOL_BN_SEPARATOR);
    put_str(w, "\",");
    if (enc->base_time != 0) {
        put_str(w, "\"bt\":");
        put_u32(w, enc->base_time);
        put_char(w, ',');
    }
}

iotd_status iotd_senml_add(iotd_senml *enc, const iotd_reading *r, const iotd_sensor *sensors,
                           size_t n_sensors)
{
    if (enc->finished)
        return IOTD_ESTATE;
    if (!reading_is_valid(r, sensors, n_sensors))
        return IOTD_EINVAL;

    /* The first reading sets the base time; a reading without a time
     * resolves to 0, which the receiver reads as "now". */
    uint32_t base = enc->readings == 0 ? r->time : enc->base_time;
    int64_t t = (int64_t)r->time - (int64_t)base;
    writer w = {enc->buf, enc->len, enc->cap - 1u, false};
    uint32_t saved_base = enc->base_time;
    enc->base_time = base;

    for (uint8_t i = 0; i < r->count; i++) {
        const iotd_sensor *s = &sensors[r->values[i].sensor];
        bool pack_first = enc->records == 0 && i == 0;
        put_str(&w, pack_first ? "[{" : ",{");
        if (pack_first)
            put_pack_head(&w, enc);
        if (t != 0) {
            put_str(&w, "\"t\":");
            put_i64(&w, t);
            put_char(&w, ',');
        }
        put_str(&w, "\"n\":\"");
        put_str(&w, s->name);
        put_str(&w, "\",\"u\":\"");
        put_str(&w, s->unit);
        put_str(&w, "\",\"v\":");
        put_value(&w, r->values[i].value);
        if (i == 0) {
            put_str(&w, ",\"seq\":");
            put_u32(&w, r->seq);
        }
        if (pack_first && enc->dropped != 0) {
            put_str(&w, ",\"dropped\":");
            put_u32(&w, enc->dropped);
        }
        put_char(&w, '}');
    }
    if (w.full) {
        enc->base_time = saved_base;
        return IOTD_ENOSPC;
    }
    enc->len = w.len;
    enc->records += r->count;
    enc->readings++;
    return IOTD_OK;
}

iotd_status iotd_senml_finish(iotd_senml *enc, size_t *len)
{
    if (enc->finished || enc->readings == 0)
        return IOTD_ESTATE;
    /* add always leaves one byte free for this. */
    enc->buf[enc->len++] = ']';
    enc->finished = true;
    *len = enc->len;
    return IOTD_OK;
}

size_t iotd_senml_reading_max(const char *device_id, const iotd_sensor *sensors, size_t n_sensors)
{
    /* "bn":"ID:","bt":U32, ,"seq":U32 ,"dropped":U32 ] and, per value,
     * ,{"t":T,"n":"NAME","u":"UNIT","v":VALUE} where ",{" stands for "[{" */
    size_t total = strlen("\"bn\":\":\",") + strlen(device_id) + strlen("\"bt\":,") +
                   U32_MAX_CHARS + strlen(",\"seq\":") + U32_MAX_CHARS + strlen(",\"dropped\":") +
                   U32_MAX_CHARS + 1;
    for (size_t i = 0; i < n_sensors; i++) {
        total += strlen(",{\"t\":,\"n\":\"\",\"u\":\"\",\"v\":}") + T_MAX_CHARS +
                 strlen(sensors[i].name) + strlen(sensors[i].unit) + VALUE_MAX_CHARS;
    }
    return total;
}
