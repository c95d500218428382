"""The Prometheus alert rules and the Grafana dashboard: well-formed, and every metric they
query is one the operator exports (names read from crates/controller/src/metrics.rs)."""

from __future__ import annotations

import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
METRICS_RS = (ROOT / "crates" / "controller" / "src" / "metrics.rs").read_text()
EXPORTED = set(re.findall(r'"(lustre_operator_[a-z_]+)"', METRICS_RS))
# The prometheus crate's process collector (enabled in the operator).
PROCESS = {"process_resident_memory_bytes", "process_cpu_seconds_total"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = {"sum", "rate", "increase", "max", "absent", "by", "le", "or", "histogram_quantile",
                "label_values", "job", "phase", "outcome", "category", "result", "deployment_type",
                "service", "operation", "pod"}


def metric_names(expr: str) -> set[str]:
    names = set()
    bare = re.sub(r"\[[^\]]*\]", "", re.sub(r'"[^"]*"', "", expr))
    for word in re.findall(r"[a-z_][a-z0-9_]*", bare):
        if word in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def known(name: str) -> bool:
    base = name
    for s in HISTOGRAM_SUFFIXES:
        if name.endswith(s) and name[: -len(s)] in EXPORTED:
            base = name[: -len(s)]
    return base in EXPORTED or name in PROCESS


def test_exported_metrics_were_found():
    assert {"lustre_operator_workspaces", "lustre_operator_aws_requests_total", "lustre_operator_leader"} <= EXPORTED


def test_alert_rules():
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "rules.yaml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len(alerts) >= 6
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names))
    for a in alerts:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", a["alert"])
        assert a["labels"]["severity"] in {"critical", "warning", "info"}, a["alert"]
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]
        if "for" in a:
            assert re.fullmatch(r"[0-9]+[smh]", a["for"]), a["alert"]
        unknown = [m for m in metric_names(a["expr"]) if not known(m)]
        assert not unknown, (a["alert"], unknown)


def test_dashboard():
    dash = json.loads((ROOT / "deploy" / "grafana" / "lustre-operator.json").read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 10
    for p in dash["panels"]:
        assert p["targets"], p["title"]
        for t in p["targets"]:
            unknown = [m for m in metric_names(t["expr"]) if not known(m)]
            assert not unknown, (p["title"], unknown)
