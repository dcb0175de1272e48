/* Enrollment's wire forms: base64 bodies with line breaks, the Basic
 * credentials, the Content-Type, and a certs-only PKCS#7 that OpenSSL
 * reads back with the certificates in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "estcodec.h"

static void base64_round_trip(void **state)
{
    (void)state;
    unsigned char in[200], back[200];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 1; len <= sizeof(in); len++) {
        char text[400];
        size_t n = gw_est_base64_encode(in, len, text, sizeof(text));
        assert_true(n > 0);
        assert_int_equal(text[n - 1], '\n');
        size_t got = 0;
        assert_int_equal(gw_est_base64_decode(text, n, back, sizeof(back), &got), 0);
        assert_int_equal(got, len);
        assert_memory_equal(back, in, len);
    }
    /* lines of 64 characters, CRLF */
    char text[400];
    gw_est_base64_encode(in, 100, text, sizeof(text));
    assert_int_equal(strchr(text, '\r') - text, 64);
    assert_int_equal(gw_est_base64_encode(in, 100, text, 10), 0);
}

static void base64_refuses(void **state)
{
    (void)state;
    unsigned char out[16];
    size_t n = 0;
    assert_int_equal(gw_est_base64_decode("TWFu", 4, out, sizeof(out), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(gw_est_base64_decode("TW\r\nE=", 6, out, sizeof(out), &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(gw_est_base64_decode("TWE", 3, out, sizeof(out), &n), 0); /* unpadded */
    assert_int_equal(gw_est_base64_decode("", 0, out, sizeof(out), &n), -1);
    assert_int_equal(gw_est_base64_decode("T", 1, out, sizeof(out), &n), -1);
    assert_int_equal(gw_est_base64_decode("TW!u", 4, out, sizeof(out), &n), -1);
    assert_int_equal(gw_est_base64_decode("TQ==TQ==", 8, out, sizeof(out), &n), -1);
    assert_int_equal(gw_est_base64_decode("TWE==", 5, out, sizeof(out), &n), -1);
    assert_int_equal(gw_est_base64_decode("TWF=", 4, out, sizeof(out), &n), -1); /* bits left */
    assert_int_equal(gw_est_base64_decode("TWFuTWFu", 8, out, 5, &n), -2);
}

static void content_type(void **state)
{
    (void)state;
    assert_true(gw_est_is_pkcs10("application/pkcs10"));
    assert_true(gw_est_is_pkcs10("Application/PKCS10; charset=x"));
    assert_false(gw_est_is_pkcs10("application/pkcs10x"));
    assert_false(gw_est_is_pkcs10("application/json"));
    assert_false(gw_est_is_pkcs10(""));
    assert_false(gw_est_is_pkcs10(NULL));
}

static void basic(void **state)
{
    (void)state;
    char user[GW_EST_USER_MAX + 1], pass[GW_EST_PASSWORD_MAX + 1];
    /* dev-1:secret */
    assert_true(gw_est_basic_parse("Basic ZGV2LTE6c2VjcmV0", user, pass));
    assert_string_equal(user, "dev-1");
    assert_string_equal(pass, "secret");
    assert_true(gw_est_basic_parse("basic ZGV2LTE6c2VjcmV0", user, pass));
    assert_false(gw_est_basic_parse("Bearer ZGV2LTE6c2VjcmV0", user, pass));
    assert_false(gw_est_basic_parse("Basic ZGV2LTE=", user, pass));     /* no colon */
    assert_false(gw_est_basic_parse("Basic OnNlY3JldA==", user, pass)); /* ":secret" */
    assert_false(gw_est_basic_parse("Basic ZGV2LTE6", user, pass));     /* "dev-1:" */
    assert_false(gw_est_basic_parse("Basic ZGV2IDE6eA==", user, pass)); /* "dev 1:x" */
    assert_false(gw_est_basic_parse("Basic !!!!", user, pass));
    assert_false(gw_est_basic_parse(NULL, user, pass));
    assert_string_equal(user, "");
}

static X509 *make_cert(const char *cn)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_sign(x, key, EVP_sha256());
    EVP_PKEY_free(key);
    return x;
}

static void certs_only(void **state)
{
    (void)state;
    X509 *certs[2] = {make_cert("device-1"), make_cert("issuer")};
    unsigned char *der = NULL;
    size_t len = 0;
    assert_true(gw_est_certs_only(certs, 2, &der, &len));
    const unsigned char *p = der;
    PKCS7 *p7 = d2i_PKCS7(NULL, &p, (long)len);
    assert_non_null(p7);
    assert_true(PKCS7_type_is_signed(p7));
    STACK_OF(X509) *in = p7->d.sign->cert;
    assert_int_equal(sk_X509_num(in), 2);
    assert_int_equal(X509_cmp(sk_X509_value(in, 0), certs[0]), 0);
    assert_int_equal(X509_cmp(sk_X509_value(in, 1), certs[1]), 0);
    assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
    PKCS7_free(p7);
    OPENSSL_free(der);
    X509_free(certs[0]);
    X509_free(certs[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(base64_round_trip), cmocka_unit_test(base64_refuses),
        cmocka_unit_test(content_type),      cmocka_unit_test(basic),
        cmocka_unit_test(certs_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
