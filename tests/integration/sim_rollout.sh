#!/usr/bin/env bash
# A staged rollout over 100 simulated devices, end to end: iotctl signs a
# release and creates the rollout (a canary of 10, then 30 % and 100 %),
# the real gateway offers it wave by wave, iotsim devices download it in
# ranged chunks, reboot into it and confirm it after their self-test; 20 of
# the devices fail the self-test of any new image and roll back. Checked:
# the rollout pauses at its failure threshold, every failing device is back
# on its old image and reported rolled_back (self_test), every other
# started device runs the new version, devices of waves not started were
# never offered the release, and the devices' telemetry was delivered
# without a gap while all of this went on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
SUB="$T/sub.out"
DB="$T/rollouts.db"
N=100
BAD=20
IMAGE_SIZE=65536
ctl() { "$IOTCTL" --dir "$P" "$@"; }

WAIT_POLL=1 # wait_until (lib.sh) polls this often

devices=()
for i in $(seq 1 "$N"); do devices+=("sim-$i"); done
make_pki
for d in "${devices[@]}"; do ctl device add "$d" --class sensor >/dev/null; done
pass "$N devices of class sensor"

expect_ok "firmware key" ctl firmware key create --name rel
expect_ok "make image 2.0.0" "$IOTSIM" --make-image "$T/app.bin" --image-version 2.0.0 \
  --image-size "$IMAGE_SIZE"
expect_ok "sign 2.0.0" ctl firmware sign --image "$T/app.bin" --vendor iot-example --class sensor \
  --version 2.0.0 --secure-version 0 --key rel --out "$T/app.manifest"
expect_ok "add 2.0.0" ctl firmware add --manifest "$T/app.manifest" --image "$T/app.bin"
expect_ok "rollout" ctl rollout create r2 --firmware 2.0.0 --class sensor --canary 10 \
  --waves 30,100 --success-percent 90 --failure-percent 15 --min-reports 10 --seed 42 --db "$DB"
status() { ctl rollout status r2 --json --db "$DB"; }
status >"$T/plan.json"
expect_eq "wave sizes" "10 27 63" "$(jq -r '.waves | map(tostring) | join(" ")' "$T/plan.json")"

# The failing devices: 1 of the canary (9 of 10 confirm: the 90 % success
# threshold starts wave 1, and 10 % failures stay under the 15 % that
# pauses) and 19 of wave 1, whose failures pause the rollout before the
# last wave starts.
mapfile -t canary < <(jq -r '.device_states[] | select(.wave == 0) | .device' "$T/plan.json")
mapfile -t rest < <(jq -r '.device_states[] | select(.wave > 0) | .device' "$T/plan.json")
bad=("${canary[@]:0:1}" "${rest[@]:0:$((BAD - 1))}")
good=()
for d in "${devices[@]}"; do
  printf '%s\n' "${bad[@]}" | grep -qx "$d" || good+=("$d")
done
[ "${#bad[@]}" = "$BAD" ] && [ "${#good[@]}" = $((N - BAD)) ] || fail "device split ${#bad[@]}/${#good[@]}"

start_broker
write_gateway_config "rollouts = $DB" "firmware_dir = $P/firmware"
start_gateway
start_consumer "$SUB"
security_monitor consumer # no broker ACL here: any client may read the stream

SIM=("$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --state "$T/state"
  --class sensor --interval 1s --update-check 1s --backoff-max 2s --timeout 10s -v)
args_of() { local d; for d in "$@"; do printf -- '--device\n%s\n' "$d"; done; }
mapfile -t good_args < <(args_of "${good[@]}")
mapfile -t bad_args < <(args_of "${bad[@]}")
"${SIM[@]}" "${good_args[@]}" >"$T/good.out" 2>"$T/good.err" &
GOOD_PID=$!
_PIDS+=("$GOOD_PID")
"${SIM[@]}" --self-test fail "${bad_args[@]}" >"$T/bad.out" 2>"$T/bad.err" &
BAD_PID=$!
_PIDS+=("$BAD_PID")

state_of() { status | jq -r .state; }
paused() { [ "$(state_of)" = paused ]; }
wait_until 400 "the rollout to pause at its failure threshold" paused
expect_eq "paused by the gateway" failure_threshold "$(status | jq -r .pause_reason)"
# Devices already started go on to a final state; none is started now.
in_flight() {
  status | jq -e '.counts.offered + .counts.downloading + .counts.downloaded + .counts.installing == 0' >/dev/null
}
wait_until 300 "every started device to reach a final state" in_flight
status >"$T/end.json"
current="$(jq -r .current_wave "$T/end.json")"
expect_eq "the canary's success started wave 1, its failures paused it" 1 "$current"
grep -q "rollout.wave_started rollout=r2 wave=1" "$T/gw.log" || fail "no rollout.wave_started line"
# Telemetry keeps flowing during the pause; then the devices stop.
sleep 3
kill -INT "$GOOD_PID" "$BAD_PID"
wait "$GOOD_PID" || true
wait "$BAD_PID" || true

dev_field() { jq -r --arg d "$1" --arg f "$2" '.device_states[] | select(.device == $d) | .[$f]' "$T/end.json"; }
summary_of() { grep -h "^$1: readings" "$T/good.out" "$T/bad.out" | tail -1; }
is_bad() { printf '%s\n' "${bad[@]}" | grep -qx "$1"; }
started=0 unstarted=0 rolled=0 confirmed=0
for d in "${devices[@]}"; do
  wave="$(dev_field "$d" wave)"
  state="$(dev_field "$d" state)"
  summary="$(summary_of "$d")"
  if [ "$wave" -gt "$current" ] || [ "$state" = pending ]; then
    # A wave not started, or a device of a started wave that had not asked
    # before the pause: never offered.
    [ "$state" = pending ] || fail "$d (wave $wave, not started) is $state"
    ! grep -q "update.started device=$d " "$T/gw.log" || fail "$d (pending) was offered the release"
    echo "$summary" | grep -q "firmware 1.0.0" || fail "$d (pending) runs: $summary"
    ! grep -q "device=$d event=update.offered" "$T/good.err" "$T/bad.err" || fail "$d (pending) saw an offer"
    [ "$wave" -le "$current" ] || unstarted=$((unstarted + 1))
    continue
  fi
  started=$((started + 1))
  if is_bad "$d"; then
    [ "$state" = rolled_back ] || fail "$d (failing self-test) is $state"
    [ "$(dev_field "$d" reason)" = self_test ] || fail "$d rolled back for $(dev_field "$d" reason)"
    echo "$summary" | grep -q "firmware 1.0.0, update rolled_back (self_test)" ||
      fail "$d is not back on 1.0.0: $summary"
    rolled=$((rolled + 1))
  else
    [ "$state" = confirmed ] || fail "$d is $state, not confirmed"
    echo "$summary" | grep -q "firmware 2.0.0, update confirmed" || fail "$d does not run 2.0.0: $summary"
    confirmed=$((confirmed + 1))
  fi
done
[ "$unstarted" -gt 0 ] || fail "no wave was left unstarted"
pass "$started devices started: $confirmed run 2.0.0, $rolled rolled back to 1.0.0 (self_test)"
pass "$unstarted devices of unstarted waves were never offered the release and run 1.0.0"
expect_eq "rolled_back reports counted" "$rolled" \
  "$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "iotgw_update_reports_total{status=\"rolled_back\"}" {print $2}')"
grep -q "rollout.paused rollout=r2 reason=failure_threshold" "$T/gw.log" || fail "no rollout.paused line"
# The security event stream: the pause, and each device's rollback.
expect_stream update.report '.severity == "warning" and .device != null and (.log | contains("status=rolled_back"))'
rollbacks() { stream_docs update.report | jq -s -r 'map(select(.log | contains("status=rolled_back"))) | map(.device) | unique | length'; }
rollbacks_are() { [ "$(rollbacks)" = "$1" ]; }
wait_until 30 "every rollback on the security stream" rollbacks_are "$rolled"
expect_eq "one update.report event per device rolled back" "$rolled" "$(rollbacks)"
expect_stream rollout.paused '.reason == "failure_threshold" and .severity == "warning"'
expect_eq "the pause is one event" 1 "$(stream_docs rollout.paused | jq -s 'map(select(.reason == "failure_threshold")) | length')"
expect_stream_valid

# Telemetry: the outbox drains, then every stored reading was delivered
# and each device's readings arrived without a gap.
drained() { [ "$(metric iotgw_outbox_depth)" = 0 ]; }
wait_until 60 "the outbox to drain" drained
sleep 1
stored="$(metric iotgw_readings_stored_total)"
delivered="$(cut -d' ' -f2- "$SUB" | jq -r '"\(.device) \(.dseq)"' | sort -u | wc -l)"
expect_eq "every stored reading was delivered" "$stored" "$delivered"
# The gateway numbers each device's stored readings without a gap (seq);
# a device's own numbers (dseq) rise, skipping the rest of a reserved
# block at each reboot (core/include/iotd/seq.h).
pairs="$(cut -d' ' -f2- "$SUB" | jq -r '"\(.device) \(.seq) \(.dseq)"' | sort -u | sort -k1,1 -k2,2n)"
gaps="$(echo "$pairs" | awk '$1 != dev { dev = $1; prev = $2; pd = $3; if ($2 != 1) print $1 " starts at " $2; next }
  $2 != prev + 1 { print $1 " seq after " prev } $3 <= pd { print $1 " dseq " $3 " after " pd } { prev = $2; pd = $3 }')"
[ -z "$gaps" ] || fail "readings missing or out of order: $(echo "$gaps" | head -5)"
for f in "$T/good.out" "$T/bad.out"; do
  ! grep -E '^sim-[0-9]+: readings' "$f" | grep -vq 'dropped 0,' || fail "a device dropped readings: $(grep -v 'dropped 0,' "$f" | head -3)"
done
[ "$stored" -ge $((N * 3)) ] || fail "only $stored readings stored during the rollout"
pass "$stored readings during the rollout, none lost or dropped, each device's in order"
finish
