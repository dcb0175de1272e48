#!/usr/bin/env bash
# The broker configuration of deploy/broker against Debian's Mosquitto 2.0.11:
# TLS-only listener with client certificates, the TLS floor and cipher list,
# the per-identity ACL (gateway, consumers, devices, and devices enrolled
# under a client's name), retained messages and wills, one session per
# identity, the packet size limit, adding a consumer, and revocation through
# the CRL (SIGHUP and restart).
#
# The broker runs with deploy/broker/mosquitto.conf itself, unchanged: its
# paths are relative and resolve from the working directory, here a scratch
# tree laid out like the container's /, and its listener is port 8883 on all
# interfaces. So the test re-runs itself in a network namespace of its own,
# where 8883 is always free and the only interface is loopback.
set -euo pipefail

if [ -z "${IOT_BROKER_NETNS:-}" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "broker_acl: needs root to create its own network namespace" >&2
    exit 1
  fi
  IOT_BROKER_NETNS=1 exec unshare --net -- bash "${BASH_SOURCE[0]}" "$@"
fi

. "$(dirname "$0")/lib.sh"
ip link set lo up

CONF="$IOT_SOURCE_DIR/deploy/broker/mosquitto.conf"
ACL="$IOT_SOURCE_DIR/deploy/broker/acl"
P="$T/pki"       # the system's PKI
Q="$T/pki-early" # the same PKI as it was before its client certificates
F="$T/foreign"   # another CA, trusted by nobody
R="$T/root"      # the broker's working directory, like / in the container
B="$R/mosquitto"
LOG="$T/broker.log"
GW=gateway-mqtt  # the gateway's MQTT identity, named in the ACL
CONSUMER=dashboard
ctl() { "$IOTCTL" --dir "$P" "$@"; }

# --- PKI and the broker's file tree -----------------------------------------
ctl pki init >/dev/null
ctl cert server broker --dns localhost --ip 127.0.0.1 >/dev/null
# The PKI before the gateway's and the consumer's certificates were made; in
# this copy, devices were enrolled under their names (iotctl refuses that
# once the client certificates exist). Same CA, so the broker trusts them.
cp -a "$P" "$Q"
"$IOTCTL" --dir "$Q" device add "$CONSUMER" >/dev/null
"$IOTCTL" --dir "$Q" device add "$GW" >/dev/null
ctl cert client "$GW" --role gateway >/dev/null
ctl cert client "$CONSUMER" --role consumer >/dev/null
ctl device add dev-001 >/dev/null
"$IOTCTL" --dir "$F" pki init >/dev/null
"$IOTCTL" --dir "$F" cert client "$CONSUMER" --role consumer >/dev/null

mkdir -p "$B/config" "$B/certs" "$B/data"
cp "$ACL" "$B/config/acl"
cp "$P/ca.crt" "$B/certs/ca.pem"
cp "$P/servers/broker/cert.pem" "$P/servers/broker/key.pem" "$B/certs/"
cp "$P/crl.pem" "$B/certs/crl.pem"
# As root, mosquitto drops to the mosquitto user after binding; like the
# official image, which chowns /mosquitto, give it its tree. It then reads
# the ACL and the CRL again on SIGHUP and writes the persistence file.
chmod 0600 "$B/config/acl" "$B/certs/key.pem"
chown -R mosquitto:mosquitto "$B"
chmod 711 "$T"

start_broker() {
  local m
  m="$(mark)"
  spawn env -C "$R" mosquitto -c "$CONF" 2>>"$LOG"
  BROKER=$LAST_PID
  wait_log "$m" " running" 10 || fail "broker did not start: $(tail -5 "$LOG")"
}
stop_broker() {
  kill "$BROKER"
  wait "$BROKER" 2>/dev/null || true
}

# Broker log: mark gives the current end, since MARK what came after it.
mark() { if [ -f "$LOG" ]; then wc -l <"$LOG"; else echo 0; fi; }
since() { tail -n "+$(($1 + 1))" "$LOG"; }
# wait_log MARK STRING [SECONDS]: until the broker logs STRING after MARK.
wait_log() {
  local m="$1" s="$2" deadline=$((SECONDS + ${3:-5}))
  until since "$m" | grep -qF -- "$s"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
expect_log() {
  wait_log "$1" "$3" "${4:-5}" || fail "$2: broker did not log '$3'; log since: $(since "$1")"
  pass "$2"
}
# wait_line FILE LINE [SECONDS]: until FILE holds LINE, a whole line.
wait_line() {
  local deadline=$((SECONDS + ${3:-5}))
  until grep -qxF -- "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# mqtt TOOL WHO ARGS...: a mosquitto client with WHO's certificate;
# bg_mqtt the same in the background (its pid in LAST_PID). WHO is a client
# name, a device ID dev-*, or early:ID for a device of $Q.
cert_dir() {
  case "$1" in
    early:*) echo "$Q/devices/${1#early:}" ;;
    dev-*) echo "$P/devices/$1" ;;
    *) echo "$P/clients/$1" ;;
  esac
}
tls_of() {
  local d
  d="$(cert_dir "$1")"
  TA=(-h localhost -p 8883 --cafile "$P/ca.crt" --cert "$d/cert.pem" --key "$d/key.pem")
}
# user_of WHO: WHO's username at the broker, the subject of its certificate
# as Mosquitto prints it (RFC 2253).
user_of() {
  openssl x509 -in "$(cert_dir "$1")/cert.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'
}
mqtt() {
  local tool="$1"
  tls_of "$2"
  shift 2
  "$tool" "${TA[@]}" "$@"
}
bg_mqtt() {
  local tool="$1"
  tls_of "$2"
  shift 2
  spawn "$tool" "${TA[@]}" "$@"
}
# publish_denied WHAT WHO ARGS...: an MQTT v5 QoS 1 publish that the broker
# answers with reason code 135 (not authorized) in its PUBACK.
publish_denied() {
  local what="$1" who="$2"
  shift 2
  run mqtt mosquitto_pub "$who" -V 5 -q 1 -d "$@"
  echo "$OUT" | grep -q "received PUBACK (Mid: 1, RC:135)" ||
    fail "$what: expected PUBACK RC:135 (not authorized); exit $RC, out: $OUT, err: $ERR"
  pass "$what"
}
publish_ok() {
  local what="$1" who="$2"
  shift 2
  run mqtt mosquitto_pub "$who" -V 5 -q 1 -d "$@"
  [ "$RC" -eq 0 ] && echo "$OUT" | grep -Eq "received PUBACK \(Mid: 1, RC:(0|16)\)" ||
    fail "$what: expected an accepted PUBACK; exit $RC, out: $OUT, err: $ERR"
  pass "$what"
}
# marker FILE TEXT: the gateway publishes a reading TEXT and FILE (a
# subscriber's output) receives it. Everything published before it has
# reached that subscriber by then, if it was going to.
marker() {
  publish_ok "gateway publishes $2" "$GW" -t telemetry/dev-001/telemetry -m "$2"
  wait_line "$1" "telemetry/dev-001/telemetry $2" 5 || fail "subscriber did not receive $2: $(cat "$1")"
}
absent() {
  local what="$1" file="$2" s="$3"
  ! grep -qF -- "$s" "$file" || fail "$what: '$s' was delivered: $(cat "$file")"
  pass "$what"
}
# subscriber OUT WHO ARGS...: a QoS 1 subscriber in the background, ready
# once the broker has logged its last subscription.
subscriber() {
  local out="$1" who="$2" m last
  shift 2
  m="$(mark)"
  last="${*: -1}"
  bg_mqtt mosquitto_sub "$who" -q 1 -v "$@" >"$out" 2>&1
  SUB=$LAST_PID
  wait_log "$m" "$(user_of "$who") 1 $last" 5 || fail "subscriber $who did not subscribe: $(since "$m")"
}
stop() {
  kill "${2:--TERM}" "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
# tls_probe ARGS...: a TLS handshake (openssl s_client) with the consumer's
# certificate; prints the negotiated "New, ..." line and any alert.
tls_probe() {
  local d="$P/clients/$CONSUMER"
  timeout 10 openssl s_client -connect 127.0.0.1:8883 -servername localhost \
    -CAfile "$P/ca.crt" -cert "$d/cert.pem" -key "$d/key.pem" "$@" </dev/null 2>&1 |
    grep -E "^New, |alert" || true
}
# tls_session FILE ARGS...: like tls_probe, keeping the connection open for
# a second so that a TLS 1.3 session ticket arrives; resumes the session in
# FILE if it exists and saves the new one there. Prints "New, ..." or
# "Reused, ..." and any alert.
tls_session() {
  local d="$P/clients/$CONSUMER" f="$1" in=()
  shift
  [ -s "$f" ] && in=(-sess_in "$f")
  sleep 1 | timeout 10 openssl s_client -connect 127.0.0.1:8883 -servername localhost \
    -CAfile "$P/ca.crt" -cert "$d/cert.pem" -key "$d/key.pem" "${in[@]}" -sess_out "$f.new" "$@" 2>&1 |
    grep -E "^(New|Reused), |alert" || true
  mv -f "$f.new" "$f" 2>/dev/null || true
}

GW_USER="$(user_of "$GW")"
CONSUMER_USER="$(user_of "$CONSUMER")"
expect_eq "the gateway's username is its subject, with its role" "CN=$GW,OU=gateway,O=IoT Telemetry" "$GW_USER"
grep -qxF "user $GW_USER" "$ACL" || fail "the ACL does not name the gateway identity '$GW_USER'"
grep -qxF "user $CONSUMER_USER" "$ACL" || fail "the ACL does not name the consumer '$CONSUMER_USER'"
pass "the ACL names the gateway and the consumer by subject"

# --- the listener -----------------------------------------------------------
start_broker
expect_log 0 "broker runs with the repository's file" "Config loaded from $CONF."
expect_eq "the only listening port is 8883" "8883" \
  "$(ss -Hltn | awk '{ sub(/.*:/, "", $4); print $4 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"

m="$(mark)"
reply="$(
  exec 3<>/dev/tcp/127.0.0.1/8883
  printf '\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00' >&3
  timeout 3 od -An -tx1 <&3 2>/dev/null || true
)"
expect_eq "plaintext MQTT CONNECT gets no CONNACK" "" "$(echo "$reply" | tr -d ' \n')"
expect_log "$m" "broker logs the plaintext attempt as a failed TLS handshake" "wrong version number"

m="$(mark)"
run mosquitto_pub -h localhost -p 8883 --cafile "$P/ca.crt" -i anon -q 1 -t telemetry/dev-001/telemetry -m anon
[ "$RC" -ne 0 ] || fail "a client without certificate could publish"
expect_log "$m" "a client without certificate is refused" "peer did not return a certificate"

m="$(mark)"
run mosquitto_pub -h localhost -p 8883 --cafile "$P/ca.crt" --cert "$F/clients/$CONSUMER/cert.pem" \
  --key "$F/clients/$CONSUMER/key.pem" -d -q 1 -t telemetry/dev-001/telemetry -m foreign
[ "$RC" -ne 0 ] || fail "a certificate of another CA was accepted"
expect_log "$m" "a client certificate of another CA is refused" "certificate verify failed"

m="$(mark)"
expect_eq "TLS 1.1 is refused" "New, (NONE), Cipher is (NONE)" "$(tls_probe -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' | grep '^New')"
expect_log "$m" "broker logs the TLS 1.1 attempt" "unsupported protocol"
expect_eq "TLS 1.2 with an AEAD suite works" "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" \
  "$(tls_probe -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256)"
expect_eq "TLS 1.2 with ChaCha20-Poly1305 works" "New, TLSv1.2, Cipher is ECDHE-ECDSA-CHACHA20-POLY1305" \
  "$(tls_probe -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305)"
for c in ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES256-SHA; do
  m="$(mark)"
  got="$(tls_probe -tls1_2 -cipher "$c:@SECLEVEL=0" | grep '^New')"
  expect_eq "TLS 1.2 with CBC suite $c is refused" "New, (NONE), Cipher is (NONE)" "$got"
  expect_log "$m" "broker logs no shared cipher for $c" "no shared cipher"
done
expect_eq "TLS 1.3 works" "New, TLSv1.3, Cipher is TLS_AES_128_GCM_SHA256" "$(tls_probe -tls1_3)"

# --- gateway and consumer ---------------------------------------------------
W1="$T/consumer.out"
subscriber "$W1" "$CONSUMER" -t 'telemetry/+/telemetry' -t 'gateway/+/status' -t 'gateway/+/events'
W1_PID=$SUB

m="$(mark)"
publish_ok "gateway publishes a reading at QoS 1" "$GW" -i gw-chosen-id -t telemetry/dev-001/telemetry -m '{"seq":1,"temperature":21.5}'
wait_line "$W1" 'telemetry/dev-001/telemetry {"seq":1,"temperature":21.5}' 5 ||
  fail "consumer did not receive the reading: $(cat "$W1")"
pass "consumer receives the gateway's reading"
expect_log "$m" "the client id is the certificate's subject, not the one the client sent" \
  "as $GW_USER (p5, c1, k60, u'$GW_USER')"
since "$m" | grep -qF "as gw-chosen-id" && fail "broker kept the client's own id"

publish_ok "gateway publishes its retained status" "$GW" -r -t "gateway/$GW/status" -m online
publish_ok "gateway publishes an event" "$GW" -t "gateway/$GW/events" -m '{"event":"started"}'
wait_line "$W1" "gateway/$GW/status online" 5 || fail "consumer did not receive the status: $(cat "$W1")"
wait_line "$W1" "gateway/$GW/events {\"event\":\"started\"}" 5 || fail "consumer did not receive the event"
pass "consumer receives the gateway's status and events"

publish_denied "gateway cannot publish to other/x" "$GW" -t other/x -m gw-other
publish_denied "gateway cannot publish to telemetry/x/other" "$GW" -t telemetry/dev-001/other -m gw-wrong-leaf
publish_denied "gateway cannot publish below a reading topic" "$GW" -t telemetry/dev-001/telemetry/x -m gw-deeper
# Mosquitto refuses client publishes under $SYS whatever the ACL says.
publish_denied "gateway cannot publish to \$SYS" "$GW" -t '$SYS/broker/uptime' -m gw-sys
publish_denied "gateway cannot publish another gateway's status" "$GW" -t gateway/other-gw/status -m gw-forged-status
publish_denied "gateway cannot publish another gateway's events" "$GW" -t gateway/other-gw/events -m gw-forged-event
marker "$W1" marker-1
absent "no denied gateway publish reached the consumer" "$W1" "gw-forged"

# The gateway subscribes to the reading topic and publishes to it in one
# session (mosquitto_rr): with read access it would get its own message.
run mqtt mosquitto_rr "$GW" -V 5 -q 1 -W 2 -t telemetry/dev-001/telemetry -e telemetry/dev-001/telemetry -m rr-probe
[ "$RC" -ne 0 ] && [ -z "$OUT" ] || fail "gateway read its own reading back: exit $RC, out: $OUT"
wait_line "$W1" "telemetry/dev-001/telemetry rr-probe" 5 || fail "the probe reading was not published"
pass "gateway cannot read the readings it publishes"
run mqtt mosquitto_sub "$GW" -q 1 -v -W 1 -t '#' -t '$SYS/#'
expect_eq "gateway subscribed to # gets nothing, not even the retained status" "" \
  "$(echo "$OUT" | grep -v '^Timed out$' || true)"

m="$(mark)"
head -c 70000 /dev/zero | tr '\0' a >"$T/big"
run mqtt mosquitto_pub "$GW" -q 1 -t telemetry/dev-001/telemetry -f "$T/big"
[ "$RC" -ne 0 ] || fail "a 70000-byte publish was accepted"
expect_log "$m" "a packet over max_packet_size disconnects its sender" "disconnected due to oversize packet"
marker "$W1" marker-2
absent "the oversize message reached nobody" "$W1" "aaaaaaaaaaaaaaaa"

# --- devices ----------------------------------------------------------------
# dev-001 also asks for the consumer's client id: it must not take over the
# consumer's session.
DEV="$T/device.out"
m="$(mark)"
subscriber "$DEV" dev-001 -i "$CONSUMER_USER" -t '#'
DEV_PID=$SUB
DEV_USER="$(user_of dev-001)"
expect_log "$m" "device connects under its own id, whatever id it sends" "as $DEV_USER (p2, c1, k60, u'$DEV_USER')"
marker "$W1" marker-3
since "$m" | grep -qF "already connected" && fail "the device took over another session: $(since "$m")"
pass "the device did not take over the consumer's session"
sleep 0.5
expect_eq "device subscribed to # received nothing, not even the retained status" "" "$(cat "$DEV")"
# Stopped first: the device's publishes below would take over its session.
stop "$DEV_PID"
publish_denied "device cannot publish its own reading topic" dev-001 -t telemetry/dev-001/telemetry -m device-forged-reading
publish_denied "device cannot publish a gateway status" dev-001 -r -t "gateway/$GW/status" -m device-forged-status
marker "$W1" marker-4
absent "no device publish reached the consumer" "$W1" "device-forged"

# --- devices enrolled under the consumer's and the gateway's names -----------
# The ACL grants rights to a name with its role (OU). A device called
# "dashboard" has the consumer's CN but OU=device: it may not read, and it
# does not take over the consumer's session; one called "gateway-mqtt" may
# not write.
EARLY="$T/early-dashboard.out"
m="$(mark)"
subscriber "$EARLY" "early:$CONSUMER" -t 'telemetry/+/telemetry' -t 'gateway/+/status' -t '#'
EARLY_PID=$SUB
expect_log "$m" "the device named $CONSUMER connects as a device" \
  "u'CN=$CONSUMER,OU=device,O=IoT Telemetry'"
marker "$W1" marker-early
since "$m" | grep -qF "already connected" && fail "the device named $CONSUMER took over a session: $(since "$m")"
pass "the device named $CONSUMER did not take over the consumer's session"
sleep 0.5
expect_eq "a device named $CONSUMER receives no reading and no status" "" "$(cat "$EARLY")"
stop "$EARLY_PID"
publish_denied "a device named $GW cannot publish a reading" "early:$GW" \
  -t telemetry/dev-001/telemetry -m early-forged-reading
publish_denied "a device named $GW cannot publish the gateway's status" "early:$GW" \
  -r -t "gateway/$GW/status" -m early-forged-status
marker "$W1" marker-early-2
absent "nothing the device named $GW sent reached the consumer" "$W1" "early-forged"

# --- a second client with the gateway's identity ----------------------------
# The client id is the CN, so whatever id it sends, a second client with the
# gateway's certificate takes over the first session, and the broker says so.
GA="$T/gateway-a.out"
m="$(mark)"
bg_mqtt mosquitto_sub "$GW" -i gw-a -q 1 -d -t none >"$GA" 2>&1
GA_PID=$LAST_PID
wait_log "$m" "$GW_USER 1 none" 5 || fail "first gateway session did not start: $(since "$m")"
m="$(mark)"
publish_ok "a second gateway client with another id connects" "$GW" -i gw-b -t telemetry/dev-001/telemetry -m takeover
expect_log "$m" "the broker logs the takeover of the gateway's session" \
  "Client $GW_USER already connected, closing old connection."
stop "$GA_PID"

# --- adding a consumer, as docs/deploy.md describes -------------------------
ctl cert client reports --role consumer >"$T/reports.issued"
REPORTS_USER="$(user_of reports)"
grep -qxF "  broker ACL   user $REPORTS_USER" "$T/reports.issued" ||
  fail "iotctl cert client does not print the ACL user line: $(cat "$T/reports.issued")"
pass "iotctl cert client prints the broker ACL's user line"
{
  echo
  sed -n "/^user $CONSUMER_USER\$/,/^\$/p" "$ACL" | sed "s/^user $CONSUMER_USER\$/user $REPORTS_USER/"
} >>"$B/config/acl"
expect_eq "the deployed ACL is unchanged above the added consumer" "" \
  "$(head -n "$(wc -l <"$ACL")" "$B/config/acl" | diff - "$ACL" || true)"
expect_eq "the added block is the consumer's block under the new name" \
  "$(sed -n "/^user $CONSUMER_USER\$/,/^\$/p" "$ACL" | sed 1d)" \
  "$(tail -n +"$(($(wc -l <"$ACL") + 1))" "$B/config/acl" | sed -n "/^user $REPORTS_USER\$/,\$p" | sed 1d)"
W2="$T/reports.out"
subscriber "$W2" reports -t 'telemetry/+/telemetry' -t 'gateway/+/status'
W2_PID=$SUB
marker "$W1" marker-5
sleep 0.5
absent "a consumer not yet in the loaded ACL receives nothing" "$W2" "marker-5"
m="$(mark)"
kill -HUP "$BROKER"
expect_log "$m" "SIGHUP reloads the configuration" "Reloading config."
marker "$W2" marker-6
pass "after SIGHUP the new consumer's open subscription receives readings"
stop "$W1_PID"

# --- consumer abuse: publish, retain, will ----------------------------------
publish_denied "consumer cannot publish a reading" "$CONSUMER" -t telemetry/dev-001/telemetry -m forged-reading
publish_denied "consumer cannot retain a reading" "$CONSUMER" -r -t telemetry/dev-001/telemetry -m forged-retained
publish_denied "consumer cannot set the gateway's status" "$CONSUMER" -r -t "gateway/$GW/status" -m forged-offline
publish_denied "consumer cannot publish gateway events" "$CONSUMER" -t "gateway/$GW/events" -m forged-event
publish_denied "a username sent by the client does not count, the certificate does" "$CONSUMER" \
  -u "$GW_USER" -P any -t telemetry/dev-001/telemetry -m forged-username
# Mosquitto 2.0.11 accepts the CONNECT with any will and checks the ACL
# when it publishes the will; kill -9 makes it publish.
m="$(mark)"
bg_mqtt mosquitto_sub "$CONSUMER" -q 1 -k 5 -t none \
  --will-topic telemetry/dev-001/telemetry --will-payload forged-will --will-retain --will-qos 1 >/dev/null 2>&1
wait_log "$m" "$CONSUMER_USER 1 none" 5 || fail "consumer with a will did not connect"
stop "$LAST_PID" -KILL
expect_log "$m" "the consumer with a will is gone" "Client $CONSUMER_USER closed its connection."
m="$(mark)"
bg_mqtt mosquitto_sub "$GW" -q 1 -k 5 -t none \
  --will-topic "gateway/$GW/status" --will-payload offline --will-retain --will-qos 1 >/dev/null 2>&1
wait_log "$m" "$GW_USER 1 none" 5 || fail "gateway with a will did not connect"
stop "$LAST_PID" -KILL
wait_line "$W2" "gateway/$GW/status offline" 5 || fail "the gateway's will did not arrive: $(cat "$W2")"
pass "the gateway's will (retained status offline) reaches consumers"
marker "$W2" marker-7
absent "no forged message, retained message or will reached a consumer" "$W2" "forged"
stop "$W2_PID"
run mqtt mosquitto_sub "$CONSUMER" -q 1 -v -W 1 --retained-only -t 'telemetry/+/telemetry' -t 'gateway/+/status'
expect_eq "the only retained message is the gateway's own status" "gateway/$GW/status offline" \
  "$(echo "$OUT" | grep -v '^Timed out$' || true)"

# --- revocation -------------------------------------------------------------
LIVE="$T/live.out"
subscriber "$LIVE" "$CONSUMER" -t 'telemetry/+/telemetry'
LIVE_PID=$SUB
# TLS sessions saved before the revocation, checked to resume at all.
for v in 1_2 1_3; do
  tls_session "$T/sess$v" "-tls$v" >/dev/null
  expect_eq "a TLS ${v/_/.} session of the consumer resumes before the revocation" Reused \
    "$(tls_session "$T/sess$v" "-tls$v" | grep -o '^Reused' || true)"
done
ctl cert revoke "$CONSUMER" >/dev/null
install -m 0644 -o mosquitto -g mosquitto "$P/crl.pem" "$B/certs/crl.pem"
# A bare TLS handshake (no MQTT CONNECT) so as not to take over LIVE.
expect_eq "before reload the broker still uses the old CRL" "" "$(tls_probe -tls1_2 | grep alert || true)"
m="$(mark)"
kill -HUP "$BROKER"
wait_log "$m" "Reloading config." 5 || fail "broker did not reload"
expect_eq "after SIGHUP the revoked certificate gets the alert 'certificate revoked'" "1" \
  "$(tls_probe -tls1_2 | grep -c 'alert certificate revoked' || true)"
# Resuming skips certificate verification, so a session from before the
# revocation must not resume once the CRL is reloaded.
for v in 1_2 1_3; do
  out="$(tls_session "$T/sess$v" "-tls$v")"
  ! echo "$out" | grep -q '^Reused' || fail "TLS ${v/_/.}: a session from before the revocation resumed after SIGHUP: $out"
  echo "$out" | grep -q 'alert certificate revoked' ||
    fail "TLS ${v/_/.}: resuming an old session did not end in 'certificate revoked': $out"
  pass "TLS ${v/_/.}: a session saved before the revocation does not resume after SIGHUP"
done
m="$(mark)"
run mqtt mosquitto_pub "$CONSUMER" -d -q 1 -t telemetry/dev-001/telemetry -m revoked
[ "$RC" -ne 0 ] || fail "revoked consumer could publish: $OUT $ERR"
expect_log "$m" "revoked consumer is refused after SIGHUP" "certificate verify failed"
marker "$LIVE" marker-8
pass "a session opened before the revocation stays open after SIGHUP"

m="$(mark)"
stop_broker
start_broker
expect_log "$m" "the revoked consumer's reconnect is refused after restart" "certificate verify failed" 10
publish_ok "gateway publishes after restart" "$GW" -t telemetry/dev-001/telemetry -m marker-9
sleep 0.5
absent "the revoked consumer receives nothing after restart" "$LIVE" "marker-9"
stop "$LIVE_PID"
run mqtt mosquitto_sub reports -q 1 -v -W 1 --retained-only -t 'gateway/+/status'
expect_eq "retained status survives the restart (persistence)" "gateway/$GW/status offline" \
  "$(echo "$OUT" | grep -v '^Timed out$' || true)"
# A CRL past its next-update time fails every handshake: iotctl crl update
# must run in time. openssl ca signs one that expired in 2020.
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\n' \
  "$T/index.txt" "$T/crlnumber" >"$T/ca.cnf"
: >"$T/index.txt"
echo 1000 >"$T/crlnumber"
openssl ca -config "$T/ca.cnf" -gencrl -cert "$P/ca.crt" -keyfile "$P/ca.key" \
  -crl_lastupdate 20200101000000Z -crl_nextupdate 20200102000000Z -out "$T/expired-crl.pem" 2>/dev/null
install -m 0644 -o mosquitto -g mosquitto "$T/expired-crl.pem" "$B/certs/crl.pem"
m="$(mark)"
kill -HUP "$BROKER"
wait_log "$m" "Reloading config." 5 || fail "broker did not reload"
m="$(mark)"
run mqtt mosquitto_pub "$GW" -q 1 -t telemetry/dev-001/telemetry -m expired-crl
[ "$RC" -ne 0 ] || fail "the gateway connected although the CRL has expired"
expect_log "$m" "an expired CRL locks out every client, the gateway too" "certificate verify failed"

expect_eq "the broker logged no configuration or file errors" "" \
  "$(grep -E "Error|Warning|Unable" "$LOG" | grep -v "OpenSSL Error" || true)"

finish
