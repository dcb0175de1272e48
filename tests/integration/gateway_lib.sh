# Helpers for tests that run the whole path: a PKI made by iotctl, a real
# Mosquitto with TLS and client certificates on a free loopback port, the
# real iotgw binary, curl as the device and mosquitto_sub as the consumer.
# Source after lib.sh.

IOTGW="$IOT_BUILD_DIR/gateway/iotgw"
P="$T/pki"

# make_pki DEVICE...: CA, gateway and broker server certs, the gateway's
# MQTT identity, a consumer, and the given devices.
make_pki() {
  "$IOTCTL" --dir "$P" pki init >/dev/null
  "$IOTCTL" --dir "$P" cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null
  "$IOTCTL" --dir "$P" cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
  "$IOTCTL" --dir "$P" cert client gateway-mqtt --role gateway >/dev/null
  "$IOTCTL" --dir "$P" cert client consumer --role consumer >/dev/null
  local d
  for d in "$@"; do "$IOTCTL" --dir "$P" device add "$d" >/dev/null; done
}

# start_broker: Mosquitto with TLS, required client certificates and
# persistence, on $BROKER_PORT (chosen once, kept across restarts).
start_broker() {
  BROKER_PORT="${BROKER_PORT:-$(free_port)}"
  mkdir -p "$T/broker"
  cat >"$T/broker/mosquitto.conf" <<CONF
user root
listener $BROKER_PORT 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
tls_version tlsv1.2
persistence true
persistence_location $T/broker/
autosave_interval 1
log_dest stdout
log_timestamp_format %Y-%m-%dT%H:%M:%S
CONF
  if [ -n "${BROKER_ACL:-}" ]; then
    echo "acl_file $BROKER_ACL" >>"$T/broker/mosquitto.conf"
  fi
  # Extra lines, one per line of the variable (e.g. max_packet_size 65536).
  if [ -n "${BROKER_EXTRA_CONF:-}" ]; then
    printf '%s\n' "$BROKER_EXTRA_CONF" >>"$T/broker/mosquitto.conf"
  fi
  spawn mosquitto -c "$T/broker/mosquitto.conf"
  BROKER_PID=$LAST_PID
  wait_port "$BROKER_PORT" 10 || fail "mosquitto did not start on port $BROKER_PORT"
}

stop_broker() {
  kill "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
}

# write_gateway_config [EXTRA LINES...]: $T/gw.conf for the current PKI.
# Every test device connects from 127.0.0.1, one address standing in for
# many devices (as behind a NAT), so the per-address rate of new connections
# is off unless an extra line sets it.
write_gateway_config() {
  GW_PORT="${GW_PORT:-$(free_port)}"
  ADMIN_PORT="${ADMIN_PORT:-$(free_port)}"
  cat >"$T/gw.conf" <<CONF
device_listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $P/registry.db
outbox = $T/outbox.db
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
mqtt_client_id = iotgw-test
workers = 2
reconnect_min = 100ms
reconnect_max = 1s
CONF
  local line
  for line in "$@"; do echo "$line" >>"$T/gw.conf"; done
  grep -q '^connection_rate_per_address' "$T/gw.conf" ||
    echo "connection_rate_per_address = 0" >>"$T/gw.conf"
}

# The gateway's stderr goes to $T/gw.log.
start_gateway() {
  "$IOTGW" --config "$T/gw.conf" 2>>"$T/gw.log" &
  _PIDS+=("$!")
  GW_PID=$!
  wait_port "$GW_PORT" 15 || fail "iotgw did not start; see $T/gw.log: $(tail -3 "$T/gw.log")"
}

stop_gateway() {
  kill -TERM "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}

# start_consumer FILE: a QoS 1 subscriber with a persistent session, so
# messages published while it is away are kept for it. mosquitto_sub
# reconnects after a broker restart, but exits on a TLS error during one
# (a broker stopped mid-handshake); it is then started again with the same
# session, which gets what the broker kept for it.
start_consumer() {
  local out="$1"
  (
    child=""
    trap '[ -z "$child" ] || kill "$child" 2>/dev/null; exit 0' TERM
    while :; do
      mosquitto_sub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" \
        --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
        -i "consumer-$$" -c -q 1 -t 'telemetry/#' -v >>"$out" 2>>"$T/sub.err" &
      child=$!
      wait "$child" || true
      echo "consumer: mosquitto_sub exited; starting it again" >>"$T/sub.err"
      sleep 0.2
    done
  ) &
  _PIDS+=("$!")
  SUB_PID=$!
}

stop_consumer() {
  kill "$SUB_PID" 2>/dev/null || true
  wait "$SUB_PID" 2>/dev/null || true
}

# post DEVICE CONTENT-TYPE BODY [curl args...]: prints "STATUS BODY" of
# one POST as that device; status 000 means the connection was refused.
post() {
  local dev="$1" ctype="$2" body="$3"; shift 3
  local cert=() out code
  if [ -n "$dev" ]; then
    cert=(--cert "$P/devices/$dev/cert.pem" --key "$P/devices/$dev/key.pem")
  fi
  out="$(curl -s -o "$T/.resp" -D "$T/.hdr" -w '%{http_code}' --cacert "$P/ca.crt" "${cert[@]}" \
    -H "Content-Type: $ctype" --data-binary "$body" "$@" \
    "https://localhost:$GW_PORT/v1/telemetry" 2>/dev/null)" || true
  code="${out:-000}"
  echo "$code $(cat "$T/.resp" 2>/dev/null)"
}

# wait_for_lines FILE N [SECONDS]: until FILE has at least N lines.
wait_for_lines() {
  local file="$1" n="$2" deadline=$((SECONDS + ${3:-20}))
  while [ "$(wc -l <"$file" 2>/dev/null || echo 0)" -lt "$n" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

metric() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# iotctl_and_wait_reload ARGS...: runs iotctl ARGS on the test PKI and waits
# (5 s at most) until the running gateway has reloaded its registry and CRL
# by itself, without a signal.
iotctl_and_wait_reload() {
  local reloads
  reloads="$(metric iotgw_identity_reloads_total)"
  "$IOTCTL" --dir "$P" "$@" >/dev/null || fail "iotctl $* failed"
  for _ in $(seq 1 50); do
    [ "$(metric iotgw_identity_reloads_total)" -gt "$reloads" ] && return 0
    sleep 0.1
  done
  fail "the gateway did not reload its registry within 5 s of 'iotctl $*'"
}

refusals() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk -v r="$1" 'index($1, "reason=\"" r "\"") { print $2 }'
}

# wait_sim PID SECONDS: waits for the simulator; its status in $SIM_RC.
wait_sim() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      fail "iotsim did not finish within $2 s"
    fi
    sleep 0.1
  done
  set +e
  wait "$pid"
  SIM_RC=$?
  set -e
}

# --- the security event stream ------------------------------------------------
# The documents arrive on security/<gateway>/<type>, <gateway> being the CN
# of the gateway's MQTT client certificate (gateway-mqtt by make_pki).
SEC_GATEWAY="${SEC_GATEWAY:-gateway-mqtt}"

# security_monitor [CLIENT]: a security monitor reading security/# as CLIENT
# (default secmon: `cert client secmon --role operator`, which the broker ACL
# of deploy/broker lets read the stream) with a persistent QoS 1 session,
# subscribed before it returns; each document is one "TOPIC JSON" line
# appended to $SEC (default $T/sec.out).
security_monitor() {
  local client="${1:-secmon}"
  local args=(-h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt"
    --cert "$P/clients/$client/cert.pem" --key "$P/clients/$client/key.pem"
    -i "secmon-$$" -c -q 1 -t 'security/#')
  SEC="${SEC:-$T/sec.out}"
  # The session and its subscription first: from then on the broker keeps
  # the documents for it.
  mosquitto_sub "${args[@]}" -E 2>>"$T/sub.err" || fail "the security monitor could not subscribe"
  spawn mosquitto_sub "${args[@]}" -v >>"$SEC" 2>>"$T/sub.err"
  SECMON_PID=$LAST_PID
}

# stream_docs TYPE: the documents of TYPE in $SEC, one a line.
stream_docs() {
  awk -v t="security/$SEC_GATEWAY/$1" '$1 == t { $1 = ""; print substr($0, 2) }' "$SEC"
}

# stream_has TYPE JQ-FILTER: a document of TYPE matching the filter arrived.
stream_has() {
  stream_docs "$1" | jq -s -e "map(select($2)) | length > 0" >/dev/null
}

# expect_stream TYPE JQ-FILTER [WHAT]: waits (20 s at most) until
# stream_has TYPE JQ-FILTER; passes as WHAT.
expect_stream() {
  wait_until 20 "$1 ($2) on the security stream" stream_has "$1" "$2"
  pass "${3:-security stream: $1 $2}"
}

# expect_stream_valid: every document in $SEC is valid against the schema,
# on its topic, without a gap in seq.
expect_stream_valid() {
  run /usr/bin/python3 "$IOT_SOURCE_DIR/tests/support/tools/secevent_check.py" \
    "$IOT_SOURCE_DIR/docs/schemas/security-event.schema.json" "$SEC"
  expect_eq "every document on the security stream valid against the schema ($OUT)" 0 "$RC"
}
