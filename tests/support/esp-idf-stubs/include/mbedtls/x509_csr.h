/* Stand-in for mbedTLS 3.x x509_csr.h, certificate-request writing
 * (mbedtls_x509write_csr_pem takes an RNG in 3.x; 4.0 dropped it). */
#pragma once
#include <stddef.h>
#include "mbedtls/build_info.h"
#include "mbedtls/md.h"
#include "mbedtls/pk.h"

typedef struct mbedtls_x509write_csr {
    mbedtls_pk_context *private_key;
    void *private_subject;
    mbedtls_md_type_t private_md_alg;
    void *private_extensions;
} mbedtls_x509write_csr;

void mbedtls_x509write_csr_init(mbedtls_x509write_csr *ctx);
int mbedtls_x509write_csr_set_subject_name(mbedtls_x509write_csr *ctx, const char *subject_name);
void mbedtls_x509write_csr_set_key(mbedtls_x509write_csr *ctx, mbedtls_pk_context *key);
void mbedtls_x509write_csr_set_md_alg(mbedtls_x509write_csr *ctx, mbedtls_md_type_t md_alg);
void mbedtls_x509write_csr_free(mbedtls_x509write_csr *ctx);
int mbedtls_x509write_csr_pem(mbedtls_x509write_csr *ctx, unsigned char *buf, size_t size,
                              int (*f_rng)(void *, unsigned char *, size_t), void *p_rng);
