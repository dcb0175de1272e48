#!/usr/bin/env bash
# The whole system on this machine, live: a development PKI and registry,
# Mosquitto with the hardened configuration on loopback, the gateway, a few
# simulated devices, and a consumer that prints each reading as it arrives
# with its delivery latency. Ctrl-C stops everything this script started.
#
#   scripts/demo.sh [--devices N] [--interval DURATION]
#
# State (PKI, broker data, outbox, device state) stays in .state/demo, so a
# second run continues where the first stopped. Ports: DEMO_GATEWAY_PORT
# (8443), DEMO_BROKER_PORT (8883), DEMO_ADMIN_PORT (9100), DEMO_CONSOLE_PORT
# (8444, the fleet console); DEMO_STATE moves the state directory.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

DEVICES=3
INTERVAL=2s
while [ $# -gt 0 ]; do
  case "$1" in
  --devices) DEVICES="${2:?--devices needs a number}"; shift 2 ;;
  --interval) INTERVAL="${2:?--interval needs a duration}"; shift 2 ;;
  -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "demo: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
GW_PORT="${DEMO_GATEWAY_PORT:-8443}"
BROKER_PORT="${DEMO_BROKER_PORT:-8883}"
ADMIN_PORT="${DEMO_ADMIN_PORT:-9100}"
CONSOLE_PORT="${DEMO_CONSOLE_PORT:-8444}"

step() { printf '==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
  step "installing missing packages"
  scripts/install-deps.sh
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for spec in "gateway:$GW_PORT:DEMO_GATEWAY_PORT" "broker:$BROKER_PORT:DEMO_BROKER_PORT" \
  "admin:$ADMIN_PORT:DEMO_ADMIN_PORT" "console:$CONSOLE_PORT:DEMO_CONSOLE_PORT"; do
  IFS=: read -r what port var <<<"$spec"
  if port_in_use "$port"; then
    who="$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -1)"
    die "port $port for the $what is in use${who:+ by $who}; stop it or set $var=<free port>"
  fi
done

BUILD=build/release
step "building ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target iotctl iotgw iotsim iotconsole | grep -v '^\[' || true
IOTCTL="$ROOT/$BUILD/tools/iotctl"
IOTGW="$ROOT/$BUILD/gateway/iotgw"
IOTSIM="$ROOT/$BUILD/tools/iotsim"

STATE="${DEMO_STATE:-$ROOT/.state/demo}"
P="$STATE/pki"
mkdir -p "$STATE"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
if [ ! -e "$P/ca.crt" ]; then
  step "creating a development PKI in $P"
  ctl pki init --cn "IoT Telemetry Demo CA" >/dev/null
  ctl cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null
  ctl cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
  ctl cert client gateway-mqtt --role gateway >/dev/null   # the broker ACL's gateway identity
  ctl cert client dashboard --role consumer >/dev/null     # the broker ACL's first consumer
fi
# The fleet console: its server certificate, its MQTT identity (the broker
# ACL's console role) and an operator whose password is drawn here, kept in
# the state directory (0600) and printed below: no default password.
if [ ! -e "$P/servers/console/cert.pem" ]; then
  ctl cert server console --dns localhost --ip 127.0.0.1 >/dev/null
  ctl cert client console-mqtt --role console >/dev/null
fi
if [ ! -s "$STATE/console-password" ]; then
  (umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$STATE/console-password")
  ctl operator add operator --password-file "$STATE/console-password" >/dev/null
fi
if [ ! -s "$P/firmware/trusted-keys.pem" ]; then
  step "creating the firmware signing key demo-release (README: a firmware rollout)"
  ctl firmware key create --name demo-release >/dev/null
fi
ids=()
for i in $(seq 1 "$DEVICES"); do
  id="demo-sensor-$i"
  ids+=(--device "$id")
  if ! ctl device show "$id" >/dev/null 2>&1; then
    step "enrolling $id"
    ctl device add "$id" --class sim >/dev/null
  fi
done

PIDS=()
cleanup() {
  trap - INT TERM EXIT
  echo
  step "stopping"
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped; state kept in $STATE (logs: $STATE/*.log)"
}
# A signal stops the demo: after cleaning up, exit (a trap that returned
# would let the script go on starting what comes next, e.g. when Ctrl-C
# arrives during the build).
trap 'cleanup; exit 130' INT TERM HUP PIPE
trap cleanup EXIT

# --- broker: the hardened configuration, bound to loopback --------------------
# deploy/broker/mosquitto.conf uses paths relative to its working directory
# (the container's /); the same tree is laid out here. Only the listener line
# changes, from every address to 127.0.0.1:$BROKER_PORT.
B="$STATE/broker"
mkdir -p "$B/mosquitto/config" "$B/mosquitto/certs" "$B/mosquitto/data"
sed "s/^listener 8883\$/listener $BROKER_PORT 127.0.0.1/" deploy/broker/mosquitto.conf \
  >"$B/mosquitto/config/mosquitto.conf"
cp deploy/broker/acl "$B/mosquitto/config/acl"
cp "$P/ca.crt" "$B/mosquitto/certs/ca.pem"
cp "$P/crl.pem" "$B/mosquitto/certs/crl.pem"
cp "$P/servers/broker/cert.pem" "$P/servers/broker/key.pem" "$B/mosquitto/certs/"
chmod 600 "$B/mosquitto/certs/key.pem" "$B/mosquitto/config/acl"
if [ "$(id -u)" -eq 0 ]; then
  # As root, Mosquitto drops to the mosquitto user: give it its tree.
  chown -R mosquitto:mosquitto "$B/mosquitto"
  chmod 711 "$STATE" "$B"
fi
step "starting Mosquitto on 127.0.0.1:$BROKER_PORT (hardened configuration)"
(cd "$B" && exec mosquitto -c mosquitto/config/mosquitto.conf) 2>>"$STATE/mosquitto.log" &
PIDS+=("$!")

# --- gateway ----------------------------------------------------------------------
cat >"$STATE/iotgw.conf" <<CONF
# Written by scripts/demo.sh; see deploy/gateway/iotgw.conf.example.
device_listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $P/registry.db
outbox = $STATE/outbox.db
rollouts = $STATE/rollouts.db
firmware_dir = $P/firmware
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
CONF
step "starting the gateway on https://localhost:$GW_PORT (health: http://127.0.0.1:$ADMIN_PORT/healthz)"
"$IOTGW" --config "$STATE/iotgw.conf" 2>>"$STATE/iotgw.log" &
PIDS+=("$!")
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" 2>/dev/null | grep -q '"broker":"connected"' && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || die "the gateway stopped; see $STATE/iotgw.log: $(tail -2 "$STATE/iotgw.log")"
  sleep 0.1
done

# --- the fleet console ---------------------------------------------------------------
cat >"$STATE/iotconsole.conf" <<CONF
# Written by scripts/demo.sh; see docs/console.md.
listen = 127.0.0.1:$CONSOLE_PORT
tls_cert = $P/servers/console/cert.pem
tls_key = $P/servers/console/key.pem
operators = $P/operators
registry = $P/registry.db
rollouts = $STATE/rollouts.db
state = $STATE/console.db
web_dir = $ROOT/$BUILD/console/web
gateways = http://127.0.0.1:$ADMIN_PORT
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/console-mqtt/cert.pem
mqtt_key = $P/clients/console-mqtt/key.pem
CONF
"$ROOT/$BUILD/console/iotconsole" --config "$STATE/iotconsole.conf" 2>>"$STATE/iotconsole.log" &
PIDS+=("$!")
for _ in $(seq 1 50); do
  port_in_use "$CONSOLE_PORT" && break
  kill -0 "${PIDS[-1]}" 2>/dev/null || die "the console stopped; see $STATE/iotconsole.log: $(tail -2 "$STATE/iotconsole.log")"
  sleep 0.1
done
step "fleet console: https://localhost:$CONSOLE_PORT (operator 'operator', password in $STATE/console-password; the CA to trust is $P/ca.crt)"

# --- consumer: one line per reading ----------------------------------------------
step "subscribing to telemetry/# as 'dashboard'"
echo "    time      device          readings  (latency: gateway receipt -> this consumer)"
mosquitto_sub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" \
  --cert "$P/clients/dashboard/cert.pem" --key "$P/clients/dashboard/key.pem" \
  -q 1 -t 'telemetry/+/telemetry' -F '%U %p' 2>>"$STATE/consumer.log" > >(
  jq -R -r --unbuffered '
    capture("^(?<at>[0-9.]+) (?<m>.*)$") | (.at | tonumber) as $at | (.m | fromjson) as $m
    | [ ($at | floor | strftime("%H:%M:%S")),
        ($m.device + (" " * (14 - ($m.device | length)))),
        ([$m.values[] | "\(.n)=\(.v)\(if .u then " " + .u else "" end)"] | join("  ")),
        "\((($at - $m.rx) * 10000 | floor) / 10) ms" ]
    | "    " + join("  ")') &
PIDS+=("$!")

step "starting $DEVICES simulated devices (every $INTERVAL); Ctrl-C to stop"
"$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" "${ids[@]}" \
  --state "$STATE/devices" --interval "$INTERVAL" --class sim --update-check 10s -q \
  2>>"$STATE/iotsim.log" &
PIDS+=("$!")
wait "${PIDS[-1]}" || true
