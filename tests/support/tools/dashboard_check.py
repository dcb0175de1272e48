#!/usr/bin/python3
"""Checks a Grafana dashboard (deploy/grafana/*.json) for what an operator
importing it relies on, and prints one line per problem:

  dashboard_check.py static DASHBOARD METRICS_C DOCS_MD
      the layout (unique panel ids, panels inside the 24-column grid and not
      overlapping, a datasource and a query on every panel) and that every
      iotgw_ metric a query names is exported (METRICS_C) and documented
      (DOCS_MD);
  dashboard_check.py live DASHBOARD PROMETHEUS_URL
      every query, with the dashboard's variables replaced, evaluated by a
      running Prometheus that scrapes a gateway: accepted, and returning at
      least one series (a query that returns nothing shows an empty panel).

Exit 0 when nothing is wrong, 1 otherwise."""
import json
import re
import sys
import urllib.parse
import urllib.request

VARIABLES = {"$__rate_interval": "30s", "$__range": "5m", "$instance": ".*", "${instance}": ".*"}


def queries(dash):
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p, t["expr"]
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            yield v, v["definition"]


def check_static(dash, metrics_c, docs):
    problems = []
    ids, cells = set(), {}
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problems.append("the dashboard has no %s" % key)
    for p in dash["panels"]:
        if p["id"] in ids:
            problems.append("panel id %d is used twice" % p["id"])
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] <= 0 or g["x"] + g["w"] > 24 or g["h"] <= 0:
            problems.append("panel %r is outside the 24-column grid: %r" % (p["title"], g))
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append("panels %r and %r overlap" % (cells[(x, y)], p["title"]))
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
        if p["type"] == "row":
            continue
        if not p.get("description"):
            problems.append("panel %r says nothing of what it shows" % p["title"])
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append("panel %r does not use the datasource variable" % p["title"])
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs) or not all(t.get("expr") for t in p["targets"]):
            problems.append("panel %r needs queries with distinct refIds" % p["title"])
    for owner, expr in queries(dash):
        for m in set(re.findall(r"\biotgw_[a-z_]+", expr)):
            base = re.sub(r"_(bucket|sum|count)$", "", m)
            if not re.search(r"\b%s\b" % base, metrics_c):
                problems.append("%r uses %s, which the gateway does not export" % (owner.get("title", owner.get("name")), m))
            if not re.search(r"`%s[`{]" % base, docs):
                problems.append("%r uses %s, which docs/gateway.md does not document" % (owner.get("title", owner.get("name")), m))
    return problems


def substitute(expr):
    m = re.fullmatch(r"label_values\((.+), *(\w+)\)", expr)
    if m:  # Grafana's variable query: the series that carry the label
        expr = m.group(1)
    for k, v in VARIABLES.items():
        expr = expr.replace(k, v)
    return expr


def check_live(dash, url):
    problems = []
    n = 0
    for owner, expr in queries(dash):
        q = substitute(expr)
        n += 1
        try:
            with urllib.request.urlopen(url + "/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=10) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as e:
            answer = json.load(e)
        title = owner.get("title", owner.get("name"))
        if answer.get("status") != "success":
            problems.append("%r: Prometheus refuses %s: %s" % (title, q, answer.get("error")))
        elif not answer["data"]["result"]:
            problems.append("%r: %s returns no series" % (title, q))
    print("%d queries evaluated" % n)
    return problems


def main(argv):
    dash = json.load(open(argv[2]))
    if argv[1] == "static":
        problems = check_static(dash, open(argv[3]).read(), open(argv[4]).read())
    else:
        problems = check_live(dash, argv[3])
    for p in problems:
        print(p)
    print("%d panels, %d problems" % (len(dash["panels"]), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
