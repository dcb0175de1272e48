#!/usr/bin/env bash
# Where the gateway's CPU goes: `perf record` on every thread of the
# gateway while the load generator keeps DEVICES keep-alive mutual-TLS
# connections busy (closed loop), or, with MODE=wakeup, while DEVICES
# devices wake (a new connection per reading, as bench/wakeup.sh), against
# Mosquitto.
# Prints the shares by library and the top functions, and writes
# bench/results/profile-DATE.md (perf.data stays in the work directory
# with --keep, for `perf report -i`).
#
#   bench/profile.sh           about 40 s
#   bench/profile.sh --keep    keep the work directory (perf.data, logs)
#
# Environment: MODE (keepalive | wakeup), WAKE_ARGS (for wakeup: loadgen
# options, default "--resume --tls12 --rate 150"), DEVICES (64), WARMUP (2)
# seconds of load before recording, WINDOW (6) seconds recorded, TOP (40)
# functions listed, IOTGW=PATH profiles another build.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,17p' "$0"
        exit 0
        ;;
    *)
        echo "profile.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
MODE="${MODE:-keepalive}"
WAKE_ARGS="${WAKE_ARGS:---resume --tls12 --rate 150}"
DEVICES="${DEVICES:-64}"
WARMUP="${WARMUP:-2}"
WINDOW="${WINDOW:-6}"
TOP="${TOP:-40}"
T0=$SECONDS
# shellcheck source=bench/lib.sh
. bench/lib.sh

command -v perf >/dev/null || die "perf is missing: scripts/install-deps.sh --bench (Debian package linux-perf)"
build_bench bench_loadgen
make_workdir profile
P="$WORK/pki"
say "making the PKI with iotctl: $DEVICES devices"
make_pki "$DEVICES"
BROKER_PORT="$(free_port)"
GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
write_broker_conf
start_broker
mkdir -p "$WORK/gw"
gateway_config "$WORK/gw/iotgw.conf"
start_gateway "$WORK/gw/iotgw.conf"
pid="${PIDS[gateway]}"

mode_args=()
# shellcheck disable=SC2206 # the options are split on purpose
case "$MODE" in
keepalive) ;;
wakeup) mode_args=(--handshake $WAKE_ARGS) ;;
*) die "MODE is keepalive or wakeup, not '$MODE'" ;;
esac
say "load: $DEVICES devices ($MODE ${mode_args[*]}) for $((WARMUP + WINDOW + 2)) s; recording $WINDOW s after $WARMUP s"
"$LOADGEN" --port "$GW_PORT" --pki "$P" --devices bench- --count "$DEVICES" "${mode_args[@]}" \
    --duration $((WARMUP + WINDOW + 1)) --warmup 1 --json >"$WORK/loadgen.json" &
lg=$!
sleep "$WARMUP"
r0="$(metric iotgw_requests_total)"
perf record -F 999 -g -p "$pid" -o "$WORK/perf.data" -- sleep "$WINDOW" >"$WORK/perf.out" 2>&1 ||
    die "perf record failed: $(tail -2 "$WORK/perf.out")"
r1="$(metric iotgw_requests_total)"
wait "$lg" || die "loadgen failed: $(cat "$WORK/loadgen.json")"
requests=$((r1 - r0))
say "recorded $requests requests"

# Whole reports first: a pipe cut short by head would fail the script.
perf report -i "$WORK/perf.data" --no-children --sort dso --stdio >"$WORK/dso.full" 2>/dev/null
perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio >"$WORK/sym.full" 2>/dev/null
awk '/^ +[0-9.]+%/ && n++ < 15' "$WORK/dso.full" >"$WORK/dso.txt"
awk -v top="$TOP" '/^ +[0-9.]+%/ && n++ < top' "$WORK/sym.full" >"$WORK/sym.txt"

mkdir -p bench/results
REPORT="bench/results/profile-$(date -u +%Y-%m-%d-%H%M).md"
{
    echo "# Gateway profile, $MODE ${mode_args[*]}, $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo
    echo "\`bench/profile.sh\` (MODE=$MODE DEVICES=$DEVICES WINDOW=$WINDOW); $(nproc) cores, load average"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end; $requests requests in the recorded window;"
    echo "loadgen $(jq -r .rps "$WORK/loadgen.json") req/s over its whole run."
    echo
    echo "## By library (self time)"
    echo
    echo '```'
    cat "$WORK/dso.txt"
    echo '```'
    echo
    echo "## Top $TOP functions (self time)"
    echo
    echo '```'
    cat "$WORK/sym.txt"
    echo '```'
} >"$REPORT"
say "report: $REPORT"
cat "$REPORT"
