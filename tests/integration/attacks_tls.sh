#!/usr/bin/env bash
# Attacks on the TLS layer and on device identity against the real gateway
# and broker: certificates that are not (yet) valid, foreign or unregistered,
# server and operator certificates used as devices, old protocols, weak
# suites, renegotiation, silent and abandoned connections, a handshake flood
# and the connection cap. Every attack must be refused and counted, publish
# nothing, leave the gateway running and leave other devices served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-ok dev-reneg dev-resume
"$IOTCTL" --dir "$P" device add dev-future --not-before 2030-01-01 --not-after 2031-01-01 >/dev/null
# A foreign CA with our CA's subject, and a device with an ID we registered.
"$IOTCTL" --dir "$T/other" pki init >/dev/null
"$IOTCTL" --dir "$T/other" device add dev-ok >/dev/null
# Signed by our CA key, but from a copy of the PKI: never in our registry.
cp -a "$P" "$T/copy"
"$IOTCTL" --dir "$T/copy" device add dev-ghost >/dev/null
start_broker
write_gateway_config "request_timeout = 2s" "rate_limit = 0"
start_gateway
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5
EXPECTED=0
SEQ=0

counter() { local v; v="$(refusals "$1")"; echo "${v:-0}"; }

# wait_delta REASON BEFORE MIN: until the refusal counter grew by MIN.
wait_delta() {
  local deadline=$((SECONDS + 3))
  while [ $(($(counter "$1") - $2)) -lt "$3" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# tls_refused WHAT REASON CERT KEY: a POST with this certificate gets no
# HTTP answer at all, and the refusal is counted under REASON.
tls_refused() {
  local what="$1" reason="$2" cert="$3" key="$4" before code
  before="$(counter "$reason")"
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$P/ca.crt" \
    --cert "$cert" --key "$key" -H 'Content-Type: application/json' \
    -d '{"seq":900,"x":1}' "https://localhost:$GW_PORT/v1/telemetry" 2>/dev/null || true)"
  [ "$code" = 000 ] || fail "$what: expected a refused handshake, got HTTP $code"
  wait_delta "$reason" "$before" 1 || fail "$what: refusal not counted as $reason"
  pass "$what -> refused, counted as $reason"
}

# legit_ok GROUP: a registered device still gets 200, its reading arrives,
# nothing but the readings counted in EXPECTED (by dev-ok, and the two
# dev-resume posts before its revocation) was published, and the gateway is
# alive.
legit_ok() {
  local r
  SEQ=$((SEQ + 1))
  r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}")"
  [ "${r%% *}" = 200 ] || fail "$1: a legitimate device got: $r"
  EXPECTED=$((EXPECTED + 1))
  wait_for_lines "$SUB" "$EXPECTED" 10 || fail "$1: the legitimate reading did not arrive"
  sleep 0.3
  [ "$(wc -l <"$SUB")" -eq "$EXPECTED" ] || fail "$1: unexpected messages: $(cat "$SUB")"
  [ "$(grep -Evc '^telemetry/dev-ok/telemetry |^telemetry/dev-resume/telemetry .*"dseq":[12],' "$SUB")" -eq 0 ] ||
    fail "$1: an attacker's message was published: $(cat "$SUB")"
  kill -0 "$GW_PID" 2>/dev/null || fail "$1: the gateway died"
}

# --- certificates ---------------------------------------------------------------
tls_refused "not-yet-valid certificate" tls_bad_certificate \
  "$P/devices/dev-future/cert.pem" "$P/devices/dev-future/key.pem"
grep -q 'event=tls.refused .*reason=tls_bad_certificate detail="certificate is not yet valid"' "$T/gw.log" ||
  fail "not-yet-valid refusal not logged"
tls_refused "foreign CA with the same subject and a registered device ID" tls_bad_certificate \
  "$T/other/devices/dev-ok/cert.pem" "$T/other/devices/dev-ok/key.pem"
# A server certificate (EKU serverAuth only) fails OpenSSL's purpose check
# before the registry is consulted.
tls_refused "the gateway's own server certificate used as a device" tls_bad_certificate \
  "$P/servers/gateway/cert.pem" "$P/servers/gateway/key.pem"
tls_refused "the broker's server certificate used as a device" tls_bad_certificate \
  "$P/servers/broker/cert.pem" "$P/servers/broker/key.pem"
grep -q 'reason=tls_bad_certificate detail="unsuitable certificate purpose" subject="/O=IoT Telemetry/OU=server/CN=broker"' "$T/gw.log" ||
  fail "server certificate refusal not logged"
tls_refused "an operator (consumer) client certificate used as a device" not_a_device \
  "$P/clients/consumer/cert.pem" "$P/clients/consumer/key.pem"
tls_refused "the gateway's MQTT client certificate used as a device" not_a_device \
  "$P/clients/gateway-mqtt/cert.pem" "$P/clients/gateway-mqtt/key.pem"
tls_refused "a certificate from our CA that is not in the registry" device_unknown \
  "$T/copy/devices/dev-ghost/cert.pem" "$T/copy/devices/dev-ghost/key.pem"
grep -q 'event=tls.refused .*reason=device_unknown .*dev-ghost' "$T/gw.log" ||
  fail "unregistered device refusal not logged with its subject"
# A self-signed certificate whose CN carries a quote, fields of its own and
# a newline: the refusal's log line keeps exactly its own fields.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$T/forged.key" -out "$T/forged.crt" \
  -subj '/CN=x" peer=6.6.6.6:1 reason="forged' 2>/dev/null
tls_refused "a self-signed certificate with a CN that forges log fields" tls_bad_certificate \
  "$T/forged.crt" "$T/forged.key"
line="$(grep 'event=tls.refused .*CN=x' "$T/gw.log" | tail -n 1)"
[ -n "$line" ] || fail "the forged-CN refusal was not logged"
# Split as a logfmt reader would (quotes and backslash escapes honoured).
keys="$(python3 -c 'import shlex,sys; print(" ".join(t.split("=",1)[0] for t in shlex.split(sys.argv[1])[1:]))' "$line")"
[ "$keys" = "level event peer reason detail subject" ] ||
  fail "a certificate subject changed the log fields to '$keys': $line"
grep -qF 'subject="/CN=x\" peer=6.6.6.6:1 reason=\"forged"' <<<"$line" ||
  fail "the forged subject is not escaped inside its field: $line"
pass "the forged subject stays inside its quoted, escaped field"
legit_ok certificates
echo "# certificates: 8 attacks refused and counted; legitimate device served"

# --- a TLS session saved before the device was revoked -----------------------------
# Resumption skips certificate verification in the handshake. The gateway
# admits a resumed session like a new one, against the registry and CRL in
# force, so a revoked device's old session buys nothing: it gets a full
# handshake, which refuses it. (The registry and CRL are also consulted on
# every request.) tests/integration/tls_resumption.sh tests the rest.
# resumed_post SEQ: one POST on a connection that resumes $T/sess (when it
# exists) and saves its session there; prints "New"/"Reused" and the HTTP
# status (000: no answer).
resumed_post() {
  local in=() out
  [ -s "$T/sess" ] && in=(-sess_in "$T/sess")
  out="$({
    printf 'POST /v1/telemetry HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
      "$((${#1} + 14))" "{\"seq\":$1,\"x\":1}"
    sleep 1
  } | timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -CAfile "$P/ca.crt" \
    -cert "$P/devices/dev-resume/cert.pem" -key "$P/devices/dev-resume/key.pem" \
    "${in[@]}" -sess_out "$T/sess.new" 2>&1 || true)"
  mv -f "$T/sess.new" "$T/sess" 2>/dev/null || true
  local code
  code="$(echo "$out" | grep -Eo '^HTTP/1.1 [0-9]+' | awk '{ print $2 }')"
  echo "$(echo "$out" | grep -Eo '^(New|Reused)' | head -1) ${code:-000}"
}
expect_eq "dev-resume posts and saves its TLS session" "New 200" "$(resumed_post 1)"
expect_eq "the saved session resumes while the device is admitted" "Reused 200" "$(resumed_post 2)"
EXPECTED=$((EXPECTED + 2))
wait_for_lines "$SUB" "$EXPECTED" 10 || fail "dev-resume's readings did not arrive"
before="$(counter device_revoked)"
iotctl_and_wait_reload device revoke dev-resume
r="$(resumed_post 3)"
echo "$r" | grep -q '^Reused' && fail "a revoked device's session was resumed: $r"
[ "${r#* }" != 200 ] || fail "a revoked device's saved session was served: $r"
wait_delta device_revoked "$before" 1 || fail "the revoked device's resumed session was not counted as device_revoked: $r"
pass "a session saved before the revocation is refused after it ($r), counted as device_revoked"
SEQ=$((SEQ + 1))
r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}")"
[ "${r%% *}" = 200 ] || fail "after the revocation a legitimate device got: $r"
EXPECTED=$((EXPECTED + 1))
wait_for_lines "$SUB" "$EXPECTED" 10 || fail "after the revocation the legitimate reading did not arrive"
sleep 0.3
expect_eq "nothing of the revoked device's session was published" 2 "$(grep -c '^telemetry/dev-resume/' "$SUB")"

# --- protocol ----------------------------------------------------------------------
ossl() {
  timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -CAfile "$P/ca.crt" \
    -cert "$P/devices/$1/cert.pem" -key "$P/devices/$1/key.pem" "${@:2}" 2>&1 || true
}
before="$(counter tls_protocol)"
out="$(ossl dev-ok -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null)"
echo "$out" | grep -q 'unsupported protocol\|alert protocol version' ||
  fail "TLS 1.1: expected a protocol version alert, got: $(echo "$out" | head -5)"
echo "$out" | grep -q "Cipher is (NONE)" || fail "TLS 1.1: a cipher was negotiated: $out"
wait_delta tls_protocol "$before" 1 || fail "TLS 1.1 refusal not counted"
pass "TLS 1.1 only -> refused, counted as tls_protocol"
before="$(counter tls_protocol)"
out="$(ossl dev-ok -tls1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null)"
echo "$out" | grep -Eq 'Cipher is \(NONE\)|alert|error' || fail "TLS 1.0: not refused: $out"
wait_delta tls_protocol "$before" 1 || fail "TLS 1.0 refusal not counted"
pass "TLS 1.0 only -> refused, counted as tls_protocol"
for suite in AES128-SHA AES256-SHA256 ECDHE-RSA-AES128-SHA DHE-RSA-AES128-GCM-SHA256; do
  before="$(counter tls_protocol)"
  out="$(ossl dev-ok -tls1_2 -cipher "$suite" </dev/null)"
  echo "$out" | grep -q 'handshake failure' || fail "weak suite $suite: not refused: $(echo "$out" | head -5)"
  wait_delta tls_protocol "$before" 1 || fail "weak suite $suite: refusal not counted"
  pass "TLS 1.2 with only $suite -> handshake failure, counted as tls_protocol"
done
grep -q 'reason=tls_protocol detail=".*no shared cipher"' "$T/gw.log" || fail "weak suite not logged"
# Renegotiation on TLS 1.2, then a request on the same connection.
before="$(counter tls_protocol)"
out="$({
  echo R
  sleep 1
  printf 'POST /v1/telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"seq":901,"x":1}'
  sleep 1
} | ossl dev-reneg -tls1_2 || true)"
echo "$out" | grep -q RENEGOTIATING || fail "renegotiation was not attempted: $out"
echo "$out" | grep -q 'no renegotiation' || fail "renegotiation was not refused: $(echo "$out" | tail -5)"
! echo "$out" | grep -q "^HTTP/1.1" || fail "a request was answered after renegotiation: $out"
wait_delta tls_protocol "$before" 1 || fail "renegotiation refusal not counted"
pass "renegotiation on TLS 1.2 -> no_renegotiation, connection ended, counted as tls_protocol"
legit_ok protocol
echo "# protocol: TLS 1.0, TLS 1.1, 4 weak suites and renegotiation refused and counted; legitimate device served"

# --- ordinary disconnects and plaintext ---------------------------------------------
# A device that closes without close_notify after its answers is an
# ordinary disconnect, not a security event; plaintext HTTP on the TLS port
# is one, logged with its peer and counted.
proto_before="$(counter tls_protocol)"
unclean_before="$(metric iotgw_connections_unclean_close_total)"
python3 - "$GW_PORT" "$P" "$SEQ" <<'PY' || fail "the device without close_notify was not served"
import socket, ssl, sys
port, p, seq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=p + "/ca.crt")
ctx.load_cert_chain(p + "/devices/dev-ok/cert.pem", p + "/devices/dev-ok/key.pem")
for i in range(1, 4):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    body = b'{"seq":%d,"x":1}' % (seq + i)
    s.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    resp = s.recv(4096)
    assert resp.startswith(b"HTTP/1.1 200"), resp
    s.shutdown(socket.SHUT_RDWR)  # TCP FIN, no TLS close_notify
    s.close()
PY
SEQ=$((SEQ + 3)); EXPECTED=$((EXPECTED + 3))
for _ in $(seq 1 30); do
  [ "$(metric iotgw_connections_unclean_close_total)" -ge $((unclean_before + 3)) ] && break
  sleep 0.1
done
[ "$(metric iotgw_connections_unclean_close_total)" -ge $((unclean_before + 3)) ] ||
  fail "closes without close_notify were not counted as disconnects"
expect_eq "closes without close_notify are not security events" "$proto_before" "$(counter tls_protocol)"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$GW_PORT/v1/telemetry" || true)"
[ "$code" = 000 ] || fail "plaintext HTTP got an answer: $code"
wait_delta tls_protocol "$proto_before" 1 || fail "plaintext HTTP on the TLS port was not counted"
grep -q 'event=tls.refused peer=127.0.0.1:[0-9]* reason=tls_protocol detail="plaintext HTTP on the TLS port; use https://"' "$T/gw.log" ||
  fail "plaintext HTTP on the TLS port was not logged with its peer"
pass "plaintext HTTP on the TLS port: refused, counted as tls_protocol, logged with its peer"
legit_ok disconnects
echo "# disconnects: 3 closes without close_notify counted as disconnects; plaintext HTTP refused and counted"

# --- connections -------------------------------------------------------------------
# A TCP connection that never sends a byte is closed after request_timeout (2s).
start=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT"
timeout 8 cat <&3 >/dev/null || fail "a silent connection was still open after 8s"
exec 3<&-
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 1500 ] && [ "$ms" -le 5000 ] || fail "silent connection closed after ${ms}ms, expected about 2000"
pass "a silent connection is closed after request_timeout (${ms}ms)"
# The same after a TLS record header: a handshake that never completes.
start=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT"
printf '\x16\x03\x01\x02\x00\x01' >&3
timeout 8 cat <&3 >/dev/null || fail "a stalled handshake was still open after 8s"
exec 3<&-
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -le 5000 ] || fail "stalled handshake closed after ${ms}ms"
pass "a stalled handshake is closed after request_timeout (${ms}ms)"

# Handshake flood: 200 connections that start TLS and walk away, while a
# device keeps posting.
before="$(counter tls_protocol)"
accepted="$(metric iotgw_connections_accepted_total)"
(
  for _ in $(seq 1 200); do
    exec 4<>"/dev/tcp/127.0.0.1/$GW_PORT" || continue
    printf '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' >&4
    exec 4<&-
  done
) &
flood=$!
codes=""
n=0
while kill -0 "$flood" 2>/dev/null || [ "$n" -lt 3 ]; do
  n=$((n + 1))
  SEQ=$((SEQ + 1))
  r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}")"
  codes="$codes ${r%% *}"
  [ "${r%% *}" = 200 ] && EXPECTED=$((EXPECTED + 1))
done
wait "$flood"
echo "$codes" | grep -q 200 || fail "no request was served during the flood: $codes"
[ -z "$(echo "$codes" | tr ' ' '\n' | grep -v '^200$' | grep .)" ] ||
  fail "a legitimate request failed during the handshake flood: $codes"
pass "a device is served during a flood of 200 abandoned handshakes (requests:$codes)"
got=$(($(metric iotgw_connections_accepted_total) - accepted))
[ "$got" -ge 200 ] || fail "the flood did not reach the gateway: $got connections accepted"
wait_delta tls_protocol "$before" 150 || fail "abandoned handshakes not counted: $(($(counter tls_protocol) - before))"
pass "abandoned handshakes are counted as tls_protocol ($(($(counter tls_protocol) - before)) of 200)"
for _ in $(seq 1 50); do
  [ "$(metric iotgw_open_connections)" -eq 0 ] && break
  sleep 0.1
done
expect_eq "no connection is left open after the flood" 0 "$(metric iotgw_open_connections)"

# hold_connections N: opens N silent TCP connections from 127.0.0.1 (kept in
# HELD) and waits until the gateway counts them open.
hold_connections() {
  HELD=()
  local fd
  for _ in $(seq 1 "$1"); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$GW_PORT"
    HELD+=("$fd")
  done
  for _ in $(seq 1 20); do
    [ "$(metric iotgw_open_connections)" -ge "$1" ] && break
    sleep 0.05
  done
  [ "$(metric iotgw_open_connections)" -ge "$1" ] || fail "held connections not open: $(metric iotgw_open_connections)"
}

# release_connections: closes HELD and waits until the gateway has let go.
release_connections() {
  local fd
  for fd in "${HELD[@]}"; do exec {fd}<&-; done
  for _ in $(seq 1 50); do
    [ "$(metric iotgw_open_connections)" -eq 0 ] && break
    sleep 0.1
  done
}

# max_connections = 100: hold 100 connections, the 101st is closed at
# accept, before any TLS state is made for it.
# (The cap is global: it bounds resources. What keeps one host from taking
# all of it is max_connections_per_address, below.)
stop_gateway
write_gateway_config "request_timeout = 2s" "rate_limit = 0" "max_connections = 100"
start_gateway
sleep 0.3
hold_connections 100
before="$(counter over_capacity)"
r="$(post dev-ok application/json '{"seq":999999,"x":1}')"
[ "${r%% *}" = 000 ] || fail "over max_connections: expected a refused handshake, got: $r"
wait_delta over_capacity "$before" 1 || fail "over_capacity not counted"
grep -q 'event=connection.refused address=127.0.0.1 reason=over_capacity detail="max_connections reached"' "$T/gw.log" ||
  fail "over_capacity not logged"
pass "max_connections reached -> closed before the handshake, counted and logged as over_capacity"
release_connections
legit_ok connections

# max_connections_per_address = 20: one address holds 20 silent connections;
# its 21st is closed before any handshake, counted and logged, while a
# device connecting from another address (127.0.0.2) is served.
stop_gateway
write_gateway_config "request_timeout = 10s" "rate_limit = 0" "max_connections_per_address = 20"
start_gateway
sleep 0.3
hold_connections 20
for _ in $(seq 1 20); do # counted when the worker admits them, just after accepting
  [ "$(metric iotgw_connected_addresses)" = 1 ] && break
  sleep 0.05
done
expect_eq "20 connections from 127.0.0.1 count as one connected address" 1 "$(metric iotgw_connected_addresses)"
before="$(counter over_capacity)"
r="$(post dev-ok application/json '{"seq":999998,"x":1}')"
[ "${r%% *}" = 000 ] || fail "over max_connections_per_address: expected a closed connection, got: $r"
wait_delta over_capacity "$before" 1 || fail "the connection over the per-address cap was not counted as over_capacity"
grep -q 'event=connection.refused address=127.0.0.1 reason=over_capacity detail="max_connections_per_address reached"' "$T/gw.log" ||
  fail "the connection over the per-address cap was not logged as connection.refused"
pass "max_connections_per_address reached -> connection closed, counted as over_capacity, logged with the address"
SEQ=$((SEQ + 1))
r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}" --interface 127.0.0.2)"
expect_eq "a device from another address is served while 127.0.0.1 is at its cap" 200 "${r%% *}"
EXPECTED=$((EXPECTED + 1))
release_connections
expect_eq "no connected address once they are closed" 0 "$(metric iotgw_connected_addresses)"
legit_ok "per-address cap" # from 127.0.0.1 again, once its connections are closed

# connection_rate_per_address = 0.2/s with a burst of 5: ten connections in
# a row from 127.0.0.3 (well under 5 s, so less than one connection comes
# back meanwhile): five are served, the rest closed before their handshake,
# counted as rate_limited; 127.0.0.1 is served throughout.
stop_gateway
write_gateway_config "request_timeout = 10s" "rate_limit = 0" \
  "connection_rate_per_address = 0.2" "connection_burst_per_address = 5"
start_gateway
sleep 0.3
before="$(counter rate_limited)"
codes=""
start_s=$SECONDS
for _ in $(seq 1 10); do
  SEQ=$((SEQ + 1))
  r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}" --interface 127.0.0.3)"
  codes="$codes ${r%% *}"
  [ "${r%% *}" = 200 ] && EXPECTED=$((EXPECTED + 1))
done
[ $((SECONDS - start_s)) -lt 5 ] || fail "ten connections took $((SECONDS - start_s)) s; the rate check needs them under 5 s"
expect_eq "127.0.0.3 at 0.2 connections/s with a burst of 5: the first five served, then closed" \
  "200 200 200 200 200 000 000 000 000 000" "${codes# }"
wait_delta rate_limited "$before" 5 || fail "connections over the rate were not counted as rate_limited"
grep -q 'event=connection.refused address=127.0.0.3 reason=rate_limited detail="connection_rate_per_address exceeded"' "$T/gw.log" ||
  fail "connections over the rate were not logged as connection.refused"
pass "connection_rate_per_address exceeded -> closed before the handshake, counted as rate_limited, logged"
legit_ok "per-address rate" # 127.0.0.1 has its own bucket
echo "# connections: silent, stalled, 200-handshake flood, over-capacity, per-address cap and rate handled; legitimate device served"

[ "$(grep -c $'\e' "$T/gw.log")" -eq 0 ] || fail "raw escape bytes in the log"
# Every refusal above named its peer, including connections that closed
# before their handshake began.
! grep -q 'event=\(tls\|request\|connection\)\.[a-z]* .*peer=?' "$T/gw.log" ||
  fail "a refusal without its peer: $(grep 'peer=?' "$T/gw.log" | head -3)"
pass "every refusal in the log names its peer"
finish
