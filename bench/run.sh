#!/usr/bin/env bash
# The side-by-side benchmark: the gateway's full pipeline against nginx (the
# machine's mutual-TLS ceiling), the original Flask design (Flask's own
# server and gunicorn) and Mosquitto alone, on loopback, with the same load
# generator where the protocol allows. Writes bench/results/bench-DATE.md;
# docs/performance.md explains the method and the results.
#
#   bench/run.sh            the full run (about 3 minutes on 2 cores)
#   bench/run.sh --quick    fewer rounds and a 100,000-reading drain test
#   bench/run.sh --keep     keep the work directory (logs, configs, JSON)
#
# Environment: ROUNDS (3) interleaved rounds per measurement, DURATION (5)
# measured seconds per keep-alive run, CONNS (64) keep-alive connections,
# one device each; DRAIN_COUNT (1000000) readings in the drain test;
# IDLE_CONNS (10000); IOTGW=PATH measures another build of the gateway, and
# LABEL=NAME names the results file bench-DATE-NAME.md.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
KEEP=0
for arg in "$@"; do
    case "$arg" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,17p' "$0"
        exit 0
        ;;
    *)
        echo "run.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    ROUNDS="${ROUNDS:-1}"
    DURATION="${DURATION:-3}"
    DRAIN_COUNT="${DRAIN_COUNT:-100000}"
else
    ROUNDS="${ROUNDS:-3}"
    DURATION="${DURATION:-5}"
    DRAIN_COUNT="${DRAIN_COUNT:-1000000}"
fi
CONNS="${CONNS:-64}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
WARMUP=1
HS_CONNS=32
HS_DURATION=3
LAT_DURATION="$DURATION"
DRAIN_BATCH=1000
DRAIN_CONNS=4
MQTT_WINDOW=256
FLASK_WORKERS=$((2 * $(nproc) + 1)) # gunicorn's documented starting point
# Every wait is bounded.
LOADGEN_TIMEOUT=300
DRAIN_TIMEOUT=900

T0=$SECONDS
# shellcheck source=bench/lib.sh
. bench/lib.sh

# --- setup ------------------------------------------------------------------

say "installing what the benchmark needs (scripts/install-deps.sh --bench)"
scripts/install-deps.sh --bench >&2

build_bench bench_loadgen bench_mqtt_latency bench_mqtt_pub
MQTT_LATENCY="$BUILD/bench/mqtt-latency/mqtt-latency"
MQTT_PUB="$BUILD/bench/mqtt-pub/mqtt-pub"
PY=/usr/bin/python3 # Debian's, with python3-flask and python3-paho-mqtt
GUNICORN=/usr/bin/gunicorn

# 10,000 idle connections need as many descriptors in the gateway, nginx and
# the load generator; children inherit this.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge $((IDLE_CONNS + 1000)) ] ||
    say "warning: only $(ulimit -n) descriptors allowed; the idle test needs $((IDLE_CONNS + 1000))"

make_workdir bench

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $CONNS devices"
NDEV_PKI=$((CONNS > HS_CONNS ? CONNS : HS_CONNS))
make_pki "$NDEV_PKI" flask

# --- services and measurements ----------------------------------------------

BROKER_PORT="$(free_port)"
write_broker_conf

GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
mkdir -p "$WORK/gw"
gateway_config "$WORK/gw/iotgw.conf"
gateway_config "$WORK/gw/drain.conf" "max_body = 1MiB" "max_readings = $DRAIN_BATCH" \
    "max_records = $((2 * DRAIN_BATCH))"

NGINX_PORT="$(free_port)"

FLASK_PORT="$(free_port)"
FLASK_ENV=(MQTT_HOST=localhost "MQTT_PORT=$BROKER_PORT" "MQTT_CA=$P/ca.crt"
    "MQTT_CERT=$P/clients/flask/cert.pem" "MQTT_KEY=$P/clients/flask/key.pem"
    FLASK_HOST=127.0.0.1 "FLASK_PORT=$FLASK_PORT" PYTHONDONTWRITEBYTECODE=1)
# `env` execs the server, so $! is the server's own process.
start_flask() {
    if [ "$1" = flask ]; then
        env "${FLASK_ENV[@]}" "$PY" bench/flask/app.py >>"$WORK/flask.log" 2>&1 &
    else
        env "${FLASK_ENV[@]}" "$GUNICORN" --chdir bench/flask --workers "$FLASK_WORKERS" \
            --bind "127.0.0.1:$FLASK_PORT" app:app >>"$WORK/gunicorn.log" 2>&1 &
    fi
    PIDS[$1]=$!
    wait_port "$FLASK_PORT" || die "$1 did not start; see $WORK/$1.log"
    local got
    got="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
        --data '{"t":1,"temperature":21.5}' "http://127.0.0.1:$FLASK_PORT/v1/telemetry")"
    [ "$got" = 200 ] || die "$1 answered $got to a reading; see $WORK/$1.log"
}


# loadgen PORT ARGS...: one JSON result line.
loadgen() {
    local port="$1"
    shift
    timeout "$LOADGEN_TIMEOUT" "$LOADGEN" --port "$port" --pki "$P" --devices bench- --json "$@"
}
# The devices' next sequence number: the gateway takes a reading whose seq is
# not above the last one it stored as a duplicate, so every run goes on from
# where the last one stopped.
SEQ=1
# gw_load ARGS...: loadgen against the gateway; the result line goes to $OUT.
gw_load() {
    OUT="$(loadgen "$GW_PORT" --count "$CONNS" --seq-start "$SEQ" "$@")" || die "loadgen: $OUT"
    SEQ="$(jq -r .seq_next <<<"$OUT")"
}
errors_of() { jq -r '.errors' <<<"$1"; }
# Sums over a server's runs, and the whole run's tally of errors.
declare -A ERRS
add_errors() { ERRS[$1]=$((${ERRS[$1]:-0} + $2)); }

fmt_int() { printf '%.0f' "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

# --- 1. keep-alive max rate: gateway and nginx --------------------------------

start_broker
start_gateway "$WORK/gw/iotgw.conf"
start_nginx
say "gateway (pid ${PIDS[gateway]}) on $GW_PORT, nginx on $NGINX_PORT, mosquitto on $BROKER_PORT"

declare -A KA_RPS KA_P99 KA_CPU
GW_COMMITS=""
GW_DRAIN_AFTER=""
BROKER_CPU=""
for r in $(seq 1 "$ROUNDS"); do
    for s in gateway nginx; do
        say "keep-alive round $r/$ROUNDS: $s, $CONNS connections (one device each), closed loop, ${WARMUP}s + ${DURATION}s"
        c0="$(cpu_ticks "$s")"
        b0="$(cpu_ticks broker)"
        if [ "$s" = gateway ]; then
            s0="$(metric iotgw_readings_stored_total)"
            k0="$(metric iotgw_outbox_commits_total)"
            gw_load --duration "$DURATION" --warmup "$WARMUP"
            out="$OUT"
            t_end=$SECONDS
            wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
            GW_DRAIN_AFTER+="$((SECONDS - t_end)) "
            s1="$(metric iotgw_readings_stored_total)"
            k1="$(metric iotgw_outbox_commits_total)"
            GW_COMMITS+="$(awk -v s=$((s1 - s0)) -v k=$((k1 - k0)) 'BEGIN { printf "%.1f", k ? s / k : 0 }') "
        else
            out="$(loadgen "$NGINX_PORT" --count "$CONNS" --duration "$DURATION" --warmup "$WARMUP")" ||
                die "loadgen: $out"
        fi
        c1="$(cpu_ticks "$s")"
        b1="$(cpu_ticks broker)"
        answered="$(jq '[.status[]] | add // 0' <<<"$out")"
        cpu="$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.1f", n ? 1e6 * t / hz / n : 0 }')"
        [ "$s" != gateway ] || BROKER_CPU+="$(awk -v t=$((b1 - b0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.1f", n ? 1e6 * t / hz / n : 0 }') "
        KA_RPS[$s]+="$(j .rps "$out") "
        KA_P99[$s]+="$(j .latency.p99_us "$out") "
        KA_CPU[$s]+="$cpu "
        add_errors "$s" "$(errors_of "$out")"
        say "$s: $(fmt_int "$(j .rps "$out")") req/s, p50 $(ms "$(j .latency.p50_us "$out")") ms, p99 $(ms "$(j .latency.p99_us "$out")") ms, errors $(errors_of "$out"), server CPU $cpu µs/request"
    done
done
declare -A MAX
for s in gateway nginx; do MAX[$s]="$(median "${KA_RPS[$s]}")"; done
HALF="$(awk -v m="${MAX[gateway]}" 'BEGIN { printf "%.0f", m / 2 }')"

# --- 2. latency at half the max, POST and end to end --------------------------

declare -A LAT
LOST=0
DUPS=0
ACKED=0
GAPS=0
MSG_BYTES=""
for r in $(seq 1 "$ROUNDS"); do
    say "latency round $r/$ROUNDS: gateway at half its max, $(fmt_int "$HALF") req/s open loop, with the end-to-end subscriber"
    rm -f "$WORK/ready" "$WORK/acked"
    "$MQTT_LATENCY" --port "$BROKER_PORT" --ca "$P/ca.crt" --cert "$P/clients/consumer/cert.pem" \
        --key "$P/clients/consumer/key.pem" --ready "$WORK/ready" --acked "$WORK/acked" \
        --settle 30 --max-seconds 600 --json >"$WORK/sub.json" 2>>"$WORK/sub.err" &
    PIDS[subscriber]=$!
    for _ in $(seq 1 100); do
        [ -e "$WORK/ready" ] && break
        sleep 0.1
    done
    [ -e "$WORK/ready" ] || die "the subscriber did not subscribe; see $WORK/sub.err"
    gw_load --rate "$HALF" --duration "$LAT_DURATION" --warmup "$WARMUP" --acked "$WORK/acked"
    out="$OUT"
    wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
    stop subscriber
    sub="$(cat "$WORK/sub.json")"
    [ -n "$sub" ] || die "the subscriber reported nothing; see $WORK/sub.err"
    LAT[rps]+="$(j .rps "$out") "
    LAT[p50]+="$(j .latency.p50_us "$out") "
    LAT[p99]+="$(j .latency.p99_us "$out") "
    LAT[p999]+="$(j .latency.p999_us "$out") "
    LAT[e2e50]+="$(j .latency.p50_us "$sub") "
    LAT[e2e99]+="$(j .latency.p99_us "$sub") "
    LAT[e2e999]+="$(j .latency.p999_us "$sub") "
    LOST=$((LOST + $(j .lost "$sub")))
    DUPS=$((DUPS + $(j .duplicates "$sub")))
    GAPS=$((GAPS + $(j .gseq_gaps "$sub")))
    ACKED=$((ACKED + $(j .acked "$sub")))
    MSG_BYTES+="$(printf '%.0f' "$(j .payload_bytes_avg "$sub")") "
    add_errors gateway "$(errors_of "$out")"
    say "gateway: $(fmt_int "$(j .rps "$out")") req/s, POST p99 $(ms "$(j .latency.p99_us "$out")") ms; end to end p50 $(ms "$(j .latency.p50_us "$sub")") ms, p99 $(ms "$(j .latency.p99_us "$sub")") ms; acknowledged $(j .acked "$sub"), lost $(j .lost "$sub"), duplicates $(j .duplicates "$sub")"
done

# --- 3. full handshakes: gateway and nginx ------------------------------------

declare -A HS HS_P99 HS_CPU
for r in $(seq 1 "$ROUNDS"); do
    for s in gateway nginx; do
        say "handshake round $r/$ROUNDS: $s, a new mutual-TLS connection per request, $HS_CONNS at a time, ${HS_DURATION}s"
        c0="$(cpu_ticks "$s")"
        if [ "$s" = gateway ]; then
            gw_load --handshake --connections "$HS_CONNS" --duration "$HS_DURATION" \
                --warmup "$WARMUP"
            out="$OUT"
        else
            out="$(loadgen "$NGINX_PORT" --count "$HS_CONNS" --handshake --duration "$HS_DURATION" \
                --warmup "$WARMUP")" || die "loadgen: $out"
        fi
        c1="$(cpu_ticks "$s")"
        answered="$(jq '[.status[]] | add // 0' <<<"$out")"
        cpu="$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.0f", n ? 1e6 * t / hz / n : 0 }')"
        HS[$s]+="$(j .rps "$out") "
        HS_P99[$s]+="$(j .latency.p99_us "$out") "
        HS_CPU[$s]+="$cpu "
        add_errors "$s" "$(errors_of "$out")"
        say "$s: $(fmt_int "$(j .rps "$out")") handshakes/s, p99 $(ms "$(j .latency.p99_us "$out")") ms (connect + handshake + request), server CPU $cpu µs/handshake"
    done
done
wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
stop gateway
stop nginx

# --- 4. the original design: Flask over plain HTTP ----------------------------

declare -A FL_RPS FL_P99
for s in flask gunicorn; do
    start_flask "$s"
    label="Flask's own server"
    [ "$s" = gunicorn ] && label="gunicorn, $FLASK_WORKERS sync workers"
    say "$label: plain HTTP, JSON body, $CONNS connections, closed loop, ${WARMUP}s + ${DURATION}s"
    c0="$(cpu_ticks "$s")"
    out="$(timeout "$LOADGEN_TIMEOUT" "$LOADGEN" --plain --json-body --port "$FLASK_PORT" \
        --devices bench- --count "$CONNS" --duration "$DURATION" --warmup "$WARMUP" --json)" ||
        die "loadgen: $out"
    c1="$(cpu_ticks "$s")"
    answered="$(jq '[.status[]] | add // 0' <<<"$out")"
    KA_CPU[$s]="$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.1f", n ? 1e6 * t / hz / n : 0 }')"
    FL_RPS[$s]="$(j .rps "$out")"
    FL_P99[$s]="$(j .latency.p99_us "$out")"
    add_errors "$s" "$(errors_of "$out")"
    say "$s: $(fmt_int "${FL_RPS[$s]}") req/s, p99 $(ms "${FL_P99[$s]}") ms, errors $(errors_of "$out"), server CPU ${KA_CPU[$s]} µs/request"
    stop "$s"
done

# --- 5. drain: the outbox filled while the broker is away ---------------------

stop broker
say "drain test: broker stopped; filling the outbox with $(fmt_int "$DRAIN_COUNT") readings ($DRAIN_BATCH per POST, $DRAIN_CONNS connections)"
start_gateway "$WORK/gw/drain.conf"
fill_start=$SECONDS
gw_load --connections "$DRAIN_CONNS" --batch "$DRAIN_BATCH" \
    --requests $((DRAIN_COUNT / DRAIN_BATCH)) --duration "$DRAIN_TIMEOUT" --warmup 0
out="$OUT"
FILL_RATE="$(j .readings_per_s "$out")"
add_errors gateway "$(errors_of "$out")"
FILLED="$(depth)"
[ "$FILLED" = "$DRAIN_COUNT" ] || die "the outbox holds $FILLED readings, not $DRAIN_COUNT"
say "filled in $((SECONDS - fill_start)) s ($(fmt_int "$FILL_RATE") readings/s); outbox depth $FILLED; starting the broker"
log_lines="$(wc -l <"$WORK/gw/log")"
start_broker
t_broker="$(date +%s.%N)"
deadline=$((SECONDS + DRAIN_TIMEOUT))
t_conn=""
last_say=$SECONDS
while :; do
    h="$(healthz)"
    now="$(date +%s.%N)"
    if [ -z "$t_conn" ] && [ "$(jq -r .broker <<<"$h")" = connected ]; then
        # The connection's own time, from the gateway's log line.
        t_conn="$(tail -n +$((log_lines + 1)) "$WORK/gw/log" | grep -m1 'event=mqtt.connected' |
            cut -d' ' -f1 | xargs -r date +%s.%N -d)" || true
        t_conn="${t_conn:-$now}"
        # CPU from the connection on: what the forwarder spends retrying before it
        # is not the drain.
        g0="$(cpu_ticks gateway)"
        b0="$(cpu_ticks broker)"
    fi
    d="$(jq -r .outbox_depth <<<"$h")"
    [ "$d" = 0 ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "the outbox still holds $d readings after ${DRAIN_TIMEOUT}s"
    if [ $((SECONDS - last_say)) -ge 5 ]; then
        say "draining: outbox depth $(fmt_int "$d")"
        last_say=$SECONDS
    fi
    sleep 0.05
done
t_done="$(date +%s.%N)"
per_msg() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$DRAIN_COUNT" 'BEGIN { printf "%.1f", 1e6 * t / hz / n }'; }
DRAIN_CPU_GW="$(per_msg $(($(cpu_ticks gateway) - g0)))"
DRAIN_CPU_BROKER="$(per_msg $(($(cpu_ticks broker) - b0)))"
RECONNECT_S="$(awk -v a="$t_broker" -v b="$t_conn" 'BEGIN { printf "%.2f", b - a }')"
DRAIN_S="$(awk -v a="$t_conn" -v b="$t_done" 'BEGIN { printf "%.2f", b - a }')"
DRAIN_RATE="$(awk -v n="$DRAIN_COUNT" -v s="$DRAIN_S" 'BEGIN { printf "%.0f", n / s }')"
PUBLISHED="$(metric iotgw_readings_published_total)"
say "drained $(fmt_int "$DRAIN_COUNT") readings in $DRAIN_S s from the broker connection ($(fmt_int "$DRAIN_RATE") msgs/s); the gateway reconnected $RECONNECT_S s after the broker started"
stop gateway

say "Mosquitto alone: $(fmt_int "$DRAIN_COUNT") QoS 1 publishes of 200 bytes, window $MQTT_WINDOW, MQTT 5 over TLS"
# children_cpu: CPU seconds (user + system) of every child this shell has waited for.
# (`times` must run in this shell, not in a pipeline's subshell.)
children_cpu() {
    times >"$WORK/times"
    tail -1 "$WORK/times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}
b0="$(cpu_ticks broker)"
children_cpu >"$WORK/k0"
timeout "$DRAIN_TIMEOUT" "$MQTT_PUB" --port "$BROKER_PORT" --ca "$P/ca.crt" \
    --cert "$P/clients/gateway-mqtt/cert.pem" --key "$P/clients/gateway-mqtt/key.pem" \
    --count "$DRAIN_COUNT" --size 200 --window "$MQTT_WINDOW" --json >"$WORK/pub.json" ||
    die "mqtt-pub failed"
children_cpu >"$WORK/k1"
PUB_CPU="$(awk -v a="$(cat "$WORK/k0")" -v b="$(cat "$WORK/k1")" -v n="$DRAIN_COUNT" 'BEGIN { printf "%.1f", 1e6 * (b - a) / n }')"
PUB_CPU_BROKER="$(per_msg $(($(cpu_ticks broker) - b0)))"
pub="$(cat "$WORK/pub.json")"
MOSQ_RATE="$(j .msgs_per_s "$pub")"
say "Mosquitto alone: $(fmt_int "$MOSQ_RATE") msgs/s (the broker allows $(j .broker_receive_maximum "$pub") in flight)"

# --- 6. idle connections ------------------------------------------------------

declare -A IDLE_UP IDLE_R0 IDLE_R1 IDLE_LOST
idle_round() {
    local s="$1" port="$2" out="$WORK/idle-$1.out" lg
    IDLE_R0[$s]="$(rss_kib "$s")"
    say "$s: opening $(fmt_int "$IDLE_CONNS") idle mutual-TLS connections (RSS before: $((IDLE_R0[$s] / 1024)) MiB)"
    timeout "$LOADGEN_TIMEOUT" "$LOADGEN" --port "$port" --pki "$P" --devices bench- --count "$CONNS" \
        --idle "$IDLE_CONNS" --hold 240 --json >"$out" 2>>"$WORK/idle.err" &
    lg=$!
    for _ in $(seq 1 2400); do
        grep -q idle_ready "$out" && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    grep -q idle_ready "$out" || die "$s: the idle connections were not set up; see $WORK/idle.err"
    sleep 2
    IDLE_R1[$s]="$(rss_kib "$s")"
    [ "$s" != gateway ] || GW_OPEN="$(metric iotgw_open_connections)"
    IDLE_UP[$s]="$(head -1 "$out" | jq -r .established)"
    kill -TERM "$lg"
    wait "$lg" || die "$s: the load generator failed in idle mode"
    IDLE_LOST[$s]="$(tail -1 "$out" | jq -r .closed_by_server)"
    add_errors "$s" "$(tail -1 "$out" | jq -r .errors)"
    say "$s: ${IDLE_UP[$s]} connections up, RSS $((IDLE_R1[$s] / 1024)) MiB, ${IDLE_LOST[$s]} closed by the server while held"
}
start_gateway "$WORK/gw/iotgw.conf"
sleep 1
idle_round gateway "$GW_PORT"
stop gateway
start_nginx
idle_round nginx "$NGINX_PORT"
stop nginx
stop broker
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -------------------------------------------------------------------

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", b ? 100 * a / b : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", b ? a / b : 0 }'; }
yes_if() { awk "BEGIN { print ($1) ? \"**yes**\" : \"**no**\" }"; }
list_ms() {
    local v out=()
    for v in $1; do out+=("$(ms "$v")"); done
    (IFS=/ && echo "${out[*]}")
}
list_int() {
    local v out=()
    for v in $1; do out+=("$(fmt_int "$v")"); done
    (IFS=/ && echo "${out[*]}")
}
kib_per_conn() {
    awk -v a="${IDLE_R0[$1]}" -v b="${IDLE_R1[$1]}" -v n="${IDLE_UP[$1]}" \
        'BEGIN { printf "%.1f", n ? (b - a) / n : 0 }'
}

GW="${MAX[gateway]}"
NG="${MAX[nginx]}"
FL="${FL_RPS[flask]}"
GU="${FL_RPS[gunicorn]}"
P99="$(median "${LAT[p99]}")"
E2E99="$(median "${LAT[e2e99]}")"
HS_GW="$(median "${HS[gateway]}")"
HS_NG="$(median "${HS[nginx]}")"
RSS_GW_MIB="$(awk -v k="${IDLE_R1[gateway]}" 'BEGIN { printf "%.0f", k / 1024 }')"
GW_SHA="$(sha256sum "$IOTGW" | cut -c1-12)"
# The source the gateway was built from (read-only git queries).
SOURCE="$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")"
if ! git diff-index --quiet HEAD -- gateway common 2>/dev/null; then
    SOURCE+=", gateway/ or common/ modified"
fi
DATE="$(date +%Y-%m-%d)"
RESULT="bench/results/bench-$DATE${LABEL:+-$LABEL}.md"
mkdir -p bench/results

{
    echo "# Gateway benchmark ($DATE)"
    echo
    echo "Command: \`bench/run.sh$([ "$QUICK" = 1 ] && echo " --quick")\` (ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS"
    echo "DRAIN_COUNT=$DRAIN_COUNT IDLE_CONNS=$IDLE_CONNS); gateway binary \`$IOTGW\` (sha256 $GW_SHA…;"
    echo "source $SOURCE)."
    echo
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'),"
    echo "kernel $(uname -r); load average $LOAD_BEFORE before the run, $LOAD_AFTER after."
    echo "Everything (servers, broker, load generator, subscriber) shares these cores, on loopback."
    echo
    echo "Packages: nginx $(pkgver nginx), mosquitto $(pkgver mosquitto), libssl3 $(pkgver libssl3),"
    echo "libevent-2.1-7 $(pkgver libevent-2.1-7), libsqlite3-0 $(pkgver libsqlite3-0),"
    echo "libmosquitto1 $(pkgver libmosquitto1), python3-flask $(pkgver python3-flask),"
    echo "python3-paho-mqtt $(pkgver python3-paho-mqtt), gunicorn $(pkgver gunicorn),"
    echo "libhttp-parser2.9 $(pkgver libhttp-parser2.9)."
    echo
    echo "## Targets"
    echo
    echo "| target | measured | met |"
    echo "| --- | --- | --- |"
    echo "| keep-alive rate ≥ 60% of nginx's mutual-TLS 204 rate | $(fmt_int "$GW") / $(fmt_int "$NG") req/s = $(pct "$GW" "$NG") | $(yes_if "$GW >= 0.6 * $NG") |"
    echo "| ≥ 30× Flask's own server | $(fmt_int "$GW") / $(fmt_int "$FL") req/s = $(ratio "$GW" "$FL") | $(yes_if "$GW >= 30 * $FL") |"
    echo "| POST p99 < 5 ms at half the max rate | $(ms "$P99") ms at $(fmt_int "$HALF") req/s | $(yes_if "$P99 < 5000") |"
    echo "| end-to-end p99 < 20 ms (POST sent → MQTT message received) | $(ms "$E2E99") ms | $(yes_if "$E2E99 < 20000") |"
    echo "| full handshakes/s ≥ 80% of nginx's | $(fmt_int "$HS_GW") / $(fmt_int "$HS_NG") = $(pct "$HS_GW" "$HS_NG") | $(yes_if "$HS_GW >= 0.8 * $HS_NG") |"
    echo "| $(fmt_int "$IDLE_CONNS") idle connections under 64 MiB RSS | ${IDLE_UP[gateway]} held, $RSS_GW_MIB MiB | $(yes_if "${IDLE_UP[gateway]} >= $IDLE_CONNS && ${IDLE_R1[gateway]} < 65536") |"
    echo "| $(fmt_int "$DRAIN_COUNT")-reading drain ≥ 50% of Mosquitto's own QoS 1 rate | $(fmt_int "$DRAIN_RATE") / $(fmt_int "$MOSQ_RATE") msgs/s = $(pct "$DRAIN_RATE" "$MOSQ_RATE") | $(yes_if "$DRAIN_RATE >= 0.5 * $MOSQ_RATE") |"
    echo "| no lost reading (acknowledged, never published) | $LOST lost of $(fmt_int "$ACKED"); $DUPS duplicates | $(yes_if "$LOST == 0") |"
    echo
    echo "## Keep-alive, as fast as answers come ($CONNS connections, one device each, closed loop)"
    echo
    echo "| | gateway (full pipeline) | nginx (204) | Flask's own server | gunicorn ($FLASK_WORKERS workers) |"
    echo "| --- | --- | --- | --- | --- |"
    echo "| transport | HTTPS, mutual TLS | HTTPS, mutual TLS | HTTP | HTTP |"
    echo "| req/s (median of $ROUNDS rounds) | $(fmt_int "$GW") | $(fmt_int "$NG") | $(fmt_int "$FL") | $(fmt_int "$GU") |"
    echo "| each round | $(list_int "${KA_RPS[gateway]}") | $(list_int "${KA_RPS[nginx]}") | 1 round | 1 round |"
    echo "| share of nginx | $(pct "$GW" "$NG") | 100% | $(pct "$FL" "$NG") | $(pct "$GU" "$NG") |"
    echo "| ratio to Flask's own server | $(ratio "$GW" "$FL") | $(ratio "$NG" "$FL") | 1.0× | $(ratio "$GU" "$FL") |"
    echo "| p99 at that rate, ms (each round) | $(list_ms "${KA_P99[gateway]}") | $(list_ms "${KA_P99[nginx]}") | $(ms "${FL_P99[flask]}") | $(ms "${FL_P99[gunicorn]}") |"
    echo "| server CPU per request, µs (median) | $(median "${KA_CPU[gateway]}") (+ broker $(median "$BROKER_CPU")) | $(median "${KA_CPU[nginx]}") | ${KA_CPU[flask]} | ${KA_CPU[gunicorn]} |"
    echo "| errors, all runs | ${ERRS[gateway]:-0} | ${ERRS[nginx]:-0} | ${ERRS[flask]:-0} | ${ERRS[gunicorn]:-0} |"
    echo
    echo "Gateway: readings per outbox commit (group commit) $(median "$GW_COMMITS"); seconds to"
    echo "drain the outbox after each round: $(echo "$GW_DRAIN_AFTER" | xargs | tr ' ' '/'). The server CPU"
    echo "per request counts every thread of the process (nginx: master and workers; gunicorn:"
    echo "arbiter and workers) over the run, warm-up and outbox drain included, divided by the"
    echo "requests answered."
    echo
    echo "## Latency at half the gateway's max ($(fmt_int "$HALF") req/s, open loop)"
    echo
    echo "| | p50 ms | p99 ms | p99.9 ms | p99 of each round, ms |"
    echo "| --- | --- | --- | --- | --- |"
    echo "| POST (from the time each request was due) | $(ms "$(median "${LAT[p50]}")") | $(ms "$P99") | $(ms "$(median "${LAT[p999]}")") | $(list_ms "${LAT[p99]}") |"
    echo "| end to end (due time → message at a QoS 1 subscriber) | $(ms "$(median "${LAT[e2e50]}")") | $(ms "$E2E99") | $(ms "$(median "${LAT[e2e999]}")") | $(list_ms "${LAT[e2e99]}") |"
    echo
    echo "Achieved rates: $(list_int "${LAT[rps]}") req/s. Readings acknowledged over the rounds:"
    echo "$(fmt_int "$ACKED"); lost $LOST; duplicates $DUPS; gateway sequence gaps $GAPS. Average"
    echo "message size at the subscriber: $(median "$MSG_BYTES") bytes."
    echo
    echo "## Full handshakes (a new mutual-TLS connection per request, $HS_CONNS at a time, no resumption)"
    echo
    echo "| | gateway | nginx |"
    echo "| --- | --- | --- |"
    echo "| handshakes/s (median) | $(fmt_int "$HS_GW") | $(fmt_int "$HS_NG") |"
    echo "| each round | $(list_int "${HS[gateway]}") | $(list_int "${HS[nginx]}") |"
    echo "| p99 connect + handshake + request, ms | $(ms "$(median "${HS_P99[gateway]}")") | $(ms "$(median "${HS_P99[nginx]}")") |"
    echo "| server CPU per handshake (and its request), µs | $(median "${HS_CPU[gateway]}") | $(median "${HS_CPU[nginx]}") |"
    echo
    echo "## Idle connections ($(fmt_int "$IDLE_CONNS") mutual-TLS connections, one request each, then held)"
    echo
    echo "| | gateway | nginx |"
    echo "| --- | --- | --- |"
    echo "| connections up and held | ${IDLE_UP[gateway]} | ${IDLE_UP[nginx]} |"
    echo "| closed by the server while held | ${IDLE_LOST[gateway]} | ${IDLE_LOST[nginx]} |"
    echo "| RSS before, MiB | $((IDLE_R0[gateway] / 1024)) | $((IDLE_R0[nginx] / 1024)) |"
    echo "| RSS with the connections, MiB | $((IDLE_R1[gateway] / 1024)) | $((IDLE_R1[nginx] / 1024)) |"
    echo "| KiB per connection | $(kib_per_conn gateway) | $(kib_per_conn nginx) |"
    echo
    echo "The gateway reported $GW_OPEN open connections in \`iotgw_open_connections\` while they"
    echo "were held. nginx's RSS is summed over its master and workers."
    echo
    echo "## Drain ($(fmt_int "$DRAIN_COUNT") readings stored while the broker was stopped)"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| fill rate ($DRAIN_BATCH readings per POST, $DRAIN_CONNS connections) | $(fmt_int "$FILL_RATE") readings/s |"
    echo "| broker started → gateway connected | $RECONNECT_S s |"
    echo "| connected → outbox empty | $DRAIN_S s |"
    echo "| gateway drain rate | $(fmt_int "$DRAIN_RATE") msgs/s ($(fmt_int "$PUBLISHED") published) |"
    echo "| Mosquitto alone, QoS 1, 200 bytes, window $MQTT_WINDOW | $(fmt_int "$MOSQ_RATE") msgs/s (PUBACK p99 $(ms "$(j .puback_latency.p99_us "$pub")") ms) |"
    echo "| drain rate / Mosquitto alone | $(pct "$DRAIN_RATE" "$MOSQ_RATE") |"
    echo "| CPU per message while draining: gateway / broker, µs | $DRAIN_CPU_GW / $DRAIN_CPU_BROKER |"
    echo "| CPU per message, Mosquitto alone: publisher / broker, µs | $PUB_CPU / $PUB_CPU_BROKER |"
} >"$RESULT"

say "results written to $RESULT"
cat "$RESULT"
