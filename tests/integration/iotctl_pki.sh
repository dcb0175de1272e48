#!/usr/bin/env bash
# iotctl end to end: PKI, server/client certificates, device enrollment in
# both flows, revocation checked by `openssl verify -crl_check`, and every
# error case with its one-line message and exit status.
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }

# --- pki init ---------------------------------------------------------------
expect_ok "pki init creates a CA" ctl pki init --days 3650
[ "$(file_mode "$P")" = 700 ] || fail "PKI directory mode is $(file_mode "$P"), want 700"
[ "$(file_mode "$P/ca.key")" = 600 ] || fail "ca.key mode is $(file_mode "$P/ca.key"), want 600"
pass "PKI directory 0700 and CA key 0600"
echo "$OUT" | grep -q "PRIVATE KEY" && fail "pki init printed key material"
openssl x509 -in "$P/ca.crt" -noout -text >"$T/ca.txt"
grep -q "CA:TRUE" "$T/ca.txt" || fail "CA certificate lacks CA:TRUE"
grep -q "prime256v1" "$T/ca.txt" || fail "CA key is not P-256"
grep -q "ecdsa-with-SHA256" "$T/ca.txt" || fail "CA is not signed with ECDSA SHA-256"
pass "CA is ECDSA P-256 with SHA-256 and CA:TRUE"
expect_ok "initial CRL verifies against the CA" \
  openssl crl -in "$P/crl.pem" -CAfile "$P/ca.crt" -noout

before="$(cd "$P" && sha256sum ca.key ca.crt crl.pem registry.db)"
expect_fail "pki init refuses an existing PKI" 1 "already exists.*nothing was changed" ctl pki init
expect_eq "re-running pki init changes nothing" "$before" "$(cd "$P" && sha256sum ca.key ca.crt crl.pem registry.db)"

# --- server and client certificates ----------------------------------------
expect_ok "gateway server certificate" ctl cert server gateway --dns localhost --ip 127.0.0.1 --ip ::1
expect_ok "broker server certificate" ctl cert server broker --dns broker.example.org --ip 10.8.0.1
expect_ok "gateway MQTT client certificate" ctl cert client gateway-mqtt --role gateway
expect_ok "consumer client certificate" ctl cert client dashboard --role consumer
expect_ok "gateway cert verifies for TLS servers and its hostname" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslserver -verify_hostname localhost "$P/servers/gateway/cert.pem"
expect_ok "gateway cert verifies for its IP" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslserver -verify_ip 127.0.0.1 "$P/servers/gateway/cert.pem"
expect_fail "gateway cert does not verify for another hostname" 2 "hostname mismatch|verification failed" \
  openssl verify -CAfile "$P/ca.crt" -verify_hostname evil.example "$P/servers/gateway/cert.pem"
expect_ok "client cert verifies for TLS clients" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslclient "$P/clients/gateway-mqtt/cert.pem"
openssl x509 -in "$P/clients/gateway-mqtt/cert.pem" -noout -subject | grep -q "OU = gateway, CN = gateway-mqtt" ||
  fail "client certificate subject lacks role and name"
pass "client certificate subject carries role and name"
eku() { openssl x509 -in "$1" -noout -ext extendedKeyUsage | sed -n '2s/^ *//p'; }
expect_eq "a server certificate is for TLS servers only" "TLS Web Server Authentication" \
  "$(eku "$P/servers/gateway/cert.pem")"
expect_fail "a server certificate does not verify for TLS clients" 2 "unsupported certificate purpose|verification failed" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslclient "$P/servers/gateway/cert.pem"
expect_ok "etcd member certificate (--also-client)" ctl cert server etcd-1 --also-client --ip 127.0.0.1 --dns localhost
expect_eq "--also-client adds clientAuth next to serverAuth" \
  "TLS Web Server Authentication, TLS Web Client Authentication" "$(eku "$P/servers/etcd-1/cert.pem")"
expect_ok "--also-client certificate verifies for TLS servers" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslserver -verify_ip 127.0.0.1 "$P/servers/etcd-1/cert.pem"
expect_ok "--also-client certificate verifies for TLS clients" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslclient "$P/servers/etcd-1/cert.pem"
expect_fail "cert client has no --also-client" 2 "also-client" ctl cert client c0 --role gateway --also-client
expect_fail "server cert needs a SAN" 2 "at least one --dns or --ip" ctl cert server lonely
expect_fail "server cert refuses a bad IP" 1 "not an IPv4 or IPv6 address" ctl cert server s2 --ip 300.1.1.1
expect_fail "server cert refuses a bad DNS name" 2 "not a valid DNS name" ctl cert server s3 --dns 'a,DNS:evil'
expect_fail "client cert needs a known role" 2 "not one of gateway, operator, consumer" ctl cert client c1 --role root

# --- device add: development flow -------------------------------------------
expect_ok "device add dev-001" ctl device add dev-001
expect_ok "device add dev-002" ctl device add dev-002
echo "$OUT" | grep -q "PRIVATE KEY" && fail "device add printed key material"
[ "$(file_mode "$P/devices/dev-001/key.pem")" = 600 ] || fail "device key is not 0600"
[ "$(file_mode "$P/devices/dev-001")" = 700 ] || fail "device directory is not 0700"
pass "device key 0600 in a 0700 directory"
expect_ok "device cert verifies for TLS clients" \
  openssl verify -CAfile "$P/ca.crt" -purpose sslclient "$P/devices/dev-001/cert.pem"
subject="$(openssl x509 -in "$P/devices/dev-001/cert.pem" -noout -subject -nameopt RFC2253)"
expect_eq "device certificate CN is the device ID" "subject=CN=dev-001,OU=device,O=IoT Telemetry" "$subject"
cmp -s "$P/ca.crt" "$P/devices/dev-001/ca.pem" || fail "device bundle's ca.pem is not the CA"
pass "device bundle carries the CA certificate"

# --- invalid and duplicate IDs ------------------------------------------------
expect_fail "duplicate device ID" 1 "already taken by a device" ctl device add dev-001
expect_fail "device ID that is a client name" 1 "already taken by a client" ctl device add dashboard
expect_fail "client name that is a device ID" 1 "already taken by a device" ctl cert client dev-002 --role consumer
expect_fail "ID with a leading dot" 1 "starts with a dot" ctl device add .hidden
expect_fail "ID with a topic separator" 1 "0x2f" ctl device add 'a/b'
expect_fail "ID with an MQTT wildcard" 1 "0x2b" ctl device add 'a+b'
expect_fail "ID with a hash" 1 "0x23" ctl device add 'a#'
expect_fail "ID with a dollar" 1 "0x24" ctl device add '$SYS'
expect_fail "ID with a space" 1 "0x20" ctl device add 'a b'
expect_fail "ID with a control character" 1 "0x0a" ctl device add $'a\nb'
expect_fail "empty ID" 1 "is empty" ctl device add ''
expect_fail "65-character ID" 1 "longer than 64" ctl device add "$(printf 'a%.0s' $(seq 65))"
expect_ok "64-character ID" ctl device add "$(printf 'b%.0s' $(seq 64))"
[ ! -e "$P/devices/.hidden" ] || fail "a refused ID left files behind"
pass "refused IDs leave no files"

# --- never overwrite ----------------------------------------------------------
mkdir -p "$T/occupied" && echo "precious" >"$T/occupied/key.pem"
expect_fail "device add refuses to overwrite a key" 1 "occupied/key.pem already exists" \
  ctl device add dev-ow --out "$T/occupied"
expect_eq "the existing key is untouched" "precious" "$(cat "$T/occupied/key.pem")"
expect_fail "a refused enrollment is not registered" 1 "no device 'dev-ow'" ctl device show dev-ow

# --- device add: production flow (CSR) ----------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/csr.key" \
  -subj "/CN=dev-csr" -out "$T/dev-csr.csr" 2>/dev/null
expect_ok "device add signs a CSR" ctl device add dev-csr --csr "$T/dev-csr.csr"
[ ! -e "$P/devices/dev-csr/key.pem" ] || fail "CSR flow wrote a private key"
echo "$OUT" | grep -q "private key" && fail "CSR flow mentions a private key"
want_pub="$(openssl pkey -in "$T/csr.key" -pubout)"
got_pub="$(openssl x509 -in "$P/devices/dev-csr/cert.pem" -noout -pubkey)"
expect_eq "certificate carries the CSR's key" "$want_pub" "$got_pub"
expect_ok "CSR-flow cert verifies" openssl verify -CAfile "$P/ca.crt" "$P/devices/dev-csr/cert.pem"

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/o.key" \
  -subj "/CN=someone-else" -out "$T/other.csr" 2>/dev/null
expect_fail "CSR whose subject disagrees with the ID" 1 "is for CN=someone-else, but the device ID is dev-x" \
  ctl device add dev-x --csr "$T/other.csr"
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/rsa.key" -subj "/CN=dev-rsa" \
  -out "$T/rsa.csr" 2>/dev/null
expect_fail "CSR with an RSA key" 1 "must be ECDSA P-256" ctl device add dev-rsa --csr "$T/rsa.csr"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$T/p384.key" \
  -subj "/CN=dev-p384" -out "$T/p384.csr" 2>/dev/null
expect_fail "CSR with a P-384 key" 1 "must be ECDSA P-256" ctl device add dev-p384 --csr "$T/p384.csr"
echo "not a csr" >"$T/garbage.csr"
expect_fail "malformed CSR" 1 "is not a certificate signing request" ctl device add dev-g --csr "$T/garbage.csr"
# Flip one byte inside the signed part: the self-signature must fail.
openssl req -in "$T/dev-csr.csr" -outform DER -out "$T/good.der"
cp "$T/good.der" "$T/tampered.der"
printf '\x41' | dd of="$T/tampered.der" bs=1 seek=40 conv=notrunc 2>/dev/null
run ctl device add dev-t --csr "$T/tampered.der"
[ "$RC" -eq 1 ] || fail "tampered CSR: expected exit 1, got $RC"
echo "$ERR" | grep -Eq "signature that does not verify|is for CN=|not a certificate signing request" ||
  fail "tampered CSR: unclear error: $ERR"
pass "tampered CSR is refused"
expect_fail "missing CSR file" 1 "cannot read $T/nope.csr" ctl device add dev-m --csr "$T/nope.csr"
expect_fail "CSR path is a directory" 1 "is not a regular file" ctl device add dev-d --csr "$T"

# --- one key, one identity ---------------------------------------------------------
# The registry records each certificate's key (SHA-256 of its DER
# SubjectPublicKeyInfo) and iotctl refuses a CSR whose key is already the key
# of another identity or the CA's.
spki_of_key() { openssl pkey -in "$1" -pubout -outform DER | sha256sum | cut -d' ' -f1; }
spki_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1; }
csr_with() { openssl req -new -key "$1" -subj "/CN=$2" -out "$3" 2>/dev/null; }
expect_eq "the registry records the key of a CSR" "$(spki_of_key "$T/csr.key")" \
  "$(ctl device show dev-csr --json | jq -r .key_sha256)"
expect_eq "the registry records the key of a key made here" "$(spki_of_cert "$P/devices/dev-001/cert.pem")" \
  "$(ctl device show dev-001 --json | jq -r .key_sha256)"
ctl device show dev-csr | grep -q "^key sha256   $(spki_of_key "$T/csr.key")$" || fail "device show lacks the key: $(ctl device show dev-csr)"
before="$(cd "$P" && find . -type f | sort | xargs sha256sum)"
csr_with "$T/csr.key" dev-twin "$T/twin-csr.csr"
expect_fail "a CSR with another device's key is refused" 1 \
  "CSR $T/twin-csr.csr carries the public key of device 'dev-csr' \(active, serial [0-9A-F]+\); one key, one identity" \
  ctl device add dev-twin --csr "$T/twin-csr.csr"
csr_with "$P/devices/dev-001/key.pem" dev-twin "$T/twin-001.csr"
expect_fail "a CSR with the key iotctl made for another device is refused" 1 \
  "carries the public key of device 'dev-001' \(active" ctl device add dev-twin --csr "$T/twin-001.csr"
csr_with "$P/clients/gateway-mqtt/key.pem" dev-twin "$T/twin-gw.csr"
expect_fail "a CSR with the gateway's MQTT key is refused" 1 "carries the public key of client 'gateway-mqtt'" \
  ctl device add dev-twin --csr "$T/twin-gw.csr"
csr_with "$P/servers/broker/key.pem" dev-twin "$T/twin-broker.csr"
expect_fail "a CSR with the broker's key is refused" 1 "carries the public key of server 'broker'" \
  ctl device add dev-twin --csr "$T/twin-broker.csr"
csr_with "$P/ca.key" dev-twin "$T/twin-ca.csr"
expect_fail "a CSR with the CA's key is refused" 1 "carries the CA's own public key" \
  ctl device add dev-twin --csr "$T/twin-ca.csr"
csr_with "$T/csr.key" dev-002 "$T/renew-twin.csr"
expect_fail "a renewal with another device's key is refused" 1 "carries the public key of device 'dev-csr'" \
  ctl device renew dev-002 --csr "$T/renew-twin.csr"
expect_eq "refused keys change no file" "$before" "$(cd "$P" && find . -type f | sort | xargs sha256sum)"

# --- list and show --------------------------------------------------------------
expect_ok "device list" ctl device list
echo "$OUT" | head -1 | grep -q "ID.*STATE.*NOT AFTER.*DAYS LEFT.*CLASS" || fail "device list header: $OUT"
echo "$OUT" | grep -Eq "^dev-001 +active +[0-9T:-]+Z +89 +-$" || fail "device list row: $OUT"
pass "device list shows ID, state, expiry, days left and class"
expect_ok "device list --json" ctl device list --json
expect_eq "JSON lists every device" 4 "$(echo "$OUT" | jq length)"
expect_eq "JSON device fields" "dev-001 active false" \
  "$(echo "$OUT" | jq -r '.[] | select(.id=="dev-001") | "\(.id) \(.state) \(.expired)"')"
serial="$(echo "$OUT" | jq -r '.[] | select(.id=="dev-001") | .serial')"
want_serial="$(openssl x509 -in "$P/devices/dev-001/cert.pem" -noout -serial | cut -d= -f2)"
expect_eq "registry serial matches the certificate" "$want_serial" "$serial"
fpr="$(echo "$OUT" | jq -r '.[] | select(.id=="dev-001") | .sha256')"
want_fpr="$(openssl x509 -in "$P/devices/dev-001/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)"
expect_eq "registry fingerprint matches the certificate" "$want_fpr" "$fpr"
expect_ok "device show" ctl device show dev-002
echo "$OUT" | grep -q "^state        active$" || fail "device show: $OUT"
pass "device show prints the state"
expect_fail "device show of an unknown ID" 1 "no device 'ghost'" ctl device show ghost
expect_fail "device show of a non-device" 1 "is a client certificate, not a device" ctl device show dashboard
expect_ok "cert list --json" ctl cert list --json
expect_eq "cert list holds servers and clients only" "broker dashboard etcd-1 gateway gateway-mqtt" \
  "$(echo "$OUT" | jq -r '[.[].name] | join(" ")')"

# --- revocation -----------------------------------------------------------------
# A revocation cannot be undone: --dry-run shows it and changes nothing.
before="$(cd "$P" && sha256sum crl.pem registry.db)"
expect_ok "device revoke --dry-run" ctl device revoke dev-001 --reason key-compromise --dry-run
want_serial="$(ctl device show dev-001 --json | jq -r .serial)"
echo "$OUT" | grep -q "^device dev-001: would be revoked (dry run: nothing was changed)$" &&
  echo "$OUT" | grep -q "^  serial       $want_serial$" && echo "$OUT" | grep -q "^  reason       key-compromise$" ||
  fail "device revoke --dry-run does not show what it would revoke: $OUT"
pass "device revoke --dry-run shows the device, its serial and the reason"
expect_ok "cert revoke --dry-run" ctl cert revoke dashboard --dry-run
echo "$OUT" | grep -q "^client dashboard: would be revoked" || fail "cert revoke --dry-run: $OUT"
expect_fail "a dry run refuses an unknown device as the revocation would" 1 "'ghost' is not in registry" \
  ctl device revoke ghost --dry-run
expect_fail "a dry run refuses a device given to cert revoke" 1 "is a device; use 'iotctl device revoke" \
  ctl cert revoke dev-002 --dry-run
expect_eq "dry runs leave the CRL and the registry byte-identical" "$before" \
  "$(cd "$P" && sha256sum crl.pem registry.db)"
expect_eq "the device is still active after the dry run" active "$(ctl device show dev-001 --json | jq -r .state)"
expect_ok "device revoke" ctl device revoke dev-001 --reason key-compromise
expect_fail "revoked device fails openssl verify -crl_check" 2 "certificate revoked" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$P/devices/dev-001/cert.pem"
expect_ok "other devices still pass openssl verify -crl_check" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" \
  "$P/devices/dev-002/cert.pem" "$P/devices/dev-csr/cert.pem" "$P/servers/gateway/cert.pem"
openssl crl -in "$P/crl.pem" -noout -text | grep -q "Key Compromise" || fail "CRL lacks the reason code"
pass "CRL carries the revocation reason"
expect_eq "device list shows the revocation" revoked \
  "$(ctl device list --json | jq -r '.[] | select(.id=="dev-001") | .state')"
expect_fail "revoking twice" 1 "already revoked" ctl device revoke dev-001
expect_fail "a dry run of revoking twice" 1 "already revoked" ctl device revoke dev-001 --dry-run
expect_fail "revoking an unknown device" 1 "'ghost' is not in registry" ctl device revoke ghost
expect_fail "revoked IDs are not reused" 1 "taken by a revoked device" ctl device add dev-001 --out "$T/reuse"
expect_fail "a revoked device's key is not reused" 1 "carries the public key of device 'dev-001' \(revoked, serial" \
  ctl device add dev-twin --csr "$T/twin-001.csr"
expect_fail "bad revocation reason" 2 "not one of" ctl device revoke dev-002 --reason because
expect_ok "cert revoke of a consumer" ctl cert revoke dashboard
expect_fail "revoked consumer fails -crl_check" 2 "certificate revoked" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$P/clients/dashboard/cert.pem"
expect_fail "cert revoke refuses a device" 1 "is a device; use 'iotctl device revoke" ctl cert revoke dev-002
# A server certificate's revocation says what it does not reach.
expect_ok "cert server for a revocation" ctl cert server old-gw --dns old-gw.example.org
expect_ok "cert revoke of a server certificate" ctl cert revoke old-gw
echo "$OUT" | grep -q "^note: ESP32 devices do not check the CRL; they trust 'old-gw' until it expires (20[0-9-]* [0-9:]* UTC)" ||
  fail "revoking a server certificate does not say what ESP32 devices do: $OUT"
expect_ok "cert revoke --help" ctl cert revoke --help
echo "$OUT" | grep -q "ESP32 devices have no CRL" || fail "cert revoke --help does not explain server revocation"
n1="$(openssl crl -in "$P/crl.pem" -noout -crlnumber | cut -d= -f2)"
expect_ok "crl update" ctl crl update --days 7
n2="$(openssl crl -in "$P/crl.pem" -noout -crlnumber | cut -d= -f2)"
[ -n "$n1" ] && [ $((16#${n2#0x})) -gt $((16#${n1#0x})) ] || fail "CRL number did not increase ($n1 -> $n2)"
pass "crl update increases the CRL number"
expect_fail "still revoked after crl update" 2 "certificate revoked" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$P/devices/dev-001/cert.pem"

# --- renewal under the same ID ---------------------------------------------------
old_serial="$(ctl device show dev-002 --json | jq -r .serial)"
old_fpr="$(ctl device show dev-002 --json | jq -r .sha256)"
cp "$P/devices/dev-002/cert.pem" "$T/dev-002-old.pem"
expect_ok "device renew dev-002" ctl device renew dev-002 --days 30
echo "$OUT" | grep -q "device dev-002: certificate renewed" || fail "renew did not say so: $OUT"
echo "$OUT" | grep -q "PRIVATE KEY" && fail "device renew printed key material"
new_serial="$(ctl device show dev-002 --json | jq -r .serial)"
[ "$new_serial" != "$old_serial" ] && [ "$(ctl device show dev-002 --json | jq -r .sha256)" != "$old_fpr" ] ||
  fail "the registry still describes the old certificate"
expect_eq "the renewed device stays active" active "$(ctl device show dev-002 --json | jq -r .state)"
expect_eq "the registry has one row for the ID" 1 "$(ctl device list --json | jq '[.[] | select(.id=="dev-002")] | length')"
expect_eq "device show lists the replaced certificate" "$old_serial $old_fpr" \
  "$(ctl device show dev-002 --json | jq -r '.superseded | map(.serial + " " + .sha256) | join(",")')"
ctl device show dev-002 | grep -q "^superseded   $old_serial, replaced " ||
  fail "device show does not list the replaced certificate: $(ctl device show dev-002)"
subject="$(openssl x509 -in "$P/devices/dev-002/cert.pem" -noout -subject -nameopt RFC2253)"
expect_eq "the new certificate has the same CN" "subject=CN=dev-002,OU=device,O=IoT Telemetry" "$subject"
expect_eq "the new certificate is the one in the registry" "$new_serial" \
  "$(openssl x509 -in "$P/devices/dev-002/cert.pem" -noout -serial | cut -d= -f2)"
arch="$P/devices/dev-002/superseded-$old_serial"
cmp -s "$arch/cert.pem" "$T/dev-002-old.pem" || fail "the old certificate was not kept in $arch"
[ "$(file_mode "$arch")" = 700 ] && [ "$(file_mode "$arch/key.pem")" = 600 ] &&
  [ "$(file_mode "$P/devices/dev-002/key.pem")" = 600 ] || fail "renewal left a key or directory readable by others"
pass "the old files are kept in superseded-SERIAL, keys 0600"
cmp -s "$arch/key.pem" "$P/devices/dev-002/key.pem" && fail "the renewal reused the old key"
expect_ok "the new certificate passes openssl verify -crl_check" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$P/devices/dev-002/cert.pem"
expect_fail "the replaced certificate is revoked in the CRL" 2 "certificate revoked" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$T/dev-002-old.pem"
openssl crl -in "$P/crl.pem" -noout -text | grep -A4 "Serial Number: $old_serial" | grep -q "Superseded" ||
  fail "the CRL does not give the replaced certificate the reason superseded"
pass "the CRL lists the replaced certificate as superseded"
expect_fail "the revoked certificates stay in the CRL" 2 "certificate revoked" \
  openssl verify -crl_check -CAfile "$P/ca.crt" -CRLfile "$P/crl.pem" "$P/devices/dev-001/cert.pem"
# The production flow: the device made a new key and request.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/csr2.key" \
  -subj "/CN=dev-csr" -out "$T/dev-csr2.csr" 2>/dev/null
expect_ok "device renew signs a new CSR" ctl device renew dev-csr --csr "$T/dev-csr2.csr"
[ ! -e "$P/devices/dev-csr/key.pem" ] || fail "the CSR renewal wrote a private key"
expect_eq "the renewed certificate carries the CSR's key" "$(openssl pkey -in "$T/csr2.key" -pubout)" \
  "$(openssl x509 -in "$P/devices/dev-csr/cert.pem" -noout -pubkey)"
expect_fail "the key of a replaced certificate is not reused by another device" 1 \
  "carries the public key of device 'dev-csr' \(a certificate replaced by a renewal, serial" \
  ctl device add dev-twin --csr "$T/twin-csr.csr"
csr_with "$T/csr2.key" dev-csr "$T/dev-csr-same.csr"
expect_ok "a renewal may keep the device's own key" ctl device renew dev-csr --csr "$T/dev-csr-same.csr"
# Refusals change nothing: files, registry and CRL stay as they were.
before="$(cd "$P" && find . -type f | sort | xargs sha256sum)"
expect_fail "renewing an unknown ID" 1 "'ghost' is not enrolled; enroll it with 'iotctl device add'" \
  ctl device renew ghost
expect_fail "renewing a revoked device" 1 "'dev-001' is revoked; a revoked identity is not renewed" \
  ctl device renew dev-001
expect_fail "renewing a server certificate as a device" 1 "'gateway' is not enrolled" ctl device renew gateway
expect_fail "renewing with a CSR for another ID" 1 "CN" ctl device renew dev-002 --csr "$T/other.csr"
expect_eq "failed renewals change no file" "$before" "$(cd "$P" && find . -type f | sort | xargs sha256sum)"
[ -z "$(find "$P/devices/dev-002" -maxdepth 1 -name 'superseded-*' ! -name "superseded-$old_serial")" ] ||
  fail "a failed renewal left a superseded directory"
pass "a failed renewal puts the old files back"
# What schemas 5 (issuing CAs, enrollment, renewal grace) and 6 (the
# incident register) added, removed to make the older files below.
STRIP_V5="DROP TABLE incident_events; DROP TABLE incidents; DROP TABLE tokens; DROP TABLE enrollments; DROP INDEX superseded_successor;
  ALTER TABLE superseded DROP COLUMN issuer; ALTER TABLE superseded DROP COLUMN successor;
  ALTER TABLE superseded DROP COLUMN grace_until; ALTER TABLE superseded DROP COLUMN der;
  ALTER TABLE certificates DROP COLUMN issuer; ALTER TABLE certificates DROP COLUMN der;"
# A registry made before renewals existed (schema 1) is read as it is and
# upgraded by the first change.
cp -a "$P" "$T/v1"
sqlite3 "$T/v1/registry.db" "$STRIP_V5 DROP TABLE superseded; DROP INDEX certificates_spki;
  ALTER TABLE certificates DROP COLUMN spki; ALTER TABLE certificates DROP COLUMN class_id;
  PRAGMA user_version=1;"
expect_ok "a schema 1 registry is listed" "$IOTCTL" --dir "$T/v1" device list
expect_eq "a schema 1 registry shows no replaced certificates" "[]" \
  "$("$IOTCTL" --dir "$T/v1" device show dev-csr --json | jq -c .superseded)"
expect_eq "listing does not change the schema" 1 "$(sqlite3 "$T/v1/registry.db" 'PRAGMA user_version')"
expect_ok "a schema 1 registry takes a renewal" "$IOTCTL" --dir "$T/v1" device renew dev-csr
expect_eq "the renewal upgraded the registry to schema 6" 6 "$(sqlite3 "$T/v1/registry.db" 'PRAGMA user_version')"
# A registry from before key fingerprints (schema 2): the first change
# upgrades it and takes each certificate's key from its file; a key that two
# identities already share is reported.
V2="$T/v2"
cp -a "$P" "$V2"
sqlite3 "$V2/registry.db" "$STRIP_V5 DROP INDEX certificates_spki; DROP INDEX superseded_spki;
  ALTER TABLE certificates DROP COLUMN spki; ALTER TABLE superseded DROP COLUMN spki;
  ALTER TABLE certificates DROP COLUMN class_id; PRAGMA user_version=2;"
# What an older iotctl allowed: dev-copy enrolled with dev-csr's first key.
first="$(sqlite3 "$V2/registry.db" "SELECT serial FROM superseded WHERE name = 'dev-csr' ORDER BY rowid LIMIT 1")"
old_cert="$V2/devices/dev-csr/superseded-$first/cert.pem"
mkdir -m 0700 "$V2/devices/dev-copy" && cp "$old_cert" "$V2/devices/dev-copy/cert.pem"
sqlite3 "$V2/registry.db" "INSERT INTO certificates (name, kind, serial, fingerprint, not_before, not_after, state, created)
  SELECT 'dev-copy', 'device', '7E57', fingerprint, not_before, not_after, 'active', created FROM superseded WHERE name = 'dev-csr' ORDER BY rowid LIMIT 1;"
B64="$(printf 'b%.0s' $(seq 64))"
rm "$V2/devices/$B64/cert.pem" # a certificate whose file is gone
expect_ok "a schema 2 registry is listed" "$IOTCTL" --dir "$V2" device list
expect_eq "a schema 2 registry shows no key" null "$("$IOTCTL" --dir "$V2" device show dev-002 --json | jq -r .key_sha256)"
expect_eq "listing does not change schema 2" 2 "$(sqlite3 "$V2/registry.db" 'PRAGMA user_version')"
run "$IOTCTL" --dir "$V2" crl update
[ "$RC" -eq 0 ] || fail "crl update on a schema 2 registry: exit $RC: $ERR"
expect_eq "the first change upgrades schema 2 to 6" 6 "$(sqlite3 "$V2/registry.db" 'PRAGMA user_version')"
echo "$ERR" | grep -q "warning: 1 certificates in $V2/registry.db have no recorded public key" ||
  fail "the upgrade did not report the certificate whose file is gone: $ERR"
pass "the upgrade reports a certificate whose file is gone"
echo "$ERR" | grep -q "warning: device 'dev-copy' (serial 7E57) shares its public key $(spki_of_key "$T/csr.key")" &&
  echo "$ERR" | grep -q "warning: device 'dev-csr' (serial [0-9A-F]*) shares its public key $(spki_of_key "$T/csr.key")" ||
  fail "the upgrade did not report the shared key: $ERR"
pass "the upgrade reports the identities that share a key"
expect_eq "the upgrade records every key whose certificate is at hand" "$B64" \
  "$(sqlite3 "$V2/registry.db" "SELECT name FROM certificates WHERE spki = '' UNION ALL SELECT name FROM superseded WHERE spki = ''")"
expect_eq "keys from the files are those of the certificates" "$(spki_of_cert "$P/devices/dev-002/cert.pem")" \
  "$("$IOTCTL" --dir "$V2" device show dev-002 --json | jq -r .key_sha256)"
expect_fail "after the upgrade, a replaced certificate's key is refused" 1 "carries the public key of device 'dev-c" \
  "$IOTCTL" --dir "$V2" device add dev-twin --csr "$T/twin-csr.csr"

# --- validity -------------------------------------------------------------------
expect_ok "an already expired certificate can be made for tests" \
  ctl device add dev-expired --not-before 2020-01-01 --not-after 2020-01-02
expect_fail "expired certificate fails openssl verify" 2 "certificate has expired" \
  openssl verify -CAfile "$P/ca.crt" "$P/devices/dev-expired/cert.pem"
expect_eq "expired device is shown as expired" "true -2" \
  "$(ctl device list --json | jq -r '.[] | select(.id=="dev-expired") | "\(.expired) \(.days_left | if . < -1 then -2 else . end)"')"
expect_fail "a certificate may not outlive the CA" 1 "would outlive the CA" ctl device add dev-long --days 36000
expect_fail "--days must be a number" 2 "not a number of days" ctl device add dev-n --days 12x
expect_fail "--not-after must be a date" 2 "is not a date" ctl device add dev-n --not-after 2030-02-30

# --- missing CA, key permissions, locked and corrupt registry -------------------
expect_fail "missing CA" 1 "no CA in $T/empty.*pki init" "$IOTCTL" --dir "$T/empty" device add dev-001
chmod 644 "$P/ca.key"
expect_fail "CA key readable by others is refused" 1 "has mode 0644.*chmod 600" ctl device add dev-perm
chmod 600 "$P/ca.key"
cp -a "$P" "$T/corrupt"
head -c 4096 /dev/urandom >"$T/corrupt/registry.db"
expect_fail "corrupt registry" 1 "corrupt or not a database" "$IOTCTL" --dir "$T/corrupt" device add dev-c
expect_fail "corrupt registry on list" 1 "corrupt or not a database" "$IOTCTL" --dir "$T/corrupt" device list
# Hold an exclusive lock from another process while iotctl tries to write.
mkfifo "$T/lockfifo"
exec 7<>"$T/lockfifo" # read-write open: never blocks, keeps a writer alive
spawn_in "$T/lockfifo" sqlite3 "$P/registry.db"
echo "BEGIN EXCLUSIVE; SELECT 'locked';" >&7
sleep 0.5
expect_fail "locked registry" 1 "locked by another process" ctl device add dev-lock
echo "ROLLBACK;" >&7
exec 7>&-
expect_ok "works again once the lock is gone" ctl device add dev-lock

# --- the PKI directory: owner and mode -------------------------------------------
# Another local user who can write the directory could replace the registry,
# the CRL or the CA. pki init makes an existing directory 0700; every command
# checks owner and mode before it uses the directory.
O="$T/open"
mkdir "$O" && chmod 0777 "$O"
expect_ok "pki init in an existing 0777 directory" "$IOTCTL" --dir "$O" pki init
expect_eq "pki init makes an existing directory 0700" 700 "$(file_mode "$O")"
chmod 0777 "$O"
expect_fail "a PKI directory writable by others is refused" 1 \
  "PKI directory $O has mode 0777; .* \(run: chmod 700 $O\)" "$IOTCTL" --dir "$O" device add dev-o
expect_fail "listing refuses it too" 1 "PKI directory $O has mode 0777" "$IOTCTL" --dir "$O" device list
chmod 0770 "$O"
expect_fail "a PKI directory writable by its group is refused" 1 "PKI directory $O has mode 0770" \
  "$IOTCTL" --dir "$O" cert list
chmod 0755 "$O"
expect_ok "a PKI directory others may only read is used" "$IOTCTL" --dir "$O" device list
chmod 0700 "$O"
chmod 0666 "$O/registry.db"
expect_fail "a registry writable by others is refused" 1 \
  "registry $O/registry.db has mode 0666; .*chmod go-w $O/registry.db" "$IOTCTL" --dir "$O" device list
chmod 0644 "$O/registry.db"
chmod 0646 "$O/crl.pem"
expect_fail "a CRL writable by others is refused" 1 "CRL $O/crl.pem has mode 0646" \
  "$IOTCTL" --dir "$O" crl update
chmod 0644 "$O/crl.pem"
expect_ok "the repaired directory works again" "$IOTCTL" --dir "$O" device add dev-o
if [ "$(id -u)" -eq 0 ]; then
  chown 65534 "$O"
  expect_fail "a PKI directory of another user is refused" 1 \
    "PKI directory $O belongs to uid 65534, not to this user \(uid 0\) or root; .*chown 0 $O" \
    "$IOTCTL" --dir "$O" device list
  chown 0 "$O"
  chown 65534 "$O/registry.db"
  expect_fail "a registry of another user is refused" 1 "registry $O/registry.db belongs to uid 65534" \
    "$IOTCTL" --dir "$O" device add dev-o2
  chown 0 "$O/registry.db"
  mkdir -m 0700 "$T/theirs" && chown 65534 "$T/theirs"
  expect_fail "pki init refuses a directory of another user" 1 \
    "PKI directory $T/theirs belongs to uid 65534.*nothing was changed" "$IOTCTL" --dir "$T/theirs" pki init
  expect_eq "and creates nothing in it" "" "$(ls -A "$T/theirs")"
else
  echo "# not root: no directory of another user can be made here; owner refusals not run"
fi

# --- core dumps ---------------------------------------------------------------
# iotctl holds the CA key: it must not be dumpable and its core limit is 0.
# A FIFO given as the CSR holds it in open() after it has loaded the CA and
# opened the registry. The /proc entries of an undumpable process belong to
# root whoever runs it, so it runs as an unprivileged user (nobody when
# this test is root) for the owner to tell.
D="$T/nobody-pki"
cp -a "$P" "$D"
mkfifo "$T/hold.csr"
if [ "$(id -u)" -eq 0 ]; then
  chown -R 65534:65534 "$D" "$T/hold.csr"
  chmod 711 "$T"
  spawn setpriv --reuid=65534 --regid=65534 --clear-groups -- "$IOTCTL" --dir "$D" device add dev-core --csr "$T/hold.csr"
else
  spawn "$IOTCTL" --dir "$D" device add dev-core --csr "$T/hold.csr"
fi
core_pid=$LAST_PID
deadline=$((SECONDS + 60))
until ls -l "/proc/$core_pid/fd" 2>/dev/null | grep -q "registry.db"; do
  [ "$SECONDS" -lt "$deadline" ] && kill -0 "$core_pid" 2>/dev/null || fail "iotctl did not reach the CSR"
  sleep 0.1
done
runs_as="$(awk '/^Uid:/ { print $3 }' "/proc/$core_pid/status")"
[ "$runs_as" -ne 0 ] || fail "the probe runs as root, so /proc ownership tells nothing"
expect_eq "iotctl is not dumpable (its /proc files belong to root, not to uid $runs_as)" 0 \
  "$(stat -c %u "/proc/$core_pid/status")"
expect_eq "iotctl's core file limit is 0" "0 0" \
  "$(awk '/^Max core file size/ { print $5, $6 }' "/proc/$core_pid/limits")"
: >"$T/hold.csr" # lets the open() return; the FIFO is not a regular file
wait "$core_pid" && fail "iotctl accepted a FIFO as the CSR" || true
[ "$(id -u)" -ne 0 ] || chmod 700 "$T"

# --- help and usage -------------------------------------------------------------
for cmd in "pki init" "cert server" "cert client" "cert list" "cert show" "cert revoke" \
  "device add" "device renew" "device revoke" "device list" "device show" "crl update"; do
  run "$IOTCTL" $cmd --help
  [ "$RC" -eq 0 ] && echo "$OUT" | grep -q "^usage: iotctl \[--dir DIR\] $cmd" ||
    fail "'iotctl $cmd --help' (exit $RC): $OUT"
  ! echo "$OUT" | grep -q '%' || fail "'iotctl $cmd --help' shows a format placeholder: $OUT"
done
pass "--help works for every command"
expect_fail "unknown command" 2 "unknown command 'device frobnicate'$" "$IOTCTL" device frobnicate
expect_fail "a mistyped group gets a suggestion" 2 "^iotctl: unknown command 'devcie'; did you mean 'device'\?$" \
  "$IOTCTL" devcie list
expect_fail "a mistyped command gets a suggestion" 2 "unknown command 'device revok'; did you mean 'device revoke'\?" \
  "$IOTCTL" device revok dev-002
expect_fail "a mistyped group alone gets a suggestion" 2 "unknown command 'crll'; did you mean 'crl'\?" "$IOTCTL" crll
expect_fail "a word far from every command gets none" 2 "^iotctl: unknown command 'zzz'$" "$IOTCTL" zzz top
# The overview lists every command with one whole sentence that fits a terminal.
run "$IOTCTL" --help
overview="$(echo "$OUT" | sed -n '/^Commands:$/,/^$/p' | sed '1d;$d')"
# One line per entry of the command table in main.c, so a new command is
# checked without editing this test.
table_count="$(sed -n '/^const cli_command cli_commands\[\] = {$/,/^};$/p' "$IOT_SOURCE_DIR/tools/iotctl/main.c" |
  grep -c '^    {"')"
[ "$table_count" -ge 26 ] || fail "the command table in tools/iotctl/main.c was not found ($table_count entries)"
expect_eq "the overview lists every command" "$table_count" "$(echo "$overview" | grep -c .)"
bad="$(echo "$overview" | grep -Ev '^  [a-z]+( [a-z]+)? [a-z-]+ +[A-Z].*\.$' || true)"
expect_eq "every overview summary is a whole sentence (ends with a full stop)" "" "$bad"
expect_eq "every overview line fits 80 columns" "" "$(echo "$OUT" | awk 'length > 80' || true)"
expect_fail "unknown option" 2 "unknown option '--bogus'" ctl device add x --bogus
expect_fail "option without a value" 2 "needs a value" ctl device add x --csr
expect_fail "missing ID" 2 "missing device ID" ctl device add

finish
