/* Password hashes and the operators file: a hash verifies its password
 * and no other, its parameters travel with it, hostile parameters are
 * refused before any work, weak passwords are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "operators.h"
#include "pwhash.h"

/* Small parameters keep the test fast; the rules are the same. */
static const ic_scrypt_params FAST = {.n = 1024, .r = 8, .p = 1};

static void hash_verifies_its_password_only(void **state)
{
    (void)state;
    char h[IC_PWHASH_MAX];
    iot_err err = {0};
    assert_int_equal(ic_pwhash_make("correct horse battery", 21, &FAST, h, &err), IOT_OK);
    assert_true(strncmp(h, "scrypt$1024$8$1$", 16) == 0);
    assert_true(ic_pwhash_verify("correct horse battery", 21, h));
    assert_false(ic_pwhash_verify("correct horse batterY", 21, h));
    assert_false(ic_pwhash_verify("correct horse battery", 20, h));
    assert_false(ic_pwhash_verify("", 0, h));
    char h2[IC_PWHASH_MAX];
    assert_int_equal(ic_pwhash_make("correct horse battery", 21, &FAST, h2, &err), IOT_OK);
    assert_string_not_equal(h, h2); /* a fresh salt each time */
}

static void same_salt_same_hash(void **state)
{
    (void)state;
    /* What verification relies on: the stored salt and parameters give the
     * same hash again. */
    unsigned char salt[16] = {0};
    char h[IC_PWHASH_MAX];
    iot_err err = {0};
    assert_int_equal(ic_pwhash_make_salted("password", 8, &FAST, salt, h, &err), IOT_OK);
    assert_true(ic_pwhash_verify("password", 8, h));
    char again[IC_PWHASH_MAX];
    assert_int_equal(ic_pwhash_make_salted("password", 8, &FAST, salt, again, &err), IOT_OK);
    assert_string_equal(h, again); /* deterministic for a given salt */
}

static void hostile_stored_forms_never_match(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "scrypt$",
        "bcrypt$1024$8$1$00000000000000000000000000000000$"
        "0000000000000000000000000000000000000000000000000000000000000000",
        /* N = 2^30: would cost a gigabyte per login */
        "scrypt$1073741824$8$1$00000000000000000000000000000000$"
        "0000000000000000000000000000000000000000000000000000000000000000",
        /* N not a power of two */
        "scrypt$1000$8$1$00000000000000000000000000000000$"
        "0000000000000000000000000000000000000000000000000000000000000000",
        /* p over the cap */
        "scrypt$1024$8$99$00000000000000000000000000000000$"
        "0000000000000000000000000000000000000000000000000000000000000000",
        /* short salt */
        "scrypt$1024$8$1$0000$0000000000000000000000000000000000000000000000000000000000000000",
        /* trailing bytes */
        "scrypt$1024$8$1$00000000000000000000000000000000$"
        "0000000000000000000000000000000000000000000000000000000000000000x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(ic_pwhash_valid(bad[i]));
        assert_false(ic_pwhash_verify("password", 8, bad[i]));
    }
}

static void weak_passwords_refused(void **state)
{
    (void)state;
    assert_non_null(ic_password_weak("alice", "short", 5));
    assert_non_null(ic_password_weak("alice", "aaaaaaaaaaaaaaaa", 16));
    assert_non_null(ic_password_weak("alice", "my-Alice-password-1", 19));
    assert_non_null(ic_password_weak("alice", "tab\there-long-one", 17));
    char longpw[IC_PASSWORD_MAX + 2];
    memset(longpw, 'x', sizeof(longpw));
    assert_non_null(ic_password_weak("alice", longpw, sizeof(longpw)));
    assert_null(ic_password_weak("alice", "correct horse battery", 21));
}

static void operators_file_add_find_remove(void **state)
{
    (void)state;
    char h[IC_PWHASH_MAX], found[IC_PWHASH_MAX];
    iot_err err = {0};
    assert_int_equal(ic_pwhash_make("correct horse battery", 21, &FAST, h, &err), IOT_OK);
    char *t1 = NULL, *t2 = NULL, *t3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    assert_int_equal(ic_operators_set("", 0, "alice", h, false, &t1, &l1, &err), IOT_OK);
    assert_int_equal(ic_operators_set(t1, l1, "bob", h, false, &t2, &l2, &err), IOT_OK);
    assert_int_equal(ic_operators_set(t2, l2, "bob", h, false, &t3, &l3, &err), IOT_EEXIST);
    assert_int_equal(ic_operators_set(t2, l2, "a/b", h, false, &t3, &l3, &err), IOT_EINVAL);
    assert_int_equal(ic_operators_find(t2, l2, "bob", found, &err), IOT_OK);
    assert_string_equal(found, h);
    assert_int_equal(ic_operators_remove(t2, l2, "alice", &t3, &l3, &err), IOT_OK);
    assert_int_equal(ic_operators_find(t3, l3, "alice", found, &err), IOT_ENOENT);
    assert_int_equal(ic_operators_find(t3, l3, "bob", found, &err), IOT_OK);
    free(t1);
    free(t2);
    free(t3);
    const char dup[] = "x scrypt$1$1\n";
    assert_int_equal(ic_operators_find(dup, sizeof(dup) - 1, "x", found, &err), IOT_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hash_verifies_its_password_only),
        cmocka_unit_test(same_salt_same_hash),
        cmocka_unit_test(hostile_stored_forms_never_match),
        cmocka_unit_test(weak_passwords_refused),
        cmocka_unit_test(operators_file_add_find_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
