/* The ESP-IDF port's PEM armour and Basic authorization (ports/esp-idf/src/pem.c), which
 * the EST transport hands to esp_http_client: a slot's chain and key in PEM byte for byte as
 * OpenSSL writes them, every cap at its edge, and RFC 7617's example. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pem.h"

static char dir[64];

static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static size_t slurp(const char *name, void *buf, size_t cap)
{
    char path[128];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof(path));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t len = fread(buf, 1, cap, f);
    assert_true(feof(f));
    fclose(f);
    return len;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_esp_pem.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    /* Two certificates as a slot holds them (DER, one after the other), a key, and the PEM
     * that OpenSSL writes for each. */
    run("cd %s && openssl ecparam -name prime256v1 -genkey -noout -outform DER -out k.der "
        "2>/dev/null && openssl ec -inform DER -in k.der -out k.pem 2>/dev/null",
        dir);
    run("cd %s && openssl req -x509 -new -key k.der -keyform DER -subj /CN=dev-1/O=IoT -days 1 "
        "-outform DER -out c1.der && openssl req -x509 -new -key k.der -keyform DER "
        "-subj '/CN=Issuing CA with a rather longer name to pass 256 bytes/O=IoT Telemetry' "
        "-days 2 -outform DER -out c2.der && cat c1.der c2.der > chain.der && "
        "openssl x509 -inform DER -in c1.der > chain.pem && "
        "openssl x509 -inform DER -in c2.der >> chain.pem",
        dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    run("rm -rf %s", dir);
    return 0;
}

static void measures_der_sequences(void **state)
{
    (void)state;
    const uint8_t short_form[] = {0x30, 0x02, 0x05, 0x00, 0xff};
    const uint8_t one_byte[3 + 0x90] = {0x30, 0x81, 0x90};
    static uint8_t two_bytes[4 + 0x0123] = {0x30, 0x82, 0x01, 0x23};
    const uint8_t three_bytes[] = {0x30, 0x83, 0x00, 0x00, 0x01, 0x00};
    const uint8_t not_a_sequence[] = {0x31, 0x00};

    assert_int_equal(iotd_esp__der_seq_len(short_form, sizeof(short_form)), 4);
    assert_int_equal(iotd_esp__der_seq_len(short_form, 4), 4);
    assert_int_equal(iotd_esp__der_seq_len(short_form, 3), 0); /* cut */
    assert_int_equal(iotd_esp__der_seq_len(one_byte, sizeof(one_byte)), sizeof(one_byte));
    assert_int_equal(iotd_esp__der_seq_len(one_byte, sizeof(one_byte) - 1), 0);
    assert_int_equal(iotd_esp__der_seq_len(two_bytes, sizeof(two_bytes)), sizeof(two_bytes));
    assert_int_equal(iotd_esp__der_seq_len(two_bytes, 3), 0);
    assert_int_equal(iotd_esp__der_seq_len(three_bytes, sizeof(three_bytes)), 0);
    assert_int_equal(iotd_esp__der_seq_len(not_a_sequence, sizeof(not_a_sequence)), 0);
    assert_int_equal(iotd_esp__der_seq_len(short_form, 1), 0);
}

static void armours_a_chain_as_openssl_does(void **state)
{
    (void)state;
    static uint8_t der[4096];
    static char want[8192], got[IOTD_ESP_PEM_CHAIN_MAX];
    size_t len = slurp("chain.der", der, sizeof(der));
    size_t want_len = slurp("chain.pem", want, sizeof(want) - 1);
    want[want_len] = '\0';

    assert_true(iotd_esp__pem_chain(der, len, got, sizeof(got)));
    assert_string_equal(got, want);
    /* The cap at its edge: the text and its NUL exactly, and one byte less. */
    assert_true(iotd_esp__pem_chain(der, len, got, want_len + 1));
    assert_string_equal(got, want);
    assert_false(iotd_esp__pem_chain(der, len, got, want_len));
    assert_string_equal(got, "");
}

static void refuses_broken_chains(void **state)
{
    (void)state;
    static uint8_t der[4096];
    static char got[IOTD_ESP_PEM_CHAIN_MAX];
    size_t len = slurp("chain.der", der, sizeof(der));

    assert_false(iotd_esp__pem_chain(der, len - 1, got, sizeof(got))); /* the second cut */
    assert_string_equal(got, "");
    der[len] = 0x00; /* a stray byte after the last certificate */
    assert_false(iotd_esp__pem_chain(der, len + 1, got, sizeof(got)));
    assert_false(iotd_esp__pem_chain(der, 0, got, sizeof(got)));
    assert_false(iotd_esp__pem_chain(der, len, got, 0));
}

static void armours_a_key_as_openssl_does(void **state)
{
    (void)state;
    uint8_t der[256];
    char want[512], got[IOTD_ESP_PEM_KEY_MAX];
    size_t len = slurp("k.der", der, sizeof(der));
    size_t want_len = slurp("k.pem", want, sizeof(want) - 1);
    want[want_len] = '\0';

    assert_true(iotd_esp__pem_key(der, len, got, sizeof(got)));
    assert_string_equal(got, want);
    assert_false(iotd_esp__pem_key(der, len, got, want_len));
    assert_string_equal(got, "");
    assert_false(iotd_esp__pem_key(der, len - 1, got, sizeof(got)));
    der[len] = 0x00;
    assert_false(iotd_esp__pem_key(der, len + 1, got, sizeof(got))); /* not one SEQUENCE */
    assert_false(iotd_esp__pem_key(der, 0, got, sizeof(got)));
}

static void makes_basic_authorization(void **state)
{
    (void)state;
    const char *want = "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="; /* RFC 7617, section 2 */
    char out[IOTD_ESP_AUTH_MAX];

    assert_true(iotd_esp__basic_auth(out, sizeof(out), "Aladdin", "open sesame"));
    assert_string_equal(out, want);
    assert_true(iotd_esp__basic_auth(out, strlen(want) + 1, "Aladdin", "open sesame"));
    assert_string_equal(out, want);
    assert_false(iotd_esp__basic_auth(out, strlen(want), "Aladdin", "open sesame"));
    assert_string_equal(out, "");
    /* A token may hold a colon, the user ID may not (RFC 7617: the first colon splits). */
    assert_true(iotd_esp__basic_auth(out, sizeof(out), "dev-1", "a:b"));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), "dev:1", "token"));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), "", "token"));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), "dev-1", ""));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), "dev-1", "tok\nen"));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), "dev\r1", "token"));
    assert_false(iotd_esp__basic_auth(out, sizeof(out), NULL, "token"));
}

static void takes_the_longest_id_and_token(void **state)
{
    (void)state;
    char id[65], token[IOTD_ESP_TOKEN_MAX], out[IOTD_ESP_AUTH_MAX];

    memset(id, 'd', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    memset(token, 't', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    assert_true(iotd_esp__basic_auth(out, sizeof(out), id, token));
    assert_int_equal(strncmp(out, "Basic ", 6), 0);
    assert_int_equal(strlen(out), 6 + (64 + 1 + 127 + 2) / 3 * 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(measures_der_sequences),
        cmocka_unit_test(armours_a_chain_as_openssl_does),
        cmocka_unit_test(refuses_broken_chains),
        cmocka_unit_test(armours_a_key_as_openssl_does),
        cmocka_unit_test(makes_basic_authorization),
        cmocka_unit_test(takes_the_longest_id_and_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
