#!/usr/bin/env bash
# The scaled deployment in network namespaces, one host each on one bridge:
#
#   dev (devices, consumer) -- lb (HAProxy) -- g1, g2 (iotgw) -- r1, r2, r3 (RabbitMQ)
#
# three RabbitMQ 3.10 nodes clustered from deploy/rabbitmq (MQTT 3.1.1 over
# TLS, certificate login, the consumer's session on a quorum queue, the
# rights of deploy/rabbitmq/permissions.sh), two gateways (own outbox and
# MQTT identity, mqtt_host listing the three nodes, PROXY protocol v2 from
# the balancer), HAProxy from deploy/haproxy/haproxy.cfg, curl devices that
# record every reading sent and every 2xx, and the persistent consumer
# tools/iotconsume. Under load:
#   1. kill -9 of the broker node the gateways use: they move to another
#      node, readings acknowledged afterwards arrive, none lost;
#   2. one gateway cut from the brokers (its outbox grows), then kill -9:
#      the devices go on through the other gateway (the gap is measured);
#      restarted, its outbox drains to 0 and what it held arrives;
#   3. HAProxy restarted: readings acknowledged afterwards arrive.
#   4. a gateway with acknowledge = confirmed loses its disk: nothing it
#      acknowledged is lost.
#   5. shared state on a three-member etcd cluster (on the broker hosts),
#      one member killed: an enrollment token spent at one gateway is
#      refused at the other (whose own registry copy still has it
#      unused); a rollout pauses at both gateways on failures reported
#      through both.
# At the end the loss checker compares the acknowledged readings with the
# consumer's store: lost must be 0; duplicates are counted and printed.
# Addresses are a documentation range (RFC 5737) inside namespaces the test
# creates and removes; nothing leaves them.
set -euo pipefail

# ctest's skip status (SKIP_RETURN_CODE in CMakeLists.txt), for machines
# where network namespaces cannot be made.
skip() {
  echo "cluster_netns: skipped: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"
probe="iot-probe-$$"
if ! err="$(ip netns add "$probe" 2>&1)"; then
  skip "'ip netns add' fails here: $err"
fi
ip netns del "$probe"

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/../support/etcd.sh"

RMQ_BIN=/usr/lib/rabbitmq/bin # as root, without Debian's wrapper that runs as user rabbitmq
[ -x "$RMQ_BIN/rabbitmq-server" ] || fail "rabbitmq-server is missing: run scripts/install-deps.sh"
command -v haproxy >/dev/null || fail "haproxy is missing: run scripts/install-deps.sh"
CONSUME="$IOT_BUILD_DIR/tools/iotconsume"
LC="$IOT_SOURCE_DIR/tests/support/tools/losscheck.sh"
DEPLOY="$IOT_SOURCE_DIR/deploy"

ID="$(printf '%x%02x' $$ $((RANDOM % 256)))"
HOSTS=(r1 r2 r3 g1 g2 lb dev)
declare -A NS IP
NET=198.51.100
IP=([r1]=$NET.11 [r2]=$NET.12 [r3]=$NET.13 [g1]=$NET.21 [g2]=$NET.22 [lb]=$NET.30 [dev]=$NET.40)
SW="iot-sw-$ID" # the bridge's namespace
NAMESPACES=()

# Everything this test started runs in its namespaces: on every exit path
# each process still in one is killed (the RabbitMQ nodes' helpers and epmd
# included), then the namespaces go, and their veths with them.
_cluster_cleanup() {
  local rc=$? ns pids
  set +e
  # To look into a failure while everything still runs.
  [ "$rc" -eq 0 ] || [ -z "${CLUSTER_HOLD_ON_FAIL:-}" ] || sleep "$CLUSTER_HOLD_ON_FAIL"
  for ns in "${NAMESPACES[@]:-}"; do
    [ -n "$ns" ] || continue
    pids="$(ip netns pids "$ns" 2>/dev/null)"
    # shellcheck disable=SC2086 # one pid a word
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
  done
  for ns in "${NAMESPACES[@]:-}"; do [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null; done
  return "$rc"
}
trap '_cluster_cleanup; _cleanup' EXIT
# A ctest timeout sends SIGTERM: leave through exit, so that the namespaces
# go too.
trap 'exit 143' TERM
trap 'exit 130' INT

# spawn runs "ip netns exec NS CMD" itself, not through in_ns: ip execs
# CMD, so the pid spawn keeps is CMD's own, which the test signals.
in_ns() {
  local h="$1"
  shift
  ip netns exec "${NS[$h]}" "$@"
}
# now: seconds since the epoch, with microseconds.
now() { echo "$EPOCHREALTIME"; }
# holds OP WANT CMD...: CMD's output compares to WANT (test's OP); for
# wait_until, which runs CMD anew on every poll.
holds() {
  local op="$1" want="$2" v
  shift 2
  v="$("$@" 2>/dev/null)" || return 1
  test "$v" "$op" "$want" 2>/dev/null
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- hosts on one bridge -----------------------------------------------------------------
ip netns add "$SW"
NAMESPACES+=("$SW")
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
for h in "${HOSTS[@]}"; do
  NS[$h]="iot-$h-$ID"
  ip netns add "${NS[$h]}"
  NAMESPACES+=("${NS[$h]}")
  ip -n "${NS[$h]}" link set lo up
  ip -n "$SW" link add "p-$h" type veth peer name eth0 netns "${NS[$h]}"
  ip -n "$SW" link set "p-$h" master br0 up
  ip -n "${NS[$h]}" addr add "${IP[$h]}/24" dev eth0
  ip -n "${NS[$h]}" link set eth0 up
done

# --- PKI ---------------------------------------------------------------------------------
DEVICES=(dev-1 dev-2 dev-3 dev-4)
"$IOTCTL" --dir "$P" pki init >/dev/null
# Devices reach the gateways at the balancer's address (TLS passes through).
"$IOTCTL" --dir "$P" cert server gateway --ip "${IP[lb]}" --ip "${IP[g1]}" --ip "${IP[g2]}" >/dev/null
"$IOTCTL" --dir "$P" cert server broker --ip "${IP[r1]}" --ip "${IP[r2]}" --ip "${IP[r3]}" >/dev/null
"$IOTCTL" --dir "$P" cert client gw-1 --role gateway >/dev/null
"$IOTCTL" --dir "$P" cert client gw-2 --role gateway >/dev/null
"$IOTCTL" --dir "$P" cert client consumer --role consumer >/dev/null
for d in "${DEVICES[@]}"; do "$IOTCTL" --dir "$P" device add "$d" >/dev/null; done
# For phase 5: an issuing CA for enrollment, a token, a signed release and
# a rollout of it in each gateway's file.
"$IOTCTL" --dir "$P" ca intermediate gw-issuer >/dev/null
ENROLL_TOKEN="$("$IOTCTL" --dir "$P" token create --device dev-new --ttl 1h 2>/dev/null | head -1)"
"$IOTCTL" --dir "$P" firmware key create --name rel >/dev/null
head -c 4096 /dev/urandom >"$T/fw.bin"
"$IOTCTL" --dir "$P" firmware sign --image "$T/fw.bin" --vendor acme --class sensor \
  --version 2.0.0 --secure-version 0 --key rel --out "$T/fw.manifest" >/dev/null
"$IOTCTL" --dir "$P" firmware add --manifest "$T/fw.manifest" --image "$T/fw.bin" >/dev/null
FW_SEQ="$(awk '/^sequence-number:/ {print $2}' "$T/fw.manifest")"

# --- the shared state: three etcd members, on the broker hosts -------------------------------
declare -a ETCD_HOST_IP ETCD_HOST_NS
for k in 1 2 3; do
  ETCD_HOST_IP[k]="${IP[r$k]}"
  ETCD_HOST_NS[k]="${NS[r$k]}"
done
ETCD_CTL_NS="${NS[g1]}"
etcd_cluster_start "$T/etcd" "$IOTCTL" 3 gw-1 gw-2 || fail "etcd did not start ($T/etcd)"
pass "three etcd members on the broker hosts: $ETCD_ENDPOINTS"

# --- three RabbitMQ nodes, one cluster ---------------------------------------------------
# deploy/rabbitmq/rabbitmq.conf with this test's certificate paths and node
# addresses; the nodes start at once, so the random delay that spreads the
# first starts of a real cluster is cut to at most a second.
RC_CONF="$DEPLOY/rabbitmq/rabbitmq.conf"
for want in "cluster_formation.classic_config.nodes.3 = rabbit@10.0.0.23" \
  "mqtt.durable_queue_type = quorum" "ssl_options.certfile = /etc/rabbitmq/certs/cert.pem"; do
  grep -qxF -- "$want" "$RC_CONF" || fail "$RC_CONF no longer has what this test replaces: $want"
done
RMQ="$T/rmq"
mkdir -p "$RMQ"
echo "iot-cluster-test-cookie-$ID" >"$RMQ/.erlang.cookie"
chmod 0400 "$RMQ/.erlang.cookie"
export HOME="$RMQ" RABBITMQ_USE_LONGNAME=true RABBITMQ_CONF_ENV_FILE=/dev/null
rmq_env() {
  local h="$1"
  echo RABBITMQ_NODENAME="rabbit@${IP[$h]}" RABBITMQ_MNESIA_BASE="$RMQ/$h/mnesia" \
    RABBITMQ_LOG_BASE="$RMQ/$h/log" RABBITMQ_PID_FILE="$RMQ/$h/pid" \
    RABBITMQ_CONFIG_FILE="$RMQ/$h/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$DEPLOY/rabbitmq/enabled_plugins"
}
start_node() {
  local h="$1"
  mkdir -p "$RMQ/$h/mnesia" "$RMQ/$h/log"
  sed -e "s|/etc/rabbitmq/certs/ca.pem|$P/ca.crt|" \
    -e "s|/etc/rabbitmq/certs/cert.pem|$P/servers/broker/cert.pem|" \
    -e "s|/etc/rabbitmq/certs/key.pem|$P/servers/broker/key.pem|" \
    -e "s|rabbit@10.0.0.21|rabbit@${IP[r1]}|" -e "s|rabbit@10.0.0.22|rabbit@${IP[r2]}|" \
    -e "s|rabbit@10.0.0.23|rabbit@${IP[r3]}|" -e "s|^disk_free_limit.absolute = .*|disk_free_limit.absolute = 50MB|" \
    "$RC_CONF" >"$RMQ/$h/rabbitmq.conf"
  printf '%s\n' "cluster_formation.randomized_startup_delay_range.min = 0" \
    "cluster_formation.randomized_startup_delay_range.max = 1" >>"$RMQ/$h/rabbitmq.conf"
  # epmd of the node's own host, stopped with the test.
  spawn ip netns exec "${NS[$h]}" epmd >/dev/null 2>&1
  # shellcheck disable=SC2046 # rmq_env prints NAME=VALUE words without spaces
  spawn ip netns exec "${NS[$h]}" env $(rmq_env "$h") "$RMQ_BIN/rabbitmq-server" >"$RMQ/$h/server.out" 2>&1
}
# ctl HOST ARGS...: rabbitmqctl on that node, from its own host.
ctl() {
  local h="$1"
  shift
  in_ns "$h" "$RMQ_BIN/rabbitmqctl" -n "rabbit@${IP[$h]}" "$@"
}
node_up() { ctl "$1" -q await_startup >/dev/null 2>&1; }
running_nodes() {
  ctl "$1" -q cluster_status --formatter json 2>/dev/null | jq -r '.running_nodes | length'
}
t0=$(now)
# The first node forms the cluster; the other two join it as they start.
start_node r1
wait_until 120 "RabbitMQ r1 to start ($RMQ/r1/server.out)" node_up r1
start_node r2
start_node r3
for h in r2 r3; do wait_until 120 "RabbitMQ $h to start ($RMQ/$h/server.out)" node_up "$h"; done
wait_until 60 "three running nodes in the cluster" holds = 3 running_nodes r1
pass "three RabbitMQ nodes clustered from deploy/rabbitmq/rabbitmq.conf in $(elapsed "$t0" "$(now)") s"
RABBITMQCTL="$RMQ_BIN/rabbitmqctl"
export RABBITMQCTL
perm() { in_ns r1 "$DEPLOY/rabbitmq/permissions.sh" -n "rabbit@${IP[r1]}" "$@"; }
perm gateway gw-1 gw-2
perm consumer consumer
expect_eq "users of deploy/rabbitmq/permissions.sh, the guest user gone" "consumer gw-1 gw-2" \
  "$(ctl r1 -q list_users --formatter json | jq -r 'map(.user) | sort | join(" ")')"

# --- the persistent consumer -----------------------------------------------------------------
# On r2 (iotconsume takes one broker; r1 is the node killed below). Its
# session is a quorum queue with a member on every node.
CONSUMER_ID="iotconsume-$ID"
spawn ip netns exec "${NS[dev]}" "$CONSUME" --host "${IP[r2]}" --port 8883 --ca "$P/ca.crt" \
  --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
  --client-id "$CONSUMER_ID" --db "$T/consumer.db" --print-duplicates >"$T/consumer.out" 2>"$T/consumer.err"
CONSUMER_PID=$LAST_PID
queue_members() {
  in_ns r2 "$RMQ_BIN/rabbitmq-queues" -n "rabbit@${IP[r2]}" -q quorum_status \
    "mqtt-subscription-${CONSUMER_ID}qos1" --formatter json 2>/dev/null | jq -r length
}
# quorum_status answers for a quorum queue only. (list_queues waits for a
# minute here, on queues it calls unresponsive.)
wait_until 60 "the consumer's session queue, a quorum queue" holds = 3 queue_members
pass "the consumer's session is a quorum queue with a member on each of the three nodes"

# --- two gateways --------------------------------------------------------------------------
TOKEN="$(head -c 32 /dev/urandom | base64 | tr -d '/+=')"
(umask 077 && echo "$TOKEN" >"$T/admin.token")
BROKERS="${IP[r1]}:8883 ${IP[r2]}:8883 ${IP[r3]}:8883"
gw_config() {
  local g="$1"
  mkdir -p "$T/$g"
  # Its own copy of the registry: what it shares goes through etcd only.
  [ -e "$T/$g/registry.db" ] || cp "$P/registry.db" "$T/$g/registry.db"
  "$IOTCTL" --dir "$P" rollout create fw1 --firmware "$FW_SEQ" --devices dev-1,dev-2,dev-3 \
    --canary 0 --waves 100 --failure-percent 50 --min-reports 2 --seed 7 \
    --db "$T/$g/rollouts.db" >/dev/null
  cat >"$T/$g/gw.conf" <<CONF
device_listen = ${IP[$g]}:8443
admin_listen = ${IP[$g]}:9100
admin_remote = yes
admin_token_file = $T/admin.token
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $T/$g/registry.db
outbox = $T/$g/outbox.db
est_ca_cert = $P/issuers/gw-issuer.pem
est_ca_key = $P/issuers/gw-issuer.key
rollouts = $T/$g/rollouts.db
firmware_dir = $P/firmware
shared_state = $ETCD_ENDPOINTS
shared_state_ca = $ETCD_CA
shared_state_cert = $T/etcd/clients/gw-${g#g}.crt
shared_state_key = $T/etcd/clients/gw-${g#g}.key
shared_state_poll = 200ms
proxy_protocol_from = ${IP[lb]}
connection_rate_per_address = 0
mqtt_host = $BROKERS
mqtt_protocol = 3.1.1
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gw-${g#g}/cert.pem
mqtt_key = $P/clients/gw-${g#g}/key.pem
mqtt_client_id = iotgw-$g
workers = 1
reconnect_min = 100ms
reconnect_max = 1s
CONF
}
declare -A GWPID
start_gw() {
  local g="$1"
  spawn ip netns exec "${NS[$g]}" "$IOTGW" --config "$T/$g/gw.conf" >>"$T/$g.log" 2>&1
  GWPID[$g]=$LAST_PID
}
# admin HOST PATH: the gateway's admin listener, from the balancer's host.
admin() {
  in_ns lb curl -s --max-time 3 -H "Authorization: Bearer $TOKEN" "http://${IP[$1]}:9100$2"
}
health() { admin "$1" /healthz | jq -r ".$2"; }
connected_to() { grep -c "event=mqtt.connected broker=$2" "$T/$1.log" || true; }
for g in g1 g2; do
  gw_config "$g"
  start_gw "$g"
done
for g in g1 g2; do
  wait_until 30 "gateway $g connected to RabbitMQ r1 ($T/$g.log)" holds -ge 1 connected_to "$g" "${IP[r1]}:8883"
done
pass "both gateways connect to the first node of mqtt_host over MQTT 3.1.1"

# --- HAProxy ---------------------------------------------------------------------------------
# The shipped file with this test's addresses; the Debian package's chroot
# and user are for a system service, and its maxconn needs more file
# descriptors than a test may open.
sed -e '/^ *\(chroot\|user\|group\) /d' -e 's/^\( *maxconn \)[0-9]*$/\11000/' \
  -e "s|^\( *bind \):::8443 v4v6$|\1${IP[lb]}:8443|" \
  -e "s|^\( *server gw1 \)10.0.0.11:8443|\1${IP[g1]}:8443|" \
  -e "s|^\( *server gw2 \)10.0.0.12:8443|\1${IP[g2]}:8443|" \
  "$DEPLOY/haproxy/haproxy.cfg" >"$T/haproxy.cfg"
for want in "bind ${IP[lb]}:8443" "server gw1 ${IP[g1]}:8443 check port 9100" \
  "server gw2 ${IP[g2]}:8443 check port 9100" "send-proxy-v2"; do
  grep -qF -- "$want" "$T/haproxy.cfg" || fail "deploy/haproxy/haproxy.cfg no longer has what this test replaces: $want"
done
start_haproxy() {
  spawn ip netns exec "${NS[lb]}" env IOTGW_ADMIN_TOKEN="$TOKEN" haproxy -db -f "$T/haproxy.cfg" >>"$T/haproxy.log" 2>&1
  HAPROXY_PID=$LAST_PID
}
checks_passed() {
  [ "$(grep -c "Health check for server gateways/$1 succeeded" "$T/haproxy.log" || true)" -ge "$2" ]
}
start_haproxy
for g in gw1 gw2; do wait_until 15 "HAProxy's health check of $g passing" checks_passed "$g" 1; done
pass "HAProxy runs deploy/haproxy/haproxy.cfg; both gateways pass its health check"

# --- the devices ---------------------------------------------------------------------------
# load_device DEV DIR (in the devices' host): posts DEV's readings, dseq 1,
# 2, ..., one per connection through the balancer, until DIR/stop exists.
# Each reading goes to DIR/sent before its first try and to DIR/acked once
# it gets a 2xx; it is retried until then, 200 ms after a failure. DIR/log
# gets "TIME DEV DSEQ STATUS" for every try.
load_device() {
  local dev="$1" dir="$2" seq=1 code
  while [ ! -e "$dir/stop" ]; do
    echo "$dev $seq" >>"$dir/sent"
    while :; do
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$P/ca.crt" \
        --cert "$P/devices/$dev/cert.pem" --key "$P/devices/$dev/key.pem" \
        -H 'Content-Type: application/json' --data-binary "{\"seq\":$seq,\"v\":$seq}" \
        "https://$LB_IP:8443/v1/telemetry" 2>/dev/null)" || true
      echo "$EPOCHREALTIME $dev $seq ${code:-000}" >>"$dir/log"
      case "$code" in
      2??)
        echo "$dev $seq" >>"$dir/acked"
        break
        ;;
      esac
      [ ! -e "$dir/stop" ] || break
      sleep 0.2
    done
    seq=$((seq + 1))
    sleep 0.05
  done
}
export -f load_device
export P LB_IP="${IP[lb]}"
L="$T/load"
mkdir -p "$L"
: >"$L/sent"
: >"$L/acked"
: >"$L/log"
LOAD_PIDS=()
for d in "${DEVICES[@]}"; do
  spawn ip netns exec "${NS[dev]}" bash -c 'load_device "$@"' load "$d" "$L" >/dev/null 2>&1
  LOAD_PIDS+=("$LAST_PID")
done
acked_count() { sort -u "$L/acked" | wc -l; }
# wait_acked N WHAT: until N more readings are acknowledged (60 s at most).
wait_acked() {
  local want=$(($(acked_count) + $1))
  wait_until 60 "$1 more acknowledged readings $2 (tries in $L/log)" \
    holds -ge "$want" acked_count
}
# expect_delivered WHEN: every reading acknowledged so far reaches the
# consumer's store (within 60 s).
stored_keys() {
  sqlite3 "$T/consumer.db" "SELECT device || ' ' || substr(reading, 2) FROM readings WHERE reading LIKE 'd%';" 2>/dev/null
}
missing_list() { sort -u "$L/acked" | comm -23 - <(stored_keys | sort -u); }
missing() { missing_list | wc -l; }
expect_delivered() {
  local deadline=$((SECONDS + 60))
  until holds '=' 0 missing; do
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "acknowledged readings not in the consumer's store 60 s later ($1): $(missing_list | head -20 | tr '\n' ',')"
    sleep 0.2
  done
  pass "every reading acknowledged $1 is in the consumer's store ($(acked_count) readings)"
}
wait_acked 40 "before the faults"
expect_delivered "before the faults"

# --- 1. a broker node dies ---------------------------------------------------------------------
before=$(acked_count)
kill -KILL "$(cat "$RMQ/r1/pid")"
killed_at=$(now)
for g in g1 g2; do
  wait_until 30 "gateway $g connected to another node" \
    bash -c "grep -E 'event=mqtt.connected broker=(${IP[r2]}|${IP[r3]}):8883' '$T/$g.log' >/dev/null"
done
pass "r1 killed (kill -9): both gateways moved to another node within $(elapsed "$killed_at" "$(now)") s"
wait_acked 40 "after the broker node's death"
expect_delivered "after r1's death ($(($(acked_count) - before)) of them after it)"

# --- 2. a gateway dies with readings in its outbox ---------------------------------------------
# g1 loses its route to the three nodes: it goes on acknowledging readings,
# which wait in its outbox.
for r in r1 r2 r3; do ip -n "${NS[g1]}" route add unreachable "${IP[$r]}/32"; done
admin g1 /healthz >/dev/null
wait_until 30 "readings waiting in g1's outbox" holds -ge 5 health g1 outbox_depth
depth=$(health g1 outbox_depth)
kill -KILL "${GWPID[g1]}"
wait "${GWPID[g1]}" 2>/dev/null || true
killed_at=$(now)
refuses() { ! in_ns lb bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
expect_ok "g1 is gone: its device port refuses connections" refuses "${IP[g1]}" 8443
before=$(acked_count)
wait_acked 40 "after g1's death"
# The gap: from the kill to each device's first 2xx after it; the slowest device.
gap="$(awk -v k="$killed_at" '$1 > k && $4 ~ /^2/ && !($2 in first) { first[$2] = $1 - k }
  END { m = 0; for (d in first) if (first[d] > m) m = first[d]; printf "%.2f", m }' "$L/log")"
failed="$(awk -v k="$killed_at" '$1 > k && $4 !~ /^2/' "$L/log" | wc -l)"
echo "gap after the gateway's kill: ${gap} s (the slowest device's first 2xx after it); $failed failed tries"
awk -v g="$gap" 'BEGIN { exit !(g < 10) }' || fail "devices took ${gap} s to be served again after g1's death"
pass "g1 killed (kill -9) with $depth readings in its outbox: every device served again within ${gap} s"
expect_eq "meanwhile g2 serves every device" "${#DEVICES[@]}" \
  "$(awk -v k="$killed_at" '$1 > k && $4 ~ /^2/ { print $2 }' "$L/log" | sort -u | wc -l)"

# Back, with its route and its outbox: what it held is published.
for r in r1 r2 r3; do ip -n "${NS[g1]}" route del unreachable "${IP[$r]}/32"; done
start_gw g1
wait_until 30 "g1 started again ($T/g1.log)" holds = 2 grep -c "event=gateway.started" "$T/g1.log"
wait_until 30 "g1's /healthz after its restart" holds -ge 0 health g1 outbox_depth
wait_until 60 "g1's outbox to drain" holds = 0 health g1 outbox_depth
pass "g1 restarted: its outbox drained to 0 (it held $depth readings at the kill)"
wait_until 20 "HAProxy to mark g1 up again" checks_passed gw1 2
expect_delivered "after g1's death and restart"

# --- 3. HAProxy restarts -------------------------------------------------------------------------
kill -TERM "$HAPROXY_PID"
wait "$HAPROXY_PID" 2>/dev/null || true
stopped_at=$(now)
expect_ok "HAProxy is stopped: the balancer's port refuses connections" refuses "${IP[lb]}" 8443
start_haproxy
before=$(acked_count)
wait_acked 40 "after HAProxy's restart"
pass "HAProxy restarted: devices served again within $(elapsed "$stopped_at" "$(now)") s"
expect_delivered "after HAProxy's restart"

# --- 4. a gateway's disk lost, with acknowledge = confirmed ---------------------------------------
# g1 answers 2xx only once the cluster has confirmed the reading. Cut off
# from the brokers it acknowledges nothing more (503 not_confirmed after
# confirm_timeout: the devices retry, and g2 serves them); killed then and
# restarted on an empty outbox (its disk lost), it has lost nothing it
# acknowledged. (With acknowledge = stored the readings it acknowledged
# after the cut would be gone with its disk.)
stop_g1() {
  kill -KILL "${GWPID[g1]}"
  wait "${GWPID[g1]}" 2>/dev/null || true
}
stop_g1
printf 'acknowledge = confirmed\nconfirm_timeout = 2s\n' >>"$T/g1/gw.conf"
start_gw g1
wait_until 30 "g1 started with acknowledge = confirmed" holds = 1 \
  grep -c "event=gateway.started.*acknowledge=confirmed" "$T/g1.log"
# Readings g1 stored since this start (each answered only once confirmed).
g1_stored() { admin g1 /metrics | awk '$1 == "iotgw_readings_stored_total" { print $2 + 0 }'; }
wait_until 30 "readings acknowledged by g1 with acknowledge = confirmed" holds -ge 5 g1_stored
for r in r1 r2 r3; do ip -n "${NS[g1]}" route add unreachable "${IP[$r]}/32"; done
unconfirmed() { admin g1 /metrics | awk 'index($1, "reason=\"not_confirmed\"") { print $2 + 0 }'; }
wait_until 30 "requests g1 could not confirm (503 not_confirmed)" holds -ge 1 unconfirmed
wait_acked 20 "by g2 while g1 has no broker"
held=$(health g1 outbox_depth)
refused_503=$(unconfirmed)
stop_g1
rm -f "$T/g1/outbox.db" "$T/g1/outbox.db-wal" "$T/g1/outbox.db-shm"
for r in r1 r2 r3; do ip -n "${NS[g1]}" route del unreachable "${IP[$r]}/32"; done
start_gw g1
pass "g1 (acknowledge = confirmed) cut off from the brokers: $refused_503 requests answered 503 not_confirmed; killed with $held unconfirmed readings and its outbox deleted"
wait_acked 20 "after g1's disk was lost"
expect_delivered "with g1 confirming, after its disk was lost"

# --- 5. shared state across the gateways, one etcd member down ------------------------------------
etcd_member_kill 1
# direct ARGS...: curl from the devices' host, straight to a gateway (not
# through the balancer); prints the status, the body in $T/direct.body.
direct() {
  in_ns dev curl -s -o "$T/direct.body" -w '%{http_code}' --max-time 15 --cacert "$P/ca.crt" \
    "$@" 2>/dev/null || true
}
gw_url() { echo "https://${IP[$1]}:8443$2"; }
as_dev() { echo --cert "$P/devices/$1/cert.pem" --key "$P/devices/$1/key.pem"; }
csr() {
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
    -subj "/CN=dev-new" -outform DER 2>/dev/null | openssl base64 >"$T/$1.csr"
}
csr k1
csr k2
est_at() {
  direct -H 'Content-Type: application/pkcs10' --data-binary "@$T/$2.csr" \
    -u "dev-new:$ENROLL_TOKEN" "$(gw_url "$1" /.well-known/est/simpleenroll)"
}
expect_eq "dev-new enrolls at g1 with its token" 200 "$(est_at g1 k1)"
expect_eq "the same token with another key at g2" 401 "$(est_at g2 k2)"
expect_eq "g2 refuses it as used" token_used "$(jq -r .error "$T/direct.body")"
expect_eq "g2's own registry copy still has the token unused" 0 \
  "$(sqlite3 "$T/g2/registry.db" "SELECT used_at FROM tokens WHERE device = 'dev-new'")"
report_at() {
  # shellcheck disable=SC2046 # as_dev prints four words
  direct $(as_dev "$2") -H 'Content-Type: application/json' \
    --data-binary "{\"status\":\"$3\",\"reason\":\"self_test\",\"sequence\":$FW_SEQ,\"offset\":4096,\"size\":4096}" \
    "$(gw_url "$1" /v1/firmware/status)"
}
# shellcheck disable=SC2046
manifest_at() { direct $(as_dev "$2") "$(gw_url "$1" /v1/firmware/manifest)"; }
rollout_state() { "$IOTCTL" --dir "$P" rollout status fw1 --json --db "$T/$1/rollouts.db" | jq -r .state; }
expect_eq "dev-1 is offered the release at g1" 200 "$(manifest_at g1 dev-1)"
expect_eq "dev-1 reports a failure at g1" 204 "$(report_at g1 dev-1 failed)"
expect_eq "one failure of the two judged: fw1 runs at g2" running "$(rollout_state g2)"
expect_eq "dev-2 is offered the release at g2" 200 "$(manifest_at g2 dev-2)"
expect_eq "dev-2 reports a rollback at g2" 204 "$(report_at g2 dev-2 rolled_back)"
wait_until 15 "fw1 paused at g1 ($T/g1.log)" holds = paused rollout_state g1
wait_until 15 "fw1 paused at g2 ($T/g2.log)" holds = paused rollout_state g2
pass "fw1 paused at both gateways on one failure reported through each, etcd member 1 down"

# --- the verdict ------------------------------------------------------------------------------
touch "$L/stop"
for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
expect_delivered "by the end"
sleep 2 # late copies republished by a gateway
kill -TERM "$CONSUMER_PID"
wait "$CONSUMER_PID" 2>/dev/null || true
summary="$(tail -1 "$T/consumer.out")"
echo "consumer: $summary"
# The store as a capture for the checker: every stored reading once, in
# arrival order, numbered per device.
sqlite3 -separator ' ' "$T/consumer.db" \
  "SELECT device, substr(reading, 2) FROM readings WHERE reading LIKE 'd%' ORDER BY id;" |
  awk '{ n[$1]++; printf "telemetry/%s/telemetry {\"device\":\"%s\",\"seq\":%d,\"dseq\":%d}\n", $1, $1, n[$1], $2 }' \
    >"$T/store.cap"
set +e
verdict="$(bash "$LC" --details 20 --sent "$L/sent" "$L/acked" "$T/store.cap")"
set -e
echo "$verdict"
field() { echo "$1" | head -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
expect_eq "lost (acknowledged, not in the consumer's store)" 0 "$(field "$verdict" lost)"
expect_eq "unexpected (stored, never sent)" 0 "$(field "$verdict" unexpected)"
dups="$(echo "$summary" | sed -nE 's/.*duplicates ([0-9]+),.*/\1/p')"
[ -n "$dups" ] || fail "no summary from the consumer: $summary $(tail -3 "$T/consumer.err")"
echo "readings: $(acked_count) acknowledged, $(field "$verdict" delivered) stored, $dups duplicates dropped by the consumer"
# Each duplicate: the reading (device, dseq) and the gateway and gateway
# seq of the copy dropped.
grep '^duplicate ' "$T/consumer.out" | cut -d' ' -f2- |
  jq -r '"duplicate: \(.device) dseq \(.dseq) again from \(.gateway) as its seq \(.seq)"' || true
expect_eq "every duplicate the consumer counted is printed" "$dups" \
  "$(grep -c '^duplicate ' "$T/consumer.out" || true)"
finish
