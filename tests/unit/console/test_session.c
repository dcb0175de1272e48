/* Sessions with a fake clock: idle and absolute expiry, logout, eviction
 * of the least recently used, the cookie parser and the CSRF check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "session.h"

static unsigned char rnd[2 * IC_SESSION_RANDOM];

static const ic_session *make(ic_sessions *s, const char *op, unsigned char seed, int64_t now)
{
    memset(rnd, seed, sizeof(rnd));
    rnd[IC_SESSION_RANDOM] ^= 0xff; /* the CSRF token differs from the id */
    return ic_session_create(s, op, "127.0.0.1", rnd, now);
}

static void idle_and_absolute_expiry(void **state)
{
    (void)state;
    ic_session slots[4];
    ic_sessions s;
    ic_sessions_init(&s, slots, 4, 100, 1000);
    const ic_session *a = make(&s, "alice", 1, 0);
    char id[IC_SESSION_HEX + 1];
    memcpy(id, a->id, sizeof(id));
    assert_string_not_equal(a->id, a->csrf);
    assert_non_null(ic_session_find(&s, id, 99));
    assert_non_null(ic_session_find(&s, id, 198)); /* used at 99: idle until 199 */
    assert_null(ic_session_find(&s, id, 298));     /* idle 100 s */
    a = make(&s, "alice", 2, 0);
    memcpy(id, a->id, sizeof(id));
    for (int64_t t = 90; t < 1000; t += 90)
        assert_non_null(ic_session_find(&s, id, t));
    assert_null(ic_session_find(&s, id, 1000)); /* absolute limit, however busy */
}

static void logout_and_unknown_ids(void **state)
{
    (void)state;
    ic_session slots[4];
    ic_sessions s;
    ic_sessions_init(&s, slots, 4, 100, 1000);
    const ic_session *a = make(&s, "alice", 3, 0);
    char id[IC_SESSION_HEX + 1];
    memcpy(id, a->id, sizeof(id));
    assert_true(ic_session_alive(&s, id, 1));
    assert_false(ic_session_alive(&s, id, 100)); /* alive does not count as a use */
    assert_true(ic_session_end(&s, id));
    assert_false(ic_session_alive(&s, id, 1));
    assert_null(ic_session_find(&s, id, 1));
    assert_false(ic_session_end(&s, id));
    assert_null(ic_session_find(&s, "", 1));
    assert_null(ic_session_find(&s, "00", 1));
    char zeros[IC_SESSION_HEX + 1];
    memset(zeros, '0', IC_SESSION_HEX);
    zeros[IC_SESSION_HEX] = '\0';
    assert_null(ic_session_find(&s, zeros, 1)); /* an empty slot's id is "" */
    make(&s, "bob", 4, 0);
    make(&s, "bob", 5, 0);
    make(&s, "carol", 6, 0);
    assert_int_equal(ic_session_end_operator(&s, "bob"), 2);
    assert_int_equal(ic_session_count(&s, 1), 1);
}

static void full_table_evicts_least_recently_used(void **state)
{
    (void)state;
    ic_session slots[2];
    ic_sessions s;
    ic_sessions_init(&s, slots, 2, 100, 1000);
    char a[IC_SESSION_HEX + 1], b[IC_SESSION_HEX + 1];
    memcpy(a, make(&s, "alice", 7, 0)->id, sizeof(a));
    memcpy(b, make(&s, "bob", 8, 1)->id, sizeof(b));
    assert_non_null(ic_session_find(&s, a, 5)); /* alice used last */
    assert_non_null(make(&s, "mallory", 9, 6));
    assert_non_null(ic_session_find(&s, a, 7));
    assert_null(ic_session_find(&s, b, 7));
}

static void cookie_parsing(void **state)
{
    (void)state;
    char id[IC_SESSION_HEX + 1];
    char good[200], two[400];
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    snprintf(good, sizeof(good), "theme=dark; " IC_COOKIE_NAME "=%s; x=y", hex);
    assert_true(ic_cookie_session_id(good, id));
    assert_string_equal(id, hex);
    snprintf(two, sizeof(two), "%s; " IC_COOKIE_NAME "=%s", good, hex);
    assert_false(ic_cookie_session_id(two, id));
    assert_false(ic_cookie_session_id("", id));
    assert_false(ic_cookie_session_id(IC_COOKIE_NAME "=ABC", id));
    snprintf(good, sizeof(good), IC_COOKIE_NAME "=%.63sG", hex);
    assert_false(ic_cookie_session_id(good, id));
    char set[256];
    assert_true(ic_cookie_format(set, sizeof(set), hex, 3600));
    assert_non_null(strstr(set, "Secure; HttpOnly; SameSite=Strict; Path=/"));
    assert_true(strncmp(set, "__Host-", 7) == 0);
    assert_false(ic_cookie_format(set, 20, hex, 3600));
}

static void csrf_check(void **state)
{
    (void)state;
    ic_session slots[1];
    ic_sessions s;
    ic_sessions_init(&s, slots, 1, 100, 1000);
    const ic_session *a = make(&s, "alice", 10, 0);
    const char *own = "https://console.example:8444";
    assert_int_equal(ic_csrf_check(a, a->csrf, own, own), IC_CSRF_OK);
    assert_int_equal(ic_csrf_check(a, a->csrf, "", own), IC_CSRF_NO_ORIGIN);
    assert_int_equal(ic_csrf_check(a, a->csrf, "https://evil.example", own), IC_CSRF_BAD_ORIGIN);
    assert_int_equal(ic_csrf_check(a, a->csrf, "https://console.example:8444.evil", own),
                     IC_CSRF_BAD_ORIGIN);
    assert_int_equal(ic_csrf_check(a, "", own, own), IC_CSRF_NO_TOKEN);
    assert_int_equal(ic_csrf_check(a, a->id, own, own), IC_CSRF_BAD_TOKEN);
    assert_int_equal(ic_csrf_check(a, "abc", own, own), IC_CSRF_BAD_TOKEN);
    assert_string_equal(ic_csrf_reason(IC_CSRF_BAD_ORIGIN), "origin_mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_and_absolute_expiry),
        cmocka_unit_test(logout_and_unknown_ids),
        cmocka_unit_test(full_table_evicts_least_recently_used),
        cmocka_unit_test(cookie_parsing),
        cmocka_unit_test(csrf_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
