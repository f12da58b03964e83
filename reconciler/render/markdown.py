"""Plan → markdown for a pull-request comment."""
from __future__ import annotations

from ..core.kinds import Action, DriftKind
from ..core.plan import Plan
from .common import SYMBOL, _not_changed, partial_note, summary_line
from .sql import render_sql


def render_markdown(plan: Plan) -> str:
    out = ["### reconciler plan", "", f"**{summary_line(plan)}**", ""]
    note = partial_note(plan)
    if note:
        out += [f"> :information_source: {note}", ""]
    for w in plan.warnings:
        out += [f"> :warning: {w}", ""]  # the blank line ends the quote: a table after it stays a table
    if plan.changes:
        out += ["| | action | index | table | reasons |", "|---|---|---|---|---|"]
        for pc in plan.changes:
            c = pc.change
            reasons = "<br>".join(r.replace("|", "\\|") for r in c.reasons)
            name = f"`{c.old_name}` → `{c.index}`" if c.action is Action.RENAME else f"`{c.index}`"
            out.append(f"| `{SYMBOL[c.action]}` | {c.action} | {name} | `{c.schema}.{c.table}` | {reasons} |")
        out.append("")
        hazards = [(pc.change.index, h) for pc in plan.changes for h in pc.hazards]
        if hazards:
            out.append("<details><summary>Hazards</summary>\n")
            for name, h in hazards:
                out.append(f"- **{h.code}**{' (blocking)' if h.blocking else ''} `{name}`: {h.message}")
            out.append("\n</details>\n")
        effects = [(pc.change, e) for pc in plan.changes for e in pc.effects]
        unsimulated = [pc for pc in plan.changes if pc.unsimulated]
        if effects or unsimulated:
            out += ["**Queries**", ""]
            for c, e in effects:
                mark = ":x:" if e.regression else ":mag:"
                out.append(f"- {mark} {c.action} `{c.index}`: query **{e.query}** {e.summary}".replace("|", "\\|"))
            for pc in unsimulated:
                out.append(f"- :grey_question: {pc.change.action} `{pc.change.index}`: not simulated: {pc.unsimulated}")
            out.append("")
        out.append("<details><summary>SQL</summary>\n\n```sql")
        out.append(render_sql(plan).rstrip())
        out.append("```\n</details>")
    kept = _not_changed(plan)
    drift = [d for d in kept if d.kind is not DriftKind.EXTRA] + [d for d in kept if d.kind is DriftKind.EXTRA]
    if drift:
        out += ["", "Not changed by this plan:", ""]
        out += [f"- `{d.schema}.{d.index}` on `{d.table}`: {d.message}" for d in drift]
    return "\n".join(out) + "\n"
