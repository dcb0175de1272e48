/* The endpoint table lookup: exact raw targets, prefix rows, what is
 * refused as a target, 404 against 405 and the Allow list. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "router.h"

static void handler_a(struct gw_conn *c, struct gw_http_request *r, const char *d)
{
    (void)c, (void)r, (void)d;
}

static void handler_b(struct gw_conn *c, struct gw_http_request *r, const char *d)
{
    (void)c, (void)r, (void)d;
}

static const gw_route ROUTES[] = {
    {.method = HTTP_POST, .path = "/v1/telemetry", .handler = handler_a, .body_max = 100},
    {.method = HTTP_GET, .path = "/v1/firmware/", .prefix = true, .handler = handler_b},
    {.method = HTTP_POST, .path = "/enroll", .handler = handler_b, .anyone = true},
};
#define N (sizeof(ROUTES) / sizeof(ROUTES[0]))

static const gw_route *find(llhttp_method_t m, const char *target, gw_refusal *why,
                            char allow[GW_ROUTE_ALLOW_MAX])
{
    const char *detail = NULL;
    const gw_route *r = gw_route_find(ROUTES, N, m, target, strlen(target), why, &detail, allow);
    if (r == NULL)
        assert_non_null(detail);
    return r;
}

static void exact_match(void **state)
{
    (void)state;
    gw_refusal why;
    char allow[GW_ROUTE_ALLOW_MAX];
    const gw_route *r = find(HTTP_POST, "/v1/telemetry", &why, allow);
    assert_non_null(r);
    assert_ptr_equal(r->handler, handler_a);
    assert_int_equal(r->body_max, 100);
    const char *near[] = {"/v1/telemetry/",
                          "/v1/telemetr",
                          "/V1/TELEMETRY",
                          "//v1/telemetry",
                          "/v1/telemetry/../telemetry",
                          "/v1/./telemetry"};
    for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
        assert_null(find(HTTP_POST, near[i], &why, allow));
        assert_int_equal(why, GW_REF_NOT_FOUND);
    }
}

/* Encodings are never decoded, so none reaches an endpoint by another name. */
static void invalid_targets(void **state)
{
    (void)state;
    gw_refusal why;
    char allow[GW_ROUTE_ALLOW_MAX];
    const char *bad[] = {"/v1/%74elemetry",
                         "/v1/telemetry%00",
                         "/v1/telemetry?x=1",
                         "/v1/telemetry#f",
                         "*",
                         "http://gw/v1/telemetry",
                         ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(find(HTTP_POST, bad[i], &why, allow));
        assert_int_equal(why, GW_REF_INVALID_TARGET);
    }
}

static void method_not_allowed(void **state)
{
    (void)state;
    gw_refusal why;
    char allow[GW_ROUTE_ALLOW_MAX];
    assert_null(find(HTTP_GET, "/v1/telemetry", &why, allow));
    assert_int_equal(why, GW_REF_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "POST");
    assert_null(find(HTTP_HEAD, "/v1/telemetry", &why, allow));
    assert_int_equal(why, GW_REF_METHOD_NOT_ALLOWED);
    assert_null(find(HTTP_POST, "/v1/firmware/app.bin", &why, allow));
    assert_int_equal(why, GW_REF_METHOD_NOT_ALLOWED);
    assert_string_equal(allow, "GET, HEAD");
}

static void prefix_rows(void **state)
{
    (void)state;
    gw_refusal why;
    char allow[GW_ROUTE_ALLOW_MAX];
    const gw_route *r = find(HTTP_GET, "/v1/firmware/esp32-1.2.bin", &why, allow);
    assert_non_null(r);
    assert_ptr_equal(r->handler, handler_b);
    assert_ptr_equal(find(HTTP_HEAD, "/v1/firmware/x", &why, allow), r); /* HEAD with GET */
    assert_null(find(HTTP_GET, "/v1/firmware/", &why, allow));           /* something must follow */
    assert_int_equal(why, GW_REF_NOT_FOUND);
    assert_null(find(HTTP_GET, "/v1/firmware", &why, allow));
    assert_int_equal(why, GW_REF_NOT_FOUND);
}

/* A row is for admitted callers unless it says otherwise: a row written
 * without thinking about it must not open an endpoint to everyone. */
static void who_may_call(void **state)
{
    (void)state;
    gw_refusal why;
    char allow[GW_ROUTE_ALLOW_MAX];
    const gw_route *telemetry = find(HTTP_POST, "/v1/telemetry", &why, allow);
    const gw_route *enroll = find(HTTP_POST, "/enroll", &why, allow);
    assert_non_null(telemetry);
    assert_non_null(enroll);
    assert_true(gw_route_allows(telemetry, true));
    assert_false(gw_route_allows(telemetry, false));
    assert_true(gw_route_allows(enroll, false));
    assert_true(gw_route_allows(enroll, true));
    assert_false(gw_route_allows(NULL, true));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exact_match),        cmocka_unit_test(invalid_targets),
        cmocka_unit_test(method_not_allowed), cmocka_unit_test(prefix_rows),
        cmocka_unit_test(who_may_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
