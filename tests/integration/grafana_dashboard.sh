#!/usr/bin/env bash
# The Grafana dashboard (deploy/grafana/iotgw-fleet.json) as an operator
# imports it: a sound layout, only metrics the gateway exports and documents,
# and every query evaluated by a real Prometheus scraping a real gateway,
# returning data (tests/support/tools/dashboard_check.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

DASH="$IOT_SOURCE_DIR/deploy/grafana/iotgw-fleet.json"
CHECK="$IOT_SOURCE_DIR/tests/support/tools/dashboard_check.py"
command -v prometheus >/dev/null || fail "prometheus is missing: run scripts/install-deps.sh"

run /usr/bin/python3 "$CHECK" static "$DASH" "$IOT_SOURCE_DIR/gateway/src/metrics.c" \
  "$IOT_SOURCE_DIR/docs/gateway.md"
expect_eq "the dashboard's layout and metrics ($OUT)" 0 "$RC"

# A query naming a metric the gateway does not export is caught.
jq '.panels[1].targets[0].expr = "iotgw_no_such_metric"' "$DASH" >"$T/bad.json"
run /usr/bin/python3 "$CHECK" static "$T/bad.json" "$IOT_SOURCE_DIR/gateway/src/metrics.c" \
  "$IOT_SOURCE_DIR/docs/gateway.md"
expect_eq "a dashboard with an unknown metric is refused" 1 "$RC"

make_pki dev-001
start_broker
write_gateway_config
start_gateway
for i in 1 2 3; do
  r="$(post dev-001 application/json "{\"seq\":$i,\"temperature\":2$i}")"
  expect_eq "reading $i stored" '200 {"stored":1,"duplicates":0}' "$r"
done

PROM_PORT="$(free_port)"
cat >"$T/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: iotgw
    static_configs:
      - targets: ['127.0.0.1:$ADMIN_PORT']
CONF
spawn prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn 2>"$T/prometheus.log"
wait_port "$PROM_PORT" 30 || fail "prometheus did not start: $(tail -5 "$T/prometheus.log")"
PROM="http://127.0.0.1:$PROM_PORT"
scraped() {
  curl -s "$PROM/api/v1/query" --data-urlencode 'query=count_over_time(iotgw_build_info[1m]) >= 3' |
    jq -e '.data.result | length == 1' >/dev/null
}
wait_until 30 "three scrapes of the gateway by prometheus" scraped
pass "prometheus scrapes the gateway's /metrics"

run /usr/bin/python3 "$CHECK" live "$DASH" "$PROM"
expect_eq "every dashboard query returns data from the gateway ($OUT)" 0 "$RC"
jq '.panels[1].targets[0].expr = "sum(iotgw_readings_stored_total{instance=\"elsewhere\"})"' \
  "$DASH" >"$T/empty.json"
run /usr/bin/python3 "$CHECK" live "$T/empty.json" "$PROM"
expect_eq "a query that returns nothing is caught" 1 "$RC"
finish
