#!/usr/bin/env bash
# Readings across two gateways, as a consumer sees them: two real gateways
# (their own MQTT certificates gw-a and gw-b, their own outboxes) on one
# Mosquitto, and the reference consumer iotconsume with a persistent session:
#  - each message names the gateway that stored it, and seq counts per
#    (device, gateway);
#  - a device's retry that reached the second gateway after the first had
#    stored it is published twice, and stored once by the consumer (keyed by
#    device and dseq), counted as a duplicate;
#  - readings published while the consumer is down wait in its session and
#    are stored when it comes back; every reading is in its store exactly
#    once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-1 dev-2
"$IOTCTL" --dir "$P" cert client gw-a --role gateway >/dev/null
"$IOTCTL" --dir "$P" cert client gw-b --role gateway >/dev/null
start_broker
CONSUME="$IOT_BUILD_DIR/tools/iotconsume"

# Two gateways from the one configuration: ports, outbox, MQTT identity.
write_gateway_config
declare -A GWPORT
for g in a b; do
  GWPORT[$g]="$(free_port)"
  mkdir -p "$T/gw-$g" # the outbox's directory holds the security outbox and fleet.db too
  sed -e "s|^device_listen = .*|device_listen = 127.0.0.1:${GWPORT[$g]}|" \
    -e "s|^admin_listen = .*|admin_listen = 127.0.0.1:$(free_port)|" \
    -e "s|^outbox = .*|outbox = $T/gw-$g/outbox.db|" \
    -e "s|^mqtt_client_id = .*|mqtt_client_id = iotgw-$g|" \
    -e "s|clients/gateway-mqtt/|clients/gw-$g/|" "$T/gw.conf" >"$T/gw-$g.conf"
  spawn "$IOTGW" --config "$T/gw-$g.conf" 2>>"$T/gw-$g.log"
  wait_port "${GWPORT[$g]}" 15 || fail "gateway $g did not start: $(tail -3 "$T/gw-$g.log")"
done
# send GATEWAY DEVICE DSEQ...: readings from the device through that gateway.
send() {
  local g="$1" dev="$2" s r
  shift 2
  for s in "$@"; do
    r="$(GW_PORT="${GWPORT[$g]}" post "$dev" application/json "{\"seq\":$s,\"temperature\":2$s}")"
    [ "${r%% *}" = 200 ] || fail "$dev reading $s through gateway $g: $r"
  done
}
consume() {
  run "$CONSUME" --port "$BROKER_PORT" --ca "$P/ca.crt" --cert "$P/clients/consumer/cert.pem" \
    --key "$P/clients/consumer/key.pem" --client-id "iotconsume-$$" --db "$T/consumer.db" \
    --print "$@"
}
# The session exists before anything is published.
consume --timeout 1
[ "$RC" -eq 0 ] || fail "iotconsume could not start: $RC $ERR"

send a dev-1 1 2 3 4 5
# dev-1's 2xx for dseq 5 was lost on the way: the device retries, and its
# retry reaches the other gateway, which has not seen it.
send b dev-1 5 6 7 8
send b dev-2 1 2 3
consume --count 11 --timeout 30
expect_eq "11 readings stored, 12 received, 1 duplicate" \
  "0 iotconsume: received 12, stored 11, duplicates 1, invalid 0" "$RC $(echo "$OUT" | tail -1)"
jq -e -s 'map(select(.device == "dev-1" and .dseq == 5)) | length == 1' \
  <<<"$(echo "$OUT" | grep '^{')" >/dev/null || fail "dev-1's dseq 5 printed other than once"
pass "the reading published by both gateways is stored once"
by_gw="$(echo "$OUT" | grep '^{' | jq -r '"\(.gateway) \(.device) \(.seq) \(.dseq)"' | sort | tr '\n' ';')"
expect_eq "each message names its gateway; seq counts per device and gateway" \
  "gw-a dev-1 1 1;gw-a dev-1 2 2;gw-a dev-1 3 3;gw-a dev-1 4 4;gw-a dev-1 5 5;gw-b dev-1 2 6;gw-b dev-1 3 7;gw-b dev-1 4 8;gw-b dev-2 1 1;gw-b dev-2 2 2;gw-b dev-2 3 3;" \
  "$by_gw"

# --- while the consumer is away -------------------------------------------------------
send a dev-2 4 5
send b dev-2 5 6
consume --count 3 --timeout 30
expect_eq "away: 3 new readings and the duplicate, from the session" \
  "0 iotconsume: received 4, stored 3, duplicates 1, invalid 0" "$RC $(echo "$OUT" | tail -1)"
expect_eq "the store holds every reading once" \
  "dev-1 1 2 3 4 5 6 7 8;dev-2 1 2 3 4 5 6;" \
  "$(sqlite3 "$T/consumer.db" "SELECT device || ' ' || group_concat(substr(reading, 2), ' ') FROM (SELECT * FROM readings ORDER BY device, CAST(substr(reading, 2) AS INTEGER)) GROUP BY device ORDER BY device;" | tr '\n' ';')"
expect_eq "no reading stored twice" 0 \
  "$(sqlite3 "$T/consumer.db" 'SELECT count(*) FROM (SELECT device, reading FROM readings GROUP BY 1, 2 HAVING count(*) > 1);')"
finish
