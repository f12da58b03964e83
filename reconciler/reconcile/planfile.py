"""The plan file `plan --out` writes and `apply --plan` reads: versioned JSON data, never a
source of SQL (apply rebuilds the plan and compares)."""
from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from ..core.index import IndexDef, KeyPart, LiveIndex, Partition, TableFacts
from ..core.plan import PLAN_FORMAT_VERSION, Change, Plan
from ..errors import StalePlanError


def _to_data(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [_to_data(x) for x in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _to_data(getattr(obj, f.name)) for f in fields(obj)}
    raise TypeError(type(obj))


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


def plan_to_file(plan: Plan, spec_files: list[str]) -> str:
    doc = {"format_version": PLAN_FORMAT_VERSION, "kind": "reconciler-plan", "fingerprint": plan.fingerprint,
           "spec_files": list(spec_files),
           "changes": [{"change": _to_data(pc.change), "sql": [op.sql for op in pc.operations]} for pc in plan.changes],
           "warnings": list(plan.warnings)}
    if plan.selection:
        doc["selection"] = list(plan.selection)
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def plan_from_file(text: str, source: str = "plan file") -> tuple[list[Change], list[list[str]], str]:
    """Changes, the SQL recorded for each, and the fingerprint of a plan file."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise StalePlanError(f"{source}: not a reconciler plan file ({e})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "reconciler-plan":
        raise StalePlanError(f"{source}: not a reconciler plan file")
    if doc.get("format_version") != PLAN_FORMAT_VERSION:
        raise StalePlanError(f"{source}: plan format {doc.get('format_version')} is not supported "
                             f"(this reconciler writes {PLAN_FORMAT_VERSION})")
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
