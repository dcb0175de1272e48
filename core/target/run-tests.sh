#!/usr/bin/env bash
# The device core on its target: builds core/ and its unit tests for
# rv32imac with picolibc, then fails if
#   - the core's objects reference malloc/free/calloc/realloc or any printf,
#   - its .text exceeds 18.5 KiB or its static RAM (.data + .bss) 4 KiB,
#   - the enrollment library (libiotd_enroll.a, linked only by devices that
#     enroll themselves) has allocation or printf, or .text over 4 KiB, or
#     any static RAM; the same for the health report (libiotd_health.a, 2 KiB)
#     and the TLS session record (libiotd_tls_session.a, 1 KiB),
#   - any test binary exits non-zero (or hangs) under qemu-system-riscv32.
# Run by ctest as target.core_riscv32; by hand:
#   IOT_SOURCE_DIR=$PWD IOT_BUILD_DIR=build core/target/run-tests.sh
set -euo pipefail

: "${IOT_SOURCE_DIR:?set IOT_SOURCE_DIR to the source root}"
: "${IOT_BUILD_DIR:?set IOT_BUILD_DIR to the host build directory}"
OUT="$IOT_BUILD_DIR/core-riscv32"
# 16 KiB until firmware updates came: the update state machine (update.c)
# is about 4 KiB, of which the manifest writer's move out of the device
# (manifest_write.c, 2.2 KiB) paid half. The ESP32-C3 has 4 MiB of flash;
# the budget is what stops the core from growing unnoticed. 18.5 KiB since
# the factory reset (reset.c, about 400 B), which every device must have.
TEXT_BUDGET=18944
RAM_BUDGET=4096
# Enrollment and renewal (enroll.c) is counted apart: a device provisioned
# at the factory does not link it.
ENROLL_TEXT_BUDGET=4096
ENROLL_RAM_BUDGET=0
# The health report (health.c), apart too.
HEALTH_TEXT_BUDGET=2048
HEALTH_RAM_BUDGET=0
# The TLS session record (tls_session.c), apart too: only ports that resume
# link it.
TLS_SESSION_TEXT_BUDGET=1024
TLS_SESSION_RAM_BUDGET=0
TEST_TIMEOUT=60

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for tool in riscv64-unknown-elf-gcc riscv64-unknown-elf-nm riscv64-unknown-elf-size qemu-system-riscv32; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# A host build's sanitizer flags must not leak into the cross build.
env -u CFLAGS -u LDFLAGS cmake -S "$IOT_SOURCE_DIR/core/target" -B "$OUT" "${generator[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="$IOT_SOURCE_DIR/cmake/riscv32-picolibc.cmake" \
  -DCMAKE_BUILD_TYPE=MinSizeRel >"$OUT.configure.log" 2>&1 ||
  { cat "$OUT.configure.log" >&2; fail "configuring the RISC-V build"; }
cmake --build "$OUT" >"$OUT.build.log" 2>&1 ||
  { cat "$OUT.build.log" >&2; fail "building for RISC-V"; }

# The core is three archives: the protocol rules and the firmware manifest's
# rules, which the gateway and iotctl link too, and the rest; the device
# links all three, so they are checked together. The manifest's writer
# (libiotd_manifest_write.a) is iotctl's only and is not counted.
LIBS=("$OUT/core/libiotd_core.a" "$OUT/core/libiotd_protocol.a" "$OUT/core/libiotd_manifest.a")
for lib in "${LIBS[@]}"; do
  [ -f "$lib" ] || fail "$lib was not built"
done

# --- symbols -----------------------------------------------------------------
undefined="$(riscv64-unknown-elf-nm -u "${LIBS[@]}" | awk 'NF == 2 { print $2 }' | sort -u)"
external="$(grep -v '^iotd_' <<<"$undefined" || true)"
echo "core references outside itself: $(tr '\n' ' ' <<<"$external")"
banned="$(grep -E '^(malloc|free|calloc|realloc|reallocarray|aligned_alloc|memalign|posix_memalign)$|printf' <<<"$undefined" || true)"
[ -z "$banned" ] || fail "the core references forbidden symbols: $(tr '\n' ' ' <<<"$banned")"
echo "ok - no allocation and no printf family in the core"

# --- size --------------------------------------------------------------------
riscv64-unknown-elf-size -t "${LIBS[@]}"
read -r text data bss _ < <(riscv64-unknown-elf-size -t "${LIBS[@]}" | awk '/\(TOTALS\)/ { print $1, $2, $3 }')
ram=$((data + bss))
echo "core size: .text $text B (budget $TEXT_BUDGET), .data $data B + .bss $bss B = $ram B static RAM (budget $RAM_BUDGET)"
[ "$text" -le "$TEXT_BUDGET" ] || fail ".text is $text bytes, over the $TEXT_BUDGET budget"
[ "$ram" -le "$RAM_BUDGET" ] || fail "static RAM is $ram bytes, over the $RAM_BUDGET budget"
echo "ok - within the size budget"

# --- the libraries a device links only when it uses them ---------------------------
# check_lib WHAT ARCHIVE TEXT_BUDGET RAM_BUDGET: no allocation, no printf,
# within its budgets.
check_lib() {
  local what="$1" lib="$2" text_budget="$3" ram_budget="$4" undefined banned text data bss ram
  [ -f "$lib" ] || fail "$lib was not built"
  undefined="$(riscv64-unknown-elf-nm -u "$lib" | awk 'NF == 2 { print $2 }' | sort -u)"
  echo "$what references outside itself: $(tr '\n' ' ' <<<"$undefined")"
  banned="$(grep -E '^(malloc|free|calloc|realloc|reallocarray|aligned_alloc|memalign|posix_memalign)$|printf' <<<"$undefined" || true)"
  [ -z "$banned" ] || fail "the $what library references forbidden symbols: $(tr '\n' ' ' <<<"$banned")"
  read -r text data bss _ < <(riscv64-unknown-elf-size -t "$lib" | awk '/\(TOTALS\)/ { print $1, $2, $3 }')
  ram=$((data + bss))
  echo "$what size: .text $text B (budget $text_budget), static RAM $ram B (budget $ram_budget)"
  [ "$text" -le "$text_budget" ] || fail "$what .text is $text bytes, over the $text_budget budget"
  [ "$ram" -le "$ram_budget" ] || fail "$what static RAM is $ram bytes, over the $ram_budget budget"
  echo "ok - $what within its budget"
}
check_lib enrollment "$OUT/core/libiotd_enroll.a" "$ENROLL_TEXT_BUDGET" "$ENROLL_RAM_BUDGET"
check_lib "health report" "$OUT/core/libiotd_health.a" "$HEALTH_TEXT_BUDGET" "$HEALTH_RAM_BUDGET"
check_lib "TLS session" "$OUT/core/libiotd_tls_session.a" "$TLS_SESSION_TEXT_BUDGET" \
  "$TLS_SESSION_RAM_BUDGET"

# --- tests under qemu ----------------------------------------------------------
mapfile -t tests <"$OUT/core-tests.txt"
[ "${#tests[@]}" -gt 0 ] || fail "no test binaries listed in $OUT/core-tests.txt"
failed=0
for t in "${tests[@]}"; do
  [ -n "$t" ] || continue
  name="$(basename "$t" .elf)"
  set +e
  timeout "$TEST_TIMEOUT" qemu-system-riscv32 -machine virt -nographic -bios none -kernel "$t" \
    -semihosting-config enable=on,target=native </dev/null >"$OUT/$name.log" 2>&1
  rc=$?
  set -e
  summary="$(grep -E '^\[=+\] .* run' "$OUT/$name.log" || true)"
  if [ "$rc" -ne 0 ]; then
    cat "$OUT/$name.log" >&2
    [ "$rc" -eq 124 ] && echo "FAIL: $name timed out after ${TEST_TIMEOUT}s" >&2 ||
      echo "FAIL: $name exited with $rc" >&2
    failed=$((failed + 1))
  elif [ -z "$summary" ]; then
    cat "$OUT/$name.log" >&2
    echo "FAIL: $name exited 0 without running its tests" >&2
    failed=$((failed + 1))
  else
    echo "ok - $name on rv32: $summary"
  fi
done
[ "$failed" -eq 0 ] || fail "$failed of ${#tests[@]} test binaries failed on RISC-V"
echo "${#tests[@]} test binaries passed on RISC-V"
