/* Connections per address: the cap, release, how addresses are grouped,
 * a full table, and the hash table checked against a plain array model
 * through many random acquires and releases; then the rate of new
 * connections per address. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addrlimit.h"

static gw_addr_key v4(const char *text)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(5000)};
    assert_int_equal(inet_pton(AF_INET, text, &in.sin_addr), 1);
    gw_addr_key key;
    assert_true(gw_addr_key_of((struct sockaddr *)&in, sizeof(in), &key));
    return key;
}

static gw_addr_key v6(const char *text, uint16_t port)
{
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    gw_addr_key key;
    assert_true(gw_addr_key_of((struct sockaddr *)&in6, sizeof(in6), &key));
    return key;
}

static void cap_per_address(void **state)
{
    (void)state;
    gw_addr_limit *lim = gw_addr_limit_new(3, 100);
    assert_non_null(lim);
    gw_addr_key a = v4("192.0.2.7"), b = v4("192.0.2.8");
    bool first = false;
    for (int i = 0; i < 3; i++) {
        assert_true(gw_addr_limit_acquire(lim, &a, &first));
        assert_int_equal(first, i == 0); /* only the first connection adds the address */
    }
    assert_false(gw_addr_limit_acquire(lim, &a, &first));
    assert_false(first);
    assert_int_equal(gw_addr_limit_count(lim, &a), 3);
    assert_true(gw_addr_limit_acquire(lim, &b, NULL)); /* another address is not affected */
    gw_addr_limit_release(lim, &a);
    assert_true(gw_addr_limit_acquire(lim, &a, NULL)); /* a slot came back */
    assert_false(gw_addr_limit_acquire(lim, &a, NULL));
    assert_int_equal(gw_addr_limit_addresses(lim), 2);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gw_addr_limit_release(lim, &a), i == 2); /* true for the last */
    assert_true(gw_addr_limit_release(lim, &b));
    assert_int_equal(gw_addr_limit_addresses(lim), 0);
    assert_int_equal(gw_addr_limit_count(lim, &a), 0);
    assert_false(gw_addr_limit_release(lim, &b)); /* releasing what is not held changes nothing */
    assert_int_equal(gw_addr_limit_addresses(lim), 0);
    gw_addr_limit_free(lim);
}

static void grouping(void **state)
{
    (void)state;
    gw_addr_key plain = v4("198.51.100.20");
    gw_addr_key mapped = v6("::ffff:198.51.100.20", 1);
    assert_memory_equal(&plain, &mapped, sizeof(plain));

    /* One /64: the same key whatever the interface identifier and port. */
    gw_addr_key h1 = v6("2001:db8:1:2::1", 1), h2 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff", 2);
    gw_addr_key other = v6("2001:db8:1:3::1", 1);
    assert_memory_equal(&h1, &h2, sizeof(h1));
    assert_memory_not_equal(&h1, &other, sizeof(h1));

    char text[64];
    gw_addr_key_format(&h1, text, sizeof(text));
    assert_string_equal(text, "2001:db8:1:2::/64");
    gw_addr_key_format(&mapped, text, sizeof(text));
    assert_string_equal(text, "198.51.100.20");

    struct sockaddr_un_like {
        sa_family_t family;
        char path[20];
    } unix_addr = {.family = AF_UNIX};
    gw_addr_key key;
    assert_false(gw_addr_key_of((struct sockaddr *)&unix_addr, sizeof(unix_addr), &key));
    struct sockaddr_in short_in = {.sin_family = AF_INET};
    assert_false(gw_addr_key_of((struct sockaddr *)&short_in, 4, &key));
}

/* Peers in log lines: address and port, IPv6 in brackets, "?" otherwise. */
static void peer_text(void **state)
{
    (void)state;
    char text[GW_PEER_MAX];
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(51234)};
    assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &in.sin_addr), 1);
    gw_peer_format((struct sockaddr *)&in, sizeof(in), text, sizeof(text));
    assert_string_equal(text, "192.0.2.7:51234");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(8443)};
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr), 1);
    gw_peer_format((struct sockaddr *)&in6, sizeof(in6), text, sizeof(text));
    assert_string_equal(text, "[2001:db8::1]:8443");
    gw_peer_format((struct sockaddr *)&in, 4, text, sizeof(text)); /* too short for IPv4 */
    assert_string_equal(text, "?");
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    gw_peer_format(&unspec, sizeof(unspec), text, sizeof(text));
    assert_string_equal(text, "?");
    char small[8];
    gw_peer_format((struct sockaddr *)&in6, sizeof(in6), small, sizeof(small));
    assert_string_equal(small, "[2001:d"); /* cut, still terminated */
}

static void full_table_refuses_new_addresses(void **state)
{
    (void)state;
    gw_addr_limit *lim = gw_addr_limit_new(2, 3);
    gw_addr_key k[4] = {v4("10.0.0.1"), v4("10.0.0.2"), v4("10.0.0.3"), v4("10.0.0.4")};
    for (int i = 0; i < 3; i++)
        assert_true(gw_addr_limit_acquire(lim, &k[i], NULL));
    assert_false(gw_addr_limit_acquire(lim, &k[3], NULL)); /* a fourth address: no room */
    assert_true(gw_addr_limit_acquire(lim, &k[0], NULL));  /* known addresses still may */
    gw_addr_limit_release(lim, &k[1]);
    assert_true(gw_addr_limit_acquire(lim, &k[3], NULL));
    gw_addr_limit_free(lim);
}

static void zero_cap_refuses_everything(void **state)
{
    (void)state;
    gw_addr_limit *lim = gw_addr_limit_new(0, 10);
    gw_addr_key a = v4("10.0.0.1");
    assert_false(gw_addr_limit_acquire(lim, &a, NULL));
    assert_int_equal(gw_addr_limit_addresses(lim), 0);
    gw_addr_limit_free(lim);
}

/* Random acquires and releases over 600 addresses, many sharing probe runs
 * in a table of 1,024 slots: after every step each address's count must be
 * what a plain array says, which fails if a deletion strands an entry. */
static void matches_a_model(void **state)
{
    (void)state;
    enum { N = 600, CAP = 4, STEPS = 200000 };
    gw_addr_limit *lim = gw_addr_limit_new(CAP, N);
    uint32_t model[N] = {0};
    gw_addr_key keys[N];
    for (int i = 0; i < N; i++) {
        struct sockaddr_in in = {.sin_family = AF_INET};
        in.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        assert_true(gw_addr_key_of((struct sockaddr *)&in, sizeof(in), &keys[i]));
    }
    srand(7);
    uint32_t held_addresses = 0;
    for (int step = 0; step < STEPS; step++) {
        int i = rand() % N;
        if (rand() % 2) {
            bool want = model[i] < CAP, first = false;
            assert_int_equal(gw_addr_limit_acquire(lim, &keys[i], &first), want);
            assert_int_equal(first, want && model[i] == 0);
            if (want && model[i]++ == 0)
                held_addresses++;
        } else {
            assert_int_equal(gw_addr_limit_release(lim, &keys[i]), model[i] == 1);
            if (model[i] > 0 && --model[i] == 0)
                held_addresses--;
        }
        if (step % 1000 == 0 || step == STEPS - 1) {
            for (int k = 0; k < N; k++)
                assert_int_equal(gw_addr_limit_count(lim, &keys[k]), model[k]);
            assert_int_equal(gw_addr_limit_addresses(lim), held_addresses);
        }
    }
    gw_addr_limit_free(lim);
}

/* New connections over time: the burst, then one per 1/rate seconds, per
 * bucket; the bucket never holds more than the burst. */
static void rate_burst_and_refill(void **state)
{
    (void)state;
    gw_addr_rate *r = gw_addr_rate_new(2.0, 5.0, 42);
    assert_non_null(r);
    gw_addr_key a = v4("192.0.2.7"), b = v4("192.0.2.8");
    assert_false(gw_addr_rate_same_bucket(r, &a, &b)); /* true for seed 42 */
    for (int i = 0; i < 5; i++)
        assert_true(gw_addr_rate_take(r, &a, 100.0));
    assert_false(gw_addr_rate_take(r, &a, 100.0));
    assert_true(gw_addr_rate_take(r, &b, 100.0));  /* another address has its own */
    assert_false(gw_addr_rate_take(r, &a, 100.4)); /* 0.8 of a connection back */
    assert_true(gw_addr_rate_take(r, &a, 100.5));  /* one back */
    assert_false(gw_addr_rate_take(r, &a, 100.5));
    /* An hour later: the burst again, not 7,200 connections. */
    for (int i = 0; i < 5; i++)
        assert_true(gw_addr_rate_take(r, &a, 3700.0));
    assert_false(gw_addr_rate_take(r, &a, 3700.0));
    /* A clock that steps back gives nothing back. */
    assert_false(gw_addr_rate_take(r, &a, 3000.0));
    gw_addr_rate_free(r);
}

static void rate_groups_like_the_cap(void **state)
{
    (void)state;
    gw_addr_rate *r = gw_addr_rate_new(1.0, 2.0, 7);
    gw_addr_key plain = v4("198.51.100.20"), mapped = v6("::ffff:198.51.100.20", 9);
    gw_addr_key h1 = v6("2001:db8:1:2::1", 1), h2 = v6("2001:db8:1:2::2", 2);
    assert_true(gw_addr_rate_same_bucket(r, &plain, &mapped));
    assert_true(gw_addr_rate_same_bucket(r, &h1, &h2));
    assert_true(gw_addr_rate_take(r, &plain, 1.0));
    assert_true(gw_addr_rate_take(r, &mapped, 1.0));
    assert_false(gw_addr_rate_take(r, &plain, 1.0)); /* the same address twice over */
    gw_addr_rate_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cap_per_address),
        cmocka_unit_test(grouping),
        cmocka_unit_test(peer_text),
        cmocka_unit_test(full_table_refuses_new_addresses),
        cmocka_unit_test(zero_cap_refuses_everything),
        cmocka_unit_test(matches_a_model),
        cmocka_unit_test(rate_burst_and_refill),
        cmocka_unit_test(rate_groups_like_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
