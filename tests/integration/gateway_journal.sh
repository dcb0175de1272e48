#!/usr/bin/env bash
# Under systemd, stderr is the journal (JOURNAL_STREAM names it): every log
# line starts with its syslog priority so the journal keeps the level.
# With stderr elsewhere, lines have no prefix.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-001
start_broker
write_gateway_config
: >"$T/j.log"
JOURNAL_STREAM="$(stat -c %d:%i "$T/j.log")" "$IOTGW" --config "$T/gw.conf" 2>>"$T/j.log" &
_PIDS+=("$!"); GW_PID=$!
wait_port "$GW_PORT" 15 || fail "iotgw did not start: $(tail -3 "$T/j.log")"
curl -s -o /dev/null "http://127.0.0.1:$GW_PORT/" || true # plaintext: a warn line
for _ in $(seq 1 30); do grep -q 'level=warn' "$T/j.log" && break; sleep 0.1; done
stop_gateway
[ -s "$T/j.log" ] || fail "no log lines"
! grep -qv '^<[3467]>' "$T/j.log" || fail "a line without a priority prefix: $(grep -v '^<[3467]>' "$T/j.log" | head -1)"
grep -q '^<4>[^ ]* level=warn ' "$T/j.log" || fail "no warn line with <4>: $(cat "$T/j.log")"
grep -q '^<6>[^ ]* level=info event=gateway.started' "$T/j.log" || fail "no info line with <6>"
! grep -q '^<[3467]>.* level=warn' <(grep -v '^<4>' "$T/j.log") || fail "a warn line with another priority"
pass "with stderr on the journal every line carries its syslog priority"

: >"$T/plain.log"
JOURNAL_STREAM=0:0 "$IOTGW" --config "$T/gw.conf" 2>>"$T/plain.log" &
_PIDS+=("$!"); GW_PID=$!
wait_port "$GW_PORT" 15 || fail "iotgw did not start: $(tail -3 "$T/plain.log")"
stop_gateway
grep -q 'event=gateway.started' "$T/plain.log" || fail "no log lines without the journal"
! grep -q '^<' "$T/plain.log" || fail "a prefix while stderr is not the journal: $(head -1 "$T/plain.log")"
pass "with stderr elsewhere no line has a prefix"
finish
