#!/usr/bin/env bash
# The fleet console's contract (docs/console.md, API): the real iotconsole
# against a registry and rollout file made by iotctl, a real gateway (its
# GET /fleet) and a real Mosquitto (readings and security events, with the
# console's own read-only role of deploy/broker/acl). curl and jq check
# every endpoint's schema, that nothing is readable without a session, the
# CSRF and Origin checks of every action, the cookie and the security
# headers, that a revocation and a pause show at once, the audit log, the
# live stream, and hostile input answered 4xx with a JSON reason.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/console_lib.sh"

make_pki dev-1 dev-2 dev-3
console_pki
for d in dev-1 dev-2 dev-3; do "$IOTCTL" --dir "$P" device set-class "$d" sensor >/dev/null; done
BROKER_ACL="$IOT_SOURCE_DIR/deploy/broker/acl"
start_broker
admin_token
write_gateway_config "rate_limit = 0" "admin_token_file = $T/admin.token"
start_gateway

# A release and a rollout of it to two devices, in the file iotctl uses.
DB="$T/rollouts.db"
"$IOTCTL" --dir "$P" firmware key create --name rel >/dev/null
head -c 5000 /dev/urandom >"$T/img.bin"
"$IOTCTL" --dir "$P" firmware sign --image "$T/img.bin" --vendor acme --class sensor \
  --version 2.0.0 --secure-version 1 --key rel --out "$T/m" >/dev/null
"$IOTCTL" --dir "$P" firmware add --manifest "$T/m" --image "$T/img.bin" >/dev/null
"$IOTCTL" --dir "$P" rollout create r-2 --firmware 2.0.0 --devices dev-1,dev-3 --db "$DB" >/dev/null

write_console_config "rollouts = $DB"
start_console
O="$ORIGIN"

# --- refused without a session ------------------------------------------------------------
for path in /api/v1/devices /api/v1/devices/dev-1 /api/v1/certificates /api/v1/rollouts \
  /api/v1/events /api/v1/audit /api/v1/session /api/v1/status /api/v1/stream; do
  code="$(curl -s --cacert "$P/ca.crt" -o "$T/r" -w '%{http_code}' "$O$path")"
  [ "$code" = 401 ] && jq -e '.error == "unauthenticated"' "$T/r" >/dev/null ||
    fail "$path without a session: $code $(cat "$T/r")"
done
pass "every API endpoint answers 401 JSON without a session"
for path in / /rollouts /audit /static/app.js /static/chart.js; do
  hdr="$(curl -s --cacert "$P/ca.crt" -o /dev/null -D - "$O$path")"
  grep -q '^HTTP/1.1 303' <<<"$hdr" && grep -qi '^Location: /login' <<<"$hdr" ||
    fail "$path without a session is not sent to /login: $hdr"
done
pass "pages and their scripts redirect to /login without a session"
code="$(curl -s --cacert "$P/ca.crt" -o /dev/null -w '%{http_code}' -X POST -H "Origin: $O" \
  "$O/api/v1/rollouts/r-2/pause")"
expect_eq "an action without a session is 401" 401 "$code"
expect_eq "the login page is public" 200 \
  "$(curl -s --cacert "$P/ca.crt" -o /dev/null -w '%{http_code}' "$O/login")"
expect_eq "its script is public" 200 \
  "$(curl -s --cacert "$P/ca.crt" -o /dev/null -w '%{http_code}' "$O/static/login.js")"

# --- security headers on every answer -----------------------------------------------------
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
for path in /login /api/v1/devices /nope; do
  hdr="$(curl -s --cacert "$P/ca.crt" -o /dev/null -D - "$O$path" | tr -d '\r')"
  grep -qxF "Content-Security-Policy: $CSP" <<<"$hdr" || fail "$path: CSP missing: $hdr"
  grep -qx 'X-Content-Type-Options: nosniff' <<<"$hdr" || fail "$path: nosniff missing"
  grep -qx 'Referrer-Policy: no-referrer' <<<"$hdr" || fail "$path: Referrer-Policy missing"
  grep -q '^Strict-Transport-Security: max-age=' <<<"$hdr" || fail "$path: HSTS missing"
  grep -qx 'Cache-Control: no-store' <<<"$hdr" || fail "$path: Cache-Control missing"
done
pass "CSP, nosniff, Referrer-Policy, HSTS and no-store on pages, API and refusals"
if curl -s --cacert "$P/ca.crt" "$O/login" | grep -Eiq '<script>|<style|style=|onclick=|onsubmit='; then
  fail "the login page has inline script or style"
fi
pass "no inline script or style in the login page"

# --- TLS ---------------------------------------------------------------------------------------
tls() { openssl s_client -connect "127.0.0.1:$CONSOLE_PORT" -servername localhost \
  -CAfile "$P/ca.crt" "$@" </dev/null >"$T/tls.out" 2>&1; }
tls -tls1_3 || fail "TLS 1.3 refused: $(tail -5 "$T/tls.out")"
grep -q 'Verify return code: 0 (ok)' "$T/tls.out" || fail "the console's certificate does not verify"
if tls -tls1_1; then fail "TLS 1.1 accepted"; fi
if tls -tls1_2 -cipher 'AES128-SHA'; then fail "a non-ECDHE, non-AEAD suite accepted"; fi
pass "TLS 1.3 with a certificate of our CA; TLS 1.1 and static-RSA CBC suites refused"

# --- login ---------------------------------------------------------------------------------
login_body() { jq -cn --arg o "$1" --arg p "$2" '{operator: $o, password: $p}'; }
code="$(ccurl -o "$T/r" -w '%{http_code}' -H "Origin: $O" -H 'Content-Type: application/json' \
  -d "$(login_body alice wrong-password-here)" "$O/login")"
expect_eq "a wrong password is 401" "401 login_failed" "$code $(jq -r .error "$T/r")"
code="$(ccurl -o "$T/r" -w '%{http_code}' -H "Origin: $O" -H 'Content-Type: application/json' \
  -d "$(login_body mallory wrong-password-here)" "$O/login")"
expect_eq "an unknown operator is the same 401" "401 login_failed" "$code $(jq -r .error "$T/r")"
code="$(ccurl -o "$T/r" -w '%{http_code}' -H "Origin: https://evil.example" \
  -H 'Content-Type: application/json' -d "$(login_body alice "$CONSOLE_PASSWORD")" "$O/login")"
expect_eq "a login from another origin is 403" "403 origin_mismatch" "$code $(jq -r .error "$T/r")"
[ ! -s "$T/jar" ] || ! grep -q __Host- "$T/jar" || fail "a refused login set a cookie"
hdr="$(ccurl -D - -o "$T/r" -H "Origin: $O" -H 'Content-Type: application/json' \
  -d "$(login_body alice "$CONSOLE_PASSWORD")" "$O/login" | tr -d '\r')"
cookie="$(grep -i '^Set-Cookie:' <<<"$hdr")"
[[ "$cookie" =~ ^Set-Cookie:\ __Host-iotconsole=[0-9a-f]{64}\; ]] || fail "session cookie: $cookie"
for attr in Secure HttpOnly SameSite=Strict Path=/; do
  grep -q "; $attr" <<<"$cookie" || fail "cookie lacks $attr: $cookie"
done
! grep -qi 'Domain=' <<<"$cookie" || fail "a __Host- cookie must not name a Domain: $cookie"
CSRF="$(jq -r .csrf_token "$T/r")"
[[ "$CSRF" =~ ^[0-9a-f]{64}$ ]] || fail "csrf token: $CSRF"
pass "login sets __Host-iotconsole (256-bit, Secure, HttpOnly, SameSite=Strict, Path=/) and gives a CSRF token"
expect_eq "the session names its operator and token" "alice $CSRF" \
  "$(ccurl "$O/api/v1/session" | jq -r '"\(.operator) \(.csrf_token)"')"

# --- devices --------------------------------------------------------------------------------
now=$(date +%s)
for i in 1 2 3; do
  r="$(post dev-1 application/senml+json "[{\"bn\":\"dev-1:\",\"bt\":$now,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":2$i.5,\"seq\":$i}]")"
  [ "${r%% *}" = 200 ] || [ "${r%% *}" = 202 ] || fail "reading $i: $r"
done
devices() { ccurl "$O/api/v1/devices$1"; }
devices "" | jq -e '.count == 3 and (.devices | length == 3) and (.generated | type == "number") and
  all(.devices[]; (.id | type == "string") and (.state | IN("active", "revoked")) and
    (.revoked | type == "boolean") and (.not_after | type == "number") and
    (.cert_days_left | type == "number") and (.class == "sensor") and
    (.online | type == "boolean") and (.last_seen | type == "number") and
    (.gateway | type == "string") and (.readings_per_min | type == "number") and
    (.dropped | type == "number"))' >/dev/null || fail "devices schema: $(devices "")"
pass "GET /api/v1/devices: 3 devices, each with its identity, certificate, fleet and rate fields"
dev1_seen() { devices "" | jq -e --arg g "127.0.0.1:$ADMIN_PORT" \
  '.devices[] | select(.id == "dev-1") | .online and .last_seen > 0 and .gateway == $g' >/dev/null; }
wait_until 15 "dev-1 online through the gateway's /fleet" dev1_seen
pass "dev-1 is online, last seen by the gateway 127.0.0.1:$ADMIN_PORT (GET /fleet)"
dev1_readings() { ccurl "$O/api/v1/devices/dev-1" | jq -e '(.readings | length) >= 3' >/dev/null; }
wait_until 15 "dev-1's readings from MQTT" dev1_readings
ccurl "$O/api/v1/devices/dev-1" | jq -e '.id == "dev-1" and .readings_total >= 3 and
  .readings_per_min >= 1 and (.readings[-1].values[0].n == "temperature") and
  (.certificates | length == 1) and (.certificates[0].serial | test("^[0-9A-F]+$")) and
  (.firmware_history | length == 1) and .firmware_history[0].rollout == "r-2" and
  (.events | type == "array")' >/dev/null || fail "device schema: $(ccurl "$O/api/v1/devices/dev-1")"
pass "GET /api/v1/devices/dev-1: certificates, firmware history, events, readings from MQTT"
# The firmware and the slot it runs from, as the device's health report gave them to the gateway.
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" --cert "$P/devices/dev-1/cert.pem" \
  --key "$P/devices/dev-1/key.pem" -H 'Content-Type: application/json' --data-binary \
  '{"firmware":"2.0.0","secure_version":2,"boot_count":3,"reset_reason":"software","connect_failures":0,"since_upload_s":5,"slot":"ota_1"}' \
  "https://localhost:$GW_PORT/v1/device/health")"
expect_eq "dev-1's health report" 204 "$code"
dev1_fw() { ccurl "$O/api/v1/devices/dev-1" | jq -e '.firmware == "2.0.0" and .slot == "ota_1"' >/dev/null; }
wait_until 15 "dev-1's firmware and slot through the gateway's /fleet" dev1_fw
pass "the device's firmware and running slot, from its health report through the gateway"
expect_eq "sorted by id, descending" "dev-3 dev-2 dev-1" \
  "$(devices "?sort=id&order=desc" | jq -r '[.devices[].id] | join(" ")')"
expect_eq "filtered by name" "dev-2" "$(devices "?q=v-2" | jq -r '[.devices[].id] | join(" ")')"
expect_eq "filtered online" "dev-1" "$(devices "?state=online" | jq -r '[.devices[].id] | join(" ")')"
csv="$(devices "?format=csv&sort=id")"
expect_eq "CSV export: header" "id,state,online,last_seen,firmware,slot,not_after,cert_days_left,gateway,readings_per_min,dropped,class" \
  "$(head -1 <<<"$csv" | tr -d '\r')"
expect_eq "CSV export: one row a device" 4 "$(grep -c . <<<"$csv")"

# --- revocation shows at once ---------------------------------------------------------------
"$IOTCTL" --dir "$P" device revoke dev-2 >/dev/null
expect_eq "dev-2 revoked in the API right after iotctl device revoke" "revoked true" \
  "$(ccurl "$O/api/v1/devices/dev-2" | jq -r '"\(.state) \(.revoked)"')"
expect_eq "filter state=revoked" "dev-2" "$(devices "?state=revoked" | jq -r '[.devices[].id] | join(" ")')"

# --- certificates ---------------------------------------------------------------------------
ccurl "$O/api/v1/certificates?days=400" | jq -e '.days == 400 and
  ([.certificates[].name] | index("dev-1") != null and index("console") != null and
   index("dev-2") == null) and all(.certificates[]; (.kind | type == "string") and
   (.days_left | type == "number") and .revoked == false)' >/dev/null ||
  fail "certificates: $(ccurl "$O/api/v1/certificates?days=400")"
expect_eq "certificates within 30 days: none yet" 0 \
  "$(ccurl "$O/api/v1/certificates" | jq '.certificates | length')"
pass "GET /api/v1/certificates?days=N lists live certificates of every kind expiring within N days"

# --- rollouts and actions -------------------------------------------------------------------
ccurl "$O/api/v1/rollouts" | jq -e '.rollouts | length == 1 and .[0].name == "r-2" and
  .[0].state == "running" and .[0].version == "2.0.0" and .[0].devices == 2 and
  (.[0].waves | length >= 2) and (.[0].waves[0] | has("confirmed") and has("devices")) and
  (.[0].counts | has("pending"))' >/dev/null || fail "rollouts: $(ccurl "$O/api/v1/rollouts")"
pass "GET /api/v1/rollouts: state, release, per-wave progress, counts"
action() { # action WHAT WANT-STATUS WANT-ERROR CURL-ARGS...
  local what="$1" want="$2" err="$3" code; shift 3
  code="$(ccurl -o "$T/r" -w '%{http_code}' -X POST "$@" "$O/api/v1/rollouts/r-2/pause")"
  expect_eq "$what" "$want $err" "$code $(jq -r .error "$T/r")"
}
action "pause without token or Origin: 403" 403 origin_missing
action "pause without the token: 403" 403 csrf_token_missing -H "Origin: $O"
action "pause with a wrong token: 403" 403 csrf_token_mismatch -H "Origin: $O" \
  -H "X-CSRF-Token: $(printf '0%.0s' {1..64})"
action "pause from another origin: 403" 403 origin_mismatch -H "Origin: https://evil.example" \
  -H "X-CSRF-Token: $CSRF"
action "pause by GET is not an action" 405 method_not_allowed -X GET
expect_eq "the rollout is still running" running \
  "$(ccurl "$O/api/v1/rollouts" | jq -r '.rollouts[0].state')"
r="$(cpost /api/v1/rollouts/r-2/pause)"
expect_eq "pause with token and Origin" "200 paused" "${r%% *} $(jq -r .state <<<"${r#* }")"
"$IOTCTL" --dir "$P" rollout status r-2 --json --db "$DB" | jq -e '.state == "paused" and
  .pause_reason == "operator"' >/dev/null || fail "iotctl does not see the pause"
pass "the pause is in the rollout file iotctl reads"
r="$(cpost /api/v1/rollouts/r-2/pause)"
expect_eq "pause again: 409" "409 conflict" "${r%% *} $(jq -r .error <<<"${r#* }")"
r="$(cpost /api/v1/rollouts/nope/pause)"
expect_eq "pause an unknown rollout: 404" "404 not_found" "${r%% *} $(jq -r .error <<<"${r#* }")"
r="$(cpost /api/v1/rollouts/r-2/explode)"
expect_eq "an unknown action: 404" "404 not_found" "${r%% *} $(jq -r .error <<<"${r#* }")"
ccurl "$O/api/v1/audit" | jq -e '.audit | map(select(.action == "rollout.pause" and
  .target == "r-2" and .result == "ok" and .operator == "alice" and .address == "127.0.0.1" and
  (.time | type == "number"))) | length == 1' >/dev/null || fail "audit: $(ccurl "$O/api/v1/audit")"
pass "the pause is in GET /api/v1/audit with operator, time, address, target and result"
ccurl "$O/api/v1/audit" | jq -e '[.audit[].action] | index("login") != null and
  index("login_failed") != null and index("csrf_refused") != null' >/dev/null ||
  fail "audit lacks logins or refusals: $(ccurl "$O/api/v1/audit")"
pass "logins, failed logins and refused actions are in the audit log"
r="$(cpost /api/v1/rollouts/r-2/resume)"
expect_eq "resume" "200 running" "${r%% *} $(jq -r .state <<<"${r#* }")"

# --- security events from the broker, acknowledged ---------------------------------------
r="$(post dev-1 'application/senml+json' "[{\"bn\":\"dev-3:\",\"bt\":$now,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":1}]")"
[ "${r%% *}" = 403 ] || fail "dev-1 speaking for dev-3: $r"
has_event() { ccurl "$O/api/v1/events" | jq -e '.events | length > 0' >/dev/null; }
wait_until 20 "a security event through MQTT" has_event
ccurl "$O/api/v1/events" | jq -e 'all(.events[]; (.id | type == "number") and
  (.type | type == "string") and (.severity | type == "string") and
  (.topic | startswith("security/")) and (.document | type == "object") and
  .acknowledged == false)' >/dev/null || fail "events: $(ccurl "$O/api/v1/events")"
pass "GET /api/v1/events: security events from the broker, with type, severity and document"
id="$(ccurl "$O/api/v1/events" | jq '.events[0].id')"
r="$(cpost "/api/v1/events/$id/ack")"
expect_eq "acknowledge" "200 true" "${r%% *} $(jq -r .acknowledged <<<"${r#* }")"
r="$(cpost "/api/v1/events/$id/ack")"
expect_eq "acknowledge twice: 409" "409 conflict" "${r%% *} $(jq -r .error <<<"${r#* }")"
r="$(cpost /api/v1/events/abc/ack)"
expect_eq "acknowledge a bad id: 400" "400 invalid_event_id" "${r%% *} $(jq -r .error <<<"${r#* }")"
ccurl "$O/api/v1/events?unacked=1" | jq -e --argjson id "$id" \
  '[.events[].id] | index($id) == null' >/dev/null || fail "unacked lists the acknowledged event"
ccurl "$O/api/v1/events" | jq -e --argjson id "$id" '.events[] | select(.id == $id) |
  .acknowledged and .acknowledged_by == "alice"' >/dev/null || fail "ack not recorded"
pass "the acknowledgement is kept, with who, and filtered out by unacked=1"

# --- the live stream ------------------------------------------------------------------------
: >"$T/sse"
ccurl -N --max-time 6 "$O/api/v1/stream" >"$T/sse" 2>/dev/null &
SSE_PID=$!
_PIDS+=("$SSE_PID")
sleep 1
post dev-1 application/senml+json "[{\"bn\":\"dev-1:\",\"bt\":$now,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":30.5,\"seq\":9}]" >/dev/null
stream_has_reading() { grep -q '^event: reading' "$T/sse"; }
wait_until 5 "a reading on the live stream" stream_has_reading
grep '^data: ' "$T/sse" | head -1 | cut -c7- | jq -e '.device == "dev-1"' >/dev/null ||
  fail "stream data: $(cat "$T/sse")"
pass "GET /api/v1/stream pushes a new reading as a Server-Sent Event"
wait "$SSE_PID" 2>/dev/null || true

# --- hostile input --------------------------------------------------------------------------
bad() { # bad WHAT STATUS ERROR PATH [CURL-ARGS...]
  local what="$1" want="$2" err="$3" path="$4" code; shift 4
  code="$(ccurl -o "$T/r" -w '%{http_code}' "$@" "$O$path")"
  expect_eq "$what" "$want $err" "$code $(jq -r .error "$T/r" 2>/dev/null)"
}
long="/api/v1/devices/$(head -c 700 /dev/zero | tr '\0' a)"
code="$(ccurl -o "$T/r" -w '%{http_code}' "$O$long")"
[[ "$code" =~ ^4 ]] && jq -e '.error | type == "string"' "$T/r" >/dev/null ||
  fail "a 700-byte path: $code $(cat "$T/r")"
pass "a 700-byte path is answered $code with a JSON reason"
bad "a bad device id" 400 invalid_device_id "/api/v1/devices/bad*id"
bad "an unknown device" 404 not_found /api/v1/devices/ghost
bad "percent-encoding in the path" 400 invalid_target /api/v1/devices/dev%2d1
bad "a dot segment" 400 invalid_target /api/v1/../api/v1/devices --path-as-is
bad "an unknown query parameter" 400 invalid_query "/api/v1/devices?evil=1"
bad "a bad sort" 400 invalid_query "/api/v1/devices?sort=password"
bad "a parameter twice" 400 invalid_target "/api/v1/devices?q=a&q=b"
bad "days out of range" 400 invalid_query "/api/v1/certificates?days=99999"
bad "a bad limit" 400 invalid_query "/api/v1/audit?limit=-1"
bad "an unknown endpoint" 404 not_found /api/v1/secrets
bad "an unknown page" 404 not_found /static/..hidden.js
bad "PUT" 405 method_not_allowed /api/v1/devices -X PUT -H "Origin: $O" -H "X-CSRF-Token: $CSRF"
bad "bad JSON at login" 400 invalid_login /login -H "Origin: $O" -H 'Content-Type: application/json' -d '{"operator":'
bad "a login that is not JSON" 400 invalid_login /login -H "Origin: $O" -d 'operator=alice'
code="$(ccurl -o "$T/r" -w '%{http_code}' -H "Origin: $O" -H 'Content-Type: application/json' \
  --data-binary "@<(head -c 10000 /dev/zero | tr '\0' x)" "$O/login")"
[[ "$code" =~ ^4 ]] && jq -e '.error | type == "string"' "$T/r" >/dev/null ||
  fail "a 10 kB login body: $code $(cat "$T/r")"
pass "a 10 kB body is answered $code with a JSON reason"
code="$(ccurl -o "$T/r" -w '%{http_code}' -H "Cookie: a=b" -H "Cookie: c=d" "$O/api/v1/devices")"
expect_eq "two Cookie headers: 400" "400 invalid_header" "$code $(jq -r .error "$T/r")"
ccurl "$O/api/v1/status" | jq -e '.refused.bad_request >= 8 and .refused.csrf >= 4 and
  .refused.unauthenticated >= 9 and (.gateways[0].ok == true) and .mqtt.connected' >/dev/null ||
  fail "status: $(ccurl "$O/api/v1/status")"
pass "refusals are counted by reason in GET /api/v1/status"
jq -s -e 'map(select(.event == "console.refused" and .reason == "bad_request")) | length >= 8' \
  "$T/console.log" >/dev/null || fail "refusals not logged as console.refused"
pass "refusals are logged as console.refused with their reason"

# --- logout, removed operator ------------------------------------------------------------
# A stream opened in this session (its own curl: it must not write the jar).
curl -sS -N --max-time 20 --cacert "$P/ca.crt" -b "$T/jar" "$O/api/v1/stream" >"$T/sse2" 2>&1 &
STREAM_PID=$!
_PIDS+=("$STREAM_PID")
sleep 1
r="$(cpost /logout)"
expect_eq "logout" 200 "${r%% *}"
post dev-1 application/senml+json "[{\"bn\":\"dev-1:\",\"bt\":$now,\"n\":\"temperature\",\"u\":\"Cel\",\"v\":31.5,\"seq\":10}]" >/dev/null
stream_gone() { ! kill -0 "$STREAM_PID" 2>/dev/null; }
wait_until 10 "the stream of a logged-out session to end" stream_gone
! grep -q '^event: reading' "$T/sse2" || fail "a reading reached the stream after logout: $(cat "$T/sse2")"
pass "logout ends the session's live stream before the next reading reaches it"
expect_eq "the session is gone after logout" 401 \
  "$(ccurl -o /dev/null -w '%{http_code}' "$O/api/v1/devices")"
"$IOTCTL" --dir "$P" cert client carol --role consumer >/dev/null # a name no operator has
echo "$CONSOLE_PASSWORD-2" | "$IOTCTL" --dir "$P" operator add dave >/dev/null
rm -f "$T/jar"
console_login dave "$CONSOLE_PASSWORD-2"
expect_eq "dave's session works" 200 "$(ccurl -o /dev/null -w '%{http_code}' "$O/api/v1/devices")"
"$IOTCTL" --dir "$P" operator remove dave >/dev/null
expect_eq "a removed operator's session ends at once" 401 \
  "$(ccurl -o /dev/null -w '%{http_code}' "$O/api/v1/devices")"
ccurl -s -o /dev/null "$O/api/v1/devices" || true
expect_eq "the operators file stays 0600" 600 "$(file_mode "$P/operators")"

# --- login rate limit (last: it uses up this address's attempts) ---------------------------
# login_burst 5 at login_rate 5 a minute: within a few quick attempts, 429.
n=0
code=000
while [ "$code" != 429 ] && [ "$n" -lt 10 ]; do
  n=$((n + 1))
  code="$(curl -s --cacert "$P/ca.crt" -o "$T/r" -w '%{http_code}' -H "Origin: $O" \
    -H 'Content-Type: application/json' -d "$(login_body bob wrong-password-here)" "$O/login")"
done
expect_eq "quick failed logins are rate-limited" "429 too_many_logins" "$code $(jq -r .error "$T/r")"
[ "$n" -le 6 ] || fail "the limit took $n attempts"
code="$(curl -s --cacert "$P/ca.crt" -o "$T/r" -w '%{http_code}' -H "Origin: $O" \
  -H 'Content-Type: application/json' -d "$(login_body alice "$CONSOLE_PASSWORD")" "$O/login")"
expect_eq "then even the right password waits" "429" "$code"
ccurl "$O/api/v1/audit" >/dev/null 2>&1 || true
sqlite3 "$T/console.db" "SELECT count(*) FROM audit WHERE result = 'rate_limited'" |
  { read -r c; [ "$c" -ge 2 ] || fail "rate-limited logins not audited: $c"; }
pass "rate-limited logins are in the audit log"

# --- stream cap and slow clients (a restart: sessions, limits are in memory) -------------
kill "$CONSOLE_PID"
wait "$CONSOLE_PID" 2>/dev/null || true
jq -s -e 'map(select(.event == "console.stopped")) | length == 1' "$T/console.log" >/dev/null ||
  fail "iotconsole did not stop cleanly on SIGTERM: $(tail -20 "$T/console.log")"
pass "SIGTERM stops the console cleanly (under ASan: no leak, no error)"
printf 'sse_max_clients = 1\nsse_queue_kib = 16\n' >>"$T/console.conf"
start_console
rm -f "$T/jar"
console_login
# A client that opens a stream and never reads (a small receive buffer so
# the kernel holds little for it).
cookie="$(awk '$6 == "__Host-iotconsole" { print $7 }' "$T/jar")"
/usr/bin/python3 - "$P/ca.crt" "$CONSOLE_PORT" "$cookie" >"$T/slow.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", int(sys.argv[2])))
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(("GET /api/v1/stream HTTP/1.1\r\nHost: localhost\r\nCookie: __Host-iotconsole=%s\r\n\r\n"
           % sys.argv[3]).encode())
time.sleep(60)
PY
_PIDS+=("$!")
stream_open() { ccurl "$O/api/v1/status" | jq -e '.streams == 1' >/dev/null; }
wait_until 10 "the slow client's stream" stream_open
code="$(ccurl -o "$T/r" -w '%{http_code}' --max-time 4 "$O/api/v1/stream")"
expect_eq "a stream over sse_max_clients is refused" "503 too_many_streams" \
  "$code $(jq -r .error "$T/r")"
# Readings in batches of 60 (max_readings is 64) until the slow client is dropped.
seq=100
dropped() { ccurl "$O/api/v1/status" | jq -e '.streams_dropped >= 1 and .streams == 0' >/dev/null; }
for _ in $(seq 1 40); do
  body="$(jq -cn --argjson now "$now" --argjson s "$seq" '[range(0; 60) as $i |
    {bn: "dev-1:", bt: ($now - 3000 + $s + $i), n: "temperature", u: "Cel", v: $i, seq: ($s + $i)}]')"
  r="$(post dev-1 application/senml+json "$body")"
  [ "${r%% *}" = 200 ] || fail "a batch of readings: $r"
  seq=$((seq + 60))
  ! dropped || break
done
dropped || fail "the slow stream client was not dropped: $(ccurl "$O/api/v1/status")"
pass "a stream client that does not read is dropped and counted (after $((seq - 100)) readings)"
jq -s -e 'map(select(.event == "console.stream_dropped")) | length == 1' "$T/console.log" \
  >/dev/null || fail "the drop is not logged"
pass "the drop is logged as console.stream_dropped"

kill "$CONSOLE_PID"
wait "$CONSOLE_PID" 2>/dev/null || true
jq -s -e 'map(select(.event == "console.stopped")) | length == 2' "$T/console.log" >/dev/null ||
  fail "the second iotconsole did not stop cleanly: $(tail -20 "$T/console.log")"
pass "the console that served streams and dropped one stops cleanly too"

# --- secure defaults at start --------------------------------------------------------------
chmod 644 "$P/servers/console/key.pem"
run "$IOTCONSOLE" --config "$T/console.conf" --check-config
[ "$RC" -ne 0 ] && grep -q 'console.start_failed' <<<"$ERR" ||
  fail "a world-readable key was accepted: $RC $ERR"
pass "a TLS key readable by others is refused"
chmod 600 "$P/servers/console/key.pem"
write_console_config "listen_remote = no" "origin = https://console.example"
sed -i "s/^listen = .*/listen = 0.0.0.0:$CONSOLE_PORT/" "$T/console.conf"
run "$IOTCONSOLE" --config "$T/console.conf" --check-config
[ "$RC" -ne 0 ] && grep -q 'loopback' <<<"$ERR" || fail "a non-loopback listen was accepted: $ERR"
pass "listening beyond loopback needs listen_remote = yes"

# --- logins over all addresses: login_rate_total -------------------------------------------
# Per address and operator the limit is lifted here; over all of them, 10
# at once and then 1 a minute: what many addresses together would get.
write_console_config "login_rate = 6000" "login_burst = 1000" "login_rate_total = 1"
start_console
codes=""
for _ in $(seq 1 11); do
  codes+="$(curl -s --cacert "$P/ca.crt" -o "$T/r" -w '%{http_code}' -H "Origin: $O" \
    -H 'Content-Type: application/json' -d "$(login_body bob wrong-password-here)" "$O/login") "
done
expect_eq "10 failed logins refused as such, the 11th over login_rate_total" \
  "401 401 401 401 401 401 401 401 401 401 429 " "$codes"
pass "login attempts are bounded over all addresses (login_rate_total)"

finish
