#!/usr/bin/env bash
# Installs every build and test dependency from Debian 12 packages.
# Idempotent: packages already present are left alone and apt is not touched
# when nothing is missing. Run as root (or with sudo available).
#
#   scripts/install-deps.sh           build + test suite dependencies
#   scripts/install-deps.sh --bench   also what bench/ compares against
#   scripts/install-deps.sh --check   list what is missing, install nothing
set -euo pipefail

# Build toolchain and libraries the programs link against.
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config git
  libssl-dev libsqlite3-dev libcjson-dev libevent-dev
  libmosquitto-dev libmbedtls-dev libhttp-parser-dev libcmocka-dev
  libsystemd-dev node-llhttp libpaho-mqtt-dev
  libjs-chart.js libcurl4-openssl-dev
)
# Real programs the test suite starts or checks against.
TEST_PKGS=(
  openssl sqlite3 jq mosquitto mosquitto-clients
  clang clang-format libclang-rt-14-dev gcovr python3
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
  iproute2 nftables wireguard-go wireguard-tools tcpdump iputils-ping
  testssl.sh prometheus pmccabe haproxy
  systemd strace gdb python3-yaml python3-jsonschema curl docker-compose
  buildah debootstrap python3-docker
  zstd binutils-riscv64-unknown-elf libstdc++-arm-none-eabi-dev
  python3-click python3-serial python3-cryptography python3-pyparsing
  python3-pyelftools python3-construct python3-packaging python3-setuptools
  python3-bitstring python3-intelhex python3-ecdsa python3-kconfiglib
  rabbitmq-server etcd-server etcd-client
  chromium chromium-driver python3-selenium
)
# Only for bench/: the systems the gateway is compared with.
BENCH_PKGS=(
  nginx python3-flask python3-paho-mqtt gunicorn hyperfine
  linux-perf heaptrack
)

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
mode=install
for arg in "$@"; do
  case "$arg" in
    --bench) want+=("${BENCH_PKGS[@]}") ;;
    --check) mode=check ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi
if [ "$mode" = check ]; then
  echo "install-deps: missing: ${missing[*]}"
  exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# Services pulled in by packages (mosquitto, nginx) must not start on install:
# tests start their own instances with their own configs on free ports.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
trap '[ "$created_policy" = 1 ] && $SUDO rm -f "$policy"' EXIT
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
