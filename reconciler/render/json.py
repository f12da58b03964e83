"""Plan → JSON for machines."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from ..core.display import json_safe
from ..core.plan import PLAN_FORMAT_VERSION, Plan, PlannedChange
from .common import summary_counts


def change_dict(pc: PlannedChange) -> dict[str, Any]:
    c = pc.change
    d = {"action": c.action, "schema": c.schema, "table": c.table, "index": c.index, "reasons": list(c.reasons),
         "sql": [op.sql for op in pc.operations], "hazards": [h.to_dict() for h in pc.hazards]}
    if c.old_name:
        d["old_name"] = c.old_name
    if pc.effects:
        d["queries"] = [e.to_dict() for e in pc.effects]
    if pc.unsimulated:
        d["queries_not_simulated"] = pc.unsimulated
    return d


def render_json(plan: Plan) -> str:
    doc = {"format_version": PLAN_FORMAT_VERSION, "summary": summary_counts(plan),
           "changes": [change_dict(pc) for pc in plan.changes],
           "drift": [asdict(d) for d in plan.drift], "warnings": list(plan.warnings)}
    if len(plan.schemas) > 1:
        changed = plan.schemas_changed()
        doc["schemas"] = {"total": len(plan.schemas), "in_sync": len(set(plan.schemas) - set(changed)),
                          "with_changes": changed}
    if plan.selection:
        doc["partial"] = True
        doc["selection"] = list(plan.selection)
    return json_safe(json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"
