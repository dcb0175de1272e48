#!/usr/bin/env bash
# firmware/esp32 compiled by ESP-IDF itself for the ESP32-C3, with
# ESP-IDF's own warning flags (-Werror=all), in two configurations:
#   A. the production default (sdkconfig.defaults): internal temperature
#      sensor, identity in NVS, flash encryption in release mode and NVS
#      encryption with the HMAC key scheme; the second-stage bootloader
#      links and fits below the partition table, and the partition table
#      is generated from partitions.csv;
#   B. the development configuration (sdkconfig.development) with the
#      BME280 driver and the key and CSR made on the device.
# For each: the sdkconfig ESP-IDF resolved holds the options asked for
# (a misspelt or unknown Kconfig name would be dropped silently), app
# rollback and anti-rollback among them, and the TLS session tickets; the
# sources the options select
# were compiled and the others not, the mbedTLS manifest crypto
# (ports/mbedtls) included, and our sources compiled without a warning;
# the partition table ESP-IDF generated has otadata and two equal OTA
# slots, no factory or test app, and each slot holds the app with
# APP_HEADROOM_PCT to spare. Firmware updates: the update port and the
# firmware's update code were compiled, their objects call the esp_ota_ops
# functions the port maps (confirm, rollback, activation, ranged writes)
# and the restart, and the trusted signing keys (made here with openssl)
# are built into the image as given; a build without trusted keys, or with
# a private key among them, stops with its own message. The POSTs go over
# esp-tls with the TLS session kept in RTC memory (the record's symbol is
# in an .rtc.data section) and their responses are read by http-parser.
#
# With a real ESP-IDF (IDF_PATH set, idf.py working) it runs `idf.py
# build`; otherwise it uses the compile kit next to the checkout,
# "$IOT_SOURCE_DIR/../shared/esp-idf-kit" (README there), which compiles
# the components but cannot link the application. With neither it exits
# 77 (skipped) and says why. Build directories go under the build tree;
# the kit is only read (its unpacked copy is cached in ~/.cache).
. "$(dirname "$0")/lib.sh"

FW="$IOT_SOURCE_DIR/firmware/esp32"
KIT="$IOT_SOURCE_DIR/../shared/esp-idf-kit"
OUT="$IOT_BUILD_DIR/esp-idf"

skip() {
  echo "esp_idf_build: skipped: $*" >&2
  rm -rf "$T"
  trap - EXIT
  exit 77
}

if [ -n "${IDF_PATH:-}" ] && command -v idf.py >/dev/null 2>&1; then
  MODE=idf
  echo "# using ESP-IDF at $IDF_PATH ($(idf.py --version 2>/dev/null | head -1))"
elif [ -x "$KIT/esp-idf-build.sh" ] && [ -f "$KIT/esp-idf-kit.tar.zst" ]; then
  MODE=kit
  KIT="$(cd "$KIT" && pwd)"
  echo "# using the compile kit at $KIT"
else
  skip "no ESP-IDF: IDF_PATH is not set (or idf.py is not on PATH), and there is no compile kit at $KIT"
fi

# build NAME DEFAULTS [TARGET...]: configures firmware/esp32 in $OUT/NAME
# with the sdkconfig defaults files DEFAULTS (';'-separated) and compiles
# the firmware's own sources (components main, iotd_core, esp-idf) and the
# NVS security provider, plus the given targets.
build() {
  local name="$1" defaults="$2"
  shift 2
  local dir="$OUT/$name"
  # From scratch: ESP-IDF applies the defaults files only to options an
  # existing sdkconfig does not set, and objects of an earlier run must not
  # count.
  rm -rf "$dir"
  mkdir -p "$dir"
  local start=$SECONDS rc=0
  if [ "$MODE" = idf ]; then
    SDKCONFIG_DEFAULTS="$defaults" idf.py -C "$FW" -B "$dir" -D SDKCONFIG="$dir/sdkconfig" \
      -D IDF_TARGET=esp32c3 build >"$dir/esp-idf-build.log" 2>&1 || rc=$?
    : >"$dir/targets.log"
  else
    # First the configuration and the named targets (the partition table
    # at least), then the object files of our sources by name: compiling
    # the component libraries as targets would first build most of
    # ESP-IDF (lwip, mbedtls, ...), four times as long for no more checks.
    SDKCONFIG_DEFAULTS="$defaults" "$KIT/esp-idf-build.sh" "$FW" "$dir" partition-table "$@" \
      >"$dir/kit.out" 2>&1 || rc=$?
    cp "$dir/esp-idf-build.log" "$dir/targets.log" 2>/dev/null || :
    if [ "$rc" -eq 0 ]; then
      mapfile -t objs < <(ninja -C "$dir" -t targets all |
        sed -n 's/^\(esp-idf\/[^:]*__idf_\(main\|iotd_core\|esp-idf\|nvs_sec_provider\)\.dir\/[^:]*\.[cS]\.obj\):.*/\1/p')
      [ "${#objs[@]}" -ge 15 ] || fail "$name: too few object files of the firmware to compile: ${objs[*]}"
      SDKCONFIG_DEFAULTS="$defaults" "$KIT/esp-idf-build.sh" "$FW" "$dir" "${objs[@]}" \
        >>"$dir/kit.out" 2>&1 || rc=$?
    fi
  fi
  echo "# $name: built in $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || fail "$name: the ESP-IDF build failed (exit $rc): $(cat "$dir/targets.log" "$dir/esp-idf-build.log" | grep -E 'error:|Error' | head -10; tail -5 "$dir/kit.out" 2>/dev/null)"
  # Warnings in our sources: ESP-IDF turns only some into errors.
  local ours
  ours="$(cat "$dir/targets.log" "$dir/esp-idf-build.log" |
    grep -E "$IOT_SOURCE_DIR/(firmware/esp32|ports/esp-idf|ports/mbedtls|core)/[^ ]*:[0-9]+:[0-9]+: warning:" | sort -u || true)"
  [ -z "$ours" ] || fail "$name: warnings in the firmware's sources: $ours"
  pass "$name: compiled by ESP-IDF for the ESP32-C3 without an error or a warning in our sources"
  # ESP-IDF's own -Werror=all was on for our sources.
  "$PY" - "$dir/compile_commands.json" "$FW/main/main.c" <<'PYEOF' || fail "$name: main.c was not compiled with -Werror=all"
import json, sys
cmds = json.load(open(sys.argv[1]))
hit = [c for c in cmds if c["file"].endswith("firmware/esp32/main/main.c")]
sys.exit(0 if hit and "-Werror=all" in (hit[0].get("command") or " ".join(hit[0].get("arguments", []))) else 1)
PYEOF
  pass "$name: the firmware was compiled under ESP-IDF's -Werror=all"
}

# expect_config NAME LINE...: each LINE is in the resolved sdkconfig.
expect_config() {
  local name="$1" line missing=""
  shift
  for line in "$@"; do
    grep -qxF -- "$line" "$OUT/$name/sdkconfig" || missing+=" [$line]"
  done
  [ -z "$missing" ] || fail "$name: the resolved sdkconfig lacks:$missing"
  pass "$name: sdkconfig has $*"
}

# An update must fit the slot it goes to, and later releases grow: each
# slot must hold the app plus this share of it.
APP_HEADROOM_PCT=50
# The app's size where none can be linked (the compile kit has no Wi-Fi
# blobs), in bytes: 741,936 measured without the blobs plus 400 KiB for
# them (firmware/esp32/README.md, "Partition layout", says how). With
# ESP-IDF itself the built iotd_esp32.bin is used.
APP_SIZE_ESTIMATE=1151536

# app_size NAME: the size of the app image of build NAME, and where it
# comes from.
app_size() {
  local bin="$OUT/$1/iotd_esp32.bin"
  if [ -f "$bin" ]; then
    echo "$(stat -c %s "$bin") built"
  else
    echo "$APP_SIZE_ESTIMATE estimated"
  fi
}

# check_partitions NAME: the binary partition table ESP-IDF generated for
# build NAME, read back entry by entry (32 bytes each: magic 0xAA50, type,
# subtype, offset, size, label, flags).
check_partitions() {
  local name="$1" size from report
  read -r size from < <(app_size "$name")
  report="$("$PY" - "$OUT/$name/partition_table/partition-table.bin" "$size" "$APP_HEADROOM_PCT" \
    "$(sed -n 's/^CONFIG_PARTITION_TABLE_OFFSET=//p' "$OUT/$name/sdkconfig")" <<'PYEOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
app, pct, table = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
APP, DATA = 0x00, 0x01
FACTORY, OTA_0, OTA_1, TEST = 0x00, 0x10, 0x11, 0x20
OTA_DATA = 0x00
parts = []
for i in range(0, len(data), 32):
    e = data[i:i + 32]
    if e[:2] != b"\xaa\x50":
        break
    kind, sub, off, size = struct.unpack("<BBII", e[2:12])
    parts.append((e[12:28].rstrip(b"\0").decode(), kind, sub, off, size))
errors = []
labels = [p[0] for p in parts]
for want in ("nvs", "nvs_keys", "ident", "otadata", "ota_0", "ota_1"):
    if labels.count(want) != 1:
        errors.append(f"{want} appears {labels.count(want)} times")
apps = {p[2]: p for p in parts if p[1] == APP}
if sorted(apps) != [OTA_0, OTA_1]:
    errors.append(f"app partitions other than ota_0 and ota_1 (subtypes {sorted(apps)}): "
                  "a factory or test app is not allowed")
otadata = [p for p in parts if p[1] == DATA and p[2] == OTA_DATA]
if len(otadata) != 1 or otadata[0][4] != 0x2000:
    errors.append(f"expected one otadata partition of 0x2000 bytes: {otadata}")
if OTA_0 in apps and OTA_1 in apps:
    s0, s1 = apps[OTA_0][4], apps[OTA_1][4]
    if s0 != s1:
        errors.append(f"the OTA slots differ: {s0:#x} and {s1:#x}")
    need = app * (100 + pct) // 100
    if min(s0, s1) < need:
        errors.append(f"a slot of {min(s0, s1)} bytes is below the app's {app} + {pct} % = {need}")
    for p in apps.values():
        if p[3] % 0x10000:
            errors.append(f"{p[0]} at {p[3]:#x} is not on a 64 KiB boundary")
end = table + 0x1000
for label, kind, sub, off, size in sorted(parts, key=lambda p: p[3]):
    if off < end:
        errors.append(f"{label} at {off:#x} overlaps what lies before it (up to {end:#x})")
    end = off + size
if end > 4 * 1024 * 1024:
    errors.append(f"the partitions end at {end:#x}, beyond 4 MB")
if errors:
    print("; ".join(errors))
    sys.exit(1)
print(", ".join(f"{p[0]} {p[3]:#x}+{p[4]:#x}" for p in parts)
      + f"; slot {apps[OTA_0][4]} bytes, app {app} bytes, "
      + f"{(apps[OTA_0][4] - app) * 100 // app} % to spare")
PYEOF
)" || fail "$name: partition table: $report"
  pass "$name: OTA partition table ($from app size): $report"
}

# refused NAME PATTERN DEFAULTS: configuring with DEFAULTS stops, saying
# PATTERN (a configuration step only: a few seconds).
refused() {
  local name="$1" pattern="$2" defaults="$3" dir="$OUT/$1" rc=0
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ "$MODE" = idf ]; then
    SDKCONFIG_DEFAULTS="$defaults" idf.py -C "$FW" -B "$dir" -D SDKCONFIG="$dir/sdkconfig" \
      -D IDF_TARGET=esp32c3 reconfigure >"$dir/out.log" 2>&1 || rc=$?
  else
    SDKCONFIG_DEFAULTS="$defaults" "$KIT/esp-idf-build.sh" "$FW" "$dir" partition-table \
      >"$dir/out.log" 2>&1 || rc=$?
  fi
  [ "$rc" -ne 0 ] || fail "$name: the build was configured, expected it to stop"
  tr -s ' \n' ' ' <"$dir/out.log" | grep -q -- "$pattern" ||
    fail "$name: stopped for another reason: $(grep -A4 'CMake Error' "$dir/out.log" | head -8)"
  pass "$name: the build stops with: $pattern"
}

# calls NAME OBJECT SYMBOL...: the compiled OBJECT (a path under build NAME)
# refers to each SYMBOL, so the code calls it, not just a comment.
calls() {
  local name="$1" obj="$OUT/$1/$2" sym missing=""
  shift 2
  [ -f "$obj" ] || fail "$name: $obj was not compiled"
  "$NM" "$obj" >"$T/nm.out" || fail "$name: $NM could not read $obj"
  for sym in "$@"; do
    grep -Eq "^[[:space:]]*[0-9a-f]*[[:space:]]+[A-Za-z] $sym\$" "$T/nm.out" || missing+=" $sym"
  done
  [ -z "$missing" ] || fail "$name: $(basename "$obj") does not refer to:$missing"
  pass "$name: $(basename "$obj") refers to $*"
}

# updates NAME: the update code of build NAME, and the keys built in.
updates() {
  local name="$1" dir="$OUT/$1"
  calls "$name" esp-idf/esp-idf/CMakeFiles/__idf_esp-idf.dir/src/update.c.obj \
    esp_ota_begin esp_ota_write_with_offset esp_ota_end esp_ota_set_boot_partition \
    esp_ota_mark_app_valid_cancel_rollback esp_ota_mark_app_invalid_rollback_and_reboot \
    esp_ota_get_state_partition esp_partition_read esp_partition_write \
    esp_partition_erase_range esp_app_get_description mbedtls_sha256_starts \
    iotd_esp_https_get
  calls "$name" esp-idf/main/CMakeFiles/__idf_main.dir/fwupdate.c.obj \
    iotd_update_init iotd_update_step iotd_update_trial_result iotd_update_report_json \
    iotd_esp_update_init iotd_mbedtls_manifest_keys esp_restart _binary_fw_trusted_keys_pem_start
  calls "$name" esp-idf/main/CMakeFiles/__idf_main.dir/main.c.obj \
    fwupdate_init fwupdate_step fwupdate_give_up_trial
  calls "$name" esp-idf/main/CMakeFiles/__idf_main.dir/__/__/fw_trusted_keys.pem.S.obj \
    _binary_fw_trusted_keys_pem_start
  cmp -s "$dir/esp-idf/main/fw_trusted_keys.pem" "$T/trusted-keys.pem" ||
    fail "$name: the keys built in are not the trusted-keys file given"
  pass "$name: the trusted signing keys built in are the file given"
}

# session NAME: the POSTs of build NAME go over esp-tls offering the TLS
# session kept across deep sleep, read by http-parser, and the session's
# record is in RTC memory (a section ".rtc.data*"), not in ordinary RAM.
session() {
  local name="$1" port=esp-idf/esp-idf/CMakeFiles/__idf_esp-idf.dir/src obj
  expect_config "$name" CONFIG_ESP_TLS_CLIENT_SESSION_TICKETS=y \
    CONFIG_MBEDTLS_CLIENT_SSL_SESSION_TICKETS=y
  calls "$name" "$port/tls_post.c.obj" esp_tls_init esp_tls_conn_http_new_sync \
    esp_tls_conn_write esp_tls_conn_read esp_tls_conn_destroy iotd_esp__session_offer \
    iotd_esp__session_keep iotd_posix_http_response_feed
  calls "$name" "$port/session.c.obj" esp_tls_get_client_session mbedtls_ssl_session_save \
    mbedtls_ssl_session_load iotd_tls_record_pack iotd_tls_record_open iotd_tls_bind_finish
  obj="$(find "$OUT/$name" -name http_response.c.obj -path '*__idf_esp-idf*' | head -1)"
  [ -n "$obj" ] || fail "$name: the response reader (ports/posix/src/http_response.c) was not compiled"
  calls "$name" "${obj#"$OUT/$name/"}" http_parser_execute
  "${NM%nm}objdump" -t "$OUT/$name/$port/session.c.obj" >"$T/objdump.out" ||
    fail "$name: cannot read session.c.obj"
  grep -Eq '[[:space:]]\.rtc\.data[^[:space:]]*[[:space:]]+[0-9a-f]+ s_record$' "$T/objdump.out" ||
    fail "$name: the session record is not in RTC memory: $(grep s_record "$T/objdump.out")"
  pass "$name: the TLS session record is kept in RTC memory"
}

# objects NAME: the source files compiled, by base name.
objects() { find "$OUT/$1" -name '*.c.obj' -path '*__idf_*' -printf '%f\n' | sed 's/\.obj$//' | sort -u; }

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NM=riscv64-unknown-elf-nm
command -v "$NM" >/dev/null 2>&1 || NM=riscv32-esp-elf-nm
command -v "$NM" >/dev/null 2>&1 || skip "no RISC-V nm (riscv64-unknown-elf-nm or riscv32-esp-elf-nm)"

# Firmware updates need trusted signing keys and a vendor-id at build time:
# two P-256 public keys, as iotctl's trusted-keys.pem holds them.
for k in 1 2; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$T/sign-$k.key" 2>/dev/null
  openssl pkey -in "$T/sign-$k.key" -pubout >>"$T/trusted-keys.pem"
done
printf 'CONFIG_IOTD_FW_TRUSTED_KEYS_FILE="%s"\nCONFIG_IOTD_FW_VENDOR_ID="example-vendor"\n' \
  "$T/trusted-keys.pem" >"$T/update.defaults"
UPDATE_CONFIG=('CONFIG_IOTD_FW_VENDOR_ID="example-vendor"' 'CONFIG_IOTD_FW_CLASS_ID="esp32c3-sensor"'
  CONFIG_IOTD_FW_UPDATE_AUTO=y CONFIG_IOTD_FW_SELF_TEST_S=300)

# Updates in both configurations: rollback to the previous slot when a new
# app does not confirm itself, and the eFuse secure-version floor.
UPDATE_OPTIONS=(CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE=y CONFIG_BOOTLOADER_APP_ANTI_ROLLBACK=y
  CONFIG_BOOTLOADER_APP_SECURE_VERSION=0 CONFIG_BOOTLOADER_APP_SEC_VER_SIZE_EFUSE_FIELD=16)

# --- A. production default, internal sensor ------------------------------
build production "$FW/sdkconfig.defaults;$T/update.defaults" bootloader
expect_config production \
  CONFIG_SECURE_FLASH_ENC_ENABLED=y CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE=y \
  CONFIG_SECURE_ENABLE_SECURE_ROM_DL_MODE=y CONFIG_NVS_ENCRYPTION=y \
  CONFIG_NVS_SEC_KEY_PROTECT_USING_HMAC=y CONFIG_NVS_SEC_HMAC_EFUSE_KEY_ID=5 \
  CONFIG_PARTITION_TABLE_OFFSET=0x10000 CONFIG_IOTD_IDENTITY_NVS=y CONFIG_IOTD_ENROLL=y
expect_config production "${UPDATE_OPTIONS[@]}"
expect_config production "${UPDATE_CONFIG[@]}"
grep -qx '# CONFIG_SECURE_FLASH_ENCRYPTION_MODE_DEVELOPMENT is not set' "$OUT/production/sdkconfig" ||
  fail "production: flash encryption is not in release mode"
objects production >"$T/a.objs"
for f in main.c identity.c tsens.c https.c nvs_sec_provider.c manifest_crypto.c manifest_keys.c \
  update.c fwupdate.c fwrules.c enroll.c cred.c cred_crypto.c est.c pem.c enrollment.c reset.c health.c \
  factory_reset.c tls_post.c session.c http_response.c tls_session.c; do
  grep -qx "$f" "$T/a.objs" || fail "production: $f was not compiled: $(paste -sd' ' "$T/a.objs")"
done
for f in bme280.c csr.c; do
  ! grep -qx "$f" "$T/a.objs" || fail "production: $f was compiled though its option is off"
done
pass "production: the internal sensor's driver, enrollment and the factory reset are compiled, the BME280 and CSR code are not"
[ -f "$OUT/production/bootloader/bootloader.bin" ] || fail "production: no bootloader.bin"
BL_LOG="$OUT/production/targets.log"
[ "$MODE" = idf ] && BL_LOG="$OUT/production/esp-idf-build.log"
grep -q 'Bootloader binary size 0x[0-9a-f]* bytes\. 0x[0-9a-f]* bytes (.*) free' "$BL_LOG" ||
  fail "production: the bootloader's size check did not run: $(grep -i bootloader "$BL_LOG" | tail -3)"
pass "production: the flash-encryption bootloader links and fits below the partition table ($(grep -o 'Bootloader binary size 0x[0-9a-f]*' "$BL_LOG" | tail -1 | cut -d' ' -f4) bytes)"
[ -f "$OUT/production/partition_table/partition-table.bin" ] || fail "production: no partition table"
pass "production: the partition table is generated from partitions.csv"
check_partitions production
updates production
session production

# --- B. development, BME280 and the key and CSR made on the device ---------
printf 'CONFIG_IOTD_BME280=y\nCONFIG_IOTD_CSR_ON_DEVICE=y\n' >"$T/options.defaults"
build bme280-csr-development \
  "$FW/sdkconfig.defaults;$FW/sdkconfig.development;$T/options.defaults;$T/update.defaults"
expect_config bme280-csr-development \
  CONFIG_IOTD_BME280=y CONFIG_IOTD_CSR_ON_DEVICE=y CONFIG_IOTD_ENROLL=y \
  '# CONFIG_SECURE_FLASH_ENC_ENABLED is not set' '# CONFIG_NVS_ENCRYPTION is not set'
expect_config bme280-csr-development "${UPDATE_OPTIONS[@]}"
expect_config bme280-csr-development "${UPDATE_CONFIG[@]}"
objects bme280-csr-development >"$T/b.objs"
for f in bme280.c bme280_comp.c csr.c identity.c manifest_crypto.c est.c pem.c enrollment.c; do
  grep -qx "$f" "$T/b.objs" || fail "bme280-csr-development: $f was not compiled: $(paste -sd' ' "$T/b.objs")"
done
pass "bme280-csr-development: the BME280 driver, the on-device CSR and enrollment are compiled"
check_partitions bme280-csr-development
updates bme280-csr-development
session bme280-csr-development

# --- C. the trusted keys are required, and public ---------------------------
refused no-trusted-keys "CONFIG_IOTD_FW_TRUSTED_KEYS_FILE is not set" "$FW/sdkconfig.defaults"
cat "$T/trusted-keys.pem" "$T/sign-1.key" >"$T/with-private.pem"
printf 'CONFIG_IOTD_FW_TRUSTED_KEYS_FILE="%s"\nCONFIG_IOTD_FW_VENDOR_ID="example-vendor"\n' \
  "$T/with-private.pem" >"$T/private.defaults"
refused private-key-among-the-keys "holds a private key" "$FW/sdkconfig.defaults;$T/private.defaults"

finish
