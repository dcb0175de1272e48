#!/usr/bin/env bash
# Enrollment with the registry where docs/deploy.md puts it: the gateway's
# own copy on its host, the root key and its registry on the administration
# machine ($P), the CRL the only thing pushed from one to the other.
#  - the gateway records a new intermediate (rotation) in its registry
#    itself at start, after checking the root's signature;
#  - tokens and device revocations are done in the gateway's registry with
#    'iotctl --registry', without the CA key; a token made in the other
#    registry is unknown to the gateway;
#  - rotation: after a restart with a new intermediate, the devices of the
#    previous one still verify with their own certificate alone;
#  - 'iotctl ca revoke' on the administration machine reaches the gateway
#    through the CRL alone: enrollments 503 issuer_revoked, its devices
#    refused, while the gateway's registry still lists it as active.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"

make_pki
mkdir -m 0700 "$T/gwhost"
R="$T/gwhost/registry.db"
cp "$P/registry.db" "$R" # the registry moves to the gateway host
chmod 0600 "$R"
"$IOTCTL" --dir "$P" ca intermediate gw-new >/dev/null # made after the move
EST_ISSUER="$P/issuers/gw-new"
gwctl() { "$IOTCTL" --dir "$T/no-pki" --registry "$R" "$@"; }
expect_eq "the gateway's registry does not know the new intermediate yet" 0 \
  "$(sqlite3 "$R" "SELECT count(*) FROM certificates WHERE name='gw-new'")"

start_broker
write_gateway_config "registry = $R" "est_ca_cert = $EST_ISSUER.pem" "est_ca_key = $EST_ISSUER.key"
sed -i "\|^registry = $P/registry.db\$|d" "$T/gw.conf"
expect_eq "the configuration names one registry, the gateway's" "registry = $R" "$(grep '^registry' "$T/gw.conf")"
start_gateway

grep -q "event=est.issuer_recorded .*name=gw-new" "$T/gw.log" ||
  fail "no est.issuer_recorded for gw-new: $(grep -i issuer "$T/gw.log" | head -3)"
expect_ok "ca list on the gateway's registry" gwctl ca list
echo "$OUT" | grep -Eq "^gw-new +[0-9A-F]+ +active" || fail "the gateway did not record gw-new: $OUT"
pass "the gateway records the new intermediate in its registry"

# --- tokens and revocations in the gateway's registry ----------------------------
elsewhere="$("$IOTCTL" --dir "$P" token create --device dev-x --ttl 1h 2>/dev/null | head -1)"
new_csr "$T/dev-x" dev-x
expect_eq "a token from the administration machine's registry is unknown here" \
  "401 token_unknown" "$(est_csr simpleenroll "$T/dev-x" -u "dev-x:$elsewhere") $(est_error)"
for d in dev-a dev-b; do
  tok="$(gwctl token create --device "$d" --ttl 1h 2>/dev/null | head -1)"
  [ "${#tok}" -eq 43 ] || fail "token create --registry printed '$tok'"
  new_csr "$T/$d" "$d"
  expect_eq "$d enrolls with a token from the gateway's registry" 200 \
    "$(est_csr simpleenroll "$T/$d" -u "$d:$tok")"
  est_certs "$T/$d"
  expect_eq "$d sends at once" 200 "$(send "$T/$d" '{"seq":1,"temperature":1}')"
done
crl_before="$(sha256sum <"$P/crl.pem")"
expect_ok "device revoke on the gateway host, without the CA key" gwctl device revoke dev-a
wait_until 5 "dev-a is refused once revoked in the gateway's registry" send_is "$T/dev-a" 000
expect_eq "the root's CRL did not change" "$crl_before" "$(sha256sum <"$P/crl.pem")"

# --- rotation: a new intermediate; the previous one's devices keep working ------------
"$IOTCTL" --dir "$P" ca intermediate gw-next >/dev/null
stop_gateway
sed -i "s|/issuers/gw-new\\.|/issuers/gw-next.|" "$T/gw.conf"
grep -q "^est_ca_cert = $P/issuers/gw-next.pem\$" "$T/gw.conf" || fail "gw.conf was not pointed at gw-next"
start_gateway
grep -q "event=est.issuer_recorded .*name=gw-next" "$T/gw.log" || fail "no est.issuer_recorded for gw-next"
expect_eq "dev-b, issued by the previous intermediate, sends with its own certificate only" 200 \
  "$(send "$T/dev-b" '{"seq":2,"temperature":1}')"
expect_eq "dev-b's certificate file holds one certificate, not a chain" 1 "$(grep -c 'BEGIN CERT' "$T/dev-b/cert.pem")"
tok="$(gwctl token create --device dev-d --ttl 1h 2>/dev/null | head -1)"
new_csr "$T/dev-d" dev-d
expect_eq "dev-d enrolls with the new intermediate" 200 "$(est_csr simpleenroll "$T/dev-d" -u "dev-d:$tok")"
est_certs "$T/dev-d"
expect_eq "dev-d's certificate is the new intermediate's" \
  "$(openssl x509 -in "$P/issuers/gw-next.pem" -noout -subject | sed 's/^subject=//')" \
  "$(openssl x509 -in "$T/dev-d/cert.pem" -noout -issuer | sed 's/^issuer=//')"
expect_eq "dev-d sends at once" 200 "$(send "$T/dev-d" '{"seq":1,"temperature":1}')"

# --- intermediates revoked on the administration machine: the CRL alone -----------
expect_ok "ca revoke gw-new with the root key" "$IOTCTL" --dir "$P" ca revoke gw-new
expect_eq "the gateway's registry still lists gw-new as active" active \
  "$(sqlite3 "$R" "SELECT state FROM certificates WHERE name='gw-new'")"
wait_until 5 "dev-b is refused once the CRL lists its issuer" send_is "$T/dev-b" 000
expect_eq "dev-d, of the other intermediate, still sends" 200 "$(send "$T/dev-d" '{"seq":2,"temperature":1}')"
expect_ok "ca revoke gw-next" "$IOTCTL" --dir "$P" ca revoke gw-next
wait_until 5 "dev-d is refused once the CRL lists its issuer" send_is "$T/dev-d" 000
tok="$(gwctl token create --device dev-c --ttl 1h 2>/dev/null | head -1)"
new_csr "$T/dev-c" dev-c
expect_eq "an enrollment once the CRL lists the issuer" "503 issuer_revoked" \
  "$(est_csr simpleenroll "$T/dev-c" -u "dev-c:$tok") $(est_error)"
expect_eq "nothing was issued for dev-c" 0 \
  "$(sqlite3 "$R" "SELECT count(*) FROM certificates WHERE name='dev-c'")"

stop_gateway
grep -q 'ERROR: AddressSanitizer\|runtime error' "$T/gw.log" && fail "sanitizer report in $T/gw.log"
finish
