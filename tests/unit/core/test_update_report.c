/* The update report is the contract with the gateway's
 * POST /v1/firmware/status: every byte is checked against the form
 * docs/protocol.md shows, and every buffer too short by any amount is
 * refused without a byte past it. */
#include "core_test.h"

#include "iotd/update.h"

static char buf[IOTD_UPDATE_REPORT_MAX + 16];

static iotd_update_report rep(iotd_update_status status, const char *reason, uint64_t sequence,
                              uint32_t offset, uint32_t size)
{
    iotd_update_report r;
    r.status = status;
    r.reason = reason;
    r.sequence = sequence;
    r.offset = offset;
    r.size = size;
    return r;
}

static void expect_json(const iotd_update_report *r, const char *want)
{
    size_t len = 0;
    memset(buf, 'x', sizeof(buf));
    CT_EQ(iotd_update_report_json(r, buf, sizeof(buf), &len), IOTD_OK);
    CT_EQ(len, strlen(want));
    CT_STR_EQ(buf, want);
}

static void a_failure_carries_its_reason(void **state)
{
    (void)state;
    iotd_update_report r = rep(IOTD_UPDATE_FAILED, IOTD_UPDATE_R_DIGEST, 42, 4096, 65536);
    expect_json(&r, "{\"status\":\"failed\",\"reason\":\"digest\",\"sequence\":42,\"offset\":4096,"
                    "\"size\":65536}");
    r = rep(IOTD_UPDATE_ROLLED_BACK, IOTD_UPDATE_R_SELF_TEST, 7, 1000, 1000);
    expect_json(&r, "{\"status\":\"rolled_back\",\"reason\":\"self_test\",\"sequence\":7,"
                    "\"offset\":1000,\"size\":1000}");
}

static void an_empty_reason_is_left_out(void **state)
{
    (void)state;
    iotd_update_report r = rep(IOTD_UPDATE_DOWNLOADING, "", 3, 0, 1000);
    expect_json(&r, "{\"status\":\"downloading\",\"sequence\":3,\"offset\":0,\"size\":1000}");
    r.reason = NULL;
    expect_json(&r, "{\"status\":\"downloading\",\"sequence\":3,\"offset\":0,\"size\":1000}");
    r = rep(IOTD_UPDATE_CONFIRMED, "", 0, 0, 0);
    expect_json(&r, "{\"status\":\"confirmed\",\"sequence\":0,\"offset\":0,\"size\":0}");
}

static void every_status_has_its_name(void **state)
{
    (void)state;
    static const char *const names[] = {
        "none", "downloading", "downloaded", "installing", "confirmed", "failed", "rolled_back",
    };
    char want[96];
    for (unsigned s = 0; s < sizeof(names) / sizeof(names[0]); s++) {
        iotd_update_report r = rep((iotd_update_status)s, "", 1, 2, 3);
        size_t n = strlen("{\"status\":\"");
        memcpy(want, "{\"status\":\"", n);
        memcpy(want + n, names[s], strlen(names[s]));
        n += strlen(names[s]);
        const char *tail = "\",\"sequence\":1,\"offset\":2,\"size\":3}";
        memcpy(want + n, tail, strlen(tail) + 1);
        expect_json(&r, want);
    }
}

static void the_largest_numbers_fit_the_maximum(void **state)
{
    (void)state;
    iotd_update_report r =
        rep(IOTD_UPDATE_ROLLED_BACK, IOTD_UPDATE_R_TRIAL_RESET, UINT64_MAX, UINT32_MAX, UINT32_MAX);
    const char *want = "{\"status\":\"rolled_back\",\"reason\":\"trial_reset\","
                       "\"sequence\":18446744073709551615,\"offset\":4294967295,"
                       "\"size\":4294967295}";
    size_t len = 0;
    expect_json(&r, want);
    CT_EQ(iotd_update_report_json(&r, buf, IOTD_UPDATE_REPORT_MAX, &len), IOTD_OK);
    CT_STR_EQ(buf, want);
}

/* ENOSPC at every cap from 0 to one short of the NUL, and nothing written
 * past the cap; OK from the exact size on. */
static void every_short_buffer_is_refused(void **state)
{
    (void)state;
    iotd_update_report r =
        rep(IOTD_UPDATE_FAILED, IOTD_UPDATE_R_IMAGE_MISSING, 123456789012ull, 8192, 700000);
    const char *want = "{\"status\":\"failed\",\"reason\":\"image_missing\","
                       "\"sequence\":123456789012,\"offset\":8192,\"size\":700000}";
    size_t need = strlen(want) + 1;
    for (size_t cap = 0; cap < need; cap++) {
        size_t len = 99;
        memset(buf, 'x', sizeof(buf));
        CT_EQ(iotd_update_report_json(&r, buf, cap, &len), IOTD_ENOSPC);
        CT_EQ(len, 99);
        for (size_t i = cap; i < sizeof(buf); i++)
            CT_EQ(buf[i], 'x');
    }
    size_t len = 0;
    CT_EQ(iotd_update_report_json(&r, buf, need, &len), IOTD_OK);
    CT_EQ(len, need - 1);
    CT_STR_EQ(buf, want);
}

static void bad_arguments_are_refused(void **state)
{
    (void)state;
    size_t len = 0;
    iotd_update_report r = rep((iotd_update_status)7, "", 1, 0, 1);
    CT_EQ(iotd_update_report_json(&r, buf, sizeof(buf), &len), IOTD_EINVAL);
    r = rep(IOTD_UPDATE_FAILED, "a\"b", 1, 0, 1);
    CT_EQ(iotd_update_report_json(&r, buf, sizeof(buf), &len), IOTD_EINVAL);
    r = rep(IOTD_UPDATE_FAILED, "line\n", 1, 0, 1);
    CT_EQ(iotd_update_report_json(&r, buf, sizeof(buf), &len), IOTD_EINVAL);
    r = rep(IOTD_UPDATE_FAILED, "back\\slash", 1, 0, 1);
    CT_EQ(iotd_update_report_json(&r, buf, sizeof(buf), &len), IOTD_EINVAL);
    r = rep(IOTD_UPDATE_FAILED, "slot", 1, 0, 1);
    CT_EQ(iotd_update_report_json(NULL, buf, sizeof(buf), &len), IOTD_EINVAL);
    CT_EQ(iotd_update_report_json(&r, NULL, sizeof(buf), &len), IOTD_EINVAL);
    CT_EQ(iotd_update_report_json(&r, buf, sizeof(buf), NULL), IOTD_EINVAL);
}

int main(void)
{
    static const ct_test tests[] = {
        CT_TEST(a_failure_carries_its_reason),  CT_TEST(an_empty_reason_is_left_out),
        CT_TEST(every_status_has_its_name),     CT_TEST(the_largest_numbers_fit_the_maximum),
        CT_TEST(every_short_buffer_is_refused), CT_TEST(bad_arguments_are_refused),
    };
    return CT_RUN(tests);
}
