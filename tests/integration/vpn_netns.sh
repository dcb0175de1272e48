#!/usr/bin/env bash
# The production topology in miniature: three hosts as network namespaces,
#
#   device  --192.0.2.0/24--  gateway  ==198.51.100.0/24 underlay==  broker
#                                      \__ WireGuard 203.0.113.0/24 __/
#
# curl in the device namespace posts a reading with a device certificate to
# the real iotgw in the gateway namespace; iotgw forwards it over MQTT/TLS
# through a WireGuard tunnel (wireguard-go + wg: the protocol Netbird speaks) to
# Mosquitto in the broker namespace, started with deploy/broker/mosquitto.conf
# bound to its tunnel address; mosquitto_sub as the consumer `dashboard`
# receives it. The test then shows that
#   (a) the reading arrives end to end, with its content;
#   (b) the device cannot reach the broker's port, neither at its underlay
#       address (nothing listens there: refused) nor at its tunnel address
#       (WireGuard drops packets whose inner source is not the gateway
#       peer's tunnel address: no answer), although the device has a route
#       to both and the gateway forwards packets: the worst case;
#   (c) a capture on the gateway's underlay link during the exchange holds
#       WireGuard UDP only: no TCP, nothing on 8883, no plaintext reading.
# Addresses are the documentation ranges (RFC 5737), inside namespaces the
# test creates and removes; nothing leaves them.
set -euo pipefail

# ctest's skip status (SKIP_RETURN_CODE in CMakeLists.txt), for machines
# where network namespaces cannot be made.
skip() {
  echo "vpn_netns: skipped: $*" >&2
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "creating network namespaces needs root"
command -v ip >/dev/null || skip "no 'ip' command (iproute2)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun, which wireguard-go needs"
probe="iot-probe-$$"
if ! err="$(ip netns add "$probe" 2>&1)"; then
  skip "'ip netns add' fails here: $err"
fi
ip netns del "$probe"

. "$(dirname "$0")/lib.sh"

ID="$(printf '%x%02x' $$ $((RANDOM % 256)))"
NS_DEV="iot-dev-$ID"
NS_GW="iot-gw-$ID"
NS_BR="iot-br-$ID"
# wireguard-go's control socket is /var/run/wireguard/NAME.sock, shared by
# every namespace: the names must be unique on the machine (at most 15 bytes).
WG_GW="wgg$ID"
WG_BR="wgb$ID"
NAMESPACES=()

_vpn_cleanup() {
  local rc=$? pid ns
  set +e
  for pid in "${_PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null; done
  for pid in "${_PIDS[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null; done
  _PIDS=()
  for ns in "${NAMESPACES[@]:-}"; do [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null; done
  rm -f "/var/run/wireguard/$WG_GW.sock" "/var/run/wireguard/$WG_BR.sock"
  return "$rc"
}
trap '_vpn_cleanup; _cleanup' EXIT
# A ctest timeout sends SIGTERM: leave through exit, so that the namespaces
# go too.
trap 'exit 143' TERM
trap 'exit 130' INT

DEV_IP=192.0.2.10 # device LAN
GW_LAN_IP=192.0.2.1
GW_UL_IP=198.51.100.1 # underlay
BR_UL_IP=198.51.100.2
GW_TUN_IP=203.0.113.1 # WireGuard tunnel (the Netbird addresses)
BR_TUN_IP=203.0.113.2
WG_PORT=51820
GW_PORT=8443
DEVICE=dev-001
CONSUMER=dashboard
P="$T/pki"
R="$T/root" # the broker's working directory, laid out like / in its container
B="$R/mosquitto"
BLOG="$T/broker.log"
GLOG="$T/gw.log"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
in_ns() {
  local ns="$1"
  shift
  ip netns exec "$ns" "$@"
}

# wait_until SECONDS CMD...: until CMD succeeds, at most SECONDS.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
has_line() { grep -qF -- "$2" "$1"; }

# --- hosts and links ----------------------------------------------------------
for ns in "$NS_DEV" "$NS_GW" "$NS_BR"; do
  ip netns add "$ns"
  NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
  # IPv4 only, so that the capture holds no IPv6 neighbour discovery.
  in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n "$NS_DEV" link add dev0 type veth peer name lan0 netns "$NS_GW"
ip -n "$NS_GW" link add ul0 type veth peer name ul0 netns "$NS_BR"
ip -n "$NS_DEV" addr add "$DEV_IP/24" dev dev0
ip -n "$NS_GW" addr add "$GW_LAN_IP/24" dev lan0
ip -n "$NS_GW" addr add "$GW_UL_IP/24" dev ul0
ip -n "$NS_BR" addr add "$BR_UL_IP/24" dev ul0
ip -n "$NS_DEV" link set dev0 up
ip -n "$NS_GW" link set lan0 up
ip -n "$NS_GW" link set ul0 up
ip -n "$NS_BR" link set ul0 up
# The worst case for (b): the device routes everything to the gateway, the
# gateway forwards between its links, and the broker answers anyone.
ip -n "$NS_DEV" route add default via "$GW_LAN_IP"
in_ns "$NS_GW" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NS_BR" route add default via "$GW_UL_IP"
expect_ok "the device reaches the broker's underlay address through the gateway" \
  in_ns "$NS_DEV" ping -c 1 -W 2 "$BR_UL_IP"

# Capture on the gateway's underlay link from before the tunnel carries
# anything until the consumer has the reading. --immediate-mode: without
# it, packets still in the kernel's capture buffer when tcpdump is stopped
# are counted but never written. -Z root: tcpdump otherwise drops to its own
# user, which cannot write into the test directory.
# capture_start FILE / capture_stop: one capture at a time.
capture_start() {
  CAP="$1"
  spawn ip netns exec "$NS_GW" tcpdump -i ul0 -nn -U --immediate-mode -Z root -w "$CAP" 2>"$CAP.err"
  CAP_PID=$LAST_PID
  wait_until 10 has_line "$CAP.err" "listening on ul0" || fail "tcpdump did not start: $(cat "$CAP.err")"
}
capture_stop() {
  kill -TERM "$CAP_PID"
  wait "$CAP_PID" 2>/dev/null || true
}
# count FILE FILTER: packets in a capture file that match a tcpdump filter.
count() { tcpdump -r "$1" -nn "$2" 2>/dev/null | wc -l; }
capture_start "$T/underlay.pcap"

# --- the WireGuard tunnel -----------------------------------------------------
mkdir -m 0700 "$T/wg"
for h in gw br; do
  (umask 077 && wg genkey >"$T/wg/$h.key")
  wg pubkey <"$T/wg/$h.key" >"$T/wg/$h.pub"
done
expect_eq "WireGuard private keys are mode 0600" "600 600" \
  "$(file_mode "$T/wg/gw.key") $(file_mode "$T/wg/br.key")"
# -f keeps wireguard-go in the foreground, where the test can stop it.
spawn ip netns exec "$NS_GW" wireguard-go -f "$WG_GW" >"$T/wg/gw.log" 2>&1
spawn ip netns exec "$NS_BR" wireguard-go -f "$WG_BR" >"$T/wg/br.log" 2>&1
wait_until 10 test -S "/var/run/wireguard/$WG_GW.sock" || fail "wireguard-go $WG_GW did not start: $(cat "$T/wg/gw.log")"
wait_until 10 test -S "/var/run/wireguard/$WG_BR.sock" || fail "wireguard-go $WG_BR did not start: $(cat "$T/wg/br.log")"
# Each peer may send from its own tunnel address only (allowed-ips), as a
# Netbird peer. The broker learns the gateway's endpoint from its handshake.
in_ns "$NS_GW" wg set "$WG_GW" private-key "$T/wg/gw.key" listen-port "$WG_PORT" \
  peer "$(cat "$T/wg/br.pub")" allowed-ips "$BR_TUN_IP/32" endpoint "$BR_UL_IP:$WG_PORT"
in_ns "$NS_BR" wg set "$WG_BR" private-key "$T/wg/br.key" listen-port "$WG_PORT" \
  peer "$(cat "$T/wg/gw.pub")" allowed-ips "$GW_TUN_IP/32"
ip -n "$NS_GW" addr add "$GW_TUN_IP/24" dev "$WG_GW"
ip -n "$NS_BR" addr add "$BR_TUN_IP/24" dev "$WG_BR"
ip -n "$NS_GW" link set "$WG_GW" up
ip -n "$NS_BR" link set "$WG_BR" up

# --- PKI ----------------------------------------------------------------------
ctl pki init >/dev/null
ctl cert server gateway --ip "$GW_LAN_IP" >/dev/null
ctl cert server broker --ip "$BR_TUN_IP" >/dev/null
ctl cert client gateway-mqtt --role gateway >/dev/null
ctl cert client "$CONSUMER" --role consumer >/dev/null
ctl device add "$DEVICE" >/dev/null

# --- the broker, bound to its tunnel address ----------------------------------
# The repository's configuration with one change: `listener 8883` (every
# address) becomes `listener 8883 <tunnel address>`, which is what Docker's
# port binding to the Netbird address does in production (deploy/docker).
# The diff below proves that nothing else differs, so every other rule
# (TLS, client certificates, ACL, limits) is the one in production.
CONF="$IOT_SOURCE_DIR/deploy/broker/mosquitto.conf"
mkdir -p "$B/config" "$B/certs" "$B/data"
[ "$(grep -cx 'listener 8883' "$CONF")" -eq 1 ] || fail "$CONF does not have exactly one 'listener 8883' line"
line="$(grep -nx 'listener 8883' "$CONF" | cut -d: -f1)"
sed "s/^listener 8883\$/listener 8883 $BR_TUN_IP/" "$CONF" >"$B/config/mosquitto.conf"
expect_eq "the broker's configuration differs from the repository's in the listener line only" \
  "$(printf '%sc%s\n< listener 8883\n---\n> listener 8883 %s' "$line" "$line" "$BR_TUN_IP")" \
  "$(diff "$CONF" "$B/config/mosquitto.conf" || true)"
install -m 0600 "$IOT_SOURCE_DIR/deploy/broker/acl" "$B/config/acl"
cp "$P/ca.crt" "$B/certs/ca.pem"
cp "$P/servers/broker/cert.pem" "$B/certs/cert.pem"
install -m 0600 "$P/servers/broker/key.pem" "$B/certs/key.pem"
cp "$P/crl.pem" "$B/certs/crl.pem"
# Mosquitto binds as root, then drops to the mosquitto user, which must
# read its tree (as in broker_acl.sh).
chown -R mosquitto:mosquitto "$B"
chmod 711 "$T"
: >"$BLOG"
spawn ip netns exec "$NS_BR" env -C "$R" mosquitto -c "$B/config/mosquitto.conf" 2>>"$BLOG"
wait_until 10 has_line "$BLOG" " running" || fail "broker did not start: $(tail -5 "$BLOG")"
expect_eq "the broker listens on its tunnel address only" "$BR_TUN_IP:8883" \
  "$(in_ns "$NS_BR" ss -Hltn | awk '{ print $4 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"

# --- the consumer, over the tunnel address in the broker's namespace ------------
SUB="$T/sub.out"
C="$P/clients/$CONSUMER"
spawn ip netns exec "$NS_BR" mosquitto_sub -h "$BR_TUN_IP" -p 8883 --cafile "$P/ca.crt" \
  --cert "$C/cert.pem" --key "$C/key.pem" -q 1 -v -t 'telemetry/+/telemetry' >"$SUB" 2>"$T/sub.err"
wait_until 10 has_line "$BLOG" "CN=$CONSUMER,OU=consumer,O=IoT Telemetry 1 telemetry/+/telemetry" ||
  fail "consumer did not subscribe: $(cat "$T/sub.err") $(tail -5 "$BLOG")"

# --- the gateway ----------------------------------------------------------------
cat >"$T/gw.conf" <<CONF
device_listen = $GW_LAN_IP:$GW_PORT
admin_listen = 127.0.0.1:9100
tls_cert = $P/servers/gateway/cert.pem
tls_key = $P/servers/gateway/key.pem
client_ca = $P/ca.crt
crl_file = $P/crl.pem
registry = $P/registry.db
outbox = $T/outbox.db
mqtt_host = $BR_TUN_IP
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/gateway-mqtt/cert.pem
mqtt_key = $P/clients/gateway-mqtt/key.pem
workers = 1
reconnect_min = 100ms
reconnect_max = 1s
CONF
spawn ip netns exec "$NS_GW" "$IOT_BUILD_DIR/gateway/iotgw" --config "$T/gw.conf" 2>>"$GLOG"
wait_until 15 has_line "$GLOG" "event=mqtt.connected broker=$BR_TUN_IP:8883" ||
  fail "the gateway did not connect to the broker: $(tail -5 "$GLOG")"
pass "the gateway connects to the broker's tunnel address"
# A TLS handshake started before the TCP connect completed must still
# finish: the first connection over the tunnel may not stall.
! grep -q 'reason="no CONNACK within the connect timeout"' "$GLOG" ||
  fail "the gateway's first MQTT connection stalled until its connect timeout"
pass "the first connection over the tunnel does not stall"
expect_ok "the broker sees the gateway's tunnel address as the client's" \
  grep -qE "New client connected from $GW_TUN_IP:[0-9]+ as CN=gateway-mqtt,OU=gateway,O=IoT Telemetry " "$BLOG"

# --- (a) device -> gateway -> tunnel -> broker -> consumer ----------------------
D="$P/devices/$DEVICE"
marker="23.0625"
run in_ns "$NS_DEV" curl -sS --max-time 10 --cacert "$P/ca.crt" --cert "$D/cert.pem" --key "$D/key.pem" \
  -H 'Content-Type: application/json' --data-binary "{\"seq\":1,\"temperature\":$marker}" \
  -o "$T/resp" -w '%{http_code}' "https://$GW_LAN_IP:$GW_PORT/v1/telemetry"
expect_eq "the device's reading is accepted by the gateway" '200 {"stored":1,"duplicates":0}' \
  "$OUT $(cat "$T/resp" 2>/dev/null)"
wait_until 10 has_line "$SUB" "telemetry/$DEVICE/telemetry " ||
  fail "the consumer did not receive the reading: $(cat "$SUB") $(tail -5 "$GLOG")"
msg="$(grep "^telemetry/$DEVICE/telemetry " "$SUB" | head -1 | cut -d' ' -f2-)"
expect_eq "the consumer receives the reading with its content" "$DEVICE 1 1 temperature=$marker" \
  "$(echo "$msg" | jq -r '"\(.device) \(.seq) \(.dseq) \([.values[] | "\(.n)=\(.v)"] | join(" "))"')"
capture_stop
expect_ok "the tunnel carried traffic both ways" \
  bash -c "ip netns exec $NS_GW wg show $WG_GW transfer | awk '\$2 > 0 && \$3 > 0 { ok = 1 } END { exit !ok }'"

# --- (c) the underlay carried WireGuard only ----------------------------------
udp="$(count "$T/underlay.pcap" "udp and dst host $BR_UL_IP and dst port $WG_PORT")"
[ "$udp" -gt 0 ] || fail "no WireGuard UDP to $BR_UL_IP:$WG_PORT in the capture"
pass "the underlay capture holds WireGuard UDP to the broker ($udp packets)"
expect_eq "the underlay capture holds no TCP to port 8883" 0 "$(count "$T/underlay.pcap" "tcp port 8883")"
expect_eq "the underlay capture holds no TCP at all" 0 "$(count "$T/underlay.pcap" tcp)"
expect_eq "everything on the underlay but ARP is WireGuard UDP" 0 \
  "$(count "$T/underlay.pcap" "not arp and not (udp port $WG_PORT)")"
expect_eq "the reading does not appear in clear on the underlay" 0 \
  "$(grep -caF "$marker" "$T/underlay.pcap" || true)"

# --- (b) the device cannot reach the broker's port ----------------------------
# probe IP: a TCP connect from the device with a 3 s bound; prints
# "connected", "refused" or "timeout".
probe_8883() {
  local rc=0
  timeout 3 ip netns exec "$NS_DEV" bash -c "exec 3<>/dev/tcp/$1/8883" 2>"$T/probe.err" || rc=$?
  case "$rc" in
    0) echo connected ;;
    124) echo timeout ;;
    *) if grep -q "Connection refused" "$T/probe.err"; then echo refused; else echo "error: $(cat "$T/probe.err")"; fi ;;
  esac
}
# A second capture shows that such attempts would be visible on the
# underlay, so the empty counts above mean something.
capture_start "$T/probe.pcap"
expect_eq "from the device, the broker's underlay address refuses port 8883 (nothing listens there)" \
  refused "$(probe_8883 "$BR_UL_IP")"
expect_eq "from the device, the broker's tunnel address does not answer on port 8883" \
  timeout "$(probe_8883 "$BR_TUN_IP")"
capture_stop
[ "$(count "$T/probe.pcap" "tcp and dst host $BR_UL_IP and dst port 8883")" -gt 0 ] ||
  fail "the capture did not see the device's attempt on the underlay"
pass "the capture sees TCP to 8883 on the underlay when there is some"
expect_eq "the device's attempt on the tunnel address left the gateway encrypted" 0 \
  "$(count "$T/probe.pcap" "tcp and dst host $BR_TUN_IP")"

expect_eq "the broker logged no configuration or file errors" "" \
  "$(grep -E "Error|Warning|Unable" "$BLOG" | grep -v "OpenSSL Error" || true)"
expect_eq "the gateway logged no errors" "" "$(grep -E "level=error" "$GLOG" || true)"

finish
