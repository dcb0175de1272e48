#!/usr/bin/env bash
# Compares the two HTTP libraries the gateway can be built on, libevent 2.1
# evhttp and h2o 2.2.5 (libh2o-evloop), with nginx as the reference: the same
# mutual-TLS POST /v1/telemetry answered with 204, on loopback, with the same
# load generator. Writes bench/results/http-libraries-DATE.md; see
# docs/http-library.md for the method and the decision.
#
#   bench/http-libraries/run.sh
#
# Settings (environment): ROUNDS=3 rounds of each kind per server,
# DURATION=3 measured seconds per keep-alive run, SHORT=2 per latency and
# handshake run, CONNS=64 keep-alive connections, IDLE_CONNS=10000, KEEP=1
# keeps the work directory. Takes about 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-3}"
# Latency and handshake runs: the measured seconds of each.
SHORT="${SHORT:-2}"
WARMUP=1
CONNS="${CONNS:-64}"
LOAD_THREADS=2
HANDSHAKE_CONNS=32
IDLE_CONNS="${IDLE_CONNS:-10000}"
SERVERS=(evhttp h2o nginx)
# evhttp once more with one listening socket shared by its loops instead of
# SO_REUSEPORT: keep-alive rounds only.
KA_SERVERS=(evhttp h2o nginx evhttp-shared)
CFLAGS=(-O2 -std=c11 -Wall -Wextra -Werror)

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'run.sh: %s\n' "$*" >&2
    exit 1
}

# --- setup ------------------------------------------------------------------

say "installing what the comparison needs"
scripts/install-deps.sh --bench >&2

say "building iotctl (for the certificates) and the load generator (bench/loadgen) in build/bench"
cmake -S . -B build/bench -G Ninja -DIOT_BUILD_TESTS=OFF >/dev/null
cmake --build build/bench --target iotctl bench_loadgen >/dev/null
IOTCTL=build/bench/tools/iotctl
LOADGEN=build/bench/bench/loadgen/loadgen

WORK="$(mktemp -d "${TMPDIR:-/tmp}/http-libraries.XXXXXX")"
# nginx workers run as www-data and look up paths below this directory.
chmod 755 "$WORK"
declare -A SPID PORT
cleanup() {
    local name
    for name in "${!SPID[@]}"; do
        kill -TERM "${SPID[$name]}" 2>/dev/null || true
        wait "${SPID[$name]}" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "run.sh: work files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

say "building the servers (gcc -O2)"
BIN="$WORK/bin"
mkdir -p "$BIN"
H=bench/http-libraries
read -r -a EV_FLAGS <<<"$(pkg-config --cflags --libs libevent_openssl libssl libcrypto)"
read -r -a H2O_FLAGS <<<"$(pkg-config --cflags --libs libh2o-evloop libssl libcrypto)"
gcc "${CFLAGS[@]}" -o "$BIN/evhttp_server" "$H/evhttp_server.c" "${EV_FLAGS[@]}" -lpthread
gcc "${CFLAGS[@]}" -o "$BIN/h2o_server" "$H/h2o_server.c" "${H2O_FLAGS[@]}" -lpthread

say "making certificates with iotctl"
PKI="$WORK/pki"
"$IOTCTL" --dir "$PKI" pki init >/dev/null
"$IOTCTL" --dir "$PKI" cert server gw --dns localhost --ip 127.0.0.1 >/dev/null
"$IOTCTL" --dir "$PKI" device add dev-1 >/dev/null
SRV="$PKI/servers/gw"
DEV="$PKI/devices/dev-1"

# --- helpers ----------------------------------------------------------------

# Below the ephemeral range (32768 and up), where the load generator's own
# connections could hold the port.
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
    local deadline=$((SECONDS + 10))
    while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# The /proc stat files of the event loops: the library servers' threads
# other than main, nginx's worker processes.
loop_stats() {
    local pid="${SPID[$1]}" t
    if [ "$1" = nginx ]; then
        for t in $(pgrep -P "$pid" | sort -n); do echo "/proc/$t/stat"; done
    else
        for t in /proc/"$pid"/task/*; do
            [ "${t##*/}" = "$pid" ] || echo "$t/stat"
        done | sort -V
    fi
}

# "t1 t2 ...": CPU ticks (user + system) of each event loop of server $1.
loop_ticks() {
    local f out=()
    for f in $(loop_stats "$1"); do
        out+=("$(sed 's/.*) //' "$f" | awk '{ print $12 + $13 }')")
    done
    echo "${out[*]}"
}

# Sum of VmRSS (kB) over the server's processes (nginx: master + workers).
server_rss() {
    local pid="${SPID[$1]}" total=0 p v
    for p in "$pid" $( [ "$1" = nginx ] && pgrep -P "$pid" ); do
        v="$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")"
        total=$((total + v))
    done
    echo "$total"
}

start_server() {
    local name="$1" port
    port="$(free_port)"
    PORT[$name]="$port"
    if [ "$name" = nginx ]; then
        local dir="$WORK/nginx"
        mkdir -p "$dir"
        chmod 755 "$dir"
        sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@CERT@|$SRV/cert.pem|g" \
            -e "s|@KEY@|$SRV/key.pem|g" -e "s|@CA@|$SRV/ca.pem|g" \
            "$H/nginx.conf.in" >"$dir/nginx.conf"
        nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$WORK/nginx-$PHASE.log" &
    else
        local prog="$name" extra=()
        if [ "$name" = evhttp-shared ]; then
            prog=evhttp
            extra=(--accept shared)
        fi
        "$BIN/${prog}_server" --port "$port" --threads 2 "${extra[@]}" --cert "$SRV/cert.pem" \
            --key "$SRV/key.pem" --ca "$SRV/ca.pem" 2>"$WORK/$name-$PHASE.log" &
    fi
    SPID[$name]=$!
    wait_port "$port" || die "$name did not start listening on port $port"
    # nginx forks its workers after it listens.
    sleep 0.3
}

stop_server() {
    kill -TERM "${SPID[$1]}" 2>/dev/null || true
    wait "${SPID[$1]}" 2>/dev/null || true
    unset "SPID[$1]"
}

# loadgen SERVER ARGS...: every connection speaks for dev-1; one JSON line.
loadgen() {
    local name="$1"
    shift
    timeout 200 "$LOADGEN" --port "${PORT[$name]}" --pki "$PKI" --devices dev- --count 1 \
        --json "$@"
}

# kv FIELD LINE: a field of a loadgen JSON line (jq path without the dot).
kv() { jq -r ".$1" <<<"$2"; }

# median "V1 V2 ...": the middle value (the lower middle of an even count).
median() {
    local v
    read -r -a v <<<"$1"
    printf '%s\n' "${v[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# 1234567.8 -> 1,234,568
fmt_int() { printf '%.0f' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }

# curl_dev PORT [CURL OPTIONS]: the HTTP status of one POST, or 000.
curl_dev() {
    local port="$1"
    shift
    curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$SRV/ca.pem" -X POST \
        -H 'Content-Type: application/senml+json' --data '[{"n":"t","v":1}]' "$@" \
        "https://localhost:$port/v1/telemetry" 2>/dev/null || true
}

# Each server must do what the gateway must before its numbers mean anything.
check_server() {
    local name="$1" port="${PORT[$1]}" got
    local dev=(--cert "$DEV/cert.pem" --key "$DEV/key.pem")
    got="$(curl_dev "$port" "${dev[@]}")"
    [ "$got" = 204 ] || die "$name: POST with a device certificate gave '$got', not 204"
    got="$(curl_dev "$port")"
    [ "$got" != 204 ] || die "$name: POST without a client certificate was accepted"
    got="$(curl_dev "$port" "${dev[@]}" --tls-max 1.2)"
    [ "$got" = 204 ] || die "$name: TLS 1.2 with an AEAD cipher gave '$got', not 204"
    got="$(curl_dev "$port" "${dev[@]}" --tls-max 1.2 --ciphers ECDHE-ECDSA-AES128-SHA256)"
    [ "$got" != 204 ] || die "$name: TLS 1.2 with a CBC cipher was accepted"
    say "$name: 204 with a device certificate; refused without one and with CBC; TLS 1.2 AEAD ok"
}

CLK_TCK="$(getconf CLK_TCK)"
declare -A RPS_RUNS P99_RUNS CPU_US_RUNS BUSY_RUNS ERRS
for s in "${KA_SERVERS[@]}"; do
    RPS_RUNS[$s]=""
    P99_RUNS[$s]=""
    CPU_US_RUNS[$s]=""
    BUSY_RUNS[$s]=""
    ERRS[$s]=0
done

# One keep-alive run; records req/s, p99, server CPU per request and how busy
# each loop thread was.
keepalive_round() {
    local name="$1" before after line t0 t1 rps busy="" i
    read -r -a before <<<"$(loop_ticks "$name")"
    t0="$(date +%s.%N)"
    line="$(loadgen "$name" --connections "$CONNS" --threads "$LOAD_THREADS" \
        --duration "$DURATION" --warmup "$WARMUP")" || die "$name: load generator failed"
    t1="$(date +%s.%N)"
    read -r -a after <<<"$(loop_ticks "$name")"
    local total=0
    for i in "${!after[@]}"; do
        local d=$((after[i] - ${before[i]:-0}))
        total=$((total + d))
        busy+="$(awk -v d="$d" -v hz="$CLK_TCK" -v s="$t0" -v e="$t1" \
            'BEGIN { printf "%.0f", 100 * d / hz / (e - s) }')%/"
    done
    rps="$(kv rps "$line")"
    BODY_BYTES="$(kv body_bytes "$line")"
    RPS_RUNS[$name]+="$rps "
    P99_RUNS[$name]+="$(kv latency.p99_us "$line") "
    # CPU time over the run (warm-up included) over the requests it made at
    # the measured rate.
    CPU_US_RUNS[$name]+="$(awk -v t="$total" -v hz="$CLK_TCK" -v r="$rps" \
        -v s="$((WARMUP + DURATION))" 'BEGIN { printf "%.1f", 1e6 * t / hz / (r * s) }') "
    BUSY_RUNS[$name]+="${busy%/} "
    ERRS[$name]=$((ERRS[$name] + $(kv errors "$line")))
    say "$name: $(fmt_int "$rps") req/s, p99 $(kv latency.p99_us "$line") us, errors $(kv errors "$line"), loop threads busy ${busy%/}"
}

# --- keep-alive throughput, latency, handshakes --------------------------------

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
PHASE=load
for s in "${KA_SERVERS[@]}"; do
    start_server "$s"
    check_server "$s"
done

# Rounds are interleaved so that a burst of other work on the machine
# does not land on one server only.
for r in $(seq 1 "$ROUNDS"); do
    for s in "${KA_SERVERS[@]}"; do
        say "keep-alive round $r/$ROUNDS: $s, $CONNS connections, ${DURATION}s"
        keepalive_round "$s"
    done
done

declare -A MAXRPS RATE LAT_RUNS HS_RUNS
for s in "${KA_SERVERS[@]}"; do
    MAXRPS[$s]="$(median "${RPS_RUNS[$s]}")"
    RATE[$s]="$(awk -v m="${MAXRPS[$s]}" 'BEGIN { printf "%.0f", m / 2 }')"
done

# Open loop at half of each server's own max; latency counts from the time
# each request was due.
for r in $(seq 1 "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do
        say "latency round $r/$ROUNDS: $s at half its max, $(fmt_int "${RATE[$s]}") req/s"
        line="$(loadgen "$s" --connections "$CONNS" --threads "$LOAD_THREADS" \
            --rate "${RATE[$s]}" --duration "$SHORT" --warmup "$WARMUP")" ||
            die "$s: load generator failed"
        LAT_RUNS[$s]+="$line"$'\n'
        ERRS[$s]=$((ERRS[$s] + $(kv errors "$line")))
        say "$s: p50 $(kv latency.p50_us "$line") us, p99 $(kv latency.p99_us "$line") us, p99.9 $(kv latency.p999_us "$line") us"
    done
done

for r in $(seq 1 "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do
        say "handshake round $r/$ROUNDS: $s, a new connection per request, $HANDSHAKE_CONNS at a time"
        line="$(loadgen "$s" --handshake --connections "$HANDSHAKE_CONNS" \
            --threads "$LOAD_THREADS" --duration "$SHORT" --warmup "$WARMUP")" ||
            die "$s: load generator failed"
        HS_RUNS[$s]+="$line"$'\n'
        ERRS[$s]=$((ERRS[$s] + $(kv errors "$line")))
        say "$s: $(fmt_int "$(kv rps "$line")") handshakes/s"
    done
done

for s in "${KA_SERVERS[@]}"; do
    stop_server "$s"
done

# --- idle connections ---------------------------------------------------------

declare -A RSS0 RSS1 IDLE_UP IDLE_CLOSED
PHASE=idle
for s in "${SERVERS[@]}"; do
    start_server "$s"
    RSS0[$s]="$(server_rss "$s")"
    say "$s: opening $IDLE_CONNS idle connections (RSS before: $((RSS0[$s] / 1024)) MiB)"
    idle_out="$WORK/idle-$s.out"
    loadgen "$s" --idle "$IDLE_CONNS" --threads "$LOAD_THREADS" --hold 2 >"$idle_out" &
    lg=$!
    for _ in $(seq 1 1500); do
        grep -q '"idle_ready"' "$idle_out" && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '"idle_ready"' "$idle_out" || die "$s: idle connections were not set up"
    sleep 1
    RSS1[$s]="$(server_rss "$s")"
    wait "$lg" || die "$s: load generator failed in idle mode"
    IDLE_UP[$s]="$(kv established "$(grep '"idle_ready"' "$idle_out")")"
    IDLE_CLOSED[$s]="$(kv closed_by_server "$(tail -1 "$idle_out")")"
    ERRS[$s]=$((ERRS[$s] + IDLE_CONNS - IDLE_UP[$s] + IDLE_CLOSED[$s]))
    say "$s: ${IDLE_UP[$s]} connections up, RSS $((RSS1[$s] / 1024)) MiB"
    stop_server "$s"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -------------------------------------------------------------------

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
served() { grep -o 'served [0-9]*' "$WORK/$1-load.log" | awk '{ print $2 }' | paste -sd/ -; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
yesno() { awk -v v="$1" -v lim="$2" 'BEGIN { print (v < lim ? "yes" : "no") }'; }

# row LABEL FUNC: one table row, FUNC printing the cell of each server.
row() {
    local s line="| $1 |"
    for s in "${SERVERS[@]}"; do
        line+=" $("$2" "$s") |"
    done
    echo "$line"
}
c_rps() { fmt_int "${MAXRPS[$1]}"; }
c_share() { pct "${MAXRPS[$1]}" "${MAXRPS[nginx]}"; }
c_rounds() {
    local v out=()
    for v in ${RPS_RUNS[$1]}; do out+=("$(fmt_int "$v")"); done
    (IFS=/ && echo "${out[*]}")
}
c_cpu() { median "${CPU_US_RUNS[$1]}"; }
c_busy() {
    local b="${BUSY_RUNS[$1]% }"
    echo "${b// /, }"
}
c_p99max() { ms "$(median "${P99_RUNS[$1]}")"; }
# runs_of KEY RUNS: the values of KEY in each result line of RUNS (rps, or a
# latency percentile such as p99_us).
runs_of() {
    local k="$1"
    case "$k" in p*_us) k="latency.$k" ;; esac
    jq -r ".$k" <<<"$2" | paste -sd' ' -
}
# med KEY RUNS: the median of KEY over the runs.
med() { median "$(runs_of "$1" "$2")"; }
c_rate() {
    echo "$(fmt_int "${RATE[$1]}") / $(fmt_int "$(med rps "${LAT_RUNS[$1]}")")"
}
c_p50() { ms "$(med p50_us "${LAT_RUNS[$1]}")"; }
c_p90() { ms "$(med p90_us "${LAT_RUNS[$1]}")"; }
c_p99() { ms "$(med p99_us "${LAT_RUNS[$1]}")"; }
c_p999() { ms "$(med p999_us "${LAT_RUNS[$1]}")"; }
c_p99each() {
    local v out=()
    for v in $(runs_of p99_us "${LAT_RUNS[$1]}"); do out+=("$(ms "$v")"); done
    (IFS=/ && echo "${out[*]}")
}
c_p99ok() { yesno "$(med p99_us "${LAT_RUNS[$1]}")" 5000; }
c_hs() { fmt_int "$(med rps "${HS_RUNS[$1]}")"; }
c_hseach() {
    local v out=()
    for v in $(runs_of rps "${HS_RUNS[$1]}"); do out+=("$(fmt_int "$v")"); done
    (IFS=/ && echo "${out[*]}")
}
c_hsp99() { ms "$(med p99_us "${HS_RUNS[$1]}")"; }
c_up() { echo "${IDLE_UP[$1]}/$IDLE_CONNS"; }
c_rss0() { mib "${RSS0[$1]}"; }
c_rss1() { mib "${RSS1[$1]}"; }
c_perconn() {
    awk -v a="${RSS0[$1]}" -v b="${RSS1[$1]}" -v n="${IDLE_UP[$1]}" \
        'BEGIN { printf "%.1f", (n > 0 ? (b - a) / n : 0) }'
}
c_rssok() { yesno "${RSS1[$1]}" $((64 * 1024)); }
c_errs() { echo "${ERRS[$1]}"; }

date_tag="$(date +%Y-%m-%d)"
RESULT="bench/results/http-libraries-$date_tag.md"
mkdir -p bench/results
{
    echo "# HTTP library comparison: evhttp, h2o, nginx ($date_tag)"
    echo
    echo "Command: \`bench/http-libraries/run.sh\` (ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS IDLE_CONNS=$IDLE_CONNS)."
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r);"
    echo "load average $LOAD_BEFORE before the run, $LOAD_AFTER after. The servers and the load"
    echo "generator share the cores; everything runs on loopback."
    echo
    echo "Packages: libevent-dev $(pkgver libevent-dev), libh2o-evloop-dev $(pkgver libh2o-evloop-dev),"
    echo "nginx $(pkgver nginx), libssl3 $(pkgver libssl3); the load generator parses answers with"
    echo "libhttp-parser-dev $(pkgver libhttp-parser-dev)."
    echo
    echo "Each server runs 2 event loops (threads; nginx: worker processes) on SO_REUSEPORT"
    echo "listeners, with TLS 1.3 (TLS_AES_128_GCM_SHA256), an ECDSA P-256 server certificate and a"
    echo "required client certificate, both from \`iotctl\`, and no session resumption. Each request"
    echo "is a POST of $BODY_BYTES bytes of SenML; the answer is 204. Keep-alive runs use $CONNS connections"
    echo "over $LOAD_THREADS load-generator threads, ${WARMUP} s of warm-up, then ${DURATION} s measured;"
    echo "latency and handshake runs measure ${SHORT} s after the same warm-up. Rounds are"
    echo "interleaved across the servers; each cell is the median over the $ROUNDS rounds (for"
    echo "latency, the median of each percentile)."
    echo
    echo "| | evhttp | h2o | nginx |"
    echo "| --- | --- | --- | --- |"
    row "keep-alive req/s (median of $ROUNDS rounds)" c_rps
    row "share of nginx" c_share
    row "each round, req/s" c_rounds
    row "server CPU per request, µs" c_cpu
    row "event loops busy (CPU), each round" c_busy
    row "p99 at max rate (closed loop), ms" c_p99max
    row "open loop at half the max: asked / done, req/s" c_rate
    row "— p50, ms" c_p50
    row "— p90, ms" c_p90
    row "— p99, ms" c_p99
    row "— p99.9, ms" c_p999
    row "— p99 of each round, ms" c_p99each
    row "— p99 under 5 ms" c_p99ok
    row "full handshakes/s ($HANDSHAKE_CONNS connections at a time)" c_hs
    row "— each round" c_hseach
    row "— p99 connect + handshake + request, ms" c_hsp99
    row "idle: connections up and held" c_up
    row "idle: RSS before, MiB" c_rss0
    row "idle: RSS with the connections, MiB" c_rss1
    row "idle: KiB per connection" c_perconn
    row "idle: under 64 MiB" c_rssok
    row "errors, all runs" c_errs
    echo
    echo "Requests served by each event loop over the whole run: evhttp $(served evhttp),"
    echo "h2o $(served h2o). nginx's RSS is the sum over its master and its 2 workers, so pages"
    echo "they share count more than once."
    echo
    echo "evhttp with one listening socket shared by both loops instead of SO_REUSEPORT:"
    echo "$(c_rps evhttp-shared) req/s (median; rounds $(c_rounds evhttp-shared)), $(c_share evhttp-shared)"
    echo "of nginx; event loops busy $(c_busy evhttp-shared); requests per loop $(served evhttp-shared);"
    echo "errors $(c_errs evhttp-shared)."
} >"$RESULT"

say "results written to $RESULT"
cat "$RESULT"
