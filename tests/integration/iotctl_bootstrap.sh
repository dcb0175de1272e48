#!/usr/bin/env bash
# iotctl bootstrap: the factory CA and its certificates are a root of their
# own (they never verify against the project CA), keys are private, and
# nothing is overwritten.
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }

expect_fail "bootstrap init needs a PKI directory" 1 "does not exist.*pki init" ctl bootstrap init
expect_ok "pki init" ctl pki init
registry_before="$(sha256sum <"$P/registry.db")"
expect_ok "bootstrap init" ctl bootstrap init
echo "$OUT" | grep -q "PRIVATE KEY" && fail "bootstrap init printed key material"
[ "$(file_mode "$P/bootstrap")" = 700 ] || fail "bootstrap directory mode $(file_mode "$P/bootstrap")"
[ "$(file_mode "$P/bootstrap/ca.key")" = 600 ] || fail "bootstrap CA key mode $(file_mode "$P/bootstrap/ca.key")"
pass "bootstrap directory 0700, CA key 0600"
openssl x509 -in "$P/bootstrap/ca.crt" -noout -text >"$T/boot-ca.txt"
grep -q "CA:TRUE" "$T/boot-ca.txt" || fail "the bootstrap CA lacks CA:TRUE"
pass "the bootstrap CA is a CA"
[ "$(openssl x509 -in "$P/ca.crt" -noout -fingerprint)" != \
  "$(openssl x509 -in "$P/bootstrap/ca.crt" -noout -fingerprint)" ] || fail "the bootstrap CA is the project CA"
pass "the bootstrap CA is not the project CA"
before="$(sha256sum "$P/bootstrap/ca.key" "$P/bootstrap/ca.crt")"
expect_fail "bootstrap init refuses an existing bootstrap CA" 1 "already exists.*nothing was changed" ctl bootstrap init
expect_eq "the refusal changed nothing" "$before" "$(sha256sum "$P/bootstrap/ca.key" "$P/bootstrap/ca.crt")"

expect_ok "bootstrap issue" ctl bootstrap issue dev-100
B="$P/bootstrap/devices/dev-100"
[ "$(file_mode "$B/key.pem")" = 600 ] || fail "bootstrap key mode $(file_mode "$B/key.pem")"
pass "the bootstrap key is 0600"
expect_eq "subject: the device ID, OU=bootstrap" "subject=O = IoT Telemetry, OU = bootstrap, CN = dev-100" \
  "$(openssl x509 -in "$B/cert.pem" -noout -subject)"
expect_ok "the bootstrap certificate verifies for TLS clients against the bootstrap CA" \
  openssl verify -CAfile "$P/bootstrap/ca.crt" -purpose sslclient "$B/cert.pem"
expect_fail "the bootstrap certificate does not verify against the project CA" 2 "verification failed|unable to get" \
  openssl verify -CAfile "$P/ca.crt" "$B/cert.pem"
expect_eq "the registry is not changed by bootstrap certificates" "$registry_before" "$(sha256sum <"$P/registry.db")"
expect_fail "a second bootstrap certificate for the same ID is refused" 1 "already exists" ctl bootstrap issue dev-100
expect_fail "a device ID with a slash is refused" 1 "device ID" ctl bootstrap issue 'a/b'
expect_fail "--days beyond the maximum is refused" 2 "days" ctl bootstrap issue dev-101 --days 99999999
expect_ok "--out writes elsewhere" ctl bootstrap issue dev-102 --out "$T/factory/dev-102"
[ -f "$T/factory/dev-102/cert.pem" ] || fail "--out did not write the certificate"
ca_end="$(date -d "$(openssl x509 -in "$P/bootstrap/ca.crt" -noout -enddate | cut -d= -f2)" +%s)"
expect_ok "a long --days" ctl bootstrap issue dev-103 --days 20000
end="$(date -d "$(openssl x509 -in "$P/bootstrap/devices/dev-103/cert.pem" -noout -enddate | cut -d= -f2)" +%s)"
[ "$end" -le "$ca_end" ] || fail "a bootstrap certificate outlives its CA"
pass "a bootstrap certificate never outlives its CA"
finish
