#!/usr/bin/env bash
# System calls per request on the keep-alive path: the gateway's full
# pipeline (TLS, admission, outbox with group commit, forwarder to
# Mosquitto) against nginx answering 204, in the same run, on loopback.
# `strace -c -f` is attached to every thread of the gateway (and to nginx's
# workers) for a fixed window while the load generator keeps DEVICES
# keep-alive connections busy; the calls are divided by the requests the
# server answered in that window (iotgw_requests_total; nginx's
# stub_status). Writes bench/results/syscalls-DATE.md; docs/performance.md
# ("System calls per request") explains the method and the results.
#
#   bench/syscalls.sh          build the release tree, measure, report
#   bench/syscalls.sh --keep   keep the work directory (logs, strace output)
#
# Environment: DEVICES (32) keep-alive connections, one device each; WARMUP
# (2) seconds of load before strace attaches; WINDOW (5) seconds traced;
# BUILD (build/release) the tree to build and take the tools from;
# IOTGW=PATH traces another build of the gateway; LABEL=NAME names the
# results file syscalls-DATE-NAME.md.
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
        echo "syscalls.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

DEVICES="${DEVICES:-32}"
WARMUP="${WARMUP:-2}"
WINDOW="${WINDOW:-5}"
BUILD="${BUILD:-build/release}"
# Every wait is bounded: the load runs past the window by this much at most.
SLACK=20

T0=$SECONDS
declare -A PIDS
# shellcheck source=bench/lib.sh
. bench/lib.sh

for tool in strace nginx mosquitto jq curl; do
    command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh --bench)"
done

say "building the gateway, iotctl and the load generator in $BUILD"
[ -f "$BUILD/build.ninja" ] || cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target iotgw iotctl bench_loadgen >/dev/null
IOTCTL="$BUILD/tools/iotctl"
IOTGW="${IOTGW:-$BUILD/gateway/iotgw}"
LOADGEN="$BUILD/bench/loadgen/loadgen"
[ -x "$IOTGW" ] || die "no gateway binary at $IOTGW"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-syscalls.XXXXXX")"
chmod 755 "$WORK" # nginx's workers run as www-data
cleanup() {
    local name
    for name in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$name]}" 2>/dev/null || true
    done
    for name in "${!PIDS[@]}"; do
        wait "${PIDS[$name]}" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then
        echo "syscalls.sh: work files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P="$WORK/pki"
say "making the PKI with iotctl: CA, gateway and broker certificates, $DEVICES devices"
make_pki "$DEVICES"

BROKER_PORT="$(free_port)"
GW_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
NGINX_PORT="$(free_port)"
write_broker_conf
mkdir -p "$WORK/gw"
gateway_config "$WORK/gw/iotgw.conf"

# nginx's count of requests, from a stub_status listener of its own: the
# measured server block is the one bench/run.sh uses.
NGINX_STATUS_PORT="$(free_port)"
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/status.conf" <<CONF
server {
    listen 127.0.0.1:$NGINX_STATUS_PORT;
    location = /status { stub_status; }
}
CONF

start_broker
start_gateway "$WORK/gw/iotgw.conf"
start_nginx "$WORK/nginx/status.conf"
wait_port "$NGINX_STATUS_PORT" || die "nginx's status listener did not open"
say "gateway (pid ${PIDS[gateway]}) on $GW_PORT, nginx on $NGINX_PORT, mosquitto on $BROKER_PORT"

# requests_of SERVER: the requests it has answered so far.
requests_of() {
    if [ "$1" = gateway ]; then
        metric iotgw_requests_total
    else
        curl -s --max-time 5 "http://127.0.0.1:$NGINX_STATUS_PORT/status" |
            awk 'NR == 3 { print $3 }'
    fi
}

# traced_pids SERVER: the gateway's process (-f takes every thread), or
# nginx's workers (the master does not serve).
traced_pids() {
    if [ "$1" = gateway ]; then
        echo "${PIDS[gateway]}"
    else
        pgrep -P "${PIDS[nginx]}"
    fi
}

declare -A REQS RPS ERRS
# measure SERVER PORT [LOADGEN ARGS...]: load for WARMUP, strace for WINDOW,
# then the load's end; the strace summary goes to $WORK/strace-SERVER.
measure() {
    local s="$1" port="$2" lg r0 r1 args=() p
    shift 2
    for p in $(traced_pids "$s"); do args+=(-p "$p"); done
    say "$s: $DEVICES keep-alive connections, ${WARMUP}s of load, then strace -c -f for ${WINDOW}s"
    timeout $((WARMUP + WINDOW + SLACK)) "$LOADGEN" --port "$port" --pki "$P" --devices bench- \
        --count "$DEVICES" --warmup 0 --duration $((WARMUP + WINDOW + 4)) --json "$@" \
        >"$WORK/load-$s.json" 2>>"$WORK/load.err" &
    lg=$!
    sleep "$WARMUP"
    r0="$(requests_of "$s")"
    timeout -s INT "$WINDOW" strace -c -f -o "$WORK/strace-$s" "${args[@]}" 2>>"$WORK/strace.err" ||
        true
    r1="$(requests_of "$s")"
    wait "$lg" || die "$s: the load generator failed; see $WORK/load.err"
    [ -s "$WORK/strace-$s" ] || die "$s: strace reported nothing; see $WORK/strace.err"
    REQS[$s]=$((r1 - r0))
    [ "${REQS[$s]}" -gt 0 ] || die "$s: no request answered while traced"
    RPS[$s]="$(jq -r .rps "$WORK/load-$s.json")"
    ERRS[$s]="$(jq -r .errors "$WORK/load-$s.json")"
    say "$s: ${REQS[$s]} requests while traced; $(total_calls "$s") system calls, $(per_req "$(total_calls "$s")" "${REQS[$s]}") per request"
}

# calls_of SERVER: "syscall calls errors" lines from strace's summary.
calls_of() {
    awk '$1 ~ /^[0-9.]+$/ && $NF != "total" {
            errs = (NF == 6) ? $5 : 0
            print $NF, $4, errs
        }' "$WORK/strace-$1"
}
total_calls() { calls_of "$1" | awk '{ n += $2 } END { print n + 0 }'; }
per_req() { awk -v a="$1" -v n="$2" 'BEGIN { printf "%.2f", n ? a / n : 0 }'; }

# The devices' sequence numbers start above anything stored: a fresh outbox.
measure gateway "$GW_PORT" --seq-start 1
wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
measure nginx "$NGINX_PORT"

# --- report -------------------------------------------------------------------

# table: one row per system call, both servers, most frequent (gateway) first.
table() {
    local g="$WORK/calls-gateway" n="$WORK/calls-nginx"
    calls_of gateway | sort >"$g"
    calls_of nginx | sort >"$n"
    join -a1 -a2 -e0 -o 0,1.2,1.3,2.2,2.3 "$g" "$n" |
        awk -v gr="${REQS[gateway]}" -v nr="${REQS[nginx]}" '{
            printf "| `%s` | %d | %.2f | %.2f | %d | %.2f | %.2f |\n",
                $1, $2, $2 / gr, $3 / gr, $4, $4 / nr, $5 / nr
        }' | sort -t'|' -k3,3nr
}

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
GW_SHA="$(sha256sum "$IOTGW" | cut -c1-12)"
SOURCE="$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")"
if ! git diff-index --quiet HEAD -- gateway common 2>/dev/null; then
    SOURCE+=", gateway/ or common/ modified"
fi
DATE="$(date +%Y-%m-%d)"
RESULT="bench/results/syscalls-$DATE${LABEL:+-$LABEL}.md"
mkdir -p bench/results
GT="$(total_calls gateway)"
NT="$(total_calls nginx)"
{
    echo "# System calls per request ($DATE)"
    echo
    echo "Command: \`bench/syscalls.sh\` (DEVICES=$DEVICES WARMUP=$WARMUP WINDOW=$WINDOW); gateway"
    echo "binary \`$IOTGW\` (sha256 $GW_SHA…; source $SOURCE); nginx $(pkgver nginx),"
    echo "strace $(strace -V | awk 'NR == 1 { print $4 }'), kernel $(uname -r), $(nproc) cores."
    echo
    echo "\`strace -c -f\` on the gateway's process (every thread) and on nginx's workers for"
    echo "${WINDOW} s of $DEVICES keep-alive mutual-TLS connections, closed loop, after ${WARMUP} s"
    echo "of load; divided by the requests each answered in that window. Under strace both run"
    echo "slower than without, so batching (group commit, epoll_wait) sees smaller batches."
    echo
    echo "| | gateway | nginx |"
    echo "| --- | --- | --- |"
    echo "| requests answered while traced | ${REQS[gateway]} | ${REQS[nginx]} |"
    echo "| load generator's rate over the run, req/s (traced part included) | $(printf '%.0f' "${RPS[gateway]}") | $(printf '%.0f' "${RPS[nginx]}") |"
    echo "| load generator's errors | ${ERRS[gateway]} | ${ERRS[nginx]} |"
    echo "| **system calls per request** | **$(per_req "$GT" "${REQS[gateway]}")** | **$(per_req "$NT" "${REQS[nginx]}")** |"
    echo
    echo "| call | gateway calls | per request | failed per request | nginx calls | per request | failed per request |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    table
    echo "| total | $GT | $(per_req "$GT" "${REQS[gateway]}") | | $NT | $(per_req "$NT" "${REQS[nginx]}") | |"
} >"$RESULT"

say "results written to $RESULT"
cat "$RESULT"
