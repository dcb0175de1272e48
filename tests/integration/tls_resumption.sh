#!/usr/bin/env bash
# TLS session resumption on the real gateway, with openssl s_client as the
# device (it saves and reuses its session like the firmware):
#  - a device resumes its session with a ticket, in TLS 1.3 and 1.2, and
#    its reading is stored; the gateway counts full and resumed handshakes;
#  - a resumed session is admitted like a new one: once the device is
#    revoked, its ticket is refused (a full handshake follows, in which the
#    revoked certificate is refused), counted and logged;
#  - a renewed device's old session does not resume; the new certificate
#    works;
#  - sessions end with tls_session_lifetime, and with the gateway's restart
#    (ticket keys live in memory only); 0 issues no ticket;
#  - the simulated device (iotsim --sleep) closes its connection after each
#    wake-up and resumes its session, kept 0600 in its state directory,
#    across wake-ups and runs; a session of a replaced certificate, made
#    under another CRL, or a damaged file is not offered; a revoked device
#    cannot resume.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

make_pki dev-1 dev-2 dev-3 sim-1 sim-2
start_broker
write_gateway_config
start_gateway

# tls_post DEV SEQ [S_CLIENT OPTION...]: one reading over a new connection;
# s_client's output (handshake summary, then the HTTP answer) in $T/s.out.
tls_post() {
  local dev="$1" seq="$2" body
  shift 2
  body="{\"seq\":$seq,\"temperature\":21}"
  printf 'POST /v1/telemetry HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body" |
    timeout 10 openssl s_client -connect "127.0.0.1:$GW_PORT" -servername localhost \
      -CAfile "$P/ca.crt" -cert "$P/devices/$dev/cert.pem" -key "$P/devices/$dev/key.pem" \
      -ign_eof "$@" >"$T/s.out" 2>&1 || true
}
handshake() { awk '/^(New|Reused), /{ print $1; exit }' "$T/s.out"; }
answer() { awk '/^HTTP\/1.1 /{ print $2; exit }' "$T/s.out"; }

tls_post dev-1 1 -sess_out "$T/dev-1.sess"
expect_eq "a first connection is a full handshake that stores the reading" "New, 200" \
  "$(handshake) $(answer)"
[ -s "$T/dev-1.sess" ] || fail "the gateway issued no session ticket"
tls_post dev-1 2 -sess_in "$T/dev-1.sess"
expect_eq "the next connection resumes the session (TLS 1.3) and stores the reading" \
  "Reused, 200" "$(handshake) $(answer)"
tls_post dev-2 1 -tls1_2 -sess_out "$T/dev-2.sess"
expect_eq "TLS 1.2: a full handshake" "New, 200" "$(handshake) $(answer)"
tls_post dev-2 2 -tls1_2 -sess_in "$T/dev-2.sess"
expect_eq "TLS 1.2: the session resumes with its ticket" "Reused, 200" "$(handshake) $(answer)"
expect_eq "iotgw_tls_full_handshakes_total" 2 "$(metric iotgw_tls_full_handshakes_total)"
expect_eq "iotgw_tls_resumed_handshakes_total" 2 "$(metric iotgw_tls_resumed_handshakes_total)"

# --- revocation stops resumption at once --------------------------------------------
tls_post dev-1 3 -sess_out "$T/dev-1.sess"
expect_eq "dev-1 holds a fresh session" "New, 200" "$(handshake) $(answer)"
revoked_before="$(refusals device_revoked)"
iotctl_and_wait_reload device revoke dev-1
tls_post dev-1 4 -sess_in "$T/dev-1.sess"
[ "$(handshake)" != Reused ] || fail "a revoked device resumed its session: $(cat "$T/s.out")"
[ -z "$(answer)" ] || fail "a revoked device got an answer: $(answer)"
pass "a revoked device's ticket does not resume, and it gets no answer"
expect_eq "the refused ticket is counted" 1 "$(metric iotgw_tls_resumptions_refused_total)"
expect_eq "the full handshake that follows refuses the revoked certificate" \
  $((revoked_before + 1)) "$(refusals device_revoked)"
grep -q 'tls.resumption_refused .*reason=device_revoked subject=".*CN=dev-1' "$T/gw.log" ||
  fail "no tls.resumption_refused line for dev-1: $(grep resumption "$T/gw.log")"
pass "logged: tls.resumption_refused reason=device_revoked for dev-1"

# --- a renewed certificate ends the old sessions -------------------------------------
tls_post dev-3 1 -sess_out "$T/dev-3.sess"
expect_eq "dev-3 holds a session of its first certificate" "New, 200" "$(handshake) $(answer)"
iotctl_and_wait_reload device renew dev-3
tls_post dev-3 2 -sess_in "$T/dev-3.sess"
[ "$(handshake)" != Reused ] || fail "a session of a replaced certificate resumed"
pass "the session of dev-3's replaced certificate does not resume"
tls_post dev-3 3 -sess_out "$T/dev-3.sess"
expect_eq "dev-3's new certificate: a full handshake" "New, 200" "$(handshake) $(answer)"
tls_post dev-3 4 -sess_in "$T/dev-3.sess"
expect_eq "and its new session resumes" "Reused, 200" "$(handshake) $(answer)"

# --- a restart forgets the ticket keys ----------------------------------------------------
stop_gateway
start_gateway
tls_post dev-3 5 -sess_in "$T/dev-3.sess"
expect_eq "after a restart the old ticket gives a full handshake, and the reading is stored" \
  "New, 200" "$(handshake) $(answer)"

# --- the simulated device sleeps between wake-ups ----------------------------------
SIM="$IOT_BUILD_DIR/tools/iotsim"
# sim DEVICE COUNT: COUNT readings, one wake-up each; the summary in $OUT.
sim() {
  run "$SIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device "$1" --state "$T/sim" \
    --count "$2" --interval 200ms --sleep -q
}
handshakes() { echo "$OUT" | grep -o 'handshakes [0-9]* (resumed [0-9]*)'; }
full_before="$(metric iotgw_tls_full_handshakes_total)"
sim sim-1 3
expect_eq "iotsim --sleep: 3 wake-ups, one full handshake, then resumed" \
  "0 handshakes 3 (resumed 2)" "$RC $(handshakes)"
expect_eq "the session is kept 0600 in the device's state directory" 600 \
  "$(file_mode "$T/sim/sim-1/tls-session")"
expect_eq "the file is the device core's session record (iotd/tls_session.h)" TLS1 \
  "$(head -c 4 "$T/sim/sim-1/tls-session")"
echo "# session record: $(wc -c <"$T/sim/sim-1/tls-session") bytes"
sim sim-1 2
expect_eq "the next run (a deep sleep) resumes the kept session at once" \
  "0 handshakes 2 (resumed 2)" "$RC $(handshakes)"
expect_eq "the gateway counted one full handshake" $((full_before + 1)) \
  "$(metric iotgw_tls_full_handshakes_total)"
refused_before="$(metric iotgw_tls_resumptions_refused_total)"
iotctl_and_wait_reload device renew sim-1
sim sim-1 2
expect_eq "after a renewal the old certificate's session is not offered" \
  "0 handshakes 2 (resumed 1)" "$RC $(handshakes)"
expect_eq "so the gateway had none to refuse" "$refused_before" \
  "$(metric iotgw_tls_resumptions_refused_total)"
head -c 200 /dev/urandom >"$T/sim/sim-1/tls-session"
sim sim-1 2
expect_eq "a damaged session file: a full handshake, then resumed" \
  "0 handshakes 2 (resumed 1)" "$RC $(handshakes)"
# One byte changed inside the session (its ticket or secret): the CRC-32
# of the record catches it before mbedTLS would offer it.
byte="$(od -An -tu1 -j100 -N1 "$T/sim/sim-1/tls-session" | tr -d ' ')"
# shellcheck disable=SC2059 # the octal escape is the format
printf "\\$(printf %03o $((255 - byte)))" |
  dd of="$T/sim/sim-1/tls-session" bs=1 seek=100 conv=notrunc status=none
sim sim-1 2
expect_eq "one byte changed in the session file: a full handshake, then resumed" \
  "0 handshakes 2 (resumed 1)" "$RC $(handshakes)"
# A resumption checks no certificate: a new CRL (which may revoke the
# gateway's certificate) needs a full handshake.
run "$SIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device sim-1 --state "$T/sim" \
  --count 1 --sleep -q --crl "$P/crl.pem"
expect_eq "with the CRL given: a full handshake" "0 handshakes 1 (resumed 0)" "$RC $(handshakes)"
run "$SIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device sim-1 --state "$T/sim" \
  --count 1 --sleep -q --crl "$P/crl.pem"
expect_eq "the same CRL: resumed" "0 handshakes 1 (resumed 1)" "$RC $(handshakes)"
"$IOTCTL" --dir "$P" crl update >/dev/null
run "$SIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device sim-1 --state "$T/sim" \
  --count 1 --sleep -q --crl "$P/crl.pem"
expect_eq "a new CRL: the session is not offered" "0 handshakes 1 (resumed 0)" "$RC $(handshakes)"
sim sim-2 1
expect_eq "sim-2 keeps a session" "0 handshakes 1 (resumed 0)" "$RC $(handshakes)"
iotctl_and_wait_reload device revoke sim-2
sim sim-2 1
[ "$RC" -eq 1 ] || fail "a revoked simulated device did not stop: exit $RC: $OUT $ERR"
expect_eq "a revoked simulated device's session does not resume" \
  $((refused_before + 1)) "$(metric iotgw_tls_resumptions_refused_total)"

# --- the lifetime, and resumption off --------------------------------------------------
stop_gateway
write_gateway_config "tls_session_lifetime = 2s"
start_gateway
tls_post dev-2 3 -sess_out "$T/dev-2.sess"
tls_post dev-2 4 -sess_in "$T/dev-2.sess"
expect_eq "within tls_session_lifetime the session resumes" "Reused, 200" "$(handshake) $(answer)"
sleep 4 # OpenSSL counts session age in whole seconds
tls_post dev-2 5 -sess_in "$T/dev-2.sess"
expect_eq "past tls_session_lifetime it does not" "New, 200" "$(handshake) $(answer)"
stop_gateway
write_gateway_config "tls_session_lifetime = 0"
start_gateway
tls_post dev-2 6 -sess_out "$T/dev-2.sess"
expect_eq "with tls_session_lifetime = 0: a full handshake" "New, 200" "$(handshake) $(answer)"
tls_post dev-2 7 -sess_in "$T/dev-2.sess"
expect_eq "and no session to resume" "New, 200" "$(handshake) $(answer)"
expect_eq "no resumed handshake counted" 0 "$(metric iotgw_tls_resumed_handshakes_total)"
finish
