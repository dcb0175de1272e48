#!/usr/bin/env bash
# Every security event type of the gateway (gateway/src/secevent.c) is
# asserted on the security stream by an integration test, or is an
# explained exception (scripts/check-security-event-tests.sh); the check
# fails on a new type without a test, a test that no longer asserts its
# type, an exception a test asserts after all, and an exception that is no
# type.
. "$(dirname "$0")/lib.sh"

CHECK="$IOT_SOURCE_DIR/scripts/check-security-event-tests.sh"
TABLE="$IOT_SOURCE_DIR/gateway/src/secevent.c"
TESTS="$IOT_SOURCE_DIR/tests/integration"

expect_ok "every security event type is asserted by a test or an exception" "$CHECK"
echo "$OUT" | grep -Eq "^check-security-event-tests: ([0-9]+) types, [0-9]+ asserted by a test, [0-9]+ exceptions, 0 errors$" ||
  fail "no summary line: $OUT"
pass "$(echo "$OUT" | cut -d: -f2- | sed "s/^ //")"

# A copy of the table and of the tests, each changed by a sed expression.
mkdir -p "$T/tests"
cp "$TESTS"/*.sh "$T/tests/"
table() { sed -E "$1" "$TABLE" >"$T/secevent.c"; }
tests() { sed -i -E "$2" "$T/tests/$1"; }
# broken WHAT PATTERN: the check of the copies fails, naming PATTERN.
broken() {
  run "$CHECK" "$T/secevent.c" "$T/tests"
  [ "$RC" -eq 1 ] || fail "$1: expected exit 1, got $RC: $OUT $ERR"
  echo "$ERR" | grep -Eq -- "$2" || fail "$1: stderr does not name /$2/: $ERR"
  pass "$1"
}

table ''
expect_ok "the copies check as the sources do" "$CHECK" "$T/secevent.c" "$T/tests"
table 's/^(    \{"update\.report".*)$/\1\n    {"zz.new_type", "warning", NULL, NULL},/'
broken "a new type without a test fails" "zz\.new_type is asserted on the security stream by no test"
table ''
tests est_interop.sh 's/^expect_stream est\.pending /expect_stream est.pendin /'
broken "a test that no longer asserts its type fails" "est\.pending is asserted on the security stream by no test"
cp "$TESTS/est_interop.sh" "$T/tests/"
echo "expect_stream update.image_unreadable '.severity == \"error\"'" >>"$T/tests/gateway_updates.sh"
broken "an exception that a test asserts fails" "update\.image_unreadable is listed as an exception but a test asserts it"
cp "$TESTS/gateway_updates.sh" "$T/tests/"
table '/^    \{"gateway\.core_dumps_enabled"/d'
broken "an exception that is no type fails" "the exception gateway\.core_dumps_enabled is not a type"
table 's/TYPES\[\] = \{/KINDS[] = {/'
broken "a table it cannot find fails" "no TYPES table"
finish
