"""Plan → Terraform-like text for a terminal."""
from __future__ import annotations

from ..core.display import shown
from ..core.plan import Plan
from .common import COLOR, SYMBOL, _not_changed, _title, partial_note, schema_summary, summary_line


def render_text(plan: Plan, color: bool = False) -> str:
    def paint(code: str, s: str) -> str:
        s = shown(s)   # our own escape codes only: the text's are made visible first
        return f"\033[{code}m{s}\033[0m" if color else s

    out: list[str] = []
    note = partial_note(plan)
    if note:
        out.append(paint("33", f"note: {note}"))
    for w in plan.warnings:
        out.append(paint("33", f"warning: {w}"))
    grouped = len(plan.schemas) > 1
    schema = None
    # many schemas (schema globs): the changes of each schema together, under its name
    for pc in sorted(plan.changes, key=lambda pc: pc.change.schema) if grouped else plan.changes:
        c = pc.change
        if grouped and c.schema != schema:
            schema = c.schema
            n = sum(1 for p in plan.changes if p.change.schema == schema)
            out.append(paint("1", f"schema {schema}: {n} change{'s' if n != 1 else ''}"))
        out.append(paint(COLOR[c.action], f"{SYMBOL[c.action]} {c.action} {_title(c)}"))
        for r in c.reasons:
            out.append(f"    {shown(r)}")
        for op in pc.operations:
            out.append(paint("2", f"    sql: {op.sql};"))
        for h in pc.hazards:
            tag = "hazard (blocking)" if h.blocking else "hazard"
            out.append(paint("33" if not h.blocking else "31", f"    {tag} {h.code}: {h.message}"))
        for e in pc.effects:
            out.append(paint("31" if e.regression else "36", f"    query {e.query!r}: {e.summary}"))
        if pc.unsimulated:
            out.append(paint("33", f"    queries: not simulated: {pc.unsimulated}"))
        out.append("")
    extras = _not_changed(plan)
    if extras:
        out.append("Not changed by this plan:")
        for d in extras:
            out.append(shown(f"  ? {d.schema}.{d.index} on {d.table}: {d.message}"))
        out.append("")
    out.append(paint("1", summary_line(plan)))
    schemas = schema_summary(plan)
    if schemas:
        out.append(schemas)
    return "\n".join(out) + "\n"
