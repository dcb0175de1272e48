#!/usr/bin/env bash
# Enrollment under abuse, on the real gateway with the real registry:
#  - reused, expired, wrong-device and guessed tokens: 401, each a security
#    event in the log and counted; then 429 with Retry-After once an address
#    has est_max_failures refusals;
#  - renewal with a revoked certificate, a changed subject, a CSR whose key
#    another device has (409), garbage, oversized and mistyped bodies
#    (400, 413, 415): refused, and the registry unchanged (sqlite3 dumps);
#  - 'iotctl ca revoke' of the intermediate: enrollments 503 issuer_revoked
#    and the devices it issued refused;
#  - the gateway holds no root CA key.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"

est_pki
"$IOTCTL" --dir "$P" cert client secmon --role operator >/dev/null
BROKER_ACL="$IOT_SOURCE_DIR/deploy/broker/acl"
start_broker
security_monitor
est_config "est_max_failures = 6" "est_failure_window = 10m"
start_gateway

# refused_as WHAT STATUS ERROR: the last answer was STATUS with ERROR.
refused_as() {
  expect_eq "$1" "$2 $3" "$LAST $(est_error)"
}

# --- tokens ------------------------------------------------------------------
auth_before="$(refusals est_auth_failed)"
enroll dev-1 "$T/dev-1"
used="$TOK"
new_csr "$T/a" dev-1
LAST="$(est_csr simpleenroll "$T/a" -u "dev-1:$used")"
refused_as "a used token with another key" 401 token_used
tok_exp="$(token dev-2 1s)"
sleep 2
new_csr "$T/b" dev-2
LAST="$(est_csr simpleenroll "$T/b" -u "dev-2:$tok_exp")"
refused_as "an expired token" 401 token_expired
tok_other="$(token dev-3)"
new_csr "$T/c" dev-4
LAST="$(est_csr simpleenroll "$T/c" -u "dev-4:$tok_other")"
refused_as "another device's token" 401 token_wrong_device
guess="$(head -c 32 /dev/urandom | openssl base64 -A | tr '+/' '-_' | tr -d '=')"
LAST="$(est_csr simpleenroll "$T/c" -u "dev-4:$guess")"
refused_as "a guessed token" 401 token_unknown
LAST="$(est_csr simpleenroll "$T/c")"
refused_as "no credentials at all" 401 token_missing
expect_eq "each refused token counted (est_auth_failed)" "$((auth_before + 5))" "$(refusals est_auth_failed)"
for e in token_used token_expired token_wrong_device token_unknown token_missing; do
  grep -q "event=request.refused .*status=401 error=$e class=security" "$T/gw.log" ||
    fail "no security event for $e in the log"
done
pass "each refused token is a security event in the log"
expect_eq "iotgw_est_requests_total{result=refused}" 5 "$(est_metric refused)"
LAST="$(est_csr simpleenroll "$T/c" -u "dev-4:$guess")"
refused_as "the sixth failure is still answered" 401 token_unknown
LAST="$(est_csr simpleenroll "$T/b" -u "dev-2:$(token dev-5)")"
refused_as "past est_max_failures the address gets 429, even with a good token" 429 rate_limited
grep -qi '^retry-after: [1-9]' "$T/est.hdr" || fail "429 without Retry-After: $(cat "$T/est.hdr")"
pass "429 carries Retry-After"
expect_eq "iotgw_est_requests_total{result=rate_limited}" 1 "$(est_metric rate_limited)"

# --- refusals that write nothing -------------------------------------------------
stop_gateway
est_config "est_max_failures = 100"
start_gateway
enroll dev-6 "$T/dev-6"
enroll dev-7 "$T/dev-7"
tok8="$(token dev-8)"
sleep 0.3
dump_before="$(certs_dump)"

new_csr "$T/subj" dev-other
LAST="$(est_csr simplereenroll "$T/subj" --cert "$T/dev-6/cert.pem" --key "$T/dev-6/key.pem")"
refused_as "a renewal with another subject" 400 csr_invalid
# dev-7's key in a CSR for dev-8
mkdir -p "$T/reuse"
openssl req -new -key "$T/dev-7/key.pem" -subj "/CN=dev-8" -outform DER | openssl base64 >"$T/reuse/csr.b64"
LAST="$(est_csr simpleenroll "$T/reuse" -u "dev-8:$tok8")"
refused_as "a CSR with another device's key" 409 key_reused
openssl req -new -key "$T/dev-6/key.pem" -subj "/CN=dev-6" -outform DER | openssl base64 >"$T/reuse/csr.b64"
LAST="$(est_csr simplereenroll "$T/reuse" --cert "$T/dev-6/cert.pem" --key "$T/dev-6/key.pem")"
refused_as "a renewal that keeps the old key" 409 key_reused
LAST="$(est simpleenroll -u "dev-8:$tok8" -H 'Content-Type: application/pkcs10' --data-binary 'not base64 at all!')"
refused_as "a body that is not base64" 400 csr_invalid
LAST="$(est simpleenroll -u "dev-8:$tok8" -H 'Content-Type: application/pkcs10' --data-binary "$(head -c 300 /dev/urandom | openssl base64)")"
refused_as "base64 that is not a CSR" 400 csr_invalid
head -c 9000 /dev/zero | tr '\0' 'A' >"$T/big.b64"
LAST="$(est simpleenroll -u "dev-8:$tok8" -H 'Content-Type: application/pkcs10' --data-binary "@$T/big.b64")"
expect_eq "a body over 8 KiB" 413 "$LAST"
LAST="$(est_csr simpleenroll "$T/dev-6" -u "dev-8:$tok8" -H 'Content-Type: application/json')"
refused_as "a CSR sent as application/json" 415 unsupported_media_type
expect_eq "the registry is unchanged after these refusals" "$dump_before" "$(certs_dump)"
"$IOTCTL" --dir "$P" device revoke dev-7 >/dev/null
wait_until 5 "the gateway refuses revoked dev-7" send_is "$T/dev-7" 000
new_csr "$T/rev" dev-7
dump_before="$(certs_dump)" # the revocation itself is a change
LAST="$(est_csr simplereenroll "$T/rev" --cert "$T/dev-7/cert.pem" --key "$T/dev-7/key.pem")"
expect_eq "a renewal with a revoked certificate is refused in the handshake" 000 "$LAST"
grep -q 'event=tls.refused .*reason=device_revoked .*CN=dev-7' "$T/gw.log" ||
  fail "no tls.refused device_revoked for dev-7 in the log"
pass "... logged"
expect_eq "the registry is unchanged after the revoked certificate's renewal" "$dump_before" "$(certs_dump)"
expect_eq "the token of the refused requests is still usable" 200 "$(new_csr "$T/dev-8" dev-8; est_csr simpleenroll "$T/dev-8" -u "dev-8:$tok8")"

# --- the registry held by another writer ------------------------------------------------
# A sqlite3 shell keeps an exclusive lock on the registry: the enrollment
# waits out the registry's busy timeout, is answered 503 and logged
# est.failed; once the lock is gone the same token enrolls.
tok10="$(token dev-10)"
new_csr "$T/dev-10" dev-10
# The shell marks the lock taken only once BEGIN EXCLUSIVE has succeeded
# (-bail: it exits if it cannot), and holds it until it is killed.
spawn sqlite3 -bail -cmd ".timeout 10000" -cmd "BEGIN EXCLUSIVE;" "$P/registry.db" \
  ".shell touch '$T/locked' && exec sleep 120"
LOCK_PID=$LAST_PID
wait_until 15 "the registry to be locked" test -e "$T/locked"
LAST="$(est_csr simpleenroll "$T/dev-10" -u "dev-10:$tok10")"
refused_as "an enrollment while the registry cannot be written" 503 enrollment_unavailable
pkill -P "$LOCK_PID" -x sleep || fail "the registry lock's sleep was not found"
wait "$LOCK_PID" 2>/dev/null || true # it rolls back and exits
expect_stream est.failed '.device == "dev-10" and .severity == "error" and .reason != null'
expect_eq "the same token enrolls once the registry is free" 200 "$(est_csr simpleenroll "$T/dev-10" -u "dev-10:$tok10")"

# --- the intermediate revoked ---------------------------------------------------------
expect_eq "dev-6 sends before its issuer is revoked" 200 "$(send "$T/dev-6" '{"seq":1,"temperature":1}')"
expect_ok "iotctl ca revoke gw-issuer" "$IOTCTL" --dir "$P" ca revoke gw-issuer
wait_until 5 "dev-6 is refused once its issuer is revoked" send_is "$T/dev-6" 000
grep -q 'event=tls.refused .*reason=issuer_revoked .*CN=dev-6' "$T/gw.log" ||
  fail "no tls.refused issuer_revoked for dev-6: $(grep tls.refused "$T/gw.log" | tail -2)"
pass "a device of the revoked issuer is refused as issuer_revoked"
LAST="$(est_csr simpleenroll "$T/dev-8" -u "dev-9:$(token dev-9)")"
refused_as "an enrollment signed by the revoked issuer" 503 issuer_revoked
expect_eq "iotgw_est_requests_total{result=unavailable}" 2 "$(est_metric unavailable)"
# The gateway started with a revoked issuer says so on the stream.
stop_gateway
start_gateway
expect_stream est.issuer_revoked '.severity == "critical" and .source == "gateway"'

# --- the security event stream -------------------------------------------------------------
expect_stream est.issued '.device == "dev-1" and .severity == "info"'
expect_stream request.refused '.reason == "token_used" and .device == "dev-1"'
expect_stream request.refused '.reason == "token_expired"'
expect_stream request.refused '.reason == "token_unknown"'
expect_stream request.refused '.reason == "rate_limited"'
expect_stream request.refused '.reason == "key_reused"'
expect_stream tls.refused '.reason == "issuer_revoked"'
expect_stream_valid

# --- no root key on the gateway ----------------------------------------------------------
root_key="$(sha256sum <"$P/ca.key")"
grep -q "$P/ca.key" "$T/gw.conf" && fail "the gateway's configuration names the root CA key"
while read -r key _ value; do
  [ -f "$value" ] || continue
  [ "$(sha256sum <"$value")" != "$root_key" ] || fail "$key names a copy of the root CA key"
done <"$T/gw.conf"
pass "no file the gateway is given is the root CA key"
expect_eq "the issuing key is another key than the root's" 1 \
  "$([ "$(openssl pkey -in "$EST_ISSUER.key" -pubout)" != "$(openssl pkey -in "$P/ca.key" -pubout)" ] && echo 1)"

stop_gateway
grep -q 'ERROR: AddressSanitizer\|runtime error' "$T/gw.log" && fail "sanitizer report in $T/gw.log"
finish
