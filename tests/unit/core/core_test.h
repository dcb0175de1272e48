/* Assertions for the device core's tests, so one source builds two ways:
 * on the host over cmocka, and for the RISC-V target (CORE_TEST_BARE) over
 * a minimal harness that prints to the semihosting console and returns the
 * number of failed tests as main's exit status.
 *
 *   static void name(void **state) { CT_EQ(a, b); ... }
 *   static const ct_test tests[] = {CT_TEST(name), ...};
 *   int main(void) { return CT_RUN(tests); }
 */
#ifndef CORE_TEST_H
#define CORE_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef CORE_TEST_BARE

#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>

typedef struct CMUnitTest ct_test;
#define CT_TEST(fn)            cmocka_unit_test(fn)
#define CT_RUN(tests)          cmocka_run_group_tests(tests, NULL, NULL)
#define CT_TRUE(x)             assert_true(x)
#define CT_FALSE(x)            assert_false(x)
#define CT_EQ(a, b)            assert_int_equal((a), (b))
#define CT_NE(a, b)            assert_int_not_equal((a), (b))
#define CT_STR_EQ(a, b)        assert_string_equal((a), (b))
#define CT_MEM_EQ(a, b, n)     assert_memory_equal((a), (b), (n))
#define CT_IN_RANGE(v, lo, hi) assert_in_range((v), (lo), (hi))

#else

#include <setjmp.h>
#include <stdio.h>

typedef struct ct_test {
    const char *name;
    void (*fn)(void **state);
} ct_test;

static jmp_buf ct__env;

static void ct__fail(const char *file, int line, const char *what, unsigned long long a,
                     unsigned long long b)
{
    printf("%s:%d: %s (0x%llx, 0x%llx)\n", file, line, what, a, b);
    longjmp(ct__env, 1);
}

#define CT__CHECK(ok, what, a, b)                                                                  \
    do {                                                                                           \
        if (!(ok))                                                                                 \
            ct__fail(__FILE__, __LINE__, what, (unsigned long long)(a), (unsigned long long)(b));  \
    } while (0)

/* clang-format off */
#define CT_TEST(fn) {#fn, fn}
/* clang-format on */
#define CT_TRUE(x)  CT__CHECK((x), "not true: " #x, 0, 0)
#define CT_FALSE(x) CT__CHECK(!(x), "not false: " #x, 0, 0)
#define CT_EQ(a, b)                                                                                \
    CT__CHECK((unsigned long long)(a) == (unsigned long long)(b), #a " != " #b, a, b)
#define CT_NE(a, b)                                                                                \
    CT__CHECK((unsigned long long)(a) != (unsigned long long)(b), #a " == " #b, a, b)
#define CT_STR_EQ(a, b)    CT__CHECK(strcmp((a), (b)) == 0, "strings differ: " #a ", " #b, 0, 0)
#define CT_MEM_EQ(a, b, n) CT__CHECK(memcmp((a), (b), (n)) == 0, "bytes differ: " #a ", " #b, 0, 0)
#define CT_IN_RANGE(v, lo, hi)                                                                     \
    CT__CHECK((unsigned long long)(v) >= (unsigned long long)(lo) &&                               \
                  (unsigned long long)(v) <= (unsigned long long)(hi),                             \
              #v " not in [" #lo ", " #hi "]", v, lo)

static int ct__run(const ct_test *tests, size_t n)
{
    /* volatile: both live across longjmp. */
    volatile int failed = 0;
    for (volatile size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", tests[i].name);
        if (setjmp(ct__env) == 0) {
            tests[i].fn(NULL);
            printf("[       OK ] %s\n", tests[i].name);
        } else {
            printf("[  FAILED  ] %s\n", tests[i].name);
            failed++;
        }
    }
    printf("[==========] %d test(s) run, %d failed.\n", (int)n, failed);
    return failed;
}

#define CT_RUN(tests) ct__run((tests), sizeof(tests) / sizeof((tests)[0]))

#endif

#endif
