#!/usr/bin/env bash
# The gateway on RabbitMQ (Debian's 3.10 with its MQTT plugin), the broker a
# cluster would run, over MQTT 3.1.1 (mqtt_protocol = 3.1.1) and TLS, the
# gateway logging in with its certificate (ssl_cert_login, the CN as user):
#  - readings arrive at a 3.1.1 consumer with a persistent session, kept on
#    a quorum queue (mqtt.durable_queue_type);
#  - a publish RabbitMQ refuses (its topic permissions) closes the
#    connection, as 3.1.1 has no refusal code: the gateway keeps the
#    readings, logs and counts mqtt.publish_refused and backs off instead of
#    reconnecting at once into the same refusal;
#  - once the permission is given, the readings kept arrive, none lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

. "$IOT_SOURCE_DIR/tests/support/rabbitmq.sh"
make_pki dev-1

# --- RabbitMQ of our own: its node, ports, epmd and cookie in $T/rmq -------------------
BROKER_PORT="$(free_port)"
rmq_setup "$T/rmq" "$BROKER_PORT" "$P/ca.crt" "$P/servers/broker/cert.pem" \
  "$P/servers/broker/key.pem" || fail "cannot set RabbitMQ up"
R="$T/rmq"
spawn epmd -port "$EPMD_PORT" # ours, stopped with the test
spawn "$RMQ_BIN/rabbitmq-server" >"$R/server.out" 2>&1
ctl() { rmq_ctl "$@"; }
rmq_wait 90 || fail "RabbitMQ did not start: $(tail -3 "$R/server.out")"
wait_port "$BROKER_PORT" 20 || fail "RabbitMQ's MQTT listener is not up: $(tail -3 "$R/server.out")"
rmq_cert_users gateway-mqtt consumer
# allow WRITE-PATTERN: what the gateway may publish (routing keys: / becomes
# .); a connection keeps the permissions it opened with, so the gateway's
# connections are closed for the change to apply (the gateway reconnects).
allow() {
  ctl -q set_topic_permissions -p / gateway-mqtt amq.topic "$1" ".*" >/dev/null
  ctl -q close_all_connections "permissions changed" >/dev/null 2>&1 || true
}
allow '^(telemetry|security|gateway)\..*'
pass "RabbitMQ $(ctl -q version 2>/dev/null) with MQTT over TLS and certificate login on $BROKER_PORT"

spawn mosquitto_sub -V mqttv311 -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" \
  --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
  -i "consumer-$$" -c -q 1 -t 'telemetry/#' -v >"$T/sub.out" 2>"$T/sub.err"
write_gateway_config "mqtt_protocol = 3.1.1"
start_gateway

SEQ=0
send() {
  local i r
  for i in $(seq 1 "$1"); do
    SEQ=$((SEQ + 1))
    r="$(post dev-1 application/json "{\"seq\":$SEQ,\"temperature\":20}")"
    [ "${r%% *}" = 200 ] || fail "reading $SEQ: $r"
  done
}
count() { grep -c '^telemetry/dev-1/telemetry ' "$T/sub.out" || true; }
arrived() { [ "$(count)" -ge "$1" ]; }
send 3
wait_until 20 "3 readings through RabbitMQ" arrived 3
pass "readings arrive through RabbitMQ over MQTT 3.1.1"
expect_eq "the consumer's session is a quorum queue" "quorum" \
  "$(ctl -q list_queues name type | awk -v c="consumer-$$" 'index($1, c) { print $2 }')"

# --- a refused publish ----------------------------------------------------------------------
allow '^(security|gateway)\..*'
refused_log() { grep -q 'event=mqtt.publish_refused ' "$T/gw.log"; }
send 2
wait_until 20 "mqtt.publish_refused in the gateway's log" refused_log
c0="$(metric iotgw_mqtt_connects_total)"
sleep 3
c1="$(metric iotgw_mqtt_connects_total)"
[ $((c1 - c0)) -le 12 ] || fail "the gateway reconnected $((c1 - c0)) times in 3 s into the same refusal"
pass "refused: logged, and the gateway backs off ($((c1 - c0)) reconnects in 3 s)"
[ "$(metric iotgw_mqtt_publish_refused_total)" -ge 1 ] || fail "iotgw_mqtt_publish_refused_total not counted"
pass "counted in iotgw_mqtt_publish_refused_total ($(metric iotgw_mqtt_publish_refused_total))"
expect_eq "the refused readings are kept in the outbox" 2 "$(metric iotgw_outbox_depth)"
expect_eq "and none reached the consumer" 3 "$(count)"

# --- permission given: the readings kept arrive ---------------------------------------------
allow '^(telemetry|security|gateway)\..*'
wait_until 30 "the 2 kept readings" arrived 5
wait_until 10 "the outbox to drain" test "$(metric iotgw_outbox_depth)" = 0
expect_eq "every acknowledged reading arrived once (dseq 1..5)" "1 2 3 4 5" \
  "$(awk '{ $1 = ""; print }' "$T/sub.out" | jq -r .dseq | sort -n | tr '\n' ' ' | sed 's/ $//')"
stop_gateway
ctl -q stop >/dev/null 2>&1 || true
finish
