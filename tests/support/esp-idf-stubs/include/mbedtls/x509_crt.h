/* Stand-in for mbedTLS 3.x x509_crt.h and x509.h: the certificate's
 * public subject and pk fields, parsing and mbedtls_x509_dn_gets. */
#pragma once
#include <stddef.h>
#include "mbedtls/build_info.h"
#include "mbedtls/pk.h"

typedef struct mbedtls_asn1_buf {
    int tag;
    size_t len;
    unsigned char *p;
} mbedtls_asn1_buf;

typedef struct mbedtls_asn1_named_data {
    mbedtls_asn1_buf oid;
    mbedtls_asn1_buf val;
    struct mbedtls_asn1_named_data *next;
    unsigned char private_next_merged;
} mbedtls_asn1_named_data;

typedef mbedtls_asn1_buf mbedtls_x509_buf;
typedef mbedtls_asn1_named_data mbedtls_x509_name;

typedef struct mbedtls_x509_crt {
    int private_own_buffer;
    mbedtls_x509_buf raw;
    mbedtls_x509_buf tbs;
    int version;
    mbedtls_x509_buf serial;
    mbedtls_x509_buf sig_oid;
    mbedtls_x509_buf issuer_raw;
    mbedtls_x509_buf subject_raw;
    mbedtls_x509_name issuer;
    mbedtls_x509_name subject;
    mbedtls_x509_buf pk_raw;
    mbedtls_pk_context pk;
    struct mbedtls_x509_crt *next;
} mbedtls_x509_crt;

void mbedtls_x509_crt_init(mbedtls_x509_crt *crt);
void mbedtls_x509_crt_free(mbedtls_x509_crt *crt);
int mbedtls_x509_crt_parse(mbedtls_x509_crt *chain, const unsigned char *buf, size_t buflen);
int mbedtls_x509_dn_gets(char *buf, size_t size, const mbedtls_x509_name *dn);
