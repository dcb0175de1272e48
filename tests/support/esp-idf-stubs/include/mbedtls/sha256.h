/* Stand-in for mbedTLS 3.x sha256.h (ESP-IDF may replace the context with
 * its hardware one; the functions are the same). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "mbedtls/build_info.h"

typedef struct mbedtls_sha256_context {
    unsigned char private_buffer[64];
    uint32_t private_total[2];
    uint32_t private_state[8];
    int private_is224;
} mbedtls_sha256_context;

void mbedtls_sha256_init(mbedtls_sha256_context *ctx);
void mbedtls_sha256_free(mbedtls_sha256_context *ctx);
int mbedtls_sha256_starts(mbedtls_sha256_context *ctx, int is224);
int mbedtls_sha256_update(mbedtls_sha256_context *ctx, const unsigned char *input, size_t ilen);
int mbedtls_sha256_finish(mbedtls_sha256_context *ctx, unsigned char *output);
