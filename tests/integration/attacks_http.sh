#!/usr/bin/env bash
# Attacks on the HTTP layer of the real gateway, as an authenticated device
# speaking raw bytes through openssl s_client: slow headers and bodies,
# oversized and too many headers, lying Content-Length, chunked-encoding
# abuse, request smuggling, wrong methods and paths, and pipelining after an
# error. Every attack must be refused or cut off, publish nothing, not grow
# the gateway's memory, leave it running and leave other devices served.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-ok dev-att
start_broker
write_gateway_config "request_timeout = 2s" "rate_limit = 0"
start_gateway
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5
EXPECTED=0
SEQ=0

counter() { local v; v="$(refusals "$1")"; echo "${v:-0}"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status"; }

# raw FILE [SECONDS]: sends FILE's bytes (or stdin when FILE is -) over one
# TLS connection as dev-att and keeps reading until the gateway closes it;
# the answer is in $T/raw.out, the time it took in $RAW_MS. A gateway that
# never closes is cut off after SECONDS (default 10) and RAW_TIMEDOUT=1.
raw() {
  local file="$1" limit="${2:-10}" start rc=0
  start=$(date +%s%N)
  if [ "$file" = - ]; then file=/dev/stdin; fi
  timeout "$limit" openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" -CAfile "$P/ca.crt" \
    -cert "$P/devices/dev-att/cert.pem" -key "$P/devices/dev-att/key.pem" \
    <"$file" >"$T/raw.out" 2>"$T/raw.err" || rc=$?
  RAW_MS=$((($(date +%s%N) - start) / 1000000))
  RAW_TIMEDOUT=0
  [ "$rc" -ne 124 ] || RAW_TIMEDOUT=1
}
# The status codes of every response in $T/raw.out, space-separated.
statuses() { grep -ao '^HTTP/1\.[01] [0-9]*' "$T/raw.out" | awk '{ print $2 }' | tr '\n' ' ' | sed 's/ $//'; }

# closed_within WHAT MS: the gateway ended the connection by itself in time.
closed_within() {
  [ "$RAW_TIMEDOUT" -eq 0 ] || fail "$1: the connection was still open when the client gave up"
  [ "$RAW_MS" -le "$2" ] || fail "$1: closed after ${RAW_MS}ms, expected within $2ms"
}

# no_success WHAT: no 2xx was sent for the attacker's bytes.
no_success() {
  ! grep -aq '^HTTP/1\.[01] 2' "$T/raw.out" || fail "$1: got a success answer: $(head -c 400 "$T/raw.out")"
}

legit_ok() {
  local r
  SEQ=$((SEQ + 1))
  r="$(post dev-ok application/json "{\"seq\":$SEQ,\"x\":1}")"
  [ "${r%% *}" = 200 ] || fail "$1: a legitimate device got: $r"
  EXPECTED=$((EXPECTED + 1))
  wait_for_lines "$SUB" "$EXPECTED" 10 || fail "$1: the legitimate reading did not arrive"
  sleep 0.3
  [ "$(wc -l <"$SUB")" -eq "$EXPECTED" ] || fail "$1: unexpected messages: $(cat "$SUB")"
  [ "$(grep -vc '^telemetry/dev-ok/telemetry ' "$SUB")" -eq "${ATT_ALLOWED:-0}" ] ||
    fail "$1: an attacker's message was published: $(grep -v '^telemetry/dev-ok/' "$SUB")"
  kill -0 "$GW_PID" 2>/dev/null || fail "$1: the gateway died"
}

HDR='POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n'
BODY='{"seq":1,"x":7}' # 15 bytes; dev-att must never get it published

# --- slow clients ----------------------------------------------------------------
# Slow headers: one byte, then a pause longer than request_timeout.
raw <(
  printf 'POST /v1/telemetry HTTP/1.1\r\nHo'
  sleep 3
  printf 'st: gw\r\n'
  sleep 3
) 12
closed_within "slow headers" 4500
no_success "slow headers"
[ ! -s "$T/raw.out" ] || grep -aq '^HTTP/1\.[01] 408' "$T/raw.out" || fail "slow headers: answered: $(cat "$T/raw.out")"
pass "slow headers (3s gaps) -> closed after request_timeout (${RAW_MS}ms)"
# Slow body: complete headers, part of the body, then silence.
raw <(
  printf "${HDR}Content-Length: 15\r\n\r\n"'{"seq":1,'
  sleep 4
  printf '"x":7}'
  sleep 1
) 12
closed_within "slow body" 4500
no_success "slow body"
pass "slow body (stalled after 9 of 15 bytes) -> closed after request_timeout (${RAW_MS}ms)"
# A byte every second keeps resetting evhttp's idle timer; the gateway's own
# per-request deadline must still close the connection at request_timeout.
raw <(
  printf 'POST /v1/telemetry HTTP/1.1\r\n'
  for c in H o s t : ' ' g w; do
    printf '%s' "$c"
    sleep 1
  done
) 12
closed_within "1 byte/s headers" 4500
no_success "1 byte/s headers"
pass "headers trickled at 1 byte/s -> closed at the request deadline (${RAW_MS}ms)"
legit_ok "slow clients"
echo "# slow clients: slow headers and slow body closed within request_timeout; legitimate device served"

# --- sizes -----------------------------------------------------------------------
rss0="$(rss_kib)"
before="$(counter http_protocol)"
long="$(head -c 10000 /dev/zero | tr '\0' a)"
printf "${HDR}X-Long: %s\r\nContent-Length: 15\r\nConnection: close\r\n\r\n%s" "$long" "$BODY" >"$T/req"
raw "$T/req"
closed_within "oversized header line" 3000
no_success "oversized header line"
st="$(statuses)"
[ -z "$st" ] || [ "${st:0:1}" = 4 ] || fail "oversized header line: answer $st"
pass "a 10 KB header line -> ${st:-closed without an answer}"
{
  printf "$HDR"
  for i in $(seq 1 1000); do printf 'X-H%d: v\r\n' "$i"; done
  printf 'Content-Length: 15\r\nConnection: close\r\n\r\n%s' "$BODY"
} >"$T/req"
raw "$T/req"
closed_within "too many headers" 3000
no_success "too many headers"
st="$(statuses)"
[ -z "$st" ] || [ "${st:0:1}" = 4 ] || fail "too many headers: answer $st"
pass "1000 headers -> ${st:-closed without an answer}"
# A Content-Length far over the cap with a small body: refused before any
# buffering, closed, memory unchanged.
for cl in 1000000000 99999999999999999999 -1; do
  printf "${HDR}Content-Length: %s\r\n\r\n%s" "$cl" "$BODY" >"$T/req"
  raw "$T/req"
  closed_within "Content-Length $cl" 3000
  no_success "Content-Length $cl"
  st="$(statuses)"
  [ -z "$st" ] || [ "${st:0:1}" = 4 ] || fail "Content-Length $cl: answer $st"
  pass "Content-Length $cl with a 15-byte body -> ${st:-closed without an answer} within ${RAW_MS}ms"
done
# 20 concurrent connections each announcing 1 GB and sending 60 KB.
pids=()
for _ in $(seq 1 20); do
  {
    printf "${HDR}Content-Length: 1000000000\r\n\r\n"
    head -c 61440 /dev/zero | tr '\0' 1
  } | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$GW_PORT" -CAfile "$P/ca.crt" \
    -cert "$P/devices/dev-att/cert.pem" -key "$P/devices/dev-att/key.pem" >/dev/null 2>&1 &
  pids+=("$!")
done
wait "${pids[@]}" || true
rss1="$(rss_kib)"
# Bound: evhttp buffers at most max_body + 64 KiB (80 KiB) per connection,
# so 20 connections hold about 2 MB of data; under ASan freed blocks stay
# resident in its quarantine (measured +18 MB). 64 MiB is far below the 20 GB
# the requests announce, so it fails only if bodies are buffered by length.
[ $((rss1 - rss0)) -le 65536 ] || fail "gateway RSS grew from ${rss0} KiB to ${rss1} KiB"
pass "huge Content-Length x20: RSS ${rss0} KiB -> ${rss1} KiB (bound +64 MiB)"
legit_ok sizes
echo "# sizes: long header line, 1000 headers and huge Content-Length refused without memory growth; legitimate device served"

# --- chunked encoding -------------------------------------------------------------
for chunk in 'zz\r\n{"seq":1,"x":7}\r\n0\r\n\r\n' \
  'ffffffffffffffff\r\n{"seq":1,"x":7}\r\n0\r\n\r\n' \
  '7fffffff\r\n{"seq":1,"x":7}\r\n0\r\n\r\n' \
  '-f\r\n{"seq":1,"x":7}\r\n0\r\n\r\n' \
  'f;ext=\x00\r\n{"seq":1,"x":7}\r\n0\r\n\r\n' \
  '5\r\n{"seq":1,"x":7}\r\n0\r\n\r\n'; do
  printf "${HDR}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk}" >"$T/req"
  raw "$T/req"
  closed_within "chunk $chunk" 3000
  no_success "chunk $chunk"
  st="$(statuses)"
  [ -z "$st" ] || [ "${st:0:1}" = 4 ] || fail "chunk $chunk: answer $st"
  pass "chunked body '$(printf '%s' "${chunk%%\\r*}")' -> ${st:-closed without an answer}"
done
legit_ok chunked
echo "# chunked: 6 malformed chunk streams refused; legitimate device served"

# --- request smuggling -------------------------------------------------------------
# The hidden second request carries seq 77 with x=666: it must never be
# stored or published, whichever way the framing is read.
HIDDEN='POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{"seq":77,"x":666}'
smuggle() {
  local what="$1" req="$2" st
  printf "$req" >"$T/req"
  raw "$T/req"
  closed_within "$what" 3000
  st="$(statuses)"
  no_success "$what"
  pass "$what -> ${st:-closed without an answer}; nothing accepted"
}
smuggle "Content-Length and Transfer-Encoding together (CL.TE)" \
  "${HDR}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${HIDDEN}"
smuggle "Transfer-Encoding and Content-Length together (TE.CL)" \
  "${HDR}Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n${HIDDEN}"
smuggle "two conflicting Content-Length headers" \
  "${HDR}Content-Length: 0\r\nContent-Length: 15\r\n\r\n${BODY}${HIDDEN}"
smuggle "Transfer-Encoding with an obfuscated value" \
  "${HDR}Transfer-Encoding: xchunked\r\nContent-Length: 0\r\n\r\n${HIDDEN}"
legit_ok smuggling
[ "$(grep -c '"v":666' "$SUB" || true)" -eq 0 ] || fail "a smuggled request was published"
pass "no smuggled request was stored or published"
echo "# smuggling: 4 framing attacks refused, hidden requests never processed; legitimate device served"

# --- methods and paths -------------------------------------------------------------
before="$(counter http_protocol)"
for m in PUT DELETE OPTIONS PATCH; do
  printf "%s /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n%s" "$m" "$BODY" >"$T/req"
  raw "$T/req"
  expect_eq "$m /v1/telemetry" 405 "$(statuses)"
  grep -aq '"error":"method_not_allowed"' "$T/raw.out" || fail "$m: no JSON error: $(cat "$T/raw.out")"
  grep -aqi '^Allow: POST' "$T/raw.out" || fail "$m: no Allow header"
done
printf 'HEAD /v1/telemetry HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n' >"$T/req"
raw "$T/req"
expect_eq "HEAD /v1/telemetry" 405 "$(statuses)"
for path in /v1/telemetry/../admin /v1/../metrics /metrics /healthz /v1/telemetry%2f..%2fadmin //v1/telemetry /V1/TELEMETRY '*'; do
  printf "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n%s" "$path" "$BODY" >"$T/req"
  raw "$T/req"
  st="$(statuses)"
  [ "$st" = 404 ] || [ "$st" = 400 ] || fail "POST $path: expected 404 or 400, got '$st'"
  ! grep -aq 'iotgw_' "$T/raw.out" || fail "POST $path: metrics leaked on the device port"
  pass "POST $path -> $st"
done
# Encodings of the one endpoint: evhttp would route each of them to it, as
# it matches the decoded path. Only the exact target is accepted.
for path in '/v1/telemetry%00anything' '/v1/%74elemetry' '/v1%2ftelemetry' '/v1/telemetry?device=dev-ok' '/v1/telemetry#x'; do
  printf "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n%s" "$path" "$BODY" >"$T/req"
  raw "$T/req"
  st="$(statuses)"
  [ "$st" = 404 ] || [ "$st" = 400 ] || fail "POST $path: expected 400 or 404, got '$st'"
  grep -aq '"error":"\(invalid_target\|not_found\)"' "$T/raw.out" || fail "POST $path: no JSON reason: $(cat "$T/raw.out")"
  pass "POST $path (an encoding of the endpoint) -> $st"
done
got=$(($(counter http_protocol) - before))
[ "$got" -ge 18 ] || fail "wrong methods and paths: only $got counted as http_protocol"
pass "wrong methods and paths counted as http_protocol ($got)"
grep -q 'event=request.refused .*device=dev-att .*status=405' "$T/gw.log" || fail "405 not logged"
legit_ok "methods and paths"
echo "# methods and paths: 5 methods and 13 paths refused and counted; legitimate device served"

# --- pipelining after an error -------------------------------------------------------
# A refused request followed by a good one in the same write. Both are
# answered in order, each on its own merits: the 415's body is never
# stored, and the good request is stored once, as itself.
printf "POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n{\"seq\":88,\"x\":888}POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"seq\":89,\"x\":89}" >"$T/req"
raw "$T/req"
st="$(statuses)"
echo "# measured: a 415 followed by a good request on one connection -> answers: $st"
case "$st" in
"415 200") ;;
"415") ;;
*) fail "pipelining after an error: unexpected answers '$st'" ;;
esac
printf "POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"seq\POST /v1/telemetry HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"seq\":90,\"x\":90}" >"$T/req"
raw "$T/req"
st2="$(statuses)"
echo "# measured: a malformed body followed by a good request -> answers: $st2"
[ "${st2%% *}" = 400 ] || fail "malformed pipelined body: expected 400 first, got '$st2'"
sleep 0.5
n_att="$(grep -c '^telemetry/dev-att/' "$SUB" || true)"
EXPECTED=$((EXPECTED + n_att))
ATT_ALLOWED=$n_att # the good pipelined requests, checked below
legit_ok pipelining
[ "$(grep -c '"v":888' "$SUB" || true)" -eq 0 ] || fail "the refused request's body was published"
want=0
[ "$st" = "415 200" ] && want=$((want + 1))
[ "$st2" = "400 200" ] && want=$((want + 1))
expect_eq "only the good pipelined requests were published, once each" "$want" "$n_att"
echo "# pipelining: refused requests never published; following requests judged on their own"

[ "$(grep -c $'\e' "$T/gw.log")" -eq 0 ] || fail "raw escape bytes in the log"
finish
