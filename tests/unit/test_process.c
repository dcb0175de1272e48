/* iot_harden_process: no core file and no same-user ptrace for the
 * processes that hold keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "iot/process.h"

static void harden_disables_core_dumps(void **state)
{
    (void)state;
    /* Start from a dumpable process with core files allowed, as a shell
     * with `ulimit -c unlimited` would start it. */
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), 0);

    iot_err err = {0};
    assert_int_equal(iot_harden_process(&err), IOT_OK);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
    assert_int_equal(rl.rlim_max, 0);
    /* The hard limit is 0: without privilege, core files cannot be allowed
     * again (root may raise it: CAP_SYS_RESOURCE). */
    if (geteuid() != 0) {
        rl.rlim_cur = rl.rlim_max = 1024 * 1024;
        assert_int_not_equal(setrlimit(RLIMIT_CORE, &rl), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(harden_disables_core_dumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
