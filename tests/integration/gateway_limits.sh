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
#      bytes as well as in readings;
#   4. memory: connections per device are capped, a certificate chain over
#      8 KiB is refused before anything is verified, and the bytes of
#      requests being received are bounded in total (max_buffered_bytes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-big dev-small dev-flood
BROKER_EXTRA_CONF="max_packet_size 65536"
start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
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
expect_stream outbox.quarantined '.device == "dev-big" and .reason == "packet_too_large" and .severity == "warning"'
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

# --- 4. memory -----------------------------------------------------------------
start_broker
write_gateway_config "rate_limit = 0" "max_connections_per_device = 2" "max_body = 1MiB" \
  "max_buffered_bytes = 1MiB"
start_gateway

# hold N DEVICE BODY_BYTES SECONDS: N TLS connections as DEVICE, each sending
# the headers of a POST and BODY_BYTES of a 600,000-byte body (0: a whole
# small request), held open for SECONDS after the last one is made (then
# $T/held.ready exists); prints one line per connection: "open" if it is
# still open at the end, "closed" otherwise.
hold() {
  rm -f "$T/held.ready"
  python3 - "$GW_PORT" "$P" "$@" "$T/held.ready" <<'PY'
import socket, ssl, sys, time
port, p, n, dev, body, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
ready = sys.argv[7]
ctx = ssl.create_default_context(cafile=p + "/ca.crt")
ctx.load_cert_chain(p + "/devices/%s/cert.pem" % dev, p + "/devices/%s/key.pem" % dev)
socks = []
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    try:
        if body:
            s.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 600000\r\n\r\n" + b" " * body)
        else:
            s.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 15\r\n\r\n{\"seq\":9,\"x\":1}")
            s.recv(4096)
    except (OSError, ssl.SSLError):
        pass
    socks.append(s)
    time.sleep(0.3)
open(ready, "w").close()
time.sleep(secs)
for s in socks:
    s.settimeout(0.5)
    try:
        data = s.recv(1)
        print("closed" if data == b"" else "open")
    except socket.timeout:
        print("open")
    except (OSError, ssl.SSLError):
        print("closed")
PY
}

wait_file() {
  for _ in $(seq 1 150); do [ -e "$1" ] && return 0; sleep 0.1; done
  fail "$1 did not appear within 15 s"
}

# Two connections of dev-small are served; a third is refused while they last.
before="$(refusals over_capacity)"
hold 2 dev-small 0 3 >"$T/held" &
hold_pid=$!
wait_file "$T/held.ready"
r="$(post dev-small application/json '{"seq":10,"x":1}')"
[ "${r%% *}" = 000 ] || fail "a third connection of one device was served: $r"
r="$(post dev-big application/json '{"seq":1,"x":1}')"
[ "${r%% *}" = 200 ] || fail "another device while dev-small holds its connections: $r"
wait "$hold_pid"
expect_eq "the two held connections stayed open" "open open" "$(xargs <"$T/held")"
grep -q 'event=tls.refused peer=127.0.0.1:[0-9]* reason=over_capacity detail="max_connections_per_device reached" subject=.*CN=dev-small' "$T/gw.log" ||
  fail "the per-device refusal was not logged with the device"
[ "$(refusals over_capacity)" -gt "$before" ] || fail "the per-device refusal was not counted"
r="$(post dev-small application/json '{"seq":11,"x":1}')"
[ "${r%% *}" = 200 ] || fail "dev-small after its connections closed: $r"
pass "max_connections_per_device: a third connection is refused, other devices are served"

# A certificate chain over 8 KiB is refused while it is being read.
python3 -c 'print(",".join("DNS:host-%04d.padding.example.org" % i for i in range(400)))' >"$T/san"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$T/huge.key" -out "$T/huge.crt" -subj '/CN=huge' -addext "subjectAltName=$(cat "$T/san")" 2>/dev/null
[ "$(stat -c %s "$T/huge.crt")" -gt 12000 ] || fail "the test certificate is too small"
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" --cert "$T/huge.crt" --key "$T/huge.key" \
  "https://localhost:$GW_PORT/v1/telemetry" || true)"
expect_eq "a 12 KB client certificate gets no answer" 000 "$code"
grep -q 'event=tls.refused peer=127.0.0.1:[0-9]* reason=tls_protocol detail=".*excessive message size"' "$T/gw.log" ||
  fail "a certificate chain over the limit was not refused for its size: $(grep huge -i "$T/gw.log" | tail -2)"
pass "a client certificate chain over 8 KiB is refused before verification"

# Three uploads of 400,000 bytes each: the third goes over 1 MiB in all.
before="$(refusals over_capacity)"
hold 2 dev-big 400000 4 >"$T/held" &
hold_pid=$!
wait_file "$T/held.ready"
# Sent is not yet received: wait until the gateway holds both uploads.
for _ in $(seq 1 50); do [ "$(metric iotgw_request_buffer_bytes)" -ge 800000 ] && break; sleep 0.1; done
[ "$(metric iotgw_request_buffer_bytes)" -ge 800000 ] || fail "the two uploads were not received"
hold 1 dev-flood 400000 1 >"$T/held3"
wait "$hold_pid"
expect_eq "the upload that went over max_buffered_bytes was closed" closed "$(cat "$T/held3")"
expect_eq "the uploads within it stayed open" "open open" "$(xargs <"$T/held")"
grep -q 'event=connection.refused peer=127.0.0.1:[0-9]* reason=over_capacity detail="max_buffered_bytes reached"' "$T/gw.log" ||
  fail "max_buffered_bytes refusal not logged"
expect_stream connection.refused \
  '.reason == "over_capacity" and (.detail | contains("max_buffered_bytes")) and (.peer | startswith("127.0.0.1"))'
[ "$(refusals over_capacity)" -gt "$before" ] || fail "max_buffered_bytes refusal not counted"
for _ in $(seq 1 30); do [ "$(metric iotgw_request_buffer_bytes)" = 0 ] && break; sleep 0.1; done
expect_eq "closed uploads give their bytes back" 0 "$(metric iotgw_request_buffer_bytes)"
r="$(post dev-flood application/json '{"seq":1,"x":1}')"
[ "${r%% *}" = 200 ] || fail "a request after the uploads were closed: $r"
pass "max_buffered_bytes bounds the bytes of requests being received in all"
stop_gateway
expect_stream_valid
finish
