#!/usr/bin/env bash
# Serving firmware images next to telemetry: telemetry latency with and
# without 100 devices downloading an update at once, the gateway's CPU per
# MiB of image served, and the bytes each device fetched per update against
# the image size. Real parts throughout: iotctl signs the release and
# creates the rollout, the real gateway and Mosquitto, 100 iotsim devices
# (the device core's update machine, 4 KiB ranged chunks) and the load
# generator as 16 telemetry devices at a fixed rate (open loop, so a
# stalled gateway cannot hide late answers). Writes
# bench/results/ota-DATE.md; docs/performance.md has the figures.
#
#   bench/ota.sh            (about 2 minutes on 2 cores)
#
# Environment: DEVICES (100) downloading devices, IMAGE_SIZE (1048576)
# bytes, CHUNK (4096), RATE (200) telemetry requests/s, DURATION (20)
# measured seconds, KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES="${DEVICES:-100}"
IMAGE_SIZE="${IMAGE_SIZE:-1048576}"
CHUNK="${CHUNK:-4096}"
RATE="${RATE:-200}"
DURATION="${DURATION:-20}"
TEL=16
T0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

say "installing what the benchmark needs (scripts/install-deps.sh --bench)"
scripts/install-deps.sh --bench >&2
BUILD=build/bench
say "building the gateway, iotctl, iotsim and the load generator in $BUILD"
cmake -S . -B "$BUILD" -G Ninja -DIOT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target iotgw iotctl iotsim bench_loadgen >/dev/null
IOTCTL="$BUILD/tools/iotctl"
IOTSIM="$BUILD/tools/iotsim"
IOTGW="$BUILD/gateway/iotgw"
LOADGEN="$BUILD/bench/loadgen/loadgen"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-ota-bench.XXXXXX")"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "ota.sh: work files kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
    local port
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}
wait_port() {
    for _ in $(seq 1 150); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

P="$WORK/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
say "making the PKI: $DEVICES devices that update, $TEL that send telemetry"
ctl pki init >/dev/null
ctl cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null
ctl cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
ctl cert client gateway-mqtt --role gateway >/dev/null
for i in $(seq 1 "$DEVICES"); do ctl device add "dl-$i" --class sensor >/dev/null; done
for i in $(seq 1 "$TEL"); do ctl device add "tel-$i" --class other >/dev/null; done
ctl firmware key create --name rel >/dev/null
"$IOTSIM" --make-image "$WORK/app.bin" --image-version 2.0.0 --image-size "$IMAGE_SIZE"
ctl firmware sign --image "$WORK/app.bin" --vendor iot-example --class sensor --version 2.0.0 \
    --secure-version 0 --key rel --out "$WORK/app.manifest" >/dev/null
ctl firmware add --manifest "$WORK/app.manifest" --image "$WORK/app.bin" >/dev/null
ctl rollout create all --firmware 2.0.0 --class sensor --canary 0 --waves 100 \
    --db "$WORK/rollouts.db" >/dev/null

BROKER_PORT="$(free_port)"
cat >"$WORK/mosquitto.conf" <<CONF
user root
listener $BROKER_PORT 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
CONF
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=("$!")
wait_port "$BROKER_PORT"
GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
cat >"$WORK/gw.conf" <<CONF
device_listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $P/registry.db
outbox = $WORK/outbox.db
rollouts = $WORK/rollouts.db
firmware_dir = $P/firmware
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
connection_rate_per_address = 0
max_connections_per_address = 0
rate_limit = 0
log_level = warn
CONF
"$IOTGW" --config "$WORK/gw.conf" 2>"$WORK/gw.log" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_port "$GW_PORT"

metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$GW_PID/stat"; }
TICK="$(getconf CLK_TCK)"
SEQ=1
telemetry() { # telemetry LABEL: the load generator's JSON line
    "$LOADGEN" --port "$GW_PORT" --pki "$P" --devices tel- --count "$TEL" --rate "$RATE" \
        --duration "$DURATION" --warmup 1 --seq-start "$SEQ" --json || die "loadgen ($1)"
}
lat() { jq -r '"\(.latency.p50_us / 1000 | . * 100 | round / 100) / \(.latency.p99_us / 1000 | . * 100 | round / 100) / \(.latency.max_us / 1000 | . * 100 | round / 100)"' <<<"$1"; }

say "telemetry alone: $RATE requests/s from $TEL devices for ${DURATION}s"
BASE="$(telemetry baseline)"
SEQ="$(jq -r '.seq_next // empty' <<<"$BASE")"
SEQ="${SEQ:-100000}"

say "the same while $DEVICES devices download a $IMAGE_SIZE-byte image in $CHUNK-byte chunks"
bytes0="$(metric iotgw_update_image_bytes_total)"
cpu0="$(cpu_ticks)"
"$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --state "$WORK/state" \
    --prefix dl- --devices "$DEVICES" --threads "$DEVICES" --class sensor --interval 60s \
    --update-check 1s --chunk "$CHUNK" --slot-size $((IMAGE_SIZE * 2)) -q \
    >"$WORK/sim.out" 2>"$WORK/sim.err" &
SIM_PID=$!
PIDS+=("$SIM_PID")
t_start=$SECONDS
LOADED="$(telemetry downloads)"
all_confirmed() {
    [ "$("$IOTCTL" --dir "$P" rollout status all --json --db "$WORK/rollouts.db" | jq -r .counts.confirmed)" = "$DEVICES" ]
}
for _ in $(seq 1 600); do all_confirmed && break; sleep 0.5; done
all_confirmed || die "not every device confirmed the update in 5 minutes"
t_all=$((SECONDS - t_start))
cpu1="$(cpu_ticks)"
bytes1="$(metric iotgw_update_image_bytes_total)"
kill -INT "$SIM_PID" 2>/dev/null || true
wait "$SIM_PID" 2>/dev/null || true

served=$((bytes1 - bytes0))
mib="$(awk -v b="$served" 'BEGIN { printf "%.1f", b / 1048576 }')"
cpu_s="$(awk -v t=$((cpu1 - cpu0)) -v k="$TICK" 'BEGIN { printf "%.2f", t / k }')"
per_mib="$(awk -v t=$((cpu1 - cpu0)) -v k="$TICK" -v b="$served" 'BEGIN { printf "%.1f", (t / k) * 1000 / (b / 1048576) }')"
per_update="$(awk -v b="$served" -v n="$DEVICES" -v s="$IMAGE_SIZE" 'BEGIN { printf "%.4f", b / n / s }')"

mkdir -p bench/results
OUT="bench/results/ota-$(date -u +%Y%m%d-%H%M).md"
{
    echo "# Firmware images next to telemetry ($(date -u +%Y-%m-%dT%H:%MZ))"
    echo
    echo "\`bench/ota.sh\` on $(nproc) cores, $(uname -r); gateway $BUILD (RelWithDebInfo)."
    echo "Telemetry: $TEL devices, $RATE requests/s open loop, ${DURATION}s measured."
    echo "Update: $DEVICES iotsim devices, a $IMAGE_SIZE-byte image in $CHUNK-byte ranged GETs, all in one wave."
    echo
    echo "| | telemetry p50 / p99 / max (ms) | answered |"
    echo "|---|---|---|"
    echo "| telemetry alone | $(lat "$BASE") | $(jq -r .requests <<<"$BASE") |"
    echo "| while $DEVICES devices download | $(lat "$LOADED") | $(jq -r .requests <<<"$LOADED") |"
    echo
    echo "- every device confirmed the update ${t_all}s after the simulator started"
    echo "- image bytes served: $served ($mib MiB); gateway CPU over the download: ${cpu_s}s, **${per_mib} ms per MiB** (TLS, HTTP, rollout lookups, telemetry included)"
    echo "- bytes fetched per update: **$per_update x the image size** (1.0000 is no byte fetched twice)"
} >"$OUT"
cat "$OUT"
say "written to $OUT"
