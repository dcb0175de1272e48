#!/usr/bin/env bash
# Firmware updates the device must refuse, through the real parts: iotctl
# signs the releases and creates one rollout per case, the real gateway
# offers them, iotsim devices run the device core's update machine. Each
# case has a device of its own:
#   dev-digest    an image changed in the gateway's store after signing
#                 (same size): downloaded, refused by its digest
#   dev-key       a release signed by a key the gateway trusts and the
#                 device does not: unknown_key
#   dev-class     a release for another device class: wrong_class
#   dev-rollback  a secure-version below the device's: rollback
#   dev-large     an image larger than the device's firmware slot: too_large
#   dev-old       a release signed before the one the device took: old_sequence
#   dev-same      the release the device took, rolled out again: nothing
#                 happens, nothing is reported, nothing is downloaded
#   dev-tm        a manifest changed in the rollout file: the gateway's own
#                 verifier refuses to serve it (bad_signature), so the
#                 device is offered nothing
# Checked for each: the gateway records the device failed with that
# reason, the failed reports are counted, and the device still runs the
# image it ran before.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
DB="$T/rollouts.db"
SIZE=16384
SLOT=32768
ctl() { "$IOTCTL" --dir "$P" "$@"; }

WAIT_POLL=0.5 # wait_until (lib.sh) polls this often

# release NAME VERSION [sign and image options...]: a simulated image of
# $SIZE bytes (secure-version 3 unless --image-secure-version is given),
# signed (key k1, class sensor, secure-version 3 unless given) and added;
# its sequence number in SEQ[NAME], its image's digest in DIG[NAME].
declare -A SEQ DIG
release() {
  local name="$1" version="$2" size="$SIZE" isv=3 key=k1 class=sensor sv=3
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --size) size="$2" ;;
      --key) key="$2" ;;
      --class) class="$2" ;;
      --secure-version) sv="$2" isv="$2" ;;
      *) fail "release: unknown option $1" ;;
    esac
    shift 2
  done
  "$IOTSIM" --make-image "$T/$name.bin" --image-version "$version" --image-secure-version "$isv" \
    --image-size "$size" >/dev/null || fail "make image $name"
  ctl firmware sign --image "$T/$name.bin" --vendor iot-example --class "$class" --version "$version" \
    --secure-version "$sv" --key "$key" --out "$T/$name.manifest" >/dev/null || fail "sign $name"
  ctl firmware add --manifest "$T/$name.manifest" --image "$T/$name.bin" >/dev/null || fail "add $name"
  SEQ[$name]="$(awk '/^sequence-number:/ {print $2}' "$T/$name.manifest")"
  DIG[$name]="$(sha256sum "$T/$name.bin" | cut -c1-64)"
}
rollout() { # rollout NAME SEQUENCE DEVICE: one device, no canary
  ctl rollout create "$1" --firmware "$2" --devices "$3" --canary 0 --waves 100 --db "$DB" \
    >/dev/null 2>"$T/create-$1.err" || fail "rollout create $1: $(cat "$T/create-$1.err")"
}
status_json() { ctl rollout status "$1" --json --db "$DB"; }
dev_field() { status_json "$1" | jq -r --arg d "$2" --arg f "$3" '.device_states[] | select(.device == $d) | .[$f]'; }
is_final() { case "$(dev_field "$1" "$2" state)" in confirmed | failed | rolled_back) return 0 ;; esac; return 1; }
reports() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk -v s="$1" '$1 == "iotgw_update_reports_total{status=\"" s "\"}" {print $2}'
}
# lines_after N PATTERN: gateway log lines past line N matching PATTERN.
lines_after() { tail -n +"$(($1 + 1))" "$T/gw.log" | command grep -c -- "$2" || true; }

DEVICES=(dev-digest dev-key dev-class dev-rollback dev-large dev-old dev-same dev-tm)
make_pki
for d in "${DEVICES[@]}"; do ctl device add "$d" --class sensor >/dev/null; done
expect_ok "key k1, trusted by the devices" ctl firmware key create --name k1
expect_ok "key k2, trusted by the gateway only" ctl firmware key create --name k2
expect_eq "the gateway trusts both keys" 2 "$(command grep -c 'BEGIN PUBLIC KEY' "$P/firmware/trusted-keys.pem")"

# The release dev-old refuses is signed first: its sequence is below the
# one it takes.
release old 1.5.0
release good 2.0.0
release digest 2.1.0
release key 2.2.0 --key k2
release class 2.3.0 --class meter
release rollback 2.4.0 --secure-version 1
release large 2.5.0 --size $((2 * SLOT))
release tm 2.6.0
[ "${SEQ[old]}" -lt "${SEQ[good]}" ] || fail "sequence of old (${SEQ[old]}) not below good (${SEQ[good]})"
pass "8 releases signed and added"

rollout r-good "${SEQ[good]}" dev-old,dev-same
rollout r-digest "${SEQ[digest]}" dev-digest
rollout r-key "${SEQ[key]}" dev-key
run ctl rollout create r-class --firmware "${SEQ[class]}" --devices dev-class --canary 0 --waves 100 --db "$DB"
[ "$RC" = 0 ] || fail "iotctl refused a release of another class with --devices: $ERR"
echo "$ERR" | grep -q "warning: 1 of the devices have a class other than the release's" ||
  fail "no warning for a device of another class: $ERR"
pass "a release of another class is rolled out with --devices, with a warning"
rollout r-rollback "${SEQ[rollback]}" dev-rollback
rollout r-large "${SEQ[large]}" dev-large
rollout r-tm "${SEQ[tm]}" dev-tm
# r-tm's manifest changed in the rollout file: it no longer verifies.
sqlite3 "$DB" "UPDATE rollouts SET manifest = replace(manifest, 'version: 2.6.0', 'version: 9.9.9') WHERE name = 'r-tm'"
# The image of 'digest' changed behind iotctl once its rollout exists
# (rollout create checks the image), its size kept: the gateway serves it
# (it checks the size), the device must not install it.
stored="$P/firmware/images/${DIG[digest]}.bin"
chmod u+w "$stored"
printf 'tampered' | dd of="$stored" bs=1 seek=8192 conv=notrunc status=none
expect_eq "the tampered image keeps its size" "$SIZE" "$(stat -c %s "$stored")"
[ "$(sha256sum "$stored" | cut -c1-64)" != "${DIG[digest]}" ] || fail "the image was not changed"

start_broker
write_gateway_config "rollouts = $DB" "firmware_dir = $P/firmware" "log_level = debug"
start_gateway

args=()
for d in "${DEVICES[@]}"; do args+=(--device "$d"); done
"$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --state "$T/state" \
  --trusted-keys "$P/firmware/keys/k1.pub" --class sensor --fw-version 1.0.0 --fw-secure-version 3 \
  --slot-size "$SLOT" --chunk 4096 --interval 1s --update-check 1s --backoff-max 2s --timeout 10s \
  -v "${args[@]}" >"$T/sim.out" 2>"$T/sim.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")

# dev-old and dev-same take 'good' first.
for d in dev-old dev-same; do
  wait_until 120 "$d to confirm 2.0.0" is_final r-good "$d"
  expect_eq "$d confirmed 2.0.0" confirmed "$(dev_field r-good "$d" state)"
done
expect_eq "r-good completed" completed "$(status_json r-good | jq -r .state)"
# Then the older release for dev-old, and 'good' again for dev-same.
rollout r-old "${SEQ[old]}" dev-old
log_mark="$(wc -l <"$T/gw.log")"
rollout r-same "${SEQ[good]}" dev-same

refused=(digest:digest key:unknown_key class:wrong_class rollback:rollback large:too_large old:old_sequence)
for c in "${refused[@]}"; do
  name="${c%%:*}" reason="${c#*:}" dev="dev-${c%%:*}"
  wait_until 120 "$dev to reach a final state in r-$name" is_final "r-$name" "$dev"
  expect_eq "$dev: failed" failed "$(dev_field "r-$name" "$dev" state)"
  expect_eq "$dev: the gateway records the reason" "$reason" "$(dev_field "r-$name" "$dev" reason)"
  grep -q "update.report device=$dev rollout=r-$name sequence=${SEQ[$name]} status=failed reason=$reason " \
    "$T/gw.log" || fail "no update.report line for $dev: $(command grep "device=$dev" "$T/gw.log" | tail -3)"
done
# Only the tampered image was downloaded, once, whole.
expect_eq "dev-digest fetched the tampered image once" "$SIZE" \
  "$(awk '/update.image device=dev-digest / { sub(/.*bytes=/, ""); n += $1 } END { print n + 0 }' "$T/gw.log")"
for d in dev-key dev-class dev-rollback dev-large; do
  ! grep -q "update.image device=$d " "$T/gw.log" || fail "$d fetched image bytes"
done
pass "the devices that refused a manifest fetched no image"

# dev-same: offered its own release again, it checks and does nothing.
offered_again() { [ "$(lines_after "$log_mark" "update.offered device=dev-same rollout=r-same")" -ge 3 ]; }
wait_until 60 "dev-same to check the manifest 3 times" offered_again
expect_eq "dev-same fetched no image since" 0 "$(lines_after "$log_mark" "update.image device=dev-same ")"
expect_eq "dev-same reported nothing since" 0 "$(lines_after "$log_mark" "update.report device=dev-same ")"
expect_eq "dev-same stays offered in r-same" offered "$(dev_field r-same dev-same state)"
expect_eq "dev-same started one download (2.0.0, in r-good)" 1 \
  "$(command grep -c "device=dev-same event=update.downloading" "$T/sim.err" || true)"
! grep -q "device=dev-same event=update.failed" "$T/sim.err" || fail "dev-same logged a failure"

# dev-tm: the gateway refused to serve the changed manifest.
grep -q "update.manifest_refused device=dev-tm rollout=r-tm sequence=${SEQ[tm]} reason=bad_signature" "$T/gw.log" ||
  fail "no update.manifest_refused line for dev-tm"
[ "$(metric iotgw_update_manifests_refused_total)" -ge 1 ] || fail "iotgw_update_manifests_refused_total"
! grep -q "device=dev-tm event=update.offered" "$T/sim.err" || fail "dev-tm was offered the changed manifest"
! grep -q "update.image device=dev-tm " "$T/gw.log" || fail "dev-tm fetched image bytes"
pass "the changed manifest was refused by the gateway and never reached dev-tm"

expect_eq "the failed reports are counted" "${#refused[@]}" "$(reports failed)"
expect_eq "the confirmed reports are counted" 2 "$(reports confirmed)"

kill -INT "$SIM_PID"
wait "$SIM_PID" || fail "iotsim exited with $?"
summary_of() { command grep "^$1: readings" "$T/sim.out" | tail -1; }
for c in "${refused[@]}"; do
  dev="dev-${c%%:*}" reason="${c#*:}" want="1.0.0"
  [ "$dev" != dev-old ] || want=2.0.0
  summary_of "$dev" | grep -q "firmware $want, update failed ($reason)" ||
    fail "$dev does not run $want with its refusal: $(summary_of "$dev")"
done
pass "every refusing device still runs its image (1.0.0; dev-old 2.0.0) and shows why"
summary_of dev-same | grep -q "firmware 2.0.0, update confirmed" || fail "dev-same: $(summary_of dev-same)"
summary_of dev-tm | grep -q "firmware 1.0.0, update none" || fail "dev-tm: $(summary_of dev-tm)"
pass "dev-same runs 2.0.0, dev-tm 1.0.0 with no update"
! grep -q "event=update.report_refused" "$T/sim.err" ||
  fail "the gateway refused a report: $(command grep update.report_refused "$T/sim.err" | head -3)"
pass "the gateway took every report"
finish
