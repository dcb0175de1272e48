#!/usr/bin/env bash
# Revocation that does not fail open: the real gateway, broker and
# simulator with certificates made by iotctl.
#  - registry revocations apply while the CRL file is corrupt, missing or
#    not the CA's; a CRL older than the one in force (CRL Number, then
#    thisUpdate) is refused and the newer one kept; each refusal is logged
#    (identity.crl_rejected) and counted (iotgw_crl_load_failures_total,
#    iotgw_crl_stale);
#  - the forwarder refuses a broker whose certificate the CRL lists, logs and
#    counts it, and keeps the readings queued until the broker has a valid
#    certificate again;
#  - the simulator, given --crl, refuses a gateway whose certificate is
#    revoked.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
make_pki dev-ok dev-a dev-b dev-c dev-d dev-e
cp "$P/crl.pem" "$T/crl-first.pem" # a saved copy: becomes "older" below
GW_CRL="$T/gw-crl.pem"             # the CRL file the gateway reads, put there by hand
cp "$P/crl.pem" "$GW_CRL"
SEC="$T/sec.out"
start_broker
# A security monitor's persistent session: the broker keeps the stream's
# events for it while it is away, across its own restarts.
secmon() {
  mosquitto_sub -h localhost -p "$BROKER_PORT" --cafile "$P/ca.crt" \
    --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
    -i "secmon-$$" -c -q 1 -t 'security/#' "$@"
}
secmon -E
write_gateway_config "reload_interval = 0"
sed -i "s|^crl_file = .*|crl_file = $GW_CRL|" "$T/gw.conf"
start_gateway

# status DEV VALUE: the HTTP status of one reading (000: connection refused);
# every reading gets a new sequence number.
echo 0 >"$T/seq"
status() {
  local seq=$(($(cat "$T/seq") + 1))
  echo "$seq" >"$T/seq"
  post "$1" application/json "{\"seq\":$seq,\"temperature\":$2}" | cut -d' ' -f1
}

# reload: SIGHUP, then wait (5 s at most) until the reload is done, with or
# without success.
reload() {
  local before
  before=$(($(metric iotgw_identity_reloads_total) + $(metric iotgw_identity_reload_failures_total)))
  kill -HUP "$GW_PID"
  for _ in $(seq 1 50); do
    [ $(($(metric iotgw_identity_reloads_total) + $(metric iotgw_identity_reload_failures_total))) -gt "$before" ] && return 0
    sleep 0.1
  done
  fail "the gateway did not reload within 5 s of SIGHUP"
}

expect_eq "a valid CRL: iotgw_crl_stale is 0" 0 "$(metric iotgw_crl_stale)"
expect_eq "a device is accepted" 200 "$(status dev-ok 1)"
first_number="$(metric iotgw_crl_number)"
[ "$first_number" -ge 1 ] || fail "iotgw_crl_number is not the CRL's number: '$first_number'"

# --- registry revocations while the CRL file is unusable -------------------------
# revoke_while DEV REASON: DEV is revoked in the registry while the CRL file
# is unusable; after a reload it must be refused, and the refusal of the CRL
# logged with REASON.
failures=0
revoke_while() {
  local dev="$1" reason="$2" what="$3"
  reload
  failures=$((failures + 1))
  expect_eq "$what: the CRL is refused and counted" "$failures" "$(metric iotgw_crl_load_failures_total)"
  expect_eq "$what: iotgw_crl_stale is 1" 1 "$(metric iotgw_crl_stale)"
  grep -q "event=identity.crl_rejected .*reason=$reason" "$T/gw.log" ||
    fail "$what: no identity.crl_rejected reason=$reason in the log: $(grep crl_rejected "$T/gw.log" | tail -1)"
  expect_eq "$what: $dev is accepted before its revocation" 200 "$(status "$dev" 2)"
  "$IOTCTL" --dir "$P" device revoke "$dev" >/dev/null
  reload
  failures=$((failures + 1)) # every reload refuses the file again
  expect_eq "$what: $dev revoked in the registry is refused" 000 "$(status "$dev" 3)"
  expect_eq "$what: other devices are still accepted" 200 "$(status dev-ok 4)"
}

echo 'this is not a CRL' >"$GW_CRL"
revoke_while dev-a not_a_crl "corrupt CRL"
rm -f "$GW_CRL"
revoke_while dev-b unreadable "missing CRL"
"$IOTCTL" --dir "$T/other" pki init --cn "Another Root CA" >/dev/null
cp "$T/other/crl.pem" "$GW_CRL"
revoke_while dev-c foreign_issuer "CRL of another CA"
# The same CA name with another key: only the signature tells them apart.
"$IOTCTL" --dir "$T/forged" pki init >/dev/null
cp "$T/forged/crl.pem" "$GW_CRL"
revoke_while dev-d bad_signature "CRL signed by another key"

# --- back to the current CRL ---------------------------------------------------
cp "$P/crl.pem" "$GW_CRL"
reload
expect_eq "the current CRL: iotgw_crl_stale back to 0" 0 "$(metric iotgw_crl_stale)"
current_number="$(openssl crl -in "$P/crl.pem" -noout -crlnumber | sed 's/^crlNumber=//')"
expect_eq "iotgw_crl_number is the current CRL's" "$((current_number))" "$(metric iotgw_crl_number)"
expect_eq "iotgw_crl_revoked_certificates counts the current CRL" 4 "$(metric iotgw_crl_revoked_certificates)"
next_update="$(date -d "$(openssl crl -in "$P/crl.pem" -noout -nextupdate | sed 's/^nextUpdate=//')" +%s)"
expect_eq "iotgw_crl_next_update_timestamp_seconds is its nextUpdate" "$next_update" \
  "$(metric iotgw_crl_next_update_timestamp_seconds)"

# --- an older CRL put back ----------------------------------------------------------
cp "$T/crl-first.pem" "$GW_CRL"
reload
failures=$((failures + 1))
expect_eq "an older CRL (lower CRL Number) is refused and counted" "$failures" "$(metric iotgw_crl_load_failures_total)"
grep -q "event=identity.crl_rejected .*reason=older_crl_number" "$T/gw.log" || fail "older CRL refusal not logged"
expect_eq "older CRL: iotgw_crl_stale is 1" 1 "$(metric iotgw_crl_stale)"
expect_eq "older CRL: the newer CRL stays in force (its number)" "$((current_number))" "$(metric iotgw_crl_number)"
expect_eq "older CRL: the newer CRL stays in force (its entries)" 4 "$(metric iotgw_crl_revoked_certificates)"

# A higher CRL Number but an earlier thisUpdate: signed by our CA with openssl.
: >"$T/index.txt"
echo 1000 >"$T/crlnumber"
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\n' \
  "$T/index.txt" "$T/crlnumber" >"$T/ca.cnf"
openssl ca -config "$T/ca.cnf" -gencrl -cert "$P/ca.crt" -keyfile "$P/ca.key" \
  -crl_lastupdate 20200101000000Z -crl_nextupdate 20300101000000Z -out "$GW_CRL" 2>/dev/null
reload
failures=$((failures + 1))
expect_eq "a CRL issued earlier (thisUpdate) is refused and counted" "$failures" "$(metric iotgw_crl_load_failures_total)"
grep -q "event=identity.crl_rejected .*reason=older_this_update" "$T/gw.log" || fail "earlier thisUpdate refusal not logged"
expect_eq "earlier thisUpdate: the newer CRL stays in force" "$((current_number))" "$(metric iotgw_crl_number)"
cp "$P/crl.pem" "$GW_CRL"
reload
expect_eq "the current CRL again: iotgw_crl_stale 0" 0 "$(metric iotgw_crl_stale)"

# --- the simulator checks the gateway's certificate against a CRL ---------------
sim() {
  run "$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device dev-ok --state "$T/sim" \
    --count 1 --interval 10ms --drain-timeout 2s --backoff-max 100ms -q "$@"
}
sim --crl "$P/crl.pem"
expect_eq "iotsim --crl: a gateway certificate not revoked is accepted" 0 "$RC"
"$IOTCTL" --dir "$P" cert revoke gateway >/dev/null
sim --crl "$P/crl.pem"
[ "$RC" -eq 1 ] || fail "iotsim --crl accepted a revoked gateway certificate (exit $RC): $OUT $ERR"
echo "$OUT $ERR" | grep -q "revoked" || fail "iotsim does not say the gateway's certificate is revoked: $OUT $ERR"
pass "iotsim --crl refuses the revoked gateway certificate: $(echo "$ERR" | grep -m1 revoked)"
sim
expect_eq "without --crl the simulator cannot know (documented)" 0 "$RC"
"$IOTCTL" --dir "$T/other" cert server gateway --dns localhost >/dev/null
run "$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --device dev-ok --state "$T/sim" --count 1 \
  --crl "$T/other/crl.pem"
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "not issued by the CA" ||
  fail "iotsim took a CRL of another CA (exit $RC): $ERR"
pass "iotsim --crl refuses a CRL of another CA"

# --- the forwarder checks the broker's certificate against the CRL ----------------
SUB="$T/sub.out"
start_consumer "$SUB"
sleep 0.5 # the subscription is registered before the first publish
expect_eq "before: a reading is accepted" 200 "$(status dev-e 10)"
wait_for_lines "$SUB" 1 20 || fail "the reading was not delivered while the broker's certificate is valid"
"$IOTCTL" --dir "$P" cert revoke broker >/dev/null
cp "$P/crl.pem" "$GW_CRL"
reload
# New connections use the new CRL: restart the broker so the forwarder reconnects.
stop_consumer
stop_broker
start_broker
for _ in $(seq 1 100); do
  [ "$(metric iotgw_mqtt_certificate_refused_total)" -ge 2 ] && break
  sleep 0.1
done
[ "$(metric iotgw_mqtt_certificate_refused_total)" -ge 2 ] ||
  fail "the forwarder's connections to the revoked broker were not counted: $(grep mqtt. "$T/gw.log" | tail -3)"
pass "the forwarder refuses the revoked broker, counted in iotgw_mqtt_certificate_refused_total"
grep -q 'event=mqtt.certificate_refused .*reason="certificate revoked"' "$T/gw.log" ||
  fail "the refusal is not logged as mqtt.certificate_refused certificate revoked: $(grep mqtt. "$T/gw.log" | tail -2)"
pass "the refusal is logged: $(grep -m1 'event=mqtt.certificate_refused' "$T/gw.log" | grep -o 'reason="[^"]*"')"
expect_eq "not connected to the revoked broker" 0 "$(metric iotgw_mqtt_connected)"
expect_eq "readings are still accepted" 200 "$(status dev-e 11)"
refused="$(metric iotgw_mqtt_certificate_refused_total)"
for _ in $(seq 1 100); do # one more attempt after the reading was stored
  [ "$(metric iotgw_mqtt_certificate_refused_total)" -gt "$refused" ] && break
  sleep 0.1
done
expect_eq "the reading stays queued in the outbox" 1 "$(metric iotgw_outbox_depth)"

# The broker gets a new certificate: the queued reading is delivered.
"$IOTCTL" --dir "$P" cert server broker-2 --dns localhost --ip 127.0.0.1 >/dev/null
cp "$P/servers/broker-2/cert.pem" "$P/servers/broker/cert.pem"
cp "$P/servers/broker-2/key.pem" "$P/servers/broker/key.pem"
stop_broker
start_broker
start_consumer "$SUB"
wait_for_lines "$SUB" 2 30 || fail "the queued reading was not delivered once the broker had a valid certificate"
expect_eq "the delivered reading is the queued one" 11 \
  "$(tail -1 "$SUB" | cut -d' ' -f2- | jq -r '.values[0].v')"
pass "the queued reading is delivered once the broker has a valid certificate"
expect_eq "outbox empty" 0 "$(metric iotgw_outbox_depth)"

# The security event stream, read once it could reach the broker again: the
# refused CRLs and the revoked broker's certificate, nothing lost.
# read_stream CMD...: appends what the broker kept for the monitor, then runs CMD.
read_stream() {
  secmon -v -W 2 >>"$SEC" 2>/dev/null || true
  "$@"
}
wait_until 40 "the revoked broker's certificate on the security stream" \
  read_stream stream_has mqtt.certificate_refused '.reason == "certificate revoked" and .severity == "error"'
pass "mqtt.certificate_refused arrived after the outage it caused"
for reason in older_crl_number older_this_update; do
  stream_has identity.crl_rejected ".reason == \"$reason\"" || fail "no identity.crl_rejected $reason on the stream"
done
pass "the refused CRLs are on the stream"

# --- a registry the gateway cannot read, an expired CRL ------------------------------
mv "$P/registry.db" "$T/registry.away"
reload
grep -q 'event=identity.reload_failed trigger=SIGHUP' "$T/gw.log" ||
  fail "a missing registry is not logged as identity.reload_failed: $(tail -2 "$T/gw.log")"
expect_eq "a failed reload keeps the registry in force" 200 "$(status dev-ok 12)"
mv "$T/registry.away" "$P/registry.db"
# The CA's CRL, newer than the one in force, whose nextUpdate is already
# past. The forwarders check the broker against it too, so they refuse
# the broker until a valid CRL is back: the event arrives then.
now="$(date -u +%Y%m%d%H%M%SZ)"
openssl ca -config "$T/ca.cnf" -gencrl -cert "$P/ca.crt" -keyfile "$P/ca.key" \
  -crl_lastupdate "$now" -crl_nextupdate "$now" -out "$GW_CRL" 2>/dev/null
reload
grep -q 'event=identity.crl_expired' "$T/gw.log" || fail "an expired CRL is not logged as identity.crl_expired"
pass "an expired CRL is logged"
openssl ca -config "$T/ca.cnf" -gencrl -cert "$P/ca.crt" -keyfile "$P/ca.key" \
  -crl_lastupdate "$now" -crl_nextupdate 20300101000000Z -out "$GW_CRL" 2>/dev/null
reload
expect_eq "a valid CRL again: iotgw_crl_stale 0" 0 "$(metric iotgw_crl_stale)"
wait_until 30 "the failed reload on the security stream" \
  read_stream stream_has identity.reload_failed '.severity == "error" and (.log | contains("trigger=SIGHUP")) and .reason != null'
pass "identity.reload_failed on the stream"
wait_until 20 "the expired CRL on the security stream" \
  read_stream stream_has identity.crl_expired '.severity == "critical" and (.log | contains("path="))'
pass "identity.crl_expired on the stream"
expect_stream_valid

stop_gateway
finish
