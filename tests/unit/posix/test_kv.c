/* The POSIX port's key-value storage: the port contract (ENOENT, ENOSPC,
 * key rules), one process per state directory, and atomic replacement:
 * a process killed at any instant during sets leaves each key holding a
 * whole old or new value. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iotd_posix/kv.h"

static char dir[64];
static char state[96];

static int make_dir(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/iotd-kv.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    /* A directory the store must create, parents included. */
    snprintf(state, sizeof(state), "%s/state/dev-1", dir);
    return 0;
}

static int remove_dir(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void open_kv(iotd_posix_kv *kv)
{
    iot_err err = {0};
    assert_int_equal(iotd_posix_kv_open(kv, state, &err), IOT_OK);
}

static void set_then_get_round_trips(void **st)
{
    (void)st;
    iotd_posix_kv kv;
    open_kv(&kv);
    unsigned char buf[64];
    size_t len = 99;
    assert_int_equal(iotd_posix_kv_get(&kv, "seq.0", buf, sizeof(buf), &len), IOTD_ENOENT);
    assert_int_equal(len, 0);
    assert_int_equal(iotd_posix_kv_set(&kv, "seq.0", "\x01\x00\xff\x7f", 4), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, "seq.0", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "\x01\x00\xff\x7f", 4);
    /* A shorter value leaves nothing of the longer one behind. */
    assert_int_equal(iotd_posix_kv_set(&kv, "seq.0", "z", 1), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, "seq.0", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 'z');
    /* Empty blobs are blobs too. */
    assert_int_equal(iotd_posix_kv_set(&kv, "empty", NULL, 0), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, "empty", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 0);
    iotd_posix_kv_close(&kv);

    /* Durable: another open sees it; modes keep other users out. */
    open_kv(&kv);
    assert_int_equal(iotd_posix_kv_get(&kv, "seq.0", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 1);
    iotd_posix_kv_close(&kv);
    struct stat sb;
    char path[160];
    snprintf(path, sizeof(path), "%s/seq.0.kv", state);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(state, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
}

static void contract_errors(void **st)
{
    (void)st;
    iotd_posix_kv kv;
    open_kv(&kv);
    unsigned char big[65];
    unsigned char buf[8];
    size_t len = 0;
    memset(big, 'x', sizeof(big));
    assert_int_equal(iotd_posix_kv_set(&kv, "blob", big, 64), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, "blob", buf, sizeof(buf), &len), IOTD_ENOSPC);
    assert_int_equal(iotd_posix_kv_set(&kv, "blob", big, 65), IOTD_EINVAL);

    static const char *const bad[] = {"", "Upper", "a/b", "0123456789abcdef", "q-1", "../x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(iotd_posix_kv_set(&kv, bad[i], "v", 1), IOTD_EINVAL);
        assert_int_equal(iotd_posix_kv_get(&kv, bad[i], buf, sizeof(buf), &len), IOTD_EINVAL);
    }
    /* "." and ".." are valid keys: distinct values, not directory entries. */
    assert_int_equal(iotd_posix_kv_set(&kv, ".", "1", 1), IOTD_OK);
    assert_int_equal(iotd_posix_kv_set(&kv, "..", "22", 2), IOTD_OK);
    assert_int_equal(iotd_posix_kv_set(&kv, "0123456789abcde", "3", 1), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, ".", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 1);
    assert_int_equal(iotd_posix_kv_get(&kv, "..", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 2);
    iotd_posix_kv_close(&kv);
}

static void one_process_per_directory(void **st)
{
    (void)st;
    iotd_posix_kv a, b;
    iot_err err = {0};
    open_kv(&a);
    assert_int_equal(iotd_posix_kv_open(&b, state, &err), IOT_EBUSY);
    assert_non_null(strstr(err.msg, "in use by another process"));
    assert_non_null(strstr(err.msg, state));
    iotd_posix_kv_close(&a);
    assert_int_equal(iotd_posix_kv_open(&b, state, &err), IOT_OK);
    iotd_posix_kv_close(&b);
}

static void leftover_temp_file_is_ignored(void **st)
{
    (void)st;
    iotd_posix_kv kv;
    open_kv(&kv);
    assert_int_equal(iotd_posix_kv_set(&kv, "qm.0", "good", 4), IOTD_OK);
    iotd_posix_kv_close(&kv);
    /* What a set cut short before its rename leaves behind. */
    char path[160];
    snprintf(path, sizeof(path), "%s/.qm.0.kv.tmp", state);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("torn", f);
    fclose(f);
    open_kv(&kv);
    unsigned char buf[16];
    size_t len = 0;
    assert_int_equal(iotd_posix_kv_get(&kv, "qm.0", buf, sizeof(buf), &len), IOTD_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "good", 4);
    assert_int_equal(iotd_posix_kv_set(&kv, "qm.0", "next", 4), IOTD_OK);
    assert_int_equal(iotd_posix_kv_get(&kv, "qm.0", buf, sizeof(buf), &len), IOTD_OK);
    assert_memory_equal(buf, "next", 4);
    iotd_posix_kv_close(&kv);
}

/* The child writes two values of different lengths in turn, as fast as it
 * can, until it is killed. After each of its first few sets it writes one
 * byte to `done`, so the parent knows how many sets had certainly finished
 * when its kill landed, whatever the speed of this machine's disk. */
enum { REPORTED_SETS = 3 };

static void writer(int done)
{
    iotd_posix_kv kv;
    unsigned char a[7], b[64];
    memset(a, 'a', sizeof(a));
    memset(b, 'b', sizeof(b));
    iot_err err = {0};
    if (iotd_posix_kv_open(&kv, state, &err) != IOT_OK)
        _exit(2);
    for (unsigned i = 0;; i++) {
        if (iotd_posix_kv_set(&kv, "q.7", (i & 1) ? b : a, (i & 1) ? sizeof(b) : sizeof(a)) !=
            IOTD_OK)
            _exit(3);
        if (i < REPORTED_SETS && write(done, "s", 1) != 1)
            _exit(4);
    }
}

/* Waits until the writer reports `sets` finished sets. */
static void await_sets(int done, int sets)
{
    for (int seen = 0; seen < sets; seen++) {
        char c;
        assert_int_equal(read(done, &c, 1), 1);
    }
}

static void killed_writer_leaves_old_or_new(void **st)
{
    (void)st;
    iotd_posix_kv kv;
    open_kv(&kv);
    assert_int_equal(iotd_posix_kv_set(&kv, "other", "keep", 4), IOTD_OK);
    iotd_posix_kv_close(&kv);
    srand((unsigned)time(NULL));
    int rounds_with_value = 0;
    for (int round = 0; round < 40; round++) {
        int done[2];
        assert_int_equal(pipe(done), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(done[0]);
            writer(done[1]);
        }
        close(done[1]);
        /* Kill after 0 to REPORTED_SETS finished sets, then 0-3 ms later:
         * anywhere inside a set, or before the first one. */
        int finished = rand() % (REPORTED_SETS + 1);
        await_sets(done[0], finished);
        struct timespec ts = {0, (long)(rand() % 3000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        close(done[0]);
        assert_true(WIFSIGNALED(status)); /* not an exit: it never failed a set */

        open_kv(&kv);
        unsigned char buf[64];
        size_t len = 0;
        iotd_status s = iotd_posix_kv_get(&kv, "q.7", buf, sizeof(buf), &len);
        if (s == IOTD_OK) {
            rounds_with_value++;
            assert_true(len == 7 || len == 64);
            for (size_t i = 0; i < len; i++)
                assert_int_equal(buf[i], len == 7 ? 'a' : 'b');
        } else {
            assert_int_equal(s, IOTD_ENOENT); /* killed before its first rename */
            assert_int_equal(finished, 0);    /* a finished set is never undone */
        }
        assert_int_equal(iotd_posix_kv_get(&kv, "other", buf, sizeof(buf), &len), IOTD_OK);
        assert_int_equal(len, 4);
        assert_memory_equal(buf, "keep", 4);
        iotd_posix_kv_close(&kv);
    }
    print_message("%d of 40 kills landed after the first set\n", rounds_with_value);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_then_get_round_trips, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(contract_errors, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(one_process_per_directory, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(leftover_temp_file_is_ignored, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(killed_writer_leaves_old_or_new, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
