#!/usr/bin/env bash
# deploy/docker checked without a Docker engine:
# - docker-compose.yml parses (with `docker compose config` where the
#   compose plugin is installed, else as YAML with Debian's python3-yaml),
#   and both services keep their security properties: non-root user,
#   read-only root file system, no capabilities, no-new-privileges,
#   configuration and keys mounted read-only, data on named volumes, the
#   broker published on the VPN address only and never on 1883;
# - Dockerfile.gateway: both stages on debian:bookworm-slim, the CMake
#   options, a non-root USER, a HEALTHCHECK;
# - its build stage, repeated here (the same COPY lines, the same cmake
#   commands), builds iotgw and iotctl, and every library CMake found comes
#   from a package the stage installs;
# - its runtime stage installs exactly the packages that hold the shared
#   libraries those binaries need, so the image can neither miss a library
#   nor carry one for nothing;
# - the image's health probe answers healthy for a running gateway's
#   /healthz, and unhealthy when nothing listens or the answer is not HTTP;
#   the broker's healthcheck command, run against a real Mosquitto, tells a
#   listening broker from a stopped one;
# - the build context, as Debian 12's docker-compose 1.29 computes it from
#   the root .dockerignore (with its own library, python3-docker), holds
#   the sources the build needs and never .git, .state/, build trees or
#   key files, also when such files are planted in a copy of the tree;
# - the image itself is built with buildah from a debootstrapped Debian 12
#   base (deploy/docker/buildah-build.sh; the base is cached in
#   ~/.cache/iot-image-build), buildah's own context honours .dockerignore,
#   and the built image's iotgw runs (--version, --check-config on a real
#   configuration as the image's user). Containers themselves cannot start
#   on these machines (docs/deploy.md says what was not run).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/gateway_lib.sh"

D="$IOT_SOURCE_DIR/deploy/docker"
COMPOSE="$D/docker-compose.yml"
DF="$D/Dockerfile.gateway"
PROBE="$D/iotgw-healthcheck"
PY=/usr/bin/python3 # Debian's, where python3-yaml is installed

skip() {
  echo "docker_config: skipped: $*" >&2
  rm -rf "$T"
  trap - EXIT
  exit 77
}

# --- the compose file -----------------------------------------------------------
# A Compose implementation validates the file against its schema and
# interpolates the variables: Docker's compose plugin where it is installed,
# else Debian 12's docker-compose (1.29), which runs without an engine.
if docker compose version >/dev/null 2>&1; then
  DC=(docker compose)
elif docker-compose version >/dev/null 2>&1; then
  DC=(docker-compose)
else
  DC=()
  echo "# neither 'docker compose' nor 'docker-compose' is installed; the file is only parsed as YAML"
fi
if [ ${#DC[@]} -gt 0 ]; then
  echo "# validating with: $("${DC[@]}" version 2>/dev/null | head -1)"
  run env BROKER_VPN_ADDR=192.0.2.2 "${DC[@]}" -f "$COMPOSE" --profile broker --profile gateway config
  [ "$RC" -eq 0 ] || fail "${DC[*]} config: $ERR"
  echo "$OUT" | grep -qE '192\.0\.2\.2:8883:8883|host_ip: 192\.0\.2\.2' ||
    fail "the broker is not published on BROKER_VPN_ADDR: $OUT"
  pass "${DC[*]} config accepts the file; the broker port is bound to BROKER_VPN_ADDR"
  run env -u BROKER_VPN_ADDR "${DC[@]}" -f "$COMPOSE" --profile broker config
  [ "$RC" -eq 0 ] && echo "$OUT" | grep -qE '127\.0\.0\.1:8883:8883|host_ip: 127\.0\.0\.1' ||
    fail "without BROKER_VPN_ADDR the broker is not on loopback: exit $RC: $OUT $ERR"
  pass "without BROKER_VPN_ADDR the broker port is on loopback only"
  run env -u BROKER_VPN_ADDR "${DC[@]}" -f "$COMPOSE" --profile gateway config
  [ "$RC" -eq 0 ] || fail "the gateway profile needs broker settings: $ERR"
  pass "the gateway host needs none of the broker's variables"
  # Negative control: the validator refuses a misspelt key.
  mkdir -p "$T/neg"
  sed '0,/cap_drop:/s//cap-drop:/' "$COMPOSE" >"$T/neg/docker-compose.yml"
  run "${DC[@]}" -f "$T/neg/docker-compose.yml" --profile broker config
  [ "$RC" -ne 0 ] && echo "$OUT$ERR" | grep -q "cap-drop" ||
    fail "${DC[*]} config accepted a misspelt key: exit $RC"
  pass "${DC[*]} config refuses a misspelt key (negative control)"
fi
"$PY" -c 'import yaml' 2>/dev/null || skip "python3-yaml (Debian) is not installed, the compose file cannot be parsed"

# The checks print "ok <what>" or "not ok <what>: <detail>", one per line.
"$PY" - "$COMPOSE" "$IOT_SOURCE_DIR" >"$T/compose.checks" 2>&1 <<'PY' || true
import os, re, sys, yaml

path, root = sys.argv[1], sys.argv[2]
here = os.path.dirname(path)

def check(what, cond, detail=""):
    print(("ok " if cond else "not ok ") + what + ("" if cond else ": " + str(detail)))

try:
    doc = yaml.safe_load(open(path))
except yaml.YAMLError as e:
    check("the compose file is valid YAML", False, e)
    sys.exit(0)
check("the compose file is valid YAML", isinstance(doc, dict), type(doc))
services = doc.get("services", {})
check("the services are broker and gateway", sorted(services) == ["broker", "gateway"], sorted(services))
named = set((doc.get("volumes") or {}).keys())

# The service keys of the Compose specification this file may use; a
# misspelt key (cap-drop, readonly) would be ignored by an engine.
known = {"build", "cap_add", "cap_drop", "command", "container_name", "depends_on", "entrypoint",
         "environment", "env_file", "healthcheck", "image", "init", "logging", "networks",
         "ports", "profiles", "read_only", "restart", "security_opt", "stop_grace_period",
         "stop_signal", "tmpfs", "user", "volumes", "working_dir", "ulimits", "mem_limit",
         "pids_limit"}

for name, svc in services.items():
    unknown = sorted(set(svc) - known)
    check(f"{name}: only known service keys", not unknown, unknown)
    user = str(svc.get("user", ""))
    uid = user.split(":")[0]
    check(f"{name}: runs as a non-root numeric user ({user})",
          uid.isdigit() and int(uid) != 0 and (":" not in user or user.split(":")[1].isdigit()), user)
    check(f"{name}: read-only root file system", svc.get("read_only") is True, svc.get("read_only"))
    check(f"{name}: drops every capability", svc.get("cap_drop") == ["ALL"] and not svc.get("cap_add"),
          (svc.get("cap_drop"), svc.get("cap_add")))
    check(f"{name}: no-new-privileges", "no-new-privileges:true" in (svc.get("security_opt") or []),
          svc.get("security_opt"))
    check(f"{name}: restart unless-stopped", svc.get("restart") == "unless-stopped", svc.get("restart"))
    check(f"{name}: started by its own profile", svc.get("profiles") == [name], svc.get("profiles"))
    check(f"{name}: not privileged, host network or host PID",
          not svc.get("privileged") and svc.get("network_mode") != "host" and svc.get("pid") != "host")
    ports = [str(p) for p in svc.get("ports") or []]
    check(f"{name}: nothing published on 1883", not any(re.search(r"(^|:)1883(:|/|$)", p) for p in ports), ports)
    check(f"{name}: every published port names a host address",
          all(re.match(r"^(\$\{[A-Z_]+(:[-?][^}]*)?\}|[0-9.]+):\d+:\d+$", p) for p in ports), ports)
    for m in [str(v) for v in svc.get("volumes") or []]:
        # SOURCE:TARGET[:MODE], where SOURCE may be ${VAR:-default}.
        mm = re.match(r"^(\$\{[^}]*\}|[^:]+):([^:]+)(?::(ro|rw))?$", m)
        if not mm:
            check(f"{name}: volume '{m}' has the form SOURCE:TARGET[:MODE]", False, m)
            continue
        src, dst, mode = mm.groups()
        if src.startswith(("/", ".", "$")):
            check(f"{name}: bind mount of {dst} is read-only", mode == "ro", m)
        else:
            check(f"{name}: volume {src} is declared", src in named, sorted(named))

b, g = services.get("broker", {}), services.get("gateway", {})
check("broker: image eclipse-mosquitto:2.0-openssl (OpenSSL, as tested; not the LibreSSL build)",
      b.get("image") == "eclipse-mosquitto:2.0-openssl", b.get("image"))
hc = b.get("healthcheck") or {}
test = hc.get("test") or []
check("broker: a healthcheck with a shell command, a timeout and retries",
      isinstance(test, list) and len(test) == 2 and test[0] == "CMD-SHELL" and hc.get("timeout")
      and hc.get("retries"), hc)
check("broker: the healthcheck probes port 8883 (hex 22B3)", "%04X" % 8883 in (test[1] if len(test) > 1 else ""), test)
check("broker: working directory / (mosquitto.conf's relative paths)", b.get("working_dir") == "/",
      b.get("working_dir"))
bports = [str(p) for p in b.get("ports") or []]
check("broker: only 8883, on BROKER_VPN_ADDR (default loopback)",
      bports == ["${BROKER_VPN_ADDR:-127.0.0.1}:8883:8883"], bports)
bm = [str(v) for v in b.get("volumes") or []]
check("broker: configuration and certificates mounted read-only",
      any(v.endswith(":/mosquitto/config:ro") for v in bm) and any(v.endswith(":/mosquitto/certs:ro") for v in bm), bm)
check("broker: data on a named volume", "broker-data:/mosquitto/data" in bm, bm)
build = g.get("build") or {}
dockerfile = os.path.normpath(os.path.join(here, build.get("context", "."), build.get("dockerfile", "")))
check("gateway: built from deploy/docker/Dockerfile.gateway with the repository as context",
      dockerfile == os.path.join(root, "deploy/docker/Dockerfile.gateway")
      and os.path.normpath(os.path.join(here, build.get("context", "."))) == os.path.normpath(root), dockerfile)
gm = [str(v) for v in g.get("volumes") or []]
check("gateway: /etc/iotgw mounted read-only", any(v.endswith(":/etc/iotgw:ro") for v in gm), gm)
check("gateway: outbox on a named volume", "gateway-outbox:/var/lib/iotgw" in gm, gm)
check("gateway: a tmpfs for /tmp under the read-only root",
      any(str(t).startswith("/tmp") for t in g.get("tmpfs") or []), g.get("tmpfs"))
gports = [str(p) for p in g.get("ports") or []]
check("gateway: the admin port is published on the host's loopback only",
      [p for p in gports if p.endswith(":9100")] == ["127.0.0.1:9100:9100"], gports)
check("gateway: the device port is 8443", any(p.endswith(":8443:8443") for p in gports), gports)
PY
while IFS= read -r line; do
  case "$line" in
    "ok "*) pass "compose: ${line#ok }" ;;
    "not ok "*) fail "compose: ${line#not ok }" ;;
    *) fail "compose check: $line" ;;
  esac
done <"$T/compose.checks"
[ "$(grep -c '^ok ' "$T/compose.checks")" -ge 32 ] || fail "too few compose checks ran: $(cat "$T/compose.checks")"

# --- the Dockerfile ---------------------------------------------------------------
# join FILE: instructions one per line, continuation lines joined.
join() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -v '^[[:space:]]*#' | tr -s ' '; }
join "$DF" >"$T/df"
expect_eq "two stages, both on debian:bookworm-slim, the first named build" \
  "FROM debian:bookworm-slim AS build|FROM debian:bookworm-slim" "$(grep '^FROM ' "$T/df" | paste -sd'|')"
sed -n '/^FROM .* AS build$/,/^FROM /p' "$T/df" | sed '$d' >"$T/build.stage"
sed -n '/^FROM debian:bookworm-slim$/,$p' "$T/df" >"$T/runtime.stage"
grep -q '^RUN cmake -S /src -B /build -G Ninja -DIOT_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo' \
  "$T/build.stage" || fail "the build stage does not configure with the release options: $(grep cmake "$T/build.stage")"
pass "the build stage configures with -DIOT_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo"
user="$(grep '^USER ' "$T/runtime.stage" | tail -1 | cut -d' ' -f2)"
[[ "$user" =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || fail "the image's last USER is not a numeric non-root user: '$user'"
pass "the image runs as $user"
expect_eq "the compose file runs the gateway as the image's user" "\"$user\"" \
  "$(sed -n '/^  gateway:/,/^[a-z]/p' "$COMPOSE" | awk '$1 == "user:" { print $2 }')"
hc="$(grep '^HEALTHCHECK ' "$T/runtime.stage")"
[ -n "$hc" ] || fail "no HEALTHCHECK in the image"
echo "$hc" | grep -q -- '--timeout=[0-9]*s' || fail "the HEALTHCHECK has no timeout: $hc"
grep -q '^COPY deploy/docker/iotgw-healthcheck /usr/local/bin/iotgw-healthcheck$' "$T/runtime.stage" &&
  echo "$hc" | grep -qF 'CMD ["/usr/local/bin/iotgw-healthcheck"]' ||
  fail "the HEALTHCHECK does not run the copied probe: $hc"
[ -x "$PROBE" ] || fail "$PROBE is not executable (COPY keeps its mode)"
pass "the HEALTHCHECK runs the probe the image copies, with a timeout"
expect_eq "the runtime stage installs no HTTP client and no -dev package" "" \
  "$(grep '^RUN ' "$T/runtime.stage" | grep -oE '\b(curl|wget|[a-z0-9.+-]+-dev)\b' || true)"
expect_eq "the image starts iotgw on /etc/iotgw/iotgw.conf" \
  'ENTRYPOINT ["/usr/local/bin/iotgw"]|CMD ["--config", "/etc/iotgw/iotgw.conf"]' \
  "$(grep -E '^(ENTRYPOINT|CMD) ' "$T/runtime.stage" | paste -sd'|')"
expect_eq "the image exposes 8443 only" "EXPOSE 8443" "$(grep '^EXPOSE' "$T/df")"
expect_eq "nothing is fetched by URL" "" "$(grep -E '^(ADD|COPY) .*https?://' "$T/df" || true)"

# --- the build stage, outside Docker --------------------------------------------------
# apt_pkgs STAGE: the packages its apt-get install line names.
apt_pkgs() {
  grep -o 'apt-get install [^&]*' "$1" | tr ' ' '\n' | grep -v -e '^-' -e '^apt-get$' -e '^install$' -e '^$' | sort -u
}
apt_pkgs "$T/build.stage" >"$T/build.pkgs"
apt_pkgs "$T/runtime.stage" >"$T/runtime.pkgs"
while read -r p; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
    skip "the build stage's package $p is not installed here, so its build cannot be repeated"
done <"$T/build.pkgs"
# context_list ROOT: the files of the build context, one per line, as
# docker-compose 1.29 sends them: its library's exclude_paths() applied to
# ROOT/.dockerignore, as docker-py's build() does.
context_list() {
  "$PY" - "$1" <<'PYEOF'
import os, sys
from docker.utils.build import exclude_paths
root = sys.argv[1]
pats = []
with open(os.path.join(root, ".dockerignore")) as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line)
for p in sorted(exclude_paths(root, pats)):
    print(p)
PYEOF
}
"$PY" -c 'import docker.utils.build' 2>/dev/null ||
  skip "python3-docker (docker-compose's library) is not installed, the build context cannot be computed"
[ -f "$IOT_SOURCE_DIR/.dockerignore" ] || fail "no .dockerignore at the repository root: docker-compose 1.29 would send everything"
[ ! -e "$DF.dockerignore" ] || fail "$DF.dockerignore exists: BuildKit would read it instead of the root .dockerignore"
# The repository as it is, then a copy with the things that must never go
# into an image planted in it.
context_list "$IOT_SOURCE_DIR" >"$T/context.files"
mkdir -p "$T/planted"
tar -C "$IOT_SOURCE_DIR" --exclude=./.git --exclude=./build --exclude=./.state -cf - . | tar -C "$T/planted" -xf -
mkdir -p "$T/planted/.git" "$T/planted/.state/demo/pki" "$T/planted/build/asan" "$T/planted/gateway/build" \
  "$T/planted/notes"
touch "$T/planted/.git/config" "$T/planted/.state/demo/pki/ca.key" "$T/planted/build/asan/CMakeCache.txt" \
  "$T/planted/gateway/src/gateway-key.pem" "$T/planted/common/ca.key" "$T/planted/tools/device.p12" \
  "$T/planted/notes/passwords.txt" "$T/planted/secret.env" "$T/planted/core/sensor.csr"
context_list "$T/planted" >"$T/planted.files"
for f in .git/config .state/demo/pki/ca.key build/asan/CMakeCache.txt gateway/src/gateway-key.pem \
  common/ca.key tools/device.p12 notes/passwords.txt secret.env core/sensor.csr; do
  ! grep -qxF "$f" "$T/planted.files" || fail "the build context would include $f"
done
pass "the build context leaves out .git, .state/, build trees, keys, CSRs and unknown files (planted)"
expect_eq "the repository's own context holds no key, certificate or state" "" \
  "$(grep -E '(^|/)(\.git|\.state|build)(/|$)|\.(pem|key|p12|csr)$' "$T/context.files" || true)"
for f in CMakeLists.txt cmake/Hardening.cmake gateway/src/main.c common/CMakeLists.txt core/CMakeLists.txt \
  tools/CMakeLists.txt ports/posix/CMakeLists.txt ports/mbedtls/iotdMbedtlsFilePaths.cmake \
  bench/CMakeLists.txt deploy/docker/iotgw-healthcheck; do
  grep -qxF "$f" "$T/context.files" || fail "the build context lacks $f"
done
pass "the build context holds what the build needs ($(wc -l <"$T/context.files") files)"
W="$T/image"
mkdir -p "$W/context"
tar -C "$IOT_SOURCE_DIR" -cf - -T "$T/context.files" | tar -C "$W/context" -xf -
[ -f "$W/context/CMakeLists.txt" ] && [ ! -e "$W/context/build" ] && [ ! -e "$W/context/.git" ] ||
  fail "the emulated build context is not the repository without build trees: $(ls -a "$W/context")"
mkdir -p "$W/src"
while read -r _ src dst; do
  case "$dst" in /src | /src/*) ;; *) fail "the build stage copies outside /src: $src $dst" ;; esac
  target="$W$dst"
  if [ -d "$W/context/$src" ]; then
    mkdir -p "$target"
    cp -a "$W/context/$src/." "$target/"
  elif [ "${dst%/}" != "$dst" ]; then
    mkdir -p "$target"
    cp -a "$W/context/$src" "$target"
  else
    cp -a "$W/context/$src" "$target"
  fi
done < <(grep '^COPY ' "$T/build.stage")
cmd="$(grep '^RUN cmake ' "$T/build.stage" | sed 's/^RUN //' | sed -E "s#(^| )/src( |$)#\\1$W/src\\2#g; s#(^| )/build( |$)#\\1$W/build\\2#g")"
echo "$cmd" | grep -q "$W/build" || fail "could not place the build commands: $cmd"
bash -c "$cmd" >"$T/image-build.log" 2>&1 || fail "the build stage's commands failed: $(tail -5 "$T/image-build.log")"
[ -x "$W/build/gateway/iotgw" ] && [ -x "$W/build/tools/iotctl" ] || fail "the build stage did not produce iotgw and iotctl"
pass "the build stage's COPY lines and cmake commands build iotgw and iotctl"

# pkg_of FILE: the Debian package that installed FILE (merged /usr aware).
pkg_of() {
  local f="$1" real
  real="$(realpath "$f")"
  for cand in "$f" "$real" "${f#/usr}" "${real#/usr}" "/usr$f" "/usr$real"; do
    dpkg -S "$cand" 2>/dev/null | head -1 | cut -d: -f1 && return 0
  done
  echo "unknown:$f"
}
# Libraries CMake resolved to files: every FILEPATH entry of its cache
# that names a library (FindOpenSSL, find_library, pkg-config's
# pkgcfg_lib_*).
grep ':FILEPATH=' "$W/build/CMakeCache.txt" | sed 's/^[^=]*=//' |
  grep -E '^/.*/lib[^/]*\.(so|a)$' | sort -u >"$T/build.libs"
[ "$(wc -l <"$T/build.libs")" -ge 8 ] || fail "too few libraries in the CMake cache: $(cat "$T/build.libs")"
missing=""
while read -r lib; do
  pkg="$(pkg_of "$lib")"
  grep -qx "$pkg" "$T/build.pkgs" || missing="$missing $lib($pkg)"
done <"$T/build.libs"
expect_eq "every library the build links comes from a package the build stage installs" "" "${missing# }"

# --- the runtime stage against what the binaries need ---------------------------------
# The base image has libc6; everything else must be installed.
: >"$T/needed.pkgs"
for bin in "$W/build/gateway/iotgw" "$W/build/tools/iotctl"; do
  for soname in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
    path="$(ldd "$bin" | awk -v s="$soname" '$1 == s && $2 == "=>" { print $3 }')"
    [ -n "$path" ] || fail "$bin: $soname is not found by the dynamic linker"
    pkg_of "$path" >>"$T/needed.pkgs"
  done
done
sort -u "$T/needed.pkgs" | grep -vx libc6 >"$T/needed.sorted" || true
grep -q '^unknown:' "$T/needed.sorted" && fail "libraries of no package: $(grep '^unknown:' "$T/needed.sorted")"
expect_eq "the runtime stage installs exactly the packages of the libraries iotgw and iotctl need" \
  "$(paste -sd' ' "$T/needed.sorted")" "$(paste -sd' ' "$T/runtime.pkgs")"
[ "$(wc -l <"$T/needed.sorted")" -ge 7 ] || fail "too few runtime packages found: $(cat "$T/needed.sorted")"

# --- the health probe against a real gateway ------------------------------------------
make_pki dev-001
BROKER_PORT="$(free_port)" # nothing listens there: /healthz answers anyway
write_gateway_config
run timeout 10 "$PROBE" 127.0.0.1 "$ADMIN_PORT"
expect_eq "the probe reports unhealthy when nothing listens" 1 "$RC"
start_gateway
wait_port "$ADMIN_PORT" 10 || fail "the admin listener did not open"
run timeout 10 "$PROBE" 127.0.0.1 "$ADMIN_PORT"
expect_eq "the probe reports healthy for the running gateway's /healthz" 0 "$RC"
run timeout 10 "$PROBE" 127.0.0.1 "$GW_PORT"
expect_eq "the probe reports unhealthy when the port does not speak plain HTTP" 1 "$RC"
stop_gateway

# --- the broker's healthcheck against a real broker ------------------------------------
# The compose file's command, with the port moved from 8883 to the test
# broker's (the same 4-digit hexadecimal form /proc/net/tcp uses).
"$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["broker"]["healthcheck"]["test"][1])' \
  "$COMPOSE" >"$T/broker-health.cmd"
BHC_PORT="$(free_port)"
sed -i "s/22B3/$(printf '%04X' "$BHC_PORT")/" "$T/broker-health.cmd"
grep -q "$(printf '%04X' "$BHC_PORT")" "$T/broker-health.cmd" || fail "could not move the healthcheck to port $BHC_PORT"
run sh "$T/broker-health.cmd"
expect_eq "the broker healthcheck fails while no broker listens" 1 "$RC"
BROKER_PORT="$BHC_PORT"
start_broker >"$T/broker.log"
run sh "$T/broker-health.cmd"
expect_eq "the broker healthcheck passes once the broker listens" 0 "$RC"
stop_broker
run sh "$T/broker-health.cmd"
expect_eq "the broker healthcheck fails again once the broker stopped" 1 "$RC"

# --- the image, built with buildah ------------------------------------------------------
# Containers cannot start here (the OCI runtime cannot set its resource
# limits), but images can be built: each RUN step runs in a chroot.
for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (scripts/install-deps.sh installs it): the image was not built"
done
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/iot-image-build"
B=(buildah --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver vfs)
TAG="localhost/iotgw-test:$$"
start=$SECONDS
run "$IOT_SOURCE_DIR/deploy/docker/buildah-build.sh" "$CACHE" "$TAG"
[ "$RC" -eq 0 ] || fail "the image build failed (exit $RC): $(echo "$ERR" | tail -15)"
echo "# image built in $((SECONDS - start)) s (base $( [ -s "$CACHE/debian-bookworm-minbase.tar" ] && echo cached or made))"
_cleanup_image() { "${B[@]}" rmi -f "$TAG" >/dev/null 2>&1 || true; }
trap '_cleanup_image; _cleanup' EXIT
pass "buildah built Dockerfile.gateway from a debootstrapped Debian 12 base"
expect_eq "the image runs as the non-root user of the Dockerfile" "$user" \
  "$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$TAG")"
ctr="$("${B[@]}" from "$TAG")"
_cleanup_image() {
  "${B[@]}" rm "$ctr" >/dev/null 2>&1 || true
  "${B[@]}" rmi -f "$TAG" >/dev/null 2>&1 || true
}
run "${B[@]}" run --isolation chroot "$ctr" -- /usr/local/bin/iotgw --version
[ "$RC" -eq 0 ] || fail "the image's iotgw --version failed (exit $RC): $ERR"
echo "$OUT" | grep -q '^iotgw ' && echo "$OUT" | grep -q '^OpenSSL 3\.' && echo "$OUT" | grep -q '^libmosquitto 2\.' ||
  fail "the image's iotgw --version: $OUT"
pass "the image's iotgw starts and names its libraries: $(echo "$OUT" | paste -sd' ' | cut -c1-120)"
run "${B[@]}" run --isolation chroot "$ctr" -- /usr/local/bin/iotctl --version
[ "$RC" -eq 0 ] || fail "the image's iotctl --version failed (exit $RC): $ERR"
# A configuration as docs/deploy.md lays it out, mounted read-only at
# /etc/iotgw, keys owned by the image's user (10001) with mode 0600.
CFG="$T/etc-iotgw"
mkdir -p "$CFG/tls" "$CFG/mqtt"
cp "$P/servers/gateway/cert.pem" "$P/servers/gateway/key.pem" "$CFG/tls/"
cp "$P/ca.crt" "$CFG/tls/ca.pem"
cp "$P/crl.pem" "$CFG/tls/crl.pem"
cp "$P/registry.db" "$CFG/registry.db"
cp "$P/ca.crt" "$CFG/mqtt/ca.pem"
cp "$P/clients/gateway-mqtt/cert.pem" "$P/clients/gateway-mqtt/key.pem" "$CFG/mqtt/"
chmod 0755 "$CFG" "$CFG/tls" "$CFG/mqtt"
chmod 0644 "$CFG"/tls/*.pem "$CFG"/mqtt/*.pem "$CFG/registry.db"
chown "${user%%:*}:${user##*:}" "$CFG/tls/key.pem" "$CFG/mqtt/key.pem"
chmod 0600 "$CFG/tls/key.pem" "$CFG/mqtt/key.pem"
cat >"$CFG/iotgw.conf" <<CONF
tls_cert = /etc/iotgw/tls/cert.pem
tls_key = /etc/iotgw/tls/key.pem
client_ca = /etc/iotgw/tls/ca.pem
crl_file = /etc/iotgw/tls/crl.pem
registry = /etc/iotgw/registry.db
mqtt_host = broker.example.org
mqtt_ca = /etc/iotgw/mqtt/ca.pem
mqtt_cert = /etc/iotgw/mqtt/cert.pem
mqtt_key = /etc/iotgw/mqtt/key.pem
CONF
chmod 0644 "$CFG/iotgw.conf"
run "${B[@]}" run --isolation chroot -v "$CFG:/etc/iotgw:ro" "$ctr" -- \
  /usr/local/bin/iotgw --check-config /etc/iotgw/iotgw.conf
expect_eq "the image's iotgw accepts the configuration as its user, outbox in /var/lib/iotgw" \
  "0 iotgw: configuration /etc/iotgw/iotgw.conf is valid" "$RC $OUT"
chmod 0644 "$CFG/mqtt/key.pem"
run "${B[@]}" run --isolation chroot -v "$CFG:/etc/iotgw:ro" "$ctr" -- \
  /usr/local/bin/iotgw --check-config /etc/iotgw/iotgw.conf
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "/etc/iotgw/iotgw.conf:9: mqtt_key: private key /etc/iotgw/mqtt/key.pem has mode 0644" ||
  fail "the image's iotgw accepted a key readable by others: exit $RC: $ERR"
pass "the image's iotgw refuses a key readable by others (negative control)"
# buildah's own context: a build of only COPY . (no RUN) from the
# repository shows what it sends.
mkdir -p "$T/ctxcheck"
printf 'FROM scratch\nCOPY . /ctx/\n' >"$T/ctxcheck/Containerfile"
run "${B[@]}" bud --isolation chroot --pull=never -q -f "$T/ctxcheck/Containerfile" -t "$TAG-ctx" "$T/planted"
[ "$RC" -eq 0 ] || fail "buildah could not build the context probe: $ERR"
cctr="$("${B[@]}" from "$TAG-ctx")"
mnt="$("${B[@]}" mount "$cctr")"
(cd "$mnt/ctx" && find . -type f | sed 's|^\./||' | sort) >"$T/buildah-context.files"
"${B[@]}" umount "$cctr" >/dev/null
"${B[@]}" rm "$cctr" >/dev/null
"${B[@]}" rmi -f "$TAG-ctx" >/dev/null
# docker-compose's list also names directories, and .dockerignore, which
# Docker sends for the daemon to read but never copies into an image.
while IFS= read -r f; do
  if [ "$f" != .dockerignore ] && [ -f "$T/planted/$f" ] && [ ! -L "$T/planted/$f" ]; then
    printf '%s\n' "$f"
  fi
done <"$T/planted.files" | sort >"$T/planted.regular"
[ "$(wc -l <"$T/planted.regular")" -ge 100 ] || fail "too few files in the context: $(wc -l <"$T/planted.regular")"
expect_eq "buildah sends the same files as docker-compose (planted secrets left out)" \
  "$(cat "$T/planted.regular")" "$(cat "$T/buildah-context.files")"

finish
