#!/usr/bin/env bash
# Checks the compliance map (docs/compliance/requirements.md) against the
# test suite:
#   - every requirement of the list below has exactly one row, and no row
#     names a requirement that is not on it;
#   - every row names at least one test in its Tests column (4th);
#   - every test named there is registered (`ctest -N` of the build
#     directory), but those written `pending:NAME`, which are counted and
#     reported (and named when they have become registered, so that the
#     prefix can be removed).
#
#   scripts/check-compliance-map.sh BUILD_DIR [MAP]
# Exit status 0 when the map holds, 1 otherwise, 2 on wrong usage.
set -euo pipefail

BUILD="${1:?usage: check-compliance-map.sh BUILD_DIR [MAP]}"
MAP="${2:-$(dirname "$0")/../docs/compliance/requirements.md}"
[ -f "$MAP" ] || { echo "check-compliance-map: no map at $MAP" >&2; exit 2; }

REQUIRED="CRA-I-1 CRA-I-2a CRA-I-2b CRA-I-2c CRA-I-2d CRA-I-2e CRA-I-2f CRA-I-2g CRA-I-2h
CRA-I-2i CRA-I-2j CRA-I-2k CRA-I-2l CRA-I-2m
CRA-II-1 CRA-II-2 CRA-II-3 CRA-II-4 CRA-II-5 CRA-II-6 CRA-II-7 CRA-II-8
EN303645-5.1 EN303645-5.2 EN303645-5.3 EN303645-5.4 EN303645-5.5 EN303645-5.6 EN303645-5.7
EN303645-5.8 EN303645-5.9 EN303645-5.10 EN303645-5.11 EN303645-5.12 EN303645-5.13"

registered="$(ctest -N --test-dir "$BUILD" | sed -n 's/^ *Test *#[0-9]*: //p')"
[ -n "$registered" ] || { echo "check-compliance-map: no tests registered in $BUILD" >&2; exit 2; }

errors=0
pending=0
err() {
  echo "check-compliance-map: $*" >&2
  errors=$((errors + 1))
}

# The rows: "| ID | requirement | feature | tests | operator |" whose ID
# looks like one of ours.
rows="$(grep -E '^\| *(CRA-|EN303645-)' "$MAP" || true)"
ids="$(printf '%s\n' "$rows" | awk -F'|' 'NF > 1 { gsub(/ /, "", $2); print $2 }')"

for id in $REQUIRED; do
  n="$(printf '%s\n' "$ids" | grep -cxF -- "$id" || true)"
  [ "$n" -eq 1 ] || err "$id has $n rows in $MAP; it needs exactly one"
done
# `grep -q` would stop reading at its match and fail the pipeline (pipefail)
# with printf's SIGPIPE: the lookups below read all of their input.
for id in $ids; do
  printf '%s\n' $REQUIRED | grep -xF -- "$id" >/dev/null || err "$MAP names an unknown requirement $id"
done

while IFS= read -r row; do
  [ -n "$row" ] || continue
  id="$(printf '%s\n' "$row" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }')"
  tests="$(printf '%s\n' "$row" | awk -F'|' '{ print $5 }' | grep -o '`[^`]*`' | tr -d '`' || true)"
  [ -n "$tests" ] || err "$id names no test"
  for t in $tests; do
    if [ "${t#pending:}" != "$t" ]; then
      pending=$((pending + 1))
      printf '%s\n' "$registered" | grep -xF -- "${t#pending:}" >/dev/null &&
        echo "check-compliance-map: $id: ${t#pending:} is registered now; remove its 'pending:' prefix" >&2
      continue
    fi
    printf '%s\n' "$registered" | grep -xF -- "$t" >/dev/null || err "$id maps to $t, which is not a registered test"
  done
done <<<"$rows"

echo "check-compliance-map: $(printf '%s\n' $REQUIRED | wc -l) requirements, $pending pending test references, $errors errors"
[ "$errors" -eq 0 ]
