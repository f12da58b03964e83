"""HealthReport → one self-contained HTML file: the monitoring dashboard of the indexing
document. Charts are inline SVG (they render with JavaScript off and need no network), styles
are inline, and every name is escaped. Long names are shortened in charts (the full name is the
mark's <title>, a native tooltip) and wrap in tables, so no text leaves its box.
"""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

from ..health import FINDING_KINDS, HealthReport, human_age, human_bytes
from ..health.model import MIN_SEQ_SCAN_SAMPLE, Finding
from .health import headline, verdict

WARN, INFO, OK, GRID, INK, MUTED = "#c0392b", "#d68910", "#4a78a8", "#e3e6ea", "#1f2933", "#667085"
MAX_INDEX_ROWS = 500      # the index table lists the largest; the JSON format has them all
MAX_POINTS = 4000         # scatter points: every flagged index, then the largest
BAR_ROWS = 15
CHAR_W = 6.6              # average advance of an 11px sans-serif character, in SVG units

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#1f2933;background:#f4f6f8}
main{max-width:1280px;margin:0 auto;padding:20px}
header{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:16px 20px;margin-bottom:16px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 10px}
.meta{color:#667085;margin:0;overflow-wrap:anywhere}
.badge{display:inline-block;margin-top:10px;padding:4px 10px;border-radius:12px;font-weight:600;color:#fff}
.badge.ok{background:#2e7d32}.badge.bad{background:#c0392b}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;margin-bottom:16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px 14px;min-width:0}
.card .n{font-size:22px;font-weight:700;overflow-wrap:anywhere}
.card .l{color:#667085;font-size:12px;overflow-wrap:anywhere}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px;margin-bottom:16px}
figure.chart{margin:0;background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px;min-width:0}
figure.chart figcaption{font-weight:600;margin-bottom:2px;overflow-wrap:anywhere}
figure.chart .sub{color:#667085;font-size:12px;margin-bottom:6px;overflow-wrap:anywhere}
figure.chart svg{display:block;width:100%;height:auto}
section.block{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 16px;margin-bottom:16px;min-width:0}
table{width:100%;border-collapse:collapse;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid #eceff2;overflow-wrap:anywhere;word-break:break-word}
th{font-size:12px;color:#667085;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
pre{margin:4px 0 0;padding:6px 8px;background:#f4f6f8;border-radius:4px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}
code{font-size:12px;overflow-wrap:anywhere}
.sev{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;white-space:nowrap}
table.findings td.kind{overflow-wrap:normal;word-break:normal}
@media (max-width:760px){
 table.findings,table.findings tbody,table.findings tr,table.findings td{display:block;width:auto}
 table.findings tr.head{display:none}
 table.findings tr{border-bottom:1px solid #eceff2;padding:6px 0}
 table.findings td{border:0;padding:2px 0}
}
.sev.warning{background:#c0392b}.sev.info{background:#d68910}
ul.notes{margin:0;padding-left:18px}
.legend span{display:inline-block;margin-right:12px;font-size:12px;color:#667085}
.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px;vertical-align:-1px}
footer{color:#667085;font-size:12px;text-align:center;padding:8px;overflow-wrap:anywhere}
"""


def _fit(text: str, width: float) -> str:
    """Shorten `text` to what `width` SVG units hold, with an ellipsis."""
    n = max(3, int(width / CHAR_W))
    return text if len(text) <= n else text[: n - 1] + "…"


def _svg(w: int, h: int, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-family="-apple-system,Segoe UI,Roboto,DejaVu Sans,Arial,'
            f'sans-serif" font-size="11">' + "".join(body) + "</svg>")


def _empty(w: int, h: int, message: str) -> str:
    return _svg(w, h, [f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fafbfc"/>',
                       f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" fill="{MUTED}">{escape(message)}</text>'],
                message)


def bar_chart(rows: Sequence[tuple[str, float, str, str, str]], *, scale_max: float, threshold: float | None,
              threshold_label: str = "", empty: str = "no data", label: str = "") -> str:
    """Horizontal bars. rows: (label, value, value text, color, tooltip)."""
    w, label_w, value_w, row_h, top = 560, 190, 64, 22, 8
    if not rows:
        return _empty(w, 80, empty)
    h = max(96, top + row_h * len(rows) + 24)
    x0, span = label_w, w - label_w - value_w - 8
    body = [f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{h - 20}" stroke="#98a2b3"/>']
    for i, (name, value, text, color, tip) in enumerate(rows):
        y = top + i * row_h
        bw = max(1.0, span * min(value, scale_max) / scale_max) if scale_max else 1.0
        body.append(f'<g><title>{escape(tip)}</title>'
                    f'<text x="{x0 - 6}" y="{y + 14}" text-anchor="end" fill="{INK}">{escape(_fit(name, label_w - 10))}</text>'
                    f'<rect x="{x0}" y="{y + 3}" width="{bw:.1f}" height="{row_h - 8}" rx="2" fill="{color}"/>'
                    f'<text x="{x0 + bw + 4:.1f}" y="{y + 14}" fill="{INK}">{escape(text)}</text></g>')
    if threshold is not None and scale_max:
        tx = x0 + span * min(threshold, scale_max) / scale_max
        body.append(f'<line x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{h - 20}" stroke="{WARN}" '
                    f'stroke-dasharray="4 3"/>')
        anchor = "end" if tx > w - 80 else "middle"
        body.append(f'<text x="{tx:.1f}" y="{h - 6}" text-anchor="{anchor}" fill="{WARN}">'
                    f'{escape(threshold_label)}</text>')
    return _svg(w, h, body, label)


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [float(e) for e in range(math.floor(lo), math.ceil(hi) + 1)]


def _size_ticks(lo: float, hi: float) -> list[float]:
    """log2 positions of round sizes (1 kB, 32 kB, 1 MB, ...) between lo and hi, at most 7."""
    for step in (5, 10, 20):
        ticks = [float(n) for n in range(math.ceil(lo / step) * step, math.floor(hi) + 1, step)]
        if len(ticks) <= 7:
            return ticks
    return [lo, hi]  # pragma: no cover


def scatter_size_scans(r: HealthReport, flagged: dict[tuple[str, str], Finding]) -> str:
    """Every index as a point: size (x, log) against scans (y, log of scans + 1). Red: a finding
    to act on; orange: for information; blue: fine. The bottom-right corner is what costs space
    and serves nobody."""
    w, h, ml, mr, mt, mb = 560, 330, 62, 24, 10, 44
    pts = [(x, flagged.get((x.row.schema, x.row.name))) for x in r.indexes if x.row.size_bytes > 0]
    if not pts:
        return _empty(w, 80, "no index with a size (partitioned parents are empty)")
    pts.sort(key=lambda p: (p[1] is None, -p[0].row.size_bytes))
    pts = pts[:MAX_POINTS]
    xs = [math.log2(p[0].row.size_bytes) for p in pts]
    ys = [math.log10(p[0].scans_total + 1) for p in pts]
    x_lo = math.floor(min(xs) / 5) * 5
    x_hi = max(math.ceil(max(xs) / 5) * 5, x_lo + 5)
    y_lo, y_hi = 0.0, max(1.0, math.ceil(max(ys)))
    pw, ph = w - ml - mr, h - mt - mb

    def sx(v: float) -> float:
        return ml + pw * (v - x_lo) / (x_hi - x_lo)

    def sy(v: float) -> float:
        return mt + ph - ph * (v - y_lo) / (y_hi - y_lo)

    body = [f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fafbfc" stroke="{GRID}"/>']
    ticks = _size_ticks(x_lo, x_hi)
    for i, e in enumerate(ticks):
        x = sx(e)
        anchor = "start" if i == 0 else "end" if i == len(ticks) - 1 else "middle"
        body.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{mt + ph}" stroke="{GRID}"/>')
        body.append(f'<text x="{x:.1f}" y="{mt + ph + 14}" text-anchor="{anchor}" fill="{MUTED}">'
                    f'{escape(_short_bytes(2 ** e))}</text>')
    for e in _log_ticks(y_lo, y_hi):
        y = sy(e)
        body.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{ml + pw}" y2="{y:.1f}" stroke="{GRID}"/>')
        body.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{MUTED}">'
                    f'{escape(_short_count(10 ** e - 1 if e == 0 else 10 ** e))}</text>')
    body.append(f'<text x="{ml + pw / 2}" y="{h - 6}" text-anchor="middle" fill="{INK}">index size (log)</text>')
    body.append(f'<text x="14" y="{mt + ph / 2}" text-anchor="middle" fill="{INK}" '
                f'transform="rotate(-90 14 {mt + ph / 2})">scans (log)</text>')
    for (x, f), vx, vy in sorted(zip(pts, xs, ys), key=lambda p: p[0][1] is not None):
        color = OK if f is None else WARN if f.severity == "warning" else INFO
        tip = f"{x.row.schema}.{x.row.name} on {x.row.table}: {human_bytes(x.row.size_bytes)}, {x.scans_total:,} scans"
        if f is not None:
            tip += f" — {f.kind}: {f.message}"
        body.append(f'<circle cx="{sx(vx):.1f}" cy="{sy(vy):.1f}" r="3.5" fill="{color}" fill-opacity="0.75">'
                    f'<title>{escape(tip)}</title></circle>')
    return _svg(w, h, body, "index size against scans")


def _short_bytes(n: float) -> str:
    for unit, div in (("TB", 1024 ** 4), ("GB", 1024 ** 3), ("MB", 1024 ** 2), ("kB", 1024)):
        if n >= div:
            v = n / div
            return f"{v:.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{n:.0f} B"


def _short_count(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.0f}{unit}"
    return f"{n:.0f}"


def _finding_bars(r: HealthReport) -> str:
    counts = r.counts()
    rows = []
    for kind in FINDING_KINDS:
        n = counts.get(kind, 0)
        if not n:
            continue
        sev = "warning" if any(f.kind == kind and f.severity == "warning" for f in r.findings) else "info"
        rows.append((kind, n, str(n), WARN if sev == "warning" else INFO, f"{kind}: {n} — {FINDING_KINDS[kind]}"))
    return bar_chart(rows, scale_max=max((r[1] for r in rows), default=1), threshold=None,
                     empty="no findings: every threshold holds", label="findings by kind")


def _hit_bars(r: HealthReport) -> str:
    t = r.thresholds
    judged = sorted((x for x in r.tables if x.hit_ratio is not None), key=lambda x: (x.hit_ratio, x.row.name))
    rows = [(f"{x.row.schema}.{x.row.name}", x.hit_ratio, f"{x.hit_ratio * 100:.2f}%",
             WARN if x.hit_ratio < t.min_index_hit_ratio else OK,
             f"{x.row.schema}.{x.row.name}: {x.row.index_blocks_hit:,} hits, {x.row.index_blocks_read:,} reads")
            for x in judged[:BAR_ROWS]]
    return bar_chart(rows, scale_max=1.0, threshold=t.min_index_hit_ratio,
                     threshold_label=f"min {t.min_index_hit_ratio:.0%}",
                     empty="no table has had 1,000 index block reads yet", label="index hit ratio per table")


def _seq_bars(r: HealthReport) -> str:
    t = r.thresholds
    judged = sorted((x for x in r.tables if x.seq_scan_ratio is not None
                     and x.row.rows >= t.min_table_rows
                     and x.row.seq_scans + x.row.index_scans >= MIN_SEQ_SCAN_SAMPLE),
                    key=lambda x: (-x.seq_scan_ratio, x.row.name))
    rows = [(f"{x.row.schema}.{x.row.name}", x.seq_scan_ratio, f"{x.seq_scan_ratio * 100:.1f}%",
             WARN if x.seq_scan_ratio > t.max_seq_scan_ratio else OK,
             f"{x.row.schema}.{x.row.name}: {x.row.seq_scans:,} sequential, {x.row.index_scans:,} index scans")
            for x in judged[:BAR_ROWS]]
    return bar_chart(rows, scale_max=1.0, threshold=t.max_seq_scan_ratio,
                     threshold_label=f"max {t.max_seq_scan_ratio:.0%}",
                     empty=f"no table of {t.min_table_rows:,}+ rows has had {MIN_SEQ_SCAN_SAMPLE} scans yet",
                     label="sequential-scan share")


def _bloat_bars(r: HealthReport) -> str:
    t = r.thresholds
    known = sorted((x for x in r.indexes if x.bloat is not None and x.bloat.ratio is not None and x.bloat.wasted_bytes),
                   key=lambda x: (-x.bloat.wasted_bytes, x.row.name))
    rows = [(f"{x.row.schema}.{x.row.name}", x.bloat.ratio,
             f"{x.bloat.ratio * 100:.0f}%{'' if x.bloat.method == 'pgstatindex' else ' est.'}",
             WARN if x.bloat.ratio > t.max_bloat_ratio and x.bloat.wasted_bytes >= t.min_bloat_size else OK,
             f"{x.row.schema}.{x.row.name}: {human_bytes(x.bloat.wasted_bytes)} wasted of "
             f"{human_bytes(x.row.size_bytes)} ({x.bloat.method})") for x in known[:BAR_ROWS]]
    return bar_chart(rows, scale_max=1.0, threshold=t.max_bloat_ratio, threshold_label=f"max {t.max_bloat_ratio:.0%}",
                     empty="no btree index wastes space (or none has statistics)", label="bloat")


def _chart(cid: str, title: str, sub: str, svg: str, legend: str = "") -> str:
    return (f'<figure class="chart" id="{cid}"><figcaption>{escape(title)}</figcaption>'
            f'<div class="sub">{escape(sub)}</div>{svg}{legend}</figure>')


def _fix_html(f: Finding) -> str:
    parts = []
    if f.edit:
        if f.edit.action == "remove":
            parts.append(f"<div>spec: remove <code>{escape(f.edit.index)}</code> at "
                         f"<code>{escape(f'{f.edit.file}:{f.edit.line}')}</code></div>")
        else:
            parts.append(f"<div>spec: add to <code>{escape(f.edit.file or 'indexes.yaml')}</code></div>"
                         f"<pre>{escape(f.edit.yaml or '')}</pre>")
    if f.fix:
        parts.append(f"<div>{escape(f.fix)}</div>")
    if f.sql:
        parts.append(f"<pre>{escape(f.sql)}</pre>")
    return "".join(parts)


def render_health_html(r: HealthReport) -> str:
    primary = r.nodes[0]
    flagged: dict[tuple[str, str], Finding] = {}
    for f in r.findings:
        if f.index and ((f.schema, f.index) not in flagged or f.severity == "warning"):
            flagged[(f.schema, f.index)] = f
    warnings = sum(1 for f in r.findings if f.severity == "warning")
    age = human_age((primary.now - primary.stats_since).total_seconds()) if primary.stats_since else "unknown"
    total = sum(x.row.size_bytes for x in r.indexes)
    cards = [(str(warnings), "findings to act on"), (f"{len(r.indexes):,}", f"indexes, {human_bytes(total)}"),
             (f"{len(r.tables):,}", f"{r.scope} tables"), (age, f"of statistics (since {primary.since_source})")]
    legend = (f'<div class="legend"><span><i style="background:{WARN}"></i>to act on</span>'
              f'<span><i style="background:{INFO}"></i>for information</span>'
              f'<span><i style="background:{OK}"></i>fine</span></div>')
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>reconciler health: {escape(r.database)}</title><style>{CSS}</style></head><body><main>",
           f"<header><h1>Index health: {escape(r.database)}</h1><p class=\"meta\">{escape(headline(r))}</p>"
           f"<p class=\"meta\">read at {escape(primary.now.isoformat(timespec='seconds'))}</p>"
           f'<div class="badge {"bad" if r.crossed else "ok"}">{escape(verdict(r))}</div></header>',
           '<section class="cards">' + "".join(f'<div class="card"><div class="n">{escape(n)}</div>'
                                               f'<div class="l">{escape(label)}</div></div>' for n, label in cards)
           + "</section>",
           '<section class="charts">',
           _chart("chart-findings", "Findings by kind", "what crosses a threshold (red) and what is for information",
                  _finding_bars(r)),
           _chart("chart-size-scans", "Index size against scans", "bottom right: large and never read",
                  scatter_size_scans(r, flagged), legend),
           _chart("chart-hit-ratio", "Index hit ratio per table", "worst first; the dashed line is the threshold",
                  _hit_bars(r)),
           _chart("chart-bloat", "Bloat", "most wasted bytes first (est. = estimate from statistics)", _bloat_bars(r)),
           _chart("chart-seq-scans", "Sequential-scan share per table",
                  f"highest first; tables of {r.thresholds.min_table_rows:,}+ rows and {MIN_SEQ_SCAN_SAMPLE}+ scans",
                  _seq_bars(r)),
           "</section>"]
    out.append('<section class="block" id="findings"><h2>Findings</h2>')
    if r.findings:
        out.append('<table class="findings"><colgroup><col style="width:86px"><col style="width:150px">'
                   '<col style="width:22%"><col style="width:32%"><col></colgroup>'
                   '<tr class="head"><th>severity</th><th>kind</th><th>where</th><th>verdict</th><th>fix</th></tr>')
        for f in r.findings:
            where = f"{f.schema}.{f.index} on {f.table}" if f.index else f"{f.schema}.{f.table}"
            out.append(f'<tr><td><span class="sev {f.severity}">{f.severity}</span></td>'
                       f'<td class="kind">{escape(f.kind)}</td>'
                       f"<td><code>{escape(where)}</code></td><td>{escape(f.message)}</td><td>{_fix_html(f)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No findings.</p>")
    out.append("</section>")
    if r.tables:
        out.append('<section class="block" id="tables"><h2>Tables</h2><table>'
                   '<colgroup><col style="width:28%"><col><col><col><col><col><col></colgroup>'
                   '<tr><th>table</th><th class="num">rows</th><th class="num">size</th><th class="num">indexes</th>'
                   '<th class="num">index hit</th><th class="num">seq share</th>'
                   '<th class="num">modified since analyze</th></tr>')
        for t in r.tables:
            out.append(f"<tr><td><code>{escape(t.row.schema + '.' + t.row.name)}</code></td>"
                       f'<td class="num">{t.row.rows:,}</td><td class="num">{human_bytes(t.row.size_bytes)}</td>'
                       f'<td class="num">{human_bytes(t.row.indexes_bytes)}</td>'
                       f'<td class="num">{"-" if t.hit_ratio is None else f"{t.hit_ratio * 100:.2f}%"}</td>'
                       f'<td class="num">{"-" if t.seq_scan_ratio is None else f"{t.seq_scan_ratio * 100:.1f}%"}</td>'
                       f'<td class="num">{t.row.modified_since_analyze:,}{" (stale)" if t.stale else ""}</td></tr>')
        out.append("</table></section>")
    if r.indexes:
        shown = sorted(r.indexes, key=lambda x: (-x.row.size_bytes, x.row.schema, x.row.name))[:MAX_INDEX_ROWS]
        more = f" (the {len(shown)} largest of {len(r.indexes):,}; `--format json` lists all)" \
            if len(r.indexes) > len(shown) else ""
        out.append(f'<section class="block" id="indexes"><h2>Indexes{escape(more)}</h2><table>'
                   '<colgroup><col style="width:26%"><col style="width:16%"><col><col><col><col>'
                   '<col style="width:16%"><col></colgroup>'
                   '<tr><th>index</th><th>table</th><th class="num">size</th><th class="num">scans</th>'
                   '<th class="num">tuples read</th><th>valid</th><th>spec</th><th class="num">bloat</th></tr>')
        for x in shown:
            b = x.bloat
            bloat = "-" if b is None or b.ratio is None else \
                f"{b.ratio * 100:.0f}%{'' if b.method == 'pgstatindex' else ' est.'}"
            out.append(f"<tr><td><code>{escape(x.row.schema + '.' + x.row.name)}</code></td>"
                       f"<td>{escape(x.row.table)}</td><td class=\"num\">{human_bytes(x.row.size_bytes)}</td>"
                       f'<td class="num">{x.scans_total:,}</td><td class="num">{x.row.tuples_read:,}</td>'
                       f"<td>{'yes' if x.row.valid and x.row.ready else 'NO'}</td>"
                       f"<td>{escape(x.spec_where or '-')}</td><td class=\"num\">{escape(bloat)}</td></tr>")
        out.append("</table></section>")
    if r.notes:
        out.append('<section class="block" id="notes"><h2>Notes</h2><ul class="notes">'
                   + "".join(f"<li>{escape(n)}</li>" for n in r.notes) + "</ul></section>")
    th = ", ".join(f"{k}={v}" for k, v in r.thresholds.to_dict().items())
    out.append(f"<footer>reconciler health · thresholds: {escape(th)}</footer></main></body></html>")
    return "\n".join(out) + "\n"
