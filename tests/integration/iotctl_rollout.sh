#!/usr/bin/env bash
# iotctl rollout and device classes: 20 enrolled devices with classes,
# releases made and stored with iotctl, rollouts created by --devices,
# --class and --all with their wave sizes read back from status --json,
# the operator's pause/resume/abort and their refusals, and every refusal
# of create (release, class, device, name, waves) changing nothing. The
# gateway's side (offers, reports) is tested with the gateway.
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
status_json() { ctl rollout status "$@" --json; }

expect_ok "pki init" ctl pki init

# --- devices and their classes ---------------------------------------------------
for i in $(seq -w 1 20); do
  if [ "$i" -le 12 ]; then
    class=(--class esp32c3-sensor)
  elif [ "$i" -le 18 ]; then
    class=(--class esp32s3-cam)
  else
    class=()
  fi
  ctl device add "dev-$i" "${class[@]}" >/dev/null || fail "device add dev-$i"
done
pass "20 devices enrolled, 18 with a class"
expect_ok "device add prints the class" ctl device add dev-99 --class esp32c3-sensor
echo "$OUT" | grep -Eq "^  class +esp32c3-sensor$" || fail "device add did not print the class: $OUT"
expect_ok "revoke dev-99" ctl device revoke dev-99
expect_fail "device add refuses a bad class" 1 "--class '-x' is not a class-id" ctl device add dev-bad --class -x
expect_fail "a refused class enrolls nothing" 1 "no device 'dev-bad'" ctl device show dev-bad
expect_fail "device renew takes no --class" 2 "unknown option '--class'" ctl device renew dev-01 --class x

expect_ok "device set-class" ctl device set-class dev-19 esp32c3-sensor
expect_eq "device show --json has the class" esp32c3-sensor "$(ctl device show dev-19 --json | jq -r .class)"
expect_eq "a device without a class is null" null "$(ctl device show dev-20 --json | jq -r .class)"
expect_ok "device show" ctl device show dev-13
echo "$OUT" | grep -q "^class        esp32s3-cam$" || fail "device show lacks the class: $OUT"
pass "device show prints the class"
expect_ok "device list" ctl device list
echo "$OUT" | grep -Eq "^dev-05 +active .* esp32c3-sensor$" || fail "device list lacks the class: $OUT"
echo "$OUT" | grep -Eq "^dev-20 +active .* -$" || fail "device list shows a class for dev-20: $OUT"
pass "device list shows each device's class"
expect_eq "device list --json classes (dev-99, revoked, keeps its class)" "14 6 1" \
  "$(ctl device list --json | jq -r '[(map(select(.class=="esp32c3-sensor")) | length),
       (map(select(.class=="esp32s3-cam")) | length), (map(select(.class==null)) | length)] | join(" ")')"
expect_ok "set-class clears with an empty class" ctl device set-class dev-20 ""
expect_fail "set-class of an unknown device" 1 "no active device 'ghost'" ctl device set-class ghost x
expect_fail "set-class of a revoked device" 1 "no active device 'dev-99'" ctl device set-class dev-99 x
expect_fail "set-class of a bad class" 1 "class 'a/b' is not a class-id" ctl device set-class dev-01 a/b
expect_fail "set-class needs two arguments" 2 "give a device ID and a class" ctl device set-class dev-01
expect_ok "revoke dev-12" ctl device revoke dev-12 # 12 active sensors are left

# --- releases ------------------------------------------------------------------------
expect_ok "signing key" ctl firmware key create --name rel
release() { # CLASS VERSION
  head -c 5000 /dev/urandom >"$T/img-$2.bin"
  ctl firmware sign --image "$T/img-$2.bin" --vendor acme --class "$1" --version "$2" \
    --secure-version 1 --key rel --out "$T/m-$2" >/dev/null &&
    ctl firmware add --manifest "$T/m-$2" --image "$T/img-$2.bin" >/dev/null
}
release esp32c3-sensor 1.0.0 || fail "release 1.0.0"
release esp32c3-sensor 1.1.0 || fail "release 1.1.0"
release esp32s3-cam 2.0.0 || fail "release 2.0.0"
release esp32c3-sensor 1 || fail "release 1" # version "1": the name of sequence 1 too
release esp32c3-sensor 5.0.0 || fail "release 5.0.0"
release esp32h2-tag 6.0.0 || fail "release 6.0.0" # a class no device has
cam_digest="$(sha256sum "$T/img-2.0.0.bin" | cut -c1-64)"
pass "six releases stored"

# --- create ------------------------------------------------------------------------------
# 12 sensors, canary 1, waves 10,50,100 of the other 11: ceil(1.1)=2,
# ceil(5.5)=6, 11, so waves of 1, 2, 4 and 5.
expect_ok "create by class" ctl rollout create r-class --firmware 1.0.0 --class esp32c3-sensor --seed 7
echo "$OUT" | grep -Eq "^  wave 0 +1 \(canary\), started$" || fail "create did not print the canary wave: $OUT"
echo "$OUT" | grep -Eq "^  wave 3 +5$" || fail "create did not print wave 3: $OUT"
[ "$(file_mode "$P/rollouts.db")" = 600 ] || fail "rollouts.db is $(file_mode "$P/rollouts.db"), want 600"
pass "the rollout file is DIR/rollouts.db, mode 0600"
run status_json r-class
expect_eq "status --json of r-class" "running 0 12 [1,2,4,5] 1 1.0.0 false 12" \
  "$(echo "$OUT" | jq -r '"\(.state) \(.current_wave) \(.devices) \(.waves|tojson) \(.sequence) \(.version) \(.security) \(.counts.pending)"')"
expect_eq "status --json keys" \
  "counts current_wave devices digest name pause_reason security sequence state version waves" \
  "$(echo "$OUT" | jq -r '[keys[] | select(IN("name","state","pause_reason","security","sequence",
       "version","digest","current_wave","devices","counts","waves"))] | sort | join(" ")')"
expect_eq "every state is counted" \
  "confirmed downloaded downloading failed installing offered pending rolled_back" \
  "$(echo "$OUT" | jq -r '.counts | keys | join(" ")')"
expect_eq "the devices of r-class: the active sensors" \
  "dev-01 dev-02 dev-03 dev-04 dev-05 dev-06 dev-07 dev-08 dev-09 dev-10 dev-11 dev-19" \
  "$(echo "$OUT" | jq -r '[.device_states[].device] | sort | join(" ")')"
expect_eq "device rows: wave sizes and states" "1 2 4 5 pending" \
  "$(echo "$OUT" | jq -r '[.device_states | group_by(.wave)[] | length] + [.device_states | map(.state) | unique[]] | join(" ")')"
placement="$(echo "$OUT" | jq -c '[.device_states[] | [.device, .wave]] | sort')"

# The same devices and seed in another file: the same placement.
expect_ok "create with --db" ctl rollout create r-seed --firmware 1.0.0 --class esp32c3-sensor \
  --seed 7 --db "$T/other.db"
expect_eq "the seed fixes the placement" "$placement" \
  "$(status_json r-seed --db "$T/other.db" | jq -c '[.device_states[] | [.device, .wave]] | sort')"
expect_fail "--db keeps it out of rollouts.db" 1 "no rollout 'r-seed'" ctl rollout status r-seed

# --devices, no canary, waves 50,100 of 5: 3 and 2, wave 1 started.
expect_ok "create by list" ctl rollout create r-list --firmware 2 --devices dev-01,dev-02,dev-03,dev-04,dev-05 \
  --canary 0 --waves 50,100 --max-per-minute 2 --success-percent 80 --failure-percent 20 --min-reports 3 --security
expect_eq "r-list: waves, current wave, plan" "[0,3,2] 1 true 2 80 20 3 [50,100]" \
  "$(status_json r-list | jq -r '"\(.waves|tojson) \(.current_wave) \(.security) \(.plan.max_per_minute) \(.plan.success_percent) \(.plan.failure_percent) \(.plan.min_reports) \(.plan.waves|tojson)"')"

# --all, by digest prefix: every active device (dev-01..20 but the revoked
# dev-12: 19), with a warning about the 12 of another class; canary 1,
# then ceil(1.8)=2, 9, 18 of the other 18: waves of 1, 2, 7 and 9.
expect_ok "create for all" ctl rollout create r-all --firmware "${cam_digest:0:10}" --all
echo "$ERR" | grep -q "warning: 12 of the devices have a class other than the release's class-id 'esp32s3-cam'" ||
  fail "create --all did not warn about other classes: $ERR"
pass "create --all warns about devices of another class"
expect_eq "r-all takes every active device" "19 [1,2,7,9] 3" \
  "$(status_json r-all | jq -r '"\(.devices) \(.waves|tojson) \(.sequence)"')"

# --- refusals of create: each changes nothing ------------------------------------
count_before="$(status_json | jq length)"
expect_fail "an unknown release" 1 "--firmware '9.9.9' is no release in .*firmware list" \
  ctl rollout create r-x --firmware 9.9.9 --all
expect_fail "an ambiguous release" 1 "--firmware '1' names 2 releases: sequence 1 \(1.0.0, [0-9a-f]{12}\), sequence 4 \(1, " \
  ctl rollout create r-x --firmware 1 --all
expect_fail "a class not the release's" 1 "--class 'esp32s3-cam' is not the release's class-id 'esp32c3-sensor'" \
  ctl rollout create r-x --firmware 5.0.0 --class esp32s3-cam
expect_fail "a class without active devices" 1 "no active device of class 'esp32h2-tag'" \
  ctl rollout create r-x --firmware 6.0.0 --class esp32h2-tag
expect_fail "an unknown device" 1 "'ghost' is not an active device" \
  ctl rollout create r-x --firmware 5.0.0 --devices dev-01,ghost,dev-02
expect_fail "a revoked device" 1 "'dev-12' is not an active device" \
  ctl rollout create r-x --firmware 5.0.0 --devices dev-12
expect_fail "a device listed twice" 1 "'dev-01' is listed more than once" \
  ctl rollout create r-x --firmware 5.0.0 --devices dev-01,dev-02,dev-01
expect_fail "a duplicate name" 1 "a rollout named 'r-class' already exists" \
  ctl rollout create r-class --firmware 5.0.0 --all
expect_fail "a sequence number already rolling out" 1 "rollout 'r-class' \(running\) already rolls out sequence number 1" \
  ctl rollout create r-x --firmware 1.0.0 --all
expect_fail "waves not increasing" 2 "waves: wave 2 is 10%" ctl rollout create r-x --firmware 5.0.0 --all --waves 50,10,100
expect_fail "waves not ending at 100" 2 "the last wave is 50%" ctl rollout create r-x --firmware 5.0.0 --all --waves 10,50
expect_fail "a wave of 0 %" 2 "--waves percentage '0' is not a number in 1..100" ctl rollout create r-x --firmware 5.0.0 --all --waves 0,100
expect_fail "too many waves" 2 "more than 10 waves" ctl rollout create r-x --firmware 5.0.0 --all --waves 1,2,3,4,5,6,7,8,9,10,100
expect_fail "a success percent of 0" 2 "--success-percent '0'" ctl rollout create r-x --firmware 5.0.0 --all --success-percent 0
expect_fail "a bad rollout name" 2 "rollout name '.x' starts with a dot" ctl rollout create .x --firmware 5.0.0 --all
expect_fail "no device source" 2 "exactly one of --devices, --class and --all" ctl rollout create r-x --firmware 5.0.0
expect_fail "two device sources" 2 "exactly one of" ctl rollout create r-x --firmware 5.0.0 --all --class esp32c3-sensor
expect_fail "no release" 2 "missing --firmware" ctl rollout create r-x --all
# A stored image changed after 'firmware add' is refused before anything is written.
img5="$P/firmware/images/$(sha256sum "$T/img-5.0.0.bin" | cut -c1-64).bin"
printf '\x00\x01' | dd of="$img5" bs=1 seek=100 conv=notrunc status=none
cmp -s "$img5" "$T/img-5.0.0.bin" && printf '\xff\xfe' | dd of="$img5" bs=1 seek=100 conv=notrunc status=none
expect_fail "a changed stored image" 1 "refused \(image_digest_mismatch\)" ctl rollout create r-x --firmware 5.0.0 --all
expect_eq "the refusals created nothing" "$count_before" "$(status_json | jq length)"
expect_fail "r-x does not exist" 1 "no rollout 'r-x'" ctl rollout status r-x

# --- pause, resume, abort ------------------------------------------------------------
expect_ok "pause" ctl rollout pause r-class
expect_eq "paused by the operator" "paused operator" "$(status_json r-class | jq -r '"\(.state) \(.pause_reason)"')"
expect_fail "pause a paused rollout" 1 "rollout 'r-class' is paused and cannot be paused" ctl rollout pause r-class
expect_ok "resume" ctl rollout resume r-class
expect_eq "running again" "running " "$(status_json r-class | jq -r '"\(.state) \(.pause_reason)"')"
expect_fail "resume a running rollout" 1 "is running and cannot be resumed" ctl rollout resume r-class
expect_ok "pause again" ctl rollout pause r-class
expect_ok "abort a paused rollout" ctl rollout abort r-class
expect_fail "resume an aborted rollout" 1 "is aborted and cannot be resumed: an aborted rollout stays aborted" \
  ctl rollout resume r-class
expect_fail "pause an aborted rollout" 1 "is aborted and cannot be paused" ctl rollout pause r-class
expect_fail "abort an aborted rollout" 1 "is aborted and cannot be aborted" ctl rollout abort r-class
expect_eq "an aborted rollout stays aborted" aborted "$(status_json r-class | jq -r .state)"
expect_ok "abort a running rollout" ctl rollout abort r-list
expect_fail "pause an unknown rollout" 1 "no rollout 'ghost'" ctl rollout pause ghost
expect_fail "pause needs a name" 2 "missing the rollout NAME" ctl rollout pause
expect_fail "pause in a missing file" 1 "rollout file .*/none.db does not exist" ctl rollout pause r-class --db "$T/none.db"
# Once aborted, its sequence number may be rolled out again.
expect_ok "a new rollout of an aborted one's release" ctl rollout create r-class-2 --firmware 1.0.0 --class esp32c3-sensor

# --- status ---------------------------------------------------------------------------
expect_ok "status" ctl rollout status
echo "$OUT" | head -1 | grep -Eq "^NAME +STATE +WAVE +SEQUENCE +VERSION +DEVICES" || fail "status header: $OUT"
echo "$OUT" | grep -Eq "^r-class +aborted +0/3 +1 +1.0.0 +12 +12 " || fail "status row of r-class: $OUT"
echo "$OUT" | grep -Eq "^r-list +aborted +1/2 +2 +1.1.0 +5 .* security$" || fail "status row of r-list: $OUT"
pass "status lists every rollout"
expect_eq "status --json lists them oldest first" "r-class r-list r-all r-class-2" \
  "$(status_json | jq -r 'map(.name) | join(" ")')"
expect_ok "status NAME --devices" ctl rollout status r-all --devices
echo "$OUT" | grep -Eq "^  state +running$" || fail "status NAME lacks the state: $OUT"
echo "$OUT" | grep -Eq "^  release +sequence 3, class-id esp32s3-cam, version 2.0.0$" || fail "status NAME lacks the release: $OUT"
[ "$(echo "$OUT" | grep -Ec '^dev-[0-9]+ +[0-3] +pending ')" = 19 ] || fail "status --devices does not list 19 devices: $OUT"
pass "status NAME shows the rollout and its devices"
expect_eq "status of a file not made yet" "[]" "$(ctl rollout status --json --db "$T/none.db" | jq -c .)"
expect_fail "status --devices needs a name" 2 "--devices needs a rollout NAME" ctl rollout status --devices
expect_ok "iotctl --help names the rollout commands" "$IOTCTL" --help
echo "$OUT" | grep -q "rollout create" || fail "the overview lacks rollout create: $OUT"
pass "the overview lists rollout create"
