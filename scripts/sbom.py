#!/usr/bin/python3
"""CycloneDX 1.6 JSON SBOMs from the build (standard library only).

  sbom.py host --name NAME --version V --binary FILE --out FILE
               [--product-version V] [--own NAME=FILE]... [--deb-static PKG]...
      A host program: the program itself, our static libraries linked into
      it (--own, hashed), Debian packages compiled into it (--deb-static,
      e.g. node-llhttp) and every shared library it loads (ldd), each
      mapped to its Debian package with dpkg -S / dpkg-query; the
      dependency graph follows the ELF DT_NEEDED entries (readelf -d).

  sbom.py esp32 --project-description FILE --version V --out FILE
               [--product-version V] [--image FILE]
      The ESP32 firmware from an ESP-IDF build directory's
      project_description.json: ESP-IDF's version and every component the
      build used, with their requirements as the dependency graph.

Exit status: 0 written, 2 usage or input error (the message names it).
"""
import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.parse
import uuid

MANUFACTURER = "iot_telemetry project"
TOOL = {"type": "application", "name": "iot-sbom", "description": "scripts/sbom.py"}

# Debian copyright-format short names to SPDX identifiers.
SPDX = {
    "gpl-2": "GPL-2.0-only", "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only", "gpl-3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only", "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only", "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only", "lgpl-3+": "LGPL-3.0-or-later",
    "apache-2.0": "Apache-2.0", "mit": "MIT", "expat": "MIT",
    "bsd-2-clause": "BSD-2-Clause", "bsd-3-clause": "BSD-3-Clause",
    "isc": "ISC", "zlib": "Zlib", "public-domain": None,
    "epl-2.0": "EPL-2.0", "epl-1.0": "EPL-1.0", "mpl-2.0": "MPL-2.0",
    "openssl": "OpenSSL", "curl": "curl",
}


class InputError(Exception):
    pass


def run(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as e:
        raise InputError(f"cannot run {argv[0]}: {e}") from e
    return p.returncode, p.stdout


def sha256(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                h.update(block)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from e
    return h.hexdigest()


def distro():
    ident, ver = "debian", ""
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k == "ID":
                    ident = v.strip('"')
                elif k == "VERSION_ID":
                    ver = v.strip('"')
    except OSError:
        pass
    return f"{ident}-{ver}" if ver else ident


def license_of(pkg):
    """The licence of the package's main files (Files: *) in its DEP-5
    copyright file, as an SPDX id or expression where it maps clearly."""
    path = f"/usr/share/doc/{pkg}/copyright"
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return {"license": {"name": f"unknown (no {path})"}}
    m = re.search(r"^Files:\s*\*\s*$(?:\n[^\n]+)*?\nLicense:\s*([^\n]+)", text, re.M)
    if not m:
        m = re.search(r"^License:\s*([^\n]+)", text, re.M)
    if not m:
        return {"license": {"name": f"see {path}"}}
    raw = m.group(1).strip()
    words = re.split(r"\s+(or|and)\s+", raw, flags=re.I)
    ids = []
    for i, w in enumerate(words):
        if i % 2:
            ids.append(w.upper())
            continue
        key = w.strip().lower().replace(" with ", "-with-").rstrip(",")
        spdx = SPDX.get(key)
        if not spdx:
            return {"license": {"name": f"{raw} (see {path})"}}
        ids.append(spdx)
    if len(ids) == 1:
        return {"license": {"id": ids[0]}}
    return {"expression": " ".join(ids)}


def deb_info(pkg):
    rc, out = run(["dpkg-query", "-W",
                   "-f=${Version}\t${Architecture}\t${Homepage}\t${source:Package}\t${source:Version}",
                   pkg])
    if rc != 0 or not out:
        raise InputError(f"dpkg-query: package '{pkg}' is not installed")
    return out.split("\t")


def deb_component(pkg, dist):
    version, arch, home, src, src_version = deb_info(pkg)
    name = pkg.split(":")[0]
    purl = (f"pkg:deb/debian/{name}@{urllib.parse.quote(version, safe='.+~-')}"
            f"?arch={arch}&distro={dist}")
    comp = {
        "type": "library",
        "bom-ref": purl,
        "supplier": {"name": "Debian"},
        "name": name,
        "version": version,
        "purl": purl,
        "licenses": [license_of(name)],
        # Debian's advisories name the source package and its version.
        "properties": [{"name": "iot:deb-source", "value": src},
                       {"name": "iot:deb-source-version", "value": src_version}],
    }
    if home:
        comp["externalReferences"] = [{"type": "website", "url": home}]
    return comp


def packages_of(paths):
    """{path: Debian package shipping it}, one dpkg -S call for all (each
    path tried as given, resolved, and with and without the /usr merge)."""
    cands = {}
    for path in paths:
        for c in (path, os.path.realpath(path)):
            cands.setdefault(c, path)
            alt = c[4:] if c.startswith("/usr/") else "/usr" + c
            cands.setdefault(alt, path)
    _, out = run(["dpkg", "-S"] + sorted(cands))
    found = {}
    for line in out.splitlines():
        if line.startswith("diversion"):
            continue
        pkgs, _, file = line.partition(": ")
        if file in cands:
            found.setdefault(cands[file], pkgs.split(",")[0].strip())
    return found


def needed(path):
    rc, out = run(["readelf", "-d", path])
    if rc != 0:
        raise InputError(f"readelf -d {path} failed: not an ELF file?")
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def ldd(path):
    rc, out = run(["ldd", path])
    if rc != 0:
        raise InputError(f"ldd {path} failed: not a dynamic ELF program?")
    libs = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+(/\S+)\s+\(", line)
        if m:
            libs[m.group(1)] = m.group(2)
        else:
            m = re.match(r"\s*(/\S+)\s+\(", line)  # the dynamic loader
            if m:
                libs[os.path.basename(m.group(1))] = m.group(1)
    return libs


def timestamp():
    """Now, or SOURCE_DATE_EPOCH for reproducible builds, in UTC."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    when = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch.isdigit()
            else datetime.datetime.now(datetime.timezone.utc))
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def bom_skeleton(root, tools_extra=None):
    tools = [dict(TOOL)]
    if tools_extra:
        tools.extend(tools_extra)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp(),
            "lifecycles": [{"phase": "build"}],
            "tools": {"components": tools},
            "authors": [{"name": MANUFACTURER}],
            "manufacturer": {"name": MANUFACTURER},
            "supplier": {"name": MANUFACTURER},
            "component": root,
        },
        "components": [],
        "dependencies": [],
        "compositions": [],
    }


def own_purl(name, version):
    return f"pkg:generic/iot_telemetry/{name}@{urllib.parse.quote(version, safe='.+~-')}"


def own_component(name, version, path, ctype="library"):
    return {
        "type": ctype,
        "bom-ref": f"{name}@{version}",
        "supplier": {"name": MANUFACTURER},
        "name": name,
        "version": version,
        "purl": own_purl(name, version),
        "licenses": [{"license": {"name": "proprietary (iot_telemetry)"}}],
        "hashes": [{"alg": "SHA-256", "content": sha256(path)}],
        "properties": [{"name": "iot:artifact", "value": os.path.basename(path)}],
    }


def host_sbom(a):
    dist = distro()
    root = own_component(a.name, a.version, a.binary, "application")
    bom = bom_skeleton(root)
    comps, deps = {}, {}
    own_refs = []
    for spec in a.own:
        name, _, path = spec.partition("=")
        if not path:
            raise InputError(f"--own '{spec}': expected NAME=FILE")
        c = own_component(name, a.product_version or a.version, path)
        comps[c["bom-ref"]] = c
        own_refs.append(c["bom-ref"])
    static_refs = []
    for pkg in a.deb_static:
        c = deb_component(pkg, dist)
        c["properties"].append({"name": "iot:linkage", "value": "static (compiled from the package's sources)"})
        comps[c["bom-ref"]] = c
        static_refs.append(c["bom-ref"])
    libs = ldd(a.binary)
    soname_ref = {}
    unresolved = []
    owners = packages_of(libs.values())
    for soname, path in libs.items():
        pkg = owners.get(path)
        if not pkg:
            unresolved.append(soname)
            continue
        c = deb_component(pkg, dist)
        c["properties"].append({"name": "iot:soname", "value": soname})
        if c["bom-ref"] in comps:
            comps[c["bom-ref"]]["properties"].append({"name": "iot:soname", "value": soname})
        else:
            comps[c["bom-ref"]] = c
        soname_ref[soname] = (c["bom-ref"], path)
    # The graph: the program needs its DT_NEEDED libraries; each library
    # package needs the packages of its own DT_NEEDED entries.
    root_deps = set(own_refs) | set(static_refs)
    for so in needed(a.binary):
        if so in soname_ref:
            root_deps.add(soname_ref[so][0])
    for so, (ref, path) in soname_ref.items():
        for dep in needed(path):
            if dep in soname_ref and soname_ref[dep][0] != ref:
                deps.setdefault(ref, set()).add(soname_ref[dep][0])
    bom["components"] = sorted(comps.values(), key=lambda c: c["bom-ref"])
    bom["dependencies"] = [{"ref": root["bom-ref"], "dependsOn": sorted(root_deps)}]
    for ref in sorted(comps):
        bom["dependencies"].append({"ref": ref, "dependsOn": sorted(deps.get(ref, ()))})
    every = [root["bom-ref"]] + sorted(comps)
    bom["compositions"] = [{
        "aggregate": "incomplete" if unresolved else "complete",
        "assemblies": [root["bom-ref"]],
        "dependencies": every,
    }]
    if unresolved:
        bom["metadata"]["properties"] = [
            {"name": "iot:unresolved", "value": " ".join(sorted(unresolved))}]
    return bom


def idf_version(idf_path):
    vals = {}
    try:
        with open(os.path.join(idf_path, "tools/cmake/version.cmake"), encoding="utf-8") as f:
            for m in re.finditer(r"set\(IDF_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)\)", f.read()):
                vals[m.group(1)] = m.group(2)
    except OSError as e:
        raise InputError(f"{idf_path}/tools/cmake/version.cmake: {e.strerror}") from e
    if len(vals) != 3:
        raise InputError(f"{idf_path}/tools/cmake/version.cmake: no IDF_VERSION_MAJOR/MINOR/PATCH")
    return f"{vals['MAJOR']}.{vals['MINOR']}.{vals['PATCH']}"


def esp32_sbom(a):
    try:
        with open(a.project_description, encoding="utf-8") as f:
            desc = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"{a.project_description}: {e}") from e
    idf_path = desc.get("idf_path", "")
    idfv = idf_version(idf_path)
    version = a.version or desc.get("project_version", "")
    product = a.product_version or version
    build_dir = desc.get("build_dir", os.path.dirname(a.project_description))
    image = a.image or os.path.join(build_dir, desc.get("app_bin", ""))
    root = {
        "type": "firmware",
        "bom-ref": f"iot-firmware-esp32@{version}",
        "supplier": {"name": MANUFACTURER},
        "name": "iot-firmware-esp32",
        "version": version,
        "purl": own_purl("iot-firmware-esp32", version),
        "licenses": [{"license": {"name": "proprietary (iot_telemetry)"}}],
        "properties": [{"name": "iot:target", "value": desc.get("target", "")},
                       {"name": "iot:product-version", "value": product}],
    }
    image_hashed = os.path.isfile(image)
    if image_hashed:
        root["hashes"] = [{"alg": "SHA-256", "content": sha256(image)}]
    else:
        root["properties"].append({"name": "iot:image", "value": "not linked in this build (compile-only)"})
    idf_ref = f"pkg:github/espressif/esp-idf@v{idfv}"
    bom = bom_skeleton(root, [{"type": "framework", "name": "esp-idf", "version": idfv}])
    info = desc.get("build_component_info", {})
    comps = {}
    idf_root = os.path.realpath(idf_path)
    refs = {}
    for name in desc.get("build_components", []):
        if not name or name not in info:
            continue
        ci = info[name]
        cdir = os.path.realpath(ci.get("dir", ""))
        ours = not cdir.startswith(idf_root + os.sep)
        if ours:
            c = {"type": "library", "bom-ref": f"esp32:{name}@{product}",
                 "supplier": {"name": MANUFACTURER}, "name": name, "version": product,
                 "purl": own_purl(name, product),
                 "licenses": [{"license": {"name": "proprietary (iot_telemetry)"}}]}
            lib = ci.get("file", "")
            if lib and os.path.isfile(lib):
                c["hashes"] = [{"alg": "SHA-256", "content": sha256(lib)}]
            else:
                c["properties"] = [{"name": "iot:artifact",
                                    "value": "component archive not linked in this build"}]
        else:
            purl = f"pkg:github/espressif/esp-idf@v{idfv}#components/{name}"
            c = {"type": "library", "bom-ref": purl, "supplier": {"name": "Espressif Systems"},
                 "group": "esp-idf", "name": name, "version": idfv, "purl": purl,
                 "licenses": [{"license": {"id": "Apache-2.0"}}]}
            if name == "mbedtls":
                c["components"] = [{
                    "type": "library", "bom-ref": "pkg:github/Mbed-TLS/mbedtls@v3.6.0",
                    "name": "mbedtls", "version": "3.6.0",
                    "purl": "pkg:github/Mbed-TLS/mbedtls@v3.6.0",
                    "licenses": [{"expression": "Apache-2.0 OR GPL-2.0-or-later"}]}]
        comps[name] = c
        refs[name] = c["bom-ref"]
    bom["components"] = [{"type": "framework", "bom-ref": idf_ref, "supplier": {"name": "Espressif Systems"},
                          "name": "esp-idf", "version": idfv, "purl": f"pkg:github/espressif/esp-idf@v{idfv}",
                          "licenses": [{"license": {"id": "Apache-2.0"}}]}]
    bom["components"] += [comps[n] for n in sorted(comps)]
    dependencies = [{"ref": root["bom-ref"], "dependsOn": sorted(set(refs.values()) | {idf_ref})}]
    dependencies.append({"ref": idf_ref, "dependsOn": []})
    for name in sorted(comps):
        ci = info[name]
        reqs = set(ci.get("reqs", [])) | set(ci.get("priv_reqs", []))
        dependsOn = sorted(refs[r] for r in reqs if r in refs and r != name)
        if name == "mbedtls":
            dependencies.append({"ref": "pkg:github/Mbed-TLS/mbedtls@v3.6.0", "dependsOn": []})
            dependsOn.append("pkg:github/Mbed-TLS/mbedtls@v3.6.0")
        dependencies.append({"ref": refs[name], "dependsOn": dependsOn})
    bom["dependencies"] = dependencies
    own = [refs[n] for n in sorted(comps) if refs[n].startswith("esp32:")]
    idf = [refs[n] for n in sorted(comps) if not refs[n].startswith("esp32:")]
    bom["compositions"] = [
        {"aggregate": "complete", "assemblies": [root["bom-ref"]] + own,
         "dependencies": [root["bom-ref"]] + own},
        # ESP-IDF components bundle third-party code (lwip, FreeRTOS, ...)
        # that is not listed one by one.
        {"aggregate": "incomplete", "assemblies": [idf_ref] + idf,
         "dependencies": idf + (["pkg:github/Mbed-TLS/mbedtls@v3.6.0"] if "mbedtls" in comps else [])},
    ]
    return bom


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("host")
    h.add_argument("--name", required=True)
    h.add_argument("--version", required=True)
    h.add_argument("--binary", required=True)
    h.add_argument("--out", required=True)
    h.add_argument("--product-version", default="")
    h.add_argument("--own", action="append", default=[])
    h.add_argument("--deb-static", action="append", default=[])
    e = sub.add_parser("esp32")
    e.add_argument("--project-description", required=True)
    e.add_argument("--version", default="")
    e.add_argument("--product-version", default="")
    e.add_argument("--image", default="")
    e.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        bom = host_sbom(a) if a.cmd == "host" else esp32_sbom(a)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(bom, f, indent=2)
            f.write("\n")
        os.replace(tmp, a.out)
    except InputError as err:
        print(f"sbom: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
