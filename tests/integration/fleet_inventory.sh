#!/usr/bin/env bash
# The fleet inventory: devices' health reports (POST /v1/device/health)
# checked strictly, kept per device with the time of their last request,
# served on the admin listener (GET /fleet), kept across a restart, and
# turned into security events (source "device") when a device reports a
# crash, failed connections or a lower secure_version; silent devices are
# counted in iotgw_devices_silent; what GET /fleet serves is what
# iotctl vuln scan --inventory reads.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-1 dev-2 dev-3 dev-4
"$IOTCTL" --dir "$P" cert client secmon --role operator >/dev/null
sed 's/CN=dashboard,/CN=consumer,/' "$IOT_SOURCE_DIR/deploy/broker/acl" >"$T/acl"
BROKER_ACL="$T/acl"
start_broker
write_gateway_config "rate_limit = 0"
# dev-3 was last heard from three hours ago, by an earlier run of the gateway.
old=$(($(date +%s) - 3 * 3600))
sqlite3 "$T/fleet.db" "CREATE TABLE fleet (device TEXT PRIMARY KEY, has_report INTEGER NOT NULL,
  firmware TEXT NOT NULL, secure_version INTEGER NOT NULL, boot_count INTEGER NOT NULL,
  reset_reason TEXT NOT NULL, connect_failures INTEGER NOT NULL, since_upload_s INTEGER NOT NULL,
  heap_min INTEGER NOT NULL, cert_not_after INTEGER NOT NULL, last_seen INTEGER NOT NULL,
  last_report INTEGER NOT NULL) WITHOUT ROWID;
  INSERT INTO fleet VALUES ('dev-3', 1, '0.9.0', 1, 4, 'power_on', 0, 10, -1, 0, $old, $old);"
security_monitor
start_gateway

# health DEVICE BODY [CONTENT-TYPE]: "STATUS BODY" of one report.
health() {
  local out
  out="$(curl -s -o "$T/.resp" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$P/devices/$1/cert.pem" --key "$P/devices/$1/key.pem" \
    -H "Content-Type: ${3:-application/json}" --data-binary "$2" \
    "https://localhost:$GW_PORT/v1/device/health" 2>/dev/null)" || true
  echo "${out:-000} $(cat "$T/.resp" 2>/dev/null)"
}
fleet() { curl -s "http://127.0.0.1:$ADMIN_PORT/fleet"; }
dev() { fleet | jq -c --arg d "$1" '.devices[] | select(.device == $d)'; }

GOOD='{"firmware":"1.2.0","secure_version":3,"boot_count":12,"reset_reason":"power_on","connect_failures":0,"since_upload_s":40,"heap_min":51234,"cert_not_after":1803000000}'
r="$(health dev-1 "$GOOD")"
expect_eq "a health report is answered 204" "204" "${r%% *}"
expect_eq "the inventory has it" '1.2.0 3 12 power_on 51234 1803000000' \
  "$(dev dev-1 | jq -r '"\(.firmware) \(.secure_version) \(.boot_count) \(.reset_reason) \(.heap_min) \(.cert_not_after)"')"
[ "$(dev dev-1 | jq .last_seen)" -ge $(($(date +%s) - 60)) ] || fail "dev-1 last_seen: $(dev dev-1)"
expect_eq "dev-3 from the earlier run" "0.9.0 $old" "$(dev dev-3 | jq -r '"\(.firmware) \(.last_seen)"')"
expect_eq "an inventory from before slots: the slot column added, empty" '""' "$(dev dev-3 | jq -c .slot)"
r="$(health dev-1 "${GOOD%\}},\"slot\":\"ota_1\"}")"
expect_eq "a report with the running slot is answered 204" "204" "${r%% *}"
expect_eq "the inventory has the slot" "ota_1" "$(dev dev-1 | jq -r .slot)"

# --- strict reports ----------------------------------------------------------------------
bad() { # bad WHAT STATUS ERROR BODY [CONTENT-TYPE]
  local r
  r="$(health dev-1 "$4" "${5:-application/json}")"
  expect_eq "$1: status" "$2" "${r%% *}"
  expect_eq "$1: error" "$3" "$(echo "${r#* }" | jq -r .error)"
}
bad "an unknown member" 422 unsupported_field "${GOOD%\}},\"shell\":\"rm -rf /\"}"
bad "a member of the wrong type" 422 invalid_value "${GOOD/\"boot_count\":12/\"boot_count\":\"12\"}"
bad "a negative count" 422 invalid_value "${GOOD/\"boot_count\":12/\"boot_count\":-1}"
bad "a fraction" 422 invalid_value "${GOOD/\"secure_version\":3/\"secure_version\":3.5}"
bad "an unknown reset reason" 422 invalid_value "${GOOD/power_on/cosmic_ray}"
bad "a slot that is no partition label" 422 invalid_value "${GOOD%\}},\"slot\":\"OTA 1\"}"
bad "a firmware version with a space" 422 invalid_value "${GOOD/1.2.0/1.2 0}"
bad "a missing member" 422 missing_value '{"firmware":"1.2.0"}'
bad "a member twice" 400 duplicate_key "${GOOD%\}},\"boot_count\":13}"
bad "not JSON" 400 malformed_json '{"firmware":'
bad "trailing bytes" 400 malformed_json "$GOOD x"
bad "an array" 422 invalid_structure '[1,2]'
bad "another media type" 415 unsupported_media_type "$GOOD" text/plain
bad "too large" 413 payload_too_large "{\"firmware\":\"$(head -c 2000 /dev/zero | tr '\0' a)\"}"
expect_eq "refused reports changed nothing" 12 "$(dev dev-1 | jq .boot_count)"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" -H 'Content-Type: application/json' \
  --data-binary "$GOOD" "https://localhost:$GW_PORT/v1/device/health" 2>/dev/null || true)"
expect_eq "without a device certificate: no answer" 000 "$code"

# --- what the stream hears from devices --------------------------------------------------------
r="$(health dev-1 "$(echo "$GOOD" | jq -c '.reset_reason = "watchdog" | .connect_failures = 3 | .boot_count = 13')")"
expect_eq "a report after a watchdog reset" 204 "${r%% *}"
r="$(health dev-1 "$(echo "$GOOD" | jq -c '.secure_version = 2 | .firmware = "1.1.0" | .boot_count = 14')")"
expect_eq "a report with a lower secure_version" 204 "${r%% *}"
for reason in abnormal_reset connect_failures secure_version_lowered; do
  expect_stream device.security_report ".reason == \"$reason\" and .device == \"dev-1\" and .source == \"device\"" \
    "device.security_report $reason"
done
expect_stream device.firmware_changed '.device == "dev-1" and .source == "device"' "a firmware change is an event"

# --- the device core's reports (iotsim) ------------------------------------------------------------
IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
sim() {
  "$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device dev-2 --state "$T/state" \
    --interval 100ms --count 3 --updates off --health-interval 1h "$@" >"$T/sim.out" 2>"$T/sim.err"
}
expect_fail "an unknown reset reason" 2 "reset-reason 'cosmic'" "$IOTSIM" \
  --gateway "https://localhost:$GW_PORT" --pki "$P" --device dev-2 --reset-reason cosmic
expect_ok "a device reports at start" sim --reset-reason watchdog -v
grep -q "event=health.sent.*status=204" "$T/sim.err" || fail "no health report answered 204: $(cat "$T/sim.err")"
want_end="$(date -u -d "$(openssl x509 -in "$P/devices/dev-2/cert.pem" -noout -enddate | cut -d= -f2)" +%s)"
# Its first step uploads the first reading, then reports: an upload just now.
expect_eq "dev-2 as the core reported it" "1.0.0 0 1 watchdog $want_end true factory" \
  "$(dev dev-2 | jq -r '"\(.firmware) \(.secure_version) \(.boot_count) \(.reset_reason) \(.cert_not_after) \(.since_upload_s >= 0 and .since_upload_s < 60) \(.slot)"')"
expect_ok "a second start" sim
expect_eq "the boot count grows across starts, the reset reason follows" "2 software" \
  "$(dev dev-2 | jq -r '"\(.boot_count) \(.reset_reason)"')"
expect_stream device.security_report '.device == "dev-2" and .reason == "abnormal_reset"' \
  "a device's watchdog reset reaches the security stream"
expect_stream_valid

# --- from the inventory to an advisory ------------------------------------------------------
# What GET /fleet serves is what iotctl vuln scan reads: an advisory for this
# machine's OpenSSL, which the simulator's image links, names the one device
# that reported running that image.
S="$IOT_BUILD_DIR/sbom"
SIM_VERSION="$(jq -r .metadata.component.version "$S/iotsim.cdx.json")"
expect_eq "dev-2 runs the image the simulator's SBOM describes" "$SIM_VERSION" "$(dev dev-2 | jq -r .firmware)"
SRC="$(dpkg-query -W -f='${source:Package}' libssl3)"
VER="$(dpkg-query -W -f='${source:Version}' libssl3)"
mkdir -p "$T/advisories"
cat >"$T/advisories/DSA-9101-1.json" <<JSON
{"id": "DSA-9101-1", "summary": "$SRC: a flaw fixed after our version",
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "$SRC"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "${VER}+sec1"}]}]}]}
JSON
fleet >"$T/fleet.json"
run "$IOTCTL" vuln scan --advisories "$T/advisories" --sbom "$S/iotsim.cdx.json" \
  --inventory "$T/fleet.json" --json
expect_eq "an affecting advisory: exit 1" 1 "$RC"
expect_eq "the affected devices, from the gateway's inventory" "dev-2" \
  "$(jq -r '[.affected[0].devices[].device] | join(" ")' <<<"$OUT")"

# --- last seen from readings, silence, and a restart ---------------------------------------------
r="$(post dev-4 application/json '{"seq":1,"temperature":20}')"
expect_eq "a reading from dev-4" 200 "${r%% *}"
expect_eq "dev-4 is in the inventory by its reading alone" '""' "$(dev dev-4 | jq -c .firmware)"
wait_until 20 "dev-3 counted as silent" bash -c "[ \"\$(curl -s http://127.0.0.1:$ADMIN_PORT/metrics | awk '\$1 == \"iotgw_devices_silent\" { print \$2 }')\" = 1 ]"
pass "a device not heard from for device_silent_after is silent"
stop_gateway
start_gateway
expect_eq "the inventory survives a restart" "1.1.0 2 14 dev-2 2" \
  "$(fleet | jq -r '[(.devices[] | select(.device == "dev-1") | "\(.firmware) \(.secure_version) \(.boot_count)"), (.devices[] | select(.device == "dev-2") | "\(.device) \(.boot_count)")] | join(" ")')"
finish
