#!/usr/bin/env bash
# The README's first command: it builds, starts broker, gateway, simulated
# devices and a consumer, shows readings from every device, and Ctrl-C
# (SIGINT) stops everything it started. Run twice: the second run continues,
# and between the runs the README's firmware rollout is made: the second
# run ends with both devices on the new version.
. "$(dirname "$0")/lib.sh"

export DEMO_STATE="$T/demo" DEMO_GATEWAY_PORT="$(free_port)" DEMO_BROKER_PORT="$(free_port)" \
  DEMO_ADMIN_PORT="$(free_port)" DEMO_CONSOLE_PORT="$(free_port)"

run_demo() {
  # setsid: the demo gets its own process group, as in a terminal.
  timeout -s INT -k 20 "$1" setsid "$IOT_SOURCE_DIR/scripts/demo.sh" --devices 2 --interval 1s \
    >"$T/demo.out" 2>&1 || true
}

# The demo builds build/release first; build it here, outside the timed
# runs, so that a slow first build does not eat the time meant for readings.
(cd "$IOT_SOURCE_DIR" &&
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOT_BUILD_TESTS=OFF >/dev/null &&
  cmake --build build/release --target iotctl iotgw iotsim >/dev/null) || fail "building build/release failed"

run_demo 25
for dev in demo-sensor-1 demo-sensor-2; do
  grep -Eq "^    [0-9:]{8}  $dev +temperature=[-0-9.]+ Cel .* [0-9.]+ ms$" "$T/demo.out" ||
    fail "no reading line from $dev: $(tail -20 "$T/demo.out")"
done
pass "readings from every device are shown with their latency"
grep -q "^==> fleet console: https://localhost:$DEMO_CONSOLE_PORT " "$T/demo.out" ||
  fail "the fleet console was not started: $(grep -i console "$T/demo.out")"
jq -s -e 'map(select(.event == "console.started")) | length == 1' "$DEMO_STATE/iotconsole.log" \
  >/dev/null || fail "iotconsole did not start: $(tail -3 "$DEMO_STATE/iotconsole.log")"
expect_eq "the console's operator password is drawn, not a default, and private" 600 \
  "$(file_mode "$DEMO_STATE/console-password")"
grep -q "^stopped; state kept in $DEMO_STATE" "$T/demo.out" || fail "no clean stop: $(tail -5 "$T/demo.out")"
pass "SIGINT stops the demo cleanly"
sleep 1
left="$(pgrep -af "$DEMO_STATE" || true)"
[ -z "$left" ] || fail "processes left running: $left"
pass "nothing it started is left running"
first_total="$(grep '^total' "$T/demo.out")"

# The README's firmware rollout, its commands as written there (paths
# moved to this test's build and state), run between the two demo runs.
awk '/^### A firmware rollout with the demo/ { on = 1 } on && /^```sh/ { code = 1; next }
  code && /^```/ { exit } code { print }' "$IOT_SOURCE_DIR/README.md" |
  sed -e "s|\.state/demo|$DEMO_STATE|g" -e "s|B=build/release|B=$IOT_SOURCE_DIR/build/release|" \
  >"$T/rollout.sh"
grep -q "rollout create" "$T/rollout.sh" || fail "no rollout commands found in the README"
(cd "$T" && bash -e "$T/rollout.sh") >"$T/rollout.out" 2>&1 || fail "the README's rollout: $(tail -5 "$T/rollout.out")"
pass "the README's rollout commands run"
run_demo 60
grep -q "^total (2 devices): readings [1-9]" "$T/demo.out" || fail "second run: $(tail -5 "$T/demo.out")"
for dev in demo-sensor-1 demo-sensor-2; do
  grep -q "^$dev: readings .*firmware 2.0.0, update confirmed" "$T/demo.out" ||
    fail "$dev does not run 2.0.0: $(grep "^$dev: readings" "$T/demo.out")"
done
pass "the rollout reached both devices: they run 2.0.0, confirmed"
"$IOTCTL" --dir "$DEMO_STATE/pki" rollout status demo-2.0.0 --json --db "$DEMO_STATE/rollouts.db" |
  jq -e '.state == "completed" and .counts.confirmed == 2' >/dev/null ||
  fail "rollout not completed: $("$IOTCTL" --dir "$DEMO_STATE/pki" rollout status demo-2.0.0 --db "$DEMO_STATE/rollouts.db")"
pass "the rollout is completed"
pass "a second run works on the same state"
grep -q "duplicates 0" <<<"$(grep '^total' "$T/demo.out")" || fail "second run reused sequence numbers"
pass "the second run continues the device sequences"

# A port in use is named, with the variable that moves it.
busy="$DEMO_GATEWAY_PORT"
mosquitto -p "$busy" >/dev/null 2>&1 &
_PIDS+=("$!")
wait_port "$busy" 5 || fail "could not occupy port $busy"
run "$IOT_SOURCE_DIR/scripts/demo.sh"
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "port $busy for the gateway is in use.*DEMO_GATEWAY_PORT" ||
  fail "port in use: exit $RC, $ERR"
pass "a port in use gets a clear message"
echo "first run: $first_total"
finish
