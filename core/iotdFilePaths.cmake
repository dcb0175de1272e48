# The device core's files, for every build that compiles it: core/CMakeLists.txt
# (host and RISC-V target) and the ESP-IDF component
# firmware/esp32/components/iotd_core. A new core source is added here only.
#
#   IOTD_CORE_SOURCES           every source of the core, the protocol included
#   IOTD_PROTOCOL_SOURCES       the protocol rules (iotd/protocol.h), which the
#                               gateway and the admin tools link as well
#   IOTD_MANIFEST_SOURCES       the firmware manifest's rules (iotd/manifest.h),
#                               linked by the gateway and iotctl as well
#   IOTD_MANIFEST_WRITE_SOURCES the manifest's writer, for the signing tool
#                               only: not in IOTD_CORE_SOURCES, so the device
#                               does not carry it
#   IOTD_ENROLL_SOURCES         certificate enrollment and renewal
#                               (iotd/enroll.h): a library of its own, not in
#                               IOTD_CORE_SOURCES, for devices that enroll
#   IOTD_HEALTH_SOURCES         the health report (iotd/health.h): a library
#                               of its own with its own size budget
#   IOTD_TLS_SESSION_SOURCES    the TLS session kept across deep sleep, its
#                               binding and record (iotd/tls_session.h): a
#                               library of its own, for the ports
#   IOTD_CORE_INCLUDE_PUBLIC_DIRS   what users of the core include (iotd/...)
#   IOTD_CORE_INCLUDE_PRIVATE_DIRS  the core's own internal headers

set(IOTD_PROTOCOL_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/protocol.c")

set(IOTD_MANIFEST_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/manifest.c")

set(IOTD_MANIFEST_WRITE_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/manifest_write.c")

set(IOTD_ENROLL_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/enroll.c")

set(IOTD_HEALTH_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/health.c")

set(IOTD_TLS_SESSION_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/tls_session.c")

set(IOTD_CORE_SOURCES
  "${CMAKE_CURRENT_LIST_DIR}/src/status.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/record.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/seq.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/queue.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/backoff.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/senml.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/device.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/update.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/update_report.c"
  "${CMAKE_CURRENT_LIST_DIR}/src/reset.c"
  ${IOTD_PROTOCOL_SOURCES}
  ${IOTD_MANIFEST_SOURCES})

set(IOTD_CORE_INCLUDE_PUBLIC_DIRS
  "${CMAKE_CURRENT_LIST_DIR}/include")

set(IOTD_CORE_INCLUDE_PRIVATE_DIRS
  "${CMAKE_CURRENT_LIST_DIR}/src")
