/* Stand-in for mbedTLS 3.x ssl.h, the session calls the port uses (the
 * session's fields are private; only the master secret is compared). */
#pragma once
#include <stddef.h>
#include "mbedtls/build_info.h"

#ifndef MBEDTLS_PRIVATE
#define MBEDTLS_PRIVATE(member) private_##member
#endif

#define MBEDTLS_ERR_SSL_WANT_READ  -0x6900
#define MBEDTLS_ERR_SSL_WANT_WRITE -0x6880

typedef struct mbedtls_ssl_session {
    unsigned char MBEDTLS_PRIVATE(id)[32];
    unsigned char MBEDTLS_PRIVATE(master)[48];
} mbedtls_ssl_session;

void mbedtls_ssl_session_init(mbedtls_ssl_session *session);
void mbedtls_ssl_session_free(mbedtls_ssl_session *session);
int mbedtls_ssl_session_load(mbedtls_ssl_session *session, const unsigned char *buf, size_t len);
int mbedtls_ssl_session_save(const mbedtls_ssl_session *session, unsigned char *buf, size_t buf_len,
                             size_t *olen);
