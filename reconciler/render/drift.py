"""Plan → the drift report (`drift`): every difference on managed tables."""
from __future__ import annotations

import json

from ..core.display import json_safe, shown
from ..core.kinds import Action, DriftKind
from ..core.plan import PLAN_FORMAT_VERSION, Plan

# what each action of the plan is, seen as drift
_DRIFT_OF = {Action.CREATE: "missing", Action.REPLACE: "changed", Action.REBUILD: "invalid",
             Action.RENAME: "renamed", Action.DROP: "extra"}


def drift_items(plan: Plan) -> list[dict]:
    """Every difference on managed tables: the plan's changes plus what it leaves alone."""
    items = []
    for pc in plan.changes:
        c = pc.change
        kind = _DRIFT_OF[c.action]
        items.append({"kind": kind, "schema": c.schema, "table": c.table, "index": c.index,
                      "detail": "; ".join(c.reasons)})
    for d in plan.drift:
        if d.kind is DriftKind.IGNORED or any(i["kind"] == "extra" and i["index"] == d.index and i["schema"] == d.schema
                                      for i in items):
            continue
        items.append({"kind": d.kind, "schema": d.schema, "table": d.table, "index": d.index, "detail": d.message})
    items.sort(key=lambda i: (i["schema"], i["table"], i["index"]))
    return items


def render_drift(plan: Plan, fmt: str = "text") -> str:
    """Every difference on managed tables: the plan's changes plus what it leaves alone."""
    items = drift_items(plan)
    if fmt == "json":
        return json_safe(json.dumps({"format_version": PLAN_FORMAT_VERSION, "in_sync": not items, "drift": items,
                                     "warnings": list(plan.warnings)}, indent=2, ensure_ascii=False)) + "\n"
    head = "".join(shown(f"warning: {w}") + "\n" for w in plan.warnings)
    if not items:
        return head + "No drift: the managed indexes match the spec.\n"
    lines = [shown(f"{i['kind']:<11} {i['schema']}.{i['index']} on {i['table']}: {i['detail']}") for i in items]
    return head + "\n".join(lines) + f"\n{len(items)} difference(s).\n"
