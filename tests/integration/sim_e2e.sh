#!/usr/bin/env bash
# The device simulator end to end: iotsim (the device core over the POSIX
# port, mbedTLS) -> the real gateway -> a real Mosquitto -> a consumer.
# Readings of several devices arrive on their own topics in order; a gateway
# outage loses nothing; a simulator killed with SIGKILL mid-queue resumes its
# sequence and its queue; a revoked device is stopped and reported while the
# others go on. Every check is against what the consumer received.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
SUB="$T/sub.out"
STATE="$T/state"

make_pki sim-1 sim-2 sim-3
start_broker
# The gateway closes connections idle for a second, so a slow device
# meets a connection closed under it.
write_gateway_config "retry_after = 1s" "request_timeout = 1s"
URL="https://localhost:$GW_PORT"
# Fast schedules: a reading every 100 ms, retries at most a second apart.
SIM=("$IOTSIM" --gateway "$URL" --pki "$P" --interval 100ms --backoff-max 1s --timeout 5s)



count_lines() { grep -Ec -- "$2" "$1" 2>/dev/null || true; }
at_least() { [ "$(count_lines "$1" "$2")" -ge "$3" ]; }
# both_at_least FILE PATTERN N: sim-1 and sim-2 each have N lines "DEV: PATTERN".
both_at_least() { at_least "$1" "^sim-1: $2" "$3" && at_least "$1" "^sim-2: $2" "$3"; }

# delivered DEV: the device's readings as the consumer got them, one
# "dseq" per line in the gateway's order, republished copies dropped.
delivered() {
  grep "^telemetry/$1/telemetry " "$SUB" | cut -d' ' -f2- |
    jq -r --arg d "$1" 'if .device == $d then "\(.seq) \(.dseq)" else "WRONG-DEVICE \(.device)" end' |
    sort -n -k1,1 -u | awk '{ print $2 }'
}
has_delivered() { [ "$(delivered "$1" | wc -l)" -ge "$2" ]; }

# check_order DEV: dseqs strictly increase in the gateway's order.
check_order() {
  local dev="$1"
  ! delivered "$dev" | grep -q WRONG-DEVICE || fail "a reading of another device on $dev's topic"
  delivered "$dev" | awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { exit bad }' ||
    fail "$dev: readings out of order or repeated: $(delivered "$dev" | tr '\n' ' ')"
}

# expect_delivered DEV FIRST LAST: every dseq in FIRST..LAST arrived.
expect_delivered() {
  local dev="$1" first="$2" last="$3" missing
  missing="$(comm -23 <(seq "$first" "$last" | sort) <(delivered "$dev" | sort -u) | sort -n | tr '\n' ' ')"
  [ -z "$missing" ] || fail "$dev: readings $first..$last acknowledged or queued, not delivered: $missing"
}

summary_field() { # summary_field FILE DEV FIELD
  grep "^$2: readings" "$1" | sed "s/^$2: //" | tr ',' '\n' | awk -v f="$3" '$1 == f { print $2 }'
}

# --- the command line and the device's files ------------------------------------------
run "$IOTSIM" --help
[ "$RC" -eq 0 ] || fail "--help: exit $RC"
echo "$OUT" | grep -q -- '--drain-timeout' || fail "--help does not describe --drain-timeout: $OUT"
pass "--help describes the options"
expect_fail "a plain-HTTP gateway URL is a usage error" 2 "only https://" \
  "$IOTSIM" --gateway "http://localhost:$GW_PORT" --pki "$P" --device sim-1 --state "$T/st-x"
expect_fail "a device without files names the missing key" 1 \
  "cannot read key $P/devices/nosuch/key.pem" "${SIM[@]}" --device nosuch --state "$T/st-x"
mkdir -p "$T/bad/devices"
cp -r "$P/devices/sim-1" "$T/bad/devices/"
chmod 644 "$T/bad/devices/sim-1/key.pem"
expect_fail "a key readable by others is refused" 1 "key.pem has mode 0644.*chmod 600" \
  "$IOTSIM" --gateway "$URL" --pki "$T/bad" --device sim-1 --state "$T/st-x"
chmod 600 "$T/bad/devices/sim-1/key.pem"
echo "not a certificate" >"$T/bad/devices/sim-1/cert.pem"
expect_fail "a damaged certificate is named" 1 "$T/bad/devices/sim-1/cert.pem is not a valid" \
  "$IOTSIM" --gateway "$URL" --pki "$T/bad" --device sim-1 --state "$T/st-x"
cp "$P/devices/sim-2/cert.pem" "$T/bad/devices/sim-1/cert.pem"
expect_fail "another device's certificate is refused" 1 "is for 'sim-2', not device 'sim-1'" \
  "$IOTSIM" --gateway "$URL" --pki "$T/bad" --device sim-1 --state "$T/st-x"

# --- no gateway at all: queue, retry, give up at the drain timeout ------------------------
run "${SIM[@]}" --device sim-3 --state "$T/st-unreachable" --count 3 --drain-timeout 1s
[ "$RC" -eq 1 ] || fail "unreachable gateway: expected exit 1, got $RC; $ERR"
echo "$ERR" | grep -q "sim-3: cannot reach the gateway at localhost:$GW_PORT: .*refused.*retrying with backoff" ||
  fail "unreachable gateway not reported with host:port: $ERR"
[ "$(echo "$ERR" | grep -c 'cannot reach')" -eq 1 ] || fail "the outage is reported more than once: $ERR"
echo "$ERR" | grep -q "3 readings still queued at the drain timeout" || fail "drain timeout not reported: $ERR"
expect_eq "unreachable: readings stay queued" 3 "$(summary_field "$T/.out" sim-3 queued)"
[ -s "$T/st-unreachable/sim-3/q.0.kv" ] || fail "the queue is not in the state directory"
pass "an unreachable gateway is named, retried, and the readings stay queued"

start_gateway
start_consumer "$SUB"
sleep 0.5

# --- 1. several devices, then the gateway down for a while ----------------------------------
"${SIM[@]}" --device sim-1 --device sim-2 --state "$STATE" --count 50 --drain-timeout 30s -v \
  >"$T/run1.out" 2>"$T/run1.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
wait_until 20 "live uploads of both devices" both_at_least "$T/run1.out" "upload 1 reading .*: 200" 5
stop_gateway
wait_until 20 "the simulator to notice the outage" at_least "$T/run1.err" "cannot reach the gateway" 2
sleep 1.5
start_gateway
wait_sim "$SIM_PID" 45
expect_eq "gateway outage: the simulator exits 0" 0 "$SIM_RC"
grep -q "sim-1: cannot reach the gateway at localhost:$GW_PORT" "$T/run1.err" ||
  fail "outage not reported: $(cat "$T/run1.err")"
grep -q "sim-1: reached the gateway at localhost:$GW_PORT again" "$T/run1.err" ||
  fail "recovery not reported: $(cat "$T/run1.err")"
grep -Eq '^sim-[12]: upload ([2-9]|[1-9][0-9]) readings .*: 200' "$T/run1.out" ||
  fail "the queue was not sent in batches: $(cat "$T/run1.out")"
for dev in sim-1 sim-2; do
  expect_eq "$dev acknowledged every reading" 50 "$(summary_field "$T/run1.out" "$dev" acknowledged)"
  expect_eq "$dev has nothing left queued" 0 "$(summary_field "$T/run1.out" "$dev" queued)"
  wait_until 20 "50 readings of $dev at the consumer" has_delivered "$dev" 50
  check_order "$dev"
  expect_delivered "$dev" 1 50
  expect_eq "$dev: nothing beyond its 50 readings" 50 "$(delivered "$dev" | wc -l)"
done
pass "gateway outage: every reading of both devices delivered once, in order, on its own topic"

# --- a kept connection the gateway closed while idle is replaced quietly ------------------
run "${SIM[@]}" --device sim-1 --state "$STATE" --count 3 --interval 1500ms -vv
expect_eq "idle-closed connections: exit 0" 0 "$RC"
expect_eq "idle-closed connections: all acknowledged" 3 "$(summary_field "$T/.out" sim-1 acknowledged)"
expect_eq "a new TLS session for each reading after an idle close" 3 \
  "$(echo "$ERR" | grep -c 'device=sim-1 event=https.connected')"
! echo "$ERR" | grep -Eq 'cannot reach|https\.(io|tls)_failed' || fail "an idle close surfaced as an error: $ERR"
pass "a connection the gateway closed while idle is replaced without an error"

# --- 2. the simulator killed mid-queue, then restarted --------------------------------------
declare -A TAKEN FIRST2 LAST1 COUNT1
for dev in sim-1 sim-2; do
  LAST1[$dev]="$(delivered "$dev" | tail -1)"
  COUNT1[$dev]="$(delivered "$dev" | wc -l)"
done
"${SIM[@]}" --device sim-1 --device sim-2 --state "$STATE" --count 100000 -vv \
  >"$T/run2.out" 2>"$T/run2.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
wait_until 20 "live uploads" at_least "$T/run2.out" "^sim-2: upload 1 reading .*: 200" 3
expect_eq "one TLS session carries every request (keep-alive)" 1 \
  "$(count_lines "$T/run2.err" "device=sim-2 event=https.connected")"
stop_gateway
wait_until 30 "both devices to queue 8 readings" \
  both_at_least "$T/run2.out" "reading [0-9]+ taken, ([89]|[1-9][0-9]) queued" 1
kill -KILL "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
for dev in sim-1 sim-2; do
  TAKEN[$dev]="$(grep -E "^$dev: reading [0-9]+ taken" "$T/run2.out" | tail -1 | awk '{ print $3 }')"
done
start_gateway
run "${SIM[@]}" --device sim-1 --device sim-2 --state "$STATE" --count 5 --drain-timeout 30s -v
expect_eq "restart after SIGKILL: exit 0" 0 "$RC"
cp "$T/.out" "$T/run3.out"
for dev in sim-1 sim-2; do
  expect_eq "$dev: the restarted run took its 5 readings" 5 "$(summary_field "$T/run3.out" "$dev" readings)"
  expect_eq "$dev: its queue is empty" 0 "$(summary_field "$T/run3.out" "$dev" queued)"
  # The restarted run sends the old queue first, then its own readings.
  acked="$(summary_field "$T/run3.out" "$dev" acknowledged)"
  [ "$acked" -ge $((5 + 8)) ] || fail "$dev: only $acked acknowledged after the restart"
  want=$((COUNT1[$dev] + TAKEN[$dev] + 5))
  wait_until 20 "$want readings of $dev at the consumer" has_delivered "$dev" "$want"
  check_order "$dev"
  # Run 2 numbered its readings from one point on, without gaps; every
  # reading it printed as taken (all queued or sent) arrived.
  FIRST2[$dev]="$(delivered "$dev" | awk -v l="${LAST1[$dev]}" '$1 > l' | head -1)"
  expect_delivered "$dev" "${FIRST2[$dev]}" $((FIRST2[$dev] + TAKEN[$dev] - 1))
  # Run 3 continued the sequence above everything run 2 used.
  last2=$((FIRST2[$dev] + TAKEN[$dev] - 1))
  run3="$(delivered "$dev" | tail -5 | head -1)"
  [ "$run3" -gt "$last2" ] || fail "$dev: run 3 reused sequence numbers ($run3 <= $last2)"
done
pass "SIGKILL mid-queue: the queue survives and the sequence continues (sim-1 took ${TAKEN[sim-1]}, sim-2 ${TAKEN[sim-2]} before the kill)"

# --- 3. a device revoked while running ---------------------------------------------------------
before1="$(delivered sim-1 | wc -l)"
before2="$(delivered sim-2 | wc -l)"
"${SIM[@]}" --device sim-1 --device sim-2 --device sim-3 --state "$STATE" --count 30 \
  --drain-timeout 20s -v >"$T/run4.out" 2>"$T/run4.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
wait_until 20 "sim-3 to be uploading" at_least "$T/run4.out" "^sim-3: upload .*: 200" 3
"$IOTCTL" --dir "$P" device revoke sim-3 >/dev/null
kill -HUP "$GW_PID"
wait_sim "$SIM_PID" 40
expect_eq "a revoked device makes the exit status 1" 1 "$SIM_RC"
[ "$(grep -c "the gateway refused device sim-3's certificate (revoked or unknown)" "$T/run4.err")" -eq 1 ] ||
  fail "refusal of sim-3 not reported once: $(cat "$T/run4.err")"
! grep -q "refused device sim-[12]" "$T/run4.err" || fail "another device reported refused"
grep -q '^sim-3: .*(certificate refused)$' "$T/run4.out" || fail "summary: $(cat "$T/run4.out")"
for dev in sim-1 sim-2; do
  expect_eq "$dev kept working: all 30 acknowledged" 30 "$(summary_field "$T/run4.out" "$dev" acknowledged)"
  before="$before1"
  [ "$dev" = sim-1 ] || before="$before2"
  wait_until 20 "$dev's readings after the revocation" has_delivered "$dev" $((before + 30))
  check_order "$dev"
done
[ "$(refusals device_revoked)" -ge 1 ] || fail "the gateway did not count a device_revoked refusal"
pass "revocation: sim-3 stopped and reported, sim-1 and sim-2 delivered everything"

# A fresh connection of the revoked device ends in the TLS handshake.
run "${SIM[@]}" --device sim-3 --state "$STATE" --count 1 --drain-timeout 10s
expect_eq "a revoked device at start: exit 1" 1 "$RC"
echo "$ERR" | grep -q "the gateway refused device sim-3's certificate (revoked or unknown): TLS alert certificate_revoked" ||
  fail "handshake refusal not reported: $ERR"
pass "a revoked certificate refused in the handshake is reported as such"

finish
