# shellcheck shell=bash
# Helpers for the fleet console's tests: its certificates and operator, a
# configuration for the PKI of gateway_lib.sh, the daemon, and curl with a
# session. Source after lib.sh and gateway_lib.sh.

IOTCONSOLE="$IOT_BUILD_DIR/console/iotconsole"
CONSOLE_PASSWORD="correct horse battery staple"

# console_pki: the console's server certificate, its MQTT identity (role
# console) and operator alice.
console_pki() {
  "$IOTCTL" --dir "$P" cert server console --dns localhost --ip 127.0.0.1 >/dev/null
  "$IOTCTL" --dir "$P" cert client console-mqtt --role console >/dev/null
  echo "$CONSOLE_PASSWORD" | "$IOTCTL" --dir "$P" operator add alice >/dev/null
}

# write_console_config [EXTRA LINES...]: $T/console.conf; the gateway (its
# admin port and token) and the broker when they were started.
write_console_config() {
  CONSOLE_PORT="${CONSOLE_PORT:-$(free_port)}"
  ORIGIN="https://localhost:$CONSOLE_PORT"
  cat >"$T/console.conf" <<CONF
listen = 127.0.0.1:$CONSOLE_PORT
tls_cert = $P/servers/console/cert.pem
tls_key = $P/servers/console/key.pem
operators = $P/operators
registry = $P/registry.db
state = $T/console.db
web_dir = $IOT_BUILD_DIR/console/web
fleet_interval = 500ms
CONF
  if [ -n "${ADMIN_PORT:-}" ] && [ -f "$T/admin.token" ]; then
    printf 'gateways = http://127.0.0.1:%s\ngateway_token_file = %s\n' "$ADMIN_PORT" \
      "$T/admin.token" >>"$T/console.conf"
  fi
  if [ -n "${BROKER_PORT:-}" ]; then
    cat >>"$T/console.conf" <<CONF
mqtt_host = localhost
mqtt_port = $BROKER_PORT
mqtt_ca = $P/ca.crt
mqtt_cert = $P/clients/console-mqtt/cert.pem
mqtt_key = $P/clients/console-mqtt/key.pem
CONF
  fi
  local line
  for line in "$@"; do echo "$line" >>"$T/console.conf"; done
}

# admin_token: a token file for the gateway's admin listener and the console.
admin_token() {
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/admin.token"
  chmod 600 "$T/admin.token"
}

# The console's stderr goes to $T/console.log.
start_console() {
  "$IOTCONSOLE" --config "$T/console.conf" 2>>"$T/console.log" &
  _PIDS+=("$!")
  CONSOLE_PID=$!
  wait_port "$CONSOLE_PORT" 15 ||
    fail "iotconsole did not start; see $T/console.log: $(tail -3 "$T/console.log")"
}

# ccurl ARGS...: curl to the console trusting our CA, with the cookie jar
# $T/jar (read and written).
ccurl() {
  curl -sS --cacert "$P/ca.crt" -b "$T/jar" -c "$T/jar" "$@"
}

# console_login [OPERATOR] [PASSWORD]: logs in; $CSRF is the session's token.
console_login() {
  local body
  body="$(jq -cn --arg o "${1:-alice}" --arg p "${2:-$CONSOLE_PASSWORD}" \
    '{operator: $o, password: $p}')"
  CSRF="$(ccurl -H "Origin: $ORIGIN" -H 'Content-Type: application/json' -d "$body" \
    "$ORIGIN/login" | jq -r .csrf_token)"
  [ -n "$CSRF" ] && [ "$CSRF" != null ] || fail "login as ${1:-alice} failed"
}

# cpost PATH [curl args...]: an action with the session's token and Origin;
# prints "STATUS BODY".
cpost() {
  local path="$1" code; shift
  code="$(ccurl -o "$T/.cresp" -w '%{http_code}' -X POST -H "Origin: $ORIGIN" \
    -H "X-CSRF-Token: $CSRF" "$@" "$ORIGIN$path")" || true
  echo "${code:-000} $(cat "$T/.cresp")"
}
