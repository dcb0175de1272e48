#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang, AddressSanitizer
# and UndefinedBehaviorSanitizer, into build/fuzz/ (or $IOT_FUZZ_DIR).
# A harness is rebuilt only when a file it is made from changed.
#
#   tests/fuzz/build.sh                 every harness
#   tests/fuzz/build.sh csr_fuzz ...    only these
#   tests/fuzz/build.sh --list          the harness names
#
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh).
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${IOT_FUZZ_DIR:-$SRC/build/fuzz}"
CC="${FUZZ_CC:-clang}"
HARNESSES=(payload_fuzz config_fuzz csr_fuzz registry_fuzz core_response_fuzz manifest_fuzz
  proxyv2_fuzz console_fuzz)

# The flags every harness gets; sanitizer findings abort, so libFuzzer
# stops on them and keeps the input.
# shellcheck disable=SC2054 # the commas belong to -fsanitize=
CFLAGS=(-g -O1 -std=c11 -fno-omit-frame-pointer
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
  -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla)

# recipe NAME: sets SRCS (compiled), DEPS (directories whose files the
# harness depends on), FLAGS and LIBS for one harness. pkg-config prints
# a list of words, split on purpose.
# shellcheck disable=SC2207
recipe() {
  local f="$SRC/tests/fuzz/$1.c"
  FLAGS=()
  LIBS=()
  case "$1" in
    payload_fuzz)
      SRCS=("$f" gateway/lib/payload.c gateway/lib/utf8.c core/src/protocol.c)
      DEPS=(gateway/lib/payload.c gateway/lib/payload.h gateway/lib/utf8.c gateway/lib/utf8.h
        gateway/lib/refusal.h gateway/lib/log_level.h core/include/iotd/protocol.h core/src/protocol.c)
      FLAGS=(-Igateway/lib -Icore/include $(pkg-config --cflags libcjson))
      LIBS=($(pkg-config --libs libcjson) -lm)
      ;;
    config_fuzz)
      SRCS=("$f" gateway/lib/config.c gateway/lib/config_parse.c gateway/lib/brokers.c
        gateway/lib/proxyv2.c common/src/status.c)
      DEPS=(gateway/lib/config.h gateway/lib/config.c gateway/lib/config_parse.h
        gateway/lib/config_parse.c gateway/lib/brokers.h gateway/lib/brokers.c
        gateway/lib/proxyv2.c gateway/lib/proxyv2.h common
        core/include/iotd/protocol.h)
      FLAGS=(-D_POSIX_C_SOURCE=200809L -Igateway/lib -Icommon/include -Icore/include)
      LIBS=(-lm)
      ;;
    csr_fuzz)
      SRCS=("$f" common/src/pki.c common/src/status.c common/src/identity.c
        common/src/fsutil.c common/src/registry.c core/src/protocol.c)
      DEPS=(common/src/pki.c common/include/iot/pki.h common core/include/iotd/protocol.h
        core/src/protocol.c)
      FLAGS=(-D_POSIX_C_SOURCE=200809L -Icommon/include -Icore/include
        $(pkg-config --cflags openssl sqlite3))
      LIBS=($(pkg-config --libs libcrypto sqlite3))
      ;;
    registry_fuzz)
      SRCS=("$f" common/src/status.c common/src/identity.c common/src/fsutil.c
        common/src/registry.c common/src/registry_renewal.c core/src/protocol.c)
      DEPS=(common core/include/iotd/protocol.h core/src/protocol.c)
      FLAGS=(-D_POSIX_C_SOURCE=200809L -Icommon/include -Icore/include $(pkg-config --cflags sqlite3))
      LIBS=($(pkg-config --libs sqlite3))
      ;;
    manifest_fuzz)
      SRCS=("$f" core/src/manifest.c core/src/manifest_write.c core/src/protocol.c)
      DEPS=(core/include/iotd/manifest.h core/include/iotd/protocol.h core/src/manifest.c
        core/src/manifest_internal.h core/src/manifest_write.c core/src/protocol.c)
      FLAGS=(-Icore/include)
      ;;
    proxyv2_fuzz)
      SRCS=("$f" gateway/lib/proxyv2.c)
      DEPS=(gateway/lib/proxyv2.c gateway/lib/proxyv2.h)
      FLAGS=(-D_POSIX_C_SOURCE=200809L -Igateway/lib)
      ;;
    console_fuzz)
      SRCS=("$f" console/lib/query.c console/lib/session.c console/lib/operators.c
        console/lib/pwhash.c common/src/status.c common/src/identity.c core/src/protocol.c)
      DEPS=(console/lib common core/include/iotd/protocol.h core/src/protocol.c)
      FLAGS=(-D_POSIX_C_SOURCE=200809L -Iconsole/lib -Icommon/include -Icore/include
        $(pkg-config --cflags openssl))
      LIBS=($(pkg-config --libs libcrypto))
      ;;
    core_response_fuzz)
      SRCS=("$f" core/src/*.c)
      DEPS=(core/include core/src)
      FLAGS=(-Icore/include)
      ;;
    *)
      echo "build.sh: no harness named '$1' (try --list)" >&2
      return 2
      ;;
  esac
  DEPS+=("$f" tests/fuzz/build.sh)
}

# up_to_date BIN: BIN exists and nothing it depends on is newer.
up_to_date() {
  [ -x "$1" ] && [ -z "$(find "${DEPS[@]}" -newer "$1" -print -quit)" ]
}

build_one() {
  local name="$1" bin="$OUT/$1"
  recipe "$name" || return
  if up_to_date "$bin"; then
    echo "build.sh: $name is up to date"
    return 0
  fi
  echo "build.sh: building $name"
  # Into a file of its own, then renamed: a run of the harness that is
  # going on meanwhile keeps the old binary.
  local tmp
  tmp="$(mktemp "$bin.XXXXXX")"
  if ! "$CC" "${CFLAGS[@]}" "${FLAGS[@]}" "${SRCS[@]}" "${LIBS[@]}" -o "$tmp" 2>"$tmp.log"; then
    cat "$tmp.log" >&2
    rm -f "$tmp" "$tmp.log"
    echo "build.sh: $name failed to build" >&2
    return 1
  fi
  rm -f "$tmp.log"
  mv -f "$tmp" "$bin"
}

case "${1:-}" in
  --list) printf '%s\n' "${HARNESSES[@]}"; exit 0 ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
esac
command -v "$CC" >/dev/null || { echo "build.sh: $CC not found (scripts/install-deps.sh)" >&2; exit 1; }

cd "$SRC"
mkdir -p "$OUT"
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${HARNESSES[@]}")
# Two at a time: the machine has two cores.
pids=()
rc=0
for name in "${want[@]}"; do
  build_one "$name" &
  pids+=("$!")
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || rc=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
exit "$rc"
