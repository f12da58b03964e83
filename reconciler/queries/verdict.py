"""A query's verdict for `verify`: does its plan use every index it `uses`, does it stay under
its budgets. A miss is a reason string; no reasons = the query passes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .explained import Access, Explained


@dataclass(frozen=True)
class Verdict:
    name: str
    where: str
    sql: str
    mode: str                                  # "custom plan (params)" | "generic plan" | "plan"
    cost: float
    rows: float
    accesses: tuple[Access, ...]
    uses: tuple[tuple[str, bool], ...]         # (index, in the plan)
    budget_ms: float | None = None
    budget_cost: float | None = None
    time_ms: float | None = None               # median of the runs
    runs_ms: tuple[float, ...] = ()
    misses: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    shared_hit: int | None = None
    shared_read: int | None = None

    @property
    def ok(self) -> bool:
        return not self.misses

    def to_dict(self) -> dict:
        return {"name": self.name, "where": self.where, "ok": self.ok, "mode": self.mode, "cost": self.cost,
                "rows": self.rows, "access": [{"table": a.table, "alias": a.alias, "node": a.node,
                                               "indexes": list(a.indexes)} for a in self.accesses],
                "uses": [{"index": i, "used": u} for i, u in self.uses], "budget_ms": self.budget_ms,
                "budget_cost": self.budget_cost, "time_ms": self.time_ms, "runs_ms": list(self.runs_ms),
                "shared_hit": self.shared_hit, "shared_read": self.shared_read,
                "misses": list(self.misses), "notes": list(self.notes)}


def median(values: Iterable[float]) -> float:
    import statistics   # only --analyze measures: not loaded by every verify

    return statistics.median(list(values))


def judge(*, name: str, where: str, sql: str, mode: str, uses: Iterable[str], plan: Explained,
          serves: Callable[[str, str], bool] = lambda plan_index, spec_index: plan_index == spec_index,
          budget_ms: float | None = None, budget_cost: float | None = None,
          runs: list[Explained] = (), notes: Iterable[str] = ()) -> Verdict:
    """`serves(plan_index, spec_index)`: does the index named in the plan stand for the spec's
    index (itself, one of its partitions' indexes, its hypothetical twin)."""
    misses: list[str] = []
    notes = list(notes)
    used = []
    for u in uses:
        hit = any(serves(i, u) for i in plan.indexes)
        used.append((u, hit))
        if not hit:
            how = "; ".join(a.describe() for a in plan.accesses) or "no table scan"
            misses.append(f"does not use {u} ({how})")
    if budget_cost is not None and plan.cost > budget_cost:
        misses.append(f"estimated cost {plan.cost:,.2f} is over its budget_cost {budget_cost:,.2f}")
    times = [r.time_ms for r in runs if r.time_ms is not None]
    time_ms = median(times) if times else None
    if budget_ms is not None and time_ms is not None and time_ms > budget_ms:
        misses.append(f"took {time_ms:,.3f} ms (median of {len(times)}), over its budget_ms {budget_ms:g}")
    last = runs[-1] if runs else None
    return Verdict(name, where, sql, mode, plan.cost, plan.rows, plan.accesses, tuple(used), budget_ms, budget_cost,
                   time_ms, tuple(times), tuple(misses), tuple(notes),
                   last.shared_hit if last else None, last.shared_read if last else None)
