#!/usr/bin/env bash
# The README's first command: it builds, starts broker, gateway, simulated
# devices and a consumer, shows readings from every device, and Ctrl-C
# (SIGINT) stops everything it started. Run twice: the second run continues.
. "$(dirname "$0")/lib.sh"

export DEMO_STATE="$T/demo" DEMO_GATEWAY_PORT="$(free_port)" DEMO_BROKER_PORT="$(free_port)" \
  DEMO_ADMIN_PORT="$(free_port)"

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
grep -q "^stopped; state kept in $DEMO_STATE" "$T/demo.out" || fail "no clean stop: $(tail -5 "$T/demo.out")"
pass "SIGINT stops the demo cleanly"
sleep 1
left="$(pgrep -af "$DEMO_STATE" || true)"
[ -z "$left" ] || fail "processes left running: $left"
pass "nothing it started is left running"
first_total="$(grep '^total' "$T/demo.out")"

run_demo 20
grep -q "^total (2 devices): readings [1-9]" "$T/demo.out" || fail "second run: $(tail -5 "$T/demo.out")"
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
