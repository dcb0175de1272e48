#!/usr/bin/env bash
# Long fuzzing runs, for people: every harness of tests/fuzz (or the ones
# named) for an hour each by default, one after the other, with a status
# line a minute (executions, coverage, corpus). A finding stops that
# harness; the input is kept in build/fuzz/artifacts/ and the run's logs in
# the build/fuzz/run.* directory named at the end; the exit status is
# non-zero.
#
#   scripts/fuzz-long.sh                          an hour per harness
#   scripts/fuzz-long.sh --seconds 600 csr_fuzz   ten minutes, one harness
#   scripts/fuzz-long.sh --minimize-into-corpus   then add what reached new
#                                                 coverage to tests/fuzz/corpus/
#
# Other options are those of tests/fuzz/run.sh. Runs are repeatable (seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
  echo "==> installing missing packages"
  scripts/install-deps.sh
fi

args=(--seconds 3600 --progress 60)
for a in "$@"; do
  case "$a" in
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  esac
done
echo "==> fuzzing; findings go to build/fuzz/artifacts/"
# Later options override the defaults above.
exec tests/fuzz/run.sh "${args[@]}" "$@"
