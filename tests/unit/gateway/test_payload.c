/* The telemetry body parser: the protocol examples, every error code with
 * its status and class, the limits at and just past their boundaries, and
 * hostile bytes. Every body is copied into a heap buffer of exactly its
 * length, so ASan catches any read past len. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "payload.h"
#include "utf8.h"

#define DEV "dev-001"
#define BT  1764086400.0 /* the protocol examples' base time */
#define NOW (BT + 100.0)

static gw_payload_limits limits(void)
{
    gw_payload_limits l;
    gw_payload_limits_default(&l);
    return l;
}

static bool detail_is_safe(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n >= sizeof(((gw_payload_error *)0)->detail))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool batch_is_empty(const gw_batch *b)
{
    return b->readings == NULL && b->values == NULL && b->n_readings == 0 && b->n_values == 0 &&
           !b->has_dropped;
}

static int run(const char *body, size_t len, gw_content_type ct, const char *dev, double now,
               const gw_payload_limits *lim, gw_batch *out, gw_payload_error *err)
{
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    int rc = gw_payload_parse(copy, len, ct, dev, now, lim, out, err);
    free(copy);
    return rc;
}

static void expect_fail_full(const char *body, size_t len, gw_content_type ct, const char *dev,
                             const gw_payload_limits *lim, int status, const char *code,
                             gw_payload_class cls)
{
    gw_batch b;
    gw_payload_error err;
    memset(&b, 0x5a, sizeof(b)); /* must be emptied on failure */
    memset(&err, 0, sizeof(err));
    int rc = run(body, len, ct, dev, NOW, lim, &b, &err);
    if (rc != -1 || err.code == NULL || strcmp(err.code, code) != 0)
        print_error("body %.80s: want %s, got rc %d code %s (%s)\n", body, code, rc,
                    err.code ? err.code : "none", err.detail);
    assert_int_equal(rc, -1);
    assert_string_equal(err.code, code);
    /* The refusal table answers the error: same status, same code, and
     * the class the validator gave it. */
    const gw_refusal_row *row = gw_refusal_row_of(err.refusal);
    assert_int_equal(row->status, status);
    assert_string_equal(row->error, code);
    assert_int_equal(err.cls, cls);
    assert_int_equal(row->cls, cls == GW_PAYLOAD_SECURITY            ? GW_CLASS_SECURITY
                               : err.refusal == GW_REF_OUT_OF_MEMORY ? GW_CLASS_OVERLOAD
                                                                     : GW_CLASS_QUALITY);
    assert_true(detail_is_safe(err.detail));
    assert_true(batch_is_empty(&b));
}

static void expect_fail(const char *body, gw_content_type ct, int status, const char *code,
                        gw_payload_class cls)
{
    gw_payload_limits l = limits();
    expect_fail_full(body, strlen(body), ct, DEV, &l, status, code, cls);
}

#define SENML_FAIL(body, status, code)                                                             \
    expect_fail(body, GW_CT_SENML, status, code, GW_PAYLOAD_QUALITY)
#define SENML_SEC(body, status, code)                                                              \
    expect_fail(body, GW_CT_SENML, status, code, GW_PAYLOAD_SECURITY)
#define JSON_FAIL(body, status, code)                                                              \
    expect_fail(body, GW_CT_JSON, status, code, GW_PAYLOAD_QUALITY)
#define JSON_SEC(body, status, code)                                                               \
    expect_fail(body, GW_CT_JSON, status, code, GW_PAYLOAD_SECURITY)

static void parse_ok_full(const char *body, size_t len, gw_content_type ct, const char *dev,
                          const gw_payload_limits *lim, gw_batch *b)
{
    gw_payload_error err = {0};
    int rc = run(body, len, ct, dev, NOW, lim, b, &err);
    if (rc != 0)
        print_error("body %.80s: %s (%s)\n", body, err.code ? err.code : "?", err.detail);
    assert_int_equal(rc, 0);
    assert_true(b->n_readings >= 1);
}

static void parse_ok(const char *body, gw_content_type ct, gw_batch *b)
{
    gw_payload_limits l = limits();
    parse_ok_full(body, strlen(body), ct, DEV, &l, b);
}

static void accept(const char *body, gw_content_type ct)
{
    gw_batch b;
    parse_ok(body, ct, &b);
    gw_batch_free(&b);
}

static void assert_value(const gw_batch *b, size_t i, const char *name, const char *unit, double v)
{
    assert_true(i < b->n_values);
    assert_string_equal(b->values[i].name, name);
    assert_string_equal(b->values[i].unit, unit);
    assert_true(b->values[i].v == v);
}

static void assert_reading(const gw_batch *b, size_t i, bool has_seq, uint32_t seq, double t,
                           size_t first, size_t count)
{
    assert_true(i < b->n_readings);
    const gw_reading *r = &b->readings[i];
    assert_int_equal(r->has_seq, has_seq);
    if (has_seq)
        assert_int_equal(r->seq, seq);
    assert_true(r->t == t);
    assert_int_equal(r->first, first);
    assert_int_equal(r->count, count);
}

/* ---- the protocol examples ---- */

static void senml_example(void **state)
{
    (void)state;
    const char *body =
        "[{\"bn\":\"dev-001:\",\"bt\":1764086400,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5,"
        "\"seq\":42},\n"
        " {\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.2},\n"
        " {\"t\":60,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.6,\"seq\":43},\n"
        " {\"t\":60,\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40.1}]";
    gw_batch b;
    parse_ok(body, GW_CT_SENML, &b);
    assert_int_equal(b.n_readings, 2);
    assert_int_equal(b.n_values, 4);
    assert_reading(&b, 0, true, 42, BT, 0, 2);
    assert_reading(&b, 1, true, 43, BT + 60, 2, 2);
    assert_value(&b, 0, "temperature", "Cel", 21.5);
    assert_value(&b, 1, "humidity", "%RH", 40.2);
    assert_value(&b, 2, "temperature", "Cel", 21.6);
    assert_value(&b, 3, "humidity", "%RH", 40.1);
    assert_false(b.has_dropped);
    gw_batch_free(&b);
    assert_true(batch_is_empty(&b));
    gw_batch_free(&b); /* twice is harmless */
}

static void json_example(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok("{\"seq\": 42, \"t\": 1764086400, \"temperature\": 21.5, \"humidity\": 40.2}",
             GW_CT_JSON, &b);
    assert_int_equal(b.n_readings, 1);
    assert_reading(&b, 0, true, 42, BT, 0, 2);
    assert_value(&b, 0, "temperature", "", 21.5);
    assert_value(&b, 1, "humidity", "", 40.2);
    assert_false(b.has_dropped);
    gw_batch_free(&b);
}

static void json_batch(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok("[{\"seq\":1,\"t\":1764086400,\"a\":1,\"dropped\":3},"
             "{\"seq\":2,\"b\":-2.5e1,\"c\":0}]",
             GW_CT_JSON, &b);
    assert_int_equal(b.n_readings, 2);
    assert_reading(&b, 0, true, 1, BT, 0, 1);
    assert_reading(&b, 1, true, 2, NOW, 1, 2); /* no t: receive time */
    assert_value(&b, 0, "a", "", 1);
    assert_value(&b, 1, "b", "", -25);
    assert_value(&b, 2, "c", "", 0);
    assert_true(b.has_dropped);
    assert_int_equal(b.dropped, 3);
    gw_batch_free(&b);

    parse_ok("[{\"a\":1},{\"a\":2}]", GW_CT_JSON, &b); /* no seq anywhere: one reading each */
    assert_int_equal(b.n_readings, 2);
    assert_reading(&b, 0, false, 0, NOW, 0, 1);
    assert_reading(&b, 1, false, 0, NOW, 1, 1);
    gw_batch_free(&b);
}

/* ---- SenML semantics ---- */

static void senml_without_seq_is_one_reading(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok("[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"v\":2,\"u\":\"V\"}]", GW_CT_SENML, &b);
    assert_int_equal(b.n_readings, 1);
    assert_reading(&b, 0, false, 0, NOW, 0, 2);
    assert_value(&b, 0, "a", "", 1);
    assert_value(&b, 1, "b", "V", 2);
    gw_batch_free(&b);
}

static void senml_relative_and_base_time(void **state)
{
    (void)state;
    gw_batch b;
    /* below 2^28: relative to receive time */
    parse_ok("[{\"t\":-60,\"n\":\"a\",\"v\":1}]", GW_CT_SENML, &b);
    assert_reading(&b, 0, false, 0, NOW - 60, 0, 1);
    gw_batch_free(&b);
    parse_ok("[{\"bt\":-30,\"t\":-0.5,\"n\":\"a\",\"v\":1}]", GW_CT_SENML, &b);
    assert_reading(&b, 0, false, 0, NOW - 30.5, 0, 1);
    gw_batch_free(&b);
    /* bt carries over to later records until changed */
    parse_ok("[{\"bt\":1764086400,\"n\":\"a\",\"v\":1,\"seq\":1},"
             "{\"n\":\"a\",\"v\":2,\"t\":10,\"seq\":2},"
             "{\"bt\":1764086450,\"n\":\"a\",\"v\":3,\"seq\":3}]",
             GW_CT_SENML, &b);
    assert_reading(&b, 0, true, 1, BT, 0, 1);
    assert_reading(&b, 1, true, 2, BT + 10, 1, 1);
    assert_reading(&b, 2, true, 3, BT + 50, 2, 1);
    gw_batch_free(&b);
    /* bt + t, not each on its own, decides absolute vs relative */
    parse_ok("[{\"bt\":1764086000,\"t\":400.25,\"n\":\"a\",\"v\":1}]", GW_CT_SENML, &b);
    assert_reading(&b, 0, false, 0, BT + 0.25, 0, 1);
    gw_batch_free(&b);
}

static void senml_base_unit_and_ignored_fields(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok(
        "[{\"bu\":\"Cel\",\"bver\":10,\"n\":\"a\",\"v\":1,\"ut\":5,\"x\":{\"y\":[\"\\u00e9\"]}},"
        "{\"n\":\"b\",\"u\":\"V\",\"v\":2,\"note\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\"},"
        "{\"n\":\"c\",\"v\":3,\"BN\":\"other:\"}]",
        GW_CT_SENML, &b);
    assert_int_equal(b.n_values, 3);
    assert_value(&b, 0, "a", "Cel", 1);
    assert_value(&b, 1, "b", "V", 2);
    assert_value(&b, 2, "c", "Cel", 3);
    gw_batch_free(&b);
}

static void senml_dropped(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok("[{\"dropped\":0,\"n\":\"a\",\"v\":1}]", GW_CT_SENML, &b);
    assert_true(b.has_dropped);
    assert_int_equal(b.dropped, 0);
    gw_batch_free(&b);
    parse_ok("[{\"dropped\":4294967295,\"n\":\"a\",\"v\":1}]", GW_CT_SENML, &b);
    assert_true(b.has_dropped);
    assert_int_equal(b.dropped, 4294967295u);
    gw_batch_free(&b);
}

static void seq_bounds(void **state)
{
    (void)state;
    gw_batch b;
    parse_ok("[{\"n\":\"a\",\"v\":1,\"seq\":1},{\"n\":\"a\",\"v\":1,\"seq\":4294967295}]",
             GW_CT_SENML, &b);
    assert_reading(&b, 0, true, 1, NOW, 0, 1);
    assert_reading(&b, 1, true, 4294967295u, NOW, 1, 1);
    gw_batch_free(&b);
    parse_ok("{\"seq\":4294967295,\"a\":1}", GW_CT_JSON, &b);
    assert_int_equal(b.readings[0].seq, 4294967295u);
    gw_batch_free(&b);
    accept("[{\"n\":\"a\",\"v\":1,\"seq\":7.0}]", GW_CT_SENML); /* integral */

    const char *bad[] = {"0", "4294967296", "-1", "1.5", "\"7\"", "null", "true", "1e10"};
    char body[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"v\":1,\"seq\":%s}]", bad[i]);
        SENML_FAIL(body, 422, "invalid_seq");
        snprintf(body, sizeof(body), "{\"a\":1,\"seq\":%s}", bad[i]);
        JSON_FAIL(body, 422, "invalid_seq");
    }
}

static void seq_order_and_mixing(void **state)
{
    (void)state;
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"seq\":5},{\"n\":\"a\",\"v\":1,\"seq\":5}]", 422,
               "invalid_seq");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"seq\":5},{\"n\":\"a\",\"v\":1,\"seq\":4}]", 422,
               "invalid_seq");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"v\":1,\"seq\":4}]", 422, "invalid_seq");
    JSON_FAIL("[{\"a\":1,\"seq\":2},{\"a\":1,\"seq\":1}]", 422, "invalid_seq");
    JSON_FAIL("[{\"a\":1,\"seq\":2},{\"a\":1}]", 422, "invalid_seq");
    JSON_FAIL("[{\"a\":1},{\"a\":1,\"seq\":1}]", 422, "invalid_seq");
    accept("[{\"n\":\"a\",\"v\":1,\"seq\":5},{\"n\":\"a\",\"v\":1,\"seq\":900}]", GW_CT_SENML);
}

/* ---- error codes ---- */

static void size_and_emptiness(void **state)
{
    (void)state;
    gw_payload_limits l = limits();
    expect_fail_full("", 0, GW_CT_SENML, DEV, &l, 400, "empty_body", GW_PAYLOAD_QUALITY);
    expect_fail_full("", 0, GW_CT_JSON, DEV, &l, 400, "empty_body", GW_PAYLOAD_QUALITY);

    gw_batch b;
    gw_payload_error err;
    assert_int_equal(gw_payload_parse(NULL, 0, GW_CT_SENML, DEV, NOW, &l, &b, &err), -1);
    assert_string_equal(err.code, "empty_body");

    /* exactly max_body is accepted, one byte more is not (padding is JSON whitespace) */
    const char *rec = "[{\"n\":\"a\",\"v\":1}]";
    char *body = malloc(l.max_body + 2);
    assert_non_null(body);
    memset(body, ' ', l.max_body + 1);
    memcpy(body, rec, strlen(rec));
    parse_ok_full(body, l.max_body, GW_CT_SENML, DEV, &l, &b);
    gw_batch_free(&b);
    expect_fail_full(body, l.max_body + 1, GW_CT_SENML, DEV, &l, 413, "payload_too_large",
                     GW_PAYLOAD_QUALITY);
    free(body);

    char small[21] = "{\"a\":1}";
    memset(small + 7, '\n', sizeof(small) - 7);
    l.max_body = 20;
    parse_ok_full(small, 20, GW_CT_JSON, DEV, &l, &b);
    gw_batch_free(&b);
    expect_fail_full(small, 21, GW_CT_JSON, DEV, &l, 413, "payload_too_large", GW_PAYLOAD_QUALITY);
}

static void unsupported_content_type_enum(void **state)
{
    (void)state;
    gw_payload_limits l = limits();
    expect_fail_full("{\"a\":1}", 7, (gw_content_type)7, DEV, &l, 415, "unsupported_media_type",
                     GW_PAYLOAD_QUALITY);
}

static void invalid_utf8_forms(void **state)
{
    (void)state;
    const char *bad[] = {
        "\xc0\xaf",         /* overlong '/' */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong, 3 bytes */
        "\xf0\x80\x80\xaf", /* overlong, 4 bytes */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80",
        "\xf8\x88\x80\x80\x80",
        "\xfe",
        "\xff",
        "\x80", /* stray continuation */
        "\xbf",
        "\xe2\x82",     /* truncated before the closing quote */
        "\xf0\x9d\x84", /* truncated 4-byte */
        "\xc3",         /* lead byte then ASCII */
    };
    char body[64];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"v\":1,\"x\":\"%s\"}]", bad[i]);
        SENML_FAIL(body, 400, "invalid_utf8");
        JSON_FAIL(body, 400, "invalid_utf8");
    }
    /* truncated at the very end of the body */
    gw_payload_limits l = limits();
    expect_fail_full("[1]\xe2\x82", 5, GW_CT_SENML, DEV, &l, 400, "invalid_utf8",
                     GW_PAYLOAD_QUALITY);
    /* the largest code points of each length are fine */
    accept("[{\"n\":\"a\",\"v\":1,\"x\":\"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\xee\x80\x80\"}]",
           GW_CT_SENML);
}

static void utf8_module(void **state)
{
    (void)state;
    size_t bad = 99;
    assert_true(gw_utf8_valid("", 0, &bad));
    assert_true(gw_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, NULL));
    assert_false(gw_utf8_valid("ab\xc0\x80", 4, &bad));
    assert_int_equal(bad, 2);
    assert_false(gw_utf8_valid("abc\0d", 5, &bad));
    assert_int_equal(bad, 3);
    /* a valid sequence cut by len is refused, even if the byte after it completes it */
    assert_false(gw_utf8_valid("x\xe2\x82\xac", 3, &bad));
    assert_int_equal(bad, 1);
    assert_false(gw_utf8_valid("\xed\x9f\xbf\xed\xa0\x80", 6, &bad)); /* U+D7FF ok, U+D800 not */
    assert_int_equal(bad, 3);
}

static void nul_bytes(void **state)
{
    (void)state;
    gw_payload_limits l = limits();
    const char raw_in_string[] = "[{\"n\":\"a\0b\",\"v\":1}]";
    expect_fail_full(raw_in_string, sizeof(raw_in_string) - 1, GW_CT_SENML, DEV, &l, 400,
                     "invalid_utf8", GW_PAYLOAD_QUALITY);
    const char raw_outside[] = "[{\"n\":\"a\",\"v\":1}]\0";
    expect_fail_full(raw_outside, sizeof(raw_outside) - 1, GW_CT_SENML, DEV, &l, 400,
                     "invalid_utf8", GW_PAYLOAD_QUALITY);
    /* escaped: valid JSON, but cJSON would cut the C string at it
     * ("dev-001:" + "\0x"): read as a control character, so it gets the
     * code and class of a control character wherever it is */
    const char bn[] = "[{\"bn\":\"dev-001:\\u0000x\",\"n\":\"a\",\"v\":1}]";
    expect_fail_full(bn, sizeof(bn) - 1, GW_CT_SENML, DEV, &l, 403, "identity_mismatch",
                     GW_PAYLOAD_SECURITY);
    const char name[] = "{\"a\\u0000b\":1}";
    expect_fail_full(name, sizeof(name) - 1, GW_CT_JSON, DEV, &l, 422, "invalid_name",
                     GW_PAYLOAD_SECURITY);
    const char senml_name[] = "[{\"n\":\"a\\u0000\",\"v\":1}]";
    expect_fail_full(senml_name, sizeof(senml_name) - 1, GW_CT_SENML, DEV, &l, 422, "invalid_name",
                     GW_PAYLOAD_SECURITY);
    const char unit[] = "[{\"n\":\"a\",\"u\":\"C\\u0000\",\"v\":1}]";
    expect_fail_full(unit, sizeof(unit) - 1, GW_CT_SENML, DEV, &l, 422, "invalid_unit",
                     GW_PAYLOAD_SECURITY);
    /* in a field that is ignored, it is as harmless as any character */
    accept("[{\"n\":\"a\",\"v\":1,\"x\":\"\\u0000\"}]", GW_CT_SENML);
    /* an escaped backslash followed by u0000 is text, not an escape */
    accept("[{\"n\":\"a\",\"v\":1,\"x\":\"\\\\u0000\"}]", GW_CT_SENML);
}

static void depth(void **state)
{
    (void)state;
    /* exactly max_depth (4): array, object, object, array */
    accept("[{\"n\":\"a\",\"v\":1,\"x\":{\"y\":[1]}}]", GW_CT_SENML);
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"x\":{\"y\":[[1]]}}]", 400, "too_deep");
    /* plain JSON: depth 4 passes the scan, then a nested member is not a sensor value */
    JSON_FAIL("{\"a\":1,\"x\":{\"y\":{\"z\":[]}}}", 422, "invalid_value");
    JSON_FAIL("{\"a\":1,\"x\":{\"y\":{\"z\":[{}]}}}", 400, "too_deep");
    /* brackets inside strings do not count */
    accept("[{\"n\":\"a\",\"v\":1,\"x\":\"[[[[[[{{{{\"}]", GW_CT_SENML);

    gw_payload_limits l = limits();
    l.max_depth = 2;
    const char *two_deep = "[{\"n\":\"a\",\"v\":1,\"x\":[]}]";
    expect_fail_full(two_deep, strlen(two_deep), GW_CT_SENML, DEV, &l, 400, "too_deep",
                     GW_PAYLOAD_QUALITY);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

static void hostile_depth_is_cheap(void **state)
{
    (void)state;
    size_t n = 100000;
    char *body = malloc(n);
    assert_non_null(body);
    memset(body, '[', n);
    gw_payload_limits l = limits();
    l.max_body = n;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_fail_full(body, n, GW_CT_SENML, DEV, &l, 400, "too_deep", GW_PAYLOAD_QUALITY);
    /* a limit the operator raised far past cJSON's own (1000) still never
     * recurses that deep: the scan is linear and cJSON refuses the rest */
    l.max_depth = 200000;
    expect_fail_full(body, n, GW_CT_JSON, DEV, &l, 400, "malformed_json", GW_PAYLOAD_QUALITY);
    memset(body, '{', n);
    l.max_depth = 4;
    expect_fail_full(body, n, GW_CT_JSON, DEV, &l, 400, "too_deep", GW_PAYLOAD_QUALITY);
    assert_true(seconds_since(&t0) < 1.0);
    free(body);
}

static void malformed_json(void **state)
{
    (void)state;
    const char *bad[] = {
        "[",
        "]",
        "{\"a\":1",
        "[{\"n\":\"a\",\"v\":1}] x",
        "[1,]",
        "nul",
        "[01]",
        "[1.]",
        "[-.5]",
        "[.5]",
        "[+1]",
        "[1e]",
        "[1e+]",
        "[NaN]",
        "[Infinity]",
        "[-Infinity]",
        "[\"a\x01\"]",
        "[\x01 1]",
        "[\"\\x41\"]",
        "[\"unterminated]",
        "[\"\\ud800\"]",
        "{\"a\" 1}",
        "[1 2]",
        "\"\\",
        "[--1]",
        "[0x10]",
        "[1-2]",
        "    ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SENML_FAIL(bad[i], 400, "malformed_json");
        JSON_FAIL(bad[i], 400, "malformed_json");
    }
    /* JSON's own whitespace is fine; a UTF-8 byte order mark may be ignored (RFC 8259 8.1) */
    accept(" \t\r\n[{\"n\":\"a\",\"v\":1}]\r\n", GW_CT_SENML);
    accept("\xef\xbb\xbf{\"a\":1}", GW_CT_JSON);
    accept("{\"a\":-0,\"b\":0.5e-3,\"c\":1E+2,\"d\":-12.0e0}", GW_CT_JSON);
}

static void numbers(void **state)
{
    (void)state;
    SENML_FAIL("[{\"n\":\"a\",\"v\":1e999}]", 400, "invalid_number");
    SENML_FAIL("[{\"n\":\"a\",\"v\":-1e999}]", 400, "invalid_number");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"x\":[{\"y\":1e400}]}]", 400, "invalid_number");
    JSON_FAIL("{\"a\":1e309}", 400, "invalid_number");
    JSON_FAIL("1e999", 400, "invalid_number");

    char body[256];
    char digits[80];
    memset(digits, '9', 65);
    digits[65] = '\0';
    snprintf(body, sizeof(body), "{\"a\":%s}", digits);
    JSON_FAIL(body, 400, "invalid_number");
    digits[64] = '\0'; /* 64 characters: allowed, 1e64 is finite */
    snprintf(body, sizeof(body), "{\"a\":%s}", digits);
    accept(body, GW_CT_JSON);

    gw_batch b;
    parse_ok("{\"a\":1.7976931348623157e308,\"b\":-1e-400,\"c\":4.9e-324}", GW_CT_JSON, &b);
    assert_true(b.values[0].v == 1.7976931348623157e308);
    assert_true(b.values[1].v == 0.0); /* underflow: finite */
    gw_batch_free(&b);
}

static void duplicate_keys(void **state)
{
    (void)state;
    SENML_SEC("[{\"bn\":\"dev-001:\",\"bn\":\"dev-002:\",\"n\":\"a\",\"v\":1}]", 400,
              "duplicate_key");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"v\":2}]", 400, "duplicate_key");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"x\":{\"k\":1,\"k\":2}}]", 400, "duplicate_key");
    JSON_FAIL("{\"a\":1,\"b\":2,\"a\":3}", 400, "duplicate_key");
    /* the same key after escape decoding */
    JSON_FAIL("{\"a\":1,\"\\u0061\":2}", 400, "duplicate_key");

    /* a wide object: sorted, so still cheap; duplicate at the end */
    char *body = malloc(16384);
    assert_non_null(body);
    size_t o = (size_t)snprintf(body, 16384, "{");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(body + o, 16384 - o, "\"k%d\":%d,", i, i);
    snprintf(body + o, 16384 - o, "\"k7\":1}");
    JSON_FAIL(body, 400, "duplicate_key");
    free(body);
}

static void structure(void **state)
{
    (void)state;
    const char *senml_bad[] = {"[]",
                               "{\"n\":\"a\",\"v\":1}",
                               "[1]",
                               "[[]]",
                               "\"x\"",
                               "1",
                               "null",
                               "[{\"n\":\"a\",\"v\":1},2]",
                               "[{\"n\":\"a\",\"v\":1},[]]"};
    for (size_t i = 0; i < sizeof(senml_bad) / sizeof(senml_bad[0]); i++)
        SENML_FAIL(senml_bad[i], 422, "invalid_structure");
    const char *json_bad[] = {"[]", "[1]", "[[]]", "\"x\"", "1", "true", "[{\"a\":1},null]"};
    for (size_t i = 0; i < sizeof(json_bad) / sizeof(json_bad[0]); i++)
        JSON_FAIL(json_bad[i], 422, "invalid_structure");
}

/* records named a, b, c, d per reading, one seq each */
static char *senml_batch(size_t readings, size_t per_reading)
{
    static const char names[] = "abcdefgh";
    size_t cap = readings * per_reading * 48 + 8;
    char *body = malloc(cap);
    assert_non_null(body);
    size_t o = (size_t)snprintf(body, cap, "[");
    for (size_t r = 0; r < readings; r++) {
        for (size_t k = 0; k < per_reading; k++) {
            if (k == 0)
                o += (size_t)snprintf(body + o, cap - o, "{\"seq\":%zu,\"n\":\"%c\",\"v\":%zu},",
                                      r + 1, names[k], r);
            else
                o += (size_t)snprintf(body + o, cap - o, "{\"n\":\"%c\",\"v\":%zu},", names[k], r);
        }
    }
    body[o - 1] = ']';
    return body;
}

static void record_and_reading_limits(void **state)
{
    (void)state;
    gw_payload_limits l = limits();
    l.max_body = 1 << 20;
    gw_batch b;

    char *body = senml_batch(64, 4); /* exactly 256 records, 64 readings */
    parse_ok_full(body, strlen(body), GW_CT_SENML, DEV, &l, &b);
    assert_int_equal(b.n_readings, 64);
    assert_int_equal(b.n_values, 256);
    assert_reading(&b, 63, true, 64, NOW, 252, 4);
    assert_value(&b, 255, "d", "", 63);
    gw_batch_free(&b);
    free(body);

    body = senml_batch(65, 1); /* 65 readings */
    expect_fail_full(body, strlen(body), GW_CT_SENML, DEV, &l, 413, "batch_too_large",
                     GW_PAYLOAD_QUALITY);
    free(body);

    body = senml_batch(43, 6); /* 258 records, 43 readings */
    expect_fail_full(body, strlen(body), GW_CT_SENML, DEV, &l, 413, "batch_too_large",
                     GW_PAYLOAD_QUALITY);
    free(body);

    /* plain JSON: 64 objects fine, 65 not */
    char json[4096];
    size_t o = (size_t)snprintf(json, sizeof(json), "[");
    for (int i = 1; i <= 65; i++)
        o += (size_t)snprintf(json + o, sizeof(json) - o, "{\"seq\":%d,\"a\":1},", i);
    json[o - 1] = ']';
    expect_fail_full(json, o, GW_CT_JSON, DEV, &l, 413, "batch_too_large", GW_PAYLOAD_QUALITY);
    o -= strlen("{\"seq\":65,\"a\":1},");
    json[o - 1] = ']';
    parse_ok_full(json, o, GW_CT_JSON, DEV, &l, &b);
    assert_int_equal(b.n_readings, 64);
    gw_batch_free(&b);

    /* max_records counts objects in plain JSON too */
    l.max_records = 2;
    const char *three = "[{\"a\":1},{\"a\":1},{\"a\":1}]";
    expect_fail_full(three, strlen(three), GW_CT_JSON, DEV, &l, 413, "batch_too_large",
                     GW_PAYLOAD_QUALITY);
}

static void identity(void **state)
{
    (void)state;
    accept("[{\"bn\":\"dev-001:\",\"n\":\"a\",\"v\":1},{\"bn\":\"dev-001:\",\"n\":\"b\",\"v\":1}]",
           GW_CT_SENML);
    const char *bad[] = {"\"dev-002:\"", "\"dev-001\"",    "\"dev-001:a\"",
                         "\"DEV-001:\"", "\"dev-001::\"",  "\"\"",
                         "\":\"",        "\"dev-00:\"",    "5",
                         "null",         "[\"dev-001:\"]", "\"dev-001/\""};
    char body[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "[{\"bn\":%s,\"n\":\"a\",\"v\":1}]", bad[i]);
        SENML_SEC(body, 403, "identity_mismatch");
    }
    /* a later record switching device */
    SENML_SEC(
        "[{\"bn\":\"dev-001:\",\"n\":\"a\",\"v\":1},{\"bn\":\"dev-002:\",\"n\":\"b\",\"v\":1}]",
        403, "identity_mismatch");

    /* 64-character IDs, the longest a certificate may carry */
    char id[65];
    memset(id, 'x', 64);
    id[64] = '\0';
    gw_payload_limits l = limits();
    gw_batch b;
    snprintf(body, sizeof(body), "[{\"bn\":\"%s:\",\"n\":\"a\",\"v\":1}]", id);
    parse_ok_full(body, strlen(body), GW_CT_SENML, id, &l, &b);
    gw_batch_free(&b);
    snprintf(body, sizeof(body), "[{\"bn\":\"%sx:\",\"n\":\"a\",\"v\":1}]", id);
    expect_fail_full(body, strlen(body), GW_CT_SENML, id, &l, 403, "identity_mismatch",
                     GW_PAYLOAD_SECURITY);
    snprintf(body, sizeof(body), "[{\"bn\":\"%.63s:\",\"n\":\"a\",\"v\":1}]", id);
    expect_fail_full(body, strlen(body), GW_CT_SENML, id, &l, 403, "identity_mismatch",
                     GW_PAYLOAD_SECURITY);
}

static void names(void **state)
{
    (void)state;
    char body[160];
    const char *ok[] = {"a", "0", "Temp_1", "x.y-z", "A-", "abcdefghijklmnopqrstuvwxyz012345"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"%s\",\"v\":1}]", ok[i]);
        accept(body, GW_CT_SENML);
        snprintf(body, sizeof(body), "{\"%s\":1}", ok[i]);
        accept(body, GW_CT_JSON);
    }
    const char *quality[] = {"",        "abcdefghijklmnopqrstuvwxyz0123456",
                             "_a",      ".a",
                             "-a",      "a b",
                             "a*b",     "caf\xc3\xa9",
                             "\\u00e9", "a,b",
                             "a\\\"b",  "a\\\\b"};
    for (size_t i = 0; i < sizeof(quality) / sizeof(quality[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"%s\",\"v\":1}]", quality[i]);
        SENML_FAIL(body, 422, "invalid_name");
        snprintf(body, sizeof(body), "{\"%s\":1}", quality[i]);
        JSON_FAIL(body, 422, "invalid_name");
    }
    const char *security[] = {"a/b",       "a+b",          "a#b",
                              "$SYS",      "dev-002:temp", "a:b",
                              "a\\u0001b", "a\\nb",        "a\\u007f",
                              "\\tab",     "x/#/+",        "abcdefghijklmnopqrstuvwxyz0123456/"};
    for (size_t i = 0; i < sizeof(security) / sizeof(security[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"%s\",\"v\":1}]", security[i]);
        SENML_SEC(body, 422, "invalid_name");
        snprintf(body, sizeof(body), "{\"%s\":1}", security[i]);
        JSON_SEC(body, 422, "invalid_name");
    }
    SENML_FAIL("[{\"v\":1}]", 422, "invalid_name");
    SENML_FAIL("[{\"n\":5,\"v\":1}]", 422, "invalid_name");
    SENML_FAIL("[{\"n\":null,\"v\":1}]", 422, "invalid_name");
}

static void units(void **state)
{
    (void)state;
    char body[160];
    const char *ok[] = {
        "Cel", "%RH", "m/s2", "1/min", "~!@#$%^&*()_+{}", "a b", "0123456789abcdef"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"u\":\"%s\",\"v\":1}]", ok[i]);
        accept(body, GW_CT_SENML);
        snprintf(body, sizeof(body), "[{\"bu\":\"%s\",\"n\":\"a\",\"v\":1}]", ok[i]);
        accept(body, GW_CT_SENML);
    }
    const char *quality[] = {"\"\"",
                             "\"0123456789abcdefg\"",
                             "\"a\\\"b\"",
                             "\"a\\\\b\"",
                             "\"\xc2\xb0\x43\"",
                             "\"\\u00b0C\"",
                             "5",
                             "null",
                             "[\"V\"]"};
    for (size_t i = 0; i < sizeof(quality) / sizeof(quality[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"u\":%s,\"v\":1}]", quality[i]);
        SENML_FAIL(body, 422, "invalid_unit");
        snprintf(body, sizeof(body), "[{\"bu\":%s,\"n\":\"a\",\"v\":1}]", quality[i]);
        SENML_FAIL(body, 422, "invalid_unit");
    }
    const char *security[] = {"\"C\\nel\"", "\"\\u001b[31m\"", "\"\\u007f\"", "\"\\r\""};
    for (size_t i = 0; i < sizeof(security) / sizeof(security[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"u\":%s,\"v\":1}]", security[i]);
        SENML_SEC(body, 422, "invalid_unit");
    }
}

static void values(void **state)
{
    (void)state;
    const char *fields[] = {"vs", "vb", "vd", "s"};
    const char *vals[] = {"\"on\"", "true", "\"aGk=\"", "3"};
    char body[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"%s\":%s}]", fields[i], vals[i]);
        SENML_FAIL(body, 422, "unsupported_value");
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"v\":1,\"%s\":%s}]", fields[i], vals[i]);
        SENML_FAIL(body, 422, "unsupported_value");
    }
    SENML_FAIL("[{\"n\":\"a\"}]", 422, "missing_value");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"u\":\"V\"}]", 422, "missing_value");
    const char *not_numbers[] = {"\"1\"", "null", "true", "[1]", "{}"};
    for (size_t i = 0; i < sizeof(not_numbers) / sizeof(not_numbers[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"v\":%s}]", not_numbers[i]);
        SENML_FAIL(body, 422, "invalid_value");
        snprintf(body, sizeof(body), "{\"a\":%s}", not_numbers[i]);
        JSON_FAIL(body, 422, "invalid_value");
    }
    JSON_FAIL("{}", 422, "missing_value");
    JSON_FAIL("{\"seq\":1,\"t\":1764086400,\"dropped\":0}", 422, "missing_value");
    JSON_FAIL("[{\"a\":1},{\"seq\":1}]", 422, "invalid_seq"); /* mixing is caught first */
    JSON_FAIL("[{\"a\":1},{\"t\":1764086400}]", 422, "missing_value");
}

static void fields_and_version(void **state)
{
    (void)state;
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"bv\":1}]", 422, "unsupported_field");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"bs\":1}]", 422, "unsupported_field");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"foo_\":1}]", 422, "unsupported_field");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"v\":1,\"_\":1}]", 422, "unsupported_field");
    accept("[{\"n\":\"a\",\"v\":1,\"foo\":1,\"_foo\":2,\"ut\":3}]", GW_CT_SENML);
    accept("[{\"bver\":10,\"n\":\"a\",\"v\":1}]", GW_CT_SENML);
    accept("[{\"bver\":10.0,\"n\":\"a\",\"v\":1}]", GW_CT_SENML);
    SENML_FAIL("[{\"bver\":11,\"n\":\"a\",\"v\":1}]", 422, "unsupported_version");
    SENML_FAIL("[{\"bver\":5,\"n\":\"a\",\"v\":1}]", 422, "unsupported_version");
    SENML_FAIL("[{\"bver\":\"10\",\"n\":\"a\",\"v\":1}]", 422, "unsupported_version");
}

static void times(void **state)
{
    (void)state;
    SENML_FAIL("[{\"bt\":\"1764086400\",\"n\":\"a\",\"v\":1}]", 422, "invalid_time");
    SENML_FAIL("[{\"t\":null,\"n\":\"a\",\"v\":1}]", 422, "invalid_time");
    JSON_FAIL("{\"t\":\"now\",\"a\":1}", 422, "invalid_time");

    char body[128];
    const double past = 7.0 * 24 * 3600, future = 300;
    /* the window's edges are inside it */
    snprintf(body, sizeof(body), "[{\"bt\":%.1f,\"n\":\"a\",\"v\":1}]", NOW - past);
    accept(body, GW_CT_SENML);
    snprintf(body, sizeof(body), "[{\"bt\":%.1f,\"n\":\"a\",\"v\":1}]", NOW + future);
    accept(body, GW_CT_SENML);
    snprintf(body, sizeof(body), "[{\"bt\":%.1f,\"n\":\"a\",\"v\":1}]", NOW - past - 0.5);
    SENML_FAIL(body, 422, "time_out_of_range");
    snprintf(body, sizeof(body), "[{\"bt\":%.1f,\"n\":\"a\",\"v\":1}]", NOW + future + 0.5);
    SENML_FAIL(body, 422, "time_out_of_range");
    snprintf(body, sizeof(body), "{\"t\":%.1f,\"a\":1}", NOW + future + 1);
    JSON_FAIL(body, 422, "time_out_of_range");
    snprintf(body, sizeof(body), "{\"t\":%.1f,\"a\":1}", NOW - past);
    accept(body, GW_CT_JSON);
    /* relative: 7 days and a bit ago; and far in the future */
    SENML_FAIL("[{\"t\":-604900,\"n\":\"a\",\"v\":1}]", 422, "time_out_of_range");
    SENML_FAIL("[{\"t\":301,\"n\":\"a\",\"v\":1}]", 422, "time_out_of_range");
    SENML_FAIL("[{\"bt\":1e308,\"t\":1e308,\"n\":\"a\",\"v\":1}]", 422, "time_out_of_range");
    /* plain JSON has no relative times: t=60 is 1970 */
    JSON_FAIL("{\"t\":60,\"a\":1}", 422, "time_out_of_range");
    JSON_FAIL("{\"t\":0,\"a\":1}", 422, "time_out_of_range");

    /* one reading, one time */
    SENML_FAIL("[{\"bt\":1764086400,\"n\":\"a\",\"v\":1,\"seq\":1},{\"t\":1,\"n\":\"b\",\"v\":2}]",
               422, "inconsistent_time");
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"bt\":1764086400,\"n\":\"b\",\"v\":2}]", 422,
               "inconsistent_time");
    accept("[{\"bt\":1764086400,\"n\":\"a\",\"v\":1},{\"t\":0,\"n\":\"b\",\"v\":2}]", GW_CT_SENML);
}

static void dropped(void **state)
{
    (void)state;
    const char *bad[] = {"-1", "1.5", "4294967296", "\"3\"", "null", "[]"};
    char body[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "[{\"n\":\"a\",\"v\":1,\"dropped\":%s}]", bad[i]);
        SENML_FAIL(body, 422, "invalid_dropped");
        snprintf(body, sizeof(body), "{\"a\":1,\"dropped\":%s}", bad[i]);
        JSON_FAIL(body, 422, "invalid_dropped");
    }
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"n\":\"b\",\"v\":1,\"dropped\":1}]", 422,
               "invalid_dropped");
    JSON_FAIL("[{\"a\":1},{\"a\":1,\"dropped\":1}]", 422, "invalid_dropped");
    gw_batch b;
    parse_ok("{\"a\":1,\"dropped\":12}", GW_CT_JSON, &b);
    assert_true(b.has_dropped);
    assert_int_equal(b.dropped, 12);
    gw_batch_free(&b);
}

static void duplicate_names(void **state)
{
    (void)state;
    SENML_FAIL("[{\"n\":\"a\",\"v\":1},{\"n\":\"a\",\"v\":2}]", 422, "duplicate_name");
    SENML_FAIL("[{\"n\":\"b\",\"v\":1,\"seq\":1},{\"n\":\"a\",\"v\":1},{\"n\":\"c\",\"v\":1},"
               "{\"n\":\"a\",\"u\":\"V\",\"v\":2},{\"n\":\"a\",\"v\":1,\"seq\":2}]",
               422, "duplicate_name");
    /* in the last reading as well as in earlier ones */
    SENML_FAIL("[{\"n\":\"a\",\"v\":1,\"seq\":1},{\"n\":\"a\",\"v\":1,\"seq\":2},{\"n\":\"a\","
               "\"v\":1}]",
               422, "duplicate_name");
    /* the same sensor in different readings is the point of a batch */
    accept("[{\"n\":\"a\",\"v\":1,\"seq\":1},{\"n\":\"a\",\"v\":2,\"seq\":2}]", GW_CT_SENML);
    /* names are case-sensitive */
    accept("[{\"n\":\"a\",\"v\":1},{\"n\":\"A\",\"v\":2}]", GW_CT_SENML);
}

static void senml_error(const char *body, gw_payload_error *err)
{
    gw_payload_limits l = limits();
    gw_batch b;
    assert_int_equal(run(body, strlen(body), GW_CT_SENML, DEV, NOW, &l, &b, err), -1);
    assert_true(detail_is_safe(err->detail));
}

static void details_never_echo_raw_bytes(void **state)
{
    (void)state;
    const char *bodies[] = {
        "[{\"n\":\"caf\xc3\xa9\\n\\u001b[2J\\\"<x>'\",\"v\":1}]",
        "[{\"n\":\"a\",\"u\":\"\\u001b]0;pwn\\u0007\",\"v\":1}]",
        "[{\"n\":\"a\",\"v\":1,\"\\u001b\\u00ff_\":1}]",
        "{\"\\\"\\\\\\u0085\":1,\"\\\"\\\\\\u0085\":2}",
        "[{\"n\":\"a\",\"v\":1,\"x\":\"\xff\"}]",
        "[\"\x01\"]",
    };
    gw_payload_error err = {0};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        senml_error(bodies[i], &err);
    /* escaped input still says which byte */
    senml_error("[{\"n\":\"a/b\",\"v\":1}]", &err);
    assert_non_null(strstr(err.detail, "record 1"));
    assert_non_null(strstr(err.detail, "0x2f"));
    assert_non_null(strstr(err.detail, "position 2"));
    senml_error("[{\"n\":\"a\\u00e9\",\"v\":1}]", &err);
    assert_non_null(strstr(err.detail, "a<c3><a9>"));
    /* a long hostile name is cut short in the detail */
    senml_error("[{\"n\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/\",\"v\":1}]",
                &err);
    assert_non_null(strstr(err.detail, "..."));
}

static void reads_only_len_bytes(void **state)
{
    (void)state;
    /* the bytes after len would make it invalid; they must not be looked at */
    const char *buf = "[{\"n\":\"a\",\"v\":1}]\xff garbage";
    gw_payload_limits l = limits();
    gw_batch b;
    parse_ok_full(buf, 17, GW_CT_SENML, DEV, &l, &b);
    gw_batch_free(&b);
    /* NULL limits mean the defaults; NULL err is allowed */
    assert_int_equal(gw_payload_parse("{\"a\":1}", 7, GW_CT_JSON, DEV, NOW, NULL, &b, NULL), 0);
    gw_batch_free(&b);
    assert_int_equal(gw_payload_parse("{\"a\":}", 6, GW_CT_JSON, DEV, NOW, NULL, &b, NULL), -1);
    assert_true(batch_is_empty(&b));
}

static void content_types(void **state)
{
    (void)state;
    gw_content_type ct = GW_CT_JSON;
    assert_int_equal(gw_content_type_parse("application/senml+json", &ct), 0);
    assert_int_equal(ct, GW_CT_SENML);
    assert_int_equal(gw_content_type_parse("Application/JSON; charset=utf-8", &ct), 0);
    assert_int_equal(ct, GW_CT_JSON);
    assert_int_equal(gw_content_type_parse("APPLICATION/SENML+JSON;charset=\"UTF-8\"", &ct), 0);
    assert_int_equal(ct, GW_CT_SENML);
    assert_int_equal(gw_content_type_parse(" application/json ; q=1 ;", &ct), 0);
    assert_int_equal(ct, GW_CT_JSON);

    const char *bad[] = {"text/plain",
                         "application/jsonx",
                         "application/json+senml",
                         "application/senml+cbor",
                         "application/",
                         "application",
                         "",
                         "application/json; charset=iso-8859-1",
                         "application/json; charset=\"utf-8",
                         "application/json; charset",
                         "application/json; =utf-8",
                         "application/json x",
                         "application/json\r\nX-Evil: 1",
                         "application/json;a=\"\\\"\"",
                         "application/json,application/senml+json",
                         "application/json\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ct = GW_CT_SENML;
        if (gw_content_type_parse(bad[i], &ct) != -1)
            print_error("accepted %s\n", bad[i]);
        assert_int_equal(gw_content_type_parse(bad[i], &ct), -1);
        assert_int_equal(ct, GW_CT_SENML); /* untouched */
    }
    assert_int_equal(gw_content_type_parse(NULL, &ct), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(senml_example),
        cmocka_unit_test(json_example),
        cmocka_unit_test(json_batch),
        cmocka_unit_test(senml_without_seq_is_one_reading),
        cmocka_unit_test(senml_relative_and_base_time),
        cmocka_unit_test(senml_base_unit_and_ignored_fields),
        cmocka_unit_test(senml_dropped),
        cmocka_unit_test(seq_bounds),
        cmocka_unit_test(seq_order_and_mixing),
        cmocka_unit_test(size_and_emptiness),
        cmocka_unit_test(unsupported_content_type_enum),
        cmocka_unit_test(invalid_utf8_forms),
        cmocka_unit_test(utf8_module),
        cmocka_unit_test(nul_bytes),
        cmocka_unit_test(depth),
        cmocka_unit_test(hostile_depth_is_cheap),
        cmocka_unit_test(malformed_json),
        cmocka_unit_test(numbers),
        cmocka_unit_test(duplicate_keys),
        cmocka_unit_test(structure),
        cmocka_unit_test(record_and_reading_limits),
        cmocka_unit_test(identity),
        cmocka_unit_test(names),
        cmocka_unit_test(units),
        cmocka_unit_test(values),
        cmocka_unit_test(fields_and_version),
        cmocka_unit_test(times),
        cmocka_unit_test(dropped),
        cmocka_unit_test(duplicate_names),
        cmocka_unit_test(details_never_echo_raw_bytes),
        cmocka_unit_test(reads_only_len_bytes),
        cmocka_unit_test(content_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
