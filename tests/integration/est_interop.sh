#!/usr/bin/env bash
# Enrollment with standard clients against the real gateway and broker
# (RFC 7030 subset): openssl makes the key and CSR, curl enrolls;
#  - simpleenroll with an HTTP Basic token: 200, a certs-only PKCS#7 that
#    openssl reads, a chain root -> intermediate -> device that verifies,
#    and a certificate that sends a reading at once, which reaches the broker;
#  - cacerts: the intermediate and the root, without a client certificate;
#  - simplereenroll with the new certificate and a new key: 200; the old
#    certificate keeps working until the new one is used, then is refused;
#  - a lost answer: the same CSR again gets the same certificate;
#  - approval: 202 with Retry-After until 'iotctl enroll approve', then 200;
#    'iotctl enroll deny' -> 403;
#  - a bootstrap certificate enrolls, and is refused for telemetry.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"

est_pki
start_broker
security_monitor consumer # no broker ACL here: any client may read the stream
est_config "est_renewal_grace = 1h"
start_gateway
start_consumer "$T/sub.out"
sleep 0.5

# --- cacerts -----------------------------------------------------------------
expect_eq "cacerts without a client certificate" 200 "$(est cacerts)"
grep -qi '^content-type: application/pkcs7-mime' "$T/est.hdr" || fail "cacerts Content-Type: $(grep -i content-type "$T/est.hdr")"
grep -qi '^content-transfer-encoding: base64' "$T/est.hdr" || fail "cacerts without Content-Transfer-Encoding: base64"
mkdir -p "$T/cacerts"
est_certs "$T/cacerts"
expect_eq "cacerts holds the intermediate and the root" \
  "$(openssl x509 -in "$EST_ISSUER.pem" -noout -subject; openssl x509 -in "$P/ca.crt" -noout -subject)" \
  "$(openssl crl2pkcs7 -nocrl -certfile "$T/cacerts/chain.pem" | openssl pkcs7 -print_certs -noout | grep '^subject' | sed 's/^subject=/subject=/')"

# --- simpleenroll with a token -------------------------------------------------
D="$T/dev-1"
t0=$(date +%s%N)
enroll dev-1 "$D"
t1=$(date +%s%N)
echo "# simpleenroll took $(((t1 - t0) / 1000000)) ms (token, CSR and request included)"
grep -qi '^content-type: application/pkcs7-mime; smime-type=certs-only' "$T/est.hdr" ||
  fail "simpleenroll Content-Type: $(grep -i content-type "$T/est.hdr")"
expect_eq "the certificate's subject is the registry's" "subject=O = IoT Telemetry, OU = device, CN = dev-1" \
  "$(openssl x509 -in "$D/cert.pem" -noout -subject)"
expect_ok "the chain root -> intermediate -> device verifies" \
  openssl verify -CAfile "$P/ca.crt" -untrusted "$EST_ISSUER.pem" "$D/cert.pem"
expect_eq "the certificate holds the CSR's key" \
  "$(openssl pkey -in "$D/key.pem" -pubout | sha256sum)" "$(openssl x509 -in "$D/cert.pem" -noout -pubkey | sha256sum)"
expect_eq "the new certificate sends a reading at once" 200 "$(send "$D" '{"seq":1,"temperature":21.5}')"
wait_for_lines "$T/sub.out" 1 10 || fail "the reading did not reach the broker"
grep -q '^telemetry/dev-1/telemetry ' "$T/sub.out" || fail "the broker got: $(cat "$T/sub.out")"
pass "the reading reached the broker"
expect_eq "iotgw_est_requests_total{result=issued}" 1 "$(est_metric issued)"

# --- a lost answer: the same CSR again --------------------------------------------
first="$(openssl x509 -in "$D/cert.pem" -noout -serial)"
cp "$D/key.pem" "$T/dev-1-key1.pem"
expect_eq "a lost answer: the same token and CSR again" 200 "$(est_csr simpleenroll "$D" -u "dev-1:$TOK")"
mkdir -p "$T/lost"
est_certs "$T/lost"
expect_eq "... get the same certificate" "$first" "$(openssl x509 -in "$T/lost/cert.pem" -noout -serial)"
new_csr "$T/other-key" dev-1
expect_eq "the spent token with another key is refused" 401 "$(est_csr simpleenroll "$T/other-key" -u "dev-1:$TOK")"
expect_eq "... as token_used" token_used "$(est_error)"
grep -qi '^www-authenticate: Basic realm="est"' "$T/est.hdr" || fail "401 without WWW-Authenticate"
pass "401 carries WWW-Authenticate: Basic"

# --- simplereenroll: new key, grace until the new certificate is used --------------
R="$T/dev-1-renewed"
new_csr "$R" dev-1
expect_eq "simplereenroll with the current certificate and a new key" 200 \
  "$(est_csr simplereenroll "$R" --cert "$D/cert.pem" --key "$D/key.pem")"
est_certs "$R"
[ "$(openssl x509 -in "$R/cert.pem" -noout -serial)" != "$first" ] || fail "the renewal returned the old certificate"
pass "the renewal is a new certificate"
expect_eq "the lost answer: the same CSR again" 200 \
  "$(est_csr simplereenroll "$R" --cert "$D/cert.pem" --key "$D/key.pem")"
mkdir -p "$T/again"
est_certs "$T/again"
expect_eq "... gets the same certificate" "$(openssl x509 -in "$R/cert.pem" -noout -serial)" \
  "$(openssl x509 -in "$T/again/cert.pem" -noout -serial)"
expect_eq "iotgw_est_requests_total{result=reissued}: both lost answers" 2 "$(est_metric reissued)"
expect_eq "the old certificate works during grace" 200 "$(send "$D" '{"seq":2,"temperature":21.6}')"
expect_eq "one certificate in grace" 1 "$(metric iotgw_certificates_in_grace)"
expect_eq "the new certificate works" 200 "$(send "$R" '{"seq":3,"temperature":21.7}')"
wait_until 5 "the grace of the old certificate ends" send_is "$D" 000
expect_eq "after the new one was used, the old certificate is refused" 000 "$(send "$D" '{"seq":5,"temperature":21.9}')"
expect_eq "no certificate in grace" 0 "$(metric iotgw_certificates_in_grace)"
grep -q 'event=est.grace_ended .*device=dev-1' "$T/gw.log" || fail "no est.grace_ended in the log"
pass "the end of grace is logged"
expect_eq "the renewed certificate keeps working" 200 "$(send "$R" '{"seq":6,"temperature":22.0}')"

# --- approval -------------------------------------------------------------------------
stop_gateway
est_config "est_require_approval = yes" "est_retry_after = 7s"
start_gateway
A="$T/dev-2"
tok="$(token dev-2)"
new_csr "$A" dev-2
expect_eq "with approval required, the first request waits" 202 "$(est_csr simpleenroll "$A" -u "dev-2:$tok")"
grep -qi '^retry-after: 7' "$T/est.hdr" || fail "202 without Retry-After: 7: $(cat "$T/est.hdr")"
pass "202 carries Retry-After"
expect_eq "the answer says pending" pending "$(est_error)"
expect_eq "asking again before a decision: still 202" 202 "$(est_csr simpleenroll "$A" -u "dev-2:$tok")"
"$IOTCTL" --dir "$P" enroll list --pending >"$T/pending.txt"
grep -q dev-2 "$T/pending.txt" || fail "iotctl enroll list --pending does not show dev-2: $(cat "$T/pending.txt")"
expect_ok "iotctl enroll approve dev-2" "$IOTCTL" --dir "$P" enroll approve dev-2
expect_eq "after approval the same request gets its certificate" 200 "$(est_csr simpleenroll "$A" -u "dev-2:$tok")"
est_certs "$A"
expect_eq "the approved device sends at once" 200 "$(send "$A" '{"seq":1,"temperature":20}')"
N="$T/dev-3"
tok="$(token dev-3)"
new_csr "$N" dev-3
expect_eq "dev-3 waits" 202 "$(est_csr simpleenroll "$N" -u "dev-3:$tok")"
expect_ok "iotctl enroll deny dev-3" "$IOTCTL" --dir "$P" enroll deny dev-3
expect_eq "a denied enrollment is refused" 403 "$(est_csr simpleenroll "$N" -u "dev-3:$tok")"
expect_eq "... as denied" denied "$(est_error)"
expect_stream est.reissued '.device == "dev-1" and .severity == "info" and .serial != null'
expect_stream est.pending '.device == "dev-2" and .severity == "info" and .peer != null'
expect_stream est.pending '.device == "dev-3"'

# --- a bootstrap certificate ------------------------------------------------------------
stop_gateway
est_config
start_gateway
"$IOTCTL" --dir "$P" bootstrap issue dev-4 >/dev/null
BS="$P/bootstrap/devices/dev-4"
F="$T/dev-4"
new_csr "$F" dev-4
expect_eq "a bootstrap certificate enrolls" 200 \
  "$(est_csr simpleenroll "$F" --cert "$BS/cert.pem" --key "$BS/key.pem")"
est_certs "$F"
expect_ok "its certificate chains to the root" openssl verify -CAfile "$P/ca.crt" -untrusted "$EST_ISSUER.pem" "$F/cert.pem"
expect_eq "the enrolled certificate sends" 200 "$(send "$F" '{"seq":1,"temperature":19}')"
before="$(refusals bootstrap_certificate)"
expect_eq "the bootstrap certificate is refused for telemetry" 403 "$(send "$BS" '{"seq":2,"temperature":19}')"
expect_eq "... as bootstrap_certificate" bootstrap_certificate \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$T/send.body")"
expect_eq "... counted" "$((before + 1))" "$(refusals bootstrap_certificate)"
grep -q 'event=request.refused .*status=403 error=bootstrap_certificate class=security' "$T/gw.log" ||
  fail "no security event for the bootstrap certificate in the log"
pass "... logged as a security event"
expect_eq "the bootstrap certificate is refused for cacerts" 403 "$(est cacerts --cert "$BS/cert.pem" --key "$BS/key.pem")"
expect_eq "without a certificate, telemetry is refused" 403 \
  "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$P/ca.crt" -H 'Content-Type: application/json' \
    --data-binary '{"seq":1,"temperature":1}' "https://localhost:$GW_PORT/v1/telemetry")"
expect_eq "without a certificate, simplereenroll is refused" 403 "$(est_csr simplereenroll "$F")"
expect_eq "... as certificate_required" certificate_required "$(est_error)"
expect_stream request.refused '.reason == "bootstrap_certificate"'
expect_stream_valid

stop_consumer
stop_gateway
grep -q 'ERROR: AddressSanitizer\|runtime error' "$T/gw.log" && fail "sanitizer report in $T/gw.log"
finish
