"""What every format shares: symbols, verbs, colors, the summary line, titles.

Names, reasons and messages come from the database and the spec: every format prints them
through `core.display.shown` (or its JSON and markdown counterparts), so a newline or an
escape code in a name cannot start a line of its own or drive a terminal."""
from __future__ import annotations

from ..core.display import shown
from ..core.kinds import Action, DriftKind
from ..core.plan import Change, Plan

SYMBOL = {Action.CREATE: "+", Action.DROP: "-", Action.REPLACE: "~", Action.RENAME: ">", Action.REBUILD: "!"}
COLOR = {Action.CREATE: "32", Action.DROP: "31", Action.REPLACE: "33", Action.RENAME: "36", Action.REBUILD: "35"}
# the order of the summary line
SUMMARY_ORDER = (Action.CREATE, Action.REPLACE, Action.RENAME, Action.REBUILD, Action.DROP)


def summary_counts(plan: Plan) -> dict[str, int]:
    counts = {a.value: 0 for a in SYMBOL}
    for pc in plan.changes:
        counts[pc.change.action] += 1
    return counts


def selection_text(plan: Plan) -> str:
    return " ".join(f"--select {s}" for s in plan.selection)


def partial_note(plan: Plan) -> str | None:
    """Terraform's "resource targeting is in effect", in our words."""
    if not plan.selection:
        return None
    return (f"partial plan ({selection_text(plan)}): only the selected indexes are planned; changes of the rest of "
            "the spec are not shown and will not be applied")


def schema_summary(plan: Plan) -> str | None:
    """"1,204 schemas in sync, 3 with changes" when the plan covers more than one schema."""
    if len(plan.schemas) < 2:
        return None
    changed = len(set(plan.schemas_changed()) & set(plan.schemas)) or len(plan.schemas_changed())
    return f"{len(plan.schemas) - changed:,} schema{'s' if len(plan.schemas) - changed != 1 else ''} in sync, " \
           f"{changed:,} with changes."


def summary_line(plan: Plan) -> str:
    tail = f" (partial: {selection_text(plan)})" if plan.selection else ""
    if plan.empty:
        if plan.selection:
            return f"No changes for the selected indexes{tail}."
        return "No changes. The indexes match the spec."
    c = summary_counts(plan)
    return "Plan: " + ", ".join(f"{c[a]} to {a}" for a in SUMMARY_ORDER) + "." + tail


def _title(c: Change) -> str:
    """`schema.index on table`, every name made printable (`core.display.shown`)."""
    if c.action is Action.RENAME:
        return f"{shown(c.schema)}.{shown(c.old_name)} → {shown(c.index)} on {shown(c.table)}"
    return f"{shown(c.schema)}.{shown(c.index)} on {shown(c.table)}"


def _not_changed(plan: Plan) -> list:
    """The drift this plan leaves alone: an extra that the plan drops (prune) is a change."""
    return [d for d in plan.drift if d.kind is not DriftKind.EXTRA or not any(
        pc.change.action is Action.DROP and pc.change.index == d.index and pc.change.schema == d.schema
        for pc in plan.changes)]
