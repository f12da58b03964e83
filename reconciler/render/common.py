"""What every format shares: symbols, verbs, colors, the summary line, titles."""
from __future__ import annotations

from ..core.plan import Change, Plan

SYMBOL = {"create": "+", "drop": "-", "replace": "~", "rename": ">", "rebuild": "!"}
VERB = {"create": "create", "drop": "drop", "replace": "replace", "rename": "rename", "rebuild": "rebuild"}
COLOR = {"create": "32", "drop": "31", "replace": "33", "rename": "36", "rebuild": "35"}


def summary_counts(plan: Plan) -> dict[str, int]:
    counts = {a: 0 for a in SYMBOL}
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


def summary_line(plan: Plan) -> str:
    tail = f" (partial: {selection_text(plan)})" if plan.selection else ""
    if plan.empty:
        if plan.selection:
            return f"No changes for the selected indexes{tail}."
        return "No changes. The indexes match the spec."
    c = summary_counts(plan)
    return ("Plan: " + ", ".join(f"{c[a]} to {VERB[a]}" for a in ("create", "replace", "rename", "rebuild", "drop"))
            + "." + tail)


def _title(c: Change) -> str:
    if c.action == "rename":
        return f"{c.schema}.{c.old_name} → {c.index} on {c.table}"
    return f"{c.schema}.{c.index} on {c.table}"


def _not_changed(plan: Plan) -> list:
    """The drift this plan leaves alone: an extra that the plan drops (prune) is a change."""
    return [d for d in plan.drift if d.kind != "extra" or not any(
        pc.change.action == "drop" and pc.change.index == d.index and pc.change.schema == d.schema
        for pc in plan.changes)]
