#!/usr/bin/env bash
# A firmware download that loses its connection resumes where it stopped.
# One iotsim device downloads a 4 MiB image from the real gateway in 4 KiB
# ranged chunks; it is killed with SIGKILL (connection and process gone,
# possibly mid-chunk) once 10 %, 50 % and 90 % of the image were served,
# and started again on the same state directory; once in between the
# gateway is stopped under it and started again while the device keeps
# running. Checked: every start after a kill resumes at the device's
# stored offset (never at 0), the gateway's image bytes stay within the
# image size plus one chunk per drop, and the device installs and confirms
# the new image.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"
IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
DB="$T/rollouts.db"
SIZE=$((4 * 1024 * 1024))
CHUNK=4096
DEV=sim-1
ctl() { "$IOTCTL" --dir "$P" "$@"; }

WAIT_POLL=0.02 # wait_until (lib.sh) polls this often

make_pki
ctl device add "$DEV" --class sensor >/dev/null
expect_ok "firmware key" ctl firmware key create --name rel
expect_ok "make image 2.0.0 (4 MiB)" "$IOTSIM" --make-image "$T/app.bin" --image-version 2.0.0 \
  --image-size "$SIZE"
expect_ok "sign 2.0.0" ctl firmware sign --image "$T/app.bin" --vendor iot-example --class sensor \
  --version 2.0.0 --secure-version 0 --key rel --out "$T/app.manifest"
expect_ok "add 2.0.0" ctl firmware add --manifest "$T/app.manifest" --image "$T/app.bin"
expect_ok "rollout" ctl rollout create r2 --firmware 2.0.0 --devices "$DEV" --canary 0 --waves 100 --db "$DB"

start_broker
write_gateway_config "rollouts = $DB" "firmware_dir = $P/firmware" "log_level = debug"
start_gateway

# The gateway's update.image lines (one per request, logged as it is
# answered, across the gateway's restarts), "FIRST BYTES" each, in order;
# from line FROM of the log if given.
image_lines() { tail -n +"${1:-1}" "$T/gw.log" | awk '/event=update.image device='"$DEV"' / {
  f = $0; b = $0; sub(/.*first=/, "", f); sub(/ .*/, "", f); sub(/.*bytes=/, "", b); print f, b }'; }
served() { image_lines "$@" | awk '{ n += $2 } END { print n + 0 }'; }
at_least() { [ "$(served)" -ge "$1" ]; }

start_sim() {
  "$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --state "$T/state" --device "$DEV" \
    --class sensor --slot-size $((2 * SIZE)) --chunk "$CHUNK" --interval 1s --update-check 1s \
    --backoff-max 1s --timeout 10s -v >>"$T/sim.out" 2>>"$T/sim.err" &
  SIM_PID=$!
  _PIDS+=("$SIM_PID")
}

start_sim
drops=0
for pct in 10 30 50 90; do
  wait_until 120 "$pct % of the image to be served" at_least $((SIZE * pct / 100))
  if [ "$pct" = 30 ]; then
    # The connection drops under a running device: the gateway stops (it
    # answers what is in flight, then refuses image requests while it
    # drains) and comes back.
    retries="$(command grep -c 'event=update.download_retry' "$T/sim.err" || true)"
    stop_gateway
    before="$(served)"
    retried() { [ "$(command grep -c 'event=update.download_retry' "$T/sim.err" || true)" -gt "$retries" ]; }
    wait_until 30 "the device to find the gateway gone mid-download" retried
    gw_mark=$(($(wc -l <"$T/gw.log") + 1))
    start_gateway
  else
    kill -KILL "$SIM_PID"
    wait "$SIM_PID" 2>/dev/null || true
    # Every request the device made is answered and logged by now.
    before="$(served)"
    start_sim
  fi
  drops=$((drops + 1))
  [ "$before" -lt "$SIZE" ] || fail "the download had ended before the drop at $pct %"
  pass "connection dropped at $((before * 100 / SIZE)) % ($before bytes served)"
done

confirmed() { [ "$(ctl rollout status r2 --json --db "$DB" | jq -r '.device_states[0].state')" = confirmed ]; }
wait_until 300 "$DEV to confirm 2.0.0" confirmed
pass "$DEV confirmed 2.0.0 after $drops dropped connections"
total="$(served)"

# Every request continues where the one before it ended, or, after a drop,
# at most one chunk before (a chunk in flight when the connection went);
# the download never starts over.
walk="$(image_lines | awk -v chunk="$CHUNK" '
  { if (NR > 1 && ($1 > end || $1 < end - chunk)) print "request at " $1 " after " end
    if (NR > 1 && $1 == 0) print "started over at 0"
    if (NR == 1 && $1 != 0) print "first request at " $1
    if ($1 < end) again += end - $1
    end = $1 + $2; n += $2 }
  END { print "total", n, "again", again + 0 }')"
echo "$walk" | grep -q '^total ' || fail "no image request logged"
! echo "$walk" | grep -vq '^total ' || fail "the download did not resume in place: $(echo "$walk" | head -5)"
read -r _ _ _ again <<<"$(echo "$walk" | tail -1)"
expect_eq "the running gateway counted the image bytes it logged" "$(served "$gw_mark")" \
  "$(metric iotgw_update_image_bytes_total)"
[ "$total" -le $((SIZE + drops * CHUNK)) ] ||
  fail "$total bytes served for a $SIZE-byte image: more than one chunk again per drop"
[ "$total" -ge "$SIZE" ] || fail "only $total bytes served for a $SIZE-byte image"
pass "$total bytes served for $SIZE ($again again, at most $drops x $CHUNK allowed)"

# The device resumed after each kill: its first report of each boot names
# the offset it had stored.
mapfile -t resumed < <(awk '/event=update.report device='"$DEV"' .*status=downloading/ {
  o = $0; sub(/.*offset=/, "", o); sub(/ .*/, "", o); print o }' "$T/gw.log")
expect_eq "downloading reported: the start and one per restart" 4 "${#resumed[@]}"
expect_eq "the first from 0" 0 "${resumed[0]}"
for o in "${resumed[@]:1}"; do
  [ "$o" -gt 0 ] && [ $((o % CHUNK)) = 0 ] || fail "a restart reported offset $o"
done
pass "each restart resumed at its stored offset: ${resumed[*]:1}"
expect_eq "the device logged the same resumes" "${resumed[*]}" \
  "$(awk '/event=update.downloading/ { o = $0; sub(/.*offset=/, "", o); sub(/ .*/, "", o); printf "%s%s", s, o; s = " " }' "$T/sim.err")"
[ "$(command grep -c 'event=device.boot msg="version=1.0.0' "$T/sim.err")" = 4 ] ||
  fail "the gateway's outage restarted the device: $(command grep device.boot "$T/sim.err")"
pass "the gateway's outage did not restart the device; its download went on"

kill -INT "$SIM_PID"
wait "$SIM_PID" || fail "iotsim exited with $?"
command grep "^$DEV: readings" "$T/sim.out" | tail -1 | grep -q "firmware 2.0.0, update confirmed" ||
  fail "$DEV does not run 2.0.0: $(command grep "^$DEV: readings" "$T/sim.out" | tail -1)"
pass "$DEV runs 2.0.0"
cmp -s <(head -c "$SIZE" "$T/state/$DEV/slot0") "$T/app.bin" || fail "slot0 is not the signed image"
pass "the slot holds the signed image byte for byte"
finish
