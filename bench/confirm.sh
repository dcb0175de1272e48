#!/usr/bin/env bash
# What `acknowledge = confirmed` costs: the POST latency and the gateway's
# CPU per reading when the 200 waits for the broker's PUBACK, against the
# default (`stored`: the 200 once the outbox has synced), on Mosquitto (MQTT
# 5) and on RabbitMQ (MQTT 3.1.1, the consumer's persistent session on a
# quorum queue, so its PUBACK follows the quorum's confirm). Keep-alive
# devices, open loop at a fixed rate; interleaved rounds, medians. Writes
# bench/results/confirm-DATE.md; docs/gateway.md "What a 200 means" gives
# the figures.
#
#   bench/confirm.sh            about 3 minutes on 2 cores
#   bench/confirm.sh --keep     keep the work directory (logs, configs, JSON)
#
# Environment: DEVICES (32) keep-alive devices, RATE (300) readings per
# second in all, DURATION (8) measured seconds per run, ROUNDS (3),
# RABBITMQ=0 skips RabbitMQ, IOTGW=PATH measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,16p' "$0"
        exit 0
        ;;
    *)
        echo "confirm.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
DEVICES="${DEVICES:-32}"
RATE="${RATE:-300}"
DURATION="${DURATION:-8}"
ROUNDS="${ROUNDS:-3}"
RABBITMQ="${RABBITMQ:-1}"
LOADGEN_TIMEOUT=120
T0=$SECONDS
# shellcheck source=bench/lib.sh
. bench/lib.sh

say "installing what the benchmark needs (scripts/install-deps.sh --bench)"
scripts/install-deps.sh --bench >&2
build_bench bench_loadgen
make_workdir confirm
P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $DEVICES devices"
make_pki "$DEVICES"
mkdir -p "$WORK/gw"
ADMIN_PORT="$(free_port)"
GW_PORT="$(free_port)"

# --- the brokers ----------------------------------------------------------------------
BROKER_PORT="$(free_port)"
MOSQ_PORT=$BROKER_PORT
write_broker_conf
start_broker
consumer() { # consumer PORT VERSION: a QoS 1 persistent session that reads everything
    mosquitto_sub -V "$2" -h localhost -p "$1" --cafile "$P/ca.crt" \
        --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
        -i "consumer-$1" -c -q 1 -t 'telemetry/#' >/dev/null 2>>"$WORK/sub.err" &
    PIDS[sub-$1]=$!
}
consumer "$MOSQ_PORT" mqttv5

BROKERS=(mosquitto)
if [ "$RABBITMQ" = 1 ]; then
    # shellcheck source=tests/support/rabbitmq.sh
    . tests/support/rabbitmq.sh
    RMQ_PORT="$(free_port)"
    R="$WORK/rmq"
    say "starting RabbitMQ (one node, quorum queues) on $RMQ_PORT"
    home="$HOME" # rmq_setup points HOME at the node's cookie, for its own commands
    rmq_setup "$R" "$RMQ_PORT" "$P/ca.crt" "$P/servers/broker/cert.pem" \
        "$P/servers/broker/key.pem" || die "cannot set RabbitMQ up"
    epmd -port "$EPMD_PORT" &
    PIDS[epmd]=$!
    "$RMQ_BIN/rabbitmq-server" >"$R.out" 2>&1 &
    PIDS[rabbitmq]=$!
    rmq_wait 90 || die "RabbitMQ did not start: $(tail -3 "$R.out")"
    wait_port "$RMQ_PORT" 30 || die "RabbitMQ's MQTT listener is not up: $(tail -3 "$R.out")"
    rmq_cert_users gateway-mqtt consumer
    export HOME="$home"
    consumer "$RMQ_PORT" mqttv311
    BROKERS+=(rabbitmq)
fi
sleep 1 # the consumers' sessions exist before the first reading

# --- one run ------------------------------------------------------------------------
SEQ=1
# run BROKER MODE: a gateway on BROKER with acknowledge = MODE, loaded at
# RATE; sets OUT (loadgen's JSON) and CPU (gateway µs per reading).
run() {
    local broker="$1" mode="$2" port proto c0 c1 answered
    port="$([ "$broker" = mosquitto ] && echo "$MOSQ_PORT" || echo "$RMQ_PORT")"
    proto="$([ "$broker" = mosquitto ] && echo 5 || echo 3.1.1)"
    BROKER_PORT="$port" gateway_config "$WORK/gw/iotgw.conf" "mqtt_protocol = $proto" \
        "acknowledge = $mode"
    start_gateway "$WORK/gw/iotgw.conf"
    for _ in $(seq 1 50); do [ "$(healthz | jq -r .broker)" = connected ] && break; sleep 0.1; done
    c0="$(cpu_ticks gateway)"
    OUT="$(timeout "$LOADGEN_TIMEOUT" "$LOADGEN" --port "$GW_PORT" --pki "$P" --devices bench- \
        --count "$DEVICES" --rate "$RATE" --duration "$DURATION" --warmup 1 \
        --seq-start "$SEQ" --json)" || die "loadgen: $OUT"
    c1="$(cpu_ticks gateway)"
    wait_drained 30 || die "the outbox did not drain on $broker"
    stop gateway
    SEQ="$(j .seq_next "$OUT")"
    answered="$(jq '[.status[]] | add // 0' <<<"$OUT")"
    [ "$(j .errors "$OUT")" = 0 ] || die "$broker $mode: $(j .errors "$OUT") errors: $(j .first_error "$OUT")"
    CPU="$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.0f", n ? 1e6 * t / hz / n : 0 }')"
}

declare -A R
for r in $(seq 1 "$ROUNDS"); do
    for b in "${BROKERS[@]}"; do
        for m in stored confirmed; do
            run "$b" "$m"
            for q in p50 p99 p999; do R[$b|$m|$q]+="$(j ".latency.${q}_us" "$OUT") "; done
            R[$b|$m|cpu]+="$CPU "
            R[$b|$m|rps]+="$(j .rps "$OUT") "
            say "round $r/$ROUNDS $b acknowledge = $m: p50 $(j .latency.p50_us "$OUT") µs, p99 $(j .latency.p99_us "$OUT") µs, $(j .rps "$OUT") req/s, gateway $CPU µs CPU per reading"
        done
    done
done

# --- report ---------------------------------------------------------------------------
mkdir -p bench/results
REPORT="bench/results/confirm-$(date -u +%Y-%m-%d-%H%M).md"
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
{
    echo "# acknowledge = stored vs confirmed, $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo
    echo "\`bench/confirm.sh\` (DEVICES=$DEVICES RATE=$RATE DURATION=$DURATION ROUNDS=$ROUNDS);"
    echo "$(nproc) cores, load average before the report $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "gateway $("$IOTGW" --version 2>/dev/null | head -1). Medians of $ROUNDS rounds."
    echo
    echo "| broker | acknowledge | POST p50 ms | p99 ms | p99.9 ms | req/s | gateway CPU µs per reading |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for b in "${BROKERS[@]}"; do
        for m in stored confirmed; do
            echo "| $b | $m | $(ms "$(median "${R[$b|$m|p50]}")") | $(ms "$(median "${R[$b|$m|p99]}")") | $(ms "$(median "${R[$b|$m|p999]}")") | $(median "${R[$b|$m|rps]}") | $(median "${R[$b|$m|cpu]}") |"
        done
    done
    echo
    echo "Each round, p50 / p99 in µs:"
    echo
    for b in "${BROKERS[@]}"; do
        for m in stored confirmed; do
            echo "- $b $m: p50 ${R[$b|$m|p50]}/ p99 ${R[$b|$m|p99]}"
        done
    done
} >"$REPORT"
say "report: $REPORT"
cat "$REPORT"
