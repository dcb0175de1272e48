#!/usr/bin/env bash
# Every security event type of the gateway (the TYPES table of
# gateway/src/secevent.c) is asserted on the security stream by at least
# one integration test: a line `stream_has TYPE ...` or
# `expect_stream TYPE ...` (tests/integration/gateway_lib.sh) in
# tests/integration/*.sh. So a new type without a test fails the suite. A
# type no real action against the real gateway can trigger is listed in
# EXCEPTIONS below, with why; an exception a test asserts after all, or one
# that is not in the table, is an error too.
#
#   scripts/check-security-event-tests.sh [SECEVENT-C [TESTS-DIR]]
#
# Exit status: 0 every type covered, 1 otherwise (each problem on stderr),
# 2 usage.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ME="check-security-event-tests"

[ $# -le 2 ] || {
  echo "usage: $0 [SECEVENT-C [TESTS-DIR]]" >&2
  exit 2
}
TABLE="${1:-$ROOT/gateway/src/secevent.c}"
TESTS="${2:-$ROOT/tests/integration}"

# The types no real action triggers.
EXCEPTIONS=(
  # iot_harden_process (common/src/process.c) lowers RLIMIT_CORE to 0 and
  # clears PR_SET_DUMPABLE: Linux lets every process lower its own limits
  # and clear its own dumpable flag, so neither call fails short of a
  # seccomp filter made to deny them.
  gateway.core_dumps_enabled
  # The shared-key audit (admission.c) reads the registry's tables on the
  # connection the load has just read them with: a registry that cannot be
  # read fails the load first (identity.reload_failed, gateway_revocation.sh)
  # and no change to the registry makes the audit's query alone fail.
  identity.audit_failed
  # The image is a regular file of the manifest's size, opened and checked
  # just before (updates.c, open_image); libevent then fails to map or read
  # it only when out of memory or on a disk I/O error.
  update.image_unreadable
)

[ -r "$TABLE" ] || {
  echo "$ME: cannot read $TABLE" >&2
  exit 2
}
[ -d "$TESTS" ] || {
  echo "$ME: no directory $TESTS" >&2
  exit 2
}
mapfile -t types < <(sed -n '/TYPES\[\] = {$/,/^};$/p' "$TABLE" | sed -nE 's/^[[:space:]]*\{"([a-z_.]+)".*/\1/p')
if [ "${#types[@]}" -lt 10 ]; then
  echo "$ME: no TYPES table in $TABLE (found ${#types[@]} types)" >&2
  exit 1
fi

# asserted TYPE: the test lines that assert TYPE on the stream.
asserted() {
  local re="${1//./\\.}"
  command grep -hE "^[^#]*(^|[[:space:]])(stream_has|expect_stream) +[\"']?${re}[\"']?( |$)" "$TESTS"/*.sh || true
}
is_exception() {
  local e
  for e in "${EXCEPTIONS[@]}"; do [ "$e" = "$1" ] && return 0; done
  return 1
}
is_type() {
  local t
  for t in "${types[@]}"; do [ "$t" = "$1" ] && return 0; done
  return 1
}

errors=0
covered=0
for t in "${types[@]}"; do
  if is_exception "$t"; then
    if [ -n "$(asserted "$t")" ]; then
      echo "$ME: $t is listed as an exception but a test asserts it: remove it from EXCEPTIONS" >&2
      errors=$((errors + 1))
    fi
  elif [ -n "$(asserted "$t")" ]; then
    covered=$((covered + 1))
  else
    echo "$ME: $t is asserted on the security stream by no test (stream_has $t or expect_stream $t in $TESTS)" >&2
    errors=$((errors + 1))
  fi
done
for e in "${EXCEPTIONS[@]}"; do
  is_type "$e" || {
    echo "$ME: the exception $e is not a type of $TABLE" >&2
    errors=$((errors + 1))
  }
done
echo "$ME: ${#types[@]} types, $covered asserted by a test, ${#EXCEPTIONS[@]} exceptions, $errors errors"
[ "$errors" -eq 0 ]
