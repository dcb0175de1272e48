#!/usr/bin/python3
"""Checks security event documents, one per line ("TOPIC JSON", as
mosquitto_sub -v prints them), against the JSON Schema
(docs/schemas/security-event.schema.json): every document valid, its
topic security/<gateway>/<type> agreeing with its fields, and per topic
seq 1, 2, 3, ... without a gap (a document delivered twice keeps its seq).
Prints what is wrong; exit 0 when nothing is, 1 otherwise."""
import json
import sys

import jsonschema


def main(schema_path, docs_path):
    schema = json.load(open(schema_path))
    jsonschema.Draft7Validator.check_schema(schema)
    v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
    seqs, bad, n = {}, 0, 0
    for line in open(docs_path):
        topic, _, text = line.rstrip("\n").partition(" ")
        if not topic.startswith("security/"):
            continue
        n += 1
        doc = json.loads(text)
        for e in v.iter_errors(doc):
            bad += 1
            print("invalid:", e.message, "in", text[:200])
        if topic != "security/%s/%s" % (doc.get("gateway"), doc.get("type")):
            bad += 1
            print("topic", topic, "does not match", text[:200])
        seqs.setdefault(topic, set()).add(doc.get("seq"))
    for topic, s in sorted(seqs.items()):
        if sorted(s) != list(range(1, len(s) + 1)):
            bad += 1
            print("gap in", topic, sorted(s))
    print("%d documents, %d problems" % (n, bad))
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
