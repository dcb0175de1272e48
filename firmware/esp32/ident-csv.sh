#!/usr/bin/env bash
# Writes the nvs_partition_gen.py CSV for a device's "ident" partition from
# the files 'iotctl device add' wrote, after checking them with openssl.
#
#   firmware/esp32/ident-csv.sh DEVICE_DIR OUT.csv
#
# DEVICE_DIR is pki/devices/<ID> (or the --out directory of iotctl device
# add): cert.pem and ca.pem, and key.pem in the development flow. Without
# key.pem (the device made its key and a CSR) the partition carries only the
# certificate and the CA, and the device keeps using its own key.
#
# Checks: the certificate chains to ca.pem, its CN is a device ID, the key
# (if any) is the certificate's, and each file fits the firmware's buffers.
# The CSV names the PEM files by absolute path and is written 0600 when it
# points at a key. Then, in an ESP-IDF shell (README.md, provisioning):
#
#   python $IDF_PATH/components/nvs_flash/nvs_partition_generator/nvs_partition_gen.py \
#       generate OUT.csv ident.bin 0x6000
#   parttool.py --port PORT write_partition --partition-name=ident --input ident.bin
#
# Exit status: 0 written, 1 a check failed (one line on stderr), 2 usage.
set -euo pipefail

# The firmware's buffers (main/identity.h), the terminating NUL excluded.
PEM_MAX=2047
KEY_MAX=1023

die() {
  echo "ident-csv: error: $*" >&2
  exit 1
}

if [ $# -ne 2 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: ident-csv.sh DEVICE_DIR OUT.csv" >&2
  exit 2
fi
dir="$1"
out="$2"
command -v openssl >/dev/null || die "openssl is needed to check the files"

cert="$dir/cert.pem"
ca="$dir/ca.pem"
key="$dir/key.pem"
[ -f "$cert" ] || die "$cert: no such file (run 'iotctl device add' first)"
[ -f "$ca" ] || die "$ca: no such file"

fits() { # FILE MAX
  [ "$(wc -c <"$1")" -le "$2" ] || die "$1: larger than the firmware's $2-byte buffer"
}
fits "$cert" "$PEM_MAX"
fits "$ca" "$PEM_MAX"

openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1 ||
  die "$cert: does not chain to $ca"
subject="$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253)" ||
  die "$cert: not a PEM certificate"
id="$(printf '%s\n' "$subject" | sed -n 's/^subject=CN=\([^,]*\),.*$/\1/p; s/^subject=CN=\([^,]*\)$/\1/p')"
# docs/pki.md: 1-64 of [A-Za-z0-9._-], not starting with '.'.
[[ "$id" =~ ^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$ ]] ||
  die "$cert: the subject does not start with a device ID as CN: $subject"

with_key=false
if [ -f "$key" ]; then
  fits "$key" "$KEY_MAX"
  cert_pub="$(openssl x509 -in "$cert" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -r)"
  key_pub="$(openssl pkey -in "$key" -pubout -outform DER 2>/dev/null |
    openssl dgst -sha256 -r)" || die "$key: not a PEM private key"
  [ "$cert_pub" = "$key_pub" ] || die "$key: the key is not the certificate's"
  with_key=true
fi

abs() {
  local p
  p="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  # The CSV has no quoting for these: refuse what would split a field.
  [[ "$p" != *[,$'\n'\"]* ]] || die "$p: a path with a comma, quote or newline cannot go into the CSV"
  printf '%s' "$p"
}

cert_abs="$(abs "$cert")"
ca_abs="$(abs "$ca")"
key_abs=""
if $with_key; then
  key_abs="$(abs "$key")"
fi

tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(
  umask 077
  {
    echo "key,type,encoding,value"
    echo "ident,namespace,,"
    echo "cert,file,string,$cert_abs"
    echo "ca,file,string,$ca_abs"
    if $with_key; then
      echo "key,file,string,$key_abs"
    fi
  } >"$tmp"
)
$with_key || chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
if $with_key; then
  echo "ident-csv: $out: device $id, certificate, CA and key (development flow)"
else
  echo "ident-csv: $out: device $id, certificate and CA; the device keeps its own key"
fi
