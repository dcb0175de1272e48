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
# shellcheck source=bench/lib.sh
. bench/lib.sh

scripts/install-deps.sh --bench >&2
[ "$HEAP" = 0 ] || command -v heaptrack >/dev/null || die "heaptrack is missing (apt install heaptrack)"
build_bench bench_loadgen
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((CONNS + 200)) ] || die "only $(ulimit -n) descriptors allowed; CONNS=$CONNS needs more"

make_workdir connmem

P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $DEVICES devices"
make_pki "$DEVICES"
BROKER_PORT="$(free_port)"
GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
NGINX_PORT="$(free_port)"
write_broker_conf
start_broker
mkdir -p "$WORK/gw"
gateway_config "$WORK/gw/iotgw.conf" "max_connections_per_device = 0"

# hold NAME PORT: CONNS idle connections to PORT; prints the growth of
# server NAME's resident memory (PIDS[NAME] and its workers) per
# connection, in bytes.
hold() {
    local name="$1" port="$2" r0 r1 lg out="$WORK/idle-$1.out"
    r0="$(rss_kib "$name")"
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
    r1="$(rss_kib "$name")"
    kill -TERM "$lg"
    wait "$lg" || true
    echo $(((r1 - r0) * 1024 / CONNS))
}

start_gateway "$WORK/gw/iotgw.conf"
sleep 1
GW_BYTES="$(hold gateway "$GW_PORT")"
stop gateway
say "gateway: $GW_BYTES bytes per connection"
start_nginx
NG_BYTES="$(hold nginx "$NGINX_PORT")"
stop nginx
say "nginx: $NG_BYTES bytes per connection"

HEAP_TABLE=""
if [ "$HEAP" = 1 ]; then
    say "gateway under heaptrack: the heap by allocation site"
    rm -f "$WORK"/gw/outbox.db*
    heaptrack -o "$WORK/heap" "$IOTGW" --config "$WORK/gw/iotgw.conf" >>"$WORK/gw/heaptrack.log" 2>&1 &
    PIDS[heaptrack]=$!
    wait_port "$GW_PORT" 60 || die "iotgw did not start under heaptrack; see $WORK/gw/heaptrack.log"
    sleep 2
    PIDS[traced]="$(pgrep -f "iotgw --config $WORK/gw/iotgw.conf" | grep -vx "${PIDS[heaptrack]}" | head -1)"
    hold traced "$GW_PORT" >/dev/null
    kill -TERM "${PIDS[traced]}"
    unset "PIDS[traced]"
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
