#!/usr/bin/env bash
# The compliance map (docs/compliance/requirements.md) against the test
# suite: it holds as shipped; it fails when a mapped test is not registered,
# a requirement has no row or two, or a row names no test; a `pending:` test
# is tolerated, counted, and named once it is registered. And
# deploy/security.txt (RFC 9116) has its required fields, points at the
# disclosure policy, and has not expired.
. "$(dirname "$0")/lib.sh"

CHECK="$IOT_SOURCE_DIR/scripts/check-compliance-map.sh"
MAP="$IOT_SOURCE_DIR/docs/compliance/requirements.md"

expect_ok "the map holds against this build's tests" "$CHECK" "$IOT_BUILD_DIR" "$MAP"
echo "$OUT" | grep -Eq "^check-compliance-map: 35 requirements, [0-9]+ pending test references, 0 errors$" ||
  fail "no summary line: $OUT"
pass "35 requirements checked, pending references counted: $(echo "$OUT" | grep -o '[0-9]* pending')"

# mutate SED-EXPRESSION: a copy of the map changed by sed.
mutate() { sed -E "$1" "$MAP" >"$T/map.md"; }
# broken WHAT PATTERN: the check of $T/map.md fails, naming PATTERN.
broken() {
  run "$CHECK" "$IOT_BUILD_DIR" "$T/map.md"
  [ "$RC" -eq 1 ] || fail "$1: expected exit 1, got $RC: $OUT $ERR"
  echo "$ERR" | grep -Eq -- "$2" || fail "$1: stderr does not name /$2/: $ERR"
  pass "$1"
}

mutate 's/`integration\.tls_scan`/`integration.tls_scan_gone`/'
broken "a mapped test that no longer exists fails the check" "tls_scan_gone, which is not a registered test"
mutate '/^\| CRA-I-2m /d'
broken "a requirement without a row fails the check" "CRA-I-2m has 0 rows"
mutate '/^\| EN303645-5\.13 /{p}'
broken "a requirement with two rows fails the check" "EN303645-5.13 has 2 rows"
mutate 's/^(\| CRA-II-5 \|[^|]*\|[^|]*\|)[^|]*\|/\1 none \|/'
broken "a row without a test fails the check" "CRA-II-5 names no test"
mutate 's/^\| CRA-II-5 /| CRA-II-9 /'
broken "an unknown requirement fails the check" "unknown requirement CRA-II-9"
# A pending test that has since been registered: passes, and says so.
mutate 's/`integration\.iotctl_incident`/`pending:integration.iotctl_incident`/'
run "$CHECK" "$IOT_BUILD_DIR" "$T/map.md"
[ "$RC" -eq 0 ] || fail "a registered pending test fails the check: $ERR"
echo "$ERR" | grep -q "integration.iotctl_incident is registered now; remove its 'pending:' prefix" ||
  fail "a registered pending test is not named: $ERR"
pass "a pending test that is registered passes and is named for flipping"
# A pending test that is not registered is tolerated, and counted.
mutate 's/`integration\.gateway_journal`/`pending:integration.not_yet`/'
run "$CHECK" "$IOT_BUILD_DIR" "$T/map.md"
[ "$RC" -eq 0 ] || fail "a pending test fails the check: $ERR"
base="$("$CHECK" "$IOT_BUILD_DIR" "$MAP" 2>/dev/null | grep -o '[0-9]* pending' | cut -d' ' -f1)"
echo "$OUT" | grep -q "$((base + 1)) pending" || fail "the pending test is not counted: $OUT"
pass "a pending test not yet registered is tolerated and counted"

# --- security.txt -----------------------------------------------------------------------
S="$IOT_SOURCE_DIR/deploy/security.txt"
field() { grep -E "^$1: " "$S" | sed -E "s/^$1: //"; }
[ "$(grep -cE '^Contact: (mailto:|https://)' "$S")" -ge 1 ] || fail "security.txt has no Contact URI"
[ "$(grep -cE '^Expires: ' "$S")" -eq 1 ] || fail "security.txt needs exactly one Expires"
field Policy | grep -q "SECURITY.md$" || fail "security.txt Policy does not point at SECURITY.md"
pass "security.txt: Contact, one Expires, Policy pointing at SECURITY.md"
expires="$(date -u -d "$(field Expires)" +%s)" || fail "security.txt Expires is not a date: $(field Expires)"
now="$(date -u +%s)"
[ "$expires" -gt "$now" ] || fail "security.txt expired on $(field Expires): renew it"
[ "$expires" -le $((now + 366 * 86400)) ] || fail "security.txt Expires is more than a year ahead (RFC 9116, 2.5.5)"
pass "security.txt has not expired and expires within a year"
grep -vE '^(#.*|[A-Z][A-Za-z-]*: .+|)$' "$S" && fail "security.txt has lines that are neither fields nor comments"
pass "security.txt has only fields and comments"
finish
