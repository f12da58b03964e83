"""Verdicts of `verify` → text (terminal), markdown (pull-request comment), JSON (machines),
Prometheus text exposition (a cron job's textfile collector)."""
from __future__ import annotations

from ..core.display import json_safe
from ..queries import Verdict
from .jsontext import dumps_indented

FORMAT_VERSION = 1


def _cost(c: float) -> str:
    return f"{c:,.0f}" if c >= 100 else f"{c:,.2f}"


def _time(v: Verdict) -> str:
    if v.time_ms is None:
        return ""
    budget = f", budget {v.budget_ms:g} ms" if v.budget_ms is not None else ""
    return f"{v.time_ms:,.3f} ms (median of {len(v.runs_ms)}{budget})"


def summary(verdicts: list[Verdict], selection: str = "") -> str:
    if not verdicts:
        return ("Verify: no query uses the selected indexes" + (f" (partial: {selection})." if selection else ".")
                if selection else "Verify: no query to check.")
    bad = sum(1 for v in verdicts if not v.ok)
    head = f"Verify: {len(verdicts) - bad} of {len(verdicts)} quer{'y' if len(verdicts) == 1 else 'ies'} pass"
    head += f"; {bad} miss their index or budget." if bad else "."
    return head + (f" (partial: {selection})" if selection else "")


def render_verify_text(verdicts: list[Verdict], selection: str = "") -> str:
    out = []
    for v in verdicts:
        out.append(f"{'ok  ' if v.ok else 'MISS'} {v.name} ({v.where}): {v.mode}, cost {_cost(v.cost)}, "
                   f"rows {v.rows:,.0f}")
        for a in v.accesses:
            out.append(f"       {a.describe()}")
        for idx, used in v.uses:
            out.append(f"       uses {idx}: {'yes' if used else 'NO'}")
        if v.time_ms is not None:
            out.append(f"       time {_time(v)}")
        elif v.budget_ms is not None:
            out.append(f"       budget {v.budget_ms:g} ms: not measured (--analyze measures it)")
        for m in v.misses:
            out.append(f"       miss: {m}")
        for n in v.notes:
            out.append(f"       note: {n}")
    out.append(summary(verdicts, selection))
    return "\n".join(out) + "\n"


def render_verify_markdown(verdicts: list[Verdict], selection: str = "") -> str:
    out = ["### reconciler verify", "", f"**{summary(verdicts, selection)}**", "",
           "| | query | plan | cost | rows | time | uses |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        plan = "<br>".join(a.describe() for a in v.accesses).replace("|", "\\|") or "—"
        uses = "<br>".join(f"`{i}` {'✅' if u else '❌'}" for i, u in v.uses) or "—"
        out.append(f"| {'✅' if v.ok else '❌'} | {v.name} | {plan} | {_cost(v.cost)} | {v.rows:,.0f} | "
                   f"{_time(v) or '—'} | {uses} |")
    misses = [(v, m) for v in verdicts for m in v.misses]
    if misses:
        out += ["", "Misses:", ""] + [f"- **{v.name}** (`{v.where}`): {m}" for v, m in misses]
    notes = [(v, n) for v in verdicts for n in v.notes]
    if notes:
        out += ["", "Notes:", ""] + [f"- {v.name}: {n}" for v, n in notes]
    return "\n".join(out) + "\n"


def render_verify_json(verdicts: list[Verdict], selection: str = "") -> str:
    doc = {"format_version": FORMAT_VERSION, "ok": all(v.ok for v in verdicts), "selection": selection,
           "queries": [v.to_dict() for v in verdicts]}
    return json_safe(dumps_indented(doc, 2)) + "\n"   # query names and SQL: hidden characters as \u


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_verify_prometheus(verdicts: list[Verdict], selection: str = "") -> str:
    """Text exposition format 0.0.4; names under `reconciler_` (postgres_exporter#1071 style)."""
    metrics = [
        ("reconciler_query_ok", "1 when the query uses every index it lists and stays within its budgets",
         lambda v: [({}, 1 if v.ok else 0)]),
        ("reconciler_query_cost", "estimated total cost of the query's plan", lambda v: [({}, v.cost)]),
        ("reconciler_query_rows", "estimated rows of the query's plan", lambda v: [({}, v.rows)]),
        ("reconciler_query_time_ms", "median measured time (planning + execution), EXPLAIN ANALYZE",
         lambda v: [({}, v.time_ms)] if v.time_ms is not None else []),
        ("reconciler_query_budget_ms", "the query's budget_ms",
         lambda v: [({}, v.budget_ms)] if v.budget_ms is not None else []),
        ("reconciler_query_uses_index", "1 when the plan uses the index the query lists in uses",
         lambda v: [({"index": i}, 1 if u else 0) for i, u in v.uses]),
    ]
    out = []
    for name, help_text, values in metrics:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for v in verdicts:
            for labels, value in values(v):
                lab = ",".join(f'{k}="{_label(str(x))}"' for k, x in {"query": v.name, **labels}.items())
                out.append(f"{name}{{{lab}}} {value:g}" if isinstance(value, float) else f"{name}{{{lab}}} {value}")
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_verify_text, "json": render_verify_json, "markdown": render_verify_markdown,
             "prometheus": render_verify_prometheus}
