#!/usr/bin/env bash
# What the shared state on etcd costs (docs/cluster.md, "Shared state on
# etcd"), against the same gateway without it, on loopback: a three-member
# etcd 3.4 cluster with TLS and client certificates (tests/support/etcd.sh),
# the real gateway, Mosquitto, curl and openssl as the devices.
#  1. Enrollment: N devices per mode and round, each with its own token
#     (iotctl token create), a fresh P-256 CSR and one simpleenroll (curl
#     -u DEVICE:TOKEN, a new TLS connection each), at a gateway without
#     shared_state and at one with it (the token claim is one etcd
#     transaction); interleaved rounds; curl's time_total and the gateway's
#     est.issued duration_ms, medians and p90, and their difference.
#  2. Propagation: M final update reports (confirmed / failed) at gateway A,
#     each timed from A's 204 to gateway B's update.report_shared log line,
#     for each shared_state_poll in POLLS; median and max.
#  3. etcd alone: TXNS create-if-absent transactions (POST /v3/kv/txn,
#     compare CREATE revision 0) by curl on one kept connection, to the
#     leader and to a follower.
# Writes bench/results/shared-DATE.md; docs/cluster.md gives the figures.
#
#   bench/shared.sh            about 2 minutes on 2 cores
#   bench/shared.sh --keep     keep the work directory (PKI, configs, logs, timings)
#
# Environment: N (40) enrollments per mode and round, ROUNDS (3), M (10)
# reports per poll setting, POLLS ("1s 200ms"), TXNS (200), BUILD
# (build/asan: where iotgw and iotctl are built; build/bench builds a
# RelWithDebInfo there), IOTGW=PATH measures another gateway binary. A
# failed run keeps its work directory, whose files its error names.
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP=0
ARGS="$*"
for arg in "$@"; do
    case "$arg" in
    --keep) KEEP=1 ;;
    -h | --help)
        sed -n '2,27p' "$0"
        exit 0
        ;;
    *)
        echo "shared.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done
N="${N:-40}"
ROUNDS="${ROUNDS:-3}"
M="${M:-10}"
POLLS="${POLLS:-1s 200ms}"
TXNS="${TXNS:-200}"
BUILD="${BUILD:-build/asan}"
T0=$SECONDS
# shellcheck source=bench/lib.sh
. bench/lib.sh
# shellcheck source=tests/support/etcd.sh
. tests/support/etcd.sh

for v in N ROUNDS M TXNS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number, got '${!v}'"
done
for tool in etcd etcdctl curl openssl jq mosquitto sqlite3 date; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done
LOAD_BEFORE="$(uptime | sed 's/^ *//')"

# --- the build ----------------------------------------------------------------
if [ "$BUILD" = build/bench ]; then
    # shellcheck disable=SC2119 # no targets beyond iotgw and iotctl
    build_bench
else
    say "building iotgw and iotctl in $BUILD (if out of date)"
    [ -f "$BUILD/build.ninja" ] || die "no configured build in $BUILD (cmake -S . -B $BUILD -G Ninja)"
    cmake --build "$BUILD" --target iotgw iotctl >"${TMPDIR:-/tmp}/shared-bench-build.$$" 2>&1 ||
        die "cmake --build $BUILD failed: $(tail -5 "${TMPDIR:-/tmp}/shared-bench-build.$$")"
    rm -f "${TMPDIR:-/tmp}/shared-bench-build.$$"
    IOTCTL="$BUILD/tools/iotctl"
    IOTGW="${IOTGW:-$BUILD/gateway/iotgw}"
fi
[ -x "$IOTGW" ] || die "no gateway binary at $IOTGW"
[ -x "$IOTCTL" ] || die "no iotctl at $IOTCTL"
ASAN=no
if ldd "$IOTGW" 2>/dev/null | grep -q libasan; then ASAN=yes; fi

# --- the work directory, and everything started, stopped on every exit --------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/iot-shared-bench.XXXXXX")"
declare -A GWS # gateway name -> pid
cleanup() {
    local rc=$? name
    trap - EXIT INT TERM
    for name in "${!GWS[@]}"; do kill -TERM "${GWS[$name]}" 2>/dev/null || true; done
    for name in "${!GWS[@]}"; do wait "${GWS[$name]}" 2>/dev/null || true; done
    etcd_cluster_stop
    for name in "${!PIDS[@]}"; do kill -TERM "${PIDS[$name]}" 2>/dev/null || true; done
    for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
    if [ "$KEEP" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ]; }; then
        echo "shared.sh: work files kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

P="$WORK/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
EST_ISSUER="$P/issuers/gw-issuer"
POLL_MS=()
for poll in $POLLS; do
    case "$poll" in
    *ms) POLL_MS+=("${poll%ms}") ;;
    *s) POLL_MS+=($((${poll%s} * 1000))) ;;
    *) die "POLLS: '$poll' is neither Nms nor Ns" ;;
    esac
done

# --- PKI, devices, release, tokens --------------------------------------------
say "making the PKI with iotctl in $P: CA, gateway and broker, enrollment issuer, $((M * ${#POLL_MS[@]})) update devices"
ctl pki init >/dev/null || die "iotctl pki init in $P"
ctl cert server gateway --dns localhost --ip 127.0.0.1 >/dev/null || die "iotctl cert server gateway"
ctl cert server broker --dns localhost --ip 127.0.0.1 >/dev/null || die "iotctl cert server broker"
ctl cert client gateway-mqtt --role gateway >/dev/null || die "iotctl cert client gateway-mqtt"
ctl ca intermediate gw-issuer >/dev/null || die "iotctl ca intermediate gw-issuer"
ctl bootstrap init >/dev/null || die "iotctl bootstrap init"
for ms in "${POLL_MS[@]}"; do
    for i in $(seq 1 "$M"); do ctl device add "prop$ms-$i" >/dev/null || die "iotctl device add prop$ms-$i"; done
done
# One release per poll setting: a rollout file runs one rollout per release.
ctl firmware key create --name rel >/dev/null || die "iotctl firmware key create"
declare -A FW_SEQ
patch=0
for ms in "${POLL_MS[@]}"; do
    patch=$((patch + 1))
    head -c 8192 /dev/urandom >"$WORK/app-$ms.bin"
    ctl firmware sign --image "$WORK/app-$ms.bin" --vendor acme --class sensor \
        --version "2.0.$patch" --secure-version 0 --key rel \
        --out "$WORK/app-$ms.manifest" >/dev/null || die "iotctl firmware sign $WORK/app-$ms.bin"
    ctl firmware add --manifest "$WORK/app-$ms.manifest" --image "$WORK/app-$ms.bin" >/dev/null ||
        die "iotctl firmware add $WORK/app-$ms.manifest"
    FW_SEQ[$ms]="$(awk '/^sequence-number:/ { print $2 }' "$WORK/app-$ms.manifest")"
    [ -n "${FW_SEQ[$ms]}" ] || die "no sequence-number in $WORK/app-$ms.manifest"
done

MODES=(plain shared)
say "$((2 * ROUNDS * N)) enrollment tokens (iotctl token create) and P-256 CSRs (openssl)"
mkdir -p "$WORK/enroll"
for r in $(seq 1 "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
        for i in $(seq 1 "$N"); do
            dev="enr-$mode-$r-$i"
            tok="$(ctl token create --device "$dev" --ttl 2h 2>>"$WORK/tokens.err" | head -1)"
            [ "${#tok}" -eq 43 ] || die "iotctl token create --device $dev printed '$tok' (see $WORK/tokens.err)"
            echo "$tok" >"$WORK/enroll/$dev.tok"
            openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
                -keyout "$WORK/enroll/$dev.key" -subj "/CN=$dev" -outform DER 2>>"$WORK/openssl.err" |
                openssl base64 >"$WORK/enroll/$dev.csr" || die "openssl: no CSR for $dev (see $WORK/openssl.err)"
        done
    done
    say "tokens and CSRs: round $r/$ROUNDS ready"
done

# --- etcd and the broker --------------------------------------------------------
say "starting three etcd members (tests/support/etcd.sh), logs in $WORK/etcd"
etcd_cluster_start "$WORK/etcd" "$IOTCTL" 3 gw-a gw-b bench ||
    die "the etcd cluster did not start; see $WORK/etcd/etcd-*.log"
ETCD_VERSION="$(etcd --version | awk '/^etcd Version/ { print $3 }')"
BROKER_PORT="$(free_port)"
write_broker_conf
start_broker

# --- the gateways -----------------------------------------------------------------
# setup_gateway NAME: NAME's directory with its own copy of the registry
# (the tokens are unused in every copy) and rollout file.
setup_gateway() {
    local x="$1" ms
    mkdir -p "$WORK/$x"
    cp "$P/registry.db" "$WORK/$x/registry.db"
    for ms in "${POLL_MS[@]}"; do
        ctl rollout create "p$ms" --firmware "${FW_SEQ[$ms]}" \
            --devices "$(seq -f "prop$ms-%g" -s , 1 "$M")" --canary 0 --waves 100 \
            --failure-percent 100 --seed 7 --db "$WORK/$x/rollouts.db" >/dev/null 2>>"$WORK/iotctl.err" ||
            die "iotctl rollout create p$ms in $WORK/$x/rollouts.db (see $WORK/iotctl.err)"
    done
}
# gateway_conf NAME POLL_MS: NAME's configuration; plain has no shared_state.
gateway_conf() {
    local x="$1" ms="$2"
    cat >"$WORK/$x/gw.conf" <<CONF
device_listen = 127.0.0.1:${GWPORT[$x]}
admin_listen = 127.0.0.1:${GWADMIN[$x]}
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $WORK/$x/registry.db
outbox = $WORK/$x/outbox.db
rollouts = $WORK/$x/rollouts.db
firmware_dir = $P/firmware
est_ca_cert = $EST_ISSUER.pem
est_ca_key = $EST_ISSUER.key
est_bootstrap_ca = $P/bootstrap/ca.crt
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
mqtt_client_id = gw-$x
rate_limit = 0
max_connections_per_address = 0
connection_rate_per_address = 0
CONF
    if [ "$x" != plain ]; then
        cat >>"$WORK/$x/gw.conf" <<CONF
shared_state = $ETCD_ENDPOINTS
shared_state_ca = $ETCD_CA
shared_state_cert = $ETCD_DIR/clients/gw-$x.crt
shared_state_key = $ETCD_DIR/clients/gw-$x.key
shared_state_poll = ${ms}ms
CONF
    fi
}
# run_gateway NAME LOG: starts it, its stderr appended to LOG.
run_gateway() {
    local x="$1" log="$2"
    "$IOTGW" --config "$WORK/$x/gw.conf" 2>>"$log" &
    GWS[$x]=$!
    wait_port "${GWPORT[$x]}" 20 || die "gateway $x (pid ${GWS[$x]}) did not start; see $log: $(tail -3 "$log")"
}
halt_gateway() {
    [ -n "${GWS[$1]:-}" ] || return 0
    kill -TERM "${GWS[$1]}" 2>/dev/null || true
    wait "${GWS[$1]}" 2>/dev/null || true
    unset "GWS[$1]"
}
declare -A GWPORT GWADMIN
for x in plain a b; do
    GWPORT[$x]="$(free_port)"
    GWADMIN[$x]="$(free_port)"
    setup_gateway "$x"
done

# ms_of SECONDS: milliseconds, 2 decimals.
ms_of() { awk -v s="$1" 'BEGIN { printf "%.2f", s * 1000 }'; }
# pct P "V1 V2 ...": the P-th percentile, nearest rank.
pct() {
    # shellcheck disable=SC2086 # the list is split on purpose
    printf '%s\n' $2 | sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
        if (!NR) { print 0; exit } i = int(NR * p / 100); if (i < NR * p / 100) i++; if (i < 1) i = 1; print v[i] }'
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
f2() { awk -v a="$1" 'BEGIN { printf "%.2f", a }'; }

# --- 1. enrollment ------------------------------------------------------------------
# The plain gateway as "plain", the shared one as gateway a (poll 1 s).
gateway_conf plain 1000
gateway_conf a 1000
run_gateway plain "$WORK/plain/gw-enroll.log"
run_gateway a "$WORK/a/gw-enroll.log"
grep -q 'gateway.started.*gateway_name=gw-a' "$WORK/a/gw-enroll.log" ||
    die "gateway a did not start on the shared state; see $WORK/a/gw-enroll.log"
declare -A GWOF=([plain]=plain [shared]=a)
LEADER_ENROLL="$(etcd_leader || echo none)"
say "enrollment: $N devices per mode and round; etcd leader: member $LEADER_ENROLL, the gateway asks member 1 first"

# enroll MODE DEVICE: one simpleenroll; appends curl's time_total (s).
declare -A CURL_S
enroll() {
    local mode="$1" dev="$2" x="${GWOF[$1]}" out
    out="$(curl -s -o "$WORK/enroll/$dev.p7" -w '%{http_code} %{time_total}' --cacert "$P/ca.crt" \
        -u "$dev:$(cat "$WORK/enroll/$dev.tok")" -H "Content-Type: application/pkcs10" \
        --data-binary "@$WORK/enroll/$dev.csr" \
        "https://localhost:${GWPORT[$x]}/.well-known/est/simpleenroll" 2>&1)" || true
    [ "${out%% *}" = 200 ] ||
        die "simpleenroll of $dev at gateway $x answered '$out': $(head -c 300 "$WORK/enroll/$dev.p7" 2>/dev/null); see $WORK/$x/gw-enroll.log"
    CURL_S[$mode|$r]+="${out#* } "
}
for r in $(seq 1 "$ROUNDS"); do
    order=("${MODES[@]}")
    [ $((r % 2)) = 1 ] || order=(shared plain)
    for mode in "${order[@]}"; do
        for i in $(seq 1 "$N"); do enroll "$mode" "enr-$mode-$r-$i"; done
        say "round $r/$ROUNDS $mode: curl median $(ms_of "$(median "${CURL_S[$mode|$r]}")") ms"
    done
done
LEADER_ENROLL_END="$(etcd_leader || echo none)"

# The gateway's own durations, from its est.issued lines.
declare -A GW_MS ALL_CURL ALL_GW
for mode in "${MODES[@]}"; do
    x="${GWOF[$mode]}"
    for r in $(seq 1 "$ROUNDS"); do
        GW_MS[$mode|$r]="$(grep "event=est.issued .*device=enr-$mode-$r-" "$WORK/$x/gw-enroll.log" |
            sed -n 's/.* duration_ms=\([0-9.]*\).*/\1/p' | tr '\n' ' ')"
        got="$(wc -w <<<"${GW_MS[$mode|$r]}")"
        [ "$got" = "$N" ] || die "gateway $x logged $got est.issued lines for round $r, not $N; see $WORK/$x/gw-enroll.log"
        ALL_CURL[$mode]+="${CURL_S[$mode|$r]}"
        ALL_GW[$mode]+="${GW_MS[$mode|$r]} "
    done
done
claims="$(etcd_ctl get --prefix /iot/tokens/ --keys-only 2>/dev/null | grep -c . || true)"
[ "$claims" = $((ROUNDS * N)) ] || die "etcd holds $claims token claims, not $((ROUNDS * N)) (etcdctl get --prefix /iot/tokens/)"
halt_gateway plain
halt_gateway a

# --- 2. propagation ------------------------------------------------------------------
# ts_of LINE: a log line's timestamp in seconds since the epoch (ms resolution).
ts_of() { date -u -d "${1%% *}" +%s.%3N; }
declare -A PROP
for ms in "${POLL_MS[@]}"; do
    gateway_conf a "$ms"
    gateway_conf b "$ms"
    run_gateway a "$WORK/a/gw-poll$ms.log"
    run_gateway b "$WORK/b/gw-poll$ms.log"
    say "propagation, shared_state_poll = ${ms}ms: $M final reports at gateway a, each waited for at gateway b"
    for i in $(seq 1 "$M"); do
        dev="prop$ms-$i"
        crt=(--cacert "$P/ca.crt" --cert "$P/devices/$dev/cert.pem" --key "$P/devices/$dev/key.pem")
        code="$(curl -s -o "$WORK/a/manifest.out" -w '%{http_code}' "${crt[@]}" \
            "https://localhost:${GWPORT[a]}/v1/firmware/manifest" 2>&1)" || true
        [ "$code" = 200 ] || die "GET /v1/firmware/manifest for $dev at gateway a: '$code'; see $WORK/a/gw-poll$ms.log"
        # A random phase against b's poll.
        sleep "$(awk -v ms="$ms" -v r="$RANDOM" 'BEGIN { printf "%.3f", ms * r / 32768 / 1000 }')"
        if [ $((i % 2)) = 1 ]; then
            body="{\"status\":\"confirmed\",\"sequence\":${FW_SEQ[$ms]},\"offset\":8192,\"size\":8192}"
        else
            body="{\"status\":\"failed\",\"reason\":\"self_test\",\"sequence\":${FW_SEQ[$ms]},\"offset\":8192,\"size\":8192}"
        fi
        code="$(curl -s -o "$WORK/a/report.out" -w '%{http_code}' "${crt[@]}" \
            -H "Content-Type: application/json" --data-binary "$body" \
            "https://localhost:${GWPORT[a]}/v1/firmware/status" 2>&1)" || true
        answered="$EPOCHREALTIME"
        [ "$code" = 204 ] || die "report of $dev at gateway a: '$code' $(head -c 200 "$WORK/a/report.out"); see $WORK/a/gw-poll$ms.log"
        wait_s=$((10 + 10 * ms / 1000))
        deadline=$((SECONDS + wait_s))
        until line="$(grep -m1 "event=update.report_shared device=$dev rollout=p$ms " "$WORK/b/gw-poll$ms.log")"; do
            [ "$SECONDS" -lt "$deadline" ] || die "gateway b (pid ${GWS[b]}) did not apply $dev's report within ${wait_s}s; see $WORK/b/gw-poll$ms.log and $WORK/a/gw-poll$ms.log"
            sleep 0.02
        done
        PROP[$ms]+="$(awk -v b="$(ts_of "$line")" -v a="$answered" 'BEGIN { printf "%.0f", (b - a) * 1000 }') "
    done
    applied="$("$IOTCTL" rollout status "p$ms" --json --db "$WORK/b/rollouts.db" |
        jq '[.device_states[] | select(.state == "confirmed" or .state == "failed")] | length')"
    [ "$applied" = "$M" ] || die "$WORK/b/rollouts.db has $applied final states in p$ms, not $M"
    say "poll ${ms}ms: delays (ms) ${PROP[$ms]}"
    halt_gateway a
    halt_gateway b
done

# --- 3. etcd alone ------------------------------------------------------------------
# txn_run K: TXNS create-if-absent transactions on member K, one curl, one
# connection (the first, which pays the handshake, left out); sets TXN_S.
txn_run() {
    local k="$1" i key val cfg="$WORK/txn-$1.curl" out
    read -r cert keyf < <(etcd_client_files bench)
    : >"$cfg"
    for i in $(seq 0 "$TXNS"); do
        key="$(printf '/bench/tokens/m%s-%s-%064d' "$k" "$i" "$i" | base64 -w0)"
        val="$(printf '{"device":"enr-%s","spki":"%064d","gateway":"bench","at":%s}' "$i" "$i" "$EPOCHSECONDS" | base64 -w0)"
        printf '{"compare":[{"key":"%s","result":"EQUAL","target":"CREATE","create_revision":"0"}],"success":[{"request_put":{"key":"%s","value":"%s"}}],"failure":[{"request_range":{"key":"%s"}}]}' \
            "$key" "$key" "$val" "$key" >"$WORK/txn-$k-$i.json"
        [ "$i" = 0 ] || echo next >>"$cfg"
        cat >>"$cfg" <<CFG
url = "https://127.0.0.1:${ETCD_CLIENT_PORT[$k]}/v3/kv/txn"
cacert = "$ETCD_CA"
cert = "$cert"
key = "$keyf"
data-binary = "@$WORK/txn-$k-$i.json"
output = "$WORK/txn-$k.out"
write-out = "%{http_code} %{num_connects} %{time_total}\\n"
CFG
    done
    out="$(curl -s -K "$cfg" 2>&1)" || die "curl -K $cfg (member $k) failed: $(tail -2 <<<"$out")"
    [ "$(grep -vc '^200 ' <<<"$out" || true)" = 0 ] || die "member $k: $(grep -v '^200 ' <<<"$out" | head -2) (see $WORK/txn-$k.out)"
    TXN_CONNECTS="$(awk 'NR > 1 { n += $2 } END { print n + 0 }' <<<"$out")"
    TXN_S="$(awk 'NR > 1 { printf "%s ", $3 }' <<<"$out")"
    grep -q '"succeeded":true' "$WORK/txn-$k.out" || die "member $k: no transaction succeeded (see $WORK/txn-$k.out)"
}
LEADER="$(etcd_leader)" || die "no etcd leader (etcd_leader); see $WORK/etcd/etcd-*.log"
FOLLOWER=$((LEADER % 3 + 1))
declare -A TXN
say "etcd alone: $TXNS transactions on the leader (member $LEADER), then on a follower (member $FOLLOWER)"
for role in leader follower; do
    k="$([ "$role" = leader ] && echo "$LEADER" || echo "$FOLLOWER")"
    txn_run "$k"
    TXN[$role]="$TXN_S"
    TXN[$role|k]="$k"
    TXN[$role|c]="$TXN_CONNECTS"
    say "$role (member $k): median $(ms_of "$(median "$TXN_S")") ms, new connections after the first: $TXN_CONNECTS"
done
LOAD_AFTER="$(uptime | sed 's/^ *//')"

# --- report ---------------------------------------------------------------------------
mkdir -p bench/results
REPORT="bench/results/shared-$(date -u +%Y-%m-%d-%H%M).md"
cmdline=""
[ "$N" = 40 ] || cmdline+="N=$N "
[ "$ROUNDS" = 3 ] || cmdline+="ROUNDS=$ROUNDS "
[ "$M" = 10 ] || cmdline+="M=$M "
[ "$POLLS" = "1s 200ms" ] || cmdline+="POLLS=\"$POLLS\" "
[ "$TXNS" = 200 ] || cmdline+="TXNS=$TXNS "
[ "$BUILD" = build/asan ] || cmdline+="BUILD=$BUILD "
[ "$IOTGW" = "$BUILD/gateway/iotgw" ] || cmdline+="IOTGW=$IOTGW "
cmdline+="bench/shared.sh${ARGS:+ $ARGS}"
# Errors the gateways logged, by event.
GW_ERRORS="$(cat "$WORK"/plain/gw-*.log "$WORK"/a/gw-*.log "$WORK"/b/gw-*.log |
    sed -n 's/.* level=error event=\([^ ]*\).*/\1/p' | sort | uniq -c |
    awk '{ printf "%s`%s` %s", (NR > 1 ? ", " : ""), $2, $1 }')"
row() { # row LABEL LIST: median, p90, max in ms of a list in seconds
    echo "| $1 | $(ms_of "$(median "$2")") | $(ms_of "$(pct 90 "$2")") | $(ms_of "$(pct 100 "$2")") |"
}
{
    echo "# Shared state on etcd: what it costs, $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo
    echo "\`$cmdline\`; $(nproc) cores, $(uname -r)."
    echo "Gateway $IOTGW ($("$IOTGW" --version 2>/dev/null | head -1), ASan: $ASAN), commit $(git rev-parse --short HEAD)."
    echo "etcd $ETCD_VERSION, three members on loopback (tests/support/etcd.sh: TLS, client"
    echo "certificates, heartbeat 100 ms, election 1 s; data on $(df --output=source "$WORK" | tail -1))."
    echo
    echo "- load before: \`$LOAD_BEFORE\`"
    echo "- load after: \`$LOAD_AFTER\`"
    echo "- errors the gateways logged (event, lines): ${GW_ERRORS:-none}"
    echo
    echo "## 1. Enrollment: token, fresh P-256 CSR, simpleenroll"
    echo
    echo "$N devices per mode in each of $ROUNDS interleaved rounds ($((ROUNDS * N)) per mode),"
    echo "one at a time, each a new curl process and TLS connection. etcd leader: member"
    echo "$LEADER_ENROLL at the start, $LEADER_ENROLL_END at the end; the gateway asks member 1 first."
    echo
    echo "| gateway | curl time_total median ms | p90 | gateway duration_ms median | p90 |"
    echo "|---|---:|---:|---:|---:|"
    for mode in "${MODES[@]}"; do
        label="$([ "$mode" = plain ] && echo "no shared_state" || echo "shared_state, 3-member etcd")"
        c="${ALL_CURL[$mode]}" g="${ALL_GW[$mode]}"
        echo "| $label | $(ms_of "$(median "$c")") | $(ms_of "$(pct 90 "$c")") | $(f2 "$(median "$g")") | $(f2 "$(pct 90 "$g")") |"
    done
    echo "| **difference (the claim and the certificate write)** | **$(sub "$(ms_of "$(median "${ALL_CURL[shared]}")")" "$(ms_of "$(median "${ALL_CURL[plain]}")")")** | $(sub "$(ms_of "$(pct 90 "${ALL_CURL[shared]}")")" "$(ms_of "$(pct 90 "${ALL_CURL[plain]}")")") | **$(sub "$(median "${ALL_GW[shared]}")" "$(median "${ALL_GW[plain]}")")** | $(sub "$(pct 90 "${ALL_GW[shared]}")" "$(pct 90 "${ALL_GW[plain]}")") |"
    echo
    echo "Medians per round (curl ms / gateway ms):"
    echo
    for mode in "${MODES[@]}"; do
        line="- $mode:"
        for r in $(seq 1 "$ROUNDS"); do
            line+=" $(ms_of "$(median "${CURL_S[$mode|$r]}")") / $(f2 "$(median "${GW_MS[$mode|$r]}")");"
        done
        echo "${line%;}"
    done
    echo
    echo "## 2. Propagation: a final report at gateway A applied at gateway B"
    echo
    echo "From the 204 of the report at A (curl returned) to B's \`update.report_shared\`"
    echo "log line (ms resolution); $M reports per setting (confirmed and failed"
    echo "alternately), each after a random pause within one poll period."
    echo
    echo "| shared_state_poll | reports | median ms | max ms | each, ms |"
    echo "|---|---:|---:|---:|---|"
    for ms in "${POLL_MS[@]}"; do
        echo "| ${ms}ms | $M | $(median "${PROP[$ms]}") | $(pct 100 "${PROP[$ms]}") | ${PROP[$ms]% } |"
    done
    echo
    echo "## 3. etcd alone: create-if-absent"
    echo
    echo "POST /v3/kv/txn (compare CREATE revision = 0, put; range on failure), a"
    echo "claim-sized value, $TXNS calls by one curl on one kept connection (as the"
    echo "gateway's libcurl handle), curl's time_total per call."
    echo
    echo "| member | median ms | p90 | max |"
    echo "|---|---:|---:|---:|"
    for role in leader follower; do
        row "$role (member ${TXN[$role|k]}, $TXNS calls, ${TXN[$role|c]} reconnects)" "${TXN[$role]}"
    done
} >"$REPORT"
say "report: $REPORT"
cat "$REPORT"
