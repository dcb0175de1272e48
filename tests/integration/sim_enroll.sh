#!/usr/bin/env bash
# Enrollment end to end: simulated devices (the core's enrollment machine
# over the POSIX port) get their certificates from the real gateway's EST
# endpoints with tokens made by iotctl, publish readings with them, renew
# while publishing without a lost or refused reading, and survive a gateway
# that is down during a renewal or killed in its middle: the old certificate
# keeps working and the device asks again. Every reading is checked at the consumer (losscheck).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"

IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
LC="$IOT_SOURCE_DIR/tests/support/tools/losscheck.sh"
SUB="$T/sub.out"
STATE="$T/state"
N=5
LIFETIME=3600

est_pki
start_broker
est_config "est_cert_lifetime = ${LIFETIME}s"
URL="https://localhost:$GW_PORT"
SIM=("$IOTSIM" --gateway "$URL" --ca "$P/ca.crt" --interval 100ms --backoff-max 1s --timeout 5s)


summary_field() { # summary_field FILE DEV FIELD
  grep "^$2: readings" "$1" | sed "s/^$2: //" | tr ',' '\n' | awk -v f="$3" '$1 == f { print $2 }'
}

# acked FILE...: "device dseq" of every reading in an upload answered 2xx.
acked() {
  cat "$@" | sed -nE 's/^([^:]+): upload [0-9]+ readings? \(seq ([0-9]+)-([0-9]+)\): (2[0-9][0-9]).*/\1 \2 \3/p' |
    awk '{ for (s = $2; s <= $3; s++) print $1, s }' | sort -u
}

# refused FILE...: upload lines with another status than 2xx.
refused() {
  cat "$@" | grep -E '^[^:]+: upload .*: [0-9]{3}' | grep -Ev ': 2[0-9][0-9]' || true
}

serial() { openssl x509 -in "$STATE/$1/device.pem" -noout -serial; }
count_events() { grep -c "device=$1 event=$2" "$3" || true; }

# --- the command line ------------------------------------------------------------
expect_fail "a token is for one device" 2 "--enroll-token is for one --device" \
  "${SIM[@]}" --enroll-token x --devices 2 --state "$T/st-x"
expect_fail "enrollment needs the gateway's CA" 2 "needs --ca FILE" \
  "$IOTSIM" --gateway "$URL" --enroll-token x --device sim-1 --state "$T/st-x"
expect_fail "--renew without enrollment" 2 "--renew and --ca need" \
  "$IOTSIM" --gateway "$URL" --pki "$P" --renew --device sim-1 --state "$T/st-x"
run "$IOTSIM" --help
echo "$OUT" | grep -q -- '--enroll-tokens FILE' || fail "--help does not describe --enroll-tokens"
pass "enrollment options are checked and described"

start_gateway
start_consumer "$SUB"
sleep 0.5

# --- 1. a fleet from tokens to readings --------------------------------------------
: >"$T/tokens"
for i in $(seq 1 "$N"); do echo "sim-$i $(token "sim-$i")" >>"$T/tokens"; done
echo "sim-9 $(token sim-9)" >>"$T/tokens" # another device's line is ignored
run "${SIM[@]}" --enroll-tokens "$T/tokens" --devices "$N" --state "$STATE" --count 20 -v
cp "$T/.out" "$T/run1.out"
cp "$T/.err" "$T/run1.err"
expect_eq "the fleet enrolls and publishes: exit 0" 0 "$RC"
declare -A FIRST
now=$(date +%s)
for i in $(seq 1 "$N"); do
  d="sim-$i"
  expect_eq "$d acknowledged every reading" 20 "$(summary_field "$T/run1.out" "$d" acknowledged)"
  expect_eq "$d enrolled once" 1 "$(count_events "$d" enroll.enrolled "$T/run1.err")"
  expect_eq "$d's slot file is private" 600 "$(stat -c %a "$STATE/$d/device.pem")"
  openssl x509 -in "$STATE/$d/device.pem" -noout -subject -nameopt RFC2253 |
    grep -q "^subject=CN=$d," || fail "$d: wrong subject"
  openssl x509 -in "$STATE/$d/device.pem" -noout -issuer | grep -q gw-issuer ||
    fail "$d: not issued by the gateway's intermediate"
  # Renewal at two thirds of the lifetime, plus up to a twelfth.
  line="$(grep "device=$d event=enroll.scheduled" "$T/run1.err" | tail -1)"
  at="$(echo "$line" | sed -nE 's/.*renew_at=([0-9]+).*/\1/p')"
  end="$(echo "$line" | sed -nE 's/.*not_after=([0-9]+).*/\1/p')"
  start="$(date -d "$(openssl x509 -in "$STATE/$d/device.pem" -noout -startdate | cut -d= -f2)" +%s)"
  life=$((end - start))
  [ "$end" -ge $((now + LIFETIME - 60)) ] && [ "$end" -le $((now + LIFETIME)) ] ||
    fail "$d: the certificate ends at $end, not $LIFETIME s from now ($now)"
  [ -n "$at" ] && [ "$at" -ge $((start + life * 2 / 3)) ] &&
    [ "$at" -le $((start + life * 3 / 4)) ] || fail "$d: renewal at $at outside 2/3..3/4 of $start..$end"
  FIRST[$d]="$(serial "$d")"
done
[ -z "$(refused "$T/run1.out")" ] || fail "refused uploads: $(refused "$T/run1.out")"
[ ! -e "$STATE/sim-9" ] || fail "a device not simulated got a state directory"
pass "$N devices enrolled from tokens and published every reading (2xx)"

# A token is single-use: the devices now have certificates and need none.
run "${SIM[@]}" --enroll-tokens /dev/null --devices "$N" --state "$STATE" --count 3 -v
expect_eq "with certificates no token is needed: exit 0" 0 "$RC"
expect_eq "no enrollment again" 0 "$(echo "$ERR" | grep -c 'event=enroll.enrolled' || true)"
cp "$T/.out" "$T/run1b.out"

# --- 2. renewal while publishing --------------------------------------------------
run "${SIM[@]}" --enroll-tokens /dev/null --devices "$N" --state "$STATE" --count 40 --renew -v
cp "$T/.out" "$T/run2.out"
cp "$T/.err" "$T/run2.err"
expect_eq "renewal while publishing: exit 0" 0 "$RC"
for i in $(seq 1 "$N"); do
  d="sim-$i"
  expect_eq "$d renewed once" 1 "$(count_events "$d" enroll.renewed "$T/run2.err")"
  expect_eq "$d acknowledged every reading across the renewal" 40 "$(summary_field "$T/run2.out" "$d" acknowledged)"
  [ "$(serial "$d")" != "${FIRST[$d]}" ] || fail "$d: still the first certificate"
  [ ! -e "$STATE/$d/candidate.pem" ] || fail "$d: a candidate left after the commit"
done
[ -z "$(refused "$T/run2.out")" ] || fail "refused uploads during renewal: $(refused "$T/run2.out")"
pass "every device renewed while publishing, no reading refused"

# --- 2b. renewal falls due by itself --------------------------------------------------
# The devices' renewal clock runs ahead (--clock-ahead): at 35 minutes into a
# one-hour certificate nothing happens; at 46 minutes (past two thirds plus
# the largest jitter) every device renews on its own, while publishing.
run "${SIM[@]}" --enroll-tokens /dev/null --devices "$N" --state "$STATE" --count 10 --clock-ahead 35m -v
cp "$T/.out" "$T/run2a.out"
expect_eq "at 35 minutes: exit 0" 0 "$RC"
expect_eq "at 35 minutes no device renews" 0 "$(echo "$ERR" | grep -c 'event=enroll.renewed' || true)"
declare -A SECOND
for i in $(seq 1 "$N"); do SECOND[sim-$i]="$(serial "sim-$i")"; done
run "${SIM[@]}" --enroll-tokens /dev/null --devices "$N" --state "$STATE" --count 40 --clock-ahead 46m -v
cp "$T/.out" "$T/run2b.out"
cp "$T/.err" "$T/run2b.err"
expect_eq "at 46 minutes: exit 0" 0 "$RC"
for i in $(seq 1 "$N"); do
  d="sim-$i"
  expect_eq "$d renewed once, unasked" 1 "$(count_events "$d" enroll.renewed "$T/run2b.err")"
  expect_eq "$d acknowledged every reading across it" 40 "$(summary_field "$T/run2b.out" "$d" acknowledged)"
  [ "$(serial "$d")" != "${SECOND[$d]}" ] || fail "$d: still the certificate of the forced renewal"
done
[ -z "$(refused "$T/run2a.out" "$T/run2b.out")" ] ||
  fail "refused uploads around the renewal: $(refused "$T/run2a.out" "$T/run2b.out")"
pass "renewal falls due between two thirds and three quarters of the lifetime, no reading refused"

# --- 3. the gateway down during a renewal ---------------------------------------------
before="$(serial sim-1)"
stop_gateway
"${SIM[@]}" --enroll-tokens /dev/null --device sim-1 --state "$STATE" --count 60 --renew \
  --drain-timeout 60s -v >"$T/run3.out" 2>"$T/run3.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
wait_until 20 "the renewal to find no gateway" grep -q "device=sim-1 event=enroll.no_answer" "$T/run3.err"
expect_eq "the old certificate stays active while the gateway is away" "$before" "$(serial sim-1)"
start_gateway
wait_sim "$SIM_PID" 90
expect_eq "gateway back: exit 0" 0 "$SIM_RC"
expect_eq "sim-1 renewed once the gateway was back" 1 "$(count_events sim-1 enroll.renewed "$T/run3.err")"
[ "$(serial sim-1)" != "$before" ] || fail "sim-1: the renewal did not complete"
expect_eq "sim-1 acknowledged every reading" 60 "$(summary_field "$T/run3.out" sim-1 acknowledged)"
[ -z "$(refused "$T/run3.out")" ] || fail "refused uploads: $(refused "$T/run3.out")"
pass "a gateway down during renewal: the old certificate kept working, the device asked again"

# --- 3b. the gateway killed in the middle of a renewal ------------------------------------
# The gateway is stopped under a debugger at the point where the new
# certificate is in its registry and the answer not yet sent, and killed
# there (SIGKILL): the device never gets its new certificate. Its old one
# must keep working, and its next request must succeed.
command -v gdb >/dev/null || fail "gdb is needed (scripts/install-deps.sh installs it)"
before="$(serial sim-2)"
gdb -q -batch -p "$GW_PID" -ex 'set pagination off' -ex 'break issued' -ex 'continue' \
  -ex 'info registers pc' -ex 'kill' >"$T/gdb.out" 2>&1 &
GDB_PID=$!
_PIDS+=("$GDB_PID")
wait_until 30 "the debugger to hold the gateway" grep -q "^Breakpoint 1 at" "$T/gdb.out"
"${SIM[@]}" --enroll-tokens /dev/null --device sim-2 --state "$STATE" --count 60 --renew \
  --drain-timeout 60s -v >"$T/run3b.out" 2>"$T/run3b.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
wait_until 30 "the gateway to stop at the issued certificate" grep -q "Breakpoint 1, issued" "$T/gdb.out"
wait_until 30 "the gateway to be killed" bash -c "! kill -0 $GW_PID 2>/dev/null"
# The kill came after the commit: the registry already names a successor.
registered="$("$IOTCTL" --dir "$P" device list --json | jq -r '.[] | select(.id == "sim-2") | .serial')"
[ -n "$registered" ] && [ "serial=$registered" != "$before" ] ||
  fail "the registry should hold sim-2's undelivered certificate: registry $registered, device $before"
expect_eq "the device still holds its old certificate" "$before" "$(serial sim-2)"
wait_until 30 "the device to notice the lost answer" \
  grep -q "device=sim-2 event=enroll.no_answer" "$T/run3b.err"
start_gateway
wait_sim "$SIM_PID" 90
expect_eq "gateway back after the kill: exit 0" 0 "$SIM_RC"
expect_eq "sim-2 renewed once the gateway was back" 1 "$(count_events sim-2 enroll.renewed "$T/run3b.err")"
[ "$(serial sim-2)" != "$before" ] || fail "sim-2: the renewal did not complete"
expect_eq "sim-2 acknowledged every reading" 60 "$(summary_field "$T/run3b.out" sim-2 acknowledged)"
[ -z "$(refused "$T/run3b.out")" ] || fail "refused uploads: $(refused "$T/run3b.out")"
pass "a gateway killed mid-renewal: the old certificate kept working, the retry got a certificate"

# --- nothing lost at the consumer ---------------------------------------------------------
acked "$T/run1.out" "$T/run1b.out" "$T/run2.out" "$T/run2a.out" "$T/run2b.out" "$T/run3.out" \
  "$T/run3b.out" >"$T/acked"
total=$(wc -l <"$T/acked")
[ "$total" -eq $((N * 20 + N * 3 + N * 40 + N * 10 + N * 40 + 60 + 60)) ] || fail "acknowledged readings: $total"
wait_until 30 "every acknowledged reading at the consumer" \
  bash -c "[ \$(grep -c '^telemetry/' '$SUB') -ge $total ]"
run bash "$LC" "$T/acked" "$SUB"
expect_eq "losscheck: nothing lost, reordered or unexpected ($OUT)" 0 "$RC"
pass "all $total acknowledged readings delivered"

finish
