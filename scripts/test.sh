#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and
# runs the whole test suite (unit and integration) with ctest.
# Installs missing Debian packages first (scripts/install-deps.sh).
#
#   scripts/test.sh                 the whole suite
#   scripts/test.sh -R iotctl       only tests whose name matches (ctest -R)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
  echo "==> installing missing packages"
  scripts/install-deps.sh
fi

BUILD=build/asan
echo "==> configuring $BUILD (ASan + UBSan)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DIOT_SANITIZE=ON >/dev/null
echo "==> building"
cmake --build "$BUILD"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "==> running the test suite"
cd "$BUILD"
ctest --output-on-failure --parallel 2 "$@"
