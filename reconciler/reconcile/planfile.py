"""The plan file `plan --out` writes and `apply --plan` checks: versioned JSON data.

A plan file is never a source of SQL nor of changes. `apply --plan` computes the plan afresh
from the spec it is given and the live database, and runs it only when it is the plan the file
describes: the same spec (digest of its content), the same live indexes (fingerprint) and the
same steps (action, index, reasons and every statement, in order). Anything else is "the plan
is stale", the way Terraform refuses a saved plan that no longer matches. The file also keeps
each change's data so that a plan can be shown again (`plan_from_file`, display only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from ..core.index import IndexDef, KeyPart, LiveIndex, Partition, TableFacts
from ..core.plan import PLAN_FORMAT_VERSION, Change, Plan
from ..errors import StalePlanError


def plan_steps(plan: Plan) -> list[dict[str, Any]]:
    """What a plan does, in the words a plan file records and `apply --plan` compares: one entry
    per change, with every statement it sends. Sizes, scan counts and hazard wording are left
    out (they move while nothing changes); a blocking hazard is enforced on the fresh plan."""
    return [{"action": pc.change.action, "schema": pc.change.schema, "table": pc.change.table,
             "index": pc.change.index, "old_name": pc.change.old_name, "reasons": list(pc.change.reasons),
             "sql": [op.sql for op in pc.operations]} for pc in plan.changes]


def _to_data(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_to_data(x) for x in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_data(getattr(obj, f.name)) for f in fields(obj)}
    raise TypeError(type(obj))


def plan_to_file(plan: Plan, spec_files: list[str], digest: str = "", *, target: str = "",
                 created_at: str = "") -> str:
    """The plan as a file for `show` and `apply --plan`. `target` (where it was made: host/port/
    database, never a password) and `created_at` (ISO 8601) are shown by `show`; only the changes,
    their SQL, the fingerprint, the spec digest and the selection are compared by apply."""
    doc = {"format_version": PLAN_FORMAT_VERSION, "kind": "reconciler-plan", "fingerprint": plan.fingerprint,
           "spec_digest": digest, "spec_files": list(spec_files),
           "changes": [{**step, "change": _to_data(pc.change), "hazards": [h.to_dict() for h in pc.hazards]}
                       for step, pc in zip(plan_steps(plan), plan.changes)],
           "warnings": list(plan.warnings)}
    if plan.selection:
        doc["selection"] = list(plan.selection)
    if target:
        doc["target"] = target
    if created_at:
        doc["created_at"] = created_at
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class SavedPlan:
    """What a plan file claims; compared, never executed."""

    fingerprint: str
    spec_digest: str
    spec_files: tuple[str, ...]
    steps: tuple[dict, ...]
    selection: tuple[str, ...] = ()   # `plan --select`: apply computes the plan with the same selectors


_STEP_KEYS = {"action": str, "schema": str, "table": str, "index": str, "old_name": (str, type(None)),
              "reasons": list, "sql": list}


def _document(text: str, source: str) -> dict:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise StalePlanError(f"{source}: not a reconciler plan file ({type(e).__name__})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "reconciler-plan":
        raise StalePlanError(f"{source}: not a reconciler plan file")
    if doc.get("format_version") != PLAN_FORMAT_VERSION:
        raise StalePlanError(f"{source}: plan format {str(doc.get('format_version'))[:20]} is not supported "
                             f"(this reconciler writes {PLAN_FORMAT_VERSION})")
    return doc


def read_plan_file(text: str, source: str = "plan file") -> SavedPlan:
    """The claims of a plan file, shape-checked; nothing in it is turned into SQL."""
    doc = _document(text, source)
    try:
        steps = []
        for item in doc["changes"]:
            step = {k: item[k] for k in _STEP_KEYS}
            for k, kind in _STEP_KEYS.items():
                if not isinstance(step[k], kind):
                    raise TypeError(f"{k} is {type(step[k]).__name__}")
            if not all(isinstance(x, str) for x in step["reasons"] + step["sql"]):
                raise TypeError("reasons and sql hold strings")
            steps.append(step)
        fingerprint, digest, files = doc["fingerprint"], doc.get("spec_digest", ""), doc.get("spec_files", [])
        selection = doc.get("selection", [])
        if not isinstance(fingerprint, str) or not isinstance(digest, str) or not isinstance(files, list) \
                or not all(isinstance(f, str) for f in files + selection):
            raise TypeError("fingerprint, spec_digest, spec_files and selection")
    except (KeyError, TypeError) as e:
        raise StalePlanError(f"{source}: damaged plan file ({type(e).__name__}: {str(e)[:80]})") from None
    return SavedPlan(fingerprint, digest, tuple(files), tuple(steps), tuple(selection))


def applied_already(saved: SavedPlan, fresh: Plan, digest: str) -> str | None:
    """When the database already holds what `saved` would make: the message saying so (all of
    it, or part of it), else None. Only for the spec the plan was made from (same digest): then
    a fresh plan that is empty means the database is the plan's target state, and a fresh plan
    whose every change is one of the saved plan's means the others were carried out (an earlier
    apply of this file, interrupted or not)."""
    if not saved.steps or not saved.spec_digest or saved.spec_digest != digest \
            or saved.fingerprint == fresh.fingerprint:
        return None
    now = plan_steps(fresh)
    if not now:
        return (f"this plan appears to be applied already: the database now matches the state it leads to "
                f"({len(saved.steps)} change(s), none left to make)")
    remaining = [s for s in saved.steps if s in now]
    if len(remaining) == len(now) < len(saved.steps):
        from ..core.display import shown

        done = [f"{s['action']} {shown(s['index'])}" for s in saved.steps if s not in now]
        listed = ", ".join(done[:5]) + (f" and {len(done) - 5} more" if len(done) > 5 else "")
        return (f"the plan is stale: {len(done)} of its {len(saved.steps)} change(s) are in the database already "
                f"({listed}), as if it had been partly applied; {len(now)} remain")
    return None


def stale_reason(saved: SavedPlan, fresh: Plan, digest: str) -> str | None:
    """Why `fresh` (the plan computed now from the spec whose digest is `digest`) is not the
    plan `saved` describes, or None when it is."""
    if not saved.spec_digest:
        return "the plan file records no spec digest (made by an older reconciler); make the plan again"
    if saved.spec_digest != digest:
        made = ", ".join(saved.spec_files) or "no file"
        return f"the spec changed since this plan was made (from {made}); pass the same -f files, or make the plan again"
    now = plan_steps(fresh)
    if saved.fingerprint != fresh.fingerprint:
        moved = sorted({(s["action"], s["index"]) for s in saved.steps} ^ {(s["action"], s["index"]) for s in now})
        detail = ", ".join(f"{a} {i}" for a, i in moved[:5]) or "the live definitions changed"
        return f"the managed indexes changed since the plan was made ({detail})"
    if list(saved.steps) != now:
        for i, (was, new) in enumerate(zip(saved.steps, now)):
            if was != new:
                key = next(k for k in _STEP_KEYS if was[k] != new[k])
                return f"change {i + 1} ({new['action']} {new['index']}) differs in its {key}"
        return f"the plan file has {len(saved.steps)} change(s), the database and spec give {len(now)}"
    return None


# -- display only ------------------------------------------------------------------------------

def _keypart(d: dict) -> KeyPart:
    return KeyPart(**d)


def _indexdef(d: dict | None) -> IndexDef | None:
    if d is None:
        return None
    d = dict(d)
    d["keys"] = tuple(_keypart(k) for k in d["keys"])
    d["include"] = tuple(d["include"])
    d["options"] = tuple(tuple(o) for o in d["options"])
    return IndexDef(**d)


def _live(d: dict | None) -> LiveIndex | None:
    if d is None:
        return None
    d = dict(d)
    d["definition"] = _indexdef(d["definition"])
    if d.get("parent") is not None:
        d["parent"] = tuple(d["parent"])
    return LiveIndex(**d)


def plan_from_file(text: str, source: str = "plan file") -> tuple[list[Change], list[list[str]], str]:
    """Changes, the SQL recorded for each, and the fingerprint of a plan file: for showing a
    saved plan. Never executed: `apply --plan` recomputes the plan and compares (`stale_reason`)."""
    doc = _document(text, source)
    changes, sqls = [], []
    try:
        for item in doc["changes"]:
            c = dict(item["change"])
            c["reasons"] = tuple(c["reasons"])
            c["desired"] = _indexdef(c["desired"])
            c["live"] = _live(c["live"])
            tf = dict(c["table_facts"])
            tf["partitions"] = tuple(Partition(**p) for p in tf["partitions"])
            c["table_facts"] = TableFacts(**tf)
            changes.append(Change(**c))
            sqls.append(list(item["sql"]))
    except (KeyError, TypeError, ValueError) as e:
        raise StalePlanError(f"{source}: damaged plan file ({type(e).__name__}: {e})") from None
    return changes, sqls, doc.get("fingerprint", "")
