#!/usr/bin/env bash
# TLS scan of the two listeners the system exposes, with Debian's testssl.sh:
# the gateway's device listener (iotgw) and the broker's MQTT/TLS listener
# (Mosquitto with deploy/broker/mosquitto.conf, unchanged). Fails on
#   - any finding of severity MEDIUM, HIGH or CRITICAL (but the one
#     exclusion below, documented where it is made),
#   - any protocol below TLS 1.2 offered, or TLS 1.2 or 1.3 not offered,
#   - any cipher suite offered that is not AEAD (GCM, CCM, ChaCha20-Poly1305),
#   - a scan that did not complete,
#   - a gateway or broker that no longer carries a reading afterwards.
#
# Both listeners require a client certificate. testssl 3.0 (Debian 12) has
# no option for one, so it runs with --openssl pointing at a wrapper that
# adds a valid client certificate to every `openssl s_client` handshake:
# the checks that need a complete handshake (session resumption,
# client-initiated renegotiation, HTTP headers, BREACH) then run too. The
# checks testssl makes over its own sockets need only the ServerHello.
#
# Like broker_acl.sh, the test re-runs itself in a network namespace of its
# own: the broker's listener is port 8883 on all interfaces, and there only
# loopback exists. Nothing leaves the namespace: no DNS (--nodns none), no
# CRL or OCSP fetches (no --phone-out).
set -euo pipefail

if [ -z "${IOT_TLS_SCAN_NETNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tls_scan: needs root to create its own network namespace" >&2
    exit 1
  fi
  IOT_TLS_SCAN_NETNS=1 exec unshare --net -- bash "${BASH_SOURCE[0]}" "$@"
fi

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
ip link set lo up
command -v testssl >/dev/null || fail "testssl not found (package testssl.sh, scripts/install-deps.sh)"
CONF="$IOT_SOURCE_DIR/deploy/broker/mosquitto.conf"
ACL="$IOT_SOURCE_DIR/deploy/broker/acl"
CONSUMER=dashboard # a consumer the deployed ACL names

# --- PKI, broker, gateway ---------------------------------------------------------
make_pki dev-001
"$IOTCTL" --dir "$P" cert client "$CONSUMER" --role consumer >/dev/null

# The broker as deployed: deploy/broker/mosquitto.conf in a tree laid out
# like the container's / (see broker_acl.sh), listening on 8883.
start_deployed_broker() {
  local r="$T/root" b="$T/root/mosquitto"
  mkdir -p "$b/config" "$b/certs" "$b/data"
  cp "$ACL" "$b/config/acl"
  cp "$P/ca.crt" "$b/certs/ca.pem"
  cp "$P/servers/broker/cert.pem" "$P/servers/broker/key.pem" "$P/crl.pem" "$b/certs/"
  chown -R mosquitto:mosquitto "$b"
  chmod 711 "$T"
  spawn env -C "$r" mosquitto -c "$CONF" 2>>"$T/broker.log"
  BROKER_PID=$LAST_PID
  BROKER_PORT=8883
  wait_port 8883 10 || fail "broker did not start: $(tail -5 "$T/broker.log")"
}
if [ -f "$CONF" ]; then
  start_deployed_broker
else
  start_broker # gateway_lib.sh's: TLS 1.2 floor, client certificates required
fi
write_gateway_config
start_gateway

# --- scanning ---------------------------------------------------------------------
# wrapper CERT KEY: an openssl that presents CERT/KEY in every s_client
# handshake; testssl runs everything else through it unchanged.
wrapper() {
  local w
  w="$T/openssl-$(basename "$(dirname "$1")")"
  cat >"$w" <<EOF
#!/bin/sh
if [ "\${1:-}" = s_client ]; then
  shift
  exec openssl s_client -cert '$1' -key '$2' "\$@"
fi
exec openssl "\$@"
EOF
  chmod 755 "$w"
  echo "$w"
}

# scan NAME PORT CERT KEY CHECKS...: testssl's flat JSON in $T/NAME.json,
# its text output in $T/NAME.txt. The checks: protocols (-p), cipher
# categories (-s), forward secrecy (-f), server preferences (-P), server
# defaults and certificate (-S), vulnerabilities (-U), every cipher per
# protocol (-E), and for HTTP the headers (-h). Client simulation (-c) is
# left out: it shows which browsers connect, which says nothing here.
scan() {
  local name="$1" port="$2" client_cert="$3" client_key="$4"
  shift 4
  local start=$SECONDS
  set +e
  testssl --quiet --color 0 --warnings off --nodns none --ip 127.0.0.1 \
    --connect-timeout 10 --openssl-timeout 10 \
    --openssl "$(wrapper "$client_cert" "$client_key")" --add-ca "$P/ca.crt" \
    --jsonfile "$T/$name.json" "$@" "localhost:$port" >"$T/$name.txt" 2>&1
  set -e
  SCAN_SECONDS=$((SECONDS - start))
  if [ ! -s "$T/$name.json" ] || ! jq -e 'any(.[]; .id == "scanTime")' "$T/$name.json" >/dev/null; then
    fail "$name: testssl did not finish; see $T/$name.txt: $(tail -5 "$T/$name.txt")"
  fi
}

# Findings at or above MEDIUM that are not weaknesses of this system. Each
# entry matches one id, one severity and one exact finding text, nothing
# wider; anything else at that level fails the test.
#
# cert_revocation / HIGH / "Neither CRL nor OCSP URI provided": the server
# certificates come from the project's private CA (iotctl), and the only
# clients of these listeners are the project's own devices and gateway,
# which trust that CA alone. None of them fetches a CRL or asks an OCSP
# responder, and the system runs neither (nothing is published outside the
# VPN), so a CRL distribution point or an OCSP URL in the certificate would
# point at nothing. Client certificates are revoked through crl.pem, which
# the gateway and the broker load; a compromised server key is answered by
# issuing a new server certificate and revoking the old one in crl.pem.
EXCLUSIONS='[
  {"id": "cert_revocation", "severity": "HIGH", "finding": "Neither CRL nor OCSP URI provided"}
]'

# check NAME: the assertions on $T/NAME.json, and its summary.
check() {
  local name="$1" json="$T/$1.json"

  local problems
  problems="$(jq -r '.[] | select(.severity == "FATAL" or .id == "scanProblem") |
    "\(.id): \(.finding)"' "$json")"
  expect_eq "$name: the scan reports no scan problem" "" "$problems"

  local p got
  for p in SSLv2 SSLv3 TLS1 TLS1_1; do
    got="$(jq -r --arg p "$p" '.[] | select(.id == $p) | .finding' "$json")"
    [[ "$got" == "not offered"* ]] || fail "$name: $p is offered or untested: '$got'"
  done
  pass "$name: SSLv2, SSLv3, TLS 1.0 and TLS 1.1 are not offered"
  for p in TLS1_2 TLS1_3; do
    got="$(jq -r --arg p "$p" '.[] | select(.id == $p) | .finding' "$json")"
    [[ "$got" == "offered"* ]] || fail "$name: $p is not offered: '$got'"
  done
  pass "$name: TLS 1.2 and TLS 1.3 are offered"

  # -E lists every suite the server accepted, per protocol: "TLS 1.2 xc02b
  # ECDHE-ECDSA-AES128-GCM-SHA256 ECDH 253 AESGCM 128 TLS_ECDHE_..." with
  # the IANA name last.
  local suites old weak
  suites="$(jq -r '.[] | select(.id | startswith("cipher-")) | .finding' "$json")"
  old="$(echo "$suites" | grep -vE '^TLS 1\.[23] ' || true)"
  expect_eq "$name: no cipher suite of a protocol below TLS 1.2" "" "$old"
  for p in "TLS 1.2" "TLS 1.3"; do
    echo "$suites" | grep -q "^$p " || fail "$name: no $p cipher suite listed; see $T/$name.txt"
  done
  weak="$(echo "$suites" | awk '$NF !~ /_GCM_|_CCM|_CHACHA20_POLY1305_/ { print $NF }')"
  expect_eq "$name: every cipher suite offered is AEAD" "" "$weak"

  local findings excluded
  findings="$(jq -r --argjson ex "$EXCLUSIONS" '.[] |
    select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL") |
    select(. as $f | $ex | any(.id == $f.id and .severity == $f.severity and
                               .finding == $f.finding) | not) |
    "\(.severity) \(.id): \(.finding)"' "$json")"
  excluded="$(jq -r --argjson ex "$EXCLUSIONS" '.[] |
    select(. as $f | $ex | any(.id == $f.id and .severity == $f.severity and
                               .finding == $f.finding)) |
    "\(.severity) \(.id): \(.finding)"' "$json")"
  expect_eq "$name: no finding of severity MEDIUM or higher" "" "$findings"

  echo "--- $name: testssl summary (${SCAN_SECONDS}s) ---"
  echo "  protocols: $(jq -r '[.[] | select(.id | test("^(SSLv[23]|TLS1(_[123])?)$")) |
    select(.finding | startswith("offered")) | .id] | join(" ")' "$json")"
  echo "$suites" | awk '{ printf "  suite: %s %s %s\n", $1, $2, $NF }'
  echo "  severities: $(jq -r '[.[] | .severity] | group_by(.) |
    map("\(.[0])=\(length)") | join(" ")' "$json")"
  echo "$excluded" | sed '/^$/d; s/^/  accepted (see EXCLUSIONS): /'
  # WARN marks a check testssl could not make, not a finding. Expected here:
  # engine_problem (Debian's openssl has no GOST engine) and
  # sessionresumption_ticket (testssl 3.0 cannot test ticket resumption over
  # TLS 1.3 with OpenSSL 3: s_client ends before the post-handshake ticket
  # arrives). LOW: HSTS is not sent; devices are not browsers.
  jq -r '.[] | select(.severity == "WARN" or .severity == "LOW") |
    "  \(.severity) \(.id): \(.finding)"' "$json"
}

scan gateway "$GW_PORT" "$P/devices/dev-001/cert.pem" "$P/devices/dev-001/key.pem" \
  -p -s -f -P -S -U -E -h
check gateway
scan broker "$BROKER_PORT" "$P/clients/$CONSUMER/cert.pem" "$P/clients/$CONSUMER/key.pem" \
  -p -s -f -P -S -U -E
check broker

# --- both still carry a reading ------------------------------------------------------
kill -0 "$GW_PID" 2>/dev/null || fail "the gateway exited during the scan: $(tail -5 "$T/gw.log")"
kill -0 "$BROKER_PID" 2>/dev/null || fail "the broker exited during the scan: $(tail -5 "$T/broker.log")"
SUB="$T/sub.out"
spawn mosquitto_sub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" \
  --cert "$P/clients/$CONSUMER/cert.pem" --key "$P/clients/$CONSUMER/key.pem" \
  -q 1 -t 'telemetry/+/telemetry' >"$SUB" 2>"$T/sub.err"
# Until the subscriber is in place a reading reaches nobody: post one a
# second (each must be stored) until one arrives.
for seq in $(seq 1 20); do
  r="$(post dev-001 application/json "{\"seq\":$seq,\"temperature\":21.5}")"
  [ "$r" = '200 {"stored":1,"duplicates":0}' ] || fail "the gateway refused reading $seq after the scans: $r"
  wait_for_lines "$SUB" 1 1 && break
done
pass "the gateway stores readings after the scans"
wait_for_lines "$SUB" 1 1 || fail "no reading reached the consumer through the broker: $(cat "$T/sub.err")"
pass "a reading reaches a consumer through the scanned broker"

finish
