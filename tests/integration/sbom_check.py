#!/usr/bin/python3
"""sbom_check.py SCHEMA_DIR FILE...: each FILE validates against the
CycloneDX 1.6 JSON schema (SCHEMA_DIR/bom-1.6.schema.json, its spdx and jsf
references resolved locally, never fetched) and has what BSI TR-03183-2
asks of an SBOM: creator and timestamp; for every component name, version,
licence; a SHA-256 hash for our own (supplier = the manufacturer) where the
artifact was built; every component in the dependency graph; completeness
stated in compositions. Prints one line per problem, exit 1 if any."""
import json
import os
import re
import sys

import jsonschema

MANUFACTURER = "iot_telemetry project"


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def validator(schema_dir):
    bom = load(os.path.join(schema_dir, "bom-1.6.schema.json"))
    store = {}
    for name in ("bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"):
        s = load(os.path.join(schema_dir, name))
        store[s["$id"]] = s
        store[name] = s
    resolver = jsonschema.RefResolver.from_schema(bom, store=store)
    cls = jsonschema.validators.validator_for(bom)
    cls.check_schema(bom)
    return cls(bom, resolver=resolver, format_checker=cls.FORMAT_CHECKER)


def walk(components):
    for c in components:
        yield c
        yield from walk(c.get("components", []))


def bsi(doc):
    errs = []
    md = doc.get("metadata", {})
    if not (md.get("manufacturer", {}).get("name") or md.get("authors")):
        errs.append("metadata: no creator (manufacturer/authors)")
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", md.get("timestamp", "")):
        errs.append(f"metadata.timestamp '{md.get('timestamp')}' is not UTC RFC 3339")
    root = md.get("component")
    if not root:
        return errs + ["metadata.component missing"]
    comps = [root] + list(walk(doc.get("components", [])))
    refs = set()
    for c in comps:
        who = c.get("bom-ref", c.get("name"))
        refs.add(c.get("bom-ref"))
        for field in ("name", "version"):
            if not c.get(field):
                errs.append(f"{who}: no {field}")
        if not c.get("licenses"):
            errs.append(f"{who}: no licence")
        ours = c.get("supplier", {}).get("name") == MANUFACTURER
        built = not any(p.get("name") in ("iot:image", "iot:artifact") and "not linked" in p.get("value", "")
                        for p in c.get("properties", []))
        if ours and built and not any(h.get("alg") == "SHA-256" for h in c.get("hashes", [])):
            errs.append(f"{who}: our own component without a SHA-256 hash")
        if not c.get("purl"):
            errs.append(f"{who}: component without a purl")
    graph = {d["ref"] for d in doc.get("dependencies", [])}
    for r in refs - graph:
        errs.append(f"{r}: not in the dependency graph")
    covered = set()
    for comp in doc.get("compositions", []):
        if comp.get("aggregate") not in ("complete", "incomplete", "incomplete_first_party_only",
                                         "unknown", "not_specified"):
            errs.append(f"compositions: aggregate '{comp.get('aggregate')}'")
        covered |= set(comp.get("assemblies", [])) | set(comp.get("dependencies", []))
    for r in refs - covered:
        errs.append(f"{r}: completeness not stated in compositions")
    return errs


def main():
    v = validator(sys.argv[1])
    bad = 0
    for path in sys.argv[2:]:
        try:
            doc = load(path)
        except (OSError, ValueError) as e:
            print(f"{path}: {e}")
            bad += 1
            continue
        errs = [f"schema: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                for e in v.iter_errors(doc)] + bsi(doc)
        for e in errs:
            print(f"{path}: {e}")
        bad += bool(errs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
