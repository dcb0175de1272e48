#!/usr/bin/env bash
# The admin listener (/healthz, /metrics) is plain HTTP: the gateway refuses
# to put it off loopback unless told so, and then only with a bearer token;
# it serves a bounded number of connections. It reads HTTP as strictly as
# the device listener: framing errors get a JSON 400 with Connection: close,
# counted and logged; wrong paths and methods get JSON 404 / 405 + Allow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-001
start_broker
TOKEN="$(openssl rand -hex 32)"
printf '%s\n' "$TOKEN" >"$T/admin.token"
chmod 600 "$T/admin.token"

# admin_config LINE...: the test config with admin_listen replaced.
admin_config() {
  write_gateway_config "$@"
  sed -i "s|^admin_listen = .*|admin_listen = ${ADMIN_LISTEN}|" "$T/gw.conf"
}

# --- configuration --------------------------------------------------------------
ADMIN_PORT="$(free_port)"
ADMIN_LISTEN="0.0.0.0:$ADMIN_PORT"
admin_config
out="$("$IOTGW" --check-config "$T/gw.conf" 2>&1)" && fail "admin_listen 0.0.0.0 accepted: $out"
grep -q "gw.conf:[0-9]*: admin_listen 0.0.0.0:$ADMIN_PORT is not a loopback address" <<<"$out" ||
  fail "the refusal does not name the address: $out"
pass "admin_listen off loopback is refused by default"
admin_config "admin_remote = yes"
out="$("$IOTGW" --check-config "$T/gw.conf" 2>&1)" && fail "admin_remote without a token accepted: $out"
grep -q "admin_remote = yes needs admin_token_file" <<<"$out" || fail "unclear refusal: $out"
pass "admin_remote = yes without admin_token_file is refused"
chmod 644 "$T/admin.token"
admin_config "admin_remote = yes" "admin_token_file = $T/admin.token"
out="$("$IOTGW" --check-config "$T/gw.conf" 2>&1)" && fail "a world-readable token file accepted: $out"
grep -q "admin_token_file" <<<"$out" || fail "unclear refusal: $out"
pass "a token file others may read is refused"
chmod 600 "$T/admin.token"
expect_ok "admin_remote with a protected token file is valid" "$IOTGW" --check-config "$T/gw.conf"

# --- authentication --------------------------------------------------------------
admin_config "admin_remote = yes" "admin_token_file = $T/admin.token" "admin_max_connections = 3"
start_gateway
grep -q "event=admin.exposed address=0.0.0.0:$ADMIN_PORT" "$T/gw.log" || fail "no warning at start: $(cat "$T/gw.log")"
pass "an exposed admin listener is logged at start"
code="$(curl -s -o "$T/r" -D "$T/h" -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/metrics")"
expect_eq "/metrics without the token" 401 "$code"
grep -q '"error":"unauthorized"' "$T/r" || fail "401 without a JSON reason: $(cat "$T/r")"
grep -qi '^WWW-Authenticate: Bearer' "$T/h" || fail "401 without WWW-Authenticate"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" "http://127.0.0.1:$ADMIN_PORT/healthz")"
expect_eq "/healthz with a wrong token" 401 "$code"
code="$(curl -s -o "$T/m" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics")"
expect_eq "/metrics with the token" 200 "$code"
n="$(awk '$1 ~ /reason="admin_unauthorized"/ { print $2 }' "$T/m")"
expect_eq "refused admin requests are counted as admin_unauthorized" 2 "$n"
grep -q 'event=admin.refused peer=127.0.0.1:[0-9]* reason=admin_unauthorized' "$T/gw.log" ||
  fail "the refusal is not logged with its peer"

# --- connection cap --------------------------------------------------------------
# Three keep-alive connections that made a request hold the three slots.
exec {c1}<>"/dev/tcp/127.0.0.1/$ADMIN_PORT" {c2}<>"/dev/tcp/127.0.0.1/$ADMIN_PORT" {c3}<>"/dev/tcp/127.0.0.1/$ADMIN_PORT"
for fd in $c1 $c2 $c3; do
  printf 'GET /healthz HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer %s\r\n\r\n' "$TOKEN" >&"$fd"
done
sleep 0.3
code="$(curl -s -o "$T/r" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/healthz")"
expect_eq "a request beyond admin_max_connections" 503 "$code"
grep -q '"error":"over_capacity"' "$T/r" || fail "503 without a JSON reason: $(cat "$T/r")"
exec {c1}>&- {c2}>&- {c3}>&-
sleep 0.3
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/healthz")"
expect_eq "once the idle connections are gone, the admin listener serves again" 200 "$code"
code="$(curl -s -o "$T/m" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics")"
n="$(awk '$1 ~ /reason="admin_over_capacity"/ { print $2 }' "$T/m")"
expect_eq "the connection over the cap is counted" 1 "$n"

# --- framing, paths, methods ----------------------------------------------------
# admin_counter REASON: iotgw_refusals_total{reason=REASON}, 0 if absent.
admin_counter() {
  curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk -v r="$1" 'index($1, "reason=\"" r "\"") { v = $2 } END { print v + 0 }'
}
# admin_raw REQUEST: sends REQUEST (backslash escapes as printf %b reads
# them) over one plain TCP connection and reads until the gateway closes it
# (5 s at most); the answer is in $T/ans, and it prints "closed" or "open".
admin_raw() {
  printf '%b' "$1" >"$T/raw-req"
  python3 "$IOT_SOURCE_DIR/tests/support/tools/exchange.py" "$ADMIN_PORT" "$T/raw-req" "$T/ans"
}
AUTH="Authorization: Bearer $TOKEN"

# framing CASE ERROR REQUEST: answered 400 with "error":ERROR in JSON and
# Connection: close, the connection closed, counted as http_framing, logged.
framing() {
  local what="$1" error="$2" req="$3" before state
  before="$(admin_counter http_framing)"
  state="$(admin_raw "$req")"
  expect_eq "$what: the connection is closed" closed "$state"
  head -n1 "$T/ans" | grep -q '^HTTP/1.1 400 ' || fail "$what: not 400: $(cat "$T/ans")"
  grep -qi '^Content-Type: application/json' "$T/ans" || fail "$what: not JSON: $(cat "$T/ans")"
  grep -qi '^Connection: close' "$T/ans" || fail "$what: no Connection: close: $(cat "$T/ans")"
  grep -q "\"error\":\"$error\"" "$T/ans" || fail "$what: not $error: $(cat "$T/ans")"
  expect_eq "$what: counted as http_framing" $((before + 1)) "$(admin_counter http_framing)"
}
framing "two different Content-Length headers" invalid_framing \
  "GET /metrics HTTP/1.1\r\nHost: gw\r\n$AUTH\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
framing "a request line ended by a lone LF" invalid_request \
  "GET /metrics HTTP/1.1\nHost: gw\r\n$AUTH\r\n\r\n"
framing "Transfer-Encoding with Content-Length" invalid_framing \
  "GET /healthz HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
grep -q 'event=admin.refused peer=127.0.0.1:[0-9]* reason=http_framing status=400 error=invalid_framing' "$T/gw.log" ||
  fail "an admin framing error is not logged as admin.refused"
pass "admin framing errors are logged as admin.refused with their peer"

before="$(admin_counter admin_protocol)"
admin_raw "GET /nope HTTP/1.1\r\nHost: gw\r\n$AUTH\r\nConnection: close\r\n\r\n" >/dev/null
head -n1 "$T/ans" | grep -q '^HTTP/1.1 404 ' || fail "an unknown admin path is not 404: $(cat "$T/ans")"
grep -q '"error":"not_found"' "$T/ans" || fail "404 without a JSON reason: $(cat "$T/ans")"
admin_raw "POST /metrics HTTP/1.1\r\nHost: gw\r\n$AUTH\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" >/dev/null
head -n1 "$T/ans" | grep -q '^HTTP/1.1 405 ' || fail "POST /metrics is not 405: $(cat "$T/ans")"
grep -qi '^Allow: GET, HEAD' "$T/ans" || fail "405 without Allow: GET, HEAD: $(cat "$T/ans")"
expect_eq "wrong admin paths and methods are counted as admin_protocol" $((before + 2)) "$(admin_counter admin_protocol)"

# Keep-alive and HEAD: two requests on one connection, both answered.
admin_raw "HEAD /metrics HTTP/1.1\r\nHost: gw\r\n$AUTH\r\n\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\n$AUTH\r\nConnection: close\r\n\r\n" >/dev/null
expect_eq "HEAD then GET on one admin connection" "200 200" \
  "$(grep -ao '^HTTP/1\.1 [0-9]*' "$T/ans" | awk '{ print $2 }' | tr '\n' ' ' | sed 's/ $//')"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/ans" || fail "HEAD /metrics: not Prometheus text"
grep -q '"status":"ok"' "$T/ans" || fail "the pipelined /healthz was not answered: $(cat "$T/ans")"
grep -q '^iotgw_' "$T/ans" && fail "HEAD /metrics carried a body"
pass "HEAD /metrics answers the headers only, and the connection serves the next request"
stop_gateway
finish
