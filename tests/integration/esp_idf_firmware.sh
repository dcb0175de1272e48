#!/usr/bin/env bash
# The ESP-IDF port (ports/esp-idf) and firmware (firmware/esp32), checked
# on a machine without ESP-IDF (the firmware's core component takes its
# file list from core/iotdFilePaths.cmake, so it cannot drift from core/):
#   1. the port and firmware sources use nothing the project forbids
#      (unbounded string functions, atoi, allocation, stdio, the core's
#      private header, and floating point outside the one driver that
#      hands out a float);
#   2. every CONFIG_IOTD_ option the sources read exists in Kconfig, and
#      the stand-in sdkconfig.h defines no option Kconfig lacks;
#   3. every source compiles with gcc -fsyntax-only against the API
#      stand-ins of tests/support/esp-idf-stubs, in each configuration that changes
#      what is compiled, and the configurations the sources refuse fail
#      with their own message;
#   4. ident-csv.sh turns what iotctl issued into the CSV of the "ident"
#      partition, and refuses a key, CA or certificate that do not belong
#      together.
# Check 1 is also run on a planted mistake, so it is shown to catch what
# it looks for.
. "$(dirname "$0")/lib.sh"

SRC="$IOT_SOURCE_DIR"
PORT="$SRC/ports/esp-idf"
FW="$SRC/firmware/esp32"
STANDINS="$SRC/tests/support/esp-idf-stubs/include"

# ---- 1. forbidden calls and constructs -----------------------------------

# Comments are stripped (gcc -fpreprocessed) so prose can name anything.
FORBIDDEN_CALLS='\b(sprintf|vsprintf|strcpy|strcat|atoi|atol|atoll|gets|strtok|malloc|calloc|realloc|free|printf|puts|fprintf)[[:space:]]*\('
FLOAT_ALLOWED='tsens.c' # temperature_sensor_get_celsius() returns a float

# scan FILE...: prints "file: what" for each violation.
scan() {
  local f code
  for f in "$@"; do
    code="$(gcc -fpreprocessed -dD -E -P -x c "$f" 2>/dev/null)" ||
      { echo "$f: does not preprocess"; continue; }
    printf '%s\n' "$code" | grep -Eq "$FORBIDDEN_CALLS" &&
      echo "$f: $(printf '%s\n' "$code" | grep -Eo "$FORBIDDEN_CALLS" | head -1)"
    printf '%s\n' "$code" | grep -Eq '#[[:space:]]*include[[:space:]]*[<"](stdio\.h|internal\.h)[>"]' &&
      echo "$f: includes stdio.h or the core's private internal.h"
    printf '%s\n' "$code" | grep -q 'core/src' && echo "$f: reaches into core/src"
    if [ "$(basename "$f")" != "$FLOAT_ALLOWED" ] &&
      printf '%s\n' "$code" | grep -Eq '\b(float|double)\b'; then
      echo "$f: floating point"
    fi
  done
  return 0
}

# With the mbedTLS code the port compiles from ports/mbedtls and the
# response reader from ports/posix (checked for
# the same rules here; it is compiled for real by the host build and by
# esp_idf_build.sh).
mapfile -t SOURCES < <(ls "$PORT"/src/*.c "$PORT"/src/*.h "$PORT"/include/iotd_esp/*.h \
  "$FW"/main/*.c "$FW"/main/*.h "$SRC"/ports/mbedtls/src/*.c "$SRC"/ports/mbedtls/include/*/*.h \
  "$SRC"/ports/posix/src/http_response.c "$SRC"/ports/posix/include/iotd_posix/http_response.h)
[ "${#SOURCES[@]}" -ge 15 ] || fail "expected the port and firmware sources, found ${#SOURCES[@]}"
violations="$(scan "${SOURCES[@]}")"
[ -z "$violations" ] || fail "forbidden constructs: $violations"
pass "port and firmware sources (${#SOURCES[@]} files) use nothing forbidden"

cat >"$T/bad.c" <<'EOF'
/* sprintf( in a comment is fine */
#include <stdio.h>
static void f(char *b, const char *s) { sprintf(b, "%s", s); double d = 0; (void)d; }
EOF
planted="$(scan "$T/bad.c" | sed "s|$T/||" | tr '\n' '|')"
expect_eq "the scan flags a planted call, include and float" \
  "bad.c: sprintf(|bad.c: includes stdio.h or the core's private internal.h|bad.c: floating point|" \
  "$planted"

# ---- 2. Kconfig options ---------------------------------------------------

KCONFIG="$FW/main/Kconfig.projbuild"
defined="$(grep -Eo '^[[:space:]]*config[[:space:]]+IOTD_[A-Z0-9_]+' "$KCONFIG" |
  awk '{print "CONFIG_" $2}' | sort -u)"
used="$(cat "${SOURCES[@]}" "$PORT/CMakeLists.txt" "$FW/main/CMakeLists.txt" |
  grep -Eo 'CONFIG_IOTD_[A-Z0-9_]+' | sort -u)"
unknown="$(comm -13 <(printf '%s\n' "$defined") <(printf '%s\n' "$used"))"
[ -z "$unknown" ] || fail "options used but not in Kconfig.projbuild: $unknown"
pass "every CONFIG_IOTD_ option the sources read is defined in Kconfig ($(printf '%s\n' "$used" | wc -l) used)"
extra_options="$(comm -13 <(printf '%s\n' "$defined") \
  <(grep -Eo 'CONFIG_IOTD_[A-Z0-9_]+' "$STANDINS/sdkconfig.h" | sort -u))"
[ -z "$extra_options" ] || fail "the stand-in sdkconfig.h has options Kconfig lacks: $extra_options"
pass "the stand-in sdkconfig.h names only real options"

# ---- 3. syntax check against the stand-ins --------------------------------

CFLAGS=(-std=gnu17 -fsyntax-only -Wall -Wextra -Werror -Wshadow -Wformat=2
  -Wstrict-prototypes -Wmissing-prototypes -Wimplicit-fallthrough -Wpointer-arith
  -Wcast-qual -Wvla -Wwrite-strings
  -I"$STANDINS" -I"$PORT/include" -I"$PORT/src" -I"$SRC/core/include" -I"$FW/main"
  -I"$SRC/ports/mbedtls/include" -I"$SRC/ports/posix/include")
mapfile -t C_FILES < <(ls "$PORT"/src/*.c "$FW"/main/*.c "$SRC"/ports/posix/src/http_response.c)

# compile_all NAME -D...: every source, one configuration.
compile_all() {
  local name="$1" f failed=""
  shift
  for f in "${C_FILES[@]}"; do
    if ! gcc "${CFLAGS[@]}" "$@" "$f" 2>"$T/cc.err"; then
      failed+="$(basename "$f") "
      cat "$T/cc.err" >&2
    fi
  done
  [ -z "$failed" ] || fail "$name: does not compile: $failed"
  pass "$name: ${#C_FILES[@]} sources compile against the ESP-IDF stand-ins"
}

compile_all "defaults (C3, identity in NVS)"
compile_all "BME280, deep sleep, CSR on device, NVS encryption" \
  -DCONFIG_IOTD_BME280=1 -DCONFIG_IOTD_BME280_PULLUPS=1 -DCONFIG_IOTD_DEEP_SLEEP=1 \
  -DCONFIG_IOTD_CSR_ON_DEVICE=1 -DCONFIG_NVS_ENCRYPTION=1 \
  -DCONFIG_NVS_SEC_KEY_PROTECT_USING_FLASH_ENC=1
compile_all "NVS encryption with the HMAC key scheme (the ESP32-C3 production default)" \
  -DCONFIG_NVS_ENCRYPTION=1 -DCONFIG_NVS_SEC_KEY_PROTECT_USING_HMAC=1 -DCONFIG_NVS_SEC_HMAC_EFUSE_KEY_ID=5
compile_all "original ESP32 with BME280, embedded identity, updates in a window" \
  -DCONFIG_SOC_TEMP_SENSOR_SUPPORTED=0 -DCONFIG_IOTD_BME280=1 -DCONFIG_IOTD_IDENTITY_EMBEDDED=1 \
  -DCONFIG_IOTD_FW_UPDATE_WINDOW=1
compile_all "updates off" -DCONFIG_IOTD_FW_UPDATE_OFF=1

# expect_refused NAME FILE PATTERN -D...: the source stops the build itself.
expect_refused() {
  local name="$1" file="$2" pattern="$3"
  shift 3
  if gcc "${CFLAGS[@]}" "$@" "$file" 2>"$T/cc.err"; then
    fail "$name: compiled, expected it to be refused"
  fi
  grep -q -- "$pattern" "$T/cc.err" || fail "$name: refused for another reason: $(cat "$T/cc.err")"
  pass "$name: refused with its own message"
}

expect_refused "a chip without any temperature sensor" "$FW/main/main.c" \
  "no internal temperature sensor" -DCONFIG_SOC_TEMP_SENSOR_SUPPORTED=0
expect_refused "the BME280 on ESP-IDF 5.1" "$PORT/src/bme280.c" \
  "needs the I2C master driver of ESP-IDF 5.2" -DESP_IDF_VERSION_MINOR=1

# ---- 4. provisioning CSV from iotctl's files -------------------------------

IDENT_CSV="$FW/ident-csv.sh"
expect_ok "pki init" "$IOTCTL" --dir "$T/pki" pki init
expect_ok "device add dev-1 (key made by iotctl)" "$IOTCTL" --dir "$T/pki" device add dev-1
expect_ok "device add dev-2" "$IOTCTL" --dir "$T/pki" device add dev-2

D1="$T/pki/devices/dev-1"
expect_ok "ident-csv for the development flow" bash "$IDENT_CSV" "$D1" "$T/dev-1.csv"
expect_eq "the CSV names namespace, certificate, CA and key by absolute path" \
  "key,type,encoding,value
ident,namespace,,
cert,file,string,$D1/cert.pem
ca,file,string,$D1/ca.pem
key,file,string,$D1/key.pem" "$(cat "$T/dev-1.csv")"
expect_eq "a CSV that points at a key is private" 600 "$(file_mode "$T/dev-1.csv")"
echo "$OUT" | grep -q "device dev-1" || fail "ident-csv did not name the device: $OUT"
pass "ident-csv names the device from the certificate's CN"

# Production flow: the device's own key, a CSR, no key.pem next to the
# certificate, so the partition must not carry one.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/dev-3.key" 2>/dev/null
openssl req -new -key "$T/dev-3.key" -subj "/CN=dev-3" -out "$T/dev-3.csr"
expect_ok "device add dev-3 --csr" "$IOTCTL" --dir "$T/pki" device add dev-3 --csr "$T/dev-3.csr"
D3="$T/pki/devices/dev-3"
[ ! -e "$D3/key.pem" ] || fail "iotctl wrote a key for a CSR device"
expect_ok "ident-csv for the CSR flow" bash "$IDENT_CSV" "$D3" "$T/dev-3.csv"
expect_eq "the CSR flow's CSV has no key" \
  "key,type,encoding,value
ident,namespace,,
cert,file,string,$D3/cert.pem
ca,file,string,$D3/ca.pem" "$(cat "$T/dev-3.csv")"

mkdir -p "$T/mixed"
cp "$D1/cert.pem" "$D1/ca.pem" "$T/mixed/"
cp "$T/pki/devices/dev-2/key.pem" "$T/mixed/key.pem"
expect_fail "ident-csv refuses another device's key" 1 "not the certificate's" \
  bash "$IDENT_CSV" "$T/mixed" "$T/mixed.csv"
[ ! -e "$T/mixed.csv" ] || fail "a refused CSV was written"

expect_ok "a second, unrelated CA" "$IOTCTL" --dir "$T/other" pki init
mkdir -p "$T/foreign"
cp "$D1/cert.pem" "$D1/key.pem" "$T/foreign/"
cp "$T/other/ca.crt" "$T/foreign/ca.pem"
expect_fail "ident-csv refuses a CA the certificate does not chain to" 1 "does not chain" \
  bash "$IDENT_CSV" "$T/foreign" "$T/foreign.csv"
expect_fail "ident-csv without a certificate" 1 "no such file" \
  bash "$IDENT_CSV" "$T/nowhere" "$T/x.csv"
expect_fail "ident-csv with a wrong command line" 2 "usage" bash "$IDENT_CSV" "$D1"

finish
