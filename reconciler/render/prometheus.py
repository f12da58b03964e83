"""HealthReport / drift Plan → the Prometheus text exposition format, for node-exporter's textfile
collector (write the file atomically: `--output`).

Names follow Prometheus conventions under a `reconciler_` namespace (as Grafana Alloy did with
the names proposed in postgres_exporter PR 1071): base units (`_bytes`, `_seconds`, ratios
0..1), counters end in `_total`, one TYPE and HELP per family, label names in snake case and
label values escaped. Every finding kind is always present (0 when none), so an alert can say
`> 0` and a vanished series means the job stopped, not that the problem went away.
"""
from __future__ import annotations

from typing import Iterable

from ..core.plan import Plan
from ..health import FINDING_KINDS, HealthReport

Labels = dict[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float | int | bool) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class _Families:
    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_: str, labels: Labels, value: float | int | bool | None) -> None:
        if value is None:
            return
        fam = self.families.setdefault(name, (kind, help_, []))
        lab = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
        fam[2].append(f"{name}{{{lab}}} {_number(value)}" if lab else f"{name} {_number(value)}")

    def text(self) -> str:
        out: list[str] = []
        for name, (kind, help_, samples) in self.families.items():
            out.append(f"# HELP {name} {help_.replace(chr(92), chr(92) * 2)}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)
        return "\n".join(out) + "\n"


def render_health_prometheus(r: HealthReport) -> str:
    m = _Families()
    db = {"database": r.database}
    primary = r.nodes[0]
    m.add("reconciler_health_ok", "gauge", "1 when no health threshold is crossed (health exit code 0), else 0.",
          db, not r.crossed)
    m.add("reconciler_health_last_run_timestamp_seconds", "gauge",
          "When health read the statistics (the server's clock), in Unix seconds.", db, primary.now.timestamp())
    counts = r.counts()
    for kind in FINDING_KINDS:
        sev = {f.severity for f in r.findings if f.kind == kind}
        severity = "warning" if "warning" in sev else "info" if sev else _default_severity(kind)
        m.add("reconciler_health_findings", "gauge", "Findings of the last health run, by kind.",
              {**db, "kind": kind, "severity": severity}, counts.get(kind, 0))
    for n in r.nodes:
        age = (n.now - n.stats_since).total_seconds() if n.stats_since else None
        m.add("reconciler_health_stats_age_seconds", "gauge",
              "How long the statistics each node holds cover (since the last reset).",
              {**db, "node": n.name, "role": n.role}, age)
    for t in r.tables:
        lab = {**db, "schema": t.row.schema, "table": t.row.name}
        m.add("reconciler_table_index_hit_ratio", "gauge",
              "Index blocks found in shared buffers / all index blocks read (0..1).", lab, t.hit_ratio)
        m.add("reconciler_table_seq_scan_ratio", "gauge", "Sequential scans / all scans of the table (0..1).", lab,
              t.seq_scan_ratio)
        m.add("reconciler_table_seq_scans_total", "counter", "Sequential scans of the table.", lab, t.row.seq_scans)
        m.add("reconciler_table_index_scans_total", "counter", "Index scans on the table (all its indexes).", lab,
              t.row.index_scans)
        m.add("reconciler_table_rows", "gauge", "Live rows (the planner's estimate after a statistics reset).", lab,
              t.row.rows)
        m.add("reconciler_table_rows_modified_since_analyze", "gauge",
              "Rows inserted, updated or deleted since the last ANALYZE.", lab, t.row.modified_since_analyze)
        m.add("reconciler_table_size_bytes", "gauge", "Size of the table (pg_table_size).", lab, t.row.size_bytes)
    for x in r.indexes:
        lab = {**db, "schema": x.row.schema, "table": x.row.table, "index": x.row.name}
        m.add("reconciler_index_size_bytes", "gauge", "Size of the index (main fork).", lab, x.row.size_bytes)
        for node, scans in x.node_scans or ((r.nodes[0].name, x.row.scans),):
            m.add("reconciler_index_scans_total", "counter", "Index scans, on the primary and on each replica given "
                  "(a partitioned index: all its partitions).", {**lab, "node": node}, scans)
        m.add("reconciler_index_tuples_read_total", "counter", "Index entries returned by scans of the index.", lab,
              x.row.tuples_read)
        m.add("reconciler_index_tuples_fetched_total", "counter", "Live table rows fetched by simple index scans.",
              lab, x.row.tuples_fetched)
        m.add("reconciler_index_valid", "gauge", "1 when the index is VALID and READY, else 0.", lab,
              x.row.valid and x.row.ready)
        m.add("reconciler_index_in_spec", "gauge", "1 when the spec has an entry for the index, else 0.", lab,
              x.in_spec)
        if x.bloat is not None and x.bloat.ratio is not None:
            blab = {**lab, "method": x.bloat.method}
            m.add("reconciler_index_bloat_ratio", "gauge", "Wasted space / index size (0..1), btree.", blab,
                  x.bloat.ratio)
            m.add("reconciler_index_bloat_bytes", "gauge", "Wasted bytes, btree.", blab, x.bloat.wasted_bytes)
    return m.text()


def _default_severity(kind: str) -> str:
    return "info" if kind in ("unused_fk_cover", "invalid_building") else "warning"


DRIFT_KINDS = ("missing", "changed", "invalid", "renamed", "extra", "constraint", "being_built")


def render_drift_prometheus(items: Iterable[dict], database: str, now_seconds: float | None = None) -> str:
    """The drift report's items (see `render.drift.drift_items`) as gauges: differences by kind
    (every kind present, 0 when none) and whether the managed indexes are in sync."""
    m = _Families()
    db = {"database": database}
    counts = {k: 0 for k in DRIFT_KINDS}
    items = list(items)
    for i in items:
        counts[i["kind"]] = counts.get(i["kind"], 0) + 1
    m.add("reconciler_drift_in_sync", "gauge", "1 when the managed indexes match the spec (drift exit code 0).", db,
          not items)
    for kind, n in counts.items():
        m.add("reconciler_drift_differences", "gauge", "Differences between the spec and the database, by kind.",
              {**db, "kind": kind}, n)
    if now_seconds is not None:
        m.add("reconciler_drift_last_run_timestamp_seconds", "gauge", "When drift compared, in Unix seconds.", db,
              now_seconds)
    return m.text()


def render_plan_prometheus(plan: Plan, database: str, now_seconds: float | None = None) -> str:
    from .drift import drift_items

    return render_drift_prometheus(drift_items(plan), database, now_seconds)
