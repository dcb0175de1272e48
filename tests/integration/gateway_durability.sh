#!/usr/bin/env bash
# The central promise: a reading that got a 2xx is delivered, whatever
# happens between gateway and broker. Broker stopped while devices post,
# gateway SIGKILLed right after acknowledging, outbox full. Each scenario is
# checked against what was acknowledged: nothing lost, nothing unexpected,
# order kept per device, exactly once after de-duplication by (device, seq).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-a dev-b
start_broker
write_gateway_config "rate_limit = 0" "outbox_max = 40" "outbox_device_share = 100" "retry_after = 3s"
start_gateway
SUB="$T/sub.out"
ACKED="$T/acked"
: >"$ACKED"
start_consumer "$SUB"
sleep 0.5

# send DEVICE FIRST LAST: one reading per POST; records acknowledged ones.
send() {
  local dev="$1" i r
  for i in $(seq "$2" "$3"); do
    r="$(post "$dev" application/json "{\"seq\":$i,\"v\":$i}")"
    case "${r%% *}" in
    200) echo "$dev $i" >>"$ACKED" ;;
    *) echo "$dev $i ${r%% *}" >>"$T/refused" ;;
    esac
  done
}

# check WHAT: every acknowledged reading arrived, none unexpected, per-device
# order kept (after dropping duplicates), gateway seq without gaps.
check() {
  local what="$1" want got
  want="$(sort -u "$ACKED" | wc -l)"
  wait_for_lines "$SUB" "$want" 30 || true
  sleep 0.5
  grep '^telemetry/' "$SUB" | cut -d' ' -f2- | jq -r '"\(.device) \(.dseq) \(.seq)"' >"$T/got"
  local lost unexpected reordered dups
  lost="$(comm -23 <(sort -u "$ACKED") <(cut -d' ' -f1,2 "$T/got" | sort -u) | wc -l)"
  unexpected="$(comm -13 <(sort -u "$ACKED") <(cut -d' ' -f1,2 "$T/got" | sort -u) | wc -l)"
  dups=$(($(wc -l <"$T/got") - $(cut -d' ' -f1,2 "$T/got" | sort -u | wc -l)))
  reordered=0
  for dev in dev-a dev-b; do
    awk -v d="$dev" '$1 == d && !seen[$2]++ { print $2 }' "$T/got" >"$T/order"
    sort -n -c "$T/order" 2>/dev/null || reordered=$((reordered + 1))
    # gateway sequence: 1..n with no gap once duplicates are dropped
    awk -v d="$dev" '$1 == d && !seen[$3]++ { print $3 }' "$T/got" | sort -n >"$T/gseq"
    n="$(wc -l <"$T/gseq")"
    [ "$n" -eq 0 ] || [ "$(tail -1 "$T/gseq")" -eq "$n" ] || fail "$what: gap in gateway seq of $dev"
  done
  echo "checker ($what): acknowledged=$want delivered=$(wc -l <"$T/got") lost=$lost unexpected=$unexpected duplicates=$dups reordered=$reordered"
  [ "$lost" -eq 0 ] && [ "$unexpected" -eq 0 ] && [ "$reordered" -eq 0 ] ||
    fail "$what: lost=$lost unexpected=$unexpected reordered=$reordered"
  pass "$what: nothing lost, nothing unexpected, order kept"
}

# --- 1. broker down while devices keep posting -----------------------------------
send dev-a 1 5
check "broker up"
stop_broker
send dev-a 6 20 &
send dev-b 1 15
wait $!
[ ! -s "$T/refused" ] || fail "posts refused while the broker was down: $(cat "$T/refused")"
pass "2xx continues while the broker is down"
[ "$(curl -s "http://127.0.0.1:$ADMIN_PORT/healthz" | jq -r .broker)" = disconnected ] ||
  fail "healthz does not report the broker as disconnected"
pass "healthz reports the broker disconnected"
depth="$(curl -s "http://127.0.0.1:$ADMIN_PORT/healthz" | jq -r .outbox_depth)"
expect_eq "the outbox holds what the broker has not acknowledged" 30 "$depth"
start_broker
check "broker restarted"

# --- 2. gateway SIGKILLed right after acknowledging --------------------------------
send dev-a 21 30
kill -KILL "$GW_PID"
wait "$GW_PID" 2>/dev/null || true
start_gateway
send dev-b 16 20
check "gateway killed with SIGKILL and restarted"

# SIGKILL while the broker is away: the outbox alone carries the readings.
stop_broker
send dev-a 31 40
kill -KILL "$GW_PID"
wait "$GW_PID" 2>/dev/null || true
start_gateway
start_broker
check "gateway killed while the broker was down"

# --- 3. outbox full -------------------------------------------------------------------
stop_broker
: >"$T/refused"
send dev-b 21 70
full="$(grep -c ' 503$' "$T/refused" || true)"
[ "$full" -gt 0 ] || fail "no 503 with a 40-reading outbox and 50 posts"
pass "a full outbox answers 503"
grep -qi '^Retry-After: 3' "$T/.hdr" || fail "503 without Retry-After: $(cat "$T/.hdr")"
pass "503 carries Retry-After"
grep -q '"error":"outbox_full"' "$T/.resp" || fail "503 without outbox_full: $(cat "$T/.resp")"
pass "503 says outbox_full"
start_broker
check "outbox full, then drained"
r="$(post dev-b application/json '{"seq":1000,"v":1}')"
expect_eq "accepting again once drained" 200 "${r%% *}"
echo "dev-b 1000" >>"$ACKED"
check "after recovery"

# --- 4. the broker refuses the gateway's publishes (ACL not matching) --------------
# MQTT 5 PUBACK reason codes let the gateway see it: the readings stay.
stop_broker
printf 'user CN=gateway-mqtt,OU=gateway,O=IoT Telemetry\ntopic write elsewhere/#\nuser CN=consumer,OU=consumer,O=IoT Telemetry\ntopic read #\n' >"$T/acl"
BROKER_ACL="$T/acl" start_broker
refused_before="$(metric iotgw_mqtt_publish_refused_total)"
send dev-a 41 45
for _ in $(seq 1 100); do
  [ "$(metric iotgw_mqtt_publish_refused_total)" -gt "$refused_before" ] && break
  sleep 0.1
done
[ "$(metric iotgw_mqtt_publish_refused_total)" -gt "$refused_before" ] || fail "refused publishes not counted"
pass "refused publishes are counted"
grep -q 'event=mqtt.publish_refused' "$T/gw.log" || fail "no mqtt.publish_refused line"
pass "refused publishes are logged"
expect_eq "refused readings stay in the outbox" 5 "$(curl -s "http://127.0.0.1:$ADMIN_PORT/healthz" | jq -r .outbox_depth)"
stop_broker
printf 'user CN=gateway-mqtt,OU=gateway,O=IoT Telemetry\ntopic write telemetry/+/telemetry\ntopic write gateway/gateway-mqtt/status\nuser CN=consumer,OU=consumer,O=IoT Telemetry\ntopic read #\n' >"$T/acl"
BROKER_ACL="$T/acl" start_broker
check "after the ACL is fixed"

# --- graceful stop -----------------------------------------------------------------------
kill -TERM "$GW_PID"
wait "$GW_PID"
expect_eq "SIGTERM exits 0" 0 "$?"
grep -q 'event=gateway.stopped' "$T/gw.log" || fail "no gateway.stopped line"
pass "graceful stop is logged"

finish
