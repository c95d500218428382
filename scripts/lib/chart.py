"""Renders the Helm chart with Helm's own engine (PyPI helm-python-sdk), for the plain
manifests in deploy/manifests and for the chart tests."""

from __future__ import annotations

import pathlib

import helm_python as helm

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "lustre-operator"
PLAIN = ROOT / "deploy" / "manifests" / "lustre-operator.yaml"
RELEASE = "lustre-operator"
NAMESPACE = "lustre-system"


def render(values: dict | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` renders them."""
    chart = helm.Chart.load(str(CHART))
    chart.validate_schema(values or {})
    return chart.render(values or {}, name=name, namespace=namespace, is_install=True)


def plain_manifests() -> str:
    """The default install as one multi-document YAML file (NOTES.txt left out)."""
    out = [
        "# Generated from charts/lustre-operator with its default values by scripts/render-manifests.\n"
        "# Do not edit: change the chart and run scripts/render-manifests.\n"
    ]
    for path, text in sorted(render().items()):
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        out.append(f"---\n# Source: {path}\n{text.strip()}\n")
    return "".join(out)
