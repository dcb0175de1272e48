#!/usr/bin/env bash
# iotctl vuln scan: OSV advisories matched against the SBOMs the build
# wrote and a fleet inventory. The Debian advisories are made here from
# dpkg-query, so they name this machine's own OpenSSL: one whose range
# contains our version is reported with the simulated devices that run
# the affected image, one whose fix is our version is not; a VEX statement
# suppresses a match and the report says why; malformed input is refused
# naming the file (exit 2); exit 1 only when something is affected.
. "$(dirname "$0")/lib.sh"

S="$IOT_BUILD_DIR/sbom"
for f in iotsim iot-gateway iotctl; do
  [ -s "$S/$f.cdx.json" ] || fail "no $S/$f.cdx.json: build the default target (ninja sbom)"
done
SIM_VERSION="$(jq -r .metadata.component.version "$S/iotsim.cdx.json")"
SRC="$(dpkg-query -W -f='${source:Package}' libssl3)"
VER="$(dpkg-query -W -f='${source:Version}' libssl3)"
# A version just above ours and one just below, in Debian order.
NEXT="${VER}+sec1"
PREV="${VER}~pre1"
dpkg --compare-versions "$NEXT" gt "$VER" && dpkg --compare-versions "$PREV" lt "$VER" ||
  fail "fixture versions are not ordered around $VER"

A="$T/advisories"
mkdir "$A"
cat >"$A/DSA-9001-1.json" <<JSON
{"schema_version": "1.6.0", "id": "DSA-9001-1", "aliases": ["CVE-2099-1001"],
 "summary": "$SRC: flaw fixed after our version", "modified": "2026-12-01T00:00:00Z",
 "database_specific": {"severity": "high"},
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "$SRC",
                           "purl": "pkg:deb/debian/$SRC?distro=debian-12"},
               "ranges": [{"type": "ECOSYSTEM",
                           "events": [{"introduced": "0"}, {"fixed": "$NEXT"}]}]}]}
JSON
cat >"$A/DSA-9002-1.json" <<JSON
{"id": "DSA-9002-1", "summary": "$SRC: flaw fixed in our version",
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "$SRC"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "$VER"}]}]}]}
JSON
cat >"$A/DSA-9003-1.json" <<JSON
{"id": "DSA-9003-1", "summary": "$SRC: flaw introduced after our version",
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "$SRC"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "$NEXT"}]}]}]}
JSON
# The same package in another Debian release does not concern us.
cat >"$A/DSA-9004-1.json" <<JSON
{"id": "DSA-9004-1", "summary": "$SRC in Debian 11",
 "affected": [{"package": {"ecosystem": "Debian:11", "name": "$SRC", "purl": "pkg:deb/debian/$SRC?distro=debian-11"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}
JSON
# Withdrawn by the database: never reported.
jq '.id = "DSA-9000-1" | .withdrawn = "2026-12-02T00:00:00Z"' "$A/DSA-9001-1.json" >"$A/DSA-9000-1.json"
echo "not an advisory, not read" >"$A/README.txt"

INV="$T/fleet.json"
cat >"$INV" <<JSON
{"generated": 1796000000, "devices": [
  {"device": "sim-1", "firmware": "$SIM_VERSION", "secure_version": 3, "last_seen": 1796000000},
  {"device": "sim-2", "firmware": "$SIM_VERSION", "boot_count": 4},
  {"device": "sim-old", "firmware": "0.0.1"},
  {"device": "sim-new", "firmware": ""}]}
JSON

scan() { "$IOTCTL" vuln scan --advisories "$A" --sbom "$S/iotsim.cdx.json" \
  --sbom "$S/iot-gateway.cdx.json" --inventory "$INV" "$@"; }

run scan
[ "$RC" -eq 1 ] || fail "an affecting advisory: expected exit 1, got $RC: $OUT $ERR"
grep -q "^DSA-9001-1 \[high\]" <<<"$OUT" || fail "DSA-9001-1 not reported: $OUT"
grep -q "libssl3 $VER (source $SRC) in iotsim $SIM_VERSION: fixed in $NEXT" <<<"$OUT" ||
  fail "installed and fixed versions not reported: $OUT"
grep -q "devices (2): sim-1 ($SIM_VERSION) sim-2 ($SIM_VERSION)" <<<"$OUT" ||
  fail "affected devices not reported: $OUT"
pass "an advisory whose range holds our $SRC $VER is reported with the devices running it"
for id in DSA-9000-1 DSA-9002-1 DSA-9003-1 DSA-9004-1; do
  grep -q "$id" <<<"$OUT" && fail "$id does not affect us but is reported: $OUT"
done
pass "advisories withdrawn, fixed in our version, introduced after it, or for Debian 11 are not reported"
grep -q "^5 advisories read, 1 affect us (2 devices)" <<<"$OUT" || fail "summary line: $OUT"
pass "summary counts 5 advisories, the .txt file not read"

run scan --json
[ "$RC" -eq 1 ] || fail "--json: expected exit 1, got $RC"
J="$OUT"
expect_eq "json: one advisory" "DSA-9001-1" "$(jq -r '[.affected[].id] | join(",")' <<<"$J")"
expect_eq "json: fixed version" "$NEXT" \
  "$(jq -r '.affected[0].components[] | select(.sbom == "iotsim") | .fixed' <<<"$J")"
expect_eq "json: installed version (the source package's)" "$VER" \
  "$(jq -r '.affected[0].components[] | select(.sbom == "iot-gateway") | .installed' <<<"$J")"
expect_eq "json: devices" "sim-1 sim-2" "$(jq -r '[.affected[0].devices[].device] | join(" ")' <<<"$J")"
expect_eq "json: alias" "CVE-2099-1001" "$(jq -r '.affected[0].aliases[0]' <<<"$J")"

# Without the simulator's SBOM the gateway is still affected, no device is.
run "$IOTCTL" vuln scan --advisories "$A" --sbom "$S/iot-gateway.cdx.json" --inventory "$INV" --json
expect_eq "gateway SBOM alone: affected, exit 1" 1 "$RC"
expect_eq "gateway SBOM alone: no device" 0 "$(jq '.affected[0].devices | length' <<<"$OUT")"

# Our own components by purl, SemVer ranges: the simulator image itself.
cat >"$A/IOT-2026-1.json" <<JSON
{"id": "IOT-2026-1", "summary": "iotsim image flaw",
 "affected": [{"package": {"purl": "pkg:generic/iot_telemetry/iotsim"},
               "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.5.0"}, {"fixed": "99.0.0"}]}]},
              {"package": {"purl": "pkg:generic/iot_telemetry/iotctl"},
               "ranges": [{"type": "GIT", "repo": "https://example.invalid/x", "events": [{"introduced": "abc"}]}]}]}
JSON
run scan --sbom "$S/iotctl.cdx.json" --json
expect_eq "own component by purl and SemVer" "iotsim $SIM_VERSION 99.0.0" \
  "$(jq -r '.affected[] | select(.id == "IOT-2026-1") | .components[0] | "\(.component) \(.installed) \(.fixed)"' <<<"$OUT")"
expect_eq "a GIT range is listed as not evaluated" "iotctl" \
  "$(jq -r '.unevaluated[] | select(.id == "IOT-2026-1") | .component' <<<"$OUT")"
rm "$A/IOT-2026-1.json"

# The ESP32 firmware (when the ESP-IDF build of esp_idf_build.sh exists):
# an ESP-IDF component advisory by purl and SemVer, with the devices that
# report that firmware version.
FWDESC="$IOT_BUILD_DIR/esp-idf/production/project_description.json"
if [ -f "$FWDESC" ]; then
  /usr/bin/python3 "$IOT_SOURCE_DIR/scripts/sbom.py" esp32 --project-description "$FWDESC" \
    --out "$T/fw.cdx.json" || fail "ESP32 SBOM not made"
  FWV="$(jq -r .metadata.component.version "$T/fw.cdx.json")"
  IDFV="$(jq -r '.components[] | select(.type == "framework") | .version' "$T/fw.cdx.json")"
  mkdir "$T/esp-adv"
  cat >"$T/esp-adv/ESP-1.json" <<JSON
{"id": "ESP-2026-1", "summary": "lwIP flaw",
 "affected": [{"package": {"purl": "pkg:github/espressif/esp-idf#components/lwip"},
               "ranges": [{"type": "SEMVER", "events": [{"introduced": "5.0.0"}, {"fixed": "${IDFV%.*}.$((${IDFV##*.} + 1))"}]}]}]}
JSON
  jq --arg v "$FWV" '.devices += [{"device": "esp-1", "firmware": $v}]' "$INV" >"$T/fleet-esp.json"
  run "$IOTCTL" vuln scan --advisories "$T/esp-adv" --sbom "$T/fw.cdx.json" --inventory "$T/fleet-esp.json" --json
  expect_eq "ESP-IDF component advisory: exit 1" 1 "$RC"
  expect_eq "ESP-IDF lwip $IDFV affected, device esp-1" "lwip $IDFV esp-1" \
    "$(jq -r '.affected[0] | "\(.components[0].component) \(.components[0].installed) \([.devices[].device] | join(","))"' <<<"$OUT")"
else
  echo "# no ESP-IDF build at ${FWDESC%/*}: ESP32 firmware matching not checked"
fi

# VEX: not_affected for the alias, with its reason.
VEX="$T/vex.cdx.json"
cat >"$VEX" <<JSON
{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
 "vulnerabilities": [{"id": "CVE-2099-1001",
   "analysis": {"state": "not_affected", "justification": "code_not_reachable",
                "detail": "the gateway never calls the affected function"},
   "affects": [{"ref": "$(jq -r '.components[] | select(.name == "libssl3") | ."bom-ref"' "$S/iot-gateway.cdx.json")"}]},
  {"id": "DSA-9002-1", "analysis": {"state": "in_triage"}}]}
JSON
run scan --vex "$VEX"
expect_eq "all matches suppressed: exit 0" 0 "$RC"
grep -q "^DSA-9001-1" <<<"$OUT" && fail "a suppressed advisory is still reported as affecting: $OUT"
grep -q "suppressed: DSA-9001-1 for libssl3 $VER in iotsim: VEX not_affected (code_not_reachable)" <<<"$OUT" ||
  fail "suppression not shown: $OUT"
grep -q "reason: the gateway never calls the affected function" <<<"$OUT" || fail "VEX detail not shown: $OUT"
pass "a VEX not_affected statement suppresses the match and the output says why"
expect_eq "json: suppressed with justification" "code_not_reachable" \
  "$("$IOTCTL" vuln scan --advisories "$A" --sbom "$S/iotsim.cdx.json" --vex "$VEX" --json | jq -r '.suppressed[0].justification')"
# A VEX statement for another component does not suppress this one.
jq '.vulnerabilities[0].affects[0].ref = "pkg:deb/debian/libc6@1?arch=amd64&distro=debian-12"' "$VEX" >"$T/vex-other.json"
run scan --vex "$T/vex-other.json"
expect_eq "VEX for another component: still affected" 1 "$RC"

# Nothing affected: exit 0.
rm "$A/DSA-9001-1.json"
run scan
expect_eq "no affecting advisory: exit 0" 0 "$RC"
grep -q "^4 advisories read, 0 affect us" <<<"$OUT" || fail "summary: $OUT"

# Input errors: exit 2, naming the file.
printf '{"id": "DSA-9005-1", "affected": [' >"$A/DSA-9005-1.json"
expect_fail "truncated advisory" 2 "$A/DSA-9005-1.json: not valid JSON" scan
echo '{"summary": "no id"}' >"$A/DSA-9005-1.json"
expect_fail "advisory without id" 2 "$A/DSA-9005-1.json: not an OSV advisory" scan
echo '{"id": "X-1", "affected": [{"package": "openssl"}]}' >"$A/DSA-9005-1.json"
expect_fail "advisory with a string package" 2 "$A/DSA-9005-1.json: affected\[0\] needs a \"package\" object" scan
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$A/DSA-9005-1.json"
expect_fail "advisory over 1 MiB" 2 "DSA-9005-1.json" scan
rm "$A/DSA-9005-1.json"
echo '{"devices": {}}' >"$T/bad-inv.json"
expect_fail "inventory without a devices array" 2 "$T/bad-inv.json: no \"devices\" array" \
  "$IOTCTL" vuln scan --advisories "$A" --sbom "$S/iotsim.cdx.json" --inventory "$T/bad-inv.json"
echo '{"bomFormat": "CycloneDX", "vulnerabilities": [{"id": "X"}]}' >"$T/bad-vex.json"
expect_fail "VEX entry without analysis.state" 2 "$T/bad-vex.json: vulnerabilities\[0\]" \
  "$IOTCTL" vuln scan --advisories "$A" --sbom "$S/iotsim.cdx.json" --vex "$T/bad-vex.json"
expect_fail "SBOM that is not CycloneDX" 2 "$INV: not a CycloneDX SBOM" \
  "$IOTCTL" vuln scan --advisories "$A" --sbom "$INV"
expect_fail "missing advisory directory" 2 "$T/nope" \
  "$IOTCTL" vuln scan --advisories "$T/nope" --sbom "$S/iotsim.cdx.json"
expect_fail "no --sbom" 2 "at least one --sbom" "$IOTCTL" vuln scan --advisories "$A"
finish
