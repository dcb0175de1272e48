#!/usr/bin/env bash
# Builds everything and runs the system on this machine: a development PKI
# and device registry in .state/demo, with a few enrolled devices.
# Installs missing Debian packages first (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-deps.sh --check >/dev/null 2>&1; then
  echo "==> installing missing packages"
  scripts/install-deps.sh
fi

BUILD=build/release
echo "==> building ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD"

STATE=.state/demo
IOTCTL="$BUILD/tools/iotctl --dir $STATE/pki"
mkdir -p "$STATE"
if [ ! -e "$STATE/pki/ca.crt" ]; then
  echo "==> creating a development PKI in $STATE/pki"
  $IOTCTL pki init --cn "IoT Telemetry Demo CA"
  $IOTCTL cert server gateway --dns localhost --ip 127.0.0.1
  $IOTCTL cert server broker --dns localhost --ip 127.0.0.1
  $IOTCTL cert client gateway-mqtt --role gateway
  $IOTCTL cert client demo-consumer --role consumer
fi
for id in demo-sensor-1 demo-sensor-2 demo-sensor-3; do
  if ! $IOTCTL device show "$id" >/dev/null 2>&1; then
    echo "==> enrolling $id"
    $IOTCTL device add "$id" >/dev/null
  fi
done
echo "==> certificates"
$IOTCTL cert list
echo "==> enrolled devices"
$IOTCTL device list
