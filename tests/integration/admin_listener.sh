#!/usr/bin/env bash
# The admin listener (/healthz, /metrics) is plain HTTP: the gateway refuses
# to put it off loopback unless told so, and then only with a bearer token;
# it serves a bounded number of connections.
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
stop_gateway
finish
