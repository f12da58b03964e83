"""The alert rules in docs/operations.md name only metrics and labels reconciler emits (a rule on
a metric that does not exist never fires, silently)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from reconciler.core.plan import Plan
from reconciler.render.prometheus import render_health_prometheus, render_plan_prometheus
from test_health_render import report  # noqa: F401 - the fixture: a report with every kind of figure

PAGE = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def rules() -> list[dict]:
    m = re.search(r"<!-- docs-test: alert-rules -->\n```yaml\n(.*?)^```", PAGE.read_text(), re.S | re.M)
    assert m, "docs/operations.md has no alert-rules block"
    return [r for g in yaml.safe_load(m.group(1))["groups"] for r in g["rules"]]


def test_alert_rules_use_metrics_and_labels_we_emit(report):  # noqa: F811
    text = render_health_prometheus(report) + render_plan_prometheus(Plan(()), "app", 1.0)
    series: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            series.setdefault(s.name, set()).update(s.labels)
    found = rules()
    assert len(found) >= 5
    for rule in found:
        names = set(re.findall(r"\breconciler_[a-z0-9_]+", rule["expr"]))
        assert names, rule["alert"]
        for name in names:
            assert name in series, f"{rule['alert']}: {name} is not a metric reconciler emits"
        for name, matchers in re.findall(r"\b(reconciler_[a-z0-9_]+)\{([^}]*)\}", rule["expr"]):
            for label in re.findall(r"(\w+)\s*=~?", matchers):
                assert label in series[name], f"{rule['alert']}: {name} has no label {label}"
        by = re.findall(r"by \(([^)]*)\)", rule["expr"])
        used = {lab.strip() for b in by for lab in b.split(",")}
        for label in used | set(re.findall(r"\$labels\.(\w+)", str(rule.get("annotations", "")))):
            assert any(label in labels for n, labels in series.items() if n in names), \
                f"{rule['alert']}: no series of {sorted(names)} has a label {label}"
