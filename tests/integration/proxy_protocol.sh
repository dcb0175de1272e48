#!/usr/bin/env bash
# Two real gateways behind a real HAProxy (Debian's 2.6), configured from
# deploy/haproxy/haproxy.cfg with this test's ports, the gateways taking
# PROXY protocol v2 headers from the balancer (proxy_protocol_from):
#   1. readings go through the balancer and are stored and published; TLS
#      is the gateway's (a device without a certificate is refused by it)
#      and the device's identity comes from its certificate;
#   2. the gateway logs the device's address, not the balancer's;
#   3. a gateway stopped is marked down by HAProxy's health check and new
#      devices are served by the other; per-address limits apply to each
#      device's own address (max_connections_per_address = 1: a second
#      connection from one address is refused while another address is
#      served); the gateway started again is marked up and serves again;
#   4. a PROXY header from an address not in proxy_protocol_from, and a
#      connection from the balancer's address without one, are refused,
#      counted (proxy_header_refused) and logged.
# Devices use their own loopback addresses (curl --interface 127.0.0.7),
# one per connection where the per-address cap (1) is not what is tested,
# so that a connection the gateway has not yet seen close cannot refuse the
# next; HAProxy connects to the gateways from 127.0.0.1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

command -v haproxy >/dev/null || fail "haproxy is missing: run scripts/install-deps.sh (Debian package haproxy)"

make_pki dev-a dev-b dev-c
start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
SUB="$T/sub.out"
start_consumer "$SUB"

# --- two gateways, one balancer ---------------------------------------------
# gw_config N: $T/gwN.conf, its own ports, outbox and MQTT client ID.
gw_config() {
  local n="$1"
  GW_PORT="$(free_port)" ADMIN_PORT="$(free_port)"
  write_gateway_config "proxy_protocol_from = 127.0.0.1" "max_connections_per_address = 1" \
    "request_timeout = 5s" "log_level = debug"
  sed -e "s|^outbox = .*|outbox = $T/gw$n/outbox.db|" \
    -e "s|^mqtt_client_id = .*|mqtt_client_id = iotgw-test-$n|" "$T/gw.conf" >"$T/gw$n.conf"
  mkdir -p "$T/gw$n"
  eval "G$n=$GW_PORT A$n=$ADMIN_PORT"
}
gw_config 1
gw_config 2

start_gw() {
  local n="$1" port
  port="$(eval echo "\$G$n")"
  "$IOTGW" --config "$T/gw$n.conf" 2>>"$T/gw$n.log" &
  _PIDS+=("$!")
  eval "GW${n}_PID=$!"
  wait_port "$port" 15 || fail "gateway $n did not start; see $T/gw$n.log"
}
start_gw 1
start_gw 2

# The shipped file, with this test's ports; the Debian package's chroot and
# user are for a system service, not for a test, and its maxconn needs more
# file descriptors than a test may open.
LB="$(free_port)"
sed -e '/^ *\(chroot\|user\|group\) /d' -e 's/^\( *maxconn \)[0-9]*$/\11000/' \
  -e "s|^\( *bind \):::8443 v4v6$|\1127.0.0.1:$LB\n\1ipv6@::1:$LB|" \
  -e "s|^\( *server gw1 \)10.0.0.11:8443 check port 9100$|\1127.0.0.1:$G1 check port $A1|" \
  -e "s|^\( *server gw2 \)10.0.0.12:8443 check port 9100$|\1127.0.0.1:$G2 check port $A2|" \
  "$IOT_SOURCE_DIR/deploy/haproxy/haproxy.cfg" >"$T/haproxy.cfg"
for want in "bind 127.0.0.1:$LB" "bind ipv6@::1:$LB" "server gw1 127.0.0.1:$G1 check port $A1" \
  "server gw2 127.0.0.1:$G2 check port $A2" "send-proxy-v2" "balance leastconn" \
  "option httpchk GET /healthz"; do
  grep -qF -- "$want" "$T/haproxy.cfg" || fail "deploy/haproxy/haproxy.cfg no longer has what this test replaces: $want"
done
grep -Eq '^ *(chroot|user|group) ' "$T/haproxy.cfg" && fail "the chroot/user lines were not removed"
haproxy -c -f "$T/haproxy.cfg" >"$T/haproxy-check.out" 2>&1 ||
  fail "haproxy -c refused the configuration: $(tail -3 "$T/haproxy-check.out")"
spawn haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1
HAPROXY_PID=$LAST_PID
wait_port "$LB" 10 || fail "haproxy did not start; see $T/haproxy.log"
pass "HAProxy runs deploy/haproxy/haproxy.cfg in front of two gateways"

# Both gateways pass HAProxy's check of /healthz (log-health-checks logs
# each result as it changes).
for g in gw1 gw2; do
  wait_until 10 "HAProxy's health check of $g passing" \
    grep -q "Health check for server gateways/$g succeeded, reason: Layer7 check passed, code: 200" "$T/haproxy.log"
done
grep -q "is DOWN" "$T/haproxy.log" && fail "a gateway failed HAProxy's health check: $(cat "$T/haproxy.log")"
pass "both gateways pass the health check on /healthz (200)"

# lb_post DEVICE BODY SOURCE [curl args]: a POST through the balancer from
# SOURCE; prints "STATUS BODY".
lb_post() {
  local dev="$1" body="$2" src="$3"; shift 3
  GW_PORT="$LB" post "$dev" application/json "$body" --interface "$src" \
    --resolve "localhost:$LB:127.0.0.1" "$@"
}
stored() { ADMIN_PORT="$1" metric iotgw_readings_stored_total; }
refused_g() { local v; v="$(ADMIN_PORT="$1" refusals "$2")"; echo "${v:-0}"; }
total_stored() { echo $(($(stored "$A1") + $(stored "$A2"))); }

# --- 1. through the balancer -------------------------------------------------
r="$(lb_post dev-a '{"seq":1,"temp":21.5}' 127.0.0.11)"
[ "${r%% *}" = 200 ] || fail "a reading through the balancer: $r"
r="$(lb_post dev-b '{"seq":1,"temp":19}' 127.0.0.12)"
[ "${r%% *}" = 200 ] || fail "a second reading through the balancer: $r"
expect_eq "two readings stored by the gateways behind the balancer" 2 "$(total_stored)"
wait_for_lines "$SUB" 2 20 || fail "the readings were not published: $(cat "$SUB")"
if ! grep -q '^telemetry/dev-a/' "$SUB" || ! grep -q '^telemetry/dev-b/' "$SUB"; then
  fail "published under other identities than the certificates': $(cat "$SUB")"
fi
pass "published as the devices of the client certificates (telemetry/dev-a, telemetry/dev-b)"
before=$(($(refused_g "$A1" tls_no_certificate) + $(refused_g "$A2" tls_no_certificate)))
r="$(lb_post "" '{"seq":2,"temp":1}' 127.0.0.13)"
[ "${r%% *}" = 000 ] || fail "a device without a certificate was served through the balancer: $r"
after=$(($(refused_g "$A1" tls_no_certificate) + $(refused_g "$A2" tls_no_certificate)))
expect_eq "a device without a certificate is refused by the gateway's TLS (mutual TLS end to end)" \
  $((before + 1)) "$after"

# --- 2. the device's address in the gateway's log ----------------------------
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" \
  --cert "$P/devices/dev-c/cert.pem" --key "$P/devices/dev-c/key.pem" \
  --interface 127.0.0.7 --resolve "localhost:$LB:127.0.0.1" \
  "https://localhost:$LB/no/such/path" 2>/dev/null)" || true
expect_eq "a request for a wrong path through the balancer gets the gateway's 404" 404 "$code"
cat "$T/gw1.log" "$T/gw2.log" >"$T/both.log"
grep -q 'event=request.refused peer=127.0.0.7:[0-9]* device=dev-c status=404' "$T/both.log" ||
  fail "the refusal was not logged with the device's address: $(grep request.refused "$T/both.log")"
grep -q 'event=request.refused peer=127.0.0.1:' "$T/both.log" &&
  fail "a refusal was logged with the balancer's address"
pass "the gateway logs the device's address (127.0.0.7), not the balancer's (127.0.0.1)"
grep -q 'event=connection.proxied peer=127.0.0.7:[0-9]* balancer=127.0.0.1:[0-9]*' "$T/both.log" ||
  fail "no connection.proxied line naming device and balancer"
pass "connection.proxied names the device's address and the balancer's (debug)"

# An IPv6 device: the balancer passes its address in a PROXY v2 header of the
# TCP6 family, over its IPv4 connection to the gateway.
r="$(GW_PORT="$LB" post dev-c application/json '{"seq":1,"temp":18}' -6 \
  --resolve "localhost:$LB:[::1]")"
[ "${r%% *}" = 200 ] || fail "a reading from an IPv6 device through the balancer: $r"
code="$(curl -s -6 -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" \
  --cert "$P/devices/dev-c/cert.pem" --key "$P/devices/dev-c/key.pem" \
  --resolve "localhost:$LB:[::1]" "https://localhost:$LB/no/such/path/v6" 2>/dev/null)" || true
expect_eq "a wrong path from the IPv6 device gets the gateway's 404" 404 "$code"
cat "$T/gw1.log" "$T/gw2.log" >"$T/both.log"
grep -q 'event=request.refused peer=\[::1\]:[0-9]* device=dev-c status=404' "$T/both.log" ||
  fail "the IPv6 device's refusal was not logged with its address: $(grep request.refused "$T/both.log")"
pass "an IPv6 device through the balancer: stored, and logged with its own address ([::1])"

# --- 3. a gateway down, per-address limits, the gateway back -----------------
# shellcheck disable=SC2153 # set by start_gw
kill -TERM "$GW2_PID"
wait "$GW2_PID" 2>/dev/null || true
wait_until 10 "HAProxy marks gw2 down" grep -q "gw2 is DOWN" "$T/haproxy.log"
pass "gw2 stopped: HAProxy's health check marks it down"
s1="$(stored "$A1")"
r="$(lb_post dev-a '{"seq":3,"temp":22}' 127.0.0.10)"
[ "${r%% *}" = 200 ] || fail "a device after gw2 went down: $r"
expect_eq "new devices are served by gw1" $((s1 + 1)) "$(stored "$A1")"

# One device connection held from 127.0.0.8, then a second from it, then
# one from 127.0.0.9: through the balancer all come from 127.0.0.1, so
# only the PROXY header tells them apart.
cat >"$T/hold.py" <<'PY'
import socket, ssl, sys, time
lb, ca, cert, key, src, done = sys.argv[1:7]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
def connect():
    s = socket.create_connection(("127.0.0.1", int(lb)), timeout=5, source_address=(src, 0))
    t = ctx.wrap_socket(s, server_hostname="localhost")
    # The gateway speaks first after TLS 1.3's handshake only if it keeps
    # the connection: a request shows it is served.
    t.sendall(b"GET /no/such/path HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return t, t.recv(64).startswith(b"HTTP/1.1 404")
held = []
out = []
for _ in range(2):
    try:
        t, ok = connect()
        held.append(t)
        out.append("served" if ok else "refused")
    except (OSError, ssl.SSLError):
        out.append("refused")
print(" ".join(out), flush=True)
while not __import__("os").path.exists(done):
    time.sleep(0.05)
PY
overcap="$(refused_g "$A1" over_capacity)"
spawn python3 "$T/hold.py" "$LB" "$P/ca.crt" "$P/devices/dev-a/cert.pem" \
  "$P/devices/dev-a/key.pem" 127.0.0.8 "$T/hold.done" >"$T/hold.out" 2>"$T/hold.err"
HOLD_PID=$LAST_PID
wait_until 10 "the held connections" test -s "$T/hold.out"
expect_eq "max_connections_per_address = 1: 127.0.0.8's first connection served, its second refused" \
  "served refused" "$(cat "$T/hold.out")"
r="$(lb_post dev-b '{"seq":2,"temp":18}' 127.0.0.9)"
[ "${r%% *}" = 200 ] || fail "another address while 127.0.0.8 holds its connection: $r"
pass "another address (127.0.0.9) is served meanwhile: the limit is per device address"
expect_eq "the refused connection is counted as over_capacity" $((overcap + 1)) "$(refused_g "$A1" over_capacity)"
grep -q 'event=connection.refused address=127.0.0.8 reason=over_capacity detail="max_connections_per_address reached" peer=127.0.0.8:' "$T/gw1.log" ||
  fail "the per-address refusal was not logged with the device's address"
pass "the per-address refusal is logged with the device's address"
touch "$T/hold.done"
wait "$HOLD_PID" || true

start_gw 2
wait_until 10 "HAProxy marks gw2 up" grep -q "gw2 is UP" "$T/haproxy.log"
pass "gw2 started again: HAProxy marks it up"
s2="$(stored "$A2")"
for seq in $(seq 10 29); do
  r="$(lb_post dev-c "{\"seq\":$seq,\"temp\":20}" "127.0.0.$((20 + seq))")"
  [ "${r%% *}" = 200 ] || fail "a reading after gw2 came back: $r"
  [ "$(stored "$A2")" -gt "$s2" ] && break
done
[ "$(stored "$A2")" -gt "$s2" ] || fail "gw2 stored nothing after it came back"
pass "gw2 serves devices again"

# --- 4. PROXY headers where they do not belong --------------------------------
# raw SOURCE PORT HEX: connects from SOURCE, sends the bytes, prints
# "closed" when the gateway closes within 8 s, "open" otherwise.
cat >"$T/raw.py" <<'PY'
import socket, sys
src, port, data = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=8, source_address=(src, 0))
s.sendall(data)
try:
    print("closed" if s.recv(1) == b"" else "open")
except ConnectionResetError:
    print("closed")
except socket.timeout:
    print("open")
PY
# A v2 header claiming 192.0.2.7, then the start of a TLS ClientHello.
V2="0d0a0d0a000d0a515549540a""2111000c""c0000207""7f000001""9c40""20fb""16030100"
V1="$(printf 'PROXY TCP4 192.0.2.7 127.0.0.1 40000 8443\r\n' | od -An -tx1 | tr -d ' \n')"
ph="$(refused_g "$A1" proxy_header_refused)"
expect_eq "a PROXY v2 header from 127.0.0.9 (not a balancer) straight to the gateway: closed" \
  closed "$(python3 "$T/raw.py" 127.0.0.9 "$G1" "$V2")"
expect_eq "a PROXY v1 header from 127.0.0.9: closed" closed "$(python3 "$T/raw.py" 127.0.0.9 "$G1" "$V1")"
expect_eq "both counted as proxy_header_refused" $((ph + 2)) "$(refused_g "$A1" proxy_header_refused)"
grep -q 'event=connection.refused address=127.0.0.9 reason=proxy_header_refused detail="a PROXY header from an address not in proxy_protocol_from" peer=127.0.0.9:' "$T/gw1.log" ||
  fail "the PROXY header from 127.0.0.9 was not logged"
pass "logged as connection.refused reason=proxy_header_refused with the sender's address"
grep -q 'event=connection.proxied peer=192.0.2.7' "$T/gw1.log" && fail "the claimed address was taken"
pass "the address the header claimed was not taken"

# From the balancer's address, without a header: a device going around it.
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" \
  --cert "$P/devices/dev-c/cert.pem" --key "$P/devices/dev-c/key.pem" \
  --data-binary '{"seq":99,"temp":1}' -H 'Content-Type: application/json' \
  --interface 127.0.0.1 "https://localhost:$G1/v1/telemetry" 2>/dev/null)" || true
expect_eq "a TLS connection from the balancer's address without a PROXY header is refused" 000 "$code"
expect_eq "counted as proxy_header_refused" $((ph + 3)) "$(refused_g "$A1" proxy_header_refused)"
grep -q 'event=connection.refused address=127.0.0.1 reason=proxy_header_refused detail="no valid PROXY v2 header from a balancer: no PROXY v2 signature"' "$T/gw1.log" ||
  fail "the connection without a header was not logged"
pass "logged as connection.refused reason=proxy_header_refused"
expect_eq "a balancer's connection that sends nothing is closed at request_timeout" \
  closed "$(python3 "$T/raw.py" 127.0.0.1 "$G1" "")"
expect_eq "counted as proxy_header_refused" $((ph + 4)) "$(refused_g "$A1" proxy_header_refused)"
grep -q 'reason=proxy_header_refused detail="no PROXY v2 header from a balancer within request_timeout"' "$T/gw1.log" ||
  fail "the silent balancer connection was not logged"
expect_stream connection.refused \
  '.reason == "proxy_header_refused" and (.peer | startswith("127.0.0.9"))' \
  "security stream: connection.refused reason=proxy_header_refused"

kill "$HAPROXY_PID" 2>/dev/null || true
finish
