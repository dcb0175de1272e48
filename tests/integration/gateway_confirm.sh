#!/usr/bin/env bash
# acknowledge = confirmed: a device's 200 waits for the broker's PUBACK,
# against the real gateway and Mosquitto:
#   1. readings get 200 and arrive; each 200 comes after the broker has the
#      reading: the gateway killed (-9) and its outbox deleted right after
#      every 200 (a lost disk) loses none of them. With acknowledge = stored
#      the same loss of the disk loses a reading that got 200 while the
#      broker was away: the contrast the option exists for;
#   2. with the broker down a request gets 503 not_confirmed after
#      confirm_timeout, with Retry-After, counted and logged; the reading is
#      kept and delivered when the broker returns, and the device's resend
#      is then answered 200 as a duplicate: delivered once;
#      While no broker is connected /healthz is 503 "no_broker" (with
#      acknowledge = stored it stays 200), so a balancer moves devices away;
#   3. a reading the broker refuses for good (quarantined) gets 502
#      broker_refused, and another device's reading behind it gets 200.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-1 dev-big dev-small
BROKER_EXTRA_CONF="max_packet_size 65536"
start_broker
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5 # the consumer's session exists before anything is published

arrived() { grep -c "^telemetry/$1/telemetry .*\"dseq\":$2[,}]" "$SUB" || true; }
has_arrived() { [ "$(arrived "$1" "$2")" -ge 1 ]; }
kill_gateway() {
  kill -9 "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}
lose_disk() { rm -f "$T"/outbox.db "$T"/outbox.db-wal "$T"/outbox.db-shm; }

# --- 1. a 200 survives the loss of the gateway's disk ---------------------------------
write_gateway_config "acknowledge = confirmed" "confirm_timeout = 5s"
for seq in 1 2 3 4 5; do
  start_gateway
  r="$(post dev-1 application/json "{\"seq\":$seq,\"x\":$seq}")"
  [ "${r%% *}" = 200 ] || fail "reading $seq with the broker up: $r"
  kill_gateway
  lose_disk
done
for seq in 1 2 3 4 5; do
  wait_until 10 "reading $seq at the consumer" has_arrived dev-1 "$seq"
done
pass "5 readings, each acknowledged then its gateway killed and its outbox deleted: all 5 arrived"

# The contrast: acknowledge = stored answers from the outbox alone.
write_gateway_config "acknowledge = stored"
stop_broker
start_gateway
r="$(post dev-1 application/json '{"seq":6,"x":6}')"
[ "${r%% *}" = 200 ] || fail "acknowledge = stored with the broker down: $r"
health() { curl -s -o "$T/.health" -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz"; }
expect_eq "/healthz, acknowledge = stored, broker down" 200 "$(health)"
kill_gateway
lose_disk
start_broker
start_gateway
sleep 3
expect_eq "the reading acknowledged from a disk that was then lost" 0 "$(arrived dev-1 6)"
stop_gateway
pass "acknowledge = stored: a 200 from the outbox alone is lost with the disk (as documented)"

# --- 2. the broker away: 503 not_confirmed, then delivered once ------------------------
lose_disk
write_gateway_config "acknowledge = confirmed" "confirm_timeout = 1s" "retry_after = 2s"
stop_broker
start_gateway
r="$(post dev-1 application/json '{"seq":7,"x":7}')"
[ "${r%% *}" = 503 ] && grep -q '"error":"not_confirmed"' <<<"$r" ||
  fail "with the broker down, acknowledge = confirmed answered: $r"
grep -qi '^Retry-After: 2' "$T/.hdr" || fail "503 not_confirmed without Retry-After: $(cat "$T/.hdr")"
expect_eq "counted" 1 "$(refusals not_confirmed)"
grep -q 'event=request.refused .*device=dev-1 status=503 error=not_confirmed' "$T/gw.log" ||
  fail "not_confirmed was not logged with the device"
expect_eq "the reading is kept in the outbox" 1 "$(metric iotgw_outbox_depth)"
expect_eq "/healthz, acknowledge = confirmed, broker down" 503 "$(health)"
jq -e '.status == "no_broker" and .ready == false' "$T/.health" >/dev/null ||
  fail "/healthz without a broker: $(cat "$T/.health")"
pass "broker down: 503 not_confirmed after confirm_timeout, with Retry-After, counted and logged; the reading kept"
r="$(post dev-1 application/json '{"seq":7,"x":7}')"
[ "${r%% *}" = 503 ] || fail "the resend while the broker is still down: $r"
pass "the resend of an unconfirmed reading waits for the broker too (503)"
start_broker
r="$(post dev-1 application/json '{"seq":7,"x":7}')"
for _ in $(seq 1 20); do
  [ "${r%% *}" = 200 ] && break
  sleep 0.5
  r="$(post dev-1 application/json '{"seq":7,"x":7}')"
done
[ "${r%% *}" = 200 ] && grep -q '"duplicates":1' <<<"$r" || fail "the resend once the broker is back: $r"
wait_until 10 "reading 7 at the consumer" has_arrived dev-1 7
expect_eq "/healthz, acknowledge = confirmed, broker back" 200 "$(health)"
sleep 1
expect_eq "copies of reading 7" 1 "$(arrived dev-1 7)"
pass "broker back: the stored reading is delivered, the resend gets 200 as a duplicate, one copy arrives"
stop_gateway

# --- 3. a reading the broker refuses for good ------------------------------------------
BIG="$(python3 -c 'import json; print(json.dumps([{"bn":"dev-big:","n":"s0","v":1,"seq":1}]+[{"n":"s%d"%i,"v":i} for i in range(1,4000)],separators=(",",":")))')"
write_gateway_config "acknowledge = confirmed" "confirm_timeout = 5s" "rate_limit = 0" \
  "max_body = 1MiB" "max_records = 10000" "mqtt_max_packet = 1MiB"
start_gateway
r="$(post dev-big application/senml+json "$BIG")"
[ "${r%% *}" = 502 ] && grep -q '"error":"broker_refused"' <<<"$r" ||
  fail "a reading the broker cannot take: ${r:0:200}"
expect_eq "counted" 1 "$(refusals broker_refused)"
expect_eq "kept in quarantine" 1 "$(metric iotgw_outbox_quarantined)"
r="$(post dev-small application/json '{"seq":1,"x":1}')"
[ "${r%% *}" = 200 ] || fail "another device's reading after the refused one: $r"
wait_until 10 "dev-small's reading at the consumer" has_arrived dev-small 1
stop_gateway
pass "a reading the broker refuses gets 502 broker_refused and stays in quarantine; the next device's gets 200"
finish
