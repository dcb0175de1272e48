#!/usr/bin/env bash
# Line coverage of the gateway (gateway/) and the device core (core/) by the
# test suite: a separate gcc build with gcov instrumentation
# (-DIOT_COVERAGE=ON) in build/coverage, the suite run there, then gcovr.
# Prints lines % per file and in total for each, against the targets
# (gateway >= 85 %, core >= 95 %), and the files with the most lines not
# run; writes an HTML report to build/coverage/html/index.html.
#
#   scripts/coverage.sh                 the suite without fuzz and target tests
#   scripts/coverage.sh -R gateway      only tests matching (ctest arguments)
#   scripts/coverage.sh --report DIR    only the report, from the counters a
#                                       run in build directory DIR left
#                                       (scripts/test.sh uses this)
#
# The fuzz harnesses (clang, their own build) and the RISC-V target build do
# not run this build's code, so their tests are left out. The figures are
# reported, not enforced.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD"
BUILD=build/coverage
GATEWAY_TARGET=85
CORE_TARGET=95
case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
esac

run_suite() {
  if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
    echo "==> installing missing packages"
    scripts/install-deps.sh
  fi

  # Debug, as the test build (scripts/test.sh) is: no NDEBUG, no
  # _FORTIFY_SOURCE; IOT_COVERAGE adds --coverage -O0, so every line counted
  # is a line of the source. No sanitizer: gcov needs none.
  echo "==> configuring $BUILD (gcc --coverage)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug \
    -DIOT_SANITIZE=OFF -DIOT_COVERAGE=ON >/dev/null
  echo "==> building"
  cmake --build "$BUILD"

  # Counters add up across runs: start from zero.
  find "$BUILD" -name '*.gcda' -delete
  echo "==> running the test suite"
  local args=("$@")
  [ ${#args[@]} -gt 0 ] || args=(-LE 'fuzz|target')
  set +e
  (cd "$BUILD" && ctest --output-on-failure --parallel 2 "${args[@]}")
  suite_rc=$?
  set -e
}

suite_rc=0
if [ "${1:-}" = --report ]; then
  [ -n "${2:-}" ] && [ -d "$2" ] || { echo "coverage: --report needs a build directory, got '${2:-}'" >&2; exit 2; }
  BUILD="$2"
else
  run_suite "$@"
fi

# One process (gcovr 5.2 can hang after a worker's error with -j), bounded
# in time, and a counter file that gcov cannot read (a process killed while
# writing it) skipped rather than ending the report.
GCOVR=(timeout 300 gcovr --root "$SRC" --object-directory "$BUILD" --gcov-executable gcov
  --gcov-ignore-parse-errors)
mkdir -p "$BUILD/html"
# report NAME DIR TARGET: per-file table with the line numbers not run,
# the total against the target, and the files with the largest gaps.
report() {
  local name="$1" dir="$2" target="$3" json="$BUILD/$1.json"
  echo
  echo "==> $name ($dir): lines per file, and the lines not run"
  "${GCOVR[@]}" --filter "$SRC/$dir/" --json-summary "$json" --txt - "$BUILD" |
    sed -n '/^File /,$p'
  jq -r --arg n "$name" --argjson t "$target" \
    '"  \($n) total: \(.line_covered) / \(.line_total) lines = \(.line_percent) % (target \($t) %)" +
     (if .line_percent >= $t then "" else ", \($t - .line_percent | . * 10 | round / 10) points short" end)' \
    "$json"
  echo "  most lines not run:"
  jq -r '.files[] | [(.line_total - .line_covered), .filename] | @tsv' "$json" |
    sort -rn | head -5 | awk -F'\t' '$1 > 0 { printf "    %5d  %s\n", $1, $2 }'
}
report gateway gateway "$GATEWAY_TARGET"
report core core "$CORE_TARGET"

"${GCOVR[@]}" --filter "$SRC/gateway/" --filter "$SRC/core/" \
  --html-details "$BUILD/html/index.html" --html-title "IoT Telemetry: gateway and core" \
  "$BUILD" >/dev/null
echo
echo "==> HTML report: $BUILD/html/index.html"
if [ "$suite_rc" -ne 0 ]; then
  echo "coverage: the test suite failed (exit $suite_rc); the figures above are from a failing run" >&2
  exit "$suite_rc"
fi
