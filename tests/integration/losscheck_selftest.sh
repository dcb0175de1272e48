#!/usr/bin/env bash
# The loss checker against crafted inputs: a clean run with republished
# copies passes; a lost, a reordered, an unexpected reading, a reading
# stored twice, a gap in the gateway sequence and a damaged payload are each
# caught and named. A reading whose 2xx was lost but that was sent is not
# unexpected.
. "$(dirname "$0")/lib.sh"

LC="$IOT_SOURCE_DIR/tests/support/tools/losscheck.sh"

# msg DEVICE SEQ DSEQ: one captured line as mosquitto_sub -v prints it.
msg() {
  printf 'telemetry/%s/telemetry {"device":"%s","seq":%s,"dseq":%s,"t":1764086400,"rx":1764086400.5,"values":[{"n":"temperature","u":"Cel","v":21.5}]}\n' \
    "$1" "$1" "$2" "$3"
}

# check NAME WANT-RC PATTERN...: runs the checker on $T/acked, $T/sent and
# $T/cap; expects the exit status and every pattern in its output.
check() {
  local name="$1" want="$2" pat
  shift 2
  run bash "$LC" --sent "$T/sent" "$T/acked" "$T/cap"
  [ "$RC" -eq "$want" ] || fail "$name: expected exit $want, got $RC: $OUT $ERR"
  for pat in "$@"; do
    echo "$OUT" | grep -Eq -- "$pat" || fail "$name: output does not match /$pat/: $OUT"
  done
  [ "$(echo "$OUT" | grep -c '^losscheck: ')" -eq 1 ] || fail "$name: not one summary line: $OUT"
  pass "$name"
}

# A clean run: two devices, the gateway republished seq 2-3 of dev-a after
# a lost PUBACK. dev-b's dseq 7 was sent, its 2xx lost, and it arrived.
printf 'dev-a 1\ndev-a 2\ndev-a 3\ndev-b 5\ndev-b 6\n' >"$T/acked"
{ cat "$T/acked"; echo "dev-b 7"; } >"$T/sent"
{
  msg dev-a 1 1
  msg dev-b 1 5
  msg dev-a 2 2
  msg dev-a 3 3
  msg dev-a 2 2
  msg dev-a 3 3
  msg dev-b 2 6
  msg dev-b 3 7
} >"$T/cap"
check "clean run with republished copies passes" 0 \
  '^losscheck: acknowledged=5 delivered=6 lost=0 duplicated_raw=2 duplicated_after_dedup=0 reordered=0 unexpected=0 seq_gaps=0$'

# Without --sent, the reading whose 2xx was lost is unexpected.
run bash "$LC" "$T/acked" "$T/cap"
[ "$RC" -eq 1 ] && echo "$OUT" | grep -q 'unexpected=1 ' && echo "$OUT" | grep -q 'dev-b dseq 7 (seq 3) was never sent' ||
  fail "without --sent a delivered but unacknowledged reading is not reported: $OUT"
pass "without --sent, a reading never acknowledged is unexpected"

# Lost: dev-a 3 acknowledged, never delivered (the gateway seq has no gap:
# the reading never reached the gateway's outbox or was deleted unpublished).
printf 'dev-a 1\ndev-a 2\ndev-a 3\n' >"$T/acked"
cp "$T/acked" "$T/sent"
{ msg dev-a 1 1; msg dev-a 2 2; } >"$T/cap"
check "a lost reading is caught" 1 'acknowledged=3 delivered=2 lost=1 ' '^  lost: dev-a 3$'

# Lost in the middle, seen as a gap in the gateway sequence too.
{ msg dev-a 1 1; msg dev-a 3 3; } >"$T/cap"
check "a gap in the gateway sequence is caught" 1 'lost=1 .*seq_gaps=1$' '^  seq_gap: dev-a has 2 of seq 1..3$'

# Reordered: dseq 3 before 2 (by gateway seq too), after dropping copies.
{ msg dev-a 1 1; msg dev-a 3 3; msg dev-a 2 2; msg dev-a 3 3; } >"$T/cap"
check "a reordered reading is caught" 1 'lost=0 duplicated_raw=1 duplicated_after_dedup=0 reordered=1 unexpected=0' \
  '^  reordered: dev-a dseq 2 \(seq 2\) arrived after dseq 3$'

# Duplicated after de-duplication: the gateway stored dseq 2 twice.
{ msg dev-a 1 1; msg dev-a 2 2; msg dev-a 3 2; msg dev-a 4 3; } >"$T/cap"
check "a reading stored twice is counted" 0 'delivered=4 lost=0 duplicated_raw=0 duplicated_after_dedup=1 reordered=0' \
  '^  duplicated_after_dedup: dev-a dseq 2 as seq 2 and seq 3$'

# Unexpected: never sent, another device's reading, a broken payload, the
# same gateway seq with two different readings.
{
  msg dev-a 1 1
  msg dev-a 2 2
  msg dev-a 3 3
  msg dev-a 4 99
  msg dev-c 1 1
  echo 'telemetry/dev-a/telemetry {"device":"dev-a","seq":'
  msg dev-a 3 4
  printf 'telemetry/dev-b/telemetry {"device":"dev-a","seq":5,"dseq":3}\n'
} >"$T/cap"
check "unexpected readings are caught" 1 'lost=0 .*unexpected=5 ' \
  'unexpected: dev-a dseq 99 \(seq 4\) was never sent' 'unexpected: dev-c dseq 1 \(seq 1\) was never sent' \
  'unexpected: not-json telemetry/dev-a/telemetry' 'unexpected: dev-a seq 3 carried dseq 3 and then 4' \
  'unexpected: dev-a seq 5 on the topic of dev-b'

# Details are capped; the counts are not.
seq 1 20 | sed 's/^/dev-a /' >"$T/acked"
cp "$T/acked" "$T/sent"
: >"$T/cap"
check "twenty lost readings: counted, five shown" 1 'acknowledged=20 delivered=0 lost=20 '
[ "$(echo "$OUT" | grep -c '^  lost: ')" -eq 5 ] || fail "details not capped at 5: $OUT"
echo "$OUT" | grep -q '^  lost: dev-a 1$' || fail "lowest lost reading not shown first: $OUT"
pass "details are capped at five, lowest first"

expect_fail "a missing input is a usage error" 2 "cannot read" bash "$LC" "$T/nosuch" "$T/cap"
expect_fail "wrong arguments are a usage error" 2 "usage:" bash "$LC" "$T/acked"

finish
