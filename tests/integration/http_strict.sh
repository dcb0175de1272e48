#!/usr/bin/env bash
# The device listener's HTTP framing, case by case, over real mutual TLS to
# the real gateway: every request a strict HTTP/1.1 server must refuse
# (RFC 9112: the ways two servers can disagree on where a request ends,
# which is how requests are smuggled) gets 400 with a JSON reason, the
# connection closed, nothing stored, the refusal counted and logged. Then
# what a strict server must still do right: HEAD without a body, CONNECT
# refused, Expect: 100-continue, HTTP/1.0 and HTTP/1.1 keep-alive,
# pipelined requests answered in order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-ok dev-att
start_broker
write_gateway_config "request_timeout = 3s" "rate_limit = 0" "max_body = 4KiB"
start_gateway
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5

counter() { local v; v="$(refusals "$1")"; echo "${v:-0}"; }

# exchange FILE: sends FILE's bytes over one TLS connection as dev-att and
# reads until the gateway closes (5 s at most). Writes the answers to
# $T/ans and prints "closed" or "open" (still open after 5 s).
exchange() {
  python3 "$IOT_SOURCE_DIR/tests/support/tools/exchange.py" "$GW_PORT" "$1" "$T/ans" \
    --tls "$P/ca.crt" "$P/devices/dev-att/cert.pem" "$P/devices/dev-att/key.pem"
}
statuses() { grep -ao '^HTTP/1\.[01] [0-9]*' "$T/ans" | awk '{ print $2 }' | tr '\n' ' ' | sed 's/ $//' || true; }

HDR='POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n'
SEQ=1000

# refused CASE ERROR REQUEST: REQUEST (printf format) is answered 400 (or
# STATUS) with "error":ERROR, the connection is closed, and the refusal is
# counted as http_framing and logged.
refused() {
  local what="$1" error="$2" req="$3" status="${4:-400}" before state
  before="$(counter http_framing)"
  printf "$req" >"$T/req"
  state="$(exchange "$T/req")"
  expect_eq "$what: the answer" "$status" "$(statuses)"
  grep -aq "\"error\":\"$error\"" "$T/ans" || fail "$what: no JSON error $error: $(cat "$T/ans")"
  grep -aqi '^Content-Type: application/json' "$T/ans" || fail "$what: the answer is not JSON"
  grep -aqi '^Connection: close' "$T/ans" || fail "$what: no Connection: close"
  expect_eq "$what: the connection is closed" closed "$state"
  expect_eq "$what: counted as http_framing" $((before + 1)) "$(counter http_framing)"
  grep -q "event=request.refused .*status=$status error=$error class=security" "$T/gw.log" ||
    fail "$what: not logged"
  pass "$what -> $status $error, closed, counted, logged"
}

stored0="$(metric iotgw_readings_stored_total)"
B='{"seq":1,"x":7}' # 15 bytes

# --- Content-Length ------------------------------------------------------------
refused "two differing Content-Length" invalid_framing \
  "${HDR}Content-Length: 15\r\nContent-Length: 16\r\n\r\n${B}x"
refused "the same Content-Length twice" invalid_framing \
  "${HDR}Content-Length: 15\r\nContent-Length: 15\r\n\r\n${B}"
refused "Content-Length: +15" invalid_framing "${HDR}Content-Length: +15\r\n\r\n${B}"
refused "Content-Length with a NUL" invalid_framing "${HDR}Content-Length: 1\x005\r\n\r\n${B}"
refused "Content-Length with a form feed" invalid_framing "${HDR}Content-Length: \x0c15\r\n\r\n${B}"
refused "Content-Length as a list" invalid_framing "${HDR}Content-Length: 15, 15\r\n\r\n${B}"
refused "a space before the colon" invalid_request "${HDR}Content-Length : 15\r\n\r\n${B}"

# --- Transfer-Encoding -------------------------------------------------------------
CH='f\r\n{"seq":1,"x":7}\r\n0\r\n\r\n'
refused "Transfer-Encoding: gzip, chunked" invalid_framing \
  "${HDR}Transfer-Encoding: gzip, chunked\r\n\r\n${CH}"
refused "Transfer-Encoding: identity" invalid_framing \
  "${HDR}Transfer-Encoding: identity\r\n\r\n${B}"
refused "Transfer-Encoding twice" invalid_framing \
  "${HDR}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${CH}"
refused "Transfer-Encoding and Content-Length" invalid_framing \
  "${HDR}Transfer-Encoding: chunked\r\nContent-Length: 20\r\n\r\n${CH}"
refused "Content-Length and Transfer-Encoding" invalid_framing \
  "${HDR}Content-Length: 20\r\nTransfer-Encoding: chunked\r\n\r\n${CH}"
refused "chunk size 0xf" invalid_framing "${HDR}Transfer-Encoding: chunked\r\n\r\n0xf\r\n${B}\r\n0\r\n\r\n"
refused "chunk size +f" invalid_framing "${HDR}Transfer-Encoding: chunked\r\n\r\n+f\r\n${B}\r\n0\r\n\r\n"
refused "chunk data without its CRLF" invalid_framing \
  "${HDR}Transfer-Encoding: chunked\r\n\r\nf\r\n${B}XX0\r\n\r\n"

# --- bytes llhttp refuses ------------------------------------------------------------
refused "a control byte in a header name" invalid_request "${HDR}X-A\x01b: 1\r\nContent-Length: 15\r\n\r\n${B}"
refused "a control byte in a header value" invalid_request "${HDR}X-A: a\x01b\r\nContent-Length: 15\r\n\r\n${B}"
refused "a control byte in the target" invalid_request \
  "POST /v1/tele\x01metry HTTP/1.1\r\nHost: gw\r\nContent-Length: 15\r\n\r\n${B}"
refused "a bare LF line end" invalid_request "POST /v1/telemetry HTTP/1.1\nHost: gw\r\nContent-Length: 15\r\n\r\n${B}"
refused "an obsolete line folding" invalid_request "${HDR}X-A: a\r\n b\r\nContent-Length: 15\r\n\r\n${B}"
refused "CONNECT" invalid_request "CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\n"
refused "HTTP/1.2" http_version_not_supported "POST /v1/telemetry HTTP/1.2\r\nHost: gw\r\n\r\n" 505
{
  printf "$HDR"
  for i in $(seq 1 400); do printf 'X-Header-%d: %s\r\n' "$i" 0123456789; done
  printf 'Content-Length: 15\r\n\r\n%s' "$B"
} >"$T/big"
before="$(counter http_framing)"
state="$(exchange "$T/big")"
expect_eq "8 KiB of headers: the answer" 431 "$(statuses)"
grep -aq '"error":"headers_too_large"' "$T/ans" || fail "8 KiB of headers: no JSON error"
expect_eq "8 KiB of headers: closed" closed "$state"
expect_eq "8 KiB of headers: counted" $((before + 1)) "$(counter http_framing)"
pass "headers over 8 KiB -> 431 headers_too_large, closed"

# --- the body limit ---------------------------------------------------------------
before="$(counter payload_too_large)"
printf "${HDR}Content-Length: 5000\r\n\r\n" >"$T/req"
head -c 5000 /dev/zero | tr '\0' 1 >>"$T/req"
state="$(exchange "$T/req")"
expect_eq "Content-Length over max_body" 413 "$(statuses)"
grep -aq '"error":"payload_too_large"' "$T/ans" || fail "413 without its JSON error"
expect_eq "Content-Length over max_body: closed" closed "$state"
printf "${HDR}Transfer-Encoding: chunked\r\n\r\n1000\r\n" >"$T/req"
head -c 4096 /dev/zero | tr '\0' 1 >>"$T/req"
printf '\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n' >>"$T/req"
state="$(exchange "$T/req")"
expect_eq "chunks adding up over max_body" 413 "$(statuses)"
expect_eq "chunks over max_body: closed" closed "$state"
expect_eq "both counted as payload_too_large" $((before + 2)) "$(counter payload_too_large)"
pass "bodies over max_body -> 413 payload_too_large, closed"

sleep 0.5
expect_eq "no refused request stored anything" "$stored0" "$(metric iotgw_readings_stored_total)"
expect_eq "no refused request published anything" 0 "$(wc -l <"$SUB")"
pass "nothing refused was stored or published"

# --- what must still work ----------------------------------------------------------
# HEAD: the answer has headers only, even when the request had a body.
printf 'HEAD /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Length: 15\r\nConnection: close\r\n\r\n%s' "$B" >"$T/req"
state="$(exchange "$T/req")"
expect_eq "HEAD /v1/telemetry" 405 "$(statuses)"
grep -aqi '^Allow: POST' "$T/ans" || fail "HEAD: no Allow"
[ "$(tail -c 4 "$T/ans" | od -An -c | tr -d ' ')" = '\r\n\r\n' ] || fail "HEAD answered with a body: $(cat "$T/ans")"
pass "HEAD with a body -> 405 with headers only"

# Pipelined: three requests in one write, answered in order, each once.
{
  for i in 1 2 3; do
    SEQ=$((SEQ + 1))
    b="{\"seq\":$SEQ,\"x\":$i}"
    printf "${HDR}Content-Length: %d\r\n\r\n%s" "${#b}" "$b"
  done
} >"$T/req"
printf "${HDR}Content-Length: 0\r\nConnection: close\r\n\r\n" >>"$T/req"
state="$(exchange "$T/req")"
expect_eq "three pipelined requests and an empty one" "200 200 200 400" "$(statuses)"
expect_eq "after the Connection: close request the gateway closes" closed "$state"
wait_for_lines "$SUB" 3 10 || fail "the pipelined readings were not published"
pass "pipelined requests answered in order"

# Expect: 100-continue, then the body: 100, then 200.
python3 - "$GW_PORT" "$P" "$((SEQ + 1))" <<'PY' || fail "Expect: 100-continue was not served"
import socket, ssl, sys
port, pki, seq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
ctx.load_cert_chain(pki + "/devices/dev-ok/cert.pem", pki + "/devices/dev-ok/key.pem")
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
s.settimeout(5)
body = b'{"seq":%d,"x":1}' % seq
s.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
          b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
first = s.recv(4096)
assert first == b"HTTP/1.1 100 Continue\r\n\r\n", first
s.sendall(body)
resp = s.recv(4096)
assert resp.startswith(b"HTTP/1.1 200 "), resp
PY
SEQ=$((SEQ + 1))
pass "Expect: 100-continue -> 100 Continue, then 200"

# HTTP/1.0 closes after its answer unless it asks for keep-alive; HTTP/1.1
# stays open.
python3 - "$GW_PORT" "$P" "$((SEQ + 1))" <<'PY' || fail "keep-alive rules not followed"
import socket, ssl, sys
port, pki, seq = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
ctx.load_cert_chain(pki + "/devices/dev-ok/cert.pem", pki + "/devices/dev-ok/key.pem")
def conn():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.settimeout(5)
    return s
def post(s, version, seq, extra=b""):
    body = b'{"seq":%d,"x":1}' % seq
    s.sendall(b"POST /v1/telemetry HTTP/%s\r\nHost: gw\r\nContent-Type: application/json\r\n%s"
              b"Content-Length: %d\r\n\r\n%s" % (version, extra, len(body), body))
    r = s.recv(4096)
    assert r.startswith(b"HTTP/1.1 200 "), r
    return r
def closed(s):
    try:
        return s.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        return True
s = conn()
r = post(s, b"1.0", seq)
assert b"Connection: close" in r and closed(s), r
s = conn()
r = post(s, b"1.0", seq + 1, b"Connection: keep-alive\r\n")
assert b"Connection: close" not in r, r
post(s, b"1.0", seq + 2, b"Connection: keep-alive\r\n")
s = conn()
post(s, b"1.1", seq + 3)
post(s, b"1.1", seq + 4)
PY
SEQ=$((SEQ + 5))
pass "HTTP/1.0 closes unless keep-alive is asked; HTTP/1.1 keeps the connection"
wait_for_lines "$SUB" 9 10 || fail "the readings of the good requests were not all published"

kill -0 "$GW_PID" || fail "the gateway died"
[ "$(grep -c $'\e' "$T/gw.log")" -eq 0 ] || fail "raw escape bytes in the log"
finish
