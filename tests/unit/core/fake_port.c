#include "fake_port.h"

#include <string.h>

static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0')
        n++;
    return n;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = bounded_len(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

fake_kv_entry *fake_kv_find(fake_port *f, const char *key)
{
    for (size_t i = 0; i < FAKE_KV_MAX; i++) {
        if (f->kv[i].used && strcmp(f->kv[i].key, key) == 0)
            return &f->kv[i];
    }
    return NULL;
}

static fake_kv_entry *kv_slot(fake_port *f, const char *key)
{
    fake_kv_entry *e = fake_kv_find(f, key);
    for (size_t i = 0; e == NULL && i < FAKE_KV_MAX; i++) {
        if (!f->kv[i].used) {
            e = &f->kv[i];
            e->used = true;
            copy_str(e->key, sizeof(e->key), key);
            e->len = 0;
        }
    }
    return e;
}

void fake_kv_put(fake_port *f, const char *key, const void *data, size_t len)
{
    fake_kv_entry *e = kv_slot(f, key);
    if (e == NULL || len > FAKE_BLOB_MAX)
        return;
    memcpy(e->data, data, len);
    e->len = len;
}

static iotd_status kv_get(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    fake_port *f = ctx;
    if (f->powered_off || f->get_fails)
        return IOTD_EIO;
    const fake_kv_entry *e = fake_kv_find(f, key);
    if (e == NULL)
        return IOTD_ENOENT;
    if (e->len > cap)
        return IOTD_ENOSPC;
    memcpy(buf, e->data, e->len);
    *len = e->len;
    return IOTD_OK;
}

static iotd_status kv_set(void *ctx, const char *key, const void *data, size_t len)
{
    fake_port *f = ctx;
    if (f->powered_off || f->set_fails)
        return IOTD_EIO;
    if (bounded_len(key, FAKE_KEY_MAX) >= FAKE_KEY_MAX || len > FAKE_BLOB_MAX)
        return IOTD_EINVAL;
    fake_kv_entry *e = kv_slot(f, key);
    if (e == NULL)
        return IOTD_EIO;
    if (f->tear_after == 0) {
        f->tear_after = -1;
        f->powered_off = true;
        if (f->tear == FAKE_TEAR_GARBAGE) {
            size_t half = len / 2;
            memcpy(e->data, data, half);
            memset(e->data + half, 0xA5, len - half);
            e->len = len;
        } else if (f->tear == FAKE_TEAR_NEW) {
            memcpy(e->data, data, len);
            e->len = len;
        }
        return IOTD_EIO;
    }
    if (f->tear_after > 0)
        f->tear_after--;
    memcpy(e->data, data, len);
    e->len = len;
    f->kv_sets++;
    return IOTD_OK;
}

static void record_request(fake_port *f, const char *path, const char *content_type,
                           const char *body, size_t len)
{
    if (f->n_requests < FAKE_REQ_MAX) {
        fake_request *r = &f->requests[f->n_requests];
        copy_str(r->path, sizeof(r->path), path);
        copy_str(r->content_type, sizeof(r->content_type), content_type);
        r->len = len < sizeof(r->body) - 1 ? len : sizeof(r->body) - 1;
        memcpy(r->body, body, r->len);
        r->body[r->len] = '\0';
    }
    f->n_requests++;
}

static iotd_status https_post(void *ctx, const char *path, const char *content_type,
                              const char *body, size_t body_len, char *resp, size_t resp_cap,
                              iotd_http_result *result)
{
    fake_port *f = ctx;
    if (f->powered_off)
        return IOTD_ENET;
    record_request(f, path, content_type, body, body_len);
    fake_response r = {f->default_status, false, 0, NULL, false};
    if (f->script_pos < f->script_len)
        r = f->script[f->script_pos++];
    if (r.power_off) {
        f->powered_off = true;
        return IOTD_ENET;
    }
    if (r.status == 0)
        return IOTD_ENET;
    result->status = r.status;
    result->has_retry_after = r.has_retry_after;
    result->retry_after_s = r.retry_after_s;
    const char *text = r.body != NULL ? r.body : "{\"stored\":1,\"duplicates\":0}";
    size_t n = bounded_len(text, resp_cap);
    memcpy(resp, text, n);
    result->body_len = n;
    return IOTD_OK;
}

static bool wall_time(void *ctx, int64_t *unix_s)
{
    fake_port *f = ctx;
    *unix_s = f->wall;
    return f->wall_known;
}

static uint64_t uptime_ms(void *ctx)
{
    fake_port *f = ctx;
    return f->uptime;
}

static void sleep_ms(void *ctx, uint32_t ms)
{
    fake_port *f = ctx;
    f->uptime += ms;
    f->sleeps++;
    if (f->stop != NULL && f->sleeps >= f->sleep_limit)
        *f->stop = 1;
}

static uint32_t random_u32(void *ctx)
{
    fake_port *f = ctx;
    if (f->random_fixed)
        return f->random_value;
    f->lcg = f->lcg * 1664525u + 1013904223u;
    return f->lcg;
}

static void log_event(void *ctx, iotd_log_level level, const char *event, const char *msg)
{
    fake_port *f = ctx;
    (void)level;
    if (f->n_events < FAKE_EVENTS_MAX)
        f->events[f->n_events++] = event;
    copy_str(f->last_msg, sizeof(f->last_msg), msg);
}

void fake_port_init(fake_port *f)
{
    memset(f, 0, sizeof(*f));
    f->port.ctx = f;
    f->port.https_post = https_post;
    f->port.wall_time = wall_time;
    f->port.uptime_ms = uptime_ms;
    f->port.sleep_ms = sleep_ms;
    f->port.kv_get = kv_get;
    f->port.kv_set = kv_set;
    f->port.random_u32 = random_u32;
    f->port.log = log_event;
    f->tear_after = -1;
    f->default_status = 200;
    f->wall_known = true;
    f->wall = 1764086400;
    f->lcg = 12345;
}

void fake_reboot(fake_port *f)
{
    f->powered_off = false;
    f->tear_after = -1;
}

static void script(fake_port *f, fake_response r)
{
    if (f->script_len < FAKE_SCRIPT_MAX)
        f->script[f->script_len++] = r;
}

void fake_respond(fake_port *f, int status)
{
    fake_response r = {status, false, 0, NULL, false};
    script(f, r);
}

void fake_respond_retry_after(fake_port *f, int status, uint32_t seconds)
{
    fake_response r = {status, true, seconds, NULL, false};
    script(f, r);
}

void fake_respond_power_off(fake_port *f)
{
    fake_response r = {0, false, 0, NULL, true};
    script(f, r);
}

size_t fake_event_count(const fake_port *f, const char *event)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_events; i++)
        n += strcmp(f->events[i], event) == 0 ? 1u : 0u;
    return n;
}

size_t fake_body_seqs(const char *body, size_t len, uint32_t *seqs, size_t max)
{
    static const char tag[] = "\"seq\":";
    size_t n = 0;
    for (size_t i = 0; i + sizeof(tag) - 1 < len && n < max; i++) {
        if (memcmp(body + i, tag, sizeof(tag) - 1) != 0)
            continue;
        uint32_t v = 0;
        for (size_t j = i + sizeof(tag) - 1; j < len && body[j] >= '0' && body[j] <= '9'; j++)
            v = v * 10u + (uint32_t)(body[j] - '0');
        seqs[n++] = v;
    }
    return n;
}

iotd_status fake_sensor_read(void *ctx, iotd_value *out)
{
    fake_sensor *s = ctx;
    s->reads++;
    if (s->fail)
        return IOTD_EIO;
    *out = s->value;
    return IOTD_OK;
}
