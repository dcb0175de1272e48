#!/usr/bin/env bash
# The shipped alerting rules (deploy/prometheus/iotgw-alerts.yml) are valid
# for promtool, name only metrics the gateway exports, and fire: a
# quarantined reading pages within one evaluation, a broker disconnected
# for 5 minutes pages (promtool test rules with synthetic series); every
# alert has a test case.
. "$(dirname "$0")/lib.sh"

RULES="$IOT_SOURCE_DIR/deploy/prometheus/iotgw-alerts.yml"
command -v promtool >/dev/null || fail "promtool is missing: run scripts/install-deps.sh"
expect_ok "promtool check rules" promtool check rules "$RULES"
(cd "$IOT_SOURCE_DIR/tests/integration" && promtool test rules prometheus_rules.tests.yml) >"$T/test.out" 2>&1 ||
  fail "promtool test rules: $(cat "$T/test.out")"
pass "the alerts fire on the synthetic series (promtool test rules)"

# Every alert has a test case in which it fires.
untested="$(comm -23 <(awk '$1 == "-" && $2 == "alert:" { print $3 }' "$RULES" | sort -u) \
  <(awk '$1 == "alertname:" { print $2 }' "$IOT_SOURCE_DIR/tests/integration/prometheus_rules.tests.yml" | sort -u))"
[ -z "$untested" ] || fail "alerts without a promtool test case: $untested"
pass "every alert has a promtool test case ($(grep -c -- '- alert:' "$RULES") alerts)"

# Every iotgw_ metric the rules use is one the gateway renders.
for m in $(grep -o 'iotgw_[a-z_]*' "$RULES" | sort -u); do
  grep -qw "$m" "$IOT_SOURCE_DIR/gateway/src/metrics.c" || fail "the rules use $m, which the gateway does not export"
done
pass "the rules use only metrics the gateway exports"
finish
