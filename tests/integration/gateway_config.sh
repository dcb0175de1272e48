#!/usr/bin/env bash
# Configuration safety: --check-config, refusal of insecure settings, the
# loudly logged development mode, and startup errors that name the problem.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-001
start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
write_gateway_config
expect_ok "a complete configuration passes --check-config" "$IOTGW" --check-config "$T/gw.conf"
echo "$OUT" | grep -q "is valid" || fail "check-config output: $OUT"

chmod 644 "$P/servers/gateway/key.pem"
expect_fail "a TLS key readable by others is refused" 1 "tls_key.*(0644|mode)" "$IOTGW" --check-config "$T/gw.conf"
# Validation errors name the line that set the value, as parse errors do
# (tls_key is on line 4 of write_gateway_config's file).
echo "$ERR" | grep -qF "iotgw: error: $T/gw.conf:4: tls_key: private key $P/servers/gateway/key.pem has mode 0644" ||
  fail "the key-mode error does not name $T/gw.conf:4: $ERR"
pass "a key-mode error names the file and line of tls_key"
# Exit status: 1 for an invalid configuration, whichever option read it;
# 2 only for a wrong command line.
run "$IOTGW" --config "$T/gw.conf"
expect_eq "the daemon refuses to start with it, with --check-config's status" 1 "$RC"
echo "$ERR" | grep -qF "$T/gw.conf:4: tls_key: private key" || fail "--config's error lacks the line: $ERR"
chmod 600 "$P/servers/gateway/key.pem"
expect_fail "an unknown option is a command-line error" 2 "unknown option" "$IOTGW" --confg "$T/gw.conf"
expect_fail "a missing file argument is a command-line error" 2 "usage" "$IOTGW" --config "$T/gw.conf" extra
expect_fail "a configuration that does not parse exits 1 with --config" 1 "unknown key 'mqtt_hots' at $T/bad.conf:1" \
  bash -c "echo 'mqtt_hots = x' >'$T/bad.conf' && exec '$IOTGW' --config '$T/bad.conf'"

# Rules between keys and values checked after parsing carry the line too.
cp "$T/gw.conf" "$T/lines.conf"
sed -i '/^reconnect_m/d' "$T/lines.conf"
n="$(wc -l <"$T/lines.conf")"
printf 'reconnect_max = 2s\nreconnect_min = 5s\n' >>"$T/lines.conf"
run "$IOTGW" --check-config "$T/lines.conf"
expect_eq "reconnect_min > reconnect_max names both lines" \
  "1 iotgw: error: $T/lines.conf:$((n + 2)): reconnect_min (5s) is greater than reconnect_max (2s); it must not be (reconnect_max is set at line $((n + 1)))" \
  "$RC $ERR"
sed -i '/^reconnect_m/d' "$T/lines.conf"
echo "reconnect_min = 1m" >>"$T/lines.conf"
run "$IOTGW" --check-config "$T/lines.conf"
expect_eq "against a default, the default is named" \
  "1 iotgw: error: $T/lines.conf:$((n + 1)): reconnect_min (1m) is greater than reconnect_max (30s); it must not be (reconnect_max is its default)" \
  "$RC $ERR"
sed -i '/^reconnect_m/d; /^registry = /d' "$T/lines.conf"
expect_fail "a required key that is not set names the file" 1 "iotgw: error: $T/lines.conf: required key 'registry' is not set" \
  "$IOTGW" --check-config "$T/lines.conf"
cp "$T/gw.conf" "$T/lines.conf"
sed -i "s|^outbox = .*|outbox = $T/no/such/dir/outbox.db|" "$T/lines.conf"
expect_fail "a missing outbox directory names the line of outbox" 1 "$T/lines.conf:8: outbox: directory $T/no/such/dir" \
  "$IOTGW" --check-config "$T/lines.conf"
cp "$T/gw.conf" "$T/lines.conf"
echo "require_client_cert = no" >>"$T/lines.conf"
expect_fail "a refused insecure setting names its line" 1 \
  "$T/lines.conf:$(wc -l <"$T/lines.conf"): require_client_cert = no is refused unless development_mode = yes" \
  "$IOTGW" --check-config "$T/lines.conf"

# --version names the libraries it runs with, at the versions installed.
run "$IOTGW" --version
[ "$RC" -eq 0 ] || fail "--version: exit $RC: $ERR"
# deb_upstream PACKAGE: the upstream part of an installed package's version.
deb_upstream() { dpkg-query -W -f='${Version}' "$1" | sed -E 's/^[0-9]+://; s/-[^-]*$//; s/\+.*$//'; }
expect_eq "--version: the gateway's own version first" "iotgw" "$(echo "$OUT" | head -1 | cut -d' ' -f1)"
expect_eq "--version: OpenSSL, from the installed package" \
  "OpenSSL $(deb_upstream libssl3)" "$(echo "$OUT" | grep '^OpenSSL ')"
expect_eq "--version: libevent, from the installed package" \
  "libevent $(deb_upstream libevent-2.1-7)" "$(echo "$OUT" | grep '^libevent ')"
expect_eq "--version: libmosquitto, from the installed package" \
  "libmosquitto $(deb_upstream libmosquitto1)" "$(echo "$OUT" | grep '^libmosquitto ')"
expect_eq "--version: SQLite, as the sqlite3 program reports the library" \
  "SQLite $(sqlite3 --version | awk '{print $1}')" "$(echo "$OUT" | grep '^SQLite ')"
expect_eq "--version: cJSON, from the installed package" \
  "cJSON $(deb_upstream libcjson1)" "$(echo "$OUT" | grep '^cJSON ')"

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
# Logged while the configuration is read, before the stream starts: it
# arrives once the stream is up.
expect_stream config.insecure '.severity == "warning" and (.log | contains("key=device_tls")) and .detail != null'
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

expect_stream_valid
finish
