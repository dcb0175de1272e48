#!/usr/bin/env bash
# The shared-state plane on its own: three etcd 3.4 members
# (tests/support/etcd.sh) with client and peer certificates required and a
# dedicated PKI as the only trust anchor, reached as the gateways reach it,
# through etcd's JSON gateway (POST /v3/kv/...) over HTTPS with curl:
#  - a gateway's client certificate puts and reads a key, through any member;
#  - a create-if-absent transaction (compare create_revision = 0, what
#    spends an enrollment token) succeeds once; the second gets the value
#    the first wrote (etcd omits "succeeded" when it is false);
#  - a device certificate from another PKI, a server certificate without
#    clientAuth, and no certificate at all are refused in the TLS handshake;
#  - with the leader killed (SIGKILL) the two others still take a write and
#    a linearizable read; restarted on its data directory, it serves the key;
#  - deploy/etcd/etcd-1.conf.yml (addresses and paths replaced) starts a
#    member that serves the JSON gateway and refuses a revoked gateway
#    certificate (the shared PKI's CRL).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../support/etcd.sh"

etcd_cluster_start "$T/etcd" "$IOTCTL" 3 gw-1 gw-2 || fail "the etcd cluster did not start"
pass "three etcd members healthy: $ETCD_ENDPOINTS"
read -r GW1_CERT GW1_KEY <<<"$(etcd_client_files gw-1)"
read -r GW2_CERT GW2_KEY <<<"$(etcd_client_files gw-2)"
expect_eq "a gateway's key is 0600" 600 "$(file_mode "$GW1_KEY")"
read -r -a EP <<<"$ETCD_ENDPOINTS" # EP[0] is member 1's client address
AS_GW1=(--cert "$GW1_CERT" --key "$GW1_KEY")
AS_GW2=(--cert "$GW2_CERT" --key "$GW2_KEY")

b64() { printf '%s' "$1" | base64 -w0; }
# api HOST:PORT PATH BODY CURL_ARGS...: one POST to the JSON gateway, as
# the gateway does it; the answer in $OUT, curl's exit status in $RC.
api() {
  local ep="$1" path="$2" body="$3"
  shift 3
  run curl -sS --max-time 5 --cacert "$ETCD_CA" "$@" -H 'Content-Type: application/json' \
    -d "$body" "https://$ep$path"
}
put_body() { printf '{"key":"%s","value":"%s"}' "$(b64 "$1")" "$(b64 "$2")"; }
range_body() { printf '{"key":"%s"}' "$(b64 "$1")"; }
# value: the first value of the range answer in $OUT, decoded.
value() { echo "$OUT" | jq -r '.kvs[0].value // empty' | base64 -d; }
# txn_body KEY VALUE: put KEY=VALUE if KEY was never created, else read it.
txn_body() {
  local k v
  k="$(b64 "$1")" v="$(b64 "$2")"
  printf '{"compare":[{"key":"%s","result":"EQUAL","target":"CREATE","create_revision":"0"}],' "$k"
  printf '"success":[{"request_put":{"key":"%s","value":"%s"}}],' "$k" "$v"
  printf '"failure":[{"request_range":{"key":"%s"}}]}' "$k"
}

# --- (a) a gateway puts and reads ---------------------------------------------------
api "${EP[0]}" /v3/kv/put "$(put_body /iot/test/a one)" "${AS_GW1[@]}"
if [ "$RC" -ne 0 ] || ! echo "$OUT" | jq -e '.header.revision' >/dev/null; then
  fail "put as gw-1 through member 1: curl $RC: $OUT $ERR"
fi
pass "gw-1 puts a key through member 1"
api "${EP[2]}" /v3/kv/range "$(range_body /iot/test/a)" "${AS_GW2[@]}"
[ "$RC" -eq 0 ] || fail "range as gw-2 through member 3: curl $RC: $ERR"
expect_eq "gw-2 reads it through member 3" one "$(value)"

# --- (b) create-if-absent, what spends a token --------------------------------------
api "${EP[1]}" /v3/kv/txn "$(txn_body /iot/tokens/t1 '{"gateway":"gw-1"}')" "${AS_GW1[@]}"
[ "$RC" -eq 0 ] || fail "first txn: curl $RC: $ERR"
expect_eq "the first create-if-absent succeeds" true "$(echo "$OUT" | jq -r '.succeeded')"
api "${EP[2]}" /v3/kv/txn "$(txn_body /iot/tokens/t1 '{"gateway":"gw-2"}')" "${AS_GW2[@]}"
[ "$RC" -eq 0 ] || fail "second txn: curl $RC: $ERR"
expect_eq "the second does not (\"succeeded\" omitted)" absent \
  "$(echo "$OUT" | jq -r 'if has("succeeded") then .succeeded else "absent" end')"
expect_eq "the second reads the value the first wrote" '{"gateway":"gw-1"}' \
  "$(echo "$OUT" | jq -r '.responses[0].response_range.kvs[0].value' | base64 -d)"
expect_eq "etcd holds the first value" '{"gateway":"gw-1"}' \
  "$(etcd_ctl get --print-value-only /iot/tokens/t1)"

# --- (c, d) who is refused -------------------------------------------------------------
"$IOTCTL" --dir "$T/devpki" pki init >/dev/null || fail "device PKI"
"$IOTCTL" --dir "$T/devpki" device add dev-1 >/dev/null || fail "device dev-1"
"$IOTCTL" --dir "$ETCD_DIR/pki" cert server not-a-client --ip 127.0.0.1 >/dev/null ||
  fail "server certificate without clientAuth"
# refused WHAT CURL_ARGS...: a put with these credentials fails in TLS and
# writes nothing.
refused() {
  local what="$1"
  shift
  api "${EP[0]}" /v3/kv/put "$(put_body /iot/test/evil "$what")" "$@"
  [ "$RC" -ne 0 ] || fail "$what: expected a refused handshake, got: $OUT"
  echo "$OUT" | grep -q header && fail "$what: etcd answered: $OUT"
  pass "$what is refused (curl $RC: ${ERR%%$'\n'*})"
}
refused "a device certificate from another PKI" \
  --cert "$T/devpki/devices/dev-1/cert.pem" --key "$T/devpki/devices/dev-1/key.pem"
refused "a shared-PKI server certificate without clientAuth" \
  --cert "$ETCD_DIR/pki/servers/not-a-client/cert.pem" --key "$ETCD_DIR/pki/servers/not-a-client/key.pem"
refused "no client certificate"
expect_eq "nothing was written by the refused" "" "$(etcd_ctl get --print-value-only /iot/test/evil)"
grep -q '"rejected connection"' "$ETCD_DIR/etcd-1.log" || fail "member 1 did not log the refused handshakes"
pass "the member logs the refused handshakes"

# --- (e) one member down: the leader --------------------------------------------------
K="$(etcd_leader)" || fail "no member leads: $(etcd_ctl endpoint status 2>&1)"
etcd_member_kill "$K" || fail "cannot kill member $K"
api "${EP[K - 1]}" /v3/kv/range "$(range_body /iot/test/a)" "${AS_GW1[@]}"
[ "$RC" -ne 0 ] || fail "member $K still answers: $OUT"
pass "the leader, member $K, is down (curl $RC)"
S1=$((K % 3)) S2=$(((K + 1) % 3)) # indexes in EP of the two others
# A write sent at once would wait for etcd's request timeout (7 s: 5 s and
# two election timeouts) and fail ("request timed out, possibly due to
# previous leader failure"), whether or not it was applied: a caller
# retries, and a create-if-absent retried may find its own value. Here:
# once the others have elected a leader.
has_leader() { etcd_leader >/dev/null; }
wait_until 10 "a new leader among the two others" has_leader
written() {
  api "${EP[S1]}" /v3/kv/put "$(put_body /iot/test/down "while $K was down")" "${AS_GW1[@]}"
  [ "$RC" -eq 0 ] && echo "$OUT" | jq -e '.header.revision' >/dev/null
}
wait_until 10 "a write with member $K down" written
pass "the two others take a write with member $K down"
api "${EP[S2]}" /v3/kv/range "$(range_body /iot/test/down)" "${AS_GW2[@]}"
[ "$RC" -eq 0 ] || fail "linearizable read with member $K down: curl $RC: $ERR"
expect_eq "a linearizable read on the other one sees it" "while $K was down" "$(value)"
etcd_member_start "$K" || fail "member $K did not come back"
api "${EP[K - 1]}" /v3/kv/range "$(range_body /iot/test/down)" "${AS_GW1[@]}"
[ "$RC" -eq 0 ] || fail "read from restarted member $K: curl $RC: $ERR"
expect_eq "restarted, member $K serves the key written while it was down" "while $K was down" "$(value)"
api "${EP[K - 1]}" /v3/kv/range "{\"key\":\"$(b64 /iot/test/down)\",\"serializable\":true}" "${AS_GW1[@]}"
expect_eq "... from its own copy (serializable read)" "while $K was down" "$(value)"

# --- deploy/etcd/etcd-1.conf.yml -----------------------------------------------------------
# A member of its own on the file, with the shared PKI's member 1
# certificate and CRL; gw-old's certificate is revoked.
"$IOTCTL" --dir "$ETCD_DIR/pki" cert client gw-old --role gateway >/dev/null || fail "gw-old"
"$IOTCTL" --dir "$ETCD_DIR/pki" cert revoke gw-old >/dev/null || fail "revoke gw-old"
CONF="$IOT_SOURCE_DIR/deploy/etcd/etcd-1.conf.yml"
CP="$(free_port)" PP="$(free_port)"
M="$ETCD_DIR/pki/servers/etcd-1"
for want in "name: etcd-1" "data-dir: /var/lib/etcd/iot-shared" \
  "listen-client-urls: https://10.0.0.11:2379" "advertise-client-urls: https://10.0.0.11:2379" \
  "listen-peer-urls: https://10.0.0.11:2380" "initial-advertise-peer-urls: https://10.0.0.11:2380" \
  "  cert-file: /etc/etcd/pki/cert.pem" "  key-file: /etc/etcd/pki/key.pem" \
  "  trusted-ca-file: /etc/etcd/pki/ca.pem" "  CRLFile: /etc/etcd/pki/crl.pem" \
  "  client-cert-auth: true" "enable-grpc-gateway: true"; do
  grep -qxF -- "$want" "$CONF" || fail "$CONF no longer has what this test relies on: $want"
done
[ "$(grep -c '^initial-cluster: ' "$CONF")" = 1 ] || fail "$CONF: no single initial-cluster line"
sed -e "s|https://10.0.0.11:2379|https://127.0.0.1:$CP|" -e "s|https://10.0.0.11:2380|https://127.0.0.1:$PP|" \
  -e "s|^initial-cluster: .*|initial-cluster: etcd-1=https://127.0.0.1:$PP|" \
  -e "s|/var/lib/etcd/iot-shared|$T/single|" -e "s|/etc/etcd/pki/ca.pem|$ETCD_CA|" \
  -e "s|/etc/etcd/pki/crl.pem|$ETCD_DIR/pki/crl.pem|" -e "s|/etc/etcd/pki/|$M/|" \
  "$CONF" >"$T/etcd-1.conf.yml"
left="$(grep -v '^ *#' "$T/etcd-1.conf.yml" | grep '10\.0\.0\.\|/etc/etcd' || true)"
[ -z "$left" ] || fail "left unreplaced in the copy of $CONF: $left"
# etcd reads ETCD_* variables as flags: none of ours for it.
spawn env -u ETCD_DIR -u ETCD_N -u ETCD_CA -u ETCD_URLS -u ETCD_ENDPOINTS -u ETCD_ADMIN_CERT \
  -u ETCD_ADMIN_KEY etcd --config-file "$T/etcd-1.conf.yml" 2>"$T/single.log"
single_ok() {
  api "127.0.0.1:$CP" /v3/kv/put "$(put_body /iot/test/single yes)" "${AS_GW1[@]}"
  [ "$RC" -eq 0 ] && echo "$OUT" | jq -e '.header.revision' >/dev/null
}
wait_until 20 "etcd on deploy/etcd/etcd-1.conf.yml to take a put: $(tail -2 "$T/single.log")" single_ok
pass "etcd on deploy/etcd/etcd-1.conf.yml serves the JSON gateway to a gateway certificate"
api "127.0.0.1:$CP" /v3/kv/range "$(range_body /iot/test/single)" \
  --cert "$ETCD_DIR/pki/clients/gw-old/cert.pem" --key "$ETCD_DIR/pki/clients/gw-old/key.pem"
[ "$RC" -ne 0 ] || fail "a revoked gateway certificate was served: $OUT"
grep -q 'revoked' "$T/single.log" || fail "etcd did not log the revoked certificate: $(tail -3 "$T/single.log")"
pass "... and refuses a revoked one (the CRL of the file; curl $RC)"
api "127.0.0.1:$CP" /v3/kv/range "$(range_body /iot/test/single)" \
  --cert "$T/devpki/devices/dev-1/cert.pem" --key "$T/devpki/devices/dev-1/key.pem"
[ "$RC" -ne 0 ] || fail "a device certificate was served by the file's member: $OUT"
pass "... and a device certificate"
"$IOTCTL" --dir "$ETCD_DIR/pki" cert revoke gw-2 >/dev/null || fail "revoke gw-2"
api "127.0.0.1:$CP" /v3/kv/range "$(range_body /iot/test/single)" "${AS_GW2[@]}"
[ "$RC" -ne 0 ] || fail "gw-2, revoked while etcd runs, was served: $OUT"
pass "a certificate revoked while etcd runs is refused at its next connection (no restart)"
# The member on the file stops with the test (lib.sh's spawn).

etcd_cluster_stop
for k in 1 2 3; do
  [ -z "${ETCD_PIDS[k]}" ] || fail "member $k still recorded after etcd_cluster_stop"
done
pass "etcd_cluster_stop stopped the members"
finish
