/* Stand-in for mbedTLS 3.x md.h. */
#pragma once
#include "mbedtls/build_info.h"

typedef enum {
    MBEDTLS_MD_NONE = 0,
    MBEDTLS_MD_SHA256 = 0x09,
} mbedtls_md_type_t;
