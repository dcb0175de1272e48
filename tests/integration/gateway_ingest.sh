#!/usr/bin/env bash
# The gateway with a real broker: readings arrive on the right topic in the
# documented format; identity comes from the certificate only; every kind of
# bad input gets its status, its error code and nothing published; rate
# limits, replays, revocation and renewal while running.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-001 dev-002 dev-rev dev-rev2 dev-rate dev-ren dev-ka
"$IOTCTL" --dir "$P" device add dev-expired --not-before 2020-01-01 --not-after 2020-01-02 >/dev/null
"$IOTCTL" --dir "$P" device add dev-gone >/dev/null
"$IOTCTL" --dir "$P" device revoke dev-gone >/dev/null
"$IOTCTL" --dir "$T/other" pki init >/dev/null
"$IOTCTL" --dir "$T/other" device add dev-001 >/dev/null # same name, foreign CA
start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
write_gateway_config "rate_limit = 1" "rate_burst = 20" "reload_interval = 200ms"
start_gateway
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5

# --- happy path ---------------------------------------------------------------
now=$(date +%s)
r="$(post dev-001 application/json '{"seq":1,"temperature":21.5,"humidity":40.25}')"
expect_eq "plain JSON reading is stored" '200 {"stored":1,"duplicates":0}' "$r"
r="$(post dev-002 'application/senml+json' "[{\"bn\":\"dev-002:\",\"bt\":$now,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":19.5,\"seq\":7},{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":41},{\"t\":-10,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":19.25,\"seq\":8}]")"
expect_eq "SenML batch is stored" '200 {"stored":2,"duplicates":0}' "$r"
wait_for_lines "$SUB" 3 || fail "expected 3 messages, got: $(cat "$SUB")"
line="$(grep '^telemetry/dev-001/telemetry ' "$SUB" | head -1)"
[ -n "$line" ] || fail "no message on telemetry/dev-001/telemetry: $(cat "$SUB")"
msg="${line#* }"
expect_eq "message carries device and gateway sequence" "dev-001 1 1" \
  "$(echo "$msg" | jq -r '"\(.device) \(.seq) \(.dseq)"')"
expect_eq "message carries the values" "temperature=21.5 humidity=40.25" \
  "$(echo "$msg" | jq -r '[.values[] | "\(.n)=\(.v)"] | join(" ")')"
rx="$(echo "$msg" | jq -r '.rx')"
awk -v rx="$rx" -v now="$now" 'BEGIN { exit !(rx >= now - 5 && rx <= now + 60) }' ||
  fail "receive time $rx is not now ($now)"
pass "message carries the gateway receive time"
expect_eq "SenML readings keep order, units and device time" \
  "7:$now:Cel:19.5 8:$((now - 10)):Cel:19.25" \
  "$(grep '^telemetry/dev-002/telemetry ' "$SUB" | cut -d' ' -f2- | jq -r '"\(.dseq):\(.t):\(.values[0].u):\(.values[0].v)"' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "gateway sequence has no gaps" "1 2" \
  "$(grep '^telemetry/dev-002/telemetry ' "$SUB" | cut -d' ' -f2- | jq -r .seq | tr '\n' ' ' | sed 's/ $//')"

# --- replay and duplicates ------------------------------------------------------
r="$(post dev-001 application/json '{"seq":1,"temperature":99}')"
expect_eq "a replayed sequence is acknowledged as a duplicate" '200 {"stored":0,"duplicates":1}' "$r"
r="$(post dev-001 application/json '{"seq":2,"temperature":22}')"
expect_eq "the next sequence is stored" '200 {"stored":1,"duplicates":0}' "$r"
wait_for_lines "$SUB" 4 || fail "the reading after a replay did not arrive"
sleep 0.3
expect_eq "a replayed reading is published once" 0 "$(grep -c '"v":99' "$SUB" || true)"
[ "$(refusals replay)" -ge 1 ] || fail "replay not counted"
pass "replays are counted as security events"

# --- a device's report of readings it dropped, counted once -------------------
before=$(wc -l <"$SUB")
r="$(post dev-001 application/json '{"seq":3,"dropped":4,"temperature":23}')"
expect_eq "a reading with a dropped report is stored" '200 {"stored":1,"duplicates":0}' "$r"
wait_for_lines "$SUB" $((before + 1)) || fail "the reading with a dropped report did not arrive"
tail -1 "$SUB" | grep -q '"dropped":4' || fail "the published message lacks the dropped report: $(tail -1 "$SUB")"
expect_eq "the dropped report is counted" 4 "$(metric iotgw_readings_dropped_by_device_total)"
r="$(post dev-001 application/json '{"seq":3,"dropped":4,"temperature":23}')"
expect_eq "the same request resent is a duplicate" '200 {"stored":0,"duplicates":1}' "$r"
r="$(post dev-001 application/json '[{"seq":3,"dropped":4,"temperature":23},{"seq":4,"temperature":24}]')"
expect_eq "resent with a new reading after it: only the new one is stored" '200 {"stored":1,"duplicates":1}' "$r"
expect_eq "a resent dropped report is not counted again" 4 "$(metric iotgw_readings_dropped_by_device_total)"
grep -q 'event=device.dropped device=dev-001 dropped=4' "$T/gw.log" || fail "device.dropped not logged"
expect_eq "device.dropped logged once" 1 "$(grep -c 'event=device.dropped' "$T/gw.log")"
wait_for_lines "$SUB" $((before + 2)) || fail "the reading after the resent report did not arrive"
sleep 0.3
expect_eq "only the stored readings were published" $((before + 2)) "$(wc -l <"$SUB")"

# --- identity: only the certificate names the device ------------------------
before=$(wc -l <"$SUB")
r="$(post dev-001 'application/senml+json' '[{"bn":"dev-002:","n":"temperature","v":1,"seq":50}]')"
expect_eq "a body naming another device is refused" 403 "${r%% *}"
echo "$r" | grep -q '"error":"identity_mismatch"' || fail "wrong error: $r"
pass "identity_mismatch error code"
r="$(post dev-001 application/json '{"seq":51,"temperature":1}' -H 'X-Device-Id: dev-002')"
expect_eq "an X-Device-Id header does not change the identity" 200 "${r%% *}"
r="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" --cert "$P/devices/dev-001/cert.pem" \
  --key "$P/devices/dev-001/key.pem" -H 'Content-Type: application/json' -d '{"seq":52,"t":1}' \
  "https://localhost:$GW_PORT/v1/telemetry/dev-002")"
expect_eq "a path naming another device is not an endpoint" 404 "$r"
r="$(post dev-001 'application/senml+json' '[{"n":"dev-002/telemetry","v":1,"seq":53}]')"
expect_eq "a name with a topic separator is refused" 422 "${r%% *}"
r="$(post dev-001 'application/senml+json' '[{"n":"#","v":1,"seq":54}]')"
expect_eq "a name with an MQTT wildcard is refused" 422 "${r%% *}"
wait_for_lines "$SUB" $((before + 1)) || fail "the X-Device-Id reading did not arrive"
sleep 0.3
expect_eq "nothing reached another device's topic" 0 \
  "$(grep -c '^telemetry/dev-002/telemetry .*"dseq":5[0-9]' "$SUB" || true)"
last="$(tail -1 "$SUB")"
expect_eq "the header-carrying reading went to the sender's topic" "telemetry/dev-001/telemetry 51" \
  "$(echo "${last%% *} $(echo "${last#* }" | jq -r .dseq)")"

# --- TLS identity refusals ------------------------------------------------------
expect_eq "no client certificate: refused" "000" "$(post '' application/json '{"seq":1,"t":1}' | cut -d' ' -f1)"
r="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" --cert "$T/other/devices/dev-001/cert.pem" \
  --key "$T/other/devices/dev-001/key.pem" -H 'Content-Type: application/json' -d '{"seq":9,"x":1}' \
  "https://localhost:$GW_PORT/v1/telemetry" || true)"
expect_eq "a certificate from another CA with the same name: refused" 000 "$r"
expect_eq "a device revoked before the gateway started: refused" 000 \
  "$(post dev-gone application/json '{"seq":1,"x":1}' | cut -d' ' -f1)"
expect_eq "an expired certificate: refused" 000 "$(post dev-expired application/json '{"seq":1,"x":1}' | cut -d' ' -f1)"
grep -q 'event=tls.refused .*reason=tls_no_certificate' "$T/gw.log" || fail "no-cert refusal not logged"
grep -q 'event=tls.refused .*detail="certificate has expired"' "$T/gw.log" || fail "expired refusal not logged"
grep -q 'event=tls.refused .*reason=tls_bad_certificate' "$T/gw.log" || fail "wrong-CA refusal not logged"
[ "$(refusals tls_no_certificate)" -ge 1 ] && [ "$(refusals tls_bad_certificate)" -ge 2 ] ||
  fail "TLS refusals not counted: $(refusals tls_no_certificate) $(refusals tls_bad_certificate)"
pass "TLS refusals are logged and counted"

# --- validation: status, code, nothing published ---------------------------------
before=$(wc -l <"$SUB")
check_refusal() {
  local what="$1" want_status="$2" want_code="$3" ctype="$4" body="$5"
  local r
  r="$(post dev-002 "$ctype" "$body")"
  [ "${r%% *}" = "$want_status" ] || fail "$what: expected $want_status, got: $r"
  echo "$r" | grep -q "\"error\":\"$want_code\"" || fail "$what: expected error $want_code, got: $r"
  echo "${r#* }" | jq -e '.detail | type == "string"' >/dev/null || fail "$what: no detail: $r"
  pass "$what -> $want_status $want_code"
}
big="$(head -c 20000 /dev/zero | tr '\0' 'a')"
check_refusal "oversized body" 413 payload_too_large application/json "{\"seq\":60,\"x\":\"$big\"}"
check_refusal "malformed JSON" 400 malformed_json application/json '{"seq":60,"x":'
check_refusal "too deep" 400 too_deep application/json '{"a":[[[[[[1]]]]]]}'
check_refusal "Infinity" 400 malformed_json application/json '{"seq":60,"x":Infinity}'
check_refusal "NaN" 400 malformed_json application/json '{"seq":60,"x":NaN}'
check_refusal "overflowing number" 400 invalid_number application/json '{"seq":60,"x":1e999}'
check_refusal "invalid UTF-8" 400 invalid_utf8 application/json "$(printf '{"seq":60,"x\xc3\x28":1}')"
check_refusal "bad sensor name" 422 invalid_name application/json '{"seq":60,"bad name":1}'
check_refusal "time far in the past" 422 time_out_of_range application/senml+json '[{"bn":"dev-002:","bt":1000000000,"n":"x","v":1,"seq":60}]'
records="$(for i in $(seq 1 300); do printf '{"n":"x%d","v":1},' "$i"; done)"
check_refusal "batch too large" 413 batch_too_large application/senml+json "[{\"seq\":60,\"n\":\"a\",\"v\":1},${records%,}]"
check_refusal "wrong media type" 415 unsupported_media_type text/plain 'temperature=1'
r="$(curl -s -X GET -o "$T/.resp" -w '%{http_code}' --cacert "$P/ca.crt" --cert "$P/devices/dev-002/cert.pem" \
  --key "$P/devices/dev-002/key.pem" "https://localhost:$GW_PORT/v1/telemetry")"
expect_eq "wrong method" 405 "$r"
jq -e '.error == "method_not_allowed"' "$T/.resp" >/dev/null || fail "405 without JSON error: $(cat "$T/.resp")"
sleep 0.5
expect_eq "no refused body was published" "$before" "$(wc -l <"$SUB")"
kill -0 "$GW_PID" || fail "the gateway died"
pass "the gateway is still running"

# --- rate limit ---------------------------------------------------------------------
codes=""
for i in $(seq 1 60); do
  r="$(post dev-rate application/json "{\"seq\":$i,\"x\":1}")"
  codes="$codes ${r%% *}"
  [ "${r%% *}" != 429 ] || break
done
echo "$codes" | grep -q 429 || fail "no 429 in 60 posts at 1/s with a burst of 20: $codes"
pass "a burst over the rate limit gets 429"
grep -qi '^Retry-After: [1-9]' "$T/.hdr" || fail "429 without Retry-After: $(cat "$T/.hdr")"
pass "429 carries Retry-After"
r="$(post dev-001 application/json '{"seq":200,"x":1}')"
expect_eq "other devices are not limited by it" 200 "${r%% *}"

# --- revocation while running -----------------------------------------------------
r="$(post dev-rev application/json '{"seq":1,"x":1}')"
expect_eq "dev-rev posts before revocation" 200 "${r%% *}"
"$IOTCTL" --dir "$P" device revoke dev-rev >/dev/null
kill -HUP "$GW_PID"
sleep 0.5
grep -q 'event=identity.loaded' "$T/gw.log" || fail "no reload logged"
expect_eq "revoked while running: refused after reload" 000 \
  "$(post dev-rev application/json '{"seq":2,"x":1}' | cut -d' ' -f1)"
grep -q 'event=tls.refused .*reason=device_revoked' "$T/gw.log" || fail "revocation refusal not logged"
pass "revocation refusal logged"
r="$(post dev-001 application/json '{"seq":201,"x":1}')"
expect_eq "other devices unaffected by the reload" 200 "${r%% *}"

# Without a signal: the gateway notices the changed registry and CRL itself.
r="$(post dev-rev2 application/json '{"seq":1,"x":1}')"
expect_eq "dev-rev2 posts before revocation" 200 "${r%% *}"
iotctl_and_wait_reload device revoke dev-rev2
expect_eq "revoked while running: refused after the file watch reload" 000 \
  "$(post dev-rev2 application/json '{"seq":2,"x":1}' | cut -d' ' -f1)"

# A device revoked while its connection stays open: the gateway checks the
# device once per connection and identity snapshot, so the first request
# after the reload, on the same connection, is refused.
req() {
  printf 'POST /v1/telemetry HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "${#1}" "$1"
}
{
  req '{"seq":1,"x":1}'
  sleep 0.5
  req '{"seq":2,"x":1}'
  sleep 0.5
  iotctl_and_wait_reload device revoke dev-ka
  req '{"seq":3,"x":1}'
  sleep 1
} | timeout 20 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" -CAfile "$P/ca.crt" \
  -cert "$P/devices/dev-ka/cert.pem" -key "$P/devices/dev-ka/key.pem" >"$T/ka.out" 2>/dev/null || true
expect_eq "one connection: two readings accepted, then refused once revoked" "200 200 403" \
  "$(grep -o '^HTTP/1.1 [0-9]*' "$T/ka.out" | awk '{ print $2 }' | paste -sd' ' -)"
grep -q '"error":"device_revoked"' "$T/ka.out" || fail "the refusal on the open connection is not device_revoked: $(cat "$T/ka.out")"

# --- renewal under the same ID while running ------------------------------------
# The new certificate speaks for the same device: same topic, and the
# gateway's sequence state carries over. The replaced one is refused.
r="$(post dev-ren application/json '{"seq":1,"x":1}')"
expect_eq "dev-ren posts before its renewal" 200 "${r%% *}"
old_serial="$("$IOTCTL" --dir "$P" device show dev-ren --json | jq -r .serial)"
iotctl_and_wait_reload device renew dev-ren
old="$P/devices/dev-ren/superseded-$old_serial"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" --cert "$old/cert.pem" --key "$old/key.pem" \
  -H 'Content-Type: application/json' -d '{"seq":2,"x":1}' "https://localhost:$GW_PORT/v1/telemetry" || true)"
expect_eq "the replaced certificate is refused after the reload" 000 "${code:-000}"
grep -q "event=tls.refused .*reason=device_revoked.*CN=dev-ren" "$T/gw.log" ||
  fail "the replaced certificate's refusal was not logged as device_revoked: $(grep dev-ren "$T/gw.log" | tail -2)"
r="$(post dev-ren application/json '{"seq":1,"x":1}')"
expect_eq "the renewed certificate continues the device's sequence (1 is a duplicate)" \
  '200 {"stored":0,"duplicates":1}' "$r"
before=$(wc -l <"$SUB")
r="$(post dev-ren application/json '{"seq":2,"x":2}')"
expect_eq "the renewed certificate posts" '200 {"stored":1,"duplicates":0}' "$r"
wait_for_lines "$SUB" $((before + 1)) || fail "the renewed device's reading did not arrive"
tail -1 "$SUB" | grep -q '^telemetry/dev-ren/telemetry .*"dseq":2' ||
  fail "the renewed device's reading is not on its topic: $(tail -1 "$SUB")"
pass "after renewal the device publishes on the same topic"

# --- the shared-key audit ---------------------------------------------------
# iotctl refuses a key another name holds; a registry written by other
# means (here sqlite3) may still hold such a pair: the gateway reports it.
expect_eq "no shared keys in a registry made by iotctl" 0 "$(metric iotgw_registry_shared_key_certificates)"
reloads="$(metric iotgw_identity_reloads_total)"
sqlite3 "$P/registry.db" "UPDATE certificates SET spki = (SELECT spki FROM certificates WHERE name = 'dev-001') WHERE name = 'dev-002'"
kill -HUP "$GW_PID"
for _ in $(seq 1 50); do [ "$(metric iotgw_identity_reloads_total)" -gt "$reloads" ] && break; sleep 0.1; done
expect_eq "two certificates sharing one key are counted" 2 "$(metric iotgw_registry_shared_key_certificates)"
grep -q 'event=identity.shared_key name=dev-002 kind=device serial=[0-9A-F]* key_sha256=[0-9a-f]\{64\}' "$T/gw.log" ||
  fail "the shared key was not logged: $(grep shared "$T/gw.log" | tail -2)"
pass "the gateway's audit reports certificates that share a key"
expect_stream identity.shared_key \
  '.severity == "critical" and .serial != null and (.log | test("kind=device .*key_sha256=[0-9a-f]{64}"))'
expect_stream_valid

finish
