#!/usr/bin/env bash
# The forwarder with several brokers (mqtt_host lists them) and MQTT 3.1.1,
# against two real Mosquitto brokers (not bridged: each reading reaches one
# of them) and a consumer on each:
#  - the gateway speaks MQTT 3.1.1 (mqtt_protocol = 3.1.1): the broker logs
#    protocol p2 (3.1.1) for it, and readings arrive;
#  - it uses the first broker; when that one stops, it moves to the second
#    within seconds and every acknowledged reading arrives at one of the
#    two, none lost;
#  - it stays with the second when the first comes back, and moves back when
#    the second stops;
#  - a list that does not parse is refused at start, naming the entry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-1
# start_named_broker NAME PORT: a Mosquitto of gateway_lib.sh's settings in
# $T/NAME, its pid in PID_<NAME>.
start_named_broker() {
  local name="$1" port="$2"
  mkdir -p "$T/$name"
  cat >"$T/$name/mosquitto.conf" <<CONF
user root
listener $port 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
persistence true
persistence_location $T/$name/
autosave_interval 1
log_dest file $T/$name.log
log_type all
CONF
  spawn mosquitto -c "$T/$name/mosquitto.conf"
  printf -v "PID_$name" '%s' "$LAST_PID"
  wait_port "$port" 10 || fail "mosquitto $name did not start on port $port"
}
stop_named_broker() {
  local pid="PID_$1"
  kill "${!pid}" 2>/dev/null || true
  wait "${!pid}" 2>/dev/null || true
}
PORT_A="$(free_port)"
PORT_B="$(free_port)"
start_named_broker a "$PORT_A"
start_named_broker b "$PORT_B"
BROKER_PORT="$PORT_A" start_consumer "$T/sub-a.out"
SUB_A=$SUB_PID
BROKER_PORT="$PORT_B" start_consumer "$T/sub-b.out"

# --- a list that does not parse --------------------------------------------------------
BROKER_PORT="$PORT_A" write_gateway_config "mqtt_protocol = 3.1.1"
sed -i "s|^mqtt_host = .*|mqtt_host = localhost:$PORT_A bad_name!|" "$T/gw.conf"
run "$IOTGW" --check-config "$T/gw.conf"
[ "$RC" -ne 0 ] && echo "$ERR$OUT" | grep -q "mqtt_host" ||
  fail "a broker list with a bad entry was accepted: $RC $OUT $ERR"
pass "a broker list with a bad entry is refused, naming mqtt_host"

sed -i "s|^mqtt_host = .*|mqtt_host = localhost:$PORT_A, localhost:$PORT_B|" "$T/gw.conf"
start_gateway

SEQ=0
# send N: N readings from dev-1, each acknowledged.
send() {
  local i r
  for i in $(seq 1 "$1"); do
    SEQ=$((SEQ + 1))
    r="$(post dev-1 application/json "{\"seq\":$SEQ,\"temperature\":20}")"
    [ "${r%% *}" = 200 ] || fail "reading $SEQ: $r"
  done
}
count() { grep -c '^telemetry/dev-1/telemetry ' "$1" 2>/dev/null || true; }
both() { echo $(($(count "$T/sub-a.out") + $(count "$T/sub-b.out"))); }
arrived() { [ "$(both)" -ge "$1" ]; }

send 5
wait_until 10 "5 readings at broker a" test "$(count "$T/sub-a.out")" -ge 5
expect_eq "every reading at the first broker, none at the second" "5 0" \
  "$(count "$T/sub-a.out") $(count "$T/sub-b.out")"
grep -q "as iotgw-test (p2," "$T/a.log" ||
  fail "the gateway did not connect with MQTT 3.1.1: $(grep 'as iotgw-test' "$T/a.log")"
pass "the gateway speaks MQTT 3.1.1 to the broker (Mosquitto logs p2 for 3.1.1)"

# --- the first broker stops ----------------------------------------------------------------
stop_named_broker a
stopped_at=$SECONDS
send 5
wait_until 20 "10 readings at the two brokers" arrived 10
expect_eq "the readings after the stop arrive at the second broker" 5 "$(count "$T/sub-b.out")"
grep -q "event=mqtt.connected broker=localhost:$PORT_B" "$T/gw.log" ||
  fail "no mqtt.connected to the second broker in the log"
pass "moved to the second broker within $((SECONDS - stopped_at)) s"

# --- back: stays with the second, moves back when it stops --------------------------------
start_named_broker a "$PORT_A"
send 3
wait_until 10 "13 readings" arrived 13
expect_eq "with the first broker back, the gateway stays with the second" 8 \
  "$(count "$T/sub-b.out")"
stop_named_broker b
send 3
wait_until 20 "16 readings" arrived 16
expect_eq "the second broker stopped: back to the first" 8 "$(count "$T/sub-a.out")"

# --- none lost ------------------------------------------------------------------------------
expect_eq "every acknowledged reading (dseq 1..16) arrived at one of the brokers" \
  "$(seq 1 16 | tr '\n' ' ')" \
  "$(cat "$T/sub-a.out" "$T/sub-b.out" | awk '{ $1 = ""; print }' | jq -r .dseq | sort -n | uniq |
    tr '\n' ' ')"
finish
