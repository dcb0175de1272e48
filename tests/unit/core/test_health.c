/* The health report over a fake port: its JSON, when it goes out, what the
 * device counted since the last one, and how refusals and silence are
 * handled. */
#include "core_test.h"

#include "fake_port.h"
#include "iotd/device.h"
#include "iotd/health.h"

static fake_port fp;
static fake_sensor temp;
static iotd_sensor sensors[1];
static char body[512];
static char resp[96];
static char hbuf[IOTD_HEALTH_BODY_MAX];
static iotd_config cfg;
static iotd_device dev;
static iotd_health health;

static void fill(void *ctx, iotd_health_info *out)
{
    (void)ctx;
    out->firmware = "1.2.0";
    out->secure_version = 3;
    out->boot_count = 12;
    out->reset_reason = IOTD_RESET_WATCHDOG;
    out->heap_min = 51234;
    out->cert_not_after = 1803000000;
}

static void setup(void)
{
    fake_port_init(&fp);
    fp.random_fixed = true;
    fp.random_value = 0;
    temp.value.mantissa = 215;
    temp.value.exp10 = -1;
    iotd_sensor t = {"temperature", "Cel", fake_sensor_read, &temp};
    sensors[0] = t;
    iotd_config_init(&cfg);
    cfg.device_id = "dev-001";
    cfg.sensors = sensors;
    cfg.n_sensors = 1;
    cfg.sample_interval_ms = 1000;
    cfg.queue_capacity = 8;
    cfg.body = body;
    cfg.body_cap = sizeof(body);
    cfg.resp = resp;
    cfg.resp_cap = sizeof(resp);
    CT_EQ(iotd_device_init(&dev, &fp.port, &cfg), IOTD_OK);
    iotd_health_config hc;
    iotd_health_config_init(&hc);
    hc.interval_ms = 60000;
    hc.fill = fill;
    hc.buf = hbuf;
    hc.cap = sizeof(hbuf);
    CT_EQ(iotd_health_init(&health, &fp.port, &dev, &hc), IOTD_OK);
}

static void json_has_every_member(void **state)
{
    (void)state;
    iotd_health_info info = {"1.2.0", 3, 12, IOTD_RESET_PANIC, -1, 0, NULL};
    char out[256];
    size_t len = 0;
    CT_EQ(iotd_health_json(&info, 2, -1, out, sizeof(out), &len), IOTD_OK);
    CT_STR_EQ(out, "{\"firmware\":\"1.2.0\",\"reset_reason\":\"panic\",\"secure_version\":3,"
                   "\"boot_count\":12,\"connect_failures\":2,\"since_upload_s\":-1,"
                   "\"heap_min\":-1,\"cert_not_after\":0}");
    CT_EQ(len, strlen(out));
    CT_EQ(iotd_health_json(&info, 2, -1, out, 40, &len), IOTD_ENOSPC);
    info.firmware = "1.2 0"; /* the gateway would refuse it */
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
    info.firmware = "1.2.0";
    info.reset_reason = "cosmic_ray";
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
    info.reset_reason = NULL;
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
    info.reset_reason = IOTD_RESET_PANIC;
    info.firmware = NULL;
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
    info.firmware = "1.2.0-rc.1+Build_7";
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_OK);
    info.firmware = "1.2.0-a-version-string-over-32-ch";
    CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
}

/* The running slot when the port knows it; a label the gateway would
 * refuse is the port's error. */
static void json_has_the_slot_when_known(void **state)
{
    (void)state;
    iotd_health_info info = {"1.2.0", 3, 12, IOTD_RESET_SOFTWARE, -1, 0, "ota_1"};
    char out[256];
    size_t len = 0;
    CT_EQ(iotd_health_json(&info, 0, 5, out, sizeof(out), &len), IOTD_OK);
    CT_STR_EQ(out, "{\"firmware\":\"1.2.0\",\"reset_reason\":\"software\",\"slot\":\"ota_1\","
                   "\"secure_version\":3,\"boot_count\":12,\"connect_failures\":0,"
                   "\"since_upload_s\":5,\"heap_min\":-1,\"cert_not_after\":0}");
    const char *bad[] = {"", "OTA_0", "ota 0", "ota.0", "ota-0", "a_partition_label_too_long"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        info.slot = bad[i];
        CT_EQ(iotd_health_json(&info, 0, 0, out, sizeof(out), &len), IOTD_EINVAL);
    }
}

/* The first report at once, the next one an interval later; failed
 * connections are counted since the last report taken. */
static void reports_on_schedule_with_counts(void **state)
{
    (void)state;
    setup();
    fake_respond(&fp, 204);
    CT_EQ(iotd_health_step(&health, 0), 0u);
    CT_EQ(fp.n_requests, 1u);
    CT_STR_EQ(fp.requests[0].path, IOTD_HEALTH_PATH);
    CT_STR_EQ(fp.requests[0].content_type, "application/json");
    CT_TRUE(strstr(fp.requests[0].body, "\"connect_failures\":0,\"since_upload_s\":-1") != NULL);
    CT_EQ(iotd_health_step(&health, 1000), 59000u); /* not due */
    CT_EQ(fp.n_requests, 1u);
    /* Two uploads get no answer, then one is accepted at 30 s. */
    fake_respond(&fp, 0);
    fake_respond(&fp, 0);
    fake_respond(&fp, 200);
    (void)iotd_device_step(&dev, 1000);
    (void)iotd_device_step(&dev, 10000);
    (void)iotd_device_step(&dev, 30000);
    CT_EQ(iotd_device_stats(&dev)->no_answer, 2u);
    size_t before = fp.n_requests;
    fake_respond(&fp, 204);
    CT_EQ(iotd_health_step(&health, 60000), 0u);
    CT_EQ(fp.n_requests, before + 1u);
    const char *b = fp.requests[before].body;
    CT_TRUE(strstr(b, "\"connect_failures\":2,") != NULL);
    CT_TRUE(strstr(b, "\"since_upload_s\":30,") != NULL);
    CT_EQ(health.stats.sent, 2u);
    /* Counted again from the last report taken. */
    fake_respond(&fp, 204);
    CT_EQ(iotd_health_step(&health, 120000), 0u);
    CT_TRUE(strstr(fp.requests[before + 1u].body, "\"connect_failures\":0,") != NULL);
}

/* No answer or a 5xx: again with backoff; a 4xx: not again until the
 * interval; never more than one request per step. */
static void failures_back_off_refusals_wait(void **state)
{
    (void)state;
    setup();
    fake_respond(&fp, 0);
    CT_EQ(iotd_health_step(&health, 0), 0u);
    CT_EQ(health.stats.no_answer, 1u);
    uint32_t wait = iotd_health_step(&health, 1);
    CT_IN_RANGE(wait, 1000u, 5000u); /* the backoff's first window */
    CT_EQ(fp.n_requests, 1u);
    fake_respond(&fp, 503);
    CT_EQ(iotd_health_step(&health, 10000), 0u);
    CT_EQ(health.stats.no_answer, 2u);
    fake_respond(&fp, 422);
    CT_EQ(iotd_health_step(&health, 20000), 0u);
    CT_EQ(health.stats.refused, 1u);
    CT_EQ(fake_event_count(&fp, "health.refused"), 1u);
    CT_EQ(iotd_health_step(&health, 20001), 59999u);
    CT_EQ(fp.n_requests, 3u);
}

static void configuration_is_checked(void **state)
{
    (void)state;
    setup();
    iotd_health_config hc;
    iotd_health_config_init(&hc);
    CT_EQ(iotd_health_init(&health, &fp.port, &dev, &hc), IOTD_EINVAL); /* no fill, no buffer */
    hc.fill = fill;
    hc.buf = hbuf;
    hc.cap = 100;
    CT_EQ(iotd_health_init(&health, &fp.port, &dev, &hc), IOTD_EINVAL); /* too small */
    hc.cap = sizeof(hbuf);
    CT_EQ(iotd_health_init(&health, &fp.port, &dev, &hc), IOTD_OK);
    CT_EQ(hc.interval_ms, 3600000u);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(json_has_every_member),           CT_TEST(json_has_the_slot_when_known),
        CT_TEST(reports_on_schedule_with_counts), CT_TEST(failures_back_off_refusals_wait),
        CT_TEST(configuration_is_checked),
    };
    return CT_RUN(tests);
}
