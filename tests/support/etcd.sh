# An etcd 3.4 cluster of a test's own (Debian 12's etcd-server): N members
# on loopback, client and peer traffic over TLS with client certificates
# required, trusting only the root of a dedicated PKI made here (the
# shared-state plane's, which signs etcd members and gateways, never
# devices). No etcd auth/RBAC: the certificate's issuer is the whole check
# (docs/deploy.md, Shared state on etcd). Sourced, not run:
#
#   etcd_cluster_start DIR IOTCTL N GATEWAY_NAME...   # PKI, certificates, members; waits until healthy
#   etcd_client_files G          # prints "CERT KEY" of gateway G's client certificate
#   etcd_ctl ARGS...             # etcdctl (API 3) on the cluster as its admin
#   etcd_leader                  # prints K of the member that leads now (1: none does)
#   etcd_member_kill K [SIGNAL]  # stops member K (default SIGKILL: a crash), waits for it
#   etcd_member_start K          # restarts member K on its data dir; waits until it serves
#   etcd_cluster_stop            # stops every member this shell started, waits for them
#
# After etcd_cluster_start, exported:
#   ETCD_ENDPOINTS  "127.0.0.1:PORT ..." (the gateway's shared_state = ... form)
#   ETCD_URLS       "https://127.0.0.1:PORT,..." (etcdctl's --endpoints)
#   ETCD_CA         the dedicated root (DIR/pki/ca.crt): shared_state_ca
#   ETCD_ADMIN_CERT, ETCD_ADMIN_KEY   the client certificate etcd_ctl uses
#   ETCD_DIR, ETCD_N  DIR (absolute) and N
# and for each GATEWAY_NAME G the files DIR/clients/G.crt and DIR/clients/G.key
# (0600): shared_state_cert and shared_state_key. Member K (1..N) listens
# for clients on ${ETCD_CLIENT_PORT[K]} and for peers on ${ETCD_PEER_PORT[K]},
# keeps its data in DIR/member-K and logs to DIR/etcd-K.log.
#
# etcd takes any exported ETCD_* variable for a flag (ETCD_NAME is --name):
# the members are started without ours. etcd_leader needs jq.
#
# Members in network namespaces (tests/integration/cluster_netns.sh): set
# ETCD_HOST_IP[K] and ETCD_HOST_NS[K] for each member K before
# etcd_cluster_start: member K then runs in that namespace on that address,
# ports 2379 (clients) and 2380 (peers), and etcdctl runs in ETCD_CTL_NS (a
# namespace that reaches them). Unset, members share 127.0.0.1 on free ports.
#
# Cleanup: under tests/integration/lib.sh the members join its list of
# spawned processes (_PIDS), so its EXIT trap stops them before $T goes;
# another caller puts etcd_cluster_stop in its own EXIT trap.
# shellcheck shell=bash

ETCD_BIN="${ETCD_BIN:-etcd}"
ETCDCTL_BIN="${ETCDCTL_BIN:-etcdctl}"
ETCD_WAIT="${ETCD_WAIT:-30}" # seconds for the cluster, or a restarted member, to serve
ETCD_PIDS=()
ETCD_CLIENT_PORT=()
ETCD_PEER_PORT=()

etcd__say() { echo "etcd: $*" >&2; }

# etcd__ip K: member K's address.
etcd__ip() { echo "${ETCD_HOST_IP[$1]:-127.0.0.1}"; }

# etcd__ctl_run CMD...: CMD where the members can be reached.
etcd__ctl_run() {
  if [ -n "${ETCD_CTL_NS:-}" ]; then ip netns exec "$ETCD_CTL_NS" "$@"; else "$@"; fi
}

# etcd__port: a free loopback port below the ephemeral range, none of the
# ports this cluster took already.
etcd__port() {
  local port taken
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000))
    taken=" ${ETCD_CLIENT_PORT[*]:-} ${ETCD_PEER_PORT[*]:-} "
    [[ "$taken" == *" $port "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  etcd__say "no free port found"
  return 1
}

# etcd__track PID / etcd__untrack PID: in lib.sh's list of processes it
# stops on exit, when there is one; out of it once the process is gone, so
# that a PID the system gives to someone else later is never killed.
etcd__track() {
  if declare -p _PIDS >/dev/null 2>&1; then _PIDS+=("$1"); fi
}
etcd__untrack() {
  declare -p _PIDS >/dev/null 2>&1 || return 0
  local keep=() p
  for p in "${_PIDS[@]:-}"; do
    [ -n "$p" ] && [ "$p" != "$1" ] && keep+=("$p")
  done
  _PIDS=("${keep[@]}")
}

# etcd__issue IOTCTL ARGS...: one iotctl call on the dedicated PKI, its
# output kept in DIR/pki.log and shown only on failure.
etcd__issue() {
  local iotctl="$1"
  shift
  if ! "$iotctl" --dir "$ETCD_DIR/pki" "$@" >>"$ETCD_DIR/pki.log" 2>&1; then
    etcd__say "iotctl $* failed: $(tail -3 "$ETCD_DIR/pki.log")"
    return 1
  fi
}

# etcd__launch K STATE: member K in the background (new or existing cluster).
# etcd reads every ETCD_* environment variable as a flag (ETCD_NAME is
# --name) and warns of the others: the member runs without ours exported.
etcd__launch() {
  local k="$1" state="$2" m="$ETCD_DIR/pki/servers/etcd-$1"
  (
    for v in $(compgen -e); do [[ "$v" != ETCD_* ]] || export -n "${v:?}"; done
    local ip ns=()
    ip="$(etcd__ip "$k")"
    [ -z "${ETCD_HOST_NS[$k]:-}" ] || ns=(ip netns exec "${ETCD_HOST_NS[$k]}")
    exec "${ns[@]}" "$ETCD_BIN" --name "etcd-$k" --data-dir "$ETCD_DIR/member-$k" \
      --listen-client-urls "https://$ip:${ETCD_CLIENT_PORT[$k]}" \
      --advertise-client-urls "https://$ip:${ETCD_CLIENT_PORT[$k]}" \
      --listen-peer-urls "https://$ip:${ETCD_PEER_PORT[$k]}" \
      --initial-advertise-peer-urls "https://$ip:${ETCD_PEER_PORT[$k]}" \
      --initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-token "$ETCD_TOKEN" \
      --initial-cluster-state "$state" \
      --client-cert-auth --trusted-ca-file "$ETCD_CA" \
      --cert-file "$m/cert.pem" --key-file "$m/key.pem" \
      --peer-client-cert-auth --peer-trusted-ca-file "$ETCD_CA" \
      --peer-cert-file "$m/cert.pem" --peer-key-file "$m/key.pem" \
      --heartbeat-interval 100 --election-timeout 1000 \
      --logger zap --log-level warn --log-outputs stderr
  ) >>"$ETCD_DIR/etcd-$k.log" 2>&1 &
  ETCD_PIDS[k]=$!
  etcd__track "$!"
}

# etcd__healthy URLS: every endpoint in URLS (comma-separated) answers a
# linearizable read (what `endpoint health` does).
etcd__healthy() {
  ETCDCTL_API=3 etcd__ctl_run "$ETCDCTL_BIN" --endpoints "$1" --cacert "$ETCD_CA" \
    --cert "$ETCD_ADMIN_CERT" --key "$ETCD_ADMIN_KEY" \
    --dial-timeout 1s --command-timeout 2s endpoint health >/dev/null 2>&1
}

# etcd__wait_healthy URLS WHAT: bounded by $ETCD_WAIT; on timeout shows
# the members' last log lines and returns 1.
etcd__wait_healthy() {
  local deadline=$((SECONDS + ETCD_WAIT)) k
  until etcd__healthy "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      etcd__say "$2 not healthy after ${ETCD_WAIT}s"
      for k in $(seq 1 "$ETCD_N"); do
        etcd__say "etcd-$k.log: $(tail -3 "$ETCD_DIR/etcd-$k.log" 2>/dev/null)"
      done
      return 1
    fi
    for k in $(seq 1 "$ETCD_N"); do
      if [ -n "${ETCD_PIDS[k]:-}" ] && ! kill -0 "${ETCD_PIDS[k]}" 2>/dev/null; then
        etcd__say "member $k exited: $(tail -3 "$ETCD_DIR/etcd-$k.log")"
        return 1
      fi
    done
    sleep 0.2
  done
}

etcd_cluster_start() {
  local dir="$1" iotctl="$2" n="$3" k g urls=() eps=() peers=()
  shift 3
  if ! command -v "$ETCD_BIN" >/dev/null || ! command -v "$ETCDCTL_BIN" >/dev/null; then
    etcd__say "etcd or etcdctl is missing: run scripts/install-deps.sh"
    return 1
  fi
  [ "$n" -ge 1 ] 2>/dev/null || {
    etcd__say "etcd_cluster_start: N must be a number of members, got '$n'"
    return 1
  }
  mkdir -p "$dir/clients" || return 1
  chmod 0700 "$dir/clients"
  ETCD_DIR="$(cd "$dir" && pwd)"
  ETCD_N="$n"
  ETCD_CA="$ETCD_DIR/pki/ca.crt"
  ETCD_PIDS=()
  ETCD_CLIENT_PORT=()
  ETCD_PEER_PORT=()

  etcd__say "dedicated PKI in $ETCD_DIR/pki, certificates for $n members and ${*:-no gateways}"
  etcd__issue "$iotctl" pki init --cn "IoT Shared State Test CA" || return 1
  for k in $(seq 1 "$n"); do
    etcd__issue "$iotctl" cert server "etcd-$k" --also-client --ip "$(etcd__ip "$k")" \
      --dns localhost || return 1
  done
  etcd__issue "$iotctl" cert client etcd-admin --role operator || return 1
  ETCD_ADMIN_CERT="$ETCD_DIR/pki/clients/etcd-admin/cert.pem"
  ETCD_ADMIN_KEY="$ETCD_DIR/pki/clients/etcd-admin/key.pem"
  for g in "$@"; do
    etcd__issue "$iotctl" cert client "$g" --role gateway || return 1
    install -m 0644 "$ETCD_DIR/pki/clients/$g/cert.pem" "$ETCD_DIR/clients/$g.crt" &&
      install -m 0600 "$ETCD_DIR/pki/clients/$g/key.pem" "$ETCD_DIR/clients/$g.key" || return 1
  done

  for k in $(seq 1 "$n"); do
    if [ -n "${ETCD_HOST_IP[k]:-}" ]; then
      ETCD_CLIENT_PORT[k]=2379 ETCD_PEER_PORT[k]=2380
    else
      ETCD_CLIENT_PORT[k]="$(etcd__port)" || return 1
      ETCD_PEER_PORT[k]="$(etcd__port)" || return 1
    fi
    urls+=("https://$(etcd__ip "$k"):${ETCD_CLIENT_PORT[k]}")
    eps+=("$(etcd__ip "$k"):${ETCD_CLIENT_PORT[k]}")
    peers+=("etcd-$k=https://$(etcd__ip "$k"):${ETCD_PEER_PORT[k]}")
  done
  ETCD_URLS="$(IFS=,; echo "${urls[*]}")"
  ETCD_ENDPOINTS="${eps[*]}"
  ETCD_INITIAL_CLUSTER="$(IFS=,; echo "${peers[*]}")"
  ETCD_TOKEN="iot-test-$$-$RANDOM-$SECONDS"
  export ETCD_DIR ETCD_N ETCD_CA ETCD_URLS ETCD_ENDPOINTS ETCD_ADMIN_CERT ETCD_ADMIN_KEY

  etcd__say "starting $n members: clients on $ETCD_ENDPOINTS"
  for k in $(seq 1 "$n"); do etcd__launch "$k" new; done
  etcd__wait_healthy "$ETCD_URLS" "the cluster" || return 1
  etcd__say "cluster of $n healthy"
}

etcd_client_files() {
  local c="$ETCD_DIR/clients/$1.crt" k="$ETCD_DIR/clients/$1.key"
  if [ ! -f "$c" ] || [ ! -f "$k" ]; then
    etcd__say "no client certificate for '$1' (a GATEWAY_NAME of etcd_cluster_start?)"
    return 1
  fi
  echo "$c $k"
}

etcd_ctl() {
  ETCDCTL_API=3 etcd__ctl_run "$ETCDCTL_BIN" --endpoints "$ETCD_URLS" --cacert "$ETCD_CA" \
    --cert "$ETCD_ADMIN_CERT" --key "$ETCD_ADMIN_KEY" \
    --dial-timeout 2s --command-timeout 5s "$@"
}

# etcd_leader: prints K of the running member that is the leader now;
# 1 when none is (during an election, or without a quorum).
etcd_leader() {
  local k st
  for k in $(seq 1 "$ETCD_N"); do
    [ -n "${ETCD_PIDS[k]:-}" ] || continue
    st="$(ETCDCTL_API=3 etcd__ctl_run "$ETCDCTL_BIN" \
      --endpoints "https://$(etcd__ip "$k"):${ETCD_CLIENT_PORT[k]}" \
      --cacert "$ETCD_CA" --cert "$ETCD_ADMIN_CERT" --key "$ETCD_ADMIN_KEY" \
      --dial-timeout 1s --command-timeout 2s endpoint status -w json 2>/dev/null)" || continue
    if jq -e '.[0].Status | .leader == .header.member_id' >/dev/null <<<"$st"; then
      echo "$k"
      return 0
    fi
  done
  return 1
}

# etcd__stop PID SIGNAL: the signal, then up to 10 s for it to exit, then
# SIGKILL; waits for it (it is this shell's child). Bash's "Killed" notice
# of the job goes to /dev/null with the rest.
etcd__stop() {
  local pid="$1" sig="$2" deadline=$((SECONDS + 10))
  {
    kill -s "$sig" "$pid" || true
    while kill -0 "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -s KILL "$pid" || true
    wait "$pid" || true
  } 2>/dev/null
  etcd__untrack "$pid"
}

etcd_member_kill() {
  local k="$1" sig="${2:-KILL}"
  [ -n "${ETCD_PIDS[k]:-}" ] || {
    etcd__say "member $k is not running"
    return 1
  }
  etcd__say "stopping member $k (SIG$sig)"
  etcd__stop "${ETCD_PIDS[k]}" "$sig"
  ETCD_PIDS[k]=""
}

etcd_member_start() {
  local k="$1"
  [ -z "${ETCD_PIDS[k]:-}" ] || {
    etcd__say "member $k is running already"
    return 1
  }
  [ -d "$ETCD_DIR/member-$k" ] || {
    etcd__say "member $k has no data directory"
    return 1
  }
  etcd__say "restarting member $k on its data directory"
  etcd__launch "$k" existing
  etcd__wait_healthy "https://$(etcd__ip "$k"):${ETCD_CLIENT_PORT[k]}" "member $k" || return 1
  etcd__say "member $k serves again"
}

# One member after the other: a leader told to stop hands its leadership to
# a member it is connected to and waits for it (up to 7 s, etcd's request
# timeout), so stopped all at once the leader would wait for members that
# are gone.
etcd_cluster_stop() {
  local k
  for k in "${!ETCD_PIDS[@]}"; do
    [ -z "${ETCD_PIDS[k]}" ] || etcd__stop "${ETCD_PIDS[k]}" TERM
    ETCD_PIDS[k]=""
  done
  return 0
}
