#!/usr/bin/env bash
# Attacks in the request body and on identity, topics, replay and rate,
# against the real gateway and a broker running deploy/broker's ACL:
# truncated and invalid JSON, hostile numbers, SenML semantic errors,
# control characters aimed at the log, a device naming another device,
# MQTT wildcards and separators, direct broker access, replays, stale
# readings and one device flooding while others keep being served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-ok dev-att dev-002 dev-flood dev-ok2
# deploy/broker/acl, plus read access for this test's consumer identity.
BROKER_ACL="$T/acl"
{
  cat "$IOT_SOURCE_DIR/deploy/broker/acl"
  printf '\nuser CN=consumer,OU=consumer,O=IoT Telemetry\ntopic read telemetry/+/telemetry\n'
} >"$BROKER_ACL"
start_broker
write_gateway_config "request_timeout = 2s" "past_window = 1h" "rate_limit = 5" "rate_burst = 250"
start_gateway
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5
EXPECTED=0
SEQ=0
NOW=$(date +%s)

counter() { local v; v="$(refusals "$1")"; echo "${v:-0}"; }

legit_ok() {
  local r
  SEQ=$((SEQ + 1))
  r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}")"
  [ "${r%% *}" = 200 ] || fail "$1: a legitimate device got: $r"
  EXPECTED=$((EXPECTED + 1))
  wait_for_lines "$SUB" "$EXPECTED" 10 || fail "$1: the legitimate reading did not arrive"
  sleep 0.3
  [ "$(wc -l <"$SUB")" -eq "$EXPECTED" ] || fail "$1: unexpected messages: $(cat "$SUB")"
  kill -0 "$GW_PID" 2>/dev/null || fail "$1: the gateway died"
}

# refused WHAT STATUS CODE REASON CTYPE BODY [curl args]: dev-att's POST
# gets STATUS with JSON error CODE, counted under REASON.
refused() {
  local what="$1" status="$2" code="$3" reason="$4" ctype="$5" body="$6" before r
  shift 6
  before="$(counter "$reason")"
  r="$(post dev-att "$ctype" "$body" "$@")"
  [ "${r%% *}" = "$status" ] || fail "$what: expected $status, got: $r"
  echo "${r#* }" | jq -e --arg c "$code" '.error == $c' >/dev/null || fail "$what: expected $code, got: $r"
  [ "$(counter "$reason")" -gt "$before" ] || fail "$what: not counted as $reason"
  pass "$what -> $status $code ($reason)"
}

# --- truncated and malformed JSON ---------------------------------------------------
good="[{\"bn\":\"dev-att:\",\"bt\":$NOW,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":21.5,\"seq\":5},{\"n\":\"humidity\",\"u\":\"%RH\",\"v\":40}]"
before="$(counter payload_invalid)"
cuts=0
for cut in $(seq 1 3 $((${#good} - 1))); do
  r="$(post dev-att application/senml+json "${good:0:cut}")"
  [ "${r%% *}" = 400 ] || fail "body cut at $cut: expected 400, got: $r"
  cuts=$((cuts + 1))
done
expect_eq "every truncated body is counted as payload_invalid" "$cuts" $(($(counter payload_invalid) - before))
pass "$cuts truncations of a valid SenML pack -> 400"
refused "invalid UTF-8 in a name" 400 invalid_utf8 payload_invalid application/senml+json \
  "$(printf '[{"n":"te\xffmp","v":1}]')"
refused "invalid UTF-8 in a unit" 400 invalid_utf8 payload_invalid application/senml+json \
  "$(printf '[{"n":"t","u":"C\xc0\xafl","v":1}]')"
refused "overlong UTF-8 for '/' in a JSON name" 400 invalid_utf8 payload_invalid application/json \
  "$(printf '{"a\xc0\xafb":1}')"
deep="$(printf '%.0s[' $(seq 1 40))1$(printf '%.0s]' $(seq 1 40))"
refused "nesting 40 deep (cap 4)" 400 too_deep payload_invalid application/json "$deep"
refused "hex number" 400 malformed_json payload_invalid application/json '{"x":0x10}'
refused "leading +" 400 malformed_json payload_invalid application/json '{"x":+1}'
refused "1e999" 400 invalid_number payload_invalid application/json '{"x":1e999}'
legit_ok "malformed JSON"
echo "# malformed: $cuts truncations, invalid UTF-8, depth, number forms refused; legitimate device served"

# Finite extremes are valid numbers: stored as sent (1e308), as zero (-0,
# and 1e-400, which underflows), never as a refusal or a crash.
r="$(post dev-att application/json '{"seq":10,"big":1e308,"negz":-0,"tiny":1e-400}')"
expect_eq "finite extreme numbers are accepted" '200 {"stored":1,"duplicates":0}' "$r"
EXPECTED=$((EXPECTED + 1))
wait_for_lines "$SUB" "$EXPECTED" || fail "the extreme-number reading did not arrive"
expect_eq "extreme numbers are published as valid JSON numbers" "1e+308 -0 0" \
  "$(grep '^telemetry/dev-att/' "$SUB" | tail -1 | cut -d' ' -f2- |
    jq -r '[.values[] | .v] | map(tostring) | join(" ")')"

# --- SenML semantics ------------------------------------------------------------
refused "bver 11" 422 unsupported_version payload_invalid application/senml+json '[{"bver":11,"n":"x","v":1}]'
for f in '"vs":"a"' '"vb":true' '"vd":"YQ"'; do
  refused "value field ${f%%:*}" 422 unsupported_value payload_invalid application/senml+json "[{\"n\":\"x\",$f}]"
done
refused "must-understand field foo_" 422 unsupported_field payload_invalid application/senml+json '[{"n":"x","v":1,"foo_":1}]'
refused "missing v" 422 missing_value payload_invalid application/senml+json '[{"n":"x","u":"Cel"}]'
refused "seq 0" 422 invalid_seq payload_invalid application/senml+json '[{"n":"x","v":1,"seq":0}]'
refused "seq 2^32" 422 invalid_seq payload_invalid application/senml+json '[{"n":"x","v":1,"seq":4294967296}]'
refused "records of one reading with different times" 422 inconsistent_time payload_invalid \
  application/senml+json "[{\"bt\":$NOW,\"n\":\"x\",\"v\":1,\"seq\":11},{\"t\":-5,\"n\":\"y\",\"v\":1}]"
refused "a reading older than past_window (1h)" 422 time_out_of_range payload_invalid \
  application/senml+json "[{\"bt\":$((NOW - 7200)),\"n\":\"x\",\"v\":1,\"seq\":12}]"
legit_ok "SenML semantics"
echo "# SenML semantics: bver, vs/vb/vd, must-understand, missing v, seq range, times refused; legitimate device served"

# --- control characters and the log ----------------------------------------------
refused "ESC in a name" 422 invalid_name payload_hostile application/senml+json '[{"n":"x\u001b[31m","v":1}]'
refused "raw ESC byte in a name (unescaped control character: not JSON)" 400 malformed_json payload_invalid application/senml+json \
  "$(printf '[{"n":"x\x1b[2J","v":1}]')"
refused "newline and a fake log line in a unit" 422 invalid_unit payload_hostile application/senml+json \
  '[{"n":"x","u":"C\nlevel=error event=gateway.fake","v":1}]'
refused "CR in a name" 422 invalid_name payload_hostile application/json '{"a\rlevel=error event=gateway.fake":1}'
refused "escaped NUL in a name (a control character, like ESC)" 422 invalid_name payload_hostile application/senml+json '[{"n":"x\u0000y","v":1}]'
refused "escaped NUL in bn" 403 identity_mismatch identity_mismatch application/senml+json '[{"bn":"dev-att\u0000:","n":"x","v":1}]'
refused "newline in bn" 403 identity_mismatch identity_mismatch application/senml+json \
  '[{"bn":"dev-att:\nlevel=error event=gateway.fake ","n":"x","v":1}]'
[ "$(grep -c $'\e' "$T/gw.log")" -eq 0 ] || fail "an ESC byte reached the log"
! grep -q '^level=error\|^[^ ]* *level=error event=gateway.fake' "$T/gw.log" || fail "an injected log line: $(grep fake "$T/gw.log")"
[ "$(grep -c 'event=gateway.fake' "$T/gw.log")" -eq "$(grep -c 'event=request.refused.*event=gateway.fake' "$T/gw.log")" ] ||
  fail "injected text started a log line of its own"
pass "no raw control character or injected line in the log"
legit_ok "control characters"
echo "# control characters: ESC, CR, LF and NUL refused, never logged raw; legitimate device served"

# --- identity and topics ------------------------------------------------------------
refused "bn naming another device" 403 identity_mismatch identity_mismatch application/senml+json \
  '[{"bn":"dev-002:","n":"x","v":1,"seq":13}]'
refused "a name with another device's prefix" 422 invalid_name payload_hostile application/senml+json \
  '[{"n":"dev-002:temperature","v":1,"seq":13}]'
refused "a plain JSON member with another device's prefix" 422 invalid_name payload_hostile application/json \
  '{"seq":13,"dev-002:temperature":1}'
for ch in '+' '#' '/' '$'; do
  refused "'$ch' in a SenML name" 422 invalid_name payload_hostile application/senml+json "[{\"n\":\"a${ch}b\",\"v\":1}]"
  refused "'$ch' in a JSON name" 422 invalid_name payload_hostile application/json "{\"a${ch}b\":1}"
  refused "'$ch' in bn" 403 identity_mismatch identity_mismatch application/senml+json "[{\"bn\":\"dev-att${ch}:\",\"n\":\"x\",\"v\":1}]"
done
# Units never reach a topic (only the certificate's ID does): '+', '#' and
# '/' are printable and allowed there, and arrive JSON-escaped in the payload.
SEQ2=20
for h in '-H X-Device-Id:dev-002' '-H Host:dev-002'; do
  SEQ2=$((SEQ2 + 1))
  # shellcheck disable=SC2086
  r="$(post dev-att application/json "{\"seq\":$SEQ2,\"x\":2}" $h)"
  expect_eq "'$h' does not change the identity" 200 "${r%% *}"
  EXPECTED=$((EXPECTED + 1))
done
# A query naming another device is not even a request to the endpoint.
SEQ2=$((SEQ2 + 1))
r="$(post dev-att application/json "{\"seq\":$SEQ2,\"x\":2}" --url-query device=dev-002)"
expect_eq "'--url-query device=dev-002' is refused: the endpoint takes no query" 400 "${r%% *}"
wait_for_lines "$SUB" "$EXPECTED" || fail "readings with device-naming headers did not arrive"
sleep 0.3
expect_eq "nothing was ever published on dev-002's topic" 0 "$(grep -c '^telemetry/dev-002/' "$SUB" || true)"
expect_eq "readings with headers naming dev-002 went to dev-att's topic" "dev-att dev-att" \
  "$(grep '"dseq":2[1-3]' "$SUB" | cut -d' ' -f2- | jq -r .device | tr '\n' ' ' | sed 's/ $//')"
# Direct broker access, with deploy/broker/acl (broker_acl.sh tests the
# complete configuration): a device certificate may connect but not publish,
# an anonymous client cannot connect.
run mosquitto_pub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" --cert "$P/devices/dev-att/cert.pem" \
  --key "$P/devices/dev-att/key.pem" -V mqttv5 -q 1 -t telemetry/dev-002/telemetry -m '{"device":"dev-002"}'
echo "$ERR$OUT" | grep -q 'Not authorized' || fail "a device's direct publish was not refused: $ERR"
pass "a device certificate cannot publish on the broker"
run mosquitto_pub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" -q 1 -t telemetry/dev-002/telemetry -m x
[ "$RC" -ne 0 ] || fail "an anonymous client published"
pass "an anonymous client cannot connect to the broker"
legit_ok "identity and topics"
expect_eq "no message from any attacker reached dev-002's topic" 0 "$(grep -c '^telemetry/dev-002/' "$SUB" || true)"
echo "# identity and topics: other-device names, wildcards and separators refused; headers ignored; broker closed to devices"

# --- replay and rate ------------------------------------------------------------------
body="{\"seq\":40,\"x\":40}"
r="$(post dev-att application/json "$body")"
expect_eq "the original request is stored" '200 {"stored":1,"duplicates":0}' "$r"
EXPECTED=$((EXPECTED + 1))
before="$(counter replay)"
r="$(post dev-att application/json "$body")"
expect_eq "the captured request replayed on a new connection is a duplicate" '200 {"stored":0,"duplicates":1}' "$r"
[ "$(counter replay)" -gt "$before" ] || fail "replay not counted"
pass "the replay is counted as replay"
wait_for_lines "$SUB" "$EXPECTED" || fail "the original did not arrive"
sleep 0.3
expect_eq "the replayed reading was published once" 1 "$(grep -c '"dseq":40,' "$SUB" || true)"

# dev-flood sends 400 requests on one keep-alive connection (burst 250,
# 5/s) while dev-ok and dev-ok2 keep posting; their latency is reported.
args=()
for i in $(seq 1 400); do
  args+=(--next -s -o /dev/null -w '%{http_code}\n' --cacert "$P/ca.crt" --cert "$P/devices/dev-flood/cert.pem"
    --key "$P/devices/dev-flood/key.pem" -H 'Content-Type: application/json' --data-binary "{\"seq\":$i,\"x\":1}"
    "https://localhost:$GW_PORT/v1/telemetry")
done
before="$(counter rate_limited)"
curl "${args[@]:1}" >"$T/flood.codes" 2>/dev/null &
flood=$!
lat=""
n=0
while kill -0 "$flood" 2>/dev/null || [ "$n" -lt 4 ]; do
  n=$((n + 1))
  for d in dev-ok dev-ok2; do
    if [ "$d" = dev-ok ]; then SEQ=$((SEQ + 1)); s=$SEQ; else s=$n; fi
    out="$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --cacert "$P/ca.crt" \
      --cert "$P/devices/$d/cert.pem" --key "$P/devices/$d/key.pem" -H 'Content-Type: application/json' \
      --data-binary "{\"seq\":$s,\"x\":1}" "https://localhost:$GW_PORT/v1/telemetry")"
    [ "${out%% *}" = 200 ] || fail "$d got ${out%% *} during the flood"
    EXPECTED=$((EXPECTED + 1))
    lat="$lat ${out#* }"
  done
done
wait "$flood" || true
n429="$(grep -c '^429$' "$T/flood.codes" || true)"
n200="$(grep -c '^200$' "$T/flood.codes" || true)"
EXPECTED=$((EXPECTED + n200)) # what the flooder got accepted is published too
[ "$n429" -gt 0 ] || fail "the flooding device was never limited: $(sort "$T/flood.codes" | uniq -c)"
[ $(($(counter rate_limited) - before)) -ge "$n429" ] || fail "rate limiting not counted"
pass "the flooding device got $n200 x 200 and $n429 x 429 (counted as rate_limited)"
pass "dev-ok and dev-ok2 got 200 on every request during the flood"
echo "# latency (s) of the other devices' requests during the flood: $(echo "$lat" | tr ' ' '\n' |
  sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { printf "n=%d p50=%s p90=%s max=%s", NR, v[int(NR * 0.5) + 1], v[int(NR * 0.9) + 1], v[NR] }')"
legit_ok "replay and rate"
echo "# replay and rate: replay acknowledged once, stale refused, flood limited; other devices served"

[ "$(grep -c $'\e' "$T/gw.log")" -eq 0 ] || fail "raw escape bytes in the log"
finish
