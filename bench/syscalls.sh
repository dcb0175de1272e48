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
# IOTGW=PATH traces another build of the gateway; BEFORE=PATH also traces
# that build (an earlier one) in the same run, for a before/after table;
# LABEL=NAME names the results file syscalls-DATE-NAME.md.
set -euo pipefail
export LC_ALL=C # sort and join agree on the order
cd "$(dirname "$0")/.."

KEEP=0
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,20p' "$0"
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
BEFORE="${BEFORE:-}"
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || die "no gateway binary at $BEFORE"

make_workdir syscalls

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
    if [ "$1" != nginx ]; then
        metric iotgw_requests_total
    else
        curl -s --max-time 5 "http://127.0.0.1:$NGINX_STATUS_PORT/status" |
            awk 'NR == 3 { print $3 }'
    fi
}

# traced_pids SERVER: the gateway's process (-f takes every thread), or
# nginx's workers (the master does not serve).
traced_pids() {
    if [ "$1" != nginx ]; then
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

# Each gateway starts with a fresh outbox: the devices' sequence numbers
# start again.
SERVERS=(gateway nginx)
if [ -n "$BEFORE" ]; then
    SERVERS=(before gateway nginx)
    stop gateway
    AFTER="$IOTGW"
    IOTGW="$BEFORE"
    start_gateway "$WORK/gw/iotgw.conf"
    measure before "$GW_PORT" --seq-start 1
    wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
    stop gateway
    IOTGW="$AFTER"
    start_gateway "$WORK/gw/iotgw.conf"
fi
measure gateway "$GW_PORT" --seq-start 1
wait_drained 120 || die "the gateway's outbox did not drain within 120 s"
measure nginx "$NGINX_PORT"

# --- report -------------------------------------------------------------------

# table: one row per system call, a column of calls per request (and of
# those that failed) for each server, the most frequent first.
table() {
    local srv joined="$WORK/calls-joined" next
    calls_of "${SERVERS[0]}" | sort >"$joined"
    for srv in "${SERVERS[@]:1}"; do
        calls_of "$srv" | sort >"$WORK/calls-$srv"
        next="$(join -a1 -a2 -e0 -o auto "$joined" "$WORK/calls-$srv")"
        echo "$next" >"$joined"
    done
    local reqs=()
    for srv in "${SERVERS[@]}"; do reqs+=("${REQS[$srv]}"); done
    awk -v reqs="${reqs[*]}" '{
            n = split(reqs, r, " ")
            line = sprintf("| `%s` |", $1)
            most = 0
            for (i = 1; i <= n; i++) {
                v = $(2 * i) / r[i]
                if (v > most)
                    most = v
                line = line sprintf(" %.2f (%.2f) |", v, $(2 * i + 1) / r[i])
            }
            printf "%.4f\t%s\n", most, line
        }' "$joined" | sort -t$'\t' -k1,1gr | cut -f2
}
header() {
    local srv line="| call |" sep="| --- |"
    for srv in "${SERVERS[@]}"; do
        line+=" $(label "$srv") |"
        sep+=" --- |"
    done
    echo "$line"
    echo "$sep"
}
label() {
    case "$1" in
    before) echo "gateway before" ;;
    gateway) [ -n "$BEFORE" ] && echo "gateway after" || echo "gateway" ;;
    *) echo "$1" ;;
    esac
}
row() {
    local srv line="| $1 |"
    shift
    for srv in "${SERVERS[@]}"; do line+=" $("$@" "$srv") |"; done
    echo "$line"
}
r_reqs() { echo "${REQS[$1]}"; }
r_rps() { printf '%.0f' "${RPS[$1]}"; }
r_errs() { echo "${ERRS[$1]}"; }
r_total() { echo "**$(per_req "$(total_calls "$1")" "${REQS[$1]}")**"; }
r_calls() { total_calls "$1"; }

pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
GW_SHA="$(sha256sum "$IOTGW" | cut -c1-12)"
SOURCE="$(git rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")"
if ! git diff-index --quiet HEAD -- gateway common 2>/dev/null; then
    SOURCE+=", gateway/ or common/ modified"
fi
DATE="$(date +%Y-%m-%d)"
RESULT="bench/results/syscalls-$DATE${LABEL:+-$LABEL}.md"
mkdir -p bench/results
SHA_BEFORE=""
[ -z "$BEFORE" ] || SHA_BEFORE=" and \`$BEFORE\` (sha256 $(sha256sum "$BEFORE" | cut -c1-12)…, traced first)"
{
    echo "# System calls per request ($DATE)"
    echo
    echo "Command: \`$([ -n "$BEFORE" ] && echo "BEFORE=$BEFORE ")bench/syscalls.sh\` (DEVICES=$DEVICES WARMUP=$WARMUP"
    echo "WINDOW=$WINDOW); gateway binary \`$IOTGW\` (sha256 $GW_SHA…; source $SOURCE)$SHA_BEFORE;"
    echo "nginx $(pkgver nginx), strace $(strace -V | awk 'NR == 1 { print $4 }'), kernel $(uname -r), $(nproc) cores."
    echo
    echo "\`strace -c -f\` on the gateway's process (every thread) and on nginx's workers for"
    echo "${WINDOW} s of $DEVICES keep-alive mutual-TLS connections, closed loop, after ${WARMUP} s"
    echo "of load; divided by the requests each answered in that window. Under strace both run"
    echo "slower than without, so batching (group commit, epoll_wait) sees smaller batches."
    echo
    header
    row "requests answered while traced" r_reqs
    row "load generator's rate over the run, req/s (traced part included)" r_rps
    row "load generator's errors" r_errs
    row "system calls while traced" r_calls
    row "**system calls per request**" r_total
    echo
    echo "By call: calls per request (of which failed, e.g. EAGAIN)."
    echo
    header
    table
} >"$RESULT"

say "results written to $RESULT"
cat "$RESULT"
