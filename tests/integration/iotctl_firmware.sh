#!/usr/bin/env bash
# iotctl firmware: signing keys (modes, list, retire), signed manifests
# checked by our verifier and independently by the openssl CLI, every
# refusal with its exit status and its reason, the fleet-wide sequence
# number, and the release store (add, list, show).
. "$(dirname "$0")/lib.sh"

P="$T/pki"
ctl() { "$IOTCTL" --dir "$P" "$@"; }
OTHER="$T/other-pki"
other() { "$IOTCTL" --dir "$OTHER" "$@"; }

# r || s (128 hex digits) as a DER ECDSA-Sig-Value, for openssl dgst.
der_of_rs() {
  python3 - "$1" "$2" <<'PY'
import sys
sig = bytes.fromhex(sys.argv[1])
def integer(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = integer(sig[:32]) + integer(sig[32:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(body)]) + body)
PY
}

# The key ID the manifest format defines, computed with openssl alone: the
# first 8 bytes of SHA-256 of the uncompressed point (the last 65 bytes of
# a P-256 SubjectPublicKeyInfo).
key_id_of() {
  openssl pkey -pubin -in "$1" -outform DER | tail -c 65 | sha256sum | cut -c1-16
}

sign() {
  ctl firmware sign --image "$T/app.bin" --vendor acme --class esp32c3-sensor \
    --version "$1" --secure-version 3 --key "$2" --out "$3" "${@:4}"
}

expect_ok "pki init" ctl pki init
expect_fail "sign before any key" 1 "no signing key 'rel-a'.*firmware key create" \
  ctl firmware sign --image /dev/null --vendor acme --class c --version 1 --secure-version 0 \
  --key rel-a --out "$T/never"

# --- keys ----------------------------------------------------------------------
expect_ok "key create rel-a" ctl firmware key create --name rel-a
echo "$OUT" | grep -q "PRIVATE KEY" && fail "key create printed key material"
id_a="$(echo "$OUT" | awk '/key ID/ {print $3}')"
[[ "$id_a" =~ ^[0-9a-f]{16}$ ]] || fail "key create printed no 16-digit key ID: $OUT"
expect_eq "the key ID is SHA-256 of the point, per openssl" "$(key_id_of "$P/firmware/keys/rel-a.pub")" "$id_a"
[ "$(file_mode "$P/firmware/keys/rel-a.key")" = 600 ] || fail "signing key is $(file_mode "$P/firmware/keys/rel-a.key"), want 600"
[ "$(file_mode "$P/firmware/keys")" = 700 ] || fail "keys directory is $(file_mode "$P/firmware/keys"), want 700"
[ "$(file_mode "$P/firmware")" = 700 ] || fail "firmware directory is $(file_mode "$P/firmware"), want 700"
pass "signing key 0600 in a 0700 directory"
openssl pkey -in "$P/firmware/keys/rel-a.key" -noout -text 2>/dev/null | grep -q "prime256v1" ||
  fail "the signing key is not P-256"
pass "the signing key is ECDSA P-256"
expect_ok "key create rel-b" ctl firmware key create --name rel-b
id_b="$(echo "$OUT" | awk '/key ID/ {print $3}')"
expect_fail "a key name is used once" 1 "'rel-a' already exists" ctl firmware key create --name rel-a
expect_fail "a key name follows the ID rule" 1 "key name" ctl firmware key create --name 'a/b'
expect_fail "key create needs --name" 2 "missing --name" ctl firmware key create
[ "$(grep -c 'BEGIN PUBLIC KEY' "$P/firmware/trusted-keys.pem")" = 2 ] || fail "trusted-keys.pem does not hold both keys"
pass "both keys are trusted at once"
expect_ok "key list" ctl firmware key list
echo "$OUT" | grep -Eq "^rel-a +$id_a +trusted" || fail "key list lacks rel-a trusted: $OUT"
echo "$OUT" | grep -Eq "^rel-b +$id_b +trusted" || fail "key list lacks rel-b trusted: $OUT"
pass "key list names both keys, trusted"

# --- sign and verify -----------------------------------------------------------
head -c 200000 /dev/urandom >"$T/app.bin"
expect_ok "sign with rel-a" sign 1.0.0 rel-a "$T/m1"
grep -q "^sequence-number: 1$" "$T/m1" || fail "the first manifest's sequence is not 1: $(cat "$T/m1")"
grep -q "^image-size: 200000$" "$T/m1" || fail "image-size is not the image's"
grep -q "^image-digest: sha-256:$(sha256sum "$T/app.bin" | cut -c1-64)$" "$T/m1" || fail "image-digest is not the image's SHA-256"
grep -q "^signing-key-id: $id_a$" "$T/m1" || fail "signing-key-id is not rel-a's"
pass "the manifest carries the image's size and SHA-256 and the key's ID"
expect_ok "verify with the image" ctl firmware verify --manifest "$T/m1" --image "$T/app.bin" --class esp32c3-sensor --vendor acme
echo "$OUT" | grep -Eq "verdict +ok" || fail "verify did not print the verdict ok: $OUT"
echo "$OUT" | grep -Eq "version +1.0.0" || fail "verify did not print the fields: $OUT"
pass "verify prints the fields and the verdict"

# Independently of our code: the openssl CLI verifies the signature over
# every byte before the signature line, with the public key file.
head -n -1 "$T/m1" >"$T/m1.signed"
der_of_rs "$(sed -n 's/^signature: ecdsa-p256-sha256://p' "$T/m1")" "$T/m1.sig.der"
expect_ok "openssl dgst verifies the manifest's signature" \
  openssl dgst -sha256 -verify "$P/firmware/keys/rel-a.pub" -signature "$T/m1.sig.der" "$T/m1.signed"
run openssl dgst -sha256 -verify "$P/firmware/keys/rel-b.pub" -signature "$T/m1.sig.der" "$T/m1.signed"
[ "$RC" -ne 0 ] && echo "$OUT" | grep -q "Verification failure" ||
  fail "openssl dgst accepted the signature with the other key: $OUT"
pass "openssl dgst refuses it with the other key"

# And the other way: a manifest signed by openssl alone passes our verifier.
sed -e 's/^sequence-number: 1$/sequence-number: 900/' -e 's/^version: 1.0.0$/version: 9.9.9/' \
  "$T/m1.signed" >"$T/ext.signed"
openssl dgst -sha256 -sign "$P/firmware/keys/rel-a.key" -out "$T/ext.der" "$T/ext.signed"
rs="$(openssl asn1parse -inform DER -in "$T/ext.der" | awk -F: '/INTEGER/ {printf "%064s", $NF}' | tr ' ' 0 | tr 'A-F' 'a-f')"
{ cat "$T/ext.signed"; echo "signature: ecdsa-p256-sha256:$rs"; } >"$T/ext.manifest"
expect_ok "a manifest signed by openssl verifies" ctl firmware verify --manifest "$T/ext.manifest" --image "$T/app.bin"

# --- refusals ------------------------------------------------------------------
cp "$T/app.bin" "$T/app-changed.bin"
printf '\x5a' | dd of="$T/app-changed.bin" bs=1 seek=1000 conv=notrunc status=none
cmp -s "$T/app.bin" "$T/app-changed.bin" && printf '\xa5' | dd of="$T/app-changed.bin" bs=1 seek=1000 conv=notrunc status=none
expect_fail "one byte of the image changed" 1 "image_digest_mismatch" \
  ctl firmware verify --manifest "$T/m1" --image "$T/app-changed.bin"
head -c 199999 "$T/app.bin" >"$T/app-short.bin"
expect_fail "the image one byte short" 1 "image_size_mismatch.*199999 bytes" \
  ctl firmware verify --manifest "$T/m1" --image "$T/app-short.bin"
sed 's/^secure-version: 3$/secure-version: 4/' "$T/m1" >"$T/m1-changed"
expect_fail "one byte of the manifest changed" 1 "refused \(bad_signature\)" \
  ctl firmware verify --manifest "$T/m1-changed"
sed 's/^\(signature: ecdsa-p256-sha256:\)\(.\)/\1f/' "$T/m1" >"$T/m1-sig"
cmp -s "$T/m1" "$T/m1-sig" && sed 's/^\(signature: ecdsa-p256-sha256:\)\(.\)/\1e/' "$T/m1" >"$T/m1-sig"
expect_fail "one digit of the signature changed" 1 "refused \(bad_signature\)" \
  ctl firmware verify --manifest "$T/m1-sig"
printf 'manifest-version: 1\r\n' >"$T/junk"
expect_fail "not a manifest" 1 "refused \(malformed\).*line 1" ctl firmware verify --manifest "$T/junk"
expect_fail "the wrong class" 1 "refused \(wrong_class\): class-id 'esp32c3-sensor' is not 'esp32s3-cam'" \
  ctl firmware verify --manifest "$T/m1" --class esp32s3-cam
expect_fail "the wrong vendor" 1 "refused \(wrong_vendor\)" ctl firmware verify --manifest "$T/m1" --vendor other

expect_ok "another PKI directory" other pki init
expect_ok "a key of the other PKI" other firmware key create --name rel-a
"$IOTCTL" --dir "$OTHER" firmware sign --image "$T/app.bin" --vendor acme --class esp32c3-sensor \
  --version 1.0.0 --secure-version 3 --key rel-a --out "$T/m-other" >/dev/null
expect_ok "the other PKI verifies its own manifest" other firmware verify --manifest "$T/m-other"
expect_fail "a key never created here" 1 "refused \(unknown_key\).*not one of the 2 trusted keys" \
  ctl firmware verify --manifest "$T/m-other"

# --- sequence numbers ------------------------------------------------------------
expect_ok "second sign" sign 1.0.1 rel-b "$T/m2"
expect_ok "third sign" sign 1.0.2 rel-a "$T/m3"
seqs="$(for f in m1 m2 m3; do sed -n 's/^sequence-number: //p' "$T/$f"; done | tr '\n' ' ')"
expect_eq "sequence numbers strictly increase" "1 2 3 " "$seqs"
expect_fail "--sequence not above the last" 1 "--sequence 3 is not above the last sequence number signed \(3" \
  sign 1.0.3 rel-a "$T/m-low" --sequence 3
expect_fail "--sequence below the last" 1 "is not above" sign 1.0.3 rel-a "$T/m-low" --sequence 1
[ ! -e "$T/m-low" ] || fail "a refused sign wrote a manifest"
expect_ok "--sequence above the last" sign 1.1.0 rel-a "$T/m10" --sequence 10
expect_ok "the next sign after --sequence" sign 1.1.1 rel-a "$T/m11"
grep -q "^sequence-number: 11$" "$T/m11" || fail "the sign after --sequence 10 is not 11"
pass "the next sequence number follows the highest one used"
expect_fail "sign never overwrites" 1 "already exists" sign 1.1.2 rel-a "$T/m11"
grep -q "^sequence-number: 11$" "$T/m11" || fail "a refused sign changed an existing manifest"
expect_ok "sign with --not-after and --uri" sign 1.1.2 rel-a "$T/m12" --not-after 2099-01-01 --uri /v1/firmware/images/app-1.1.2.bin
grep -q "^not-after: 2099-01-01T00:00:00Z$" "$T/m12" || fail "not-after is not in the manifest"
grep -q "^image-uri: /v1/firmware/images/app-1.1.2.bin$" "$T/m12" || fail "--uri is not the image-uri"
pass "--not-after and --uri reach the manifest"
expect_fail "a not-after already past" 2 "already past" sign 1.1.3 rel-a "$T/m-x" --not-after 2001-01-01
expect_fail "a vendor outside the charset" 2 "--vendor 'a b'" \
  ctl firmware sign --image "$T/app.bin" --vendor 'a b' --class c --version 1 --secure-version 0 --key rel-a --out "$T/m-x"
expect_fail "a secure-version out of range" 2 "--secure-version '4294967296'" \
  ctl firmware sign --image "$T/app.bin" --vendor v --class c --version 1 --secure-version 4294967296 --key rel-a --out "$T/m-x"
: >"$T/empty.bin"
expect_fail "an empty image" 1 "is empty" \
  ctl firmware sign --image "$T/empty.bin" --vendor v --class c --version 1 --secure-version 0 --key rel-a --out "$T/m-x"

# --- add, list, show ---------------------------------------------------------------
expect_ok "add release 1" ctl firmware add --manifest "$T/m1" --image "$T/app.bin"
digest="$(sha256sum "$T/app.bin" | cut -c1-64)"
cmp -s "$T/app.bin" "$P/firmware/images/$digest.bin" || fail "the stored image is not the image"
cmp -s "$T/m1" "$P/firmware/images/$digest.manifest" || fail "the stored manifest is not the manifest"
pass "add stores the image and its manifest named by its SHA-256"
expect_fail "add refuses the image again" 1 "already stored with sequence number 1" \
  ctl firmware add --manifest "$T/m2" --image "$T/app.bin"
head -c 1000 /dev/urandom >"$T/app2.bin"
"$IOTCTL" --dir "$P" firmware sign --image "$T/app2.bin" --vendor acme --class esp32c3-sensor \
  --version 2.0.0 --secure-version 4 --key rel-b --out "$T/m-app2" >/dev/null
expect_fail "add refuses an image that is not the manifest's" 1 "image_size_mismatch" \
  ctl firmware add --manifest "$T/m2" --image "$T/app2.bin"
expect_fail "add refuses a changed manifest" 1 "bad_signature" \
  ctl firmware add --manifest "$T/m1-changed" --image "$T/app.bin"
expect_ok "add release 2.0.0" ctl firmware add --manifest "$T/m-app2" --image "$T/app2.bin"
# A sequence number already stored: a manifest made by hand with number 1
# for another image, signed with openssl and rel-a.
sed -e "s/^sequence-number: .*/sequence-number: 1/" -e '/^signature: /d' "$T/m-app2" |
  sed "s/^signing-key-id: .*/signing-key-id: $id_a/" >"$T/dup.signed"
openssl dgst -sha256 -sign "$P/firmware/keys/rel-a.key" -out "$T/dup.der" "$T/dup.signed"
rs="$(openssl asn1parse -inform DER -in "$T/dup.der" | awk -F: '/INTEGER/ {printf "%064s", $NF}' | tr ' ' 0 | tr 'A-F' 'a-f')"
{ cat "$T/dup.signed"; echo "signature: ecdsa-p256-sha256:$rs"; } >"$T/dup.manifest"
head -c 1000 /dev/urandom >"$T/app3.bin"
expect_ok "the hand-made manifest verifies" ctl firmware verify --manifest "$T/dup.manifest"
expect_fail "add refuses a sequence number already stored" 1 "sequence number 1 is already stored" \
  ctl firmware add --manifest "$T/dup.manifest" --image "$T/app2.bin"
expect_ok "list" ctl firmware list
[ "$(echo "$OUT" | grep -Ec '^[0-9]+ ')" = 2 ] || fail "list does not show two releases: $OUT"
echo "$OUT" | sed -n 2p | grep -Eq "^1 +esp32c3-sensor +1.0.0 .*rel-a +ok" || fail "list's first row is not release 1: $OUT"
pass "list shows the releases by sequence number"
expect_ok "list --json" ctl firmware list --json
expect_eq "list --json sequences" "1 $(sed -n 's/^sequence-number: //p' "$T/m-app2")" \
  "$(echo "$OUT" | python3 -c 'import json,sys; print(" ".join(str(r["sequence"]) for r in json.load(sys.stdin)))')"
expect_ok "show by digest prefix" ctl firmware show "${digest:0:12}"
echo "$OUT" | grep -Eq "version +1.0.0" || fail "show by digest shows the wrong release: $OUT"
expect_ok "show --sequence --json" ctl firmware show --sequence 1 --json
expect_eq "show --json digest" "$digest" "$(echo "$OUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image_sha256"])')"
expect_fail "show an unknown release" 1 "no release with sequence number 77" ctl firmware show --sequence 77
expect_fail "show needs an ID or --sequence" 2 "either" ctl firmware show

# --- retire ------------------------------------------------------------------------
expect_ok "retire rel-a" ctl firmware key retire --name rel-a
[ -e "$P/firmware/keys/rel-a.key" ] || fail "retire removed the key file"
pass "a retired key's files are kept"
expect_ok "key list after retire" ctl firmware key list
echo "$OUT" | grep -Eq "^rel-a +$id_a +retired" || fail "key list does not show rel-a retired: $OUT"
echo "$OUT" | grep -Eq "^rel-b +$id_b +trusted" || fail "key list does not show rel-b trusted: $OUT"
pass "key list shows rel-a retired, rel-b trusted"
expect_fail "a manifest of a retired key" 1 "refused \(unknown_key\).*'rel-a'.*retired" \
  ctl firmware verify --manifest "$T/m1" --image "$T/app.bin"
expect_ok "a manifest of the key still trusted" ctl firmware verify --manifest "$T/m2"
expect_fail "a retired key does not sign" 1 "'rel-a' is retired" sign 1.2.0 rel-a "$T/m-ret"
expect_fail "retire twice" 1 "already retired" ctl firmware key retire --name rel-a
expect_fail "retire an unknown key" 1 "no signing key 'nope'" ctl firmware key retire --name nope
expect_ok "list after retire" ctl firmware list
echo "$OUT" | sed -n 2p | grep -q "unknown_key" || fail "list does not show release 1 as unknown_key now: $OUT"
pass "list judges the releases with today's trusted keys"
expect_fail "no PKI directory" 1 "no PKI directory" "$IOTCTL" --dir "$T/none" firmware key list

finish
