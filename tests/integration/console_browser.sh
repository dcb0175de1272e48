#!/usr/bin/env bash
# The fleet console in a real browser (console_browser.py: headless
# Chromium and Selenium) against a real gateway, Mosquitto and three
# simulated devices (iotsim): refused without credentials, log in, the
# right number of devices, a revocation shown within seconds, a live value
# changing, a rollout paused and found in the audit log, page weight.
# Screenshots: $IOT_BUILD_DIR/test-artifacts/console/*.png.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
. "$(dirname "$0")/console_lib.sh"

[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] ||
  fail "chromium and chromium-driver are needed (scripts/install-deps.sh)"

make_pki sim-1 sim-2 sim-3
console_pki
for d in sim-1 sim-2 sim-3; do "$IOTCTL" --dir "$P" device set-class "$d" sensor >/dev/null; done
BROKER_ACL="$IOT_SOURCE_DIR/deploy/broker/acl"
start_broker
admin_token
write_gateway_config "rate_limit = 0"
echo "admin_token_file = $T/admin.token" >>"$T/gw.conf"
start_gateway

DB="$T/rollouts.db"
"$IOTCTL" --dir "$P" firmware key create --name rel >/dev/null
head -c 5000 /dev/urandom >"$T/img.bin"
"$IOTCTL" --dir "$P" firmware sign --image "$T/img.bin" --vendor acme --class sensor \
  --version 2.0.0 --secure-version 1 --key rel --out "$T/m" >/dev/null
"$IOTCTL" --dir "$P" firmware add --manifest "$T/m" --image "$T/img.bin" >/dev/null
"$IOTCTL" --dir "$P" rollout create r-2 --firmware 2.0.0 --devices sim-1,sim-3 --db "$DB" >/dev/null

spawn "$IOT_BUILD_DIR/tools/iotsim" --gateway "https://localhost:$GW_PORT" --pki "$P" \
  --devices 3 --interval 1s --backoff-max 2s --updates off --state "$T/sim" -q \
  >"$T/sim.log" 2>&1

write_console_config "rollouts = $DB"
start_console

SPKI="$(openssl x509 -in "$P/servers/console/cert.pem" -pubkey -noout |
  openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)"
ART="$IOT_BUILD_DIR/test-artifacts/console"
rm -rf "$ART"
mkdir -p "$ART" "$T/profile"
ORIGIN="$ORIGIN" SPKI="$SPKI" PASSWORD="$CONSOLE_PASSWORD" ART="$ART" IOTCTL="$IOTCTL" \
  PKI="$P" PROFILE="$T/profile" DEVICES=3 \
  /usr/bin/python3 "$(dirname "$0")/console_browser.py" </dev/null >"$T/browser.out" 2>&1 &
BROWSER_PID=$!
_PIDS+=("$BROWSER_PID")
set +e
wait "$BROWSER_PID"
rc=$?
set -e
cat "$T/browser.out"
[ "$rc" -eq 0 ] || fail "the browser test failed (exit $rc); screenshots in $ART"
pass "the browser test ($(grep -c '^ok - ' "$T/browser.out") checks)"
finish
