# Shell functions shared by the benchmarks (bench/run.sh, bench/syscalls.sh):
# progress lines, free ports, and the services they start (Mosquitto, the
# gateway, nginx) with their configurations. Sourced, not run. The caller
# sets T0; PIDS (name -> pid) holds the services started; IOTCTL, P
# (the PKI directory), WORK, IOTGW, BROKER_PORT, GW_PORT, ADMIN_PORT and
# NGINX_PORT are read when the functions run.
# shellcheck shell=bash

# The callers' services by name, kept if already declared.
declare -gA PIDS

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() {
    say "FAILED: $*"
    exit 1
}

# build_bench [TARGET...]: iotgw, iotctl and the TARGETs, RelWithDebInfo, in
# build/bench; sets BUILD, IOTCTL, IOTGW (unless given) and LOADGEN.
# shellcheck disable=SC2034 # read by the scripts that source this file
build_bench() {
    BUILD=build/bench
    say "building the gateway, iotctl and $* in $BUILD (RelWithDebInfo)"
    cmake -S . -B "$BUILD" -G Ninja -DIOT_BUILD_TESTS=OFF >/dev/null
    cmake --build "$BUILD" --target iotgw iotctl "$@" >/dev/null
    IOTCTL="$BUILD/tools/iotctl"
    IOTGW="${IOTGW:-$BUILD/gateway/iotgw}"
    LOADGEN="$BUILD/bench/loadgen/loadgen"
    [ -x "$IOTGW" ] || die "no gateway binary at $IOTGW"
}

# make_workdir NAME: a fresh WORK directory (nginx's workers, as www-data,
# must read it), removed at exit after the services in PIDS are stopped;
# KEEP=1 keeps it.
make_workdir() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-$1.XXXXXX")"
    chmod 755 "$WORK"
    trap stop_all EXIT
    trap 'exit 130' INT TERM
}
stop_all() {
    local name
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
    for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "$(basename "$0"): work files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

# make_pki N [CLIENT...]: in $P, a CA, the gateway's and the broker's server
# certificates, the gateway's and a consumer's MQTT client certificates, any
# further gateway-role clients named, and N devices bench-1..bench-N.
make_pki() {
    local n="$1" name i
    shift
    "$IOTCTL" --dir "$P" pki init >/dev/null
    "$IOTCTL" --dir "$P" cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null
    "$IOTCTL" --dir "$P" cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
    "$IOTCTL" --dir "$P" cert client gateway-mqtt --role gateway >/dev/null
    "$IOTCTL" --dir "$P" cert client consumer --role consumer >/dev/null
    for name in "$@"; do
        "$IOTCTL" --dir "$P" cert client "$name" --role gateway >/dev/null
    done
    for i in $(seq 1 "$n"); do
        "$IOTCTL" --dir "$P" device add "bench-$i" >/dev/null
    done
}

# Below the ephemeral range, where the load generator's connections could hold it.
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
    local deadline=$((SECONDS + ${2:-15}))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

stop() {
    local name="$1"
    [ -n "${PIDS[$name]:-}" ] || return 0
    kill -TERM "${PIDS[$name]}" 2>/dev/null || true
    wait "${PIDS[$name]}" 2>/dev/null || true
    unset "PIDS[$name]"
}

# TLS with required client certificates, and the limits and persistence of
# deploy/broker/mosquitto.conf (its ACL aside: the Flask app and mqtt-pub
# publish under other names). Mosquitto's own default queue for a consumer
# is 1,000 messages, 70 ms at the rates here; beyond it the broker drops.
write_broker_conf() {
    mkdir -p "$WORK/broker"
    cat >"$WORK/broker/mosquitto.conf" <<CONF
user root
listener $BROKER_PORT 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
tls_version tlsv1.2
max_packet_size 65536
max_inflight_messages 20
set_tcp_nodelay true
max_queued_messages 10000
max_queued_bytes 16777216
persistence true
persistence_location $WORK/broker/
autosave_interval 60
log_dest stdout
CONF
}

start_broker() {
    mosquitto -c "$WORK/broker/mosquitto.conf" >>"$WORK/broker/log" 2>&1 &
    PIDS[broker]=$!
    wait_port "$BROKER_PORT" || die "mosquitto did not start: $(tail -2 "$WORK/broker/log")"
}

# gateway_config FILE [EXTRA LINES...]: the product's defaults except the
# per-device rate limit (64 simulated devices carry the load of thousands of
# real ones), the per-address connection cap and rate (every simulated device
# connects from 127.0.0.1), a keep-alive timeout as long as nginx's (the idle test
# holds connections while 10,000 handshakes complete) and a short broker
# backoff.
gateway_config() {
    local file="$1"
    shift
    cat >"$file" <<CONF
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
mqtt_client_id = iotgw-bench
rate_limit = 0
max_connections_per_address = 0
connection_rate_per_address = 0
outbox_device_share = 100
request_timeout = 60s
reconnect_min = 100ms
reconnect_max = 1s
CONF
    local line
    for line in "$@"; do echo "$line" >>"$file"; done
}

# start_gateway CONFIG: a fresh outbox every time.
start_gateway() {
    rm -f "$WORK"/gw/outbox.db*
    "$IOTGW" --config "$1" 2>>"$WORK/gw/log" &
    PIDS[gateway]=$!
    wait_port "$GW_PORT" || die "iotgw did not start: $(tail -2 "$WORK/gw/log")"
}

healthz() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/healthz"; }
depth() { healthz | jq -r '.outbox_depth // -1'; }
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v m="$1" '$1 == m { print $2 }'
}

# wait_drained SECONDS: until the outbox is empty; prints how long it took.
wait_drained() {
    local start=$SECONDS
    while [ "$(depth)" != 0 ]; do
        [ $((SECONDS - start)) -lt "$1" ] || return 1
        sleep 0.1
    done
}

# start_nginx [FILE]: bench/nginx/nginx.conf.in on NGINX_PORT; FILE, when
# given, is included in its http block (server blocks of the caller's own).
# shellcheck disable=SC2120 # bench/run.sh includes nothing
start_nginx() {
    local dir="$WORK/nginx"
    mkdir -p "$dir"
    chmod 755 "$dir"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$NGINX_PORT|g" \
        -e "s|@CERT@|$P/servers/gateway/cert.pem|g" -e "s|@KEY@|$P/servers/gateway/key.pem|g" \
        -e "s|@CA@|$P/ca.crt|g" bench/nginx/nginx.conf.in >"$dir/nginx.conf"
    [ -z "${1:-}" ] || sed -i "s|^http {|http {\n    include $1;|" "$dir/nginx.conf"
    # NGINX_RESUME=1: nginx's own session resumption (stateless tickets,
    # shared by its workers), for the wake-up benchmark.
    [ "${NGINX_RESUME:-0}" = 0 ] ||
        sed -i 's|ssl_session_tickets off;|ssl_session_tickets on; ssl_session_timeout 2h;|' "$dir/nginx.conf"
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/stderr" &
    PIDS[nginx]=$!
    wait_port "$NGINX_PORT" || die "nginx did not start; see $dir/error.log"
    sleep 0.3 # the workers fork after the listener opens
}

# --- measuring ----------------------------------------------------------------

# The process IDs of a server: nginx is its master and workers, Flask under
# gunicorn its arbiter and workers.
server_pids() {
    local pid="${PIDS[$1]}"
    echo "$pid"
    case "$1" in nginx | gunicorn) pgrep -P "$pid" || true ;; esac
}
# CPU ticks (user + system, all threads) of a server's processes.
cpu_ticks() {
    local total=0 p
    for p in $(server_pids "$1"); do
        total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}
rss_kib() {
    local total=0 p
    for p in $(server_pids "$1"); do
        total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
    done
    echo "$total"
}
# shellcheck disable=SC2034 # read by the scripts that source this file
CLK_TCK="$(getconf CLK_TCK)"

j() { jq -r "$1" <<<"$2"; }
# median "V1 V2 ...": the middle value (of a space-separated list).
median() {
    # shellcheck disable=SC2086 # the list is split on purpose
    printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'
}
