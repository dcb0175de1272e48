#include "iotd/device.h"

#include <string.h>

#include "iotd/senml.h"
#include "internal.h"

typedef enum outcome {
    OUT_ACCEPTED,  /* 2xx: stored at the gateway */
    OUT_REJECTED,  /* 4xx that resending the same readings cannot fix */
    OUT_TOO_LARGE, /* 413: smaller batches may pass */
    OUT_FORBIDDEN, /* 403: this identity may not send */
    OUT_WAIT,      /* 429 or 503: wait as long as the gateway asks */
    OUT_RETRY,     /* no response, 5xx, 408 or anything unexpected */
} outcome;

void iotd_config_init(iotd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = IOTD_PROTOCOL_PATH;
    cfg->sample_interval_ms = 60u * 1000u;
    cfg->queue_capacity = 128;
    cfg->batch_max = 16;
    cfg->seq_block = 100;
    cfg->backoff_base_ms = 2000;
    cfg->backoff_max_ms = 5u * 60u * 1000u;
    cfg->retry_after_max_s = 3600;
}

static bool port_is_complete(const iotd_port *p)
{
    return p->https_post != NULL && p->wall_time != NULL && p->uptime_ms != NULL &&
           p->sleep_ms != NULL && p->kv_get != NULL && p->kv_set != NULL && p->random_u32 != NULL;
}

static bool sensors_are_valid(const iotd_sensor *sensors, size_t n)
{
    if (sensors == NULL || n == 0 || n > IOTD_MAX_VALUES)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!iotd_protocol_sensor_name_valid(sensors[i].name) ||
            !iotd_protocol_unit_valid(sensors[i].unit) || sensors[i].read == NULL)
            return false;
    }
    return true;
}

/* Intervals, capacities and batch sizes the device can work with. */
static bool limits_are_valid(const iotd_config *c)
{
    return c->sample_interval_ms != 0 && c->queue_capacity != 0 &&
           c->queue_capacity <= IOTD_QUEUE_CAPACITY_MAX && c->batch_max != 0 &&
           c->batch_max <= IOTD_PROTOCOL_READINGS_MAX && c->seq_block != 0 &&
           c->backoff_base_ms != 0 && c->backoff_max_ms >= c->backoff_base_ms;
}

/* The body holds at least one reading of every sensor; the response has a
 * buffer. */
static bool buffers_are_valid(const iotd_config *c)
{
    if (c->body == NULL || c->resp == NULL || c->resp_cap == 0)
        return false;
    return c->body_cap >= iotd_senml_reading_max(c->device_id, c->sensors, c->n_sensors);
}

static bool config_is_valid(const iotd_config *c)
{
    if (!iotd_protocol_device_id_valid(c->device_id) || c->path == NULL || c->path[0] != '/')
        return false;
    if (!sensors_are_valid(c->sensors, c->n_sensors))
        return false;
    return limits_are_valid(c) && buffers_are_valid(c);
}

iotd_status iotd_device_init(iotd_device *dev, const iotd_port *port, const iotd_config *cfg)
{
    if (dev == NULL || port == NULL || cfg == NULL || !port_is_complete(port) ||
        !config_is_valid(cfg))
        return IOTD_EINVAL;
    memset(dev, 0, sizeof(*dev));
    dev->port = port;
    dev->cfg = *cfg;
    dev->batch_limit = cfg->batch_max;
    iotd_backoff_init(&dev->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms);

    iotd_status st = iotd_seq_open(&dev->seq, port, cfg->seq_block);
    if (st != IOTD_OK) {
        iotd__log(port, IOTD_LOG_ERROR, "seq.unreadable",
                  "the sequence record cannot be read or is damaged; readings cannot be numbered");
        return st;
    }
    st = iotd_queue_open(&dev->queue, port, cfg->queue_capacity);
    if (st == IOTD_ECORRUPT) {
        iotd__log(port, IOTD_LOG_WARN, "queue.reset",
                  "the offline queue state was damaged; starting with an empty queue");
    } else if (st != IOTD_OK) {
        iotd__log(port, IOTD_LOG_ERROR, "queue.unreadable", "the offline queue cannot be read");
        return st;
    }
    return IOTD_OK;
}

/* Reads every sensor into dev->reading and numbers it. False when there is
 * nothing to send: no sensor answered, or no number could be reserved. */
static bool take_reading(iotd_device *dev)
{
    const iotd_port *port = dev->port;
    iotd_reading *r = &dev->reading;
    int64_t now = 0;

    r->count = 0;
    for (size_t i = 0; i < dev->cfg.n_sensors; i++) {
        const iotd_sensor *s = &dev->cfg.sensors[i];
        iotd_value v = {0, 0};
        if (s->read(s->ctx, &v) != IOTD_OK || v.exp10 < IOTD_EXP10_MIN ||
            v.exp10 > IOTD_EXP10_MAX) {
            dev->stats.sensor_errors++;
            iotd__log(port, IOTD_LOG_WARN, "sensor.read_failed",
                      "a sensor gave no value; the reading is taken without it");
            continue;
        }
        r->values[r->count].sensor = (uint8_t)i;
        r->values[r->count].value = v;
        r->count++;
    }
    if (r->count == 0)
        return false;
    bool known = port->wall_time(port->ctx, &now);
    r->time = known && now >= IOTD_MIN_WALL_TIME && now <= (int64_t)UINT32_MAX ? (uint32_t)now : 0;

    iotd_status st = iotd_seq_next(&dev->seq, &r->seq);
    if (st != IOTD_OK) {
        dev->stats.storage_errors += st == IOTD_EIO ? 1u : 0u;
        iotd__log(port, IOTD_LOG_ERROR, "seq.unavailable",
                  "no sequence number could be reserved; the reading is not taken");
        return false;
    }
    dev->stats.readings++;
    return true;
}

static void enqueue(iotd_device *dev)
{
    uint32_t before = dev->queue.dropped;
    iotd_status st = iotd_queue_push(&dev->queue, &dev->reading);

    if (dev->queue.dropped != before)
        iotd__log(dev->port, IOTD_LOG_WARN, "queue.overflow",
                  "the offline queue is full; the oldest reading was dropped");
    dev->stats.dropped += dev->queue.dropped - before;
    if (st == IOTD_OK) {
        dev->stats.queued++;
        return;
    }
    /* Lost, but counted: the next upload reports it. */
    dev->stats.storage_errors++;
    dev->stats.dropped++;
    iotd_queue_note_lost(&dev->queue, 1);
    iotd__log(dev->port, IOTD_LOG_ERROR, "queue.store_failed",
              "a reading could not be stored in the offline queue and is lost");
}

static outcome classify(int status)
{
    if (status >= 200 && status < 300)
        return OUT_ACCEPTED;
    if (status == 403)
        return OUT_FORBIDDEN;
    if (status == 413)
        return OUT_TOO_LARGE;
    if (status == 429 || status == 503)
        return OUT_WAIT;
    if (status >= 400 && status < 500 && status != 408)
        return OUT_REJECTED;
    return OUT_RETRY;
}

static outcome post(iotd_device *dev, size_t len, iotd_http_result *res)
{
    const iotd_port *port = dev->port;
    size_t cap = dev->cfg.resp_cap - 1u; /* room for the NUL */

    memset(res, 0, sizeof(*res));
    dev->stats.requests++;
    iotd_status st = port->https_post(port->ctx, dev->cfg.path, IOTD_PROTOCOL_CT_SENML,
                                      dev->cfg.body, len, dev->cfg.resp, cap, res);
    size_t n = 0;
    if (st == IOTD_OK)
        n = res->body_len < cap ? res->body_len : cap;
    dev->cfg.resp[n] = '\0';
    if (st != IOTD_OK) {
        dev->stats.no_answer++;
        iotd__log(port, IOTD_LOG_WARN, "upload.no_response",
                  "the gateway could not be reached; the readings stay queued");
        return OUT_RETRY;
    }
    return classify(res->status);
}

static void schedule_retry(iotd_device *dev, uint64_t now, outcome o, const iotd_http_result *res)
{
    uint32_t rnd = dev->port->random_u32(dev->port->ctx);
    uint32_t delay;

    dev->stats.failures++;
    if (o == OUT_WAIT && res->has_retry_after) {
        delay = iotd_retry_after_delay(res->retry_after_s, dev->cfg.retry_after_max_s,
                                       dev->cfg.backoff_base_ms, rnd);
        iotd__log(dev->port, IOTD_LOG_WARN, "upload.retry_after",
                  "the gateway asked to retry later (Retry-After)");
    } else {
        delay = iotd_backoff_fail(&dev->backoff, rnd);
        if (res->status != 0) /* no response was logged by post() */
            iotd__log(dev->port, IOTD_LOG_WARN, "upload.failed",
                      "the gateway could not take the readings now; retrying with backoff");
    }
    dev->next_upload_ms = now + delay;
}

/* Removes what the gateway answered for (consumed slots) from the queue. */
static void pop(iotd_device *dev, uint64_t now, uint32_t consumed, uint32_t lost, uint32_t reported)
{
    if (iotd_queue_pop(&dev->queue, consumed, lost, reported) == IOTD_OK) {
        dev->stats.dropped += lost;
        return;
    }
    /* The readings stay queued and go again: the gateway acknowledges them
     * as duplicates. Wait first, so failing storage is not hammered. */
    dev->stats.storage_errors++;
    iotd__log(dev->port, IOTD_LOG_ERROR, "queue.store_failed",
              "the offline queue state could not be stored; sent readings stay queued");
    dev->next_upload_ms =
        now + iotd_backoff_fail(&dev->backoff, dev->port->random_u32(dev->port->ctx));
}

static void accepted(iotd_device *dev, uint64_t now, uint32_t readings)
{
    dev->stats.sent += readings;
    dev->last_accepted_ms = now;
    dev->has_accepted = true;
    iotd_backoff_reset(&dev->backoff);
    dev->next_upload_ms = now;
}

static void rejected(iotd_device *dev, uint32_t readings)
{
    dev->stats.rejected += readings;
    iotd__log(dev->port, IOTD_LOG_WARN, "upload.rejected", dev->cfg.resp);
}

static void forbidden(iotd_device *dev)
{
    dev->halted = true;
    iotd__log(dev->port, IOTD_LOG_ERROR, "upload.forbidden", dev->cfg.resp);
}

/* Sends the reading just taken, with the queue empty: online, readings
 * never touch storage. */
static void send_live(iotd_device *dev, uint64_t now)
{
    iotd_senml enc;
    iotd_http_result res;
    size_t len = 0;
    uint32_t reported = dev->queue.dropped;

    if (iotd_senml_begin(&enc, dev->cfg.body, dev->cfg.body_cap, dev->cfg.device_id, reported) !=
            IOTD_OK ||
        iotd_senml_add(&enc, &dev->reading, dev->cfg.sensors, dev->cfg.n_sensors) != IOTD_OK ||
        iotd_senml_finish(&enc, &len) != IOTD_OK) {
        enqueue(dev); /* not reached with a checked configuration */
        return;
    }
    outcome o = post(dev, len, &res);
    switch (o) {
    case OUT_ACCEPTED:
        accepted(dev, now, 1);
        pop(dev, now, 0, 0, reported);
        break;
    case OUT_REJECTED:
    case OUT_TOO_LARGE:
        rejected(dev, 1);
        break;
    case OUT_FORBIDDEN:
        forbidden(dev);
        enqueue(dev);
        break;
    case OUT_WAIT:
    case OUT_RETRY:
        schedule_retry(dev, now, o, &res);
        enqueue(dev);
        break;
    }
}

typedef struct batch {
    uint32_t consumed; /* queue slots covered, oldest first */
    uint32_t lost;     /* of those, slots that could not be read */
    uint32_t readings; /* readings in the body */
    size_t len;
} batch;

typedef enum { SLOT_ADDED, SLOT_LOST, SLOT_FULL } slot_result;

/* Reads queue slot i into dev->reading and adds it to the body. SLOT_FULL:
 * it does not fit this batch (the gateway's record limit, or the buffer
 * once the batch has readings) and waits for the next one. SLOT_LOST: it
 * cannot be read back or encoded at all. */
static slot_result add_slot(iotd_device *dev, iotd_senml *enc, uint32_t i, uint32_t records,
                            bool first)
{
    iotd_reading *r = &dev->reading;
    slot_result res = SLOT_LOST;
    iotd_status st = iotd_queue_peek(&dev->queue, i, r);
    if (st != IOTD_OK)
        goto out;
    res = SLOT_FULL;
    if (records + r->count > IOTD_PROTOCOL_RECORDS_MAX)
        goto out;
    st = iotd_senml_add(enc, r, dev->cfg.sensors, dev->cfg.n_sensors);
    if (st == IOTD_ENOSPC && !first)
        goto out;
    res = st == IOTD_OK ? SLOT_ADDED : SLOT_LOST;
out:
    return res;
}

/* Encodes the oldest queued readings into the body, as many as the batch
 * limit, the gateway's record limit and the buffer allow. */
static void fill_batch(iotd_device *dev, uint32_t reported, batch *b)
{
    iotd_senml enc;
    uint32_t records = 0;

    memset(b, 0, sizeof(*b));
    if (iotd_senml_begin(&enc, dev->cfg.body, dev->cfg.body_cap, dev->cfg.device_id, reported) !=
        IOTD_OK)
        return;
    while (b->consumed < dev->queue.count && b->readings < dev->batch_limit) {
        slot_result res = add_slot(dev, &enc, b->consumed, records, b->readings == 0);
        if (res == SLOT_FULL)
            break;
        b->consumed++;
        if (res == SLOT_LOST) {
            /* Damaged in storage, stored under a sensor table this firmware
             * no longer has, or too large on its own: it can never be sent. */
            b->lost++;
            iotd__log(dev->port, IOTD_LOG_WARN, "queue.slot_lost",
                      "a queued reading could not be read back or encoded and is dropped");
            continue;
        }
        b->readings++;
        records += dev->reading.count;
    }
    if (b->readings > 0)
        (void)iotd_senml_finish(&enc, &b->len);
}

static void send_queued(iotd_device *dev, uint64_t now)
{
    iotd_http_result res;
    batch b;
    uint32_t reported = dev->queue.dropped;

    fill_batch(dev, reported, &b);
    if (b.readings == 0) {
        pop(dev, now, b.consumed, b.lost, 0);
        return;
    }
    outcome o = post(dev, b.len, &res);
    switch (o) {
    case OUT_ACCEPTED:
        accepted(dev, now, b.readings);
        pop(dev, now, b.consumed, b.lost, reported);
        break;
    case OUT_TOO_LARGE:
        if (b.readings > 1) {
            dev->batch_limit = b.readings / 2u;
            iotd__log(dev->port, IOTD_LOG_WARN, "upload.too_large",
                      "the gateway refused the batch as too large; sending smaller batches");
            break;
        }
        rejected(dev, b.readings);
        pop(dev, now, b.consumed, b.lost, 0);
        break;
    case OUT_REJECTED:
        rejected(dev, b.readings);
        pop(dev, now, b.consumed, b.lost, 0);
        break;
    case OUT_FORBIDDEN:
        forbidden(dev);
        break;
    case OUT_WAIT:
    case OUT_RETRY:
        schedule_retry(dev, now, o, &res);
        break;
    }
}

static bool may_upload(const iotd_device *dev, uint64_t now)
{
    return !dev->halted && now >= dev->next_upload_ms;
}

uint32_t iotd_device_step(iotd_device *dev, uint64_t now_ms)
{
    if (!dev->started) {
        dev->started = true;
        dev->next_sample_ms = now_ms;
        dev->next_upload_ms = now_ms;
    }
    bool posted = false;
    if (now_ms >= dev->next_sample_ms) {
        /* A late step takes one reading, not one per missed interval. */
        dev->next_sample_ms += dev->cfg.sample_interval_ms;
        if (dev->next_sample_ms <= now_ms)
            dev->next_sample_ms = now_ms + dev->cfg.sample_interval_ms;
        if (take_reading(dev)) {
            posted = dev->queue.count == 0 && may_upload(dev, now_ms);
            if (posted)
                send_live(dev, now_ms);
            else
                enqueue(dev);
        }
    }
    if (!posted && dev->queue.count > 0 && may_upload(dev, now_ms))
        send_queued(dev, now_ms);

    uint64_t wake = dev->next_sample_ms;
    if (dev->queue.count > 0 && !dev->halted && dev->next_upload_ms < wake)
        wake = dev->next_upload_ms;
    if (wake <= now_ms)
        return 0;
    return wake - now_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)(wake - now_ms);
}

void iotd_device_run(iotd_device *dev, const volatile int *stop)
{
    const iotd_port *port = dev->port;
    while (stop == NULL || *stop == 0) {
        uint32_t ms = iotd_device_step(dev, port->uptime_ms(port->ctx));
        if (ms > 0 && (stop == NULL || *stop == 0))
            port->sleep_ms(port->ctx, ms);
    }
}

const iotd_stats *iotd_device_stats(const iotd_device *dev)
{
    return &dev->stats;
}

uint32_t iotd_device_queued(const iotd_device *dev)
{
    return dev->queue.count;
}

uint32_t iotd_device_unreported_drops(const iotd_device *dev)
{
    return dev->queue.dropped;
}

bool iotd_device_last_accepted(const iotd_device *dev, uint64_t *at_ms)
{
    *at_ms = dev->last_accepted_ms;
    return dev->has_accepted;
}

bool iotd_device_halted(const iotd_device *dev)
{
    return dev->halted;
}
