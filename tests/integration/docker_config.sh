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
#   /healthz, and unhealthy when nothing listens or the answer is not HTTP.
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
check("broker: image eclipse-mosquitto:2.0", b.get("image") == "eclipse-mosquitto:2.0", b.get("image"))
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
[ "$(grep -c '^ok ' "$T/compose.checks")" -ge 30 ] || fail "too few compose checks ran: $(cat "$T/compose.checks")"

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
# context DIR: the build context as Docker sends it, the repository less
# the patterns of Dockerfile.gateway.dockerignore: "**/NAME" anywhere,
# anything else from the root.
context() {
  local args=() p
  while read -r p; do
    case "$p" in
      "" | "#"*) ;;
      "**/"*) args+=(--no-anchored "--exclude=${p#\*\*/}") ;;
      *) args+=(--anchored "--exclude=./$p") ;;
    esac
  done <"$DF.dockerignore"
  mkdir -p "$1"
  tar -C "$IOT_SOURCE_DIR" "${args[@]}" -cf - . | tar -C "$1" -xf -
}
W="$T/image"
context "$W/context"
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

finish
