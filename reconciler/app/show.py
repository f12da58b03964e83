"""`reconciler show PLANFILE`: a saved plan, read back and shown in any format, with what is
known about where it came from (its age, the spec files it was made from, the fingerprint of
the live indexes it was made against). Reads the file only: no database, nothing executed.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.display import shown
from ..core.plan import Plan
from ..errors import StalePlanError
from ..reconcile.planfile import plan_from_file
from ..reconcile.planner import build_plan

# What a plan file may say about itself, shown when present (newer files record more).
META_KEYS = ("created_at", "spec_digest", "target", "spec_files", "fingerprint")


@dataclass(frozen=True)
class SavedPlan:
    path: str
    plan: Plan
    meta: dict
    age_s: float | None


def load_saved_plan(path: str) -> SavedPlan:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise StalePlanError(f"{path}: no such plan file", "make one with `reconciler plan --out FILE`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StalePlanError(f"{path}: cannot read: {e}") from None
    changes, _sqls, fingerprint = plan_from_file(text, path)
    doc = json.loads(text)
    meta = {k: doc[k] for k in META_KEYS if doc.get(k) not in (None, "", [])}
    made = doc.get("created_at")
    made_ts = _timestamp(made) if isinstance(made, str) else None
    if made_ts is None:
        made_ts = os.stat(p).st_mtime
    warnings = tuple(w for w in doc.get("warnings", []) if isinstance(w, str))
    # Hazards and statements are recomputed from the recorded changes, as apply does.
    return SavedPlan(path, build_plan(changes, fingerprint=fingerprint, warnings=warnings), meta,
                     max(0.0, time.time() - made_ts))


def _timestamp(text: str) -> float | None:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def age_words(seconds: float | None) -> str:
    if seconds is None:
        return "unknown age"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def spec_check(saved: SavedPlan, files: list[str] | None) -> str | None:
    """Whether the spec (the `files` given, else the files the plan names) still has the digest
    the plan recorded: "unchanged", "changed since this plan was made", or why it cannot tell.
    None when the plan records no digest. Reads spec files only (they are loaded as specs, so a
    plan naming some other file learns nothing of its content)."""
    from ..errors import ReconcilerError
    from ..spec import load_spec

    recorded = saved.meta.get("spec_digest")
    paths = list(files or saved.meta.get("spec_files") or [])
    if not recorded:
        return None
    if not paths:
        return "the plan names no spec file to compare with; pass -f"
    try:
        now = load_spec(paths).digest
    except ReconcilerError as e:
        return f"cannot compare with the spec now: {str(e).splitlines()[0]}"
    if now == recorded:
        return "the spec is unchanged since this plan was made"
    return "the spec changed since this plan was made: `apply --plan` will refuse it; make the plan again"


def header_lines(saved: SavedPlan, spec_status: str | None = None) -> list[str]:
    """What `show` prints above the plan; every value from the file made safe to print (the file
    is not trusted: a newline in a name must not start a new line of a SQL script)."""
    m = saved.meta
    out = [f"Plan file {shown(saved.path)}, made {age_words(saved.age_s)}"
           + (f" ({shown(m['created_at'])})" if m.get("created_at") else "")]
    if m.get("target"):
        out.append(f"  target: {shown(m['target'])}")
    if m.get("spec_files"):
        out.append(f"  spec: {shown(', '.join(m['spec_files']))}"
                   + (f" (digest {shown(m['spec_digest'])})" if m.get("spec_digest") else ""))
    if spec_status:
        out.append(f"  {shown(spec_status)}")
    if m.get("fingerprint"):
        out.append(f"  live indexes fingerprint: {shown(m['fingerprint'])}")
    return out


def describe_json(saved: SavedPlan, plan_json: str, spec_status: str | None = None) -> str:
    doc = json.loads(plan_json)
    doc["plan_file"] = {"path": saved.path, "age_s": round(saved.age_s, 1) if saved.age_s is not None else None,
                        **saved.meta}
    if spec_status:
        doc["plan_file"]["spec_status"] = spec_status
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
