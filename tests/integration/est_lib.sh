# Enrollment (EST) on the real gateway: what est_interop.sh and
# est_abuse.sh share. A PKI made by iotctl with an issuing intermediate
# (the gateway's signing CA; the root key stays in $P) and a bootstrap
# CA; curl and openssl as the device. Source after lib.sh and
# gateway_lib.sh.

EST_ISSUER="$P/issuers/gw-issuer"

# est_pki DEVICE...: make_pki, the intermediate gw-issuer, the bootstrap CA.
est_pki() {
  make_pki "$@"
  "$IOTCTL" --dir "$P" ca intermediate gw-issuer >/dev/null
  "$IOTCTL" --dir "$P" bootstrap init >/dev/null
}

# est_config [EXTRA LINES...]: $T/gw.conf with enrollment on.
est_config() {
  write_gateway_config "est_ca_cert = $EST_ISSUER.pem" "est_ca_key = $EST_ISSUER.key" \
    "est_bootstrap_ca = $P/bootstrap/ca.crt" "$@"
}

# token DEVICE [TTL]: a new enrollment token for DEVICE.
token() {
  "$IOTCTL" --dir "$P" token create --device "$1" --ttl "${2:-1h}" 2>/dev/null | head -1
}

# new_csr DIR CN: a new P-256 key in DIR/key.pem and its CSR, base64 DER,
# in DIR/csr.b64, made the way any openssl user would.
new_csr() {
  local dir="$1" cn="$2"
  mkdir -p "$dir"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/key.pem" \
    -subj "/CN=$cn" -outform DER 2>/dev/null | openssl base64 >"$dir/csr.b64"
}

# est PATH [curl args...]: one EST request; prints the HTTP status (000:
# no answer); the body is in $T/est.body, the headers in $T/est.hdr.
est() {
  local path="$1" out; shift
  out="$(curl -s -o "$T/est.body" -D "$T/est.hdr" -w '%{http_code}' --cacert "$P/ca.crt" \
    "$@" "https://localhost:$GW_PORT/.well-known/est/$path" 2>/dev/null)" || true
  echo "${out:-000}"
}

# est_csr PATH DIR [curl args...]: POSTs DIR/csr.b64 as application/pkcs10.
est_csr() {
  local path="$1" dir="$2"; shift 2
  est "$path" -H "Content-Type: application/pkcs10" --data-binary "@$dir/csr.b64" "$@"
}

# est_error: the "error" of the last answer's JSON body.
est_error() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error",""))' "$T/est.body" 2>/dev/null; }

# est_certs DIR: the last 200 answer's certificates into DIR/chain.pem, the
# first (the device's) into DIR/cert.pem.
est_certs() {
  local dir="$1"
  openssl base64 -d -in "$T/est.body" | openssl pkcs7 -inform DER -print_certs -out "$dir/chain.pem" ||
    fail "the answer is not a base64 certs-only PKCS#7: $(head -c 200 "$T/est.body")"
  openssl x509 -in "$dir/chain.pem" -out "$dir/cert.pem" || fail "no certificate in the answer"
}

# enroll DEVICE DIR: a token (kept in $TOK), a CSR and simpleenroll; 200
# expected.
enroll() {
  local dev="$1" dir="$2"
  TOK="$(token "$dev")"
  [ "${#TOK}" -eq 43 ] || fail "iotctl token create printed '$TOK'"
  new_csr "$dir" "$dev"
  expect_eq "$dev enrolls with a token" 200 "$(est_csr simpleenroll "$dir" -u "$dev:$TOK")"
  est_certs "$dir"
}

# send DIR JSON: a reading with DIR's certificate and key; prints the status.
send() {
  local dir="$1" body="$2" out
  out="$(curl -s -o "$T/send.body" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$dir/cert.pem" --key "$dir/key.pem" -H "Content-Type: application/json" \
    --data-binary "$body" "https://localhost:$GW_PORT/v1/telemetry" 2>/dev/null)" || true
  echo "${out:-000}"
}

# send_is DIR STATUS: whether a reading with DIR's certificate now gets
# STATUS (for wait_until, which must run the request on every try).
send_is() {
  [ "$(send "$1" "{\"seq\":$((SEND_SEQ += 1)),\"temperature\":1}")" = "$2" ]
}
SEND_SEQ=1000

# est_metric RESULT: iotgw_est_requests_total{result=RESULT}.
est_metric() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
    awk -v r="$1" '$1 == "iotgw_est_requests_total{result=\"" r "\"}" { print $2 }'
}

# certs_dump: the registry's certificates, as a text dump to compare.
certs_dump() {
  sqlite3 "$P/registry.db" '.dump certificates' '.dump superseded' '.dump tokens' '.dump enrollments'
}
