#!/usr/bin/env bash
# Faults under load. Devices post continuously while the broker is stopped
# and restarted (with and without persistence), frozen past the keep-alive,
# the gateway is SIGKILLed, its disk fills up, the link to the broker is cut,
# and the device simulator is killed mid-queue. Each scenario ends with the
# loss checker (tests/support/tools/losscheck.sh) comparing what devices were told
# was stored with what a consumer received: nothing acknowledged is lost,
# nothing unexpected arrives, order is kept per device, and no reading is
# stored twice. A summary table closes the run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

LC="$IOT_SOURCE_DIR/tests/support/tools/losscheck.sh"
IOTSIM="$IOT_BUILD_DIR/tools/iotsim"
SUB="$T/sub.out"
NS="iotf$$"
VETH="vf$$"
MNT=""
ROWS=()
FAILED=()

faults_cleanup() {
  local rc=$? pid
  set +e
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null && kill "$pid" 2>/dev/null || true
  done
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  [ -z "$MNT" ] || umount "$MNT" 2>/dev/null || true
  ip link del "$VETH" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  (exit "$rc")
  _cleanup
}
trap faults_cleanup EXIT

# --- the broker ------------------------------------------------------------------------
# broker_up PERSISTENCE: Mosquitto on $BROKER_PORT, log in $T/broker.log.
broker_up() {
  mkdir -p "$T/broker"
  cat >"$T/broker/mosquitto.conf" <<CONF
user root
listener $BROKER_PORT 127.0.0.1
cafile $P/ca.crt
certfile $P/servers/broker/cert.pem
keyfile $P/servers/broker/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
persistence $1
persistence_location $T/broker/
autosave_interval 1
max_queued_messages 0
log_dest file $T/broker.log
log_type all
CONF
  [ "$1" = true ] || rm -f "$T/broker/mosquitto.db"
  mosquitto -c "$T/broker/mosquitto.conf" >>"$T/broker.log" 2>&1 &
  _PIDS+=("$!")
  BROKER_PID=$!
  wait_port "$BROKER_PORT" 10 || fail "mosquitto did not start on port $BROKER_PORT"
}

consumer_connects() { grep -c "New client connected.* as consumer-$$ " "$T/broker.log" || true; }

# wait_consumer N: until the consumer has connected more than N times.
# mosquitto_sub may give up when a reconnect is refused while the broker is
# still starting; then a new one takes over the same persistent session
# (same client id), which is what a real consumer's supervisor would do.
wait_consumer() {
  local deadline=$((SECONDS + 30))
  until [ "$(consumer_connects)" -gt "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the consumer did not reconnect to the restarted broker"
    if ! kill -0 "$SUB_PID" 2>/dev/null; then
      echo "# the consumer exited; starting it again with the same session"
      start_consumer "$SUB"
    fi
    sleep 0.1
  done
  sleep 0.3
}

# --- the gateway -----------------------------------------------------------------------
# gateway_for NAME [EXTRA LINES...]: a gateway with its own outbox, $T/NAME/outbox.db
# unless OUTBOX is set, and MQTT_HOST/MQTT_PORT if set.
gateway_for() {
  local name="$1"
  mkdir -p "$T/$name"
  shift
  write_gateway_config "rate_limit = 0" "retry_after = 1s" "mqtt_keepalive = 5s" "$@"
  sed -i -e "s|^outbox = .*|outbox = ${OUTBOX:-$T/$name/outbox.db}|" \
    -e "s|^mqtt_host = .*|mqtt_host = ${MQTT_HOST:-localhost}|" \
    -e "s|^mqtt_port = .*|mqtt_port = ${MQTT_PORT:-$BROKER_PORT}|" "$T/gw.conf"
  start_gateway
}

kill_gateway() {
  kill -KILL "$GW_PID" 2>/dev/null || true
  wait "$GW_PID" 2>/dev/null || true
}

health() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/healthz" | jq -r ".$1"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$GW_PID/status"; }

# --- the load driver ---------------------------------------------------------------------
# load_device DEV DIR: posts DEV's readings, seq 1, 2, ..., one per request,
# until DIR/stop exists. Each reading is written to DIR/sent before its first
# try and to DIR/acked once it gets a 2xx; it is retried until then (after
# Retry-After on 503 and 429, 200 ms after a connection failure), at most
# LOAD_TRIES times. DIR/log gets "DEV SEQ STATUS ERROR" for every try.
load_device() {
  local dev="$1" dir="$2" seq=1 tries code ra err
  while [ ! -e "$dir/stop" ]; do
    echo "$dev $seq" >>"$dir/sent"
    tries=0
    while :; do
      code="$(curl -s -o "$dir/$dev.body" -D "$dir/$dev.hdr" -w '%{http_code}' --max-time 5 \
        --cacert "$P/ca.crt" --cert "$P/devices/$dev/cert.pem" --key "$P/devices/$dev/key.pem" \
        -H 'Content-Type: application/json' --data-binary "{\"seq\":$seq,\"v\":$seq}" \
        "https://localhost:$GW_PORT/v1/telemetry" 2>/dev/null)" || true
      code="${code:-000}"
      err="$(jq -r '.error // "-"' "$dir/$dev.body" 2>/dev/null || echo -)"
      ra="$(awk 'tolower($1) == "retry-after:" { print $2 + 0 }' "$dir/$dev.hdr" 2>/dev/null || true)"
      echo "$dev $seq $code ${err:--} ${ra:--}" >>"$dir/log"
      tries=$((tries + 1))
      case "$code" in
      2??)
        echo "$dev $seq" >>"$dir/acked"
        break
        ;;
      503 | 429) sleep "${ra:-1}" ;;
      *) sleep 0.2 ;;
      esac
      [ "$tries" -lt "${LOAD_TRIES:-60}" ] && [ ! -e "$dir/stop" ] || break
    done
    seq=$((seq + 1))
    sleep "${LOAD_GAP:-0.05}"
  done
}

# load_start NAME DEV...: one device loop per DEV, files in $T/NAME.
load_start() {
  LOAD_DIR="$T/$1"
  shift
  mkdir -p "$LOAD_DIR"
  rm -f "$LOAD_DIR/stop"
  : >>"$LOAD_DIR/sent"
  : >>"$LOAD_DIR/acked"
  : >>"$LOAD_DIR/log"
  LOAD_PIDS=()
  local dev
  for dev in "$@"; do
    load_device "$dev" "$LOAD_DIR" &
    _PIDS+=("$!")
    LOAD_PIDS+=("$!")
  done
}

load_stop() {
  touch "$LOAD_DIR/stop"
  local pid
  for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

acked_count() { sort -u "$1/acked" | wc -l; }

# wait_acked N: until the current load has N more acknowledged readings.
wait_acked() {
  local want=$(($(acked_count "$LOAD_DIR") + $1)) deadline=$((SECONDS + 30))
  while [ "$(acked_count "$LOAD_DIR")" -lt "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$(basename "$LOAD_DIR"): fewer than $1 readings acknowledged in 30 s; $(tail -3 "$LOAD_DIR/log")"
    sleep 0.2
  done
}

# --- the verdict ---------------------------------------------------------------------------
field() { echo "$1" | head -1 | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# verify SCENARIO DIR PREFIX [CAPTURE]: waits up to 40 s for every acknowledged
# reading of the devices named PREFIX* to reach the consumer, then runs the
# checker, prints its line and records the result.
verify() {
  local name="$1" dir="$2" prefix="$3" cap="${4:-$SUB}" deadline=$((SECONDS + 40)) out rc
  while :; do
    grep "^telemetry/$prefix" "$cap" >"$dir/cap" 2>/dev/null || true
    set +e
    out="$(bash "$LC" --sent "$dir/sent" "$dir/acked" "$dir/cap")"
    rc=$?
    set -e
    [ "$(field "$out" lost)" != 0 ] || break
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.5
  done
  sleep 1 # late republished copies
  grep "^telemetry/$prefix" "$cap" >"$dir/cap" 2>/dev/null || true
  set +e
  out="$(bash "$LC" --sent "$dir/sent" "$dir/acked" "$dir/cap")"
  rc=$?
  set -e
  echo "$out" | sed "1s/^/[$name] /"
  ROWS+=("$name|$(field "$out" acknowledged)|$(field "$out" delivered)|$(field "$out" lost)|$(field "$out" duplicated_raw)|$(field "$out" duplicated_after_dedup)|$(field "$out" reordered)|$(field "$out" unexpected)")
  if [ "$rc" -ne 0 ] || [ "$(field "$out" duplicated_after_dedup)" != 0 ]; then
    FAILED+=("$name")
    echo "FAIL: $name: $(echo "$out" | head -1)" >&2
    return 0
  fi
  [ "$(field "$out" acknowledged)" -gt 0 ] || fail "$name: nothing was acknowledged; the load did not run"
  pass "$name: everything acknowledged delivered, in order, no reading stored twice"
}

skip_scenario() {
  echo "SKIPPED: $1: $2"
  ROWS+=("$1|SKIPPED|||||||")
}

# --- setup ---------------------------------------------------------------------------------
DEVS=()
for g in bp bn bs gk df ln; do for i in 1 2 3; do DEVS+=("$g-$i"); done; done
make_pki "${DEVS[@]}" sm-1 sm-2
BROKER_PORT="$(free_port)"
broker_up true
start_consumer "$SUB"
sleep 0.5

# --- 1. the broker stopped and restarted under load, persistence on -------------------------
gateway_for bp
load_start bp bp-1 bp-2 bp-3
for _ in 1 2 3; do
  wait_acked 10
  stop_broker
  wait_acked 10 # the gateway keeps acknowledging while the broker is away
  before="$(consumer_connects)"
  broker_up true
  wait_consumer "$before" # its persistent session kept what it missed
done
wait_acked 10
load_stop
verify "broker restarts, persistence on" "$T/bp" bp-
stop_gateway

# --- 2. the same without broker persistence -------------------------------------------------
# The restarted broker has forgotten every session and in-flight message;
# only the gateway's outbox still has them. The gateway is paused while the
# broker comes back so that the consumer (whose session the broker forgot
# too) has resubscribed before anything is published again.
stop_broker
before="$(consumer_connects)"
broker_up false
wait_consumer "$before"
gateway_for bn
load_start bn bn-1 bn-2 bn-3
for _ in 1 2 3; do
  wait_acked 10
  stop_broker
  wait_acked 10
  kill -STOP "$GW_PID"
  before="$(consumer_connects)"
  broker_up false
  wait_consumer "$before"
  kill -CONT "$GW_PID"
done
wait_acked 10
load_stop
verify "broker restarts, persistence off" "$T/bn" bn-
stop_gateway
stop_broker
before="$(consumer_connects)"
broker_up true
wait_consumer "$before" # its session was forgotten with the persistence file

# --- 3. the broker frozen past the keep-alive: bounded memory, outbox full, 503 --------------
# SIGSTOP: the TCP connection stays open but nothing is acknowledged. The
# outbox is kept small so that the load fills it within seconds. Under ASan,
# freed memory is held in a quarantine of up to 256 MiB, which would make
# VmRSS track the number of requests rather than what the gateway keeps;
# the quarantine is capped for this gateway (the option is ignored by builds
# without ASan).
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" gateway_for bs "outbox_max = $((OUTBOX_MAX = 40))" "outbox_device_share = 100"
LOAD_GAP=0 load_start bs bs-1 bs-2 bs-3
wait_acked 10
rss_before="$(rss_kib)"
kill -STOP "$BROKER_PID"
stopped_at=$SECONDS
max_depth=0
rss_full=""
# At least 14 s (past the keep-alive), then until a device has been told
# the outbox is full: how fast the load fills it depends on the machine.
outbox_full_answered() { awk '$3 == 503 && $4 == "outbox_full"' "$T/bs/log" | grep -q .; }
while [ $((SECONDS - stopped_at)) -lt 14 ] ||
  { ! outbox_full_answered && [ $((SECONDS - stopped_at)) -lt 120 ]; }; do
  d="$(health outbox_depth)"
  [[ "$d" =~ ^[0-9]+$ ]] || d=0
  [ "$d" -le "$max_depth" ] || max_depth="$d"
  [ -n "$rss_full" ] || [ "$d" -lt "$OUTBOX_MAX" ] || rss_full="$(rss_kib)"
  sleep 0.5
done
rss_after="$(rss_kib)"
broker_state="$(health broker)"
kill -CONT "$BROKER_PID"
full="$(awk '$3 == 503 && $4 == "outbox_full" && $5 == 1' "$T/bs/log" | wc -l)"
echo "broker frozen $((SECONDS - stopped_at)) s (keep-alive 5 s): outbox depth reached $max_depth of $OUTBOX_MAX, $full answers 503 outbox_full, broker '$broker_state'"
echo "gateway VmRSS: ${rss_before} KiB before the freeze, ${rss_full:-?} KiB when the outbox was full, ${rss_after} KiB at the end"
expect_eq "the outbox fills up to outbox_max while the broker withholds PUBACKs" "$OUTBOX_MAX" "$max_depth"
[ "$full" -gt 0 ] || fail "no 503 outbox_full with Retry-After: 1 while the outbox was full"
pass "a full outbox answers 503 outbox_full with Retry-After ($full times)"
expect_eq "the gateway gives up on a broker silent past the keep-alive" disconnected "$broker_state"
# The readings wait on disk, not in memory: the memory a request uses is
# freed when it is answered, and the publishes in flight are bounded by
# mqtt_inflight. What the allocator keeps from a few hundred TLS handshakes
# (tens of KiB each) stays well under 16 MiB; keeping anything per refused
# request or per reading would cross it.
[ $((rss_after - rss_before)) -lt 16384 ] ||
  fail "gateway memory grew by $(((rss_after - rss_before) / 1024)) MiB while the broker was frozen"
pass "gateway memory stays bounded while the broker is frozen (+$(((rss_after - rss_before) / 1024)) MiB)"
wait_acked 10
load_stop
verify "broker frozen, outbox full" "$T/bs" bs-
stop_gateway

# --- 4. the gateway SIGKILLed five times under load -----------------------------------------
gateway_for gk
load_start gk gk-1 gk-2 gk-3
for _ in 1 2 3 4 5; do
  wait_acked 5
  sleep "$((RANDOM % 1500 / 1000)).$((RANDOM % 1000))"
  kill_gateway
  sleep 0.3
  start_gateway
done
wait_acked 10
load_stop
verify "gateway SIGKILLed 5 times" "$T/gk" gk-
stop_gateway

# --- 5. the outbox's disk full ----------------------------------------------------------------
mkdir -p "$T/df/disk"
if ! merr="$(mount -t tmpfs -o size=4m tmpfs "$T/df/disk" 2>&1)"; then
  skip_scenario "outbox disk full" "cannot mount a tmpfs: $merr"
else
  MNT="$T/df/disk"
  # The broker is away, so the outbox only grows and needs new space.
  stop_broker
  OUTBOX="$MNT/outbox.db" gateway_for df
  load_start df df-1 df-2 df-3
  wait_acked 10
  dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true
  deadline=$((SECONDS + 20))
  until grep -q 'event=outbox.commit_failed' "$T/gw.log" &&
    awk '$3 == 503 && $4 == "storage_unavailable"' "$T/df/log" | grep -q .; do
    [ "$SECONDS" -lt "$deadline" ] || fail "a full disk gave no outbox.commit_failed and 503 storage_unavailable: $(tail -3 "$T/df/log")"
    sleep 0.2
  done
  pass "a full disk: 503 storage_unavailable and outbox.commit_failed logged"
  sleep 2
  rm -f "$MNT/filler"
  freed_at="$(wc -l <"$T/df/log")"
  wait_acked 10
  tail -n +"$((freed_at + 1))" "$T/df/log" | awk '$3 == 200' | grep -q . || fail "no 200 after the disk was freed"
  pass "space freed: new readings get 200 again"
  broker_up true
  wait_acked 10
  load_stop
  verify "outbox disk full" "$T/df" df-
  stop_gateway
  umount "$MNT"
  MNT=""
fi

# --- 6. the gateway-broker link cut, and lossy ------------------------------------------------
if ! nerr="$(ip netns add "$NS" 2>&1)"; then
  skip_scenario "link cut" "cannot create a network namespace: $nerr"
else
  ip link add "$VETH" type veth peer name br0 netns "$NS"
  ip addr add 10.231.0.1/30 dev "$VETH"
  ip link set "$VETH" up
  ip -n "$NS" addr add 10.231.0.2/30 dev br0
  ip -n "$NS" link set br0 up
  ip -n "$NS" link set lo up
  "$IOTCTL" --dir "$P" cert server broker-ns --ip 10.231.0.2 --ip 127.0.0.1 >/dev/null
  mkdir -p "$T/nsb"
  cat >"$T/nsb/mosquitto.conf" <<CONF
user root
listener 8883
cafile $P/ca.crt
certfile $P/servers/broker-ns/cert.pem
keyfile $P/servers/broker-ns/key.pem
require_certificate true
use_subject_as_username true
allow_anonymous false
persistence true
persistence_location $T/nsb/
max_queued_messages 0
log_dest stdout
CONF
  ip netns exec "$NS" mosquitto -c "$T/nsb/mosquitto.conf" >>"$T/nsb/broker.log" 2>&1 &
  _PIDS+=("$!")
  deadline=$((SECONDS + 10))
  until ip netns exec "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/8883' 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the broker in $NS did not start: $(tail -3 "$T/nsb/broker.log")"
    sleep 0.1
  done
  # The consumer sits next to the broker, so only the gateway's link is cut.
  ip netns exec "$NS" mosquitto_sub -h 127.0.0.1 -p 8883 --cafile "$P/ca.crt" \
    --cert "$P/clients/consumer/cert.pem" --key "$P/clients/consumer/key.pem" \
    -i "consumer-ns-$$" -c -q 1 -t 'telemetry/#' -v >>"$T/nsb/sub.out" 2>>"$T/nsb/sub.err" &
  _PIDS+=("$!")
  sleep 0.5
  MQTT_HOST=10.231.0.2 MQTT_PORT=8883 gateway_for ln
  load_start ln ln-1 ln-2 ln-3
  for _ in 1 2; do
    wait_acked 10
    ip link set "$VETH" down
    wait_acked 10
    sleep 2
    ip link set "$VETH" up
  done
  wait_acked 10
  # Packet loss: nftables in the broker's namespace drops one packet in five
  # at random on the link, both ways. This is netem's "loss 20%" without
  # needing sch_netem in the kernel: TCP retransmits and stalls, and the MQTT
  # keep-alive may or may not survive it.
  ip netns exec "$NS" nft -f - <<'NFT' || fail "cannot install the packet-loss rules with nft in $NS"
table inet lossy {
  chain in {
    type filter hook input priority 0; iifname "br0" counter;
    iifname "br0" numgen random mod 100 < 20 counter drop;
  }
  chain out {
    type filter hook output priority 0; oifname "br0" counter;
    oifname "br0" numgen random mod 100 < 20 counter drop;
  }
}
NFT
  # The loss has to meet traffic: wait until 40 more readings have crossed
  # the lossy link to the consumer, not just until devices got 200s.
  crossed() { grep -c '^telemetry/ln-' "$T/nsb/sub.out" || true; }
  want=$(($(crossed) + 40))
  deadline=$((SECONDS + 90))
  while [ "$(crossed)" -lt "$want" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "fewer than 40 readings crossed the lossy link in 90 s"
    sleep 0.2
  done
  read -r seen dropped < <(ip netns exec "$NS" nft list table inet lossy | awk '
    /counter/ { for (i = 1; i <= NF; i++) if ($i == "packets") { if (/drop/) d += $(i + 1); else n += $(i + 1) } }
    END { print n + 0, d + 0 }')
  ip netns exec "$NS" nft delete table inet lossy
  echo "lossy link: $dropped of $seen packets dropped"
  [ "$dropped" -gt 0 ] || fail "the packet-loss rules dropped nothing: the lossy phase tested nothing"
  pass "20% packet loss on the link both ways while 40 readings crossed it ($dropped of $seen packets dropped)"
  wait_acked 10
  load_stop
  verify "link cut and lossy" "$T/ln" ln- "$T/nsb/sub.out"
  stop_gateway
fi

# --- 7. the device simulator SIGKILLed mid-queue ----------------------------------------------
gateway_for sm
mkdir -p "$T/sm"
SIM=("$IOTSIM" --gateway "https://localhost:$GW_PORT" --pki "$P" --state "$T/sm/state"
  --interval 100ms --backoff-max 1s --timeout 5s)
"${SIM[@]}" --device sm-1 --device sm-2 --count 100000 -vv >"$T/sm/run1.out" 2>"$T/sm/run1.err" &
SIM_PID=$!
_PIDS+=("$SIM_PID")
deadline=$((SECONDS + 20))
until [ "$(grep -c '^sm-1: upload 1 reading .*: 200' "$T/sm/run1.out")" -ge 3 ] &&
  [ "$(grep -c '^sm-2: upload 1 reading .*: 200' "$T/sm/run1.out")" -ge 3 ]; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the simulator did not upload: $(tail -3 "$T/sm/run1.err")"
  sleep 0.1
done
stop_gateway
deadline=$((SECONDS + 30))
until grep -Eq '^sm-1: reading [0-9]+ taken, ([89]|[1-9][0-9]) queued' "$T/sm/run1.out" &&
  grep -Eq '^sm-2: reading [0-9]+ taken, ([89]|[1-9][0-9]) queued' "$T/sm/run1.out"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the simulator did not queue 8 readings per device"
  sleep 0.1
done
kill -KILL "$SIM_PID"
wait "$SIM_PID" 2>/dev/null || true
start_gateway
run "${SIM[@]}" --device sm-1 --device sm-2 --count 5 --drain-timeout 30s -v
cp "$T/.out" "$T/sm/run2.out"
expect_eq "the simulator restarted after SIGKILL drains its queue" 0 "$RC"
# A fresh state numbers readings from 1 without gaps, so run 1 took
# 1..TAKEN. TAKEN is not simply the last "reading N taken" line of run 1:
# a step stores its reading, then tries the (stopped) gateway, then prints,
# and the SIGKILL can land in between. Run 2 says it instead: its first
# upload starts at the oldest reading run 1 left queued (seq A), and the
# gateway acknowledged Q + 5 of its readings, Q of them from run 1's queue,
# so TAKEN = A + Q - 1 (one above the printed figure at most). Run 2 took 5 readings numbered
# consecutively above TAKEN; where its numbering starts is read from the
# capture, and any loss shows up as a missing reading in that block of 5 or
# in 1..TAKEN.
: >"$T/sm/acked"
for dev in sm-1 sm-2; do
  printed="$(grep -E "^$dev: reading [0-9]+ taken" "$T/sm/run1.out" | tail -1 | awk '{ print $3 }')"
  grep "$dev: readings" "$T/sm/run2.out" | grep -q 'dropped 0, queued 0' ||
    fail "$dev: the restarted simulator dropped or kept readings: $(cat "$T/sm/run2.out")"
  oldest="$(grep -m1 "^$dev: upload " "$T/sm/run2.out" | sed -E 's/.*\(seq ([0-9]+)-.*/\1/')"
  acked="$(grep "^$dev: readings" "$T/sm/run2.out" | sed -E 's/.*, acknowledged ([0-9]+),.*/\1/')"
  [[ "$oldest" =~ ^[0-9]+$ && "$acked" =~ ^[0-9]+$ ]] ||
    fail "$dev: cannot read run 2's first upload and summary: $(cat "$T/sm/run2.out")"
  taken=$((oldest + acked - 5 - 1))
  [ "$taken" -ge "$printed" ] && [ "$taken" -le $((printed + 1)) ] ||
    fail "$dev: run 1 printed $printed readings taken, but run 2 resent up to $taken"
  seq 1 "$taken" | sed "s/^/$dev /" >>"$T/sm/acked"
  deadline=$((SECONDS + 20))
  until first2="$(grep "^telemetry/$dev/" "$SUB" | cut -d' ' -f2- | jq -r .dseq | awk -v t="$taken" '$1 > t' | sort -n | head -1)" &&
    [ -n "$first2" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$dev: nothing of the restarted run arrived"
    sleep 0.2
  done
  seq "$first2" $((first2 + 4)) | sed "s/^/$dev /" >>"$T/sm/acked"
  echo "$dev: run 1 took dseq 1..$taken, run 2 continued at $first2"
done
cp "$T/sm/acked" "$T/sm/sent"
verify "simulator SIGKILLed mid-queue" "$T/sm" sm-
stop_gateway

# --- summary --------------------------------------------------------------------------------------
echo
printf '%-36s %12s %9s %4s %10s %12s %9s %10s\n' scenario acknowledged delivered lost duplicates dup_stored reordered unexpected
for row in "${ROWS[@]}"; do
  IFS='|' read -r n a d l r x o u <<<"$row"
  printf '%-36s %12s %9s %4s %10s %12s %9s %10s\n' "$n" "$a" "$d" "$l" "$r" "$x" "$o" "$u"
done
echo
[ "${#FAILED[@]}" -eq 0 ] || fail "readings lost, unexpected, reordered or stored twice in: ${FAILED[*]}"
finish
