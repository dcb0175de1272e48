#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and
# gcov counters, runs the whole test suite (unit, integration, short fuzz
# runs, the RISC-V target) with ctest, then prints the line coverage of the
# gateway and the device core (scripts/coverage.sh --report).
# Installs missing Debian packages first (scripts/install-deps.sh).
#
#   scripts/test.sh                 the whole suite and the coverage report
#   scripts/test.sh -R iotctl       only tests whose name matches (ctest -R),
#                                   no coverage report
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
  echo "==> installing missing packages"
  scripts/install-deps.sh
fi

BUILD=build/asan
echo "==> configuring $BUILD (ASan + UBSan, gcov)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DIOT_SANITIZE=ON -DIOT_COVERAGE=ON >/dev/null
echo "==> building"
cmake --build "$BUILD"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# Counters add up across runs: start from zero.
find "$BUILD" -name '*.gcda' -delete
echo "==> running the test suite"
(cd "$BUILD" && ctest --output-on-failure --parallel 2 "$@")
# The figures are a report, not a gate: a report that cannot be made says so
# and leaves the suite's verdict alone.
if [ $# -eq 0 ] && ! scripts/coverage.sh --report "$BUILD"; then
  echo "test.sh: the test suite passed, but no coverage report could be made (see above)" >&2
fi
