#!/usr/bin/env bash
# Cyclomatic complexity of the product's C functions (pmccabe, Debian
# package pmccabe): how many functions fall in each band, and the most
# complex ones. The figure is pmccabe's traditional McCabe number (every
# case of a switch counts), its second column. docs/code-quality.md keeps
# the last report and the rule for new code.
#
#   scripts/complexity.sh [--top N] [DIR...]   default: the product dirs
set -euo pipefail
cd "$(dirname "$0")/.."

top=10
if [ "${1:-}" = --top ]; then
  top="$2"
  shift 2
fi
[ $# -gt 0 ] || set -- core common gateway ports tools firmware console
command -v pmccabe >/dev/null || {
  echo "complexity: pmccabe is not installed (Debian package pmccabe)" >&2
  exit 1
}

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
find "$@" \( -name build -o -name managed_components \) -prune -o -type f -name '*.c' -print |
  sort | xargs pmccabe | sort -k2,2nr -k6 >"$report"

awk '{
  c = $2; n++
  if (c <= 5) b[1]++; else if (c <= 10) b[2]++; else if (c <= 15) b[3]++;
  else if (c <= 20) b[4]++; else if (c <= 30) b[5]++; else b[6]++
} END {
  split("1-5 6-10 11-15 16-20 21-30 31+", name, " ")
  printf "%-8s %9s\n", "band", "functions"
  for (i = 1; i <= 6; i++) printf "%-8s %9d\n", name[i], b[i]
  printf "%-8s %9d\n", "total", n
}' "$report"
echo
echo "top $top:"
head -n "$top" "$report" | awk '{ printf "%4d  %s\n", $2, $6 " " $7 }'
