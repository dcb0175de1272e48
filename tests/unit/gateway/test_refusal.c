/* The refusal table: every row filled and consistent, every counter
 * named, and the metric labels operators rely on unchanged. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "refusal.h"

static void rows_complete(void **state)
{
    (void)state;
    for (int i = 0; i < GW_REF_COUNT; i++) {
        const gw_refusal_row *row = gw_refusal_row_of((gw_refusal)i);
        assert_non_null(row->error);
        assert_true(row->error[0] != '\0');
        assert_true(row->status == 0 || (row->status >= 400 && row->status <= 599));
        assert_true((unsigned)row->counter < GW_RC_COUNT);
        assert_true(row->level == GW_LOG_INFO || row->level == GW_LOG_WARN);
        /* Security events are worth a warning (a replayed reading is
         * answered 200 and only counted). */
        if (row->cls == GW_CLASS_SECURITY && i != GW_REF_REPLAY)
            assert_int_equal(row->level, GW_LOG_WARN);
        assert_string_not_equal(gw_refusal_reason_phrase(row->status == 0 ? 400 : row->status),
                                "Error");
        /* A 503 asks the device to come back: it is never its fault. */
        if (row->status == 503)
            assert_int_equal(row->cls, GW_CLASS_OVERLOAD);
    }
}

static void counters_named(void **state)
{
    (void)state;
    for (int i = 0; i < GW_RC_COUNT; i++) {
        const char *name = gw_refusal_counter_name((gw_refusal_counter)i);
        assert_non_null(name);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(name, gw_refusal_counter_name((gw_refusal_counter)j));
    }
}

/* Labels that dashboards, alerts and tests match on. */
static void stable_labels(void **state)
{
    (void)state;
    static const struct {
        gw_refusal r;
        const char *counter;
        const char *cls;
        int status;
        const char *error;
    } want[] = {
        {GW_REF_TLS_NO_CERT, "tls_no_certificate", "security", 0, "tls_no_certificate"},
        {GW_REF_PROXY_HEADER, "proxy_header_refused", "security", 0, "proxy_header_refused"},
        {GW_REF_DEVICE_REVOKED, "device_revoked", "security", 403, "device_revoked"},
        {GW_REF_NOT_A_DEVICE, "not_a_device", "security", 403, "device_unknown"},
        {GW_REF_INVALID_NAME_HOSTILE, "payload_hostile", "security", 422, "invalid_name"},
        {GW_REF_INVALID_NAME, "payload_invalid", "quality", 422, "invalid_name"},
        {GW_REF_NOT_FOUND, "http_protocol", "security", 404, "not_found"},
        {GW_REF_HTTP_FRAMING, "http_framing", "security", 400, "invalid_framing"},
        {GW_REF_BODY_TOO_LARGE, "payload_too_large", "quality", 413, "payload_too_large"},
        {GW_REF_CONN_OVER_CAPACITY, "over_capacity", "overload", 0, "over_capacity"},
        {GW_REF_SHUTTING_DOWN, "shutting_down", "overload", 503, "shutting_down"},
        {GW_REF_OUT_OF_MEMORY, "out_of_memory", "overload", 503, "out_of_memory"},
        {GW_REF_STORAGE_ERROR, "storage_error", "overload", 503, "storage_unavailable"},
        {GW_REF_NOT_CONFIRMED, "not_confirmed", "overload", 503, "not_confirmed"},
        {GW_REF_BROKER_REFUSED, "broker_refused", "quality", 502, "broker_refused"},
        {GW_REF_RATE_LIMITED, "rate_limited", "security", 429, "rate_limited"},
        {GW_REF_REPLAY, "replay", "security", 0, "replay"},
        {GW_REF_ADMIN_NOT_FOUND, "admin_protocol", "security", 404, "not_found"},
        {GW_REF_ADMIN_METHOD_NOT_ALLOWED, "admin_protocol", "security", 405, "method_not_allowed"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const gw_refusal_row *row = gw_refusal_row_of(want[i].r);
        assert_string_equal(gw_refusal_counter_name(row->counter), want[i].counter);
        assert_string_equal(gw_refusal_class_name(gw_refusal_counter_class(row->counter)),
                            want[i].cls);
        assert_int_equal(row->status, want[i].status);
        assert_string_equal(row->error, want[i].error);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_complete),
        cmocka_unit_test(counters_named),
        cmocka_unit_test(stable_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
