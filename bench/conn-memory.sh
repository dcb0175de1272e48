#!/usr/bin/env bash
# Memory per idle mutual-TLS connection: the gateway and nginx each hold
# CONNS connections (one POST each, then idle, as devices between
# readings), and the growth of their resident memory is divided by CONNS.
# With --heap the gateway also runs under heaptrack and the report breaks
# its heap down by allocation site, per connection. Writes
# bench/results/conn-memory-DATE.md; docs/performance.md explains it.
#
#   bench/conn-memory.sh           about 1 minute on 2 cores
#   bench/conn-memory.sh --heap    plus the heap breakdown (about 2 minutes)
#
# Environment: CONNS (2000) connections over DEVICES (64) device
# certificates; IOTGW=PATH measures another build of the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."

HEAP=0
for arg in "$@"; do
    case "$arg" in
    --heap) HEAP=1 ;;
    -h | --help)
        sed -n '2,13p' "$0"
        exit 0
        ;;
    *)
        echo "conn-memory.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
CONNS="${CONNS:-2000}"
DEVICES="${DEVICES:-64}"
T0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

scripts/install-deps.sh --bench >&2
[ "$HEAP" = 0 ] || command -v heaptrack >/dev/null || die "heaptrack is missing (apt install heaptrack)"
BUILD=build/bench
say "building the gateway, iotctl and loadgen in $BUILD (RelWithDebInfo)"
cmake -S . -B "$BUILD" -G Ninja -DIOT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target iotgw iotctl bench_loadgen >/dev/null
IOTCTL="$BUILD/tools/iotctl"
IOTGW="${IOTGW:-$BUILD/gateway/iotgw}"
LOADGEN="$BUILD/bench/loadgen/loadgen"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((CONNS + 200)) ] || die "only $(ulimit -n) descriptors allowed; CONNS=$CONNS needs more"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-connmem.XXXXXX")"
chmod 755 "$WORK"
declare -A PIDS
cleanup() {
    local name
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
    for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $DEVICES devices"
"$IOTCTL" --dir "$P" pki init >/dev/null
"$IOTCTL" --dir "$P" cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null
"$IOTCTL" --dir "$P" cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
"$IOTCTL" --dir "$P" cert client gateway-mqtt --role gateway >/dev/null
for i in $(seq 1 "$DEVICES"); do "$IOTCTL" --dir "$P" device add "bench-$i" >/dev/null; done

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
    local deadline=$((SECONDS + ${2:-30}))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

BROKER_PORT="$(free_port)"
mkdir -p "$WORK/broker" "$WORK/gw" "$WORK/nginx"
cat >"$WORK/broker/mosquitto.conf" <<CONF
user root
listener $BROKER_PORT 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
persistence false
log_dest stdout
CONF
mosquitto -c "$WORK/broker/mosquitto.conf" >>"$WORK/broker/log" 2>&1 &
PIDS[broker]=$!
wait_port "$BROKER_PORT" || die "mosquitto did not start: $(tail -2 "$WORK/broker/log")"

GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
cat >"$WORK/gw/iotgw.conf" <<CONF
device_listen = 127.0.0.1:$GW_PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $P/registry.db
outbox = $WORK/gw/outbox.db
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
mqtt_client_id = iotgw-connmem
rate_limit = 0
max_connections_per_address = 0
max_connections_per_device = 0
connection_rate_per_address = 0
request_timeout = 120s
CONF
NGINX_PORT="$(free_port)"
sed -e "s|@DIR@|$WORK/nginx|g" -e "s|@PORT@|$NGINX_PORT|g" \
    -e "s|@CERT@|$P/servers/gateway/cert.pem|g" -e "s|@KEY@|$P/servers/gateway/key.pem|g" \
    -e "s|@CA@|$P/ca.crt|g" bench/nginx/nginx.conf.in >"$WORK/nginx/nginx.conf"

rss_kib() {
    local total=0 p
    for p in "$@"; do total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status"))); done
    echo "$total"
}
# hold NAME PORT PIDS...: CONNS idle connections to PORT; prints the RSS
# growth of PIDS per connection, in bytes.
hold() {
    local name="$1" port="$2" r0 r1 lg out="$WORK/idle-$1.out"
    shift 2
    r0="$(rss_kib "$@")"
    say "$name: opening $CONNS idle mutual-TLS connections (RSS before: $((r0 / 1024)) MiB)"
    timeout 600 "$LOADGEN" --port "$port" --pki "$P" --devices bench- --count "$DEVICES" \
        --idle "$CONNS" --hold 300 --json >"$out" 2>>"$WORK/idle.err" &
    lg=$!
    for _ in $(seq 1 3000); do
        grep -q idle_ready "$out" && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '"established":'"$CONNS" "$out" || die "$name: the connections were not all set up: $(head -1 "$out")"
    sleep 2
    r1="$(rss_kib "$@")"
    kill -TERM "$lg"
    wait "$lg" || true
    echo $(((r1 - r0) * 1024 / CONNS))
}

"$IOTGW" --config "$WORK/gw/iotgw.conf" 2>>"$WORK/gw/log" &
PIDS[gateway]=$!
wait_port "$GW_PORT" || die "iotgw did not start: $(tail -2 "$WORK/gw/log")"
sleep 1
GW_BYTES="$(hold gateway "$GW_PORT" "${PIDS[gateway]}")"
kill -TERM "${PIDS[gateway]}"
wait "${PIDS[gateway]}" || true
unset "PIDS[gateway]"
say "gateway: $GW_BYTES bytes per connection"

nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" 2>>"$WORK/nginx/stderr" &
PIDS[nginx]=$!
wait_port "$NGINX_PORT" || die "nginx did not start; see $WORK/nginx/error.log"
sleep 0.5
NG_BYTES="$(hold nginx "$NGINX_PORT" "${PIDS[nginx]}" $(pgrep -P "${PIDS[nginx]}"))"
kill -TERM "${PIDS[nginx]}"
wait "${PIDS[nginx]}" || true
unset "PIDS[nginx]"
say "nginx: $NG_BYTES bytes per connection"

HEAP_TABLE=""
if [ "$HEAP" = 1 ]; then
    say "gateway under heaptrack: the heap by allocation site"
    rm -f "$WORK"/gw/outbox.db*
    (cd "$WORK" && exec heaptrack -o "$WORK/heap" "$OLDPWD/$IOTGW" --config "$WORK/gw/iotgw.conf") \
        >>"$WORK/gw/heaptrack.log" 2>&1 &
    PIDS[heaptrack]=$!
    wait_port "$GW_PORT" 60 || die "iotgw did not start under heaptrack; see $WORK/gw/heaptrack.log"
    sleep 2
    GW_PID="$(pgrep -f "^$OLDPWD/$IOTGW --config $WORK/gw/iotgw.conf" || pgrep -f "iotgw --config $WORK/gw/iotgw.conf" | head -1)"
    hold "gateway (heaptrack)" "$GW_PORT" "$GW_PID" >/dev/null
    kill -TERM "$GW_PID"
    wait "${PIDS[heaptrack]}" || true
    unset "PIDS[heaptrack]"
    # Peak consumers with their first frame of our code or a library entry
    # point: "bytes site" per connection.
    HEAP_TABLE="$(heaptrack_print -f "$WORK"/heap*.zst --print-peaks 1 --print-allocators 0 \
        --print-temporary 0 --print-leaks 0 --peak-limit 1 --sub-peak-limit 12 2>/dev/null |
        awk -v n="$CONNS" '
            function bytes(s) { u = substr(s, length(s)); v = s + 0
                return u == "K" ? v * 1024 : u == "M" ? v * 1048576 : u == "G" ? v * 1073741824 : v }
            /^[0-9.]+[KMG]?B? consumed over [0-9]+ calls from:/ { want = 1; b = bytes($1); c = $4; next }
            want && /^    [A-Za-z_]/ { printf "| %s | %.0f | %.1f |\n", $1, b / n, c / n; want = 0 }')"
    HEAP_TABLE2="$(heaptrack_print -f "$WORK"/heap*.zst --print-peaks 1 --print-allocators 0 \
        --print-temporary 0 --print-leaks 0 --peak-limit 14 2>/dev/null |
        awk -v n="$CONNS" '
            function bytes(s) { u = substr(s, length(s)); v = s + 0
                return u == "K" ? v * 1024 : u == "M" ? v * 1048576 : u == "G" ? v * 1073741824 : v }
            /^[0-9.]+[KMG]?B? peak memory consumed over/ { b = bytes($1); c = $6; want = 1; next }
            want && /^[A-Za-z_]/ { printf "| %s | %.0f | %.1f |\n", $1, b / n, c / n; want = 0 }')"
fi

STAMP="$(date -u +%Y-%m-%d-%H%M)"
RES="bench/results/conn-memory-$STAMP.md"
{
    echo "# Memory per idle connection, $STAMP"
    echo
    echo "\`bench/conn-memory.sh$([ "$HEAP" = 0 ] || echo ' --heap')\` (CONNS=$CONNS over $DEVICES device certificates), OpenSSL $(openssl version | awk '{ print $2 }'),"
    echo "nginx $(dpkg-query -W -f='${Version}' nginx 2>/dev/null || echo '?'), gateway $(git rev-parse --short HEAD 2>/dev/null || echo '?'): TLS 1.3, one POST each, then idle."
    echo
    echo "| server | resident bytes per connection |"
    echo "|---|---:|"
    echo "| gateway | $GW_BYTES |"
    echo "| nginx | $NG_BYTES |"
    if [ "$HEAP" = 1 ]; then
        echo
        echo "The gateway's heap at its peak (all connections held), by allocating function,"
        echo "per connection (heaptrack):"
        echo
        echo "| allocated in | bytes per connection | allocations per connection |"
        echo "|---|---:|---:|"
        echo "$HEAP_TABLE2"
        echo
        echo "Of OpenSSL's CRYPTO_zalloc, by caller:"
        echo
        echo "| caller | bytes per connection | allocations per connection |"
        echo "|---|---:|---:|"
        echo "$HEAP_TABLE"
    fi
} >"$RES"
cat "$RES"
say "wrote $RES"
