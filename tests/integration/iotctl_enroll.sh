#!/usr/bin/env bash
# iotctl ca, token and enroll: intermediate CAs signed by the root and
# recorded as issuers, their revocation in the root's CRL (which lists only
# what the root signed), one-time enrollment tokens kept only as hashes,
# and the operator's decisions on pending enrollments.
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
db() { sqlite3 "$P/registry.db" "$@"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

expect_ok "pki init" ctl pki init
expect_ok "device add dev-1" ctl device add dev-1

# --- intermediate CAs ------------------------------------------------------------
expect_ok "ca intermediate" ctl ca intermediate gw-a
I="$P/issuers"
echo "$OUT" | grep -q "$I/gw-a.key" || fail "ca intermediate does not print the key's path: $OUT"
echo "$OUT" | grep -q "$I/gw-a.pem" || fail "ca intermediate does not print the certificate's path: $OUT"
echo "$OUT" | grep -q "PRIVATE KEY" && fail "ca intermediate printed key material"
pass "ca intermediate prints both paths and no key"
[ "$(file_mode "$I/gw-a.key")" = 600 ] || fail "intermediate key mode $(file_mode "$I/gw-a.key")"
[ "$(file_mode "$I")" = 700 ] || fail "issuers directory mode $(file_mode "$I")"
pass "intermediate key 0600 in a 0700 directory"
expect_ok "the intermediate verifies against the root" openssl verify -CAfile "$P/ca.crt" "$I/gw-a.pem"
expect_fail "the intermediate does not verify on its own" 2 "unable to get|verification failed" \
  openssl verify -CAfile "$I/gw-a.pem" "$I/gw-a.pem"
openssl x509 -in "$I/gw-a.pem" -noout -text >"$T/gw-a.txt"
grep -A1 "Basic Constraints: critical" "$T/gw-a.txt" | grep -q "CA:TRUE, pathlen:0" ||
  fail "intermediate basicConstraints: $(grep -A1 'Basic Constraints' "$T/gw-a.txt")"
grep -A1 "Key Usage: critical" "$T/gw-a.txt" | grep -q "Certificate Sign, CRL Sign" ||
  fail "intermediate keyUsage: $(grep -A1 'Key Usage' "$T/gw-a.txt")"
pass "intermediate: critical CA:TRUE, pathlen 0, keyCertSign and cRLSign"
expect_eq "intermediate subject" "subject=O = IoT Telemetry, OU = issuer, CN = gw-a" \
  "$(openssl x509 -in "$I/gw-a.pem" -noout -subject)"
days=$(($(date -d "$(openssl x509 -in "$I/gw-a.pem" -noout -enddate | cut -d= -f2)" +%s) / 86400 - $(date +%s) / 86400))
[ "$days" -ge 364 ] && [ "$days" -le 365 ] || fail "default intermediate lifetime is $days days, not 365"
pass "an intermediate lasts 365 days by default"

# A certificate the intermediate signs chains to the root; one more CA
# below it does not (pathlen 0).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" \
  -subj "/CN=leaf-1" -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$I/gw-a.pem" -CAkey "$I/gw-a.key" -set_serial 7 -days 1 \
  -out "$T/leaf.pem" 2>/dev/null
expect_ok "root -> intermediate -> device verifies" \
  openssl verify -CAfile "$P/ca.crt" -untrusted "$I/gw-a.pem" "$T/leaf.pem"
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >"$T/sub.ext"
openssl x509 -req -in "$T/leaf.csr" -CA "$I/gw-a.pem" -CAkey "$I/gw-a.key" -set_serial 8 -days 1 \
  -extfile "$T/sub.ext" -out "$T/sub.pem" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$T/sub.pem" -CAkey "$T/leaf.key" -set_serial 9 -days 1 \
  -out "$T/below.pem" 2>/dev/null
cat "$I/gw-a.pem" "$T/sub.pem" >"$T/two.pem"
expect_fail "a CA below the intermediate is refused (pathlen 0)" 2 "path length|verification failed" \
  openssl verify -CAfile "$P/ca.crt" -untrusted "$T/two.pem" "$T/below.pem"

expect_ok "ca list" ctl ca list
serial_a="$(serial_of "$I/gw-a.pem")"
echo "$OUT" | grep -Eq "^gw-a +$serial_a +active +[0-9T:-]+Z +36[45]$" || fail "ca list row: $OUT"
echo "$OUT" | grep -q "dev-1" && fail "ca list shows a device: $OUT"
pass "ca list shows the intermediate's name, serial, state and expiry"
expect_eq "ca list --json: kind, serial, state" "issuer $serial_a active" \
  "$(ctl ca list --json | jq -r '.[] | select(.name=="gw-a") | "\(.kind) \(.serial) \(.state)"')"
expect_eq "the registry records it as a root-signed issuer" "issuer|$serial_a|" \
  "$(db "SELECT kind, serial, issuer FROM certificates WHERE name='gw-a'")"

before="$(sha256sum "$I/gw-a.key" "$I/gw-a.pem" "$P/registry.db")"
expect_fail "the same name twice is refused" 1 "already taken by an issuer certificate" \
  ctl ca intermediate gw-a
expect_eq "the refusal changed nothing" "$before" "$(sha256sum "$I/gw-a.key" "$I/gw-a.pem" "$P/registry.db")"
expect_fail "a device's name is refused" 1 "'dev-1' is already taken by a device" ctl ca intermediate dev-1
expect_fail "an intermediate may not outlive the root" 1 "outlive the root" \
  ctl ca intermediate gw-long --days 36000
[ ! -e "$I/gw-long.key" ] || fail "a refused intermediate left its key behind"
pass "a refused intermediate leaves no file"
expect_fail "a bad name is refused" 1 "name" ctl ca intermediate 'a/b'
expect_fail "ca intermediate needs a NAME" 2 "missing NAME" ctl ca intermediate

mv "$P/ca.key" "$T/ca.key.away"
expect_fail "ca intermediate needs the root's key" 1 "ca.key" ctl ca intermediate gw-c
mv "$T/ca.key.away" "$P/ca.key"

expect_ok "ca intermediate --out" ctl ca intermediate gw-b --out "$T/out" --days 30
[ "$(file_mode "$T/out/gw-b.key")" = 600 ] || fail "--out key mode $(file_mode "$T/out/gw-b.key")"
[ ! -e "$I/gw-b.pem" ] || fail "--out also wrote to $I"
pass "--out writes NAME.key (0600) and NAME.pem there only"
expect_ok "the --out intermediate verifies" openssl verify -CAfile "$P/ca.crt" "$T/out/gw-b.pem"

# --- revoking an intermediate, and what the root's CRL lists ---------------------
serial_b="$(serial_of "$T/out/gw-b.pem")"
expect_ok "ca revoke --dry-run" ctl ca revoke gw-b --dry-run
expect_eq "a dry run leaves it active" "active" "$(db "SELECT state FROM certificates WHERE name='gw-b'")"
expect_ok "ca revoke" ctl ca revoke gw-b --reason key-compromise
echo "$OUT" | grep -q "crl.pem regenerated" || fail "ca revoke does not say the CRL was regenerated: $OUT"
pass "ca revoke regenerates the CRL"
openssl crl -in "$P/crl.pem" -noout -text >"$T/crl.txt"
grep -q "Serial Number: $serial_b" "$T/crl.txt" || fail "the CRL does not list gw-b ($serial_b): $(cat "$T/crl.txt")"
grep -q "Serial Number: $serial_a" "$T/crl.txt" && fail "the CRL lists the active gw-a"
pass "the root's CRL lists the revoked intermediate, not the active one"
expect_ok "the CRL is signed by the root" openssl crl -in "$P/crl.pem" -CAfile "$P/ca.crt" -noout
expect_eq "ca list --json shows it revoked" "revoked" \
  "$(ctl ca list --json | jq -r '.[] | select(.name=="gw-b") | .state')"
expect_fail "revoking it again is refused" 1 "already revoked" ctl ca revoke gw-b
expect_fail "ca revoke refuses a device" 1 "is a device certificate, not an issuer" ctl ca revoke dev-1
expect_fail "ca revoke of an unknown name" 1 "gw-none" ctl ca revoke gw-none
expect_fail "cert revoke points to ca revoke" 1 "'gw-a' is an intermediate CA; use 'iotctl ca revoke gw-a'" \
  ctl cert revoke gw-a
expect_ok "cert list" ctl cert list
echo "$OUT" | grep -q "gw-a" && fail "cert list shows an intermediate CA: $OUT"
pass "cert list leaves intermediates to ca list"

# A device certificate the intermediate signed (as the gateway records it)
# is not the root's to list, even revoked; a root-signed device is.
now=$(date +%s)
db "INSERT INTO certificates (name, kind, role, serial, fingerprint, not_before, not_after, state,
      created, revoked_at, revoke_reason, spki, issuer)
    VALUES ('dev-est', 'device', 'device', 'ABCDEF0123', '$(printf '0%.0s' {1..64})', $now,
      $((now + 86400)), 'revoked', $now, $now, 'unspecified', '$(printf 'e%.0s' {1..64})', '$serial_a')"
expect_ok "device revoke dev-1" ctl device revoke dev-1
serial_1="$(serial_of "$P/devices/dev-1/cert.pem")"
openssl crl -in "$P/crl.pem" -noout -text >"$T/crl.txt"
grep -q "Serial Number: $serial_1" "$T/crl.txt" || fail "the CRL does not list the root-signed dev-1"
grep -q "Serial Number: $serial_b" "$T/crl.txt" || fail "the CRL lost the revoked intermediate"
grep -q "Serial Number: ABCDEF0123" "$T/crl.txt" && fail "the root's CRL lists a certificate the intermediate signed"
pass "the root's CRL lists root-signed revocations only"

# --- tokens ----------------------------------------------------------------------
mv "$P/ca.key" "$T/ca.key.away" # tokens need no CA key
run ctl token create --device dev-new
[ "$RC" -eq 0 ] || fail "token create: exit $RC: $ERR"
tok="$OUT"
[[ "$tok" =~ ^[A-Za-z0-9_-]{43}$ ]] || fail "token create's stdout is not one 43-character base64url token: '$tok'"
pass "token create prints the token alone: 43 characters of base64url"
id="$(echo "$ERR" | grep -Eo 'tok-[0-9a-f]{12}' | head -1)"
[ -n "$id" ] || fail "token create does not name the token's id on stderr: $ERR"
pass "token create names the token's id ($id) on stderr"
tok2="$(ctl token create --device dev-other 2>/dev/null | head -1)"
[ "${#tok2}" -eq 43 ] && [ "$tok2" != "$tok" ] || fail "a second token is not a new 43-character token: $tok2"
pass "tok=\$(iotctl token create ... | head -1) takes the token"
mv "$T/ca.key.away" "$P/ca.key"

expect_ok "token list" ctl token list
echo "$OUT" | grep -Eq "^$id +dev-new +unused " || fail "token list row: $OUT"
echo "$OUT" | grep -qF "$tok" && fail "token list shows the token itself"
pass "token list shows the id, the device and 'unused', not the token"
json="$(ctl token list --json)"
expect_eq "token list --json" "$id dev-new unused null" \
  "$(echo "$json" | jq -r '.[] | select(.device=="dev-new") | "\(.id) \(.device) \(.state) \(.used_at)"')"
echo "$json" | grep -qF "$tok" && fail "token list --json shows the token itself"
pass "token list --json does not show the token"
sqlite3 "$P/registry.db" .dump | grep -qF "$tok" && fail "registry.db holds the token in plain text"
pass "registry.db does not hold the token"
hash="$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)"
expect_eq "registry.db holds the token's SHA-256, and the id is its prefix" "$id" \
  "$(db "SELECT id FROM tokens WHERE hash='$hash'")"
expect_eq "the id is tok- and 12 hex digits of the hash" "tok-${hash:0:12}" "$id"
created="$(ctl token list --json | jq -r '.[] | select(.device=="dev-new") | .created')"
expires="$(ctl token list --json | jq -r '.[] | select(.device=="dev-new") | .expires')"
expect_eq "a token lives 7 days by default" 604800 $(($(date -d "$expires" +%s) - $(date -d "$created" +%s)))

expect_fail "a token for an enrolled device's name is refused" 1 "already taken by a revoked device" \
  ctl token create --device dev-1
expect_fail "a token for an intermediate's name is refused" 1 "already taken by an issuer certificate" \
  ctl token create --device gw-a
expect_fail "a second usable token for a device is refused" 1 "already has a usable token" \
  ctl token create --device dev-new
expect_fail "token create needs --device" 2 "--device" ctl token create
expect_fail "a bad device ID is refused" 1 "device ID" ctl token create --device 'a b'
for ttl in 3x 0 -5 91d 1hh ''; do
  expect_fail "--ttl '$ttl' is refused" 2 "--ttl '$ttl' is not a lifetime" ctl token create --device dev-t --ttl "$ttl"
  [ "$(printf '%s\n' "$ERR" | grep -c .)" -eq 1 ] || fail "--ttl '$ttl': not a one-line error: $ERR"
  [ -z "$OUT" ] || fail "--ttl '$ttl': printed '$OUT' on stdout"
done
pass "a bad --ttl is a one-line error and prints no token"
expect_eq "no token was made for a refused --ttl" 0 "$(db "SELECT count(*) FROM tokens WHERE device='dev-t'")"
for ttl in 30m:1800 2h:7200 90d:7776000 45:45 10s:10; do
  dev="dev-ttl-${ttl%%:*}"
  expect_ok "--ttl ${ttl%%:*}" ctl token create --device "$dev" --ttl "${ttl%%:*}"
  expect_eq "--ttl ${ttl%%:*} is ${ttl##*:} s" "${ttl##*:}" "$(db "SELECT expires - created FROM tokens WHERE device='$dev'")"
done

expect_ok "token revoke" ctl token revoke "$id"
expect_eq "token list shows it revoked" "revoked" \
  "$(ctl token list --json | jq -r '.[] | select(.id=="'"$id"'") | .state')"
expect_fail "revoking it again is refused" 1 "already revoked" ctl token revoke "$id"
expect_fail "an unknown token id" 1 "no token tok-000000000000" ctl token revoke tok-000000000000
expect_fail "token revoke needs an id" 2 "missing TOKEN-ID" ctl token revoke
expect_ok "after the revocation the device may get a new token" ctl token create --device dev-new

# --registry: the gateway's registry, wherever it is, without a PKI directory.
mkdir -m 2770 "$T/gw"
cp "$P/registry.db" "$T/gw/registry.db"
chmod 0660 "$T/gw/registry.db"
gw() { "$IOTCTL" --dir "$T/no-pki" "$@" --registry "$T/gw/registry.db"; }
expect_ok "token create --registry" gw token create --device dev-gw
expect_eq "the token is in that registry only" "1 0" \
  "$(sqlite3 "$T/gw/registry.db" "SELECT count(*) FROM tokens WHERE device='dev-gw'") $(db "SELECT count(*) FROM tokens WHERE device='dev-gw'")"
expect_ok "token list --registry" gw token list
echo "$OUT" | grep -q "dev-gw" || fail "token list --registry does not show dev-gw: $OUT"
pass "token list --registry reads that registry"
expect_fail "a missing --registry" 1 "no registry at $T/none.db" \
  "$IOTCTL" --dir "$P" token list --registry "$T/none.db"
expect_fail "no registry in the PKI directory" 1 "no registry at.*--registry" \
  "$IOTCTL" --dir "$T/no-pki" token list

# --- enrollment decisions --------------------------------------------------------
expect_ok "enroll list on a registry without requests" ctl enroll list
expect_eq "enroll list: the header alone" 1 "$(printf '%s\n' "$OUT" | grep -c .)"
echo "$OUT" | grep -q "DEVICE.*STATE.*METHOD.*REQUESTED" || fail "enroll list header: $OUT"
pass "enroll list header"
expect_eq "enroll list --json on an empty registry" "[]" "$(ctl enroll list --json)"
expect_fail "approving an unknown device" 1 "'dev-none' has no enrollment request waiting" \
  ctl enroll approve dev-none
expect_fail "denying an unknown device" 1 "'dev-none' has no enrollment request waiting" \
  ctl enroll deny dev-none
expect_fail "enroll approve needs an ID" 2 "missing device ID" ctl enroll approve
expect_fail "enroll deny of a bad ID" 1 "device ID" ctl enroll deny 'a/b'

# Pending requests as the gateway records them.
spki() { printf "$1%.0s" {1..64}; }
for d in dev-p1:a:pending dev-p2:b:pending dev-p3:c:issued; do
  IFS=: read -r name k state <<<"$d"
  db "INSERT INTO enrollments (device, method, auth, spki, peer, requested, state)
      VALUES ('$name', 'token', 'tok-$(spki "$k" | head -c 12)', '$(spki "$k")', '192.0.2.7', $now, '$state')"
done
expect_eq "enroll list --pending --json: the pending ones" "dev-p1 pending,dev-p2 pending" \
  "$(ctl enroll list --pending --json | jq -r '[.[] | "\(.device) \(.state)"] | sort | join(",")')"
expect_eq "enroll list --json: all" 3 "$(ctl enroll list --json | jq length)"
expect_ok "enroll list" ctl enroll list
echo "$OUT" | grep -Eq "^dev-p1 +pending +token .* 192\.0\.2\.7$" || fail "enroll list row: $OUT"
pass "enroll list shows device, state, method and address"
expect_ok "enroll approve" ctl enroll approve dev-p1
expect_ok "enroll deny" ctl enroll deny dev-p2
expect_eq "the decisions are recorded" "dev-p1 approved,dev-p2 denied,dev-p3 issued" \
  "$(ctl enroll list --json | jq -r '[.[] | "\(.device) \(.state)"] | sort | join(",")')"
expect_eq "nothing is pending any more" "[]" "$(ctl enroll list --pending --json)"
expect_fail "a decided request is not decided again" 1 "dev-p1.*approved, not pending" ctl enroll deny dev-p1
expect_fail "an issued enrollment is not approved" 1 "dev-p3.*issued, not pending" ctl enroll approve dev-p3

# --- help ------------------------------------------------------------------------
"$IOTCTL" --help | grep -E '^  (ca|token|enroll) ' >"$T/help.txt"
expect_eq "--help lists the nine ca, token and enroll commands" 9 "$(grep -c . "$T/help.txt")"
while IFS= read -r line; do
  [ "${#line}" -le 80 ] || fail "--help line over 80 columns: $line"
  [[ "$line" =~ \.$ ]] || fail "--help line without a full stop: $line"
done <"$T/help.txt"
pass "their --help lines fit 80 columns and end with a full stop"
finish
