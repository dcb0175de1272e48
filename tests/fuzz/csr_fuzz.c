/* libFuzzer harness for the CSR check of `iotctl device add --csr`
 * (pki_csr_parse: PEM or DER, self-signature, ECDSA P-256, CN = device ID).
 *
 * The CSR is the one file a device owner hands to the operator, so every
 * byte of it is untrusted. Besides the sanitizers' checks, every outcome
 * must keep the contract: either a P-256 public key, or no key and one line
 * of printable text that never echoes a hostile common name.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Icommon/include tests/fuzz/csr_fuzz.c common/src/pki.c \
 *     common/src/status.c common/src/identity.c common/src/fsutil.c \
 *     common/src/registry.c -lcrypto -lsqlite3 -o csr_fuzz
 *   ./csr_fuzz -max_len=4096 tests/fuzz/corpus/csr
 * (tests/fuzz/build.sh and run.sh do the same for every harness.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "iot/identity.h"
#include "iot/pki.h"

#define EXPECTED_CN "dev-001"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

static int is_p256(EVP_PKEY *pk)
{
    char group[64] = "";
    return EVP_PKEY_is_a(pk, "EC") &&
           EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          NULL) &&
           strcmp(group, "prime256v1") == 0;
}

static void check_error(const iot_err *err, iot_status st)
{
    size_t n = strnlen(err->msg, sizeof(err->msg));
    require(st == IOT_EINVAL || st == IOT_ECRYPTO || st == IOT_ENOMEM);
    require(n > 0 && n < sizeof(err->msg));
    for (size_t i = 0; i < n; i++)
        require(err->msg[i] >= 0x20 && err->msg[i] < 0x7f);

    /* A CN that differs from the ID is shown only when it is a valid ID. */
    const char *cn = strstr(err->msg, "is for CN=");
    if (cn != NULL) {
        char shown[IOT_ID_MAX + 1];
        cn += strlen("is for CN=");
        const char *end = strstr(cn, ", but the device ID is ");
        require(end != NULL && (size_t)(end - cn) < sizeof(shown));
        memcpy(shown, cn, (size_t)(end - cn));
        shown[end - cn] = '\0';
        require(strcmp(shown, "<not a valid ID>") == 0 ||
                (iot_id_is_valid(shown) && strcmp(shown, EXPECTED_CN) != 0));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY *pk = (EVP_PKEY *)1; /* must be reset on every path */
    iot_err err = {0};
    iot_status st = pki_csr_parse(data, size, "fuzz.csr", EXPECTED_CN, &pk, &err);

    if (st == IOT_OK) {
        require(pk != NULL && is_p256(pk));
        EVP_PKEY_free(pk);
    } else {
        require(pk == NULL);
        check_error(&err, st);
    }
    ERR_clear_error();
    return 0;
}
