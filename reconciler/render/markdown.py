"""Plan → markdown for a pull-request comment.

Names are code spans with a fence longer than any backtick run in them, free text (reasons,
messages) has its HTML and table syntax escaped, and the SQL block's fence is longer than any
backtick run in the SQL: nothing from the database or the spec can end our markup early.
"""
from __future__ import annotations

import re

from ..core.display import shown
from ..core.kinds import Action, DriftKind
from ..core.plan import Plan
from .common import SYMBOL, _not_changed, partial_note, schema_summary, summary_line
from .sql import render_sql


def code(text: str, in_table: bool = False) -> str:
    """`text` as one inline code span (CommonMark: the fence is one backtick longer than the
    longest run inside, padded with spaces when the text starts or ends with a backtick)."""
    s = shown(text)
    fence = "`" * (max((len(m) for m in re.findall(r"`+", s)), default=0) + 1)
    if s.startswith("`") or s.endswith("`"):
        s = f" {s} "
    if in_table:
        s = s.replace("|", "\\|")   # GFM splits cells before code spans; \| is a literal pipe there
    return f"{fence}{s}{fence}"


def text(s: str, in_table: bool = False) -> str:
    """Free text: visible, no HTML, no table break."""
    s = shown(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("|", "\\|") if in_table else s


def render_markdown(plan: Plan) -> str:
    out = ["### reconciler plan", "", f"**{summary_line(plan)}**", ""]
    if schema_summary(plan):
        out += [schema_summary(plan), ""]
    note = partial_note(plan)
    if note:
        out += [f"> :information_source: {note}", ""]
    for w in plan.warnings:
        out += [f"> :warning: {text(w)}", ""]  # the blank line ends the quote: a table after it stays a table
    if plan.changes:
        out += ["| | action | index | table | reasons |", "|---|---|---|---|---|"]
        for pc in plan.changes:
            c = pc.change
            reasons = "<br>".join(text(r, in_table=True) for r in c.reasons)
            name = f"{code(c.old_name, True)} → {code(c.index, True)}" if c.action is Action.RENAME \
                else code(c.index, True)
            out.append(f"| `{SYMBOL[c.action]}` | {c.action} | {name} | {code(f'{c.schema}.{c.table}', True)} "
                       f"| {reasons} |")
        out.append("")
        hazards = [(pc.change.index, h) for pc in plan.changes for h in pc.hazards]
        if hazards:
            out.append("<details><summary>Hazards</summary>\n")
            for name, h in hazards:
                out.append(f"- **{h.code}**{' (blocking)' if h.blocking else ''} {code(name)}: {text(h.message)}")
            out.append("\n</details>\n")
        effects = [(pc.change, e) for pc in plan.changes for e in pc.effects]
        unsimulated = [pc for pc in plan.changes if pc.unsimulated]
        if effects or unsimulated:
            out += ["**Queries**", ""]
            for c, e in effects:
                mark = ":x:" if e.regression else ":mag:"
                out.append(f"- {mark} {c.action} {code(c.index)}: query **{text(e.query)}** {text(e.summary)}")
            for pc in unsimulated:
                out.append(f"- :grey_question: {pc.change.action} {code(pc.change.index)}: not simulated: "
                           f"{text(pc.unsimulated)}")
            out.append("")
        sql = render_sql(plan).rstrip()
        fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", sql)), default=0) + 1)
        out.append(f"<details><summary>SQL</summary>\n\n{fence}sql")
        out.append(sql)
        out.append(f"{fence}\n</details>")
    kept = _not_changed(plan)
    drift = [d for d in kept if d.kind is not DriftKind.EXTRA] + [d for d in kept if d.kind is DriftKind.EXTRA]
    if drift:
        out += ["", "Not changed by this plan:", ""]
        out += [f"- {code(f'{d.schema}.{d.index}')} on {code(d.table)}: {text(d.message)}" for d in drift]
    return "\n".join(out) + "\n"
