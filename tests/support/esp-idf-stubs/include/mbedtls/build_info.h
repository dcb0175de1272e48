/* Stand-in for the mbedTLS configuration ESP-IDF builds with
 * (components/mbedtls/port/include/mbedtls/esp_config.h): the two
 * options the firmware tests for. PEM writing is CONFIG_MBEDTLS_PEM_WRITE_C;
 * CSR writing is assumed on, not verified against that file. */
#pragma once

#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_X509_CSR_WRITE_C
