#!/usr/bin/env bash
# The admin listener's /metrics, as an operator's Prometheus reads it: valid
# for `promtool check metrics`, every metric documented in docs/gateway.md,
# and the values that matter for alerts right: certificate expiry, CRL
# nextUpdate, build info, outbox capacity, open descriptors and the
# histogram of outbox commit time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

command -v promtool >/dev/null || fail "promtool is missing: run scripts/install-deps.sh (Debian package prometheus)"

make_pki dev-001
start_broker
write_gateway_config "outbox_max = 4321"
start_gateway
M="$T/metrics.txt"
scrape() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$M"; }

for i in 1 2 3; do
  r="$(post dev-001 application/json "{\"seq\":$i,\"temperature\":2$i}")"
  expect_eq "reading $i stored" '200 {"stored":1,"duplicates":0}' "$r"
done
scrape

# --- the format ------------------------------------------------------------------------
run promtool check metrics <"$M"
[ "$RC" -eq 0 ] && [ -z "$OUT$ERR" ] || fail "promtool check metrics: exit $RC: $OUT $ERR"
pass "promtool check metrics finds no problem in /metrics"

# Every metric is documented, and old names are gone.
for name in $(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$M"); do
  grep -q "\`$name[\`{]" "$IOT_SOURCE_DIR/docs/gateway.md" || fail "metric $name is not documented in docs/gateway.md"
done
pass "every metric in /metrics is documented in docs/gateway.md ($(grep -c '^# TYPE' "$M") metrics)"
for old in iotgw_device_dropped_readings_total iotgw_crl_revoked; do
  [ -z "$(awk -v m="$old" '$1 == m' "$M")" ] || fail "the old name $old is still exported"
done
pass "renamed: iotgw_readings_dropped_by_device_total, iotgw_crl_revoked_certificates"
grep -q '^iotgw_readings_dropped_by_device_total ' "$M" || fail "iotgw_readings_dropped_by_device_total missing"
grep -q '^iotgw_crl_revoked_certificates ' "$M" || fail "iotgw_crl_revoked_certificates missing"

# --- values ---------------------------------------------------------------------------------
value() { awk -v m="$1" '$1 == m { print $2 }' "$M"; }
not_after() { date -d "$(openssl x509 -noout -enddate -in "$1" | cut -d= -f2)" +%s; }
expect_eq "expiry of the server certificate" "$(not_after "$P/servers/gateway/cert.pem")" \
  "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="server"}')"
expect_eq "expiry of the MQTT client certificate" "$(not_after "$P/clients/gateway-mqtt/cert.pem")" \
  "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="mqtt_client"}')"
expect_eq "expiry of the CA" "$(not_after "$P/ca.crt")" \
  "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="ca"}')"
expect_eq "expiry of the broker's CA" "$(not_after "$P/ca.crt")" \
  "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="mqtt_ca"}')"
broker_expiry() { scrape && [ -n "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="broker"}')" ]; }
wait_until 10 "the broker's certificate in /metrics" broker_expiry
expect_eq "expiry of the broker's certificate, as verified at connect" \
  "$(not_after "$P/servers/broker/cert.pem")" \
  "$(value 'iotgw_certificate_expiry_timestamp_seconds{certificate="broker"}')"
next_update="$(date -d "$(openssl crl -in "$P/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)"
expect_eq "CRL nextUpdate" "$next_update" "$(value iotgw_crl_next_update_timestamp_seconds)"
expect_eq "iotgw_outbox_max is outbox_max" 4321 "$(value iotgw_outbox_max)"
openssl_version="$(openssl version | awk '{ print $2 }')"
grep -q "^iotgw_build_info{version=\"[0-9][^\"]*\",openssl=\"$openssl_version\"} 1\$" "$M" ||
  fail "iotgw_build_info does not name the version and OpenSSL $openssl_version: $(grep build_info "$M")"
pass "iotgw_build_info: $(grep '^iotgw_build_info' "$M")"

# The histogram counts every commit; its buckets are cumulative.
commits="$(value iotgw_outbox_commits_total)"
[ "$commits" -ge 1 ] || fail "no outbox commit counted"
expect_eq "iotgw_outbox_commit_seconds_count is the number of commits" "$commits" "$(value iotgw_outbox_commit_seconds_count)"
expect_eq "the +Inf bucket holds every commit" "$commits" "$(value 'iotgw_outbox_commit_seconds_bucket{le="+Inf"}')"
awk '$1 ~ /^iotgw_outbox_commit_seconds_bucket/ { if ($2 < prev) exit 1; prev = $2 }' "$M" ||
  fail "histogram buckets are not cumulative: $(grep commit_seconds_bucket "$M")"
awk '$1 == "iotgw_outbox_commit_seconds_sum" { found = 1; positive = $2 > 0 } END { exit !(found && positive) }' "$M" ||
  fail "the commit time sum is missing or not positive"
pass "iotgw_outbox_commit_seconds: $commits commits, sum $(value iotgw_outbox_commit_seconds_sum) s"

# Open descriptors: /proc/self/fd of the gateway, not a constant.
# The scrape's own connection is open while it counts, not while ls does.
scrape
fds="$(value iotgw_open_fds)" listed="$(ls /proc/"$GW_PID"/fd | wc -l)"
[ "$fds" -ge "$listed" ] && [ "$fds" -le $((listed + 2)) ] ||
  fail "iotgw_open_fds $fds is not the gateway's /proc/$GW_PID/fd count $listed (+ the scrape)"
pass "iotgw_open_fds $fds: the gateway's /proc/$GW_PID/fd count $listed, plus the scrape"
fds="$(value iotgw_open_fds)"
exec {c1}<>"/dev/tcp/127.0.0.1/$GW_PORT" {c2}<>"/dev/tcp/127.0.0.1/$GW_PORT" {c3}<>"/dev/tcp/127.0.0.1/$GW_PORT"
for _ in $(seq 1 50); do
  scrape
  [ "$(value iotgw_open_fds)" -ge $((fds + 3)) ] && break
  sleep 0.1
done
[ "$(value iotgw_open_fds)" -ge $((fds + 3)) ] || fail "three open connections do not show in iotgw_open_fds ($fds -> $(value iotgw_open_fds))"
pass "three open connections show in iotgw_open_fds ($fds -> $(value iotgw_open_fds))"
exec {c1}>&- {c2}>&- {c3}>&-

stop_gateway
finish
