#!/usr/bin/env bash
# Factory reset on the simulator (iotd/reset.h over the POSIX port): a
# device that enrolled from a token and holds readings it could not send
# forgets its key, certificate, readings and state; afterwards it cannot
# speak to the gateway until it is enrolled again. A reset cut short
# (power lost after its marker was stored) is finished at the next start,
# before the device does anything else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/est_lib.sh"

IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
STATE="$T/state"

est_pki
start_broker
est_config
start_gateway
SIM=("$IOTSIM" --gateway "https://localhost:$GW_PORT" --ca "$P/ca.crt" --interval 100ms
  --backoff-max 1s --timeout 5s --state "$STATE" --updates off)

expect_fail "--factory-reset needs a device" 2 "needs --device" "$IOTSIM" --factory-reset --state "$STATE"

# --- a device with a key, a certificate and queued readings -------------------------------
for d in sim-1 sim-2; do
  expect_ok "$d enrolls and publishes" "${SIM[@]}" --enroll-token "$(token $d)" --device $d --count 3
done
grep -q "PRIVATE KEY" "$STATE/sim-1/device.pem" || fail "sim-1 holds no key"
stop_gateway
run "${SIM[@]}" --enroll-tokens /dev/null --device sim-1 --count 4 --drain-timeout 1s
[ "$(ls "$STATE/sim-1" | grep -c '\.kv$')" -gt 2 ] || fail "no queued readings in $STATE/sim-1: $(ls "$STATE/sim-1")"
[ -s "$STATE/sim-1/tls-session" ] || fail "sim-1 keeps no TLS session: $(ls "$STATE/sim-1")"
pass "sim-1 holds a key, a certificate, a TLS session and readings it could not send"

# --- the reset --------------------------------------------------------------------------
expect_ok "factory reset" "$IOTSIM" --factory-reset --state "$STATE" --device sim-1
echo "$OUT" | grep -q "^sim-1: factory reset: keys, certificates, readings and state erased" ||
  fail "no confirmation: $OUT"
expect_eq "only the lock file is left" "lock" "$(ls -A "$STATE/sim-1" | tr '\n' ' ' | sed 's/ $//')"
[ -z "$(grep -rl "PRIVATE KEY\|CERTIFICATE" "$STATE/sim-1" 2>/dev/null)" ] || fail "key material left"
expect_ok "a reset of a reset device" "$IOTSIM" --factory-reset --state "$STATE" --device sim-1
start_gateway
run "${SIM[@]}" --enroll-tokens /dev/null --device sim-1 --count 1
[ "$RC" -ne 0 ] || fail "a reset device still ran: $OUT"
echo "$ERR" | grep -q "sim-1: no certificate in .* and nothing to enroll with" || fail "no reason given: $ERR"
expect_eq "the gateway saw no reading from the reset device" 0 \
  "$(grep -c 'event=reading.duplicate device=sim-1\|device=sim-1.*stored' "$T/gw.log" || true)"
pass "after the reset the device has nothing to speak with"

# --- a reset cut short --------------------------------------------------------------------
grep -q "PRIVATE KEY" "$STATE/sim-2/device.pem" || fail "sim-2 holds no key"
printf R >"$STATE/sim-2/reset.kv" # power lost just after the marker was stored
run "${SIM[@]}" --enroll-tokens /dev/null --device sim-2 --count 1
echo "$ERR" | grep -q "sim-2: reset.done" || fail "the pending reset was not finished: $ERR"
[ ! -e "$STATE/sim-2/device.pem" ] || fail "sim-2's key survived the pending reset"
[ "$RC" -ne 0 ] || fail "sim-2 ran after its reset: $OUT"
pass "a reset cut short is finished at the next start"
finish
