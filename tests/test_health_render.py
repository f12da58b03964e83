"""Rendering a HealthReport (no database): Prometheus exposition parsed by prometheus-client's own
parser, the JSON shape, aligned text, markdown, and a self-contained HTML file. The HTML is
checked in a real browser by tests/test_health_integration.py."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_health import MB, NOW, fk, inputs, ix, node, snap, table

from reconciler.core.plan import Drift, Plan
from reconciler.health import FINDING_KINDS, ReplicaScans, Thresholds, assess
from reconciler.render.health import render_health_json, render_health_markdown, render_health_text
from reconciler.render.html import render_health_html
from reconciler.render.prometheus import render_drift_prometheus, render_health_prometheus, render_plan_prometheus


@pytest.fixture(scope="module")
def report():
    rows = [
        ix("CREATE INDEX t_a ON t (a)"),                                            # unused_fk_cover
        ix("CREATE INDEX t_b ON t (b)"),                                            # unused
        ix('CREATE INDEX "we""ird\\name" ON t (c)', scans=5),                       # label escaping
        ix("CREATE INDEX t_d ON t (d)", scans=9, size=2000 * 8192, bloat=inputs(2000, 100000)),   # bloated
        ix("CREATE INDEX t_e ON t (e)", scans=3, valid=False),                      # invalid_abandoned
    ]
    rep = ReplicaScans(node(name="replica 1", role="replica"), {("public", "t_d"): (4, None)})
    tables = [table("t", 1, live_rows=50000, seq_scans=500, index_scans=17, index_blocks_hit=100,
                    index_blocks_read=4000, modified_since_analyze=90000, size_bytes=50 * MB), table("u", 2)]
    return assess(snap(*rows, tables=tables, fks=[fk()], replicas=[rep]))


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_prometheus_parses_and_follows_conventions(report):
    text = render_health_prometheus(report)
    fams = families(text)
    # prometheus-client names a counter family without its _total suffix
    assert {"reconciler_index_size_bytes", "reconciler_index_scans", "reconciler_index_valid",
            "reconciler_index_bloat_ratio", "reconciler_table_index_hit_ratio", "reconciler_table_seq_scan_ratio",
            "reconciler_table_rows_modified_since_analyze", "reconciler_health_findings",
            "reconciler_health_ok"} <= set(fams)
    assert fams["reconciler_index_scans"].type == "counter"
    assert all(s.name.endswith("_total") for s in fams["reconciler_index_scans"].samples)
    assert fams["reconciler_index_size_bytes"].type == "gauge"
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            name, kind = line.split()[2:4]
            assert re.fullmatch(r"reconciler_[a-z0-9_]+", name)
            assert name.endswith("_total") == (kind == "counter"), line
    # every finding kind is a series, present even at 0
    kinds = {s.labels["kind"]: s.value for s in fams["reconciler_health_findings"].samples}
    assert set(kinds) == set(FINDING_KINDS)
    assert kinds["unused"] == 1 and kinds["bloated"] == 1 and kinds["duplicate"] == 0
    assert [s.value for s in fams["reconciler_health_ok"].samples] == [0]


def test_prometheus_label_values_are_escaped_and_round_trip(report):
    fams = families(render_health_prometheus(report))
    names = {s.labels["index"] for s in fams["reconciler_index_size_bytes"].samples}
    assert 'we"ird\\name' in names


def test_prometheus_scans_per_node_and_bloat_method(report):
    fams = families(render_health_prometheus(report))
    td = {s.labels["node"]: s.value for s in fams["reconciler_index_scans"].samples if s.labels["index"] == "t_d"}
    assert td == {"primary": 9, "replica 1": 4}
    methods = {s.labels["method"] for s in fams["reconciler_index_bloat_ratio"].samples}
    assert methods == {"estimate"}
    hit = [s.value for s in fams["reconciler_table_index_hit_ratio"].samples if s.labels["table"] == "t"]
    assert hit == [pytest.approx(100 / 4100)]


def test_drift_prometheus():
    plan = Plan((), drift=(Drift("extra", "public", "t", "x", "not in the spec"),
                           Drift("ignored", "public", "t", "legacy", "ignored")))
    fams = families(render_plan_prometheus(plan, "app", 1700000000.0))
    assert [s.value for s in fams["reconciler_drift_in_sync"].samples] == [0]
    diffs = {s.labels["kind"]: s.value for s in fams["reconciler_drift_differences"].samples}
    assert diffs["extra"] == 1 and diffs["missing"] == 0 and "ignored" not in diffs
    fams = families(render_drift_prometheus([], "app"))
    assert [s.value for s in fams["reconciler_drift_in_sync"].samples] == [1]


def test_json_has_every_finding_with_its_edit(report):
    doc = json.loads(render_health_json(report))
    assert doc["healthy"] is False and doc["database"] == "db"
    # t_a covers the foreign key: no fk_unindexed
    assert {f["kind"] for f in doc["findings"]} == {"unused", "unused_fk_cover", "bloated", "invalid_abandoned",
                                                    "low_hit_ratio", "seq_scan_heavy", "stale_statistics"}
    unused = next(f for f in doc["findings"] if f["kind"] == "unused")
    assert unused["sql"] == "DROP INDEX CONCURRENTLY public.t_b;" and unused["evidence"]["scans"] == 0
    assert doc["thresholds"] == Thresholds().to_dict()
    assert {i["index"] for i in doc["indexes"]} == {"t_a", "t_b", 'we"ird\\name', "t_d", "t_e"}
    assert doc["nodes"][1]["role"] == "replica"


def test_text_is_aligned_and_ends_with_the_verdict(report):
    text = render_health_text(report)
    lines = text.splitlines()
    assert lines[-1].startswith("Thresholds crossed:")
    head = next(i for i, ln in enumerate(lines) if ln.strip().startswith("INDEX "))
    rule = lines[head + 1]
    segments = [(m.start(), m.end()) for m in re.finditer(r"-+", rule)]
    assert len(segments) == 9
    body = lines[head: head + 2 + len(report.indexes)]
    gaps = [i for i in range(len(rule)) if not any(a <= i < b for a, b in segments)]
    for line in body:   # every column stays inside its rule segment: the gaps are blank on every line
        assert all(i >= len(line) or line[i] == " " for i in gaps), line
    assert "spec:" not in text or "remove the entry" in text
    assert "sql:  DROP INDEX CONCURRENTLY public.t_b;" in text


def test_markdown_table(report):
    md = render_health_markdown(report)
    assert md.startswith("### reconciler health")
    assert "| warning | unused | `public.t_b on t` |" in md


def test_html_is_self_contained_with_inline_svg_charts(report):
    html = render_health_html(report)
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script|<link|@import|url\(|src=|https?://(?!www\.w3\.org/2000/svg)", html)
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    assert len(svgs) == 5
    for s in svgs:
        ET.fromstring(s)   # every chart is well-formed XML
    for cid in ("chart-findings", "chart-size-scans", "chart-hit-ratio", "chart-bloat", "chart-seq-scans"):
        assert f'id="{cid}"' in html
    assert "we&quot;ird\\name" in html   # escaped, never raw markup


def test_html_of_a_healthy_empty_report_still_renders():
    r = assess(snap(tables=[table("t", 1)]))
    html = render_health_html(r)
    assert "no findings: every threshold holds" in html and "Healthy" in html
    for s in re.findall(r"<svg .*?</svg>", html, re.S):
        ET.fromstring(s)


def test_html_lists_at_most_the_largest_indexes():
    from reconciler.render import html as mod

    rows = [ix(f"CREATE INDEX i{n} ON t (a)", scans=1, size=(n + 1) * 8192) for n in range(mod.MAX_INDEX_ROWS + 3)]
    r = assess(snap(*rows, since=NOW - timedelta(hours=1)), Thresholds())
    html = render_health_html(r)
    assert f"the {mod.MAX_INDEX_ROWS} largest of {mod.MAX_INDEX_ROWS + 3}" in html


def test_json_lines_are_what_json_dumps_writes(report):
    """The one shared C encoder of the report's lines writes each value exactly as
    json.dumps(ensure_ascii=False) does: quotes, backslashes, controls, non-ASCII, floats."""
    from reconciler.render.health import _line_encoder, report_dict

    doc = report_dict(report)
    values = doc["indexes"] + doc["findings"] + doc["tables"] + [
        doc["nodes"], 'we"ird\\name\n\x1b\u2028é', 0.1 + 0.2, 1e300, float("nan"), float("-inf"), None, True, 0,
        {"a": [1, {"b": None}]}, [], {}]
    encode = _line_encoder()
    assert [encode(v) for v in values] == [json.dumps(v, ensure_ascii=False) for v in values]
