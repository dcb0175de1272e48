# Shared helpers for integration tests. Source it first:
#   . "$(dirname "$0")/lib.sh"
# Each test runs in its own temporary directory ($T), removed on exit along
# with every process started through `spawn`. Assertions print what was
# expected and what happened, then fail the test.
set -euo pipefail

: "${IOT_BUILD_DIR:?run through ctest, or set IOT_BUILD_DIR}"
: "${IOT_SOURCE_DIR:?run through ctest, or set IOT_SOURCE_DIR}"
IOTCTL="$IOT_BUILD_DIR/tools/iotctl"

T="$(mktemp -d "${TMPDIR:-/tmp}/iot-test.XXXXXX")"
_PIDS=()
_FAILS=0
_PASSES=0
_cleanup() {
  local rc=$?
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${_PIDS[@]:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  if [ "$rc" -eq 0 ] && [ "$_FAILS" -eq 0 ]; then
    rm -rf "$T"
  else
    echo "test files kept in $T" >&2
  fi
}
trap _cleanup EXIT

# `echo "$x" | grep -q PATTERN` can fail under pipefail: grep -q exits at
# the first match and echo's next write dies of SIGPIPE. This grep reads all
# of its input when asked to be quiet, so only the match decides.
grep() {
  local args=() quiet=0 a
  for a in "$@"; do
    if [[ "$a" =~ ^-[A-Za-z]*q[A-Za-z]*$ ]]; then
      quiet=1
      a="${a//q/}"
      [ "$a" = "-" ] && continue
    fi
    args+=("$a")
  done
  if [ "$quiet" = 1 ]; then
    command grep "${args[@]}" >/dev/null
  else
    command grep "${args[@]}"
  fi
}

# wait_until SECONDS WHAT CMD...: polls CMD every $WAIT_POLL seconds (0.1)
# until it succeeds; fails the test naming WHAT after SECONDS.
wait_until() {
  local secs="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep "${WAIT_POLL:-0.1}"
  done
}

# Starts a background process that is killed when the test ends.
spawn() {
  "$@" &
  _PIDS+=("$!")
  LAST_PID=$!
}

# spawn_in FILE CMD...: as spawn, with stdin read from FILE (a background
# job's stdin is otherwise /dev/null).
spawn_in() {
  local input="$1"; shift
  "$@" <"$input" &
  _PIDS+=("$!")
  LAST_PID=$!
}

fail() {
  echo "FAIL: $*" >&2
  _FAILS=$((_FAILS + 1))
  exit 1
}

pass() {
  _PASSES=$((_PASSES + 1))
  echo "ok - $*"
}

# run CMD...: runs a command, capturing stdout, stderr and status in
# $OUT, $ERR and $RC without failing the test.
run() {
  set +e
  "$@" >"$T/.out" 2>"$T/.err"
  RC=$?
  set -e
  OUT="$(cat "$T/.out")"
  ERR="$(cat "$T/.err")"
}

expect_ok() {
  local what="$1"; shift
  run "$@"
  [ "$RC" -eq 0 ] || fail "$what: expected success, got exit $RC; stderr: $ERR"
  pass "$what"
}

# expect_fail WHAT CODE PATTERN CMD...: expects exit CODE and PATTERN
# (an extended regex) in stderr.
expect_fail() {
  local what="$1" code="$2" pattern="$3"; shift 3
  run "$@"
  [ "$RC" -eq "$code" ] || fail "$what: expected exit $code, got $RC; stdout: $OUT; stderr: $ERR"
  echo "$ERR" | grep -Eq -- "$pattern" || fail "$what: stderr does not match /$pattern/: $ERR"
  # One clear line: the error must not spill over several lines.
  [ "$code" -ne 1 ] || [ "$(printf '%s\n' "$ERR" | grep -c .)" -eq 1 ] ||
    fail "$what: expected a one-line error, got: $ERR"
  pass "$what"
}

expect_eq() {
  local what="$1" want="$2" got="$3"
  [ "$want" = "$got" ] || fail "$what: expected '$want', got '$got'"
  pass "$what"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 12000)) # below the ephemeral range
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "free_port: no free port found" >&2
  return 1
}

# Waits up to $2 seconds (default 10) for a TCP listener on 127.0.0.1:$1.
wait_port() {
  local port="$1" deadline=$((SECONDS + ${2:-10}))
  while ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

file_mode() { stat -c '%a' "$1"; }

# Prints the plain closing line ctest and CI read.
finish() {
  echo "$_PASSES passed, $_FAILS failed"
}
