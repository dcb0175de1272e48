#!/usr/bin/env bash
# Two gateways behind one balancer share state on a three-member etcd
# cluster (docs/cluster.md, Shared state): an enrollment token spent at
# one gateway is refused at the other (each has its own copy of the
# registry in which the token is still unused), the same device with the
# same key may take its lost answer from either; a rollout pauses on
# failures reported through both gateways, with one etcd member down; a
# gateway that was stopped catches up on what the other took meanwhile;
# with no member answering, enrollment answers 503 and a final report
# waits in the gateway until etcd is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"
. "$(dirname "$0")/../support/etcd.sh"

ctl() { "$IOTCTL" --dir "$P" "$@"; }

est_pki dev-a dev-b dev-c dev-d dev-e
expect_ok "firmware key" ctl firmware key create --name rel
head -c 8192 /dev/urandom >"$T/app.bin"
expect_ok "sign 2.0.0" ctl firmware sign --image "$T/app.bin" --vendor acme --class sensor \
  --version 2.0.0 --secure-version 0 --key rel --out "$T/app.manifest"
expect_ok "add 2.0.0" ctl firmware add --manifest "$T/app.manifest" --image "$T/app.bin"
SEQ="$(awk '/^sequence-number:/ {print $2}' "$T/app.manifest")"
head -c 8192 /dev/urandom >"$T/app2.bin"
expect_ok "sign 2.0.1" ctl firmware sign --image "$T/app2.bin" --vendor acme --class sensor \
  --version 2.0.1 --secure-version 0 --key rel --out "$T/app2.manifest"
expect_ok "add 2.0.1" ctl firmware add --manifest "$T/app2.manifest" --image "$T/app2.bin"
SEQ2="$(awk '/^sequence-number:/ {print $2}' "$T/app2.manifest")"
head -c 8192 /dev/urandom >"$T/app3.bin"
expect_ok "sign 2.0.2" ctl firmware sign --image "$T/app3.bin" --vendor acme --class sensor \
  --version 2.0.2 --secure-version 0 --key rel --out "$T/app3.manifest"
expect_ok "add 2.0.2" ctl firmware add --manifest "$T/app3.manifest" --image "$T/app3.bin"
SEQ3="$(awk '/^sequence-number:/ {print $2}' "$T/app3.manifest")"
TOK="$(token dev-new)"
TOK2="$(token dev-late)"

echo "# starting three etcd members"
etcd_cluster_start "$T/etcd" "$IOTCTL" 3 gw-a gw-b
start_broker

# gateway X: its own registry copy, outbox and rollout file; both gateways
# have the same rollouts, created by iotctl in each file.
setup_gateway() {
  local x="$1"
  mkdir -p "$T/$x"
  cp "$P/registry.db" "$T/$x/registry.db"
  ctl rollout create r1 --firmware "$SEQ" --devices dev-a,dev-b,dev-d --canary 0 --waves 100 \
    --failure-percent 50 --min-reports 2 --seed 7 --db "$T/$x/rollouts.db" >/dev/null ||
    fail "rollout r1 in $x's file"
  ctl rollout create r2 --firmware "$SEQ2" --devices dev-c --canary 0 --waves 100 \
    --seed 7 --db "$T/$x/rollouts.db" >/dev/null || fail "rollout r2 in $x's file"
  ctl rollout create r3 --firmware "$SEQ3" --devices dev-e --canary 0 --waves 100 \
    --seed 7 --db "$T/$x/rollouts.db" >/dev/null || fail "rollout r3 in $x's file"
  GW_PORT="$(free_port)" ADMIN_PORT="$(free_port)"
  est_config "rollouts = $T/$x/rollouts.db" "firmware_dir = $P/firmware" \
    "shared_state = $ETCD_ENDPOINTS" "shared_state_ca = $ETCD_CA" \
    "shared_state_cert = $T/etcd/clients/gw-$x.crt" "shared_state_key = $T/etcd/clients/gw-$x.key" \
    "shared_state_poll = 200ms"
  sed -i -e "s|^registry = .*|registry = $T/$x/registry.db|" \
    -e "s|^outbox = .*|outbox = $T/$x/outbox.db|" \
    -e "s|^mqtt_client_id = .*|mqtt_client_id = gw-$x|" "$T/gw.conf"
  mv "$T/gw.conf" "$T/$x/gw.conf"
  eval "PORT_$x=$GW_PORT ADMIN_$x=$ADMIN_PORT"
}

run_gateway() {
  local x="$1" port
  port="$(eval echo "\$PORT_$x")"
  "$IOTGW" --config "$T/$x/gw.conf" 2>>"$T/$x/gw.log" &
  _PIDS+=("$!")
  eval "PID_$x=$!"
  wait_port "$port" 15 || fail "gateway $x did not start; see $T/$x/gw.log: $(tail -3 "$T/$x/gw.log")"
}

halt_gateway() {
  local pid
  pid="$(eval echo "\$PID_$1")"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# at X: the following est / dget / report go to gateway X.
at() {
  GW_PORT="$(eval echo "\$PORT_$1")"
  ADMIN_PORT="$(eval echo "\$ADMIN_$1")"
}

dget() {
  curl -s -o "$T/.body" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$P/devices/$1/cert.pem" --key "$P/devices/$1/key.pem" \
    "https://localhost:$GW_PORT$2" 2>/dev/null || true
}
report() {
  curl -s -o "$T/.body" -w '%{http_code}' --cacert "$P/ca.crt" \
    --cert "$P/devices/$1/cert.pem" --key "$P/devices/$1/key.pem" \
    -H "Content-Type: application/json" --data-binary "$2" \
    "https://localhost:$GW_PORT/v1/firmware/status" 2>/dev/null || true
}
rep() { printf '{"status":"%s",%s"sequence":%s,"offset":8192,"size":8192}' "$1" "${3:+\"reason\":\"$3\",}" "$2"; }
rollout_json() { ctl rollout status "$2" --json --db "$T/$1/rollouts.db"; }
rollout_state() { rollout_json "$1" "$2" | jq -r .state; }
dev_state() { rollout_json "$1" "$2" | jq -r --arg d "$3" '.device_states[] | select(.device == $d) | .state'; }
state_is() { [ "$(dev_state "$1" "$2" "$3")" = "$4" ]; }
rollout_is() { [ "$(rollout_state "$1" "$2")" = "$3" ]; }

setup_gateway a
setup_gateway b
run_gateway a
run_gateway b
grep -q 'gateway.started.*shared_state=.*gateway_name=gw-a' "$T/a/gw.log" ||
  fail "gateway a did not name its shared state: $(grep gateway.started "$T/a/gw.log")"
pass "gateway a started on the shared state as gw-a"

# --- an enrollment token is spent once, whichever gateway sees it ------------------
at a
new_csr "$T/n1" dev-new
expect_eq "dev-new enrolls at gateway a" 200 "$(est_csr simpleenroll "$T/n1" -u "dev-new:$TOK")"
est_certs "$T/n1"
FIRST_SERIAL="$(openssl x509 -in "$T/n1/cert.pem" -noout -serial)"
at b
new_csr "$T/n2" dev-new
expect_eq "the same token with another key at gateway b" 401 \
  "$(est_csr simpleenroll "$T/n2" -u "dev-new:$TOK")"
expect_eq "it is refused as used" token_used "$(est_error)"
grep -q 'est.token_spent_elsewhere device=dev-new spent_at=gw-a' "$T/b/gw.log" ||
  fail "gateway b did not log where the token was spent"
pass "gateway b logged est.token_spent_elsewhere spent_at=gw-a"
expect_eq "b's own registry still had the token unused" "" \
  "$(sqlite3 "$T/b/registry.db" "SELECT used_at FROM tokens WHERE used_at IS NOT NULL AND used_at != 0" 2>&1 | head -1)"

# --- enrolled at one gateway, known at every gateway -------------------------------
wait_until 10 "gateway b to admit dev-new, enrolled at a" send_is "$T/n1" 200
grep -q 'event=est.imported device=dev-new .*from=gw-a as=new' "$T/b/gw.log" ||
  fail "no est.imported line at b: $(grep -c est.imported "$T/b/gw.log")"
pass "gateway b took dev-new's certificate, issued at a, into its registry"
expect_eq "b counts it" 1 "$(metric iotgw_shared_certs_imported_total)"
expect_eq "the same device with the same key takes its lost answer at b" 200 \
  "$(est_csr simpleenroll "$T/n1" -u "dev-new:$TOK")"
mkdir -p "$T/lost"
est_certs "$T/lost"
expect_eq "... the same certificate a issued" "$FIRST_SERIAL" \
  "$(openssl x509 -in "$T/lost/cert.pem" -noout -serial)"
new_csr "$T/r1" dev-new
expect_eq "dev-new renews at gateway b, with its certificate from a" 200 \
  "$(est_csr simplereenroll "$T/r1" --cert "$T/n1/cert.pem" --key "$T/n1/key.pem")"
est_certs "$T/r1"
at a
wait_until 10 "gateway a to admit dev-new's certificate renewed at b" send_is "$T/r1" 200
grep -q 'event=est.imported device=dev-new .*from=gw-b as=renewal' "$T/a/gw.log" ||
  fail "no est.imported renewal line at a"
pass "gateway a took the renewal made at b"
# Revoked in a's registry, on a's host (no CA key): b refuses it too.
expect_ok "dev-new revoked in a's registry" \
  "$IOTCTL" --dir "$T/no-pki" --registry "$T/a/registry.db" device revoke dev-new
at b
wait_until 10 "gateway b to refuse dev-new, revoked at a" send_is "$T/r1" 000
grep -q 'event=identity.revocation_imported device=dev-new .*from=gw-a' "$T/b/gw.log" ||
  fail "no identity.revocation_imported line at b"
pass "gateway b applied the revocation made at a"
expect_eq "b counts it" 1 "$(metric iotgw_shared_revocations_imported_total)"

# --- a token made on one gateway's host is good at the other -------------------------
actl() { "$IOTCTL" --dir "$T/no-pki" --registry "$T/a/registry.db" "$@"; }
TOK3="$(actl token create --device dev-t3 --ttl 1h 2>/dev/null | head -1)"
TOK4="$(actl token create --device dev-t4 --ttl 1h 2>/dev/null | head -1)"
[ "${#TOK3}" -eq 43 ] && [ "${#TOK4}" -eq 43 ] || fail "iotctl token create on a's registry"
TOK4_ID="$(actl token list | awk '$2 == "dev-t4" { print $1 }')"
expect_ok "a token revoked on a's host" actl token revoke "$TOK4_ID"
at b
new_csr "$T/t3" dev-t3
wait_until 10 "gateway b to take the token made at a" \
  grep -q "event=est.token_imported .*device=dev-t3 from=gw-a" "$T/b/gw.log"
expect_eq "dev-t3 enrolls at b with the token made at a" 200 \
  "$(est_csr simpleenroll "$T/t3" -u "dev-t3:$TOK3")"
new_csr "$T/t4" dev-t4
wait_until 10 "gateway b to take the token revocation made at a" \
  grep -q "event=est.token_revocation_imported token=$TOK4_ID from=gw-a" "$T/b/gw.log"
expect_eq "the token revoked at a is refused at b" 401 \
  "$(est_csr simpleenroll "$T/t4" -u "dev-t4:$TOK4")"
expect_eq "... as token_revoked" token_revoked "$(est_error)"
at b
expect_eq "dev-new's token's claim names gateway a" gw-a \
  "$(etcd_ctl get --print-value-only "/iot/tokens/$(printf %s "$TOK" | sha256sum | cut -c1-64)" | jq -r .gateway)"
expect_eq "dev-t3's names gateway b" gw-b \
  "$(etcd_ctl get --print-value-only "/iot/tokens/$(printf %s "$TOK3" | sha256sum | cut -c1-64)" | jq -r .gateway)"

# --- a rollout pauses on failures reported through both gateways -------------------
# Keys under the prefix that are no report of ours, written first: each is
# counted and passed over, and the reports after them still count.
etcd_ctl put /iot/rollouts/r1/final/dev-d 'not json' >/dev/null || fail "etcdctl put"
etcd_ctl put '/iot/rollouts/r1/final/../dev-d' '{"state":"failed","gateway":"gw-x"}' >/dev/null ||
  fail "etcdctl put"
etcd_ctl put /iot/rollouts/r1/final/dev-x '{"state":"exploded","gateway":"gw-x"}' >/dev/null ||
  fail "etcdctl put"
etcd_member_kill 1
echo "# etcd member 1 is down"
at a
expect_eq "dev-a starts at gateway a" 200 "$(dget dev-a /v1/firmware/manifest)"
expect_eq "dev-a fails at gateway a" 204 "$(report dev-a "$(rep failed "$SEQ" self_test)")"
expect_eq "one failure of two needed: r1 runs at a" running "$(rollout_state a r1)"
wait_until 10 "gateway b to take dev-a's failure" state_is b r1 dev-a failed
pass "gateway b applied dev-a's failure reported at gateway a"
expect_eq "r1 still runs at b" running "$(rollout_state b r1)"
at b
expect_eq "dev-b starts at gateway b" 200 "$(dget dev-b /v1/firmware/manifest)"
expect_eq "dev-b rolls back at gateway b" 204 "$(report dev-b "$(rep rolled_back "$SEQ" self_test)")"
expect_eq "two failures of two: r1 paused at b" paused "$(rollout_state b r1)"
wait_until 10 "gateway a to pause r1" rollout_is a r1 paused
pass "gateway a paused r1 on the failures reported through both gateways"
expect_eq "a's reason" failure_threshold "$(rollout_json a r1 | jq -r .pause_reason)"
grep -q 'update.report_shared device=dev-b rollout=r1 status=rolled_back from=gw-b' "$T/a/gw.log" ||
  fail "no update.report_shared line at a"
pass "gateway a logged update.report_shared from gw-b"
at a
expect_eq "a counts the applied report" 1 "$(metric iotgw_shared_reports_applied_total)"
expect_eq "a counted the three planted keys as refused" 3 "$(metric iotgw_shared_state_refused_total)"
grep -q 'event=shared.value_refused key="/iot/rollouts/r1/final/dev-d"' "$T/a/gw.log" ||
  fail "no shared.value_refused line for the planted key"
pass "a logged shared.value_refused naming the key"
expect_eq "dev-d stays pending at a (its planted key was refused)" pending "$(dev_state a r1 dev-d)"
etcd_member_start 1

# --- a stopped gateway catches up ---------------------------------------------------
halt_gateway a
at b
expect_eq "dev-c starts at gateway b" 200 "$(dget dev-c /v1/firmware/manifest)"
expect_eq "dev-c confirms at gateway b" 204 "$(report dev-c "$(rep confirmed "$SEQ2")")"
expect_eq "a has not seen it (stopped)" pending "$(dev_state a r2 dev-c)"
run_gateway a
wait_until 10 "gateway a to catch up on dev-c" state_is a r2 dev-c confirmed
pass "gateway a caught up at start on dev-c's confirmation"
expect_eq "r2 completed at a" completed "$(rollout_state a r2)"

# --- a report taken without a quorum is written at the next start ----------------
# Two members down: nothing can be written. The report is recorded at a
# and waits in its memory; a stops with it unwritten; at its next start a
# writes every final state of its file that etcd lacks.
etcd_member_kill 2
etcd_member_kill 3
at a
expect_eq "dev-e starts at gateway a" 200 "$(dget dev-e /v1/firmware/manifest)"
expect_eq "dev-e confirms at gateway a, etcd without a quorum" 204 \
  "$(report dev-e "$(rep confirmed "$SEQ3")")"
halt_gateway a
grep -q 'shared.pending_at_stop reports=1' "$T/a/gw.log" ||
  fail "gateway a did not stop with the report unwritten: $(grep 'event=shared' "$T/a/gw.log" | tail -3)"
pass "gateway a stopped with dev-e's report unwritten (shared.pending_at_stop reports=1)"
expect_eq "b has not seen it" pending "$(dev_state b r3 dev-e)"
etcd_member_start 2
run_gateway a
wait_until 15 "gateway b to get dev-e's confirmation, written at a's start" \
  state_is b r3 dev-e confirmed
pass "a wrote at its start the report it had taken without a quorum; b applied it"
grep -q 'shared.compare_failed' "$T/a/gw.log" && fail "a could not compare its file: $(grep shared.compare_failed "$T/a/gw.log" | tail -1)"
pass "no shared.compare_failed at a"

# --- approvals: a request waiting at one gateway is decided at the other ------------
halt_gateway a
halt_gateway b
for x in a b; do echo "est_require_approval = yes" >>"$T/$x/gw.conf"; done
run_gateway a
run_gateway b
bctl() { "$IOTCTL" --dir "$T/no-pki" --registry "$T/b/registry.db" "$@"; }
TOK5="$(actl token create --device dev-ap --ttl 1h 2>/dev/null | head -1)"
TOK6="$(actl token create --device dev-dn --ttl 1h 2>/dev/null | head -1)"
wait_until 10 "gateway b to take the tokens made at a" \
  grep -q "event=est.token_imported .*device=dev-dn from=gw-a" "$T/b/gw.log"
at a
new_csr "$T/ap" dev-ap
expect_eq "dev-ap waits for an operator at a" 202 "$(est_csr simpleenroll "$T/ap" -u "dev-ap:$TOK5")"
wait_until 10 "gateway b to list dev-ap's request" \
  grep -q "event=est.request_imported device=dev-ap state=pending from=gw-a" "$T/b/gw.log"
bctl enroll list --pending | grep -q dev-ap || fail "enroll list --pending at b does not show dev-ap"
pass "the request made at a is pending at b"
expect_ok "dev-ap approved on b's host" bctl enroll approve dev-ap
wait_until 10 "gateway a to take the approval made at b" \
  grep -q "event=est.request_imported device=dev-ap state=approved from=gw-b" "$T/a/gw.log"
expect_eq "dev-ap gets its certificate at a" 200 "$(est_csr simpleenroll "$T/ap" -u "dev-ap:$TOK5")"
est_certs "$T/ap"
at b
wait_until 10 "gateway b to admit dev-ap" send_is "$T/ap" 200
expect_eq "dev-ap's lost answer at b" 200 "$(est_csr simpleenroll "$T/ap" -u "dev-ap:$TOK5")"
mkdir -p "$T/ap-again"
est_certs "$T/ap-again"
expect_eq "... is the certificate a issued" "$(openssl x509 -in "$T/ap/cert.pem" -noout -serial)" \
  "$(openssl x509 -in "$T/ap-again/cert.pem" -noout -serial)"
new_csr "$T/dn" dev-dn
expect_eq "dev-dn waits for an operator at b" 202 "$(est_csr simpleenroll "$T/dn" -u "dev-dn:$TOK6")"
wait_until 10 "gateway a to list dev-dn's request" \
  grep -q "event=est.request_imported device=dev-dn state=pending from=gw-b" "$T/a/gw.log"
expect_ok "dev-dn denied on a's host" actl enroll deny dev-dn
wait_until 10 "gateway b to take the denial made at a" \
  grep -q "event=est.request_imported device=dev-dn state=denied from=gw-a" "$T/b/gw.log"
expect_eq "dev-dn is refused at b" 403 "$(est_csr simpleenroll "$T/dn" -u "dev-dn:$TOK6")"
expect_eq "... as denied" denied "$(est_error)"

# --- no member answers ----------------------------------------------------------------
etcd_cluster_stop
at a
new_csr "$T/n3" dev-late
expect_eq "enrollment without the shared state" 503 \
  "$(est_csr simpleenroll "$T/n3" -u "dev-late:$TOK2")"
grep -qi '^retry-after: [0-9]' "$T/est.hdr" || fail "the 503 has no Retry-After: $(cat "$T/est.hdr")"
pass "the 503 carries Retry-After"
grep -q 'shared.unavailable for=enrollment' "$T/a/gw.log" || fail "no shared.unavailable line"
pass "gateway a logged shared.unavailable for enrollment"
expect_eq "the token stays unused at a" "" \
  "$(sqlite3 "$T/a/registry.db" "SELECT device FROM tokens WHERE device = 'dev-late' AND used_at IS NOT NULL AND used_at != 0")"
[ "$(metric iotgw_shared_state_errors_total)" -ge 1 ] || fail "iotgw_shared_state_errors_total"
pass "iotgw_shared_state_errors_total counts it"

finish
