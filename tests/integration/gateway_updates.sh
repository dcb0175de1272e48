#!/usr/bin/env bash
# Firmware updates at the gateway, with curl as the devices: the manifest
# chosen by the certificate's identity, images with Range (206, 416, ETag,
# If-Range, If-None-Match, HEAD), another device's rollout invisible, status
# reports (recorded, refused, conflicting), waves started by the gateway,
# the per-minute cap, the automatic pause, abort, a tampered manifest in
# the rollout file, and rollout state across a gateway restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

ctl() { "$IOTCTL" --dir "$P" "$@"; }
DB="$T/rollouts.db"

make_pki dev-a dev-b dev-c dev-d dev-e dev-f dev-g
expect_ok "firmware key" ctl firmware key create --name rel
head -c 65536 /dev/urandom >"$T/app.bin"
DIGEST="$(sha256sum "$T/app.bin" | cut -c1-64)"
expect_ok "sign 2.0.0" ctl firmware sign --image "$T/app.bin" --vendor acme --class sensor \
  --version 2.0.0 --secure-version 0 --key rel --out "$T/app.manifest"
expect_ok "add 2.0.0" ctl firmware add --manifest "$T/app.manifest" --image "$T/app.bin"
SEQ="$(awk '/^sequence-number:/ {print $2}' "$T/app.manifest")"
URI="/v1/firmware/images/$DIGEST"

start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
write_gateway_config "rollouts = $DB" "firmware_dir = $P/firmware"
start_gateway

# dget DEVICE PATH [curl args...]: GET as that device; prints the status,
# leaves the body in $T/.body and the headers in $T/.hdr.
dget() {
  local dev="$1" path="$2"; shift 2
  rm -f "$T/.body" # curl leaves it alone when no body comes
  curl -s -o "$T/.body" -D "$T/.hdr" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$P/devices/$dev/cert.pem" --key "$P/devices/$dev/key.pem" "$@" \
    "https://localhost:$GW_PORT$path" 2>/dev/null || true
}
# report DEVICE JSON [CONTENT-TYPE]: POST a status report; prints the status.
report() {
  curl -s -o "$T/.body" -D "$T/.hdr" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$P/devices/$1/cert.pem" --key "$P/devices/$1/key.pem" \
    -H "Content-Type: ${3:-application/json}" --data-binary "$2" \
    "https://localhost:$GW_PORT/v1/firmware/status" 2>/dev/null || true
}
header() { tr -d '\r' <"$T/.hdr" | awk -v h="$1" 'tolower($1) == tolower(h) ":" { $1 = ""; sub(/^ /, ""); print }'; }
status_json() { ctl rollout status "$1" --json --db "$DB"; }
dev_state() { status_json "$1" | jq -r --arg d "$2" '.device_states[] | select(.device == $d) | .state'; }

# --- nothing offered yet --------------------------------------------------------
expect_eq "no rollout: the manifest is 204" 204 "$(dget dev-a /v1/firmware/manifest)"
[ -z "$(header content-length)" ] || fail "a 204 carries Content-Length"
pass "a 204 has no Content-Length"

# --- a rollout with a canary: one device first ---------------------------------
expect_ok "rollout r1" ctl rollout create r1 --firmware "$SEQ" --devices dev-a,dev-b \
  --canary 1 --waves 100 --success-percent 100 --seed 7 --db "$DB"
canary="$(status_json r1 | jq -r '.device_states[] | select(.wave == 0) | .device')"
other="$(status_json r1 | jq -r '.device_states[] | select(.wave == 1) | .device')"
[ -n "$canary" ] && [ -n "$other" ] || fail "r1 has no canary and second wave: $(status_json r1)"
expect_eq "the canary is offered the manifest" 200 "$(dget "$canary" /v1/firmware/manifest)"
cmp -s "$T/.body" "$T/app.manifest" || fail "the manifest served is not the signed one"
pass "the manifest served is byte for byte the signed one"
expect_eq "the second wave waits" 204 "$(dget "$other" /v1/firmware/manifest)"
expect_eq "a device of no rollout gets nothing" 204 "$(dget dev-c /v1/firmware/manifest)"
expect_eq "$canary is offered" offered "$(dev_state r1 "$canary")"
expect_eq "$other is pending" pending "$(dev_state r1 "$other")"

# --- images: Range, ETag, conditionals -----------------------------------------
expect_eq "bytes=0-4095 is 206" 206 "$(dget "$canary" "$URI" -H 'Range: bytes=0-4095')"
expect_eq "Content-Range of the first chunk" "bytes 0-4095/65536" "$(header content-range)"
expect_eq "ETag is the digest" "\"$DIGEST\"" "$(header etag)"
cmp -s "$T/.body" <(head -c 4096 "$T/app.bin") || fail "the first chunk is not the image's"
pass "the first chunk is the image's first 4096 bytes"
expect_eq "an open range is 206" 206 "$(dget "$canary" "$URI" -H 'Range: bytes=65000-')"
expect_eq "it runs to the end" "bytes 65000-65535/65536" "$(header content-range)"
expect_eq "a suffix range is 206" 206 "$(dget "$canary" "$URI" -H 'Range: bytes=-100')"
cmp -s "$T/.body" <(tail -c 100 "$T/app.bin") || fail "the suffix is not the image's last 100 bytes"
pass "a suffix range is the image's last bytes"
expect_eq "past the end is 416" 416 "$(dget "$canary" "$URI" -H 'Range: bytes=65536-')"
expect_eq "416 names the size" "bytes */65536" "$(header content-range)"
jq -e '.error == "range_not_satisfiable"' "$T/.body" >/dev/null || fail "416 body: $(cat "$T/.body")"
pass "416 answers with a JSON reason"
expect_eq "two ranges are 416" 416 "$(dget "$canary" "$URI" -H 'Range: bytes=0-1,5-6')"
expect_eq "a malformed range is 416" 416 "$(dget "$canary" "$URI" -H 'Range: bytes=9-1')"
expect_eq "Range given twice is 416" 416 \
  "$(dget "$canary" "$URI" -H 'Range: bytes=0-1' -H 'Range: bytes=0-1')"
expect_eq "no Range is the whole image" 200 "$(dget "$canary" "$URI")"
expect_eq "the whole image's digest" "$DIGEST" "$(sha256sum <"$T/.body" | cut -c1-64)"
expect_eq "Accept-Ranges" bytes "$(header accept-ranges)"
expect_eq "If-Range with the ETag keeps the range" 206 \
  "$(dget "$canary" "$URI" -H 'Range: bytes=0-9' -H "If-Range: \"$DIGEST\"")"
expect_eq "If-Range with another ETag sends the whole" 200 \
  "$(dget "$canary" "$URI" -H 'Range: bytes=0-9' -H 'If-Range: "0000"')"
expect_eq "If-None-Match with the ETag is 304" 304 \
  "$(dget "$canary" "$URI" -H "If-None-Match: \"$DIGEST\"")"
[ ! -s "$T/.body" ] || fail "a 304 carried a body"
expect_eq "HEAD is 200" 200 "$(dget "$canary" "$URI" -I)"
expect_eq "HEAD gives the length" 65536 "$(header content-length)"
# The whole image, chunk by chunk, as a device fetches it.
: >"$T/chunks"
for off in $(seq 0 4096 61440); do
  [ "$(dget "$canary" "$URI" -H "Range: bytes=$off-$((off + 4095))")" = 206 ] || fail "chunk at $off"
  cat "$T/.body" >>"$T/chunks"
done
cmp -s "$T/chunks" "$T/app.bin" || fail "the image fetched in chunks differs"
pass "16 chunks of 4096 bytes make the image"
expect_eq "another device's rollout is invisible: not offered" 404 "$(dget "$other" "$URI")"
expect_eq "a device of no rollout cannot fetch it" 404 "$(dget dev-c "$URI" -H 'Range: bytes=0-9')"
jq -e '.error == "image_not_offered"' "$T/.body" >/dev/null || fail "404 body: $(cat "$T/.body")"
expect_eq "an unknown image path" 404 "$(dget "$canary" /v1/firmware/images/nothing)"
expect_eq "a dot-segment path reaches no file" 404 "$(dget "$canary" /v1/firmware/images/../manifest --path-as-is)"
[ "$(metric iotgw_update_image_bytes_total)" -ge 131072 ] || fail "image bytes: $(metric iotgw_update_image_bytes_total)"
pass "iotgw_update_image_bytes_total counts what was sent"

# --- reports ---------------------------------------------------------------------
rep() { printf '{"status":"%s",%s"sequence":%s,"offset":%s,"size":65536}' "$1" "${4:+\"reason\":\"$4\",}" "$2" "$3"; }
expect_eq "downloading is recorded" 204 "$(report "$canary" "$(rep downloading "$SEQ" 4096)")"
expect_eq "$canary is downloading" downloading "$(dev_state r1 "$canary")"
expect_eq "a report from a device not started" 404 "$(report "$other" "$(rep downloading "$SEQ" 0)")"
jq -e '.error == "rollout_unknown"' "$T/.body" >/dev/null || fail "body: $(cat "$T/.body")"
expect_eq "an unknown sequence" 404 "$(report "$canary" "$(rep downloading 999 0)")"
expect_eq "a report as text/plain" 415 "$(report "$canary" "$(rep downloading "$SEQ" 0)" text/plain)"
for bad in '[]' '{"status":"downloading"}' "$(rep exploded "$SEQ" 0)" "$(rep offered "$SEQ" 0)" \
  "$(rep failed "$SEQ" 0)" "$(rep downloading "$SEQ" 0 digest)" "$(rep failed "$SEQ" 0 'Bad Reason')" \
  '{"status":"downloading","sequence":1.5,"offset":0,"size":1}' \
  '{"status":"downloading","sequence":1,"offset":2,"size":1}' \
  '{"status":"downloading","sequence":1,"offset":0,"size":1,"extra":1}' \
  '{"status":"downloading","status":"downloading","sequence":1,"offset":0,"size":1}' 'not json'; do
  [ "$(report "$canary" "$bad")" = 422 ] || fail "report $bad: not 422 but $(cat "$T/.body")"
  jq -e '.error == "invalid_report"' "$T/.body" >/dev/null || fail "report $bad: $(cat "$T/.body")"
done
pass "12 malformed reports: 422 invalid_report"
expect_eq "confirmed is recorded" 204 "$(report "$canary" "$(rep confirmed "$SEQ" 65536)")"
expect_eq "the same final report again" 204 "$(report "$canary" "$(rep confirmed "$SEQ" 65536)")"
expect_eq "a final state does not change" 409 "$(report "$canary" "$(rep failed "$SEQ" 0 self_test)")"
expect_eq "the canary's success started wave 1" 1 "$(status_json r1 | jq -r .current_wave)"
grep -q 'rollout.wave_started.*rollout=r1 wave=1' "$T/gw.log" || fail "no rollout.wave_started line"
expect_eq "wave 1 is offered now" 200 "$(dget "$other" /v1/firmware/manifest)"
expect_eq "a confirmed device is offered nothing" 204 "$(dget "$canary" /v1/firmware/manifest)"
expect_eq "a confirmed device no longer gets the image" 404 "$(dget "$canary" "$URI" -H 'Range: bytes=0-9')"
[ "$(curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '$1 == "iotgw_update_reports_total{status=\"confirmed\"}" {print $2}')" = 2 ] ||
  fail "iotgw_update_reports_total{status=confirmed} is not 2"
pass "reports are counted by status"

# --- state survives a gateway restart ---------------------------------------------
stop_gateway
start_gateway
expect_eq "after a restart, $other still has its offer" 200 "$(dget "$other" /v1/firmware/manifest)"
expect_eq "after a restart, $canary stays confirmed" confirmed "$(dev_state r1 "$canary")"

# --- the per-minute cap ------------------------------------------------------------
# One running rollout per release: r2 and r3 get releases of their own.
release() { # release VERSION: a new image, signed and added; its sequence in $SEQ_NEW
  head -c 4096 /dev/urandom >"$T/app-$1.bin"
  ctl firmware sign --image "$T/app-$1.bin" --vendor acme --class sensor --version "$1" \
    --secure-version 0 --key rel --out "$T/app-$1.manifest" >/dev/null || fail "sign $1"
  ctl firmware add --manifest "$T/app-$1.manifest" --image "$T/app-$1.bin" >/dev/null || fail "add $1"
  SEQ_NEW="$(awk '/^sequence-number:/ {print $2}' "$T/app-$1.manifest")"
  URI_NEW="/v1/firmware/images/$(sha256sum "$T/app-$1.bin" | cut -c1-64)"
}
release 2.0.1
expect_ok "rollout r2, one device a minute" ctl rollout create r2 --firmware "$SEQ_NEW" \
  --devices dev-c,dev-d --canary 0 --waves 100 --max-per-minute 1 --db "$DB"
first="$(dget dev-c /v1/firmware/manifest)"
second="$(dget dev-d /v1/firmware/manifest)"
expect_eq "the first device starts" 200 "$first"
expect_eq "the second is deferred" 503 "$second"
retry="$(header retry-after)"
[ -n "$retry" ] && [ "$retry" -ge 1 ] && [ "$retry" -le 60 ] || fail "Retry-After '$retry'"
pass "deferred with Retry-After $retry"
expect_eq "the deferred device stays pending" pending "$(dev_state r2 dev-d)"

# --- the failure threshold pauses; abort stays aborted -------------------------------
release 2.0.2
SEQ3="$SEQ_NEW" URI3="$URI_NEW"
expect_ok "rollout r3" ctl rollout create r3 --firmware "$SEQ3" --devices dev-e,dev-f,dev-g \
  --canary 0 --waves 100 --failure-percent 50 --min-reports 1 --db "$DB"
expect_eq "dev-e starts" 200 "$(dget dev-e /v1/firmware/manifest)"
expect_eq "dev-e fails its self-test" 204 "$(report dev-e "$(rep rolled_back "$SEQ3" 4096 self_test)")"
expect_eq "r3 paused" paused "$(status_json r3 | jq -r .state)"
expect_eq "the reason" failure_threshold "$(status_json r3 | jq -r .pause_reason)"
grep -q 'rollout.paused rollout=r3 reason=failure_threshold' "$T/gw.log" || fail "no rollout.paused line"
[ "$(metric iotgw_rollouts_paused_total)" = 1 ] || fail "iotgw_rollouts_paused_total"
expect_eq "a paused rollout starts no device" 204 "$(dget dev-f /v1/firmware/manifest)"
expect_ok "resume" ctl rollout resume r3 --db "$DB"
expect_eq "resumed: dev-f starts" 200 "$(dget dev-f /v1/firmware/manifest)"
expect_eq "resumed: dev-f gets the image" 206 "$(dget dev-f "$URI3" -H 'Range: bytes=0-9')"
expect_ok "abort" ctl rollout abort r3 --db "$DB"
expect_eq "aborted: nothing offered" 204 "$(dget dev-g /v1/firmware/manifest)"
expect_eq "aborted: a started device gets nothing" 204 "$(dget dev-f /v1/firmware/manifest)"
expect_eq "aborted: no image" 404 "$(dget dev-f "$URI3" -H 'Range: bytes=0-9')"
expect_fail "an aborted rollout cannot resume" 1 "aborted" ctl rollout resume r3 --db "$DB"

# --- a manifest changed behind iotctl is never served -----------------------------------
sqlite3 "$DB" "UPDATE rollouts SET manifest = replace(manifest, 'version: 2.0.1', 'version: 6.6.6') WHERE name = 'r2'"
expect_eq "a tampered manifest is not offered" 204 "$(dget dev-c /v1/firmware/manifest)"
[ "$(metric iotgw_update_manifests_refused_total)" -ge 1 ] || fail "iotgw_update_manifests_refused_total"
grep -q 'update.manifest_refused device=dev-c rollout=r2 .*reason=bad_signature' "$T/gw.log" ||
  fail "no update.manifest_refused line: $(grep manifest_refused "$T/gw.log")"
pass "a tampered manifest is refused by the gateway's verifier, logged and counted"
expect_stream update.manifest_refused '.device == "dev-c" and .reason == "bad_signature" and .severity == "warning"'

# --- trusted keys that cannot be read, on SIGHUP ------------------------------------------
mv "$P/firmware/trusted-keys.pem" "$T/trusted-keys.pem"
kill -HUP "$GW_PID"
expect_stream update.keys_reload_failed '.severity == "error" and .reason != null'
grep -q 'event=update.keys_reload_failed .*action="kept the trusted keys in use"' "$T/gw.log" ||
  fail "no update.keys_reload_failed line: $(tail -2 "$T/gw.log")"
expect_eq "the keys in use are kept: $other is still offered its release" 200 "$(dget "$other" /v1/firmware/manifest)"
mv "$T/trusted-keys.pem" "$P/firmware/trusted-keys.pem"

# --- updates off ----------------------------------------------------------------------------
stop_gateway
write_gateway_config
start_gateway
expect_eq "updates off: the manifest is 204" 204 "$(dget "$other" /v1/firmware/manifest)"
expect_eq "updates off: no image" 404 "$(dget "$other" "$URI")"
expect_stream_valid
finish
