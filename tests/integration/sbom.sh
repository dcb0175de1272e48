#!/usr/bin/env bash
# The SBOMs the build writes (build/<dir>/sbom/, cmake/Sbom.cmake,
# scripts/sbom.py): they validate against the official CycloneDX 1.6 JSON
# schema (tests/fixtures/cyclonedx, with Debian's python3-jsonschema) and
# carry what BSI TR-03183-2 asks for (sbom_check.py); every shared library
# the programs load is listed with the exact version dpkg reports and its
# purl; our own artifacts' SHA-256 hashes are those of the files built; the
# ESP32 firmware SBOM (from the ESP-IDF build esp_idf_build.sh made, when
# there is one) lists ESP-IDF's version and components.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
S="$IOT_BUILD_DIR/sbom"
SCHEMAS="$IOT_SOURCE_DIR/tests/fixtures/cyclonedx"
CHECK="$IOT_SOURCE_DIR/tests/integration/sbom_check.py"
GEN="$IOT_SOURCE_DIR/scripts/sbom.py"
VERSION="$(sed -n 's/^project(iot_telemetry VERSION \([0-9.]*\).*/\1/p' "$IOT_SOURCE_DIR/CMakeLists.txt")"
[ -n "$VERSION" ] || fail "no project(VERSION) in CMakeLists.txt"

declare -A BIN=([iot-gateway]=gateway/iotgw [iotctl]=tools/iotctl [iotsim]=tools/iotsim)
for name in iot-gateway iotctl iotsim; do
  [ -s "$S/$name.cdx.json" ] || fail "the build wrote no $S/$name.cdx.json"
done
pass "the build wrote iot-gateway, iotctl and iotsim SBOMs"

files=("$S/iot-gateway.cdx.json" "$S/iotctl.cdx.json" "$S/iotsim.cdx.json")
FW="$IOT_BUILD_DIR/esp-idf/production/project_description.json"
if [ -f "$FW" ]; then
  expect_ok "sbom.py esp32 from the ESP-IDF build" "$PY" "$GEN" esp32 --project-description "$FW" \
    --product-version "$VERSION" --out "$T/iot-firmware-esp32.cdx.json"
  files+=("$T/iot-firmware-esp32.cdx.json")
else
  echo "# no ESP-IDF build at ${FW%/*} (integration.esp_idf_build makes it): ESP32 SBOM not checked"
fi

expect_ok "schema and BSI TR-03183-2 fields" "$PY" "$CHECK" "$SCHEMAS" "${files[@]}"
for f in "${files[@]}"; do
  expect_eq "$(basename "$f") specVersion" "1.6" "$(jq -r .specVersion "$f")"
done

# The checker can fail: a timestamp, a version and a hash missing.
jq 'del(.metadata.timestamp) | .components[0].version = "" | del(.metadata.component.hashes)' \
  "$S/iotctl.cdx.json" >"$T/broken.json"
run "$PY" "$CHECK" "$SCHEMAS" "$T/broken.json"
[ "$RC" -eq 1 ] || fail "a broken SBOM passes the check (exit $RC): $OUT $ERR"
for want in "timestamp 'None' is not UTC" "no version" "without a SHA-256 hash"; do
  grep -q "$want" <<<"$OUT" || fail "checker missed '$want': $OUT"
done
pass "the checker refuses an SBOM without timestamp, version or hash"
jq '.components[0].purl = 42' "$S/iotctl.cdx.json" >"$T/badschema.json"
run "$PY" "$CHECK" "$SCHEMAS" "$T/badschema.json"
[ "$RC" -eq 1 ] && grep -q "schema: components/0/purl" <<<"$OUT" ||
  fail "a schema violation passes the check (exit $RC): $OUT $ERR"
pass "the checker refuses a schema violation"

# Our own: product version and the hash of the file built.
for name in iot-gateway iotctl; do
  expect_eq "$name version" "$VERSION" "$(jq -r .metadata.component.version "$S/$name.cdx.json")"
done
sim_default="$(sed -n 's/.*c->fw_version = "\([^"]*\)".*/\1/p' "$IOT_SOURCE_DIR/tools/iotsim/main.c")"
expect_eq "iotsim SBOM version = the firmware version simulated devices report" "$sim_default" \
  "$(jq -r .metadata.component.version "$S/iotsim.cdx.json")"
for name in iot-gateway iotctl iotsim; do
  want="$(sha256sum "$IOT_BUILD_DIR/${BIN[$name]}" | cut -d' ' -f1)"
  expect_eq "$name hash = sha256 of the program built" "$want" \
    "$(jq -r '.metadata.component.hashes[0].content' "$S/$name.cdx.json")"
done
want="$(sha256sum "$IOT_BUILD_DIR/common/libiot_common.a" | cut -d' ' -f1)"
expect_eq "iot_common hash" "$want" \
  "$(jq -r '.components[] | select(.name == "iot_common") | .hashes[0].content' "$S/iot-gateway.cdx.json")"

# Every shared library the gateway loads: its package at dpkg's version,
# with a purl, in the graph.
distro="debian-$(. /etc/os-release && echo "$VERSION_ID")"
n=0
while read -r lib path; do
  pkg="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null || dpkg -S "/usr$path" 2>/dev/null)" ||
    fail "no package owns $path"
  pkg="${pkg%%:*}"
  ver="$(dpkg-query -W -f='${Version}' "$pkg")"
  arch="$(dpkg-query -W -f='${Architecture}' "$pkg")"
  got="$(jq -r --arg n "$pkg" '.components[] | select(.name == $n) | "\(.version) \(.purl)"' "$S/iot-gateway.cdx.json")"
  enc="$(sed 's/:/%3A/' <<<"$ver")"
  [ "$got" = "$ver pkg:deb/debian/$pkg@$enc?arch=$arch&distro=$distro" ] ||
    fail "$lib: SBOM says '$got', dpkg says $pkg $ver ($arch)"
  n=$((n + 1))
done < <(ldd "$IOT_BUILD_DIR/gateway/iotgw" | sed -n 's/^\s*\(\S*\) => \(\/\S*\) .*/\1 \2/p')
[ "$n" -ge 8 ] || fail "only $n shared libraries found by ldd"
pass "all $n shared libraries of the gateway at dpkg's exact version with their purl"
expect_eq "libssl3 licence from its copyright file" "Apache-2.0" \
  "$(jq -r '.components[] | select(.name == "libssl3") | .licenses[0].license.id' "$S/iot-gateway.cdx.json")"
llhttp="$(dpkg-query -W -f='${Version}' node-llhttp)"
expect_eq "llhttp, compiled in, listed as node-llhttp" "$llhttp" \
  "$(jq -r '.components[] | select(.name == "node-llhttp") | .version' "$S/iot-gateway.cdx.json")"
deps="$(jq -r '.dependencies[] | select(.ref == "iot-gateway@'"$VERSION"'") | .dependsOn[]' "$S/iot-gateway.cdx.json")"
grep -q "pkg:deb/debian/libssl3@" <<<"$deps" || fail "the gateway does not depend on libssl3 in the graph"
grep -q "pkg:deb/debian/libcap2@" <<<"$deps" && fail "libcap2 (pulled in by libsystemd) is a direct dependency"
jq -e '.dependencies[] | select(.ref | startswith("pkg:deb/debian/libsystemd0@")) | .dependsOn[] | select(startswith("pkg:deb/debian/libcap2@"))' \
  "$S/iot-gateway.cdx.json" >/dev/null || fail "libsystemd0 -> libcap2 missing from the graph"
pass "dependency graph follows DT_NEEDED"
expect_eq "gateway composition" "complete" "$(jq -r '.compositions[0].aggregate' "$S/iot-gateway.cdx.json")"

if [ -f "$FW" ]; then
  E="$T/iot-firmware-esp32.cdx.json"
  expect_eq "firmware SBOM name" "iot-firmware-esp32" "$(jq -r .metadata.component.name "$E")"
  expect_eq "firmware SBOM version = the app version ESP-IDF built in" \
    "$(jq -r .project_version "$FW")" "$(jq -r .metadata.component.version "$E")"
  idf="$(jq -r '.components[] | select(.type == "framework") | .version' "$E")"
  [[ "$idf" =~ ^5\.[0-9]+\.[0-9]+$ ]] || fail "ESP-IDF version '$idf'"
  for c in freertos lwip mbedtls esp_https_ota app_update; do
    jq -e --arg c "$c" '.components[] | select(.name == $c and .group == "esp-idf")' "$E" >/dev/null ||
      fail "ESP-IDF component $c missing"
  done
  for c in main iotd_core esp-idf; do
    expect_eq "our firmware component $c at the product version" "$VERSION" \
      "$(jq -r --arg c "$c" '.components[] | select(.name == $c and .supplier.name == "iot_telemetry project") | .version' "$E")"
  done
  pass "ESP32 SBOM: ESP-IDF $idf, its components and ours"
fi

# Errors name the file at fault.
expect_fail "sbom.py on a file that is not a program" 2 "readelf -d $T/broken.json|ldd $T/broken.json" \
  "$PY" "$GEN" host --name x --version 1 --binary "$T/broken.json" --out "$T/x.json"
expect_fail "sbom.py on a missing project description" 2 "$T/nope.json" \
  "$PY" "$GEN" esp32 --project-description "$T/nope.json" --out "$T/x.json"
finish
