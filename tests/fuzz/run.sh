#!/usr/bin/env bash
# Builds the fuzz harnesses (tests/fuzz/build.sh), then runs each over its
# seed corpus tests/fuzz/corpus/<name>/ with a fixed seed and a bound, and
# prints per harness how many inputs it executed. Fails if any harness finds
# a crash, a sanitizer error, a leak, a timeout or a broken invariant; the
# input that did it is kept in build/fuzz/artifacts/, the logs of a failed
# run in the build/fuzz/run.* directory it names.
#
#   tests/fuzz/run.sh                        the short run of the test suite
#   tests/fuzz/run.sh --runs N               N executions per harness
#   tests/fuzz/run.sh --seconds N            N seconds per harness
#   tests/fuzz/run.sh --progress S ...       a status line every S seconds
#   tests/fuzz/run.sh --minimize-into-corpus ...
#                                            add the inputs that reached new
#                                            coverage to tests/fuzz/corpus/
#   tests/fuzz/run.sh ... csr_fuzz ...       only these harnesses
#
# New inputs go to a scratch corpus of this run, build/fuzz/run.*/<name>/
# (empty at the start, so a run with the same bound is repeatable; removed
# after a run that passed); the repository's corpus is only read, unless
# --minimize-into-corpus is given.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${IOT_FUZZ_DIR:-$SRC/build/fuzz}"
export IOT_FUZZ_DIR="$OUT"

# Executions per harness in the default run: a few seconds each under
# ASan + UBSan on one core of the reference machine (2 cores).
declare -A DEFAULT_RUNS=(
  [payload_fuzz]=300000 [config_fuzz]=30000 [csr_fuzz]=40000
  [registry_fuzz]=3000 [core_response_fuzz]=12000 [manifest_fuzz]=100000
  [proxyv2_fuzz]=200000 [console_fuzz]=200000
)
# Largest input per harness: above what the parser accepts, so its size
# limits are exercised too.
declare -A MAX_LEN=(
  [payload_fuzz]=20000 [config_fuzz]=70000 [csr_fuzz]=4096
  [registry_fuzz]=65536 [core_response_fuzz]=4096 [manifest_fuzz]=2048
  [proxyv2_fuzz]=1024 [console_fuzz]=1024
)
# Seed corpus directory of each harness.
corpus_of() { echo "$SRC/tests/fuzz/corpus/${1%_fuzz}"; }

usage() { sed -n '2,21p' "$0"; }

runs=""
seconds=""
progress=0
minimize=0
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="${2:?--runs needs a number}"; shift 2 ;;
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --progress) progress="${2:?--progress needs a number of seconds}"; shift 2 ;;
    --minimize-into-corpus) minimize=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
for v in "$runs" "$seconds" "$progress"; do
  [[ -z "$v" || "$v" =~ ^[0-9]+$ ]] || { echo "run.sh: '$v' is not a number" >&2; exit 2; }
done
if [ -n "$runs" ] && [ -n "$seconds" ]; then
  echo "run.sh: give --runs or --seconds, not both" >&2
  exit 2
fi
[ ${#names[@]} -gt 0 ] || mapfile -t names < <("$SRC/tests/fuzz/build.sh" --list)

"$SRC/tests/fuzz/build.sh" "${names[@]}"

# Sanitizer findings end the run with the input kept (abort_on_error), and
# leaks count as findings. The caller's options come first; these win.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
mkdir -p "$OUT/artifacts"
RUN="$(mktemp -d "$OUT/run.XXXXXX")"
touch "$RUN/.start" # artifacts newer than this are this run's

# fuzz_stat LOG KEY: a value from libFuzzer's -print_final_stats output.
fuzz_stat() { awk -v k="stat::$2:" '$1 == k { print $2 }' "$1" | tail -1; }
# The last status line ("#N DONE cov: ... corp: ..."), for coverage figures.
status_line() { grep -E '^#[0-9]+' "$1" | tail -1 || true; }

# report_progress PID LOG NAME: prints the latest status line every $progress seconds.
report_progress() {
  local pid="$1" log="$2" name="$3" t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep "$progress"
    kill -0 "$pid" 2>/dev/null || break
    echo "  $name +$((SECONDS - t0))s: $(status_line "$log" | awk '{
      out = substr($1, 2) " execs"
      for (i = 2; i < NF; i++)
        if ($i == "cov:" || $i == "corp:" || $i == "exec/s:") out = out ", " $i " " $(i + 1)
      print out }')"
  done
}

passed=0
failed=0
for name in "${names[@]}"; do
  bin="$OUT/$name"
  seeds="$(corpus_of "$name")"
  work="$RUN/$name"
  log="$RUN/$name.log"
  [ -d "$seeds" ] || { echo "run.sh: no seed corpus $seeds" >&2; exit 1; }
  mkdir -p "$work"
  bound=("-runs=${runs:-${DEFAULT_RUNS[$name]}}")
  [ -z "$seconds" ] || bound=("-max_total_time=$seconds")
  args=(-seed=1 "${bound[@]}" "-max_len=${MAX_LEN[$name]}" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 "-artifact_prefix=$OUT/artifacts/$name-")

  start=$SECONDS
  "$bin" "${args[@]}" "$work" "$seeds" >"$log" 2>&1 &
  pid=$!
  wpid=""
  if [ "$progress" -gt 0 ]; then
    report_progress "$pid" "$log" "$name" &
    wpid=$!
  fi
  rc=0
  wait "$pid" || rc=$?
  if [ -n "$wpid" ]; then
    kill "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
  fi
  took=$((SECONDS - start))

  execs="$(fuzz_stat "$log" number_of_executed_units)"
  cov="$(status_line "$log" | awk '{ for (i = 1; i < NF; i++) if ($i == "cov:") print $(i + 1) }')"
  if [ "$rc" -ne 0 ] || [ -z "$execs" ] || [ "$execs" -eq 0 ]; then
    failed=$((failed + 1))
    echo "FAIL $name: exit $rc after ${execs:-0} executions; the end of $log:" >&2
    tail -n 40 "$log" >&2
    find "$OUT/artifacts" -name "$name-*" -newer "$RUN/.start" | sed 's/^/  kept input: /' >&2
    continue
  fi
  # A run bounded by count must have done all of it, not stopped early.
  want="${runs:-${DEFAULT_RUNS[$name]}}"
  if [ -z "$seconds" ] && [ "$execs" -lt "$want" ]; then
    failed=$((failed + 1))
    echo "FAIL $name: executed $execs inputs, expected $want" >&2
    continue
  fi
  found="$(find "$work" -type f | wc -l)"
  printf 'ok - %-20s %9s execs in %4ss  cov %-5s new inputs %s\n' "$name" "$execs" "$took" \
    "${cov:-?}" "$found"
  passed=$((passed + 1))

  if [ "$minimize" -eq 1 ] && [ "$found" -gt 0 ]; then
    before="$(find "$seeds" -type f | wc -l)"
    "$bin" -merge=1 "-max_len=${MAX_LEN[$name]}" -timeout=10 "$seeds" "$work" \
      >"$RUN/$name.merge.log" 2>&1 ||
      { echo "run.sh: merging into $seeds failed; see $RUN/$name.merge.log" >&2; exit 1; }
    echo "     $name: $(($(find "$seeds" -type f | wc -l) - before)) inputs added to ${seeds#"$SRC"/}"
  fi
done
echo "fuzz: $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
  echo "run.sh: logs and inputs of this run kept in $RUN" >&2
  exit 1
fi
rm -rf "$RUN"
