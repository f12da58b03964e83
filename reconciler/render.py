"""`Plan` → text (Terraform-like), markdown (pull-request comment), SQL (a runnable script),
JSON (machines), and the plan file that `apply --plan` takes.

One job: presentation and serialization. No database, no SQL parsing; output is
deterministic (no timestamps), so goldens stay byte-stable.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, fields
from typing import Any

from .errors import StalePlanError
from .model import (Change, IndexDef, KeyPart, LiveIndex, Plan, PlannedChange, TableFacts,
                    PLAN_FORMAT_VERSION, Partition, qualified)

SYMBOL = {"create": "+", "drop": "-", "replace": "~", "rename": ">", "rebuild": "!"}
VERB = {"create": "create", "drop": "drop", "replace": "replace", "rename": "rename", "rebuild": "rebuild"}
COLOR = {"create": "32", "drop": "31", "replace": "33", "rename": "36", "rebuild": "35"}


def summary_counts(plan: Plan) -> dict[str, int]:
    counts = {a: 0 for a in SYMBOL}
    for pc in plan.changes:
        counts[pc.change.action] += 1
    return counts


def summary_line(plan: Plan) -> str:
    if plan.empty:
        return "No changes. The indexes match the spec."
    c = summary_counts(plan)
    return ("Plan: " + ", ".join(f"{c[a]} to {VERB[a]}" for a in ("create", "replace", "rename", "rebuild", "drop"))
            + ".")


def _title(c: Change) -> str:
    if c.action == "rename":
        return f"{c.schema}.{c.old_name} → {c.index} on {c.table}"
    return f"{c.schema}.{c.index} on {c.table}"


def _not_changed(plan: Plan) -> list:
    """The drift this plan leaves alone: an extra that the plan drops (prune) is a change."""
    return [d for d in plan.drift if d.kind != "extra" or not any(
        pc.change.action == "drop" and pc.change.index == d.index and pc.change.schema == d.schema
        for pc in plan.changes)]


def render_text(plan: Plan, color: bool = False) -> str:
    def paint(code: str, s: str) -> str:
        return f"\033[{code}m{s}\033[0m" if color else s

    out: list[str] = []
    for w in plan.warnings:
        out.append(paint("33", f"warning: {w}"))
    for pc in plan.changes:
        c = pc.change
        out.append(paint(COLOR[c.action], f"{SYMBOL[c.action]} {c.action} {_title(c)}"))
        for r in c.reasons:
            out.append(f"    {r}")
        for op in pc.operations:
            out.append(paint("2", f"    sql: {op.sql};"))
        for h in pc.hazards:
            tag = "hazard (blocking)" if h.blocking else "hazard"
            out.append(paint("33" if not h.blocking else "31", f"    {tag} {h.code}: {h.message}"))
        out.append("")
    extras = _not_changed(plan)
    if extras:
        out.append("Not changed by this plan:")
        for d in extras:
            out.append(f"  ? {d.schema}.{d.index} on {d.table}: {d.message}")
        out.append("")
    out.append(paint("1", summary_line(plan)))
    return "\n".join(out) + "\n"


def render_markdown(plan: Plan) -> str:
    out = ["### reconciler plan", "", f"**{summary_line(plan)}**", ""]
    for w in plan.warnings:
        out += [f"> :warning: {w}", ""]  # the blank line ends the quote: a table after it stays a table
    if plan.changes:
        out += ["| | action | index | table | reasons |", "|---|---|---|---|---|"]
        for pc in plan.changes:
            c = pc.change
            reasons = "<br>".join(r.replace("|", "\\|") for r in c.reasons)
            name = f"`{c.old_name}` → `{c.index}`" if c.action == "rename" else f"`{c.index}`"
            out.append(f"| `{SYMBOL[c.action]}` | {c.action} | {name} | `{c.schema}.{c.table}` | {reasons} |")
        out.append("")
        hazards = [(pc.change.index, h) for pc in plan.changes for h in pc.hazards]
        if hazards:
            out.append("<details><summary>Hazards</summary>\n")
            for name, h in hazards:
                out.append(f"- **{h.code}**{' (blocking)' if h.blocking else ''} `{name}`: {h.message}")
            out.append("\n</details>\n")
        out.append("<details><summary>SQL</summary>\n\n```sql")
        out.append(render_sql(plan).rstrip())
        out.append("```\n</details>")
    kept = _not_changed(plan)
    drift = [d for d in kept if d.kind != "extra"] + [d for d in kept if d.kind == "extra"]
    if drift:
        out += ["", "Not changed by this plan:", ""]
        out += [f"- `{d.schema}.{d.index}` on `{d.table}`: {d.message}" for d in drift]
    return "\n".join(out) + "\n"


def render_sql(plan: Plan) -> str:
    out = ["-- reconciler plan: run with psql in autocommit, one statement at a time",
           "-- (CONCURRENTLY cannot run in a transaction block; partition steps use psql's \\gset).",
           "-- " + summary_line(plan), ""]
    for pc in plan.changes:
        c = pc.change
        out.append(f"-- {c.action} {_title(c)}")
        for r in c.reasons:
            out.append(f"--   {r}")
        for op in pc.operations:
            if op.kind == "check_unique":
                out.append(f"-- duplicate check (must return no row): {op.sql};")
                continue
            if op.kind == "attach":
                parent = qualified(c.schema, c.index) if op.parent == c.desired.qualified_table else \
                    ":" + _psql_var(op.parent)
                out.append(f"ALTER INDEX {parent} ATTACH PARTITION :{_psql_var(op.table)};")
                continue
            if op.kind in ("build_partition", "build_subparent"):
                out.append(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms';")
                out.append(f"SET statement_timeout = '{op.statement_timeout_ms or 0}ms';")
                out.append(op.sql + ";")
                # PostgreSQL names the partition's index; look it up for the ATTACH (psql \gset)
                out.append("SELECT format('%I.%I', n.nspname, c.relname) AS " + _psql_var(op.table)
                           + " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON "
                           f"n.oid = c.relnamespace WHERE i.indrelid = {_literal(op.table)}::regclass AND NOT "
                           "c.relispartition ORDER BY c.oid DESC LIMIT 1 \\gset")
                continue
            out.append(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms';")
            out.append(f"SET statement_timeout = '{op.statement_timeout_ms or 0}ms';")
            out.append(op.sql + ";")
        out.append("")
    return "\n".join(out) + "\n"


def _psql_var(table: str) -> str:
    return "rc_" + hashlib.md5(table.encode()).hexdigest()[:8]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def change_dict(pc: PlannedChange) -> dict[str, Any]:
    c = pc.change
    d = {"action": c.action, "schema": c.schema, "table": c.table, "index": c.index, "reasons": list(c.reasons),
         "sql": [op.sql for op in pc.operations], "hazards": [h.to_dict() for h in pc.hazards]}
    if c.old_name:
        d["old_name"] = c.old_name
    return d


def render_json(plan: Plan) -> str:
    doc = {"format_version": PLAN_FORMAT_VERSION, "summary": summary_counts(plan),
           "changes": [change_dict(pc) for pc in plan.changes],
           "drift": [asdict(d) for d in plan.drift], "warnings": list(plan.warnings)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def render_drift(plan: Plan, fmt: str = "text") -> str:
    """Every difference on managed tables: the plan's changes plus what it leaves alone."""
    items = []
    for pc in plan.changes:
        c = pc.change
        kind = {"create": "missing", "replace": "changed", "rebuild": "invalid", "rename": "renamed",
                "drop": "extra"}[c.action]
        items.append({"kind": kind, "schema": c.schema, "table": c.table, "index": c.index,
                      "detail": "; ".join(c.reasons)})
    for d in plan.drift:
        if d.kind == "ignored" or any(i["kind"] == "extra" and i["index"] == d.index and i["schema"] == d.schema
                                      for i in items):
            continue
        items.append({"kind": d.kind, "schema": d.schema, "table": d.table, "index": d.index, "detail": d.message})
    items.sort(key=lambda i: (i["schema"], i["table"], i["index"]))
    if fmt == "json":
        return json.dumps({"format_version": PLAN_FORMAT_VERSION, "in_sync": not items, "drift": items},
                          indent=2, ensure_ascii=False) + "\n"
    if not items:
        return "No drift: the managed indexes match the spec.\n"
    lines = [f"{i['kind']:<11} {i['schema']}.{i['index']} on {i['table']}: {i['detail']}" for i in items]
    return "\n".join(lines) + f"\n{len(items)} difference(s).\n"


# ---------------------------------------------------------------------------------------------
# The plan file: data, versioned, no SQL executed from it (apply rebuilds and compares).


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

