"""HealthReport → text (aligned tables, for a terminal or a cron mail), markdown (a pull-request
comment or a wiki page) and JSON (machines). Deterministic, no database, no clock."""
from __future__ import annotations

import json
from typing import Any, Sequence

from ..core.display import json_safe
from ..core.plan import PLAN_FORMAT_VERSION
from ..health import HealthReport, human_age, human_bytes
from ..health.model import Finding

TEXT_INDEX_ROWS = 100   # the text report lists the largest; json, prometheus and html list them all


def _pct(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v * 100:.{digits}f}%"


def _grid(headers: Sequence[str], rows: list[Sequence[str]], right: set[int] = frozenset()) -> list[str]:
    """Aligned columns (numbers right-aligned), two spaces apart."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _where(f: Finding) -> str:
    return f"{f.schema}.{f.index} on {f.table}" if f.index else f"{f.schema}.{f.table}"


def headline(r: HealthReport) -> str:
    primary = r.nodes[0]
    age = human_age((primary.now - primary.stats_since).total_seconds()) if primary.stats_since else "unknown"
    reps = f", {len(r.nodes) - 1} replica(s)" if len(r.nodes) > 1 else ""
    return (f"reconciler health: database {r.database}, {r.scope} tables ({len(r.tables)} tables, "
            f"{len(r.indexes)} indexes){reps}; statistics cover {age} (since {primary.since_source})")


def verdict(r: HealthReport) -> str:
    warnings = sum(1 for f in r.findings if f.severity == "warning")
    infos = len(r.findings) - warnings
    if warnings:
        return f"Thresholds crossed: {warnings} finding(s) to act on" + (f", {infos} for information." if infos else ".")
    return "Healthy: no threshold crossed" + (f" ({infos} finding(s) for information)." if infos else ".")


def render_health_text(r: HealthReport) -> str:
    out = [headline(r), ""]
    if r.findings:
        out.append("Findings:")
        rows = [[f.severity, f.kind, _where(f), f.message] for f in r.findings]
        out += ["  " + line for line in _grid(["SEVERITY", "KIND", "WHERE", "VERDICT"], rows)]
        fixes = [f for f in r.findings if f.edit or f.sql or f.fix]
        if fixes:
            out += ["", "Fixes:"]
            for f in fixes:
                out.append(f"  {f.kind} {_where(f)}:")
                if f.edit:
                    out += ["    spec: " + line if i == 0 else "      " + line
                            for i, line in enumerate(f.edit.describe().splitlines())]
                if f.fix:
                    out.append(f"    then: {f.fix}" if f.edit else f"    fix:  {f.fix}")
                if f.sql:
                    out.append(f"    sql:  {f.sql}")
        out.append("")
    if r.tables:
        out.append("Tables:")
        rows = [[f"{t.row.schema}.{t.row.name}", f"{t.row.rows:,}", human_bytes(t.row.size_bytes),
                 human_bytes(t.row.indexes_bytes), _pct(t.hit_ratio, 2), _pct(t.seq_scan_ratio),
                 f"{t.row.seq_scans:,}", f"{t.row.index_scans:,}", f"{t.row.modified_since_analyze:,}"
                 + (" (stale)" if t.stale else "")] for t in r.tables]
        out += ["  " + line for line in _grid(
            ["TABLE", "ROWS", "SIZE", "INDEXES", "INDEX HIT", "SEQ SHARE", "SEQ SCANS", "IDX SCANS",
             "MODIFIED SINCE ANALYZE"], rows, right={1, 2, 3, 4, 5, 6, 7})]
        out.append("")
    if r.indexes:
        shown = sorted(r.indexes, key=lambda i: (-i.row.size_bytes, i.row.schema, i.row.name))[:TEXT_INDEX_ROWS]
        more = f" (the {len(shown)} largest of {len(r.indexes):,}; --format json lists every one)" \
            if len(shown) < len(r.indexes) else ""
        out.append(f"Indexes{more}:")
        rows = []
        for x in shown:
            b = x.bloat
            bloat = "-" if b is None or b.ratio is None else f"{b.ratio * 100:.0f}% {'exact' if b.method == 'pgstatindex' else 'est.'}"
            rows.append([f"{x.row.schema}.{x.row.name}", x.row.table, human_bytes(x.row.size_bytes),
                         f"{x.scans_total:,}", f"{x.row.tuples_read:,}", f"{x.row.tuples_fetched:,}",
                         "yes" if x.row.valid and x.row.ready else "NO", x.spec_where or "-", bloat])
        out += ["  " + line for line in _grid(
            ["INDEX", "TABLE", "SIZE", "SCANS", "TUP READ", "TUP FETCHED", "VALID", "SPEC", "BLOAT"], rows,
            right={2, 3, 4, 5, 8})]
        out.append("")
    if len(r.nodes) > 1:
        out.append("Nodes:")
        for n in r.nodes:
            age = human_age((n.now - n.stats_since).total_seconds()) if n.stats_since else "unknown"
            out.append(f"  {n.role:<8} {n.name}: statistics cover {age} (since {n.since_source})")
        out.append("")
    if r.notes:
        out.append("Notes:")
        out += [f"  - {n}" for n in r.notes]
        out.append("")
    out.append(verdict(r))
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render_health_markdown(r: HealthReport) -> str:
    out = ["### reconciler health", "", f"**{verdict(r)}**", "", headline(r), ""]
    if r.findings:
        out += ["| severity | kind | where | verdict | fix |", "|---|---|---|---|---|"]
        for f in r.findings:
            fix = []
            if f.edit:
                fix.append(_md(f.edit.describe().splitlines()[0]))
            if f.fix:
                fix.append(_md(f.fix))
            if f.sql:
                fix.append(f"`{_md(f.sql)}`")
            out.append(f"| {f.severity} | {f.kind} | `{_where(f)}` | {_md(f.message)} | {'<br>'.join(fix)} |")
        adds = [f for f in r.findings if f.edit and f.edit.action == "add"]
        if adds:
            out += ["", "<details><summary>Entries to add to the spec</summary>", "", "```yaml"]
            out += [f.edit.yaml.rstrip() for f in adds]
            out += ["```", "</details>"]
        out.append("")
    if r.tables:
        out += ["<details><summary>Tables</summary>", "",
                "| table | rows | index hit | seq share | modified since analyze |", "|---|---:|---:|---:|---:|"]
        out += [f"| `{t.row.schema}.{t.row.name}` | {t.row.rows:,} | {_pct(t.hit_ratio, 2)} | "
                f"{_pct(t.seq_scan_ratio)} | {t.row.modified_since_analyze:,} |" for t in r.tables]
        out += ["", "</details>", ""]
    if r.notes:
        out += [f"> {_md(n)}" for n in r.notes]
        out.append("")
    return "\n".join(out)


def report_dict(r: HealthReport) -> dict[str, Any]:
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "database": r.database,
        "scope": r.scope,
        "healthy": not r.crossed,
        "thresholds": r.thresholds.to_dict(),
        "nodes": [{"name": n.name, "role": n.role, "now": n.now.isoformat(),
                   "stats_since": n.stats_since.isoformat() if n.stats_since else None,
                   "stats_since_source": n.since_source, "server_version": n.server_version} for n in r.nodes],
        "findings": [f.to_dict() for f in r.findings],
        "counts": r.counts(),
        "tables": [{"schema": t.row.schema, "table": t.row.name, "kind": t.row.kind, "rows": t.row.rows,
                    "live_rows": t.row.live_rows, "dead_rows": t.row.dead_rows, "size_bytes": t.row.size_bytes, "indexes_bytes": t.row.indexes_bytes,
                    "seq_scans": t.row.seq_scans, "index_scans": t.row.index_scans,
                    "index_hit_ratio": t.hit_ratio, "seq_scan_ratio": t.seq_scan_ratio,
                    "index_blocks_hit": t.row.index_blocks_hit, "index_blocks_read": t.row.index_blocks_read,
                    "modified_since_analyze": t.row.modified_since_analyze, "stale": t.stale,
                    "last_analyze": t.row.last_analyze.isoformat() if t.row.last_analyze else None}
                   for t in r.tables],
        "indexes": [{"schema": x.row.schema, "table": x.row.table, "index": x.row.name, "method": x.row.method,
                     "size_bytes": x.row.size_bytes, "scans": x.scans_total, "scans_primary": x.row.scans,
                     "tuples_read": x.row.tuples_read, "tuples_fetched": x.row.tuples_fetched,
                     "valid": x.row.valid and x.row.ready, "in_spec": x.in_spec, "spec_where": x.spec_where,
                     "last_scan": x.row.last_scan.isoformat() if x.row.last_scan else None,
                     "constraint": x.row.constraint,
                     "bloat": None if x.bloat is None else {"ratio": x.bloat.ratio, "wasted_bytes": x.bloat.wasted_bytes,
                                                            "method": x.bloat.method, "note": x.bloat.note}}
                    for x in r.indexes],
        "notes": list(r.notes),
    }


def _line_encoder():
    """str of one JSON value on one line, exactly as json.dumps(value, ensure_ascii=False)
    writes it. JSONEncoder.encode builds a new C encoder (and its circular-reference dict) for
    every call; 16,000 lines share one here (no circular check: report_dict's values are fresh
    dicts and lists of plain values)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:   # a Python without the _json accelerator
        return json.JSONEncoder(ensure_ascii=False).encode
    base = json.JSONEncoder(ensure_ascii=False, check_circular=False)
    encoder = make(None, base.default, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda value: "".join(encoder(value, 0))


def render_health_json(r: HealthReport) -> str:
    """Indented like the other JSON outputs, except that each table and each index is one line:
    12,000 of them with indent=2 would take CPython's pure-Python encoder (seconds); this way
    each line goes through the C encoder, and the file still diffs and greps one index a line."""
    doc = report_dict(r)
    encode = _line_encoder()   # one encoder for every line
    out = []
    for key, value in doc.items():
        if key in ("tables", "indexes", "findings") and value:
            items = ",\n".join("    " + encode(v) for v in value)
            out.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            body = json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            out.append(f"  {json.dumps(key)}: {body}")
    # names from the database: a bidi override or C1 control is written as \u, as in the plan's JSON
    return json_safe("{\n" + ",\n".join(out) + "\n}\n")
