# Warnings, hardening and sanitizer flags shared by every host target.
# iot_harden(<target>) applies them; the device core adds its own stricter
# C99 checks in core/CMakeLists.txt.

set(IOT_WARNINGS
  -Wall -Wextra -Werror
  -Wshadow -Wformat=2 -Wundef -Wpointer-arith
  -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
  -Wvla -Wwrite-strings -Wcast-align -Wnull-dereference
  -Wimplicit-fallthrough -Wdouble-promotion
)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  list(APPEND IOT_WARNINGS -Wlogical-op -Wduplicated-cond -Wduplicated-branches)
endif()

set(IOT_HARDENING -fstack-protector-strong -fstack-clash-protection)
set(IOT_LINK_HARDENING -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)

if(IOT_SANITIZE)
  set(IOT_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
  add_compile_options(${IOT_SAN_FLAGS})
  add_link_options(${IOT_SAN_FLAGS})
else()
  # _FORTIFY_SOURCE needs optimisation and conflicts with ASan's interceptors.
  if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
    list(APPEND IOT_HARDENING -D_FORTIFY_SOURCE=2)
  endif()
endif()

if(IOT_COVERAGE)
  # Atomic counter updates: the gateway's threads update the same counters,
  # and lost or torn updates leave counts gcov cannot read (negative ones).
  add_compile_options(--coverage -fprofile-update=atomic -O0)
  add_link_options(--coverage)
endif()

set(CMAKE_POSITION_INDEPENDENT_CODE ON)
include(CheckPIESupported)
check_pie_supported()

function(iot_harden target)
  target_compile_options(${target} PRIVATE ${IOT_WARNINGS} ${IOT_HARDENING})
  target_link_options(${target} PRIVATE ${IOT_LINK_HARDENING})
  # Everything but the device core may use POSIX.1-2008.
  target_compile_definitions(${target} PRIVATE _POSIX_C_SOURCE=200809L)
endfunction()
