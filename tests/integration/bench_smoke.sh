#!/usr/bin/env bash
# The benchmark tools work against the real gateway and broker: loadgen
# posts for about 2 s at a low fixed rate as 3 enrolled devices, the latency
# subscriber sees every reading loadgen saw acknowledged, mqtt-pub gets its
# PUBACKs, and every JSON report carries the fields bench/run.sh reads.
# Not a benchmark: nothing here depends on how fast the machine is.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

LOADGEN="$IOT_BUILD_DIR/bench/loadgen/loadgen"
SUBSCRIBER="$IOT_BUILD_DIR/bench/mqtt-latency/mqtt-latency"
PUBLISHER="$IOT_BUILD_DIR/bench/mqtt-pub/mqtt-pub"

make_pki bench-1 bench-2 bench-3
start_broker
write_gateway_config
start_gateway

# jq_true FILE FILTER: the filter holds for the JSON document in FILE.
jq_true() { [ "$(jq -r "$2" "$1")" = true ]; }

spawn "$SUBSCRIBER" --port "$BROKER_PORT" --ca "$P/ca.crt" \
  --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
  --ready "$T/ready" --acked "$T/acked" --settle 20 --json >"$T/sub.json" 2>"$T/sub.err"
SUB_PID=$LAST_PID
for _ in $(seq 1 100); do
  [ -e "$T/ready" ] && break
  sleep 0.1
done
[ -e "$T/ready" ] || fail "the subscriber did not subscribe: $(cat "$T/sub.err")"
pass "mqtt-latency subscribes with the consumer certificate"

# 3 devices at 15 requests/s in all stay under the default rate limit.
expect_ok "loadgen posts as 3 devices at a fixed rate" \
  "$LOADGEN" --port "$GW_PORT" --pki "$P" --devices bench- --count 3 --rate 15 \
  --duration 2 --warmup 0.5 --acked "$T/acked" --json
echo "$OUT" >"$T/load.json"
jq_true "$T/load.json" '.tool == "loadgen" and .mode == "keepalive" and .transport == "tls"' ||
  fail "loadgen JSON does not describe the run: $OUT"
for f in rps readings_per_s seconds requests errors acked_readings seq_next duplicates \
  latency.count latency.p50_us latency.p90_us latency.p99_us latency.p999_us latency.max_us \
  conn_errors.connect conn_errors.tls conn_errors.http conn_errors.closed conn_errors.unanswered; do
  jq_true "$T/load.json" "(.$f | type) == \"number\"" || fail "loadgen JSON lacks $f: $OUT"
done
pass "loadgen JSON has throughput, errors, latency percentiles and sequence fields"
expect_eq "loadgen saw no error" 0 "$(jq -r .errors "$T/load.json")"
jq_true "$T/load.json" '.requests > 0 and .latency.count == .requests' ||
  fail "no measured requests, or latency samples that do not match them: $OUT"
jq_true "$T/load.json" '.acked_readings >= .requests and .status["200"] == .acked_readings' ||
  fail "acknowledged readings do not match the 200 answers: $OUT"
expect_eq "no reading was acknowledged as a duplicate" 0 "$(jq -r .duplicates "$T/load.json")"
pass "every request was answered 200 and counted once"

expect_eq "the acked file has the window and one range per device" \
  "bench-1 bench-2 bench-3 window" "$(cut -d' ' -f1 "$T/acked" | sort | xargs)"
expect_eq "each device's range starts at seq 1" "1 1 1" \
  "$(grep -v '^window' "$T/acked" | cut -d' ' -f2 | xargs)"
expect_eq "the ranges add up to the acknowledged readings" "$(jq -r .acked_readings "$T/load.json")" \
  "$(awk '$1 != "window" { n += $3 - $2 + 1 } END { print n }' "$T/acked")"
expect_eq "seq_next follows the highest sequence number sent" \
  "$(awk '$1 != "window" && $3 > m { m = $3 } END { print m + 1 }' "$T/acked")" \
  "$(jq -r .seq_next "$T/load.json")"

for _ in $(seq 1 100); do
  [ "$(metric iotgw_outbox_depth)" = 0 ] && break
  sleep 0.1
done
expect_eq "the gateway delivered everything to the broker" 0 "$(metric iotgw_outbox_depth)"

kill -TERM "$SUB_PID"
wait "$SUB_PID" || fail "mqtt-latency failed: $(cat "$T/sub.err")"
SUB="$(cat "$T/sub.json")"
jq_true "$T/sub.json" '.tool == "mqtt-latency" and .window == true' ||
  fail "mqtt-latency JSON does not describe the run: $SUB"
for f in received unique duplicates acked lost extra gseq_gaps latency.count latency.p50_us \
  latency.p99_us latency.p999_us latency.max_us; do
  jq_true "$T/sub.json" "(.$f | type) == \"number\"" || fail "mqtt-latency JSON lacks $f: $SUB"
done
expect_eq "the subscriber counted the readings loadgen saw acknowledged" \
  "$(jq -r .acked_readings "$T/load.json")" "$(jq -r .acked "$T/sub.json")"
expect_eq "no acknowledged reading was lost" 0 "$(jq -r .lost "$T/sub.json")"
expect_eq "no message arrived twice" 0 "$(jq -r .duplicates "$T/sub.json")"
expect_eq "the gateway's sequence has no gap" 0 "$(jq -r .gseq_gaps "$T/sub.json")"
expect_eq "messages came from the 3 devices" 3 "$(jq -r .devices "$T/sub.json")"
jq_true "$T/sub.json" '.unique == .acked and .latency.count > 0 and .latency.p50_us > 0' ||
  fail "the subscriber saw other readings than acknowledged, or measured no latency: $SUB"
pass "end-to-end latency measured from the readings' send time"

expect_ok "mqtt-pub publishes with QoS 1 and gets every PUBACK" \
  "$PUBLISHER" --port "$BROKER_PORT" --ca "$P/ca.crt" \
  --cert "$P/clients/gateway-mqtt/cert.pem" --key "$P/clients/gateway-mqtt/key.pem" \
  --count 200 --size 200 --window 16 --json
echo "$OUT" >"$T/pub.json"
jq_true "$T/pub.json" '.tool == "mqtt-pub" and .messages == 200 and .refused == 0 and .msgs_per_s > 0 and .puback_latency.count == 200' ||
  fail "mqtt-pub JSON: $OUT"
pass "mqtt-pub reports its rate and PUBACK latency"

expect_fail "loadgen refuses a bad option with a usage error" 2 "invalid value" \
  "$LOADGEN" --port "$GW_PORT" --pki "$P" --rate -5

finish
