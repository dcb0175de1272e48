#!/usr/bin/env bash
# The wake-up benchmark: N battery devices, each waking on a schedule,
# connecting, posting one reading and disconnecting, as the ESP32 firmware
# does with deep sleep. Measured per wake-up for the gateway (its full
# pipeline: identity check, durable store, publish) and for nginx answering
# the same mutual-TLS POST with 204, each with its own session resumption:
# server CPU, bytes on the wire each way, round trips, and the device's
# public-key operations; full handshakes and resumed sessions, TLS 1.3 and
# TLS 1.2 (what mbedTLS 2.28 and the simulator speak). Writes
# bench/results/wakeup-DATE.md; docs/performance.md explains the method.
#
#   bench/wakeup.sh            about 2 minutes on 2 cores
#   bench/wakeup.sh --keep     keep the work directory (logs, configs, JSON)
#
# Environment: DEVICES (64) devices, RATE (150) wake-ups per second in all
# (open loop: each device wakes every DEVICES/RATE seconds; 0: closed loop,
# every device wakes again as soon as it is answered), DURATION (5)
# measured seconds per run, ROUNDS (3) interleaved rounds (median),
# IOTGW=PATH measures another build of the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,19p' "$0"
        exit 0
        ;;
    *)
        echo "wakeup.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
DEVICES="${DEVICES:-64}"
RATE="${RATE:-150}"
DURATION="${DURATION:-5}"
ROUNDS="${ROUNDS:-3}"
WARMUP=1
LOADGEN_TIMEOUT=120
T0=$SECONDS
# shellcheck source=bench/lib.sh
. bench/lib.sh

say "installing what the benchmark needs (scripts/install-deps.sh --bench)"
scripts/install-deps.sh --bench >&2
build_bench bench_loadgen

make_workdir wakeup

P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $DEVICES devices"
make_pki "$DEVICES"
BROKER_PORT="$(free_port)"
GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
NGINX_PORT="$(free_port)"
write_broker_conf
start_broker
# The gateway with the product's defaults (resumption on,
# tls_session_lifetime 2 h) but for the limits lib.sh lifts for simulated
# devices; nginx with its own resumption (stateless tickets).
mkdir -p "$WORK/gw"
gateway_config "$WORK/gw/iotgw.conf"
start_gateway "$WORK/gw/iotgw.conf"
NGINX_RESUME=1 start_nginx
grep -q 'ssl_session_tickets on' "$WORK/nginx/nginx.conf" || die "cannot turn on nginx's session tickets"
say "gateway (pid ${PIDS[gateway]}) on $GW_PORT, nginx on $NGINX_PORT, mosquitto on $BROKER_PORT"


SEQ=1
# wake SERVER KIND TLS: one measured run; sets CPU (µs per wake-up) and OUT.
wake() {
    local server="$1" kind="$2" tls="$3" port args=() c0 c1 answered
    port="$([ "$server" = gateway ] && echo "$GW_PORT" || echo "$NGINX_PORT")"
    [ "$kind" = resumed ] && args+=(--resume)
    [ "$tls" = 1.2 ] && args+=(--tls12)
    [ "$RATE" = 0 ] || args+=(--rate "$RATE")
    c0="$(cpu_ticks "$server")"
    OUT="$(timeout "$LOADGEN_TIMEOUT" "$LOADGEN" --port "$port" --pki "$P" --devices bench- \
        --count "$DEVICES" --handshake --duration "$DURATION" --warmup "$WARMUP" \
        --seq-start "$SEQ" --json "${args[@]}")" || die "loadgen: $OUT"
    c1="$(cpu_ticks "$server")"
    SEQ="$(j .seq_next "$OUT")"
    answered="$(jq '[.status[]] | add // 0' <<<"$OUT")"
    [ "$(j .errors "$OUT")" = 0 ] || die "$server $kind TLS $tls: $(j .errors "$OUT") errors: $(j .first_error "$OUT")"
    CPU="$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$answered" 'BEGIN { printf "%.0f", n ? 1e6 * t / hz / n : 0 }')"
}

declare -A R
CASES=("full 1.3" "resumed 1.3" "full 1.2" "resumed 1.2")
for r in $(seq 1 "$ROUNDS"); do
    for c in "${CASES[@]}"; do
        read -r kind tls <<<"$c"
        for s in gateway nginx; do
            wake "$s" "$kind" "$tls"
            key="$s|$kind|$tls"
            R[$key|cpu]+="$CPU "
            R[$key|out]+="$(j .bytes_out_per_wake "$OUT") "
            R[$key|in]+="$(j .bytes_in_per_wake "$OUT") "
            R[$key|rtt]+="$(j .round_trips_per_wake "$OUT") "
            R[$key|resumed]+="$(awk -v a="$(j .wakes_resumed "$OUT")" -v b="$(j .wakes "$OUT")" 'BEGIN { printf "%.3f", b ? a / b : 0 }') "
            R[$key|p50]+="$(j .latency.p50_us "$OUT") "
            say "round $r/$ROUNDS $s $kind TLS $tls: $CPU µs server CPU per wake-up, $(j .bytes_out_per_wake "$OUT" | cut -d. -f1) B out, $(j .bytes_in_per_wake "$OUT" | cut -d. -f1) B in, $(j .round_trips_per_wake "$OUT") round trips, resumed $(j .wakes_resumed "$OUT")/$(j .wakes "$OUT")"
        done
    done
done

# The device's public-key operations per wake-up, from the handshake each
# case negotiates with the project's P-256 certificates (ECDHE-ECDSA): a full
# TLS 1.3 or 1.2 handshake makes an ECDHE key pair and shared secret (2),
# verifies the server's certificate and its handshake signature (2) and
# signs its own CertificateVerify (1); a TLS 1.3 resumption (psk_dhe_ke, the
# only PSK mode OpenSSL's server accepts by default) keeps the ECDHE (2); a
# TLS 1.2 ticket resumption none. The figures below check that the case
# negotiated is the one the count is for (the resumed share).
pk_ops() {
    case "$1|$2" in
    full\|*) echo "5 (ECDHE 2, verify 2, sign 1)" ;;
    resumed\|1.3) echo "2 (ECDHE 2)" ;;
    resumed\|1.2) echo "0" ;;
    esac
}

STAMP="$(date -u +%Y-%m-%d-%H%M)"
RES="bench/results/wakeup-$STAMP$([ "$RATE" != 0 ] || echo -closed).md"
GW_FULL="$(median "${R[gateway|full|1.3|cpu]}")"
GW_RES="$(median "${R[gateway|resumed|1.3|cpu]}")"
NG_FULL="$(median "${R[nginx|full|1.3|cpu]}")"
NG_RES="$(median "${R[nginx|resumed|1.3|cpu]}")"
{
    echo "# Wake-up benchmark, $STAMP"
    echo
    echo "\`bench/wakeup.sh\` (DEVICES=$DEVICES RATE=$RATE DURATION=$DURATION ROUNDS=$ROUNDS) on $(nproc) cores,"
    echo "$(uname -r), OpenSSL $(openssl version | awk '{ print $2 }'), nginx $(dpkg-query -W -f='${Version}' nginx 2>/dev/null || echo '?'),"
    echo "gateway $(git rev-parse --short HEAD 2>/dev/null || echo '?'). Each wake-up: TCP connect, mutual-TLS handshake (or"
    if [ "$RATE" = 0 ]; then
        echo "resumption), one POST of one reading, close; $DEVICES devices waking again as soon as answered (closed loop)."
    else
        echo "resumption), one POST of one reading, close; $RATE wake-ups per second over $DEVICES devices, open loop."
    fi
    echo "Medians of $ROUNDS interleaved rounds. Server CPU: all threads and processes, from /proc."
    echo
    echo "| server | handshake | TLS | server CPU µs / wake-up | bytes out / in | round trips | resumed | device public-key ops | p50 ms |"
    echo "|---|---|---|---:|---:|---:|---:|---|---:|"
    for c in "${CASES[@]}"; do
        read -r kind tls <<<"$c"
        for s in gateway nginx; do
            k="$s|$kind|$tls"
            printf '| %s | %s | %s | %s | %.0f / %.0f | %.2f | %.0f%% | %s | %.2f |\n' "$s" "$kind" "$tls" \
                "$(median "${R[$k|cpu]}")" "$(median "${R[$k|out]}")" "$(median "${R[$k|in]}")" \
                "$(median "${R[$k|rtt]}")" "$(awk -v v="$(median "${R[$k|resumed]}")" 'BEGIN { print 100 * v }')" \
                "$(pk_ops "$kind" "$tls")" "$(awk -v v="$(median "${R[$k|p50]}")" 'BEGIN { print v / 1000 }')"
        done
    done
    echo
    echo "Targets (TLS 1.3):"
    echo "- a resumed wake-up costs the gateway under a third of a full one: $GW_RES / $GW_FULL µs = $(awk -v a="$GW_RES" -v b="$GW_FULL" 'BEGIN { printf "%.2f", a / b }')"
    echo "- the gateway's CPU per wake-up at or below nginx's: full $GW_FULL vs $NG_FULL µs ($(awk -v a="$GW_FULL" -v b="$NG_FULL" 'BEGIN { printf "%.2f×", a / b }')), resumed $GW_RES vs $NG_RES µs ($(awk -v a="$GW_RES" -v b="$NG_RES" 'BEGIN { printf "%.2f×", a / b }'))"
    echo
    echo "Gateway counters after the run: $(metric iotgw_tls_full_handshakes_total) full handshakes, $(metric iotgw_tls_resumed_handshakes_total) resumed, $(metric iotgw_tls_resumptions_refused_total) resumptions refused."
} >"$RES"
cat "$RES"
say "wrote $RES"
