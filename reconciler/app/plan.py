"""`plan` and `drift` on one database: compare, render, and say what the run came to.

One job: the read-only workflows of `plan` and `drift` once the spec is checked, for the
single-database commands and for each target of a fleet run alike: make the plan (and its
what-if on the spec's queries), render it, and return the `Outcome` (status, exit code, one
summary line, the report, the JSON document).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from ..core.index import IndexDef
from ..core.plan import Plan
from ..fleet import Outcome, Status
from ..reconcile.planner import Timeouts
from ..render import render_drift, render_json, render_markdown, render_sql, render_text, summary_line
from ..spec import Selection, Spec
from .engine import make_plan
from .whatif import simulate


@dataclass(frozen=True)
class PlanOptions:
    fmt: str = "text"
    detailed_exitcode: bool = False
    timeouts: Timeouts = Timeouts()
    color: bool = False
    throwaway: bool = False          # --schema-sql: what-if may run real DDL, rolled back


def plan_database(conn: psycopg.Connection, spec: Spec, desired: list[IndexDef] | None, selection: Selection,
                  opts: PlanOptions) -> tuple[Plan, Outcome]:
    plan, _cmp = make_plan(conn, spec, timeouts=opts.timeouts, desired=desired, selection=selection)
    plan = simulate(conn, plan, spec, throwaway=opts.throwaway, lock_timeout_ms=opts.timeouts.lock_ms)
    renderers = {"text": lambda p: render_text(p, opts.color), "json": render_json, "markdown": render_markdown,
                 "sql": render_sql}
    text = renderers[opts.fmt](plan)
    doc = json.loads(text) if opts.fmt == "json" else None
    status = Status.OK if plan.empty else Status.CHANGES
    code = 2 if opts.detailed_exitcode and not plan.empty else 0
    return plan, Outcome(status, code, summary_line(plan), text, doc)


def drift_database(conn: psycopg.Connection, spec: Spec, desired: list[IndexDef] | None, selection: Selection,
                   fmt: str = "text") -> tuple[Plan, Outcome]:
    plan, _cmp = make_plan(conn, spec, desired=desired, selection=selection)
    text = render_drift(plan, fmt)
    differs = not plan.empty or any(d.kind != "ignored" for d in plan.drift)
    doc = json.loads(text) if fmt == "json" else None
    if fmt == "json":
        n = len(doc.get("drift", []))
    else:
        n = len(json.loads(render_drift(plan, "json")).get("drift", []))
    summary = f"{n} difference(s)." if differs else "No drift: the managed indexes match the spec."
    return plan, Outcome(Status.CHANGES if differs else Status.OK, 2 if differs else 0, summary, text, doc)
