#!/usr/bin/env bash
# Regenerates what the gateway's option table (gateway/lib/config.c)
# produces: deploy/gateway/iotgw.conf.example and the option reference in
# docs/configuration.md. The unit tests fail until both match the table.
#   scripts/regen-config-docs.sh [BUILD_DIR]     (default build/asan)
set -euo pipefail
cd "$(dirname "$0")/.."
gen="${1:-build/asan}/gateway/gen_config_example"
[ -x "$gen" ] || { echo "regen-config-docs: $gen not built; run scripts/test.sh or cmake --build first" >&2; exit 1; }
"$gen" >deploy/gateway/iotgw.conf.example
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
"$gen" --markdown >"$table"
python3 - "$table" <<'PY'
import sys
doc = open("docs/configuration.md").read()
table = open(sys.argv[1]).read()
b = "<!-- options:begin -->\n"; e = "<!-- options:end -->"
i = doc.index(b) + len(b); j = doc.index(e, i)
open("docs/configuration.md", "w").write(doc[:i] + table + doc[j:])
PY
echo "regenerated deploy/gateway/iotgw.conf.example and docs/configuration.md"
