#!/usr/bin/env bash
# What one device can do to everyone else through the gateway's shared
# resources, against the real gateway and broker:
#   1. a reading whose MQTT message the broker would refuse is refused at
#      ingest (413 reading_too_large), and --check-config says which limits
#      allow it;
#   2. a stored reading the broker can never take (stored while the
#      gateway's mqtt_max_packet was above the broker's) is moved to the
#      quarantine table, counted and logged, and the readings behind it are
#      delivered;
#   3. during a broker outage one device can hold only its share of the
#      outbox (503 outbox_device_share_full), and the outbox is bounded in
#      bytes as well as in readings.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-big dev-small dev-flood
BROKER_EXTRA_CONF="max_packet_size 65536"
start_broker
SUB="$T/sub.out"
start_consumer "$SUB"

# senml_reading DEVICE SEQ VALUES: one SenML reading with VALUES values.
senml_reading() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
dev, seq, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
recs = [{"bn": dev + ":", "n": "s0", "v": 1, "seq": seq}]
recs += [{"n": "s%d" % i, "v": i} for i in range(1, n)]
print(json.dumps(recs, separators=(",", ":")))
PY
}
BIG="$(senml_reading dev-big 1 4000)"   # about 80 KB as a message

# --- 1. refused at ingest --------------------------------------------------
write_gateway_config "rate_limit = 0" "max_body = 1MiB" "max_records = 10000"
out="$("$IOTGW" --check-config "$T/gw.conf" 2>&1)" || fail "--check-config refused a usable configuration: $out"
grep -q "warning: .*max_records = 10000 .*mqtt_max_packet (65536 bytes).*reading_too_large" <<<"$out" ||
  fail "--check-config did not cross-check max_records against mqtt_max_packet: $out"
pass "--check-config warns that max_records allows readings above mqtt_max_packet"
start_gateway
r="$(post dev-big application/senml+json "$BIG")"
[ "${r%% *}" = 413 ] && grep -q '"error":"reading_too_large"' <<<"$r" ||
  fail "a reading too large for the broker was not refused at ingest: ${r:0:200}"
pass "a reading whose message exceeds the broker's packet limit gets 413 reading_too_large"
[ "$(refusals payload_too_large)" = 1 ] || fail "reading_too_large not counted as payload_too_large"
grep -q 'event=request.refused peer=127.0.0.1:[0-9]* device=dev-big status=413 error=reading_too_large' "$T/gw.log" ||
  fail "reading_too_large not logged with device and peer"
r="$(post dev-small application/json '{"seq":1,"x":1}')"
[ "${r%% *}" = 200 ] || fail "a small reading after the refusal: $r"
wait_for_lines "$SUB" 1 10 || fail "the small reading was not delivered"
stop_gateway
pass "the next device's reading is delivered"

# --- 2. quarantine -----------------------------------------------------------
# The gateway believes the broker takes 1 MiB: the big reading is stored,
# and the broker's CONNACK limit (64 KiB) makes libmosquitto refuse it.
write_gateway_config "rate_limit = 0" "max_body = 1MiB" "max_records = 10000" "mqtt_max_packet = 1MiB"
start_gateway
r="$(post dev-big application/senml+json "$BIG")"
[ "${r%% *}" = 200 ] || fail "the big reading was not stored: ${r:0:200}"
for seq in 2 3 4; do
  r="$(post dev-small application/json "{\"seq\":$seq,\"x\":$seq}")"
  [ "${r%% *}" = 200 ] || fail "a small reading behind the big one: $r"
done
wait_for_lines "$SUB" 4 15 || fail "readings behind an unpublishable one were never delivered: $(cat "$SUB")"
pass "readings stored behind an unpublishable one are delivered"
[ "$(grep -c '^telemetry/dev-big/' "$SUB")" = 0 ] || fail "the big reading reached the broker"
for _ in $(seq 1 50); do [ "$(metric iotgw_outbox_quarantined)" = 1 ] && break; sleep 0.1; done
expect_eq "quarantined gauge" 1 "$(metric iotgw_outbox_quarantined)"
expect_eq "quarantined counter" 1 "$(metric iotgw_readings_quarantined_total)"
expect_eq "outbox depth after delivery" 0 "$(metric iotgw_outbox_depth)"
grep -q 'level=error event=outbox.quarantined id=[0-9]* device=dev-big reason=packet_too_large' "$T/gw.log" ||
  fail "the quarantine was not logged"
stop_gateway
q="$(sqlite3 "$T/outbox.db" "SELECT device, reason, length(body) > 65536 FROM quarantine")"
expect_eq "the quarantined reading is kept whole, with its reason" "dev-big|packet_too_large|1" "$q"

# --- 3. per-device share and the byte bound ----------------------------------
stop_broker
rm -f "$T/outbox.db" "$T/outbox.db-wal" "$T/outbox.db-shm"
write_gateway_config "rate_limit = 0" "outbox_max = 100" "outbox_device_share = 10" "retry_after = 1s"
start_gateway
for seq in $(seq 1 10); do
  r="$(post dev-flood application/json "{\"seq\":$seq,\"x\":$seq}")"
  [ "${r%% *}" = 200 ] || fail "dev-flood reading $seq within its share: $r"
done
r="$(post dev-flood application/json '{"seq":11,"x":11}')"
[ "${r%% *}" = 503 ] && grep -q '"error":"outbox_device_share_full"' <<<"$r" ||
  fail "a device over its share of the outbox: $r"
grep -qi '^retry-after: 1' "$T/.hdr" || fail "503 outbox_device_share_full without Retry-After"
pass "a device beyond its share of the outbox gets 503 outbox_device_share_full"
r="$(post dev-small application/json '{"seq":5,"x":5}')"
[ "${r%% *}" = 200 ] || fail "another device while dev-flood's share is full: $r"
pass "other devices still store while one device's share is full"
expect_eq "share refusal counted" 1 "$(refusals outbox_device_share_full)"
stop_gateway

# Bytes: 64 KiB of messages; each reading of 300 values is about 6 KB.
rm -f "$T/outbox.db" "$T/outbox.db-wal" "$T/outbox.db-shm"
write_gateway_config "rate_limit = 0" "outbox_max_bytes = 64KiB" "outbox_device_share = 100" "max_records = 1000"
start_gateway
stored=0
for seq in $(seq 1 20); do
  r="$(post dev-flood application/senml+json "$(senml_reading dev-flood "$seq" 300)")"
  case "${r%% *}" in
    200) stored=$((stored + 1)) ;;
    503) grep -q '"error":"outbox_full"' <<<"$r" || fail "503 without outbox_full: $r"; break ;;
    *) fail "reading $seq: ${r:0:200}" ;;
  esac
done
[ "$stored" -ge 5 ] && [ "$stored" -lt 20 ] || fail "the byte bound did not stop the outbox ($stored readings stored)"
bytes="$(metric iotgw_outbox_bytes)"
[ "$bytes" -le 65536 ] || fail "the outbox holds $bytes bytes, over outbox_max_bytes"
pass "outbox_max_bytes bounds the outbox in bytes ($stored readings, $bytes bytes)"
stop_gateway
finish
