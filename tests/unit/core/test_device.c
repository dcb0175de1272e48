/* The device loop over a fake port: when readings go out, what is queued,
 * how every kind of gateway answer is handled, and what survives a reboot. */
#include "core_test.h"

#include "fake_port.h"
#include "iotd/device.h"
#include "iotd/senml.h"

#define T0 1764086400

static fake_port fp;
static fake_sensor temp, hum;
static iotd_sensor sensors[2];
static char body[1024];
static char resp[96];
static iotd_config cfg;
static iotd_device dev;

static void setup(void)
{
    fake_port_init(&fp);
    fp.random_fixed = true; /* every delay at the low end of its window */
    fp.random_value = 0;
    memset(&temp, 0, sizeof(temp));
    memset(&hum, 0, sizeof(hum));
    temp.value.mantissa = 215;
    temp.value.exp10 = -1;
    hum.value.mantissa = 402;
    hum.value.exp10 = -1;
    iotd_sensor t = {"temperature", "Cel", fake_sensor_read, &temp};
    iotd_sensor h = {"humidity", "%RH", fake_sensor_read, &hum};
    sensors[0] = t;
    sensors[1] = h;
    iotd_config_init(&cfg);
    cfg.device_id = "dev-001";
    cfg.sensors = sensors;
    cfg.n_sensors = 2;
    cfg.sample_interval_ms = 1000;
    cfg.queue_capacity = 8;
    cfg.batch_max = 4;
    cfg.seq_block = 10;
    cfg.backoff_base_ms = 1000;
    cfg.backoff_max_ms = 8000;
    cfg.body = body;
    cfg.body_cap = sizeof(body);
    cfg.resp = resp;
    cfg.resp_cap = sizeof(resp);
}

static void boot(void)
{
    fake_reboot(&fp);
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_OK);
}

/* One step at uptime ms, with the wall clock running alongside. */
static uint32_t at(uint64_t ms)
{
    fp.wall = T0 + (int64_t)(ms / 1000u);
    return iotd_device_step(&dev, ms);
}

/* Steps as the main loop would, from `from` until `to`; returns the time
 * the next step is due. */
static uint64_t run(uint64_t from, uint64_t to)
{
    uint64_t now = from;
    for (int guard = 0; now < to && guard < 10000; guard++)
        now += at(now);
    return now;
}

static size_t seqs_of(size_t req, uint32_t *seqs, size_t max)
{
    CT_TRUE(req < FAKE_REQ_MAX && req < fp.n_requests);
    return fake_body_seqs(fp.requests[req].body, fp.requests[req].len, seqs, max);
}

static void expect_seqs(size_t req, const uint32_t *want, size_t n)
{
    uint32_t got[64];
    CT_EQ(seqs_of(req, got, 64), n);
    for (size_t i = 0; i < n; i++)
        CT_EQ(got[i], want[i]);
}

static bool body_has(size_t req, const char *text)
{
    CT_TRUE(req < FAKE_REQ_MAX && req < fp.n_requests);
    return strstr(fp.requests[req].body, text) != NULL;
}

static void online_reading_goes_out_at_once_without_storage(void **state)
{
    (void)state;
    setup();
    boot();
    CT_EQ(at(0), 1000);
    CT_EQ(fp.n_requests, 1);
    CT_STR_EQ(fp.requests[0].path, "/v1/telemetry");
    CT_STR_EQ(fp.requests[0].content_type, "application/senml+json");
    CT_STR_EQ(fp.requests[0].body,
              "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\","
              "\"v\":21.5,\"seq\":1},{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.2}]");
    CT_EQ(at(500), 500); /* nothing due yet */
    CT_EQ(fp.n_requests, 1);
    hum.value.mantissa = 401;
    CT_EQ(at(1000), 1000);
    CT_STR_EQ(fp.requests[1].body,
              "[{\"bn\":\"dev-001:\",\"bt\":1764086401,\"n\":\"temperature\",\"u\":\"Cel\","
              "\"v\":21.5,\"seq\":2},{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.1}]");
    /* The only storage write was the reservation of sequence numbers. */
    CT_EQ(fp.kv_sets, 1);
    CT_EQ(iotd_device_stats(&dev)->readings, 2);
    CT_EQ(iotd_device_stats(&dev)->sent, 2);
    CT_EQ(iotd_device_stats(&dev)->queued, 0);
    CT_EQ(iotd_device_queued(&dev), 0);
}

static void network_errors_queue_and_back_off(void **state)
{
    (void)state;
    setup();
    boot();
    fake_respond(&fp, 0);
    fake_respond(&fp, 0);
    fake_respond(&fp, 0);
    CT_EQ(at(0), 500); /* backoff: ceiling 1000, delay 500 */
    CT_EQ(iotd_device_queued(&dev), 1);
    CT_EQ(at(500), 500); /* retry fails: ceiling 2000, delay 1000 -> 1500 */
    CT_EQ(fp.n_requests, 2);
    CT_EQ(at(1000), 500); /* a reading, queued behind the first */
    CT_EQ(fp.n_requests, 2);
    CT_EQ(at(1500), 500); /* fails: ceiling 4000 -> 3500 */
    CT_EQ(at(2000), 1000);
    CT_EQ(at(3000), 500);
    CT_EQ(fp.n_requests, 3);
    CT_EQ(at(3500), 500); /* the link is back: oldest first, one batch */
    CT_EQ(fp.n_requests, 4);
    static const uint32_t first[] = {1}, both[] = {1, 2}, all[] = {1, 2, 3, 4};
    expect_seqs(0, first, 1);
    expect_seqs(1, first, 1);
    expect_seqs(2, both, 2);
    expect_seqs(3, all, 4);
    CT_TRUE(body_has(3, "{\"t\":3,\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.2}]"));
    CT_EQ(iotd_device_queued(&dev), 0);
    CT_EQ(iotd_device_stats(&dev)->failures, 3);
    CT_EQ(iotd_device_stats(&dev)->sent, 4);
    CT_EQ(at(4000), 1000); /* online again: straight out */
    CT_EQ(fp.n_requests, 5);
    CT_EQ(iotd_device_stats(&dev)->queued, 4);
    CT_EQ(fake_event_count(&fp, "upload.no_response"), 3);
}

static void queue_goes_out_in_batches_in_order(void **state)
{
    (void)state;
    setup();
    cfg.queue_capacity = 16;
    boot();
    fp.default_status = 0;
    uint64_t now = run(0, 6000); /* readings 1..6, all queued */
    CT_EQ(iotd_device_queued(&dev), 6);
    size_t offline = fp.n_requests;
    fp.default_status = 200;
    run(now, 20000);
    CT_EQ(iotd_device_queued(&dev), 0);

    static const uint32_t batch[] = {1, 2, 3, 4};
    expect_seqs(offline, batch, 4);
    uint32_t expect = 1;
    for (size_t r = offline; r < fp.n_requests && r < FAKE_REQ_MAX; r++) {
        uint32_t got[64];
        size_t n = seqs_of(r, got, 64);
        CT_TRUE(n >= 1 && n <= 4);
        for (size_t i = 0; i < n; i++)
            CT_EQ(got[i], expect++); /* each reading once, oldest first */
    }
    CT_EQ(iotd_device_stats(&dev)->sent, expect - 1);
}

static void retry_after_is_honoured(void **state)
{
    (void)state;
    setup();
    cfg.sample_interval_ms = 10000;
    boot();
    fake_respond_retry_after(&fp, 429, 30);
    CT_EQ(at(0), 10000);
    CT_EQ(at(10000), 10000);
    CT_EQ(at(20000), 10000);
    CT_EQ(fp.n_requests, 1);
    CT_EQ(at(30000), 10000); /* reading 4 queued, then all four go */
    CT_EQ(fp.n_requests, 2);
    static const uint32_t all[] = {1, 2, 3, 4};
    expect_seqs(1, all, 4);
    CT_EQ(fake_event_count(&fp, "upload.retry_after"), 1);

    /* 503 with the most jitter: 30 s plus an eighth. */
    setup();
    cfg.sample_interval_ms = 60000;
    boot();
    fp.random_value = UINT32_MAX;
    fake_respond_retry_after(&fp, 503, 30);
    CT_EQ(at(0), 33750);
    CT_EQ(at(33749), 1);
    CT_EQ(fp.n_requests, 1);
    at(33750);
    CT_EQ(fp.n_requests, 2);
    CT_EQ(iotd_device_queued(&dev), 0);

    /* 503 without Retry-After: ordinary backoff. */
    setup();
    cfg.sample_interval_ms = 60000;
    boot();
    fake_respond(&fp, 503);
    CT_EQ(at(0), 500);
    CT_EQ(iotd_device_stats(&dev)->failures, 1);
}

static void refused_readings_are_counted_not_retried(void **state)
{
    (void)state;
    static const int statuses[] = {400, 404, 405, 415, 422};
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        setup();
        boot();
        fp.script[0].status = statuses[i];
        fp.script[0].body = "{\"error\":\"invalid_name\",\"detail\":\"x\"}";
        fp.script_len = 1;
        CT_EQ(at(0), 1000);
        CT_EQ(iotd_device_stats(&dev)->rejected, 1);
        CT_EQ(iotd_device_queued(&dev), 0);
        CT_EQ(fake_event_count(&fp, "upload.rejected"), 1);
        CT_STR_EQ(fp.last_msg, "{\"error\":\"invalid_name\",\"detail\":\"x\"}");
        at(1000);
        CT_EQ(fp.n_requests, 2);
        static const uint32_t next[] = {2};
        expect_seqs(1, next, 1);
    }

    /* A refused batch from the queue is dropped and the rest goes on. */
    setup();
    cfg.batch_max = 2;
    boot();
    fp.default_status = 0;
    uint64_t now = run(0, 3000); /* readings 1..3 queued, retry due at 3500 */
    size_t offline = fp.n_requests;
    fp.default_status = 200;
    fake_respond(&fp, 422);
    CT_EQ(at(now), 500); /* reading 4 joins the queue */
    CT_EQ(at(3500), 0);  /* 1 and 2 refused; go on at once */
    CT_EQ(at(3500), 500);
    static const uint32_t refused[] = {1, 2}, rest[] = {3, 4};
    expect_seqs(offline, refused, 2);
    expect_seqs(offline + 1, rest, 2);
    CT_EQ(fp.n_requests, offline + 2);
    CT_EQ(iotd_device_stats(&dev)->rejected, 2);
    CT_EQ(iotd_device_queued(&dev), 0);
}

static void too_large_halves_the_batch(void **state)
{
    (void)state;
    setup();
    boot();
    fp.default_status = 0;
    run(0, 4000); /* readings 1..4 queued, retry due at 7500 */
    size_t offline = fp.n_requests;
    fp.default_status = 200;
    fake_respond(&fp, 413);
    CT_EQ(iotd_device_queued(&dev), 4);
    /* Reading 5 joins; 413 for the first four; then halves, without
     * waiting in between. */
    CT_EQ(at(7500), 0);
    CT_EQ(at(7500), 0);
    CT_EQ(at(7500), 0);
    CT_EQ(at(7500), 1000);
    static const uint32_t all[] = {1, 2, 3, 4}, low[] = {1, 2}, high[] = {3, 4}, last[] = {5};
    expect_seqs(offline, all, 4);
    expect_seqs(offline + 1, low, 2);
    expect_seqs(offline + 2, high, 2);
    expect_seqs(offline + 3, last, 1);
    CT_EQ(iotd_device_queued(&dev), 0);
    CT_EQ(fake_event_count(&fp, "upload.too_large"), 1);

    /* A single reading too large is refused for good. */
    setup();
    boot();
    fake_respond(&fp, 413);
    at(0);
    CT_EQ(iotd_device_stats(&dev)->rejected, 1);
    CT_EQ(iotd_device_queued(&dev), 0);
}

static void forbidden_stops_uploads_until_reboot(void **state)
{
    (void)state;
    setup();
    boot();
    fake_respond(&fp, 403);
    CT_EQ(at(0), 1000);
    CT_TRUE(iotd_device_halted(&dev));
    CT_EQ(fake_event_count(&fp, "upload.forbidden"), 1);
    run(1000, 5000);
    CT_EQ(fp.n_requests, 1);
    CT_EQ(iotd_device_queued(&dev), 5); /* readings kept for a new identity */
    boot();
    CT_FALSE(iotd_device_halted(&dev));
    at(5000);
    CT_EQ(fp.n_requests, 2);
    static const uint32_t kept[] = {1, 2, 3, 4};
    expect_seqs(1, kept, 4);
}

static void overflow_is_reported_in_the_next_upload(void **state)
{
    (void)state;
    setup();
    cfg.queue_capacity = 4;
    boot();
    fp.default_status = 0;
    run(0, 6000); /* 6 readings, room for 4 */
    CT_EQ(iotd_device_queued(&dev), 4);
    CT_EQ(iotd_device_unreported_drops(&dev), 2);
    CT_EQ(iotd_device_stats(&dev)->dropped, 2);
    CT_EQ(fake_event_count(&fp, "queue.overflow"), 2);

    /* Across a reboot, then still failing once: the report stays pending. */
    boot();
    CT_EQ(iotd_device_unreported_drops(&dev), 2);
    fake_respond(&fp, 500);
    fp.default_status = 200;
    size_t before = fp.n_requests;
    at(10000); /* reading 11 (new block after the reboot); queue full */
    CT_EQ(fp.n_requests, before + 1);
    CT_TRUE(body_has(before, ",\"dropped\":"));
    CT_EQ(iotd_device_unreported_drops(&dev), 3);
    run(10001, 13000);
    /* The first accepted batch carries the count on its first record. */
    CT_TRUE(body_has(before + 1, "\"seq\":4,\"dropped\":3}"));
    static const uint32_t kept[] = {4, 5, 6, 11};
    expect_seqs(before + 1, kept, 4);
    CT_EQ(iotd_device_unreported_drops(&dev), 0);
    for (size_t r = before + 2; r < fp.n_requests; r++)
        CT_FALSE(body_has(r, "dropped"));
}

static void queue_empties_only_after_the_response(void **state)
{
    (void)state;
    setup();
    boot();
    fp.default_status = 0;
    run(0, 3000); /* readings 1..3 queued, retry due at 3500 */
    CT_EQ(iotd_device_queued(&dev), 3);
    /* The request leaves, power goes before the answer arrives. */
    fake_respond_power_off(&fp);
    at(3500);
    CT_TRUE(fp.powered_off);
    static const uint32_t sent[] = {1, 2, 3, 4}, next[] = {11};
    expect_seqs(fp.n_requests - 1, sent, 4); /* reading 4 joined at 3500 */
    /* After the reboot (uptime from 0 again) the same readings go again,
     * then the first of the new block. */
    boot();
    CT_EQ(iotd_device_queued(&dev), 4);
    fp.default_status = 200;
    size_t before = fp.n_requests;
    CT_EQ(at(0), 0);
    CT_EQ(at(0), 1000);
    expect_seqs(before, sent, 4);
    expect_seqs(before + 1, next, 1);
    CT_EQ(iotd_device_queued(&dev), 0);
}

static void server_errors_back_off_exponentially(void **state)
{
    (void)state;
    static const uint32_t delays[] = {500, 1000, 2000, 4000, 4000, 4000};
    setup();
    cfg.sample_interval_ms = 3600u * 1000u;
    boot();
    fp.default_status = 500;
    uint64_t now = 0;
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        uint32_t sleep = at(now);
        CT_EQ(sleep, delays[i]);
        CT_EQ(fp.n_requests, i + 1);
        now += sleep;
    }
    /* Success resets the backoff; 408 and 3xx are retried like 5xx. */
    fp.default_status = 200;
    CT_EQ(at(now), 3600u * 1000u - now);
    CT_EQ(iotd_device_queued(&dev), 0);
    fake_respond(&fp, 408);
    now = 3600u * 1000u;
    CT_EQ(at(now), 500);
    fake_respond(&fp, 302);
    CT_EQ(at(now + 500), 1000);
    CT_EQ(iotd_device_queued(&dev), 1);
    CT_EQ(iotd_device_stats(&dev)->rejected, 0);
}

static void failing_sensors(void **state)
{
    (void)state;
    setup();
    boot();
    temp.fail = true;
    at(0);
    CT_STR_EQ(fp.requests[0].body, "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"humidity\","
                                   "\"u\":\"%RH\",\"v\":40.2,\"seq\":1}]");
    CT_EQ(iotd_device_stats(&dev)->sensor_errors, 1);
    CT_EQ(fake_event_count(&fp, "sensor.read_failed"), 1);
    /* No value at all: no reading, no number used. */
    hum.fail = true;
    at(1000);
    CT_EQ(fp.n_requests, 1);
    temp.fail = false;
    temp.value.exp10 = 12; /* outside the fixed-point range */
    at(2000);
    CT_EQ(fp.n_requests, 1);
    temp.value.exp10 = -1;
    at(3000);
    static const uint32_t next[] = {2};
    expect_seqs(1, next, 1);
    CT_EQ(iotd_device_stats(&dev)->readings, 2);
}

static void unknown_wall_time_sends_no_time(void **state)
{
    (void)state;
    setup();
    boot();
    fp.wall_known = false;
    iotd_device_step(&dev, 0);
    CT_STR_EQ(fp.requests[0].body,
              "[{\"bn\":\"dev-001:\",\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5,\"seq\":1},"
              "{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.2}]");
    /* An unset RTC that starts at 1970 counts as unknown too. */
    fp.wall_known = true;
    fp.wall = 1000;
    iotd_device_step(&dev, 1000);
    CT_FALSE(body_has(1, "\"bt\""));
}

static void storage_failures(void **state)
{
    (void)state;
    setup();
    boot();
    fp.set_fails = true;
    at(0); /* no sequence number can be reserved: no reading */
    CT_EQ(fp.n_requests, 0);
    CT_EQ(iotd_device_stats(&dev)->readings, 0);
    CT_EQ(iotd_device_stats(&dev)->storage_errors, 1);
    CT_EQ(fake_event_count(&fp, "seq.unavailable"), 1);

    fp.set_fails = false;
    fake_respond(&fp, 0);
    at(1000); /* reading 1 reserves 1..10, fails to send, is queued */
    CT_EQ(iotd_device_queued(&dev), 1);
    fp.set_fails = true;
    fp.default_status = 0;
    at(2000); /* reading 2 cannot be queued: lost, and counted */
    CT_EQ(iotd_device_queued(&dev), 1);
    CT_EQ(iotd_device_stats(&dev)->dropped, 1);
    CT_EQ(iotd_device_unreported_drops(&dev), 1);
    CT_EQ(fake_event_count(&fp, "queue.store_failed"), 1);
    fp.set_fails = false;
    fp.default_status = 200;
    size_t before = fp.n_requests;
    run(2001, 4000);
    CT_TRUE(body_has(before, "\"seq\":1,\"dropped\":1}"));
    CT_EQ(iotd_device_unreported_drops(&dev), 0);
}

static void unreadable_queued_readings_are_dropped_and_reported(void **state)
{
    (void)state;
    setup();
    boot();
    fp.default_status = 0;
    run(0, 3000); /* readings 1..3 queued, retry due at 3500 */
    CT_EQ(iotd_device_queued(&dev), 3);
    fake_kv_entry *e = fake_kv_find(&fp, "q.1");
    CT_TRUE(e != NULL);
    e->data[6] ^= 0x01; /* reading 2: its CRC no longer matches */
    fp.default_status = 200;
    size_t before = fp.n_requests;
    run(3000, 3501); /* reading 4 joins at 3000; all go at 3500 */
    static const uint32_t sent[] = {1, 3, 4};
    expect_seqs(before, sent, 3);
    CT_EQ(iotd_device_stats(&dev)->dropped, 1);
    CT_EQ(iotd_device_unreported_drops(&dev), 1);
    CT_EQ(fake_event_count(&fp, "queue.slot_lost"), 1);

    /* A firmware with a shorter sensor table cannot name queued values. */
    fp.default_status = 0;
    run(4000, 6000); /* readings 5, 6 with both sensors, queued */
    CT_EQ(iotd_device_queued(&dev), 2);
    cfg.n_sensors = 1;
    boot(); /* the next reading, 11, has the temperature only */
    fp.default_status = 200;
    before = fp.n_requests;
    CT_EQ(at(0), 1000); /* 5 and 6 dropped, 11 sent, reporting the earlier loss */
    static const uint32_t only[] = {11};
    expect_seqs(before, only, 1);
    CT_TRUE(body_has(before, "\"seq\":11,\"dropped\":1}"));
    CT_EQ(iotd_device_unreported_drops(&dev), 2);
    CT_EQ(iotd_device_queued(&dev), 0);
}

static void configuration_is_checked(void **state)
{
    (void)state;
    setup();
    boot();
    iotd_config good = cfg;

    cfg.device_id = "a/b";
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.n_sensors = 0;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.path = "v1";
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.batch_max = IOTD_PROTOCOL_READINGS_MAX + 1;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.sample_interval_ms = 0;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.resp_cap = 0;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg = good;
    cfg.body_cap = iotd_senml_reading_max(cfg.device_id, cfg.sensors, cfg.n_sensors) - 1;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    cfg.body_cap++;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_OK);
    cfg = good;
    sensors[1].name = "bad name";
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EINVAL);
    sensors[1].name = "humidity";

    iotd_port partial = fp.port;
    partial.kv_set = NULL;
    CT_EQ(iotd_device_init(&dev, &partial, &cfg), IOTD_EINVAL);
    partial = fp.port;
    partial.log = NULL; /* optional */
    CT_EQ(iotd_device_init(&dev, &partial, &cfg), IOTD_OK);
    iotd_device_step(&dev, 0);
    CT_EQ(fp.n_requests, 1);
}

static void damaged_storage_at_boot(void **state)
{
    (void)state;
    static const uint8_t junk[16] = {0xde, 0xad};
    setup();
    fake_kv_put(&fp, IOTD_QUEUE_META_KEY0, junk, sizeof(junk));
    fake_kv_put(&fp, IOTD_QUEUE_META_KEY1, junk, sizeof(junk));
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_OK);
    CT_EQ(fake_event_count(&fp, "queue.reset"), 1);

    fake_kv_put(&fp, IOTD_SEQ_KEY0, junk, sizeof(junk));
    fake_kv_put(&fp, IOTD_SEQ_KEY1, junk, sizeof(junk));
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_ECORRUPT);
    CT_EQ(fake_event_count(&fp, "seq.unreadable"), 1);

    fp.get_fails = true;
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_EIO);
}

static void run_loop_steps_and_sleeps(void **state)
{
    (void)state;
    static volatile int stop;
    setup();
    boot();
    stop = 0;
    fp.stop = &stop;
    fp.sleep_limit = 3;
    iotd_device_run(&dev, &stop);
    CT_EQ(fp.sleeps, 3);
    CT_EQ(fp.uptime, 3000);
    CT_EQ(fp.n_requests, 3);      /* readings at 0, 1000, 2000 */
    iotd_device_run(&dev, &stop); /* already stopped: returns at once */
    CT_EQ(fp.n_requests, 3);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(online_reading_goes_out_at_once_without_storage),
        CT_TEST(network_errors_queue_and_back_off),
        CT_TEST(queue_goes_out_in_batches_in_order),
        CT_TEST(retry_after_is_honoured),
        CT_TEST(refused_readings_are_counted_not_retried),
        CT_TEST(too_large_halves_the_batch),
        CT_TEST(forbidden_stops_uploads_until_reboot),
        CT_TEST(overflow_is_reported_in_the_next_upload),
        CT_TEST(queue_empties_only_after_the_response),
        CT_TEST(server_errors_back_off_exponentially),
        CT_TEST(failing_sensors),
        CT_TEST(unknown_wall_time_sends_no_time),
        CT_TEST(storage_failures),
        CT_TEST(unreadable_queued_readings_are_dropped_and_reported),
        CT_TEST(configuration_is_checked),
        CT_TEST(damaged_storage_at_boot),
        CT_TEST(run_loop_steps_and_sleeps),
    };
    return CT_RUN(tests);
}
