/* libFuzzer harness for the firmware manifest's parser and verifier
 * (core/src/manifest.c), which read documents fetched from the network.
 *
 * Input: the manifest text, as bytes.
 *
 * Checked besides the sanitizers (the input is copied to a heap buffer of
 * its exact size, so a read past its end is caught):
 *   - a text that parses is the one spelling of its fields: writing the
 *     parsed fields and signature again gives back the input byte for byte;
 *   - signed_len is inside the text and ends a line;
 *   - a line number is reported for a malformed text only, and is within
 *     the number of lines (plus one for trailing bytes);
 *   - verifying with a key table that holds the parsed key ID never
 *     reports "ok": the fake signature check below accepts nothing.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore/include \
 *     tests/fuzz/manifest_fuzz.c core/src/manifest.c core/src/protocol.c \
 *     -o manifest_fuzz
 * (tests/fuzz/build.sh and run.sh do the same for every harness.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iotd/manifest.h"

static iotd_status any_sha256(void *ctx, const void *data, size_t len, uint8_t out[32])
{
    (void)ctx, (void)data, (void)len;
    memset(out, 0x5a, 32);
    return IOTD_OK;
}

static iotd_status no_signature(void *ctx, const uint8_t pub[65], const uint8_t digest[32],
                                const uint8_t sig[64])
{
    (void)ctx, (void)pub, (void)digest, (void)sig;
    return IOTD_EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size > 0 ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    iotd_manifest m;
    unsigned line = 0;
    iotd_manifest_result r = iotd_manifest_parse(text, size, &m, &line);
    size_t lines = 0;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    if (r != IOTD_MANIFEST_MALFORMED && line != 0)
        abort();
    if (line > lines + 1)
        abort();
    if (r == IOTD_MANIFEST_OK) {
        static char again[IOTD_MANIFEST_MAX + 256];
        size_t len = 0;
        if (m.signed_len == 0 || m.signed_len >= size || text[m.signed_len - 1] != '\n')
            abort();
        if (iotd_manifest_format_signed_part(&m, again, sizeof(again), &len) != IOTD_OK ||
            iotd_manifest_append_signature(m.signature, again, sizeof(again), &len) != IOTD_OK)
            abort();
        if (len != size || memcmp(again, text, size) != 0)
            abort();
        iotd_manifest_key key;
        memcpy(key.id, m.key_id, sizeof(key.id));
        memset(key.pub, 4, sizeof(key.pub));
        iotd_manifest_policy policy = {.keys = &key, .n_keys = 1};
        iotd_manifest_crypto crypto = {NULL, any_sha256, no_signature};
        if (iotd_manifest_verify(text, size, &policy, &crypto, &m) != IOTD_MANIFEST_BAD_SIGNATURE)
            abort();
    }
    free(text);
    return 0;
}
