/* PROXY protocol v2 headers: IPv4 and IPv6 sources, LOCAL and UNSPEC,
 * TLVs skipped, every truncation asking for more, and the refusals (wrong
 * signature, v1, version, command, family, oversize length, addresses
 * longer than the header); then the balancer list and its matching. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxyv2.h"

static const uint8_t SIG[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A header: signature, ver_cmd, family, then body (len bytes). */
static size_t header(uint8_t *buf, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t len)
{
    memcpy(buf, SIG, sizeof(SIG));
    buf[12] = ver_cmd;
    buf[13] = fam;
    buf[14] = (uint8_t)(len >> 8);
    buf[15] = (uint8_t)len;
    if (len > 0)
        memcpy(buf + 16, body, len);
    return 16 + len;
}

static const uint8_t TCP4_BODY[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0x9c, 0x40, 0x20, 0xfb};

static void tcp4_source(void **state)
{
    (void)state;
    uint8_t buf[GW_PROXY_MAX + 8];
    size_t n = header(buf, 0x21, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    buf[n] = 0x16; /* the TLS record behind it is not the header's */
    gw_proxy_header h;
    const char *why = NULL;
    assert_int_equal(gw_proxy_parse(buf, n + 1, &h, &why), GW_PROXY_DONE);
    assert_int_equal(h.length, 28);
    assert_false(h.local);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&h.source;
    assert_int_equal(h.source_len, sizeof(*in));
    assert_int_equal(in->sin_family, AF_INET);
    char text[INET_ADDRSTRLEN];
    assert_string_equal(inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)), "192.0.2.7");
    assert_int_equal(ntohs(in->sin_port), 40000);
}

static void tcp6_source_and_tlvs(void **state)
{
    (void)state;
    uint8_t body[36 + 9] = {0};
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", body), 1);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", body + 16), 1);
    body[32] = 0x30, body[33] = 0x39; /* 12345 */
    body[34] = 0x20, body[35] = 0xfb;
    /* TLVs: PP2_TYPE_ALPN "h2", PP2_TYPE_NOOP of 0 bytes, then one of 0 */
    const uint8_t tlvs[9] = {0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x01, 0x00};
    memcpy(body + 36, tlvs, sizeof(tlvs));
    uint8_t buf[GW_PROXY_MAX];
    size_t n = header(buf, 0x21, 0x21, body, sizeof(body));
    gw_proxy_header h;
    const char *why = NULL;
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_DONE);
    assert_int_equal(h.length, 16 + 45);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&h.source;
    assert_int_equal(h.source_len, sizeof(*in6));
    char text[INET6_ADDRSTRLEN];
    assert_string_equal(inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)), "2001:db8::7");
    assert_int_equal(ntohs(in6->sin6_port), 12345);
}

static void local_and_unspec(void **state)
{
    (void)state;
    uint8_t buf[GW_PROXY_MAX];
    gw_proxy_header h;
    const char *why = NULL;
    /* LOCAL: a health check of the balancer's own; any family, body skipped */
    size_t n = header(buf, 0x20, 0x00, NULL, 0);
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_DONE);
    assert_true(h.local);
    assert_int_equal(h.length, 16);
    assert_int_equal(h.source_len, 0);
    n = header(buf, 0x20, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_DONE);
    assert_true(h.local);
    assert_int_equal(h.length, 28);
    /* PROXY with UNSPEC: no address to take */
    n = header(buf, 0x21, 0x00, NULL, 0);
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_DONE);
    assert_true(h.local);
}

static void truncation_asks_for_more(void **state)
{
    (void)state;
    uint8_t buf[GW_PROXY_MAX];
    size_t n = header(buf, 0x21, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    gw_proxy_header h;
    const char *why = NULL;
    for (size_t len = 0; len < n; len++) {
        assert_int_equal(gw_proxy_parse(buf, len, &h, &why), GW_PROXY_MORE);
        assert_int_equal(h.length, 0);
    }
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_DONE);
}

static void expect_invalid(const uint8_t *buf, size_t n, const char *want)
{
    gw_proxy_header h;
    const char *why = NULL;
    assert_int_equal(gw_proxy_parse(buf, n, &h, &why), GW_PROXY_INVALID);
    assert_non_null(why);
    assert_non_null(strstr(why, want));
    assert_int_equal(h.length, 0);
}

static void refusals(void **state)
{
    (void)state;
    uint8_t buf[GW_PROXY_MAX + 64];
    size_t n = header(buf, 0x21, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    buf[5] ^= 0x01; /* signature */
    expect_invalid(buf, n, "signature");
    expect_invalid((const uint8_t *)"\x16\x03\x01\x02\x00\x01", 6, "signature"); /* TLS */
    expect_invalid((const uint8_t *)"PROXY TCP4 192.0.2.7 192.0.2.1 1 2\r\n", 36, "v1");
    expect_invalid((const uint8_t *)"PRO", 3, "v1");
    n = header(buf, 0x11, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    expect_invalid(buf, n, "version");
    n = header(buf, 0x31, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    expect_invalid(buf, n, "version");
    n = header(buf, 0x22, 0x11, TCP4_BODY, sizeof(TCP4_BODY));
    expect_invalid(buf, n, "command");
    n = header(buf, 0x21, 0x12, TCP4_BODY, sizeof(TCP4_BODY)); /* UDP over IPv4 */
    expect_invalid(buf, n, "family");
    n = header(buf, 0x21, 0x31, TCP4_BODY, sizeof(TCP4_BODY)); /* AF_UNIX */
    expect_invalid(buf, n, "family");
    n = header(buf, 0x21, 0x11, TCP4_BODY, 8); /* shorter than two addresses and ports */
    expect_invalid(buf, n, "too short");
    n = header(buf, 0x21, 0x21, TCP4_BODY, sizeof(TCP4_BODY));
    expect_invalid(buf, n, "too short");
    /* a length over the cap is refused from the 16 bytes, before its body */
    uint8_t big[16];
    header(big, 0x21, 0x11, NULL, 0);
    big[14] = 0x02, big[15] = 0x19; /* 537 */
    expect_invalid(big, sizeof(big), "longer");
    big[15] = 0x18; /* 536: waits for the body */
    gw_proxy_header h;
    const char *why = NULL;
    assert_int_equal(gw_proxy_parse(big, sizeof(big), &h, &why), GW_PROXY_MORE);
}

static void sniff(void **state)
{
    (void)state;
    assert_int_equal(gw_proxy_sniff(SIG, sizeof(SIG)), GW_PROXY_DONE);
    assert_int_equal(gw_proxy_sniff(SIG, 5), GW_PROXY_MORE);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"PROXY TCP4", 10), GW_PROXY_DONE);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"PRO", 3), GW_PROXY_MORE);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"", 0), GW_PROXY_MORE);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"POST / HTTP/1.1", 15), GW_PROXY_INVALID);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"\x16\x03\x01", 3), GW_PROXY_INVALID);
    assert_int_equal(gw_proxy_sniff((const uint8_t *)"\r\n\r\nX", 5), GW_PROXY_INVALID);
}

static bool match(const gw_proxy_from *f, const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
        return gw_proxy_from_match(f, (struct sockaddr *)&ss, sizeof(*in6));
    }
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    return gw_proxy_from_match(f, (struct sockaddr *)&ss, sizeof(*in));
}

static void from_list(void **state)
{
    (void)state;
    gw_proxy_from f;
    char why[160];
    assert_true(gw_proxy_from_parse("", &f, why, sizeof(why)));
    assert_int_equal(f.n, 0);
    assert_false(match(&f, "127.0.0.1"));
    assert_true(gw_proxy_from_parse(" 192.0.2.10, 10.1.0.0/16 2001:db8:1::/48,,::1 ", &f, why,
                                    sizeof(why)));
    assert_int_equal(f.n, 4);
    assert_true(match(&f, "192.0.2.10"));
    assert_false(match(&f, "192.0.2.11"));
    assert_true(match(&f, "10.1.255.3"));
    assert_false(match(&f, "10.2.0.1"));
    assert_true(match(&f, "2001:db8:1:ffff::9"));
    assert_false(match(&f, "2001:db8:2::9"));
    assert_true(match(&f, "::1"));
    assert_true(match(&f, "::ffff:192.0.2.10")); /* a dual-stack listener's IPv4 peer */
    assert_true(gw_proxy_from_parse("0.0.0.0/0", &f, why, sizeof(why)));
    assert_true(match(&f, "203.0.113.9"));
    assert_false(match(&f, "2001:db8::1"));
    assert_true(gw_proxy_from_parse("10.0.0.1/25", &f, why, sizeof(why)));
    assert_true(match(&f, "10.0.0.127"));
    assert_false(match(&f, "10.0.0.128"));
}

static void from_errors_name_the_entry(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"192.0.2.10 192.0.2.300", "'192.0.2.300'"},
        {"10.0.0.0/33", "'10.0.0.0/33'"},
        {"2001:db8::/129", "'2001:db8::/129'"},
        {"10.0.0.0/", "'10.0.0.0/'"},
        {"10.0.0.0/08", "'10.0.0.0/08'"},
        {"10.0.0.0/x", "'10.0.0.0/x'"},
        {"haproxy.example.org", "'haproxy.example.org'"},
        {"/24", "'/24'"},
        {"192.0.2.1;", "'192.0.2.1;'"},
    };
    gw_proxy_from f;
    char why[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(gw_proxy_from_parse(bad[i][0], &f, why, sizeof(why)));
        assert_non_null(strstr(why, bad[i][1]));
        assert_non_null(gw_proxy_from_check(bad[i][0]));
    }
    char many[33 * 12] = "";
    for (int i = 0; i < 33; i++) {
        char one[16];
        snprintf(one, sizeof(one), "10.0.0.%d ", i);
        size_t used = strlen(many);
        memcpy(many + used, one, strlen(one) + 1);
    }
    assert_false(gw_proxy_from_parse(many, &f, why, sizeof(why)));
    assert_non_null(strstr(why, "'10.0.0.32'"));
    assert_null(gw_proxy_from_check("127.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tcp4_source),      cmocka_unit_test(tcp6_source_and_tlvs),
        cmocka_unit_test(local_and_unspec), cmocka_unit_test(truncation_asks_for_more),
        cmocka_unit_test(refusals),         cmocka_unit_test(sniff),
        cmocka_unit_test(from_list),        cmocka_unit_test(from_errors_name_the_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
