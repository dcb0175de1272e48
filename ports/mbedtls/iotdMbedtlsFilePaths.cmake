# Port code shared by the ports that have mbedTLS, for each build that
# compiles it: ports/posix/CMakeLists.txt (Debian's mbedTLS 2.28) and the
# ESP-IDF component ports/esp-idf (ESP-IDF's mbedTLS 3.x). The ports compile
# these files into their own library; there is no library of its own.
#
#   IOTD_MBEDTLS_SOURCES        the sources
#   IOTD_MBEDTLS_INCLUDE_DIRS   what users include (iotd_mbedtls/...)

set(IOTD_MBEDTLS_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/manifest_crypto.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/manifest_keys.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/cred_crypto.c")

set(IOTD_MBEDTLS_INCLUDE_DIRS
  "${CMAKE_CURRENT_LIST_DIR}/include")
