/* iotctl vuln scan's version ordering and OSV range evaluation: Debian
 * versions ordered exactly as `dpkg --compare-versions` orders them (every
 * pair of a list of tricky versions, checked against dpkg itself when it
 * is installed, and a fixed table that needs no dpkg), SemVer 2.0.0
 * precedence, and ranges with introduced/fixed/last_affected events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vulnver.h"

extern char **environ;

static int sign(int v)
{
    return (v > 0) - (v < 0);
}

static void dpkg_known_pairs(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        int want;
    } t[] = {
        {"1.0", "1.0", 0},
        {"1.0~rc1", "1.0", -1},
        {"1.0~", "1.0", -1},
        {"1.0~~", "1.0~", -1},
        {"1.0", "1.0+b1", -1},
        {"1.0-1", "1.0-1+b1", -1},
        {"1:0.1", "2.0", 1},
        {"0:1.0", "1.0", 0},
        {"1.0-1", "1.0-01", 0},
        {"1.0a", "1.0", 1},
        {"1.0a", "1.0+", -1},
        {"1.10", "1.9", 1},
        {"3.0.19-1~deb12u2", "3.0.19-1~deb12u3", -1},
        {"3.0.19-1~deb12u2", "3.0.19-1", -1},
        {"3.0.19-1~deb12u2", "3.0.19-1~deb12u2", 0},
        {"2.36-9+deb12u14", "2.36-9+deb12u9", 1},
        {"1.0-1", "1.0", 1},
        {"1.0.", "1.0", 1},
        {"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_true(iot_vuln_version_valid(IOT_VER_DPKG, t[i].a));
        assert_true(iot_vuln_version_valid(IOT_VER_DPKG, t[i].b));
        if (sign(iot_vuln_dpkg_cmp(t[i].a, t[i].b)) != t[i].want)
            fail_msg("%s vs %s: want %d", t[i].a, t[i].b, t[i].want);
        assert_int_equal(sign(iot_vuln_dpkg_cmp(t[i].b, t[i].a)), -t[i].want);
    }
}

static void dpkg_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", "a1.0", "1.0-", ":1.0", "x:1.0", "1.0 1", "1.0-1:2", "1.0_1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (iot_vuln_version_valid(IOT_VER_DPKG, bad[i]))
            fail_msg("'%s' accepted as a Debian version", bad[i]);
    char longv[IOT_VULN_VERSION_MAX + 2];
    memset(longv, '1', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    assert_false(iot_vuln_version_valid(IOT_VER_DPKG, longv));
}

/* dpkg --compare-versions A OP B: 1 if true, 0 if false, -1 if it could
 * not run. */
static int dpkg_says(const char *a, const char *op, const char *b)
{
    char prog[] = "dpkg", flag[] = "--compare-versions", a_buf[IOT_VULN_VERSION_MAX + 1], op_buf[8],
         b_buf[IOT_VULN_VERSION_MAX + 1];
    snprintf(a_buf, sizeof(a_buf), "%s", a);
    snprintf(op_buf, sizeof(op_buf), "%s", op);
    snprintf(b_buf, sizeof(b_buf), "%s", b);
    char *argv[] = {prog, flag, a_buf, op_buf, b_buf, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "dpkg", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) > 1)
        return -1;
    return WEXITSTATUS(status) == 0;
}

static void dpkg_agrees_with_dpkg(void **state)
{
    (void)state;
    static const char *v[] = {
        "0",
        "0.1",
        "1",
        "1.0",
        "1.0~rc1",
        "1.0~rc1~1",
        "1.0+b1",
        "1.0-1",
        "1.0-1+b1",
        "1.0-1~bpo1",
        "1.0-2",
        "1.00",
        "1.0a",
        "1.0a1",
        "1.0A",
        "1.0.1",
        "1.0+",
        "1.0.",
        "1:0.9",
        "2:0",
        "10",
        "1.10",
        "1.9",
        "1.0-1.1",
        "3.0.19-1~deb12u2",
        "3.0.19-1~deb12u3",
        "3.0.19-1",
        "3.0.11-1~deb12u2",
        "1:2.66-4+deb12u2+b2",
        "2.36-9+deb12u14",
        "2.36-9+deb12u9",
        "2.1.12-stable-8+deb12u1",
        "9.2p1-2+deb12u3",
        "1.5.4+dfsg2-5",
        "8.1.0~5.15.0+dfsg1+~cs20.10.9.3-1+deb12u4",
        "1.0~~",
        "1.0~~a",
        "1.0-0",
        "1.0-00",
        "1.0-a",
        "1.0-a~",
    };
    size_t n = sizeof(v) / sizeof(v[0]), pairs = 0;
    if (dpkg_says("1", "lt", "2") != 1)
        skip();
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int ours = sign(iot_vuln_dpkg_cmp(v[i], v[j]));
            int lt = dpkg_says(v[i], "lt", v[j]), eq = dpkg_says(v[i], "eq", v[j]);
            assert_true(lt >= 0 && eq >= 0);
            int theirs = lt ? -1 : (eq ? 0 : 1);
            if (ours != theirs)
                fail_msg("%s vs %s: ours %d, dpkg %d", v[i], v[j], ours, theirs);
            pairs++;
        }
    }
    print_message("%zu pairs agree with dpkg --compare-versions\n", pairs);
}

static void semver_order(void **state)
{
    (void)state;
    /* Ascending, from semver.org's precedence examples and more. */
    static const char *v[] = {"0.9.9",      "1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta",
                              "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",
                              "1.0.0",      "1.0.1",        "1.2.0",         "1.10.0",
                              "5.2.2",      "v5.2.3",       "10.0.0"};
    size_t n = sizeof(v) / sizeof(v[0]);
    for (size_t i = 0; i < n; i++) {
        assert_true(iot_vuln_version_valid(IOT_VER_SEMVER, v[i]));
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            if (sign(iot_vuln_semver_cmp(v[i], v[j])) != want)
                fail_msg("%s vs %s: want %d", v[i], v[j], want);
        }
    }
    assert_int_equal(iot_vuln_semver_cmp("1.0.0+build.1", "1.0.0"), 0);
    assert_int_equal(iot_vuln_semver_cmp("5.2", "5.2.0"), 0);
    assert_int_equal(iot_vuln_semver_cmp("v1.2.3", "1.2.3"), 0);
    const char *bad[] = {"", "x", "1.", "1.x", "1.0.0-", "1.0.0+", "7ff91b4", "1.0.0-a_b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (iot_vuln_version_valid(IOT_VER_SEMVER, bad[i]))
            fail_msg("'%s' accepted as SemVer", bad[i]);
}

#define EV(k, v)                                                                                   \
    {                                                                                              \
        IOT_VULN_##k, v                                                                            \
    }

static bool in_range(iot_ver_scheme s, const char *version, const iot_vuln_event *ev, size_t n,
                     const char **fixed)
{
    bool affected = true;
    iot_err err = {0};
    assert_int_equal(iot_vuln_range_match(s, version, ev, n, &affected, fixed, &err), IOT_OK);
    return affected;
}

static void range_introduced_fixed(void **state)
{
    (void)state;
    const iot_vuln_event ev[] = {EV(FIXED, "3.0.19-1~deb12u3"), EV(INTRODUCED, "0")};
    const char *fixed = NULL;
    assert_true(in_range(IOT_VER_DPKG, "3.0.19-1~deb12u2", ev, 2, &fixed));
    assert_string_equal(fixed, "3.0.19-1~deb12u3");
    assert_false(in_range(IOT_VER_DPKG, "3.0.19-1~deb12u3", ev, 2, &fixed));
    assert_null(fixed);
    assert_false(in_range(IOT_VER_DPKG, "3.0.19-1", ev, 2, &fixed));
    assert_true(in_range(IOT_VER_DPKG, "1:0.1", ev, 2, &fixed) == false);
    /* Not introduced yet. */
    const iot_vuln_event later[] = {EV(INTRODUCED, "3.1.0"), EV(FIXED, "3.1.5")};
    assert_false(in_range(IOT_VER_SEMVER, "3.0.9", later, 2, &fixed));
    assert_true(in_range(IOT_VER_SEMVER, "3.1.0", later, 2, &fixed));
    assert_true(in_range(IOT_VER_SEMVER, "3.1.5-rc.1", later, 2, &fixed));
    assert_false(in_range(IOT_VER_SEMVER, "3.1.5", later, 2, &fixed));
}

static void range_last_affected_and_spans(void **state)
{
    (void)state;
    const iot_vuln_event la[] = {EV(INTRODUCED, "5.0.0"), EV(LAST_AFFECTED, "5.2.2")};
    const char *fixed = "x";
    assert_true(in_range(IOT_VER_SEMVER, "5.2.2", la, 2, &fixed));
    assert_null(fixed);
    assert_false(in_range(IOT_VER_SEMVER, "5.2.3", la, 2, &fixed));
    assert_false(in_range(IOT_VER_SEMVER, "4.4.0", la, 2, &fixed));
    /* Two affected spans, fixed in each branch. */
    const iot_vuln_event two[] = {EV(INTRODUCED, "1.0.0"), EV(FIXED, "1.0.5"),
                                  EV(INTRODUCED, "2.0.0"), EV(FIXED, "2.0.3")};
    assert_true(in_range(IOT_VER_SEMVER, "1.0.4", two, 4, &fixed));
    assert_string_equal(fixed, "1.0.5");
    assert_false(in_range(IOT_VER_SEMVER, "1.5.0", two, 4, &fixed));
    assert_true(in_range(IOT_VER_SEMVER, "2.0.0", two, 4, &fixed));
    assert_string_equal(fixed, "2.0.3");
    assert_false(in_range(IOT_VER_SEMVER, "2.0.3", two, 4, &fixed));
    /* Introduced only: everything from there on. */
    const iot_vuln_event open_end[] = {EV(INTRODUCED, "0")};
    assert_true(in_range(IOT_VER_DPKG, "0.1", open_end, 1, &fixed));
    assert_null(fixed);
}

static void range_errors(void **state)
{
    (void)state;
    bool affected = true;
    const char *fixed = NULL;
    iot_err err = {0};
    const iot_vuln_event bad[] = {EV(INTRODUCED, "0"), EV(FIXED, "not-a-version")};
    assert_int_equal(iot_vuln_range_match(IOT_VER_SEMVER, "1.0.0", bad, 2, &affected, &fixed, &err),
                     IOT_EINVAL);
    assert_non_null(strstr(err.msg, "not-a-version"));
    assert_false(affected);
    assert_int_equal(
        iot_vuln_range_match(IOT_VER_SEMVER, "7ff91b4", bad, 1, &affected, &fixed, &err),
        IOT_EINVAL);
    assert_non_null(strstr(err.msg, "7ff91b4"));
    iot_vuln_event many[IOT_VULN_EVENTS_MAX + 1];
    for (size_t i = 0; i < IOT_VULN_EVENTS_MAX + 1; i++)
        many[i] = (iot_vuln_event)EV(INTRODUCED, "0");
    assert_int_equal(iot_vuln_range_match(IOT_VER_DPKG, "1.0", many, IOT_VULN_EVENTS_MAX + 1,
                                          &affected, &fixed, &err),
                     IOT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dpkg_known_pairs),       cmocka_unit_test(dpkg_invalid),
        cmocka_unit_test(dpkg_agrees_with_dpkg),  cmocka_unit_test(semver_order),
        cmocka_unit_test(range_introduced_fixed), cmocka_unit_test(range_last_affected_and_spans),
        cmocka_unit_test(range_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
