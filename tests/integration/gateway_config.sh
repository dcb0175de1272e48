#!/usr/bin/env bash
# Configuration safety: --check-config, refusal of insecure settings, the
# loudly logged development mode, and startup errors that name the problem.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-001
start_broker
write_gateway_config
expect_ok "a complete configuration passes --check-config" "$IOTGW" --check-config "$T/gw.conf"
echo "$OUT" | grep -q "is valid" || fail "check-config output: $OUT"

chmod 644 "$P/servers/gateway/key.pem"
expect_fail "a TLS key readable by others is refused" 1 "tls_key.*(0644|mode)" "$IOTGW" --check-config "$T/gw.conf"
run "$IOTGW" --config "$T/gw.conf"
expect_eq "the daemon refuses to start with it" 2 "$RC"
chmod 600 "$P/servers/gateway/key.pem"

cp "$T/gw.conf" "$T/plain.conf"
printf 'device_tls = no\nrequire_client_cert = no\n' >>"$T/plain.conf"
expect_fail "a plaintext device listener needs development_mode" 1 "development_mode" \
  "$IOTGW" --check-config "$T/plain.conf"
cp "$T/gw.conf" "$T/nocert.conf"
echo "require_client_cert = no" >>"$T/nocert.conf"
expect_fail "optional client certificates need development_mode" 1 "require_client_cert.*development_mode" \
  "$IOTGW" --check-config "$T/nocert.conf"
echo "mqtt_hots = x" >>"$T/nocert.conf"
expect_fail "a misspelt key is named with a suggestion" 1 "unknown key 'mqtt_hots'.*mqtt_host" \
  "$IOTGW" --check-config "$T/nocert.conf"

# Development mode: plaintext, the device names itself, every insecure
# setting is logged as such.
echo "development_mode = yes" >>"$T/plain.conf"
cp "$T/plain.conf" "$T/gw.conf"
start_gateway
grep -q 'event=config.insecure key=device_tls' "$T/gw.log" || fail "plaintext mode not logged: $(cat "$T/gw.log")"
pass "development mode is logged loudly"
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.3
code="$(curl -s -o "$T/.resp" -w '%{http_code}' -H 'Content-Type: application/json' -H 'X-Device-Id: dev-001' \
  -d '{"seq":1,"temperature":20}' "http://127.0.0.1:$GW_PORT/v1/telemetry")"
expect_eq "development mode: plaintext POST with X-Device-Id" 200 "$code"
wait_for_lines "$SUB" 1 || fail "the development-mode reading did not arrive"
grep -q '^telemetry/dev-001/telemetry ' "$SUB" || fail "wrong topic: $(cat "$SUB")"
pass "it is published under the named device"
code="$(curl -s -o "$T/.resp" -w '%{http_code}' -H 'Content-Type: application/json' -H 'X-Device-Id: nobody' \
  -d '{"seq":1,"temperature":20}' "http://127.0.0.1:$GW_PORT/v1/telemetry")"
expect_eq "development mode: an unknown device is still refused" 403 "$code"
stop_gateway

# A second gateway on the same outbox (and so the same port) is refused.
write_gateway_config
start_gateway
run "$IOTGW" --config "$T/gw.conf"
[ "$RC" -ne 0 ] && echo "$ERR" | grep -q "in use by another iotgw" ||
  fail "a second gateway on the same outbox: exit $RC, stderr: $ERR"
pass "a second gateway on the same outbox is refused"
kill -0 "$GW_PID" || fail "the first gateway died"
stop_gateway

# Startup errors name what is wrong.
write_gateway_config
sed -i "s|^registry = .*|registry = $T/missing.db|" "$T/gw.conf"
expect_fail "a missing registry is named" 1 "missing.db" "$IOTGW" --check-config "$T/gw.conf"
write_gateway_config
busy_port="$BROKER_PORT"
sed -i "s|^device_listen = .*|device_listen = 127.0.0.1:$busy_port|" "$T/gw.conf"
run "$IOTGW" --config "$T/gw.conf"
[ "$RC" -ne 0 ] && echo "$ERR" | grep -q "cannot listen on 127.0.0.1:$busy_port" ||
  fail "a port in use: exit $RC, stderr: $ERR"
pass "a port in use is reported with the address"

finish
