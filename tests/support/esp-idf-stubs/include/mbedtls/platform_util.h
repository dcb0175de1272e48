/* Stand-in for mbedTLS platform_util.h: the zeroize the port uses. */
#pragma once
#include <stddef.h>

void mbedtls_platform_zeroize(void *buf, size_t len);
