"""The effect of a plan's changes on the spec's queries, from the queries' plans before and
after the changes were simulated (hypothetical indexes, hidden indexes, or real DDL on a
throwaway database, all decided elsewhere).

A query *regresses* when, after the changes, (a) its plan no longer uses an index it lists in
`uses` and used before, (b) its estimated cost crosses its `budget_cost`, or (c) its estimated
cost grows by more than half and by at least 100 (Dexter's thresholds for a meaningful cost
change, `lib/dexter/indexer.rb`). A drop that could not be simulated, of an index a query
uses now, counts as a regression too: the index is certainly gone and what replaces it is
unknown. Each regression becomes a blocking QUERY_REGRESSION hazard on the changes behind it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.kinds import Action
from ..core.plan import QueryEffect
from .explained import Explained

COST_GROWTH = 1.5
COST_MIN_DELTA = 100.0


@dataclass(frozen=True)
class QueryState:
    name: str
    where: str
    uses: tuple[str, ...]
    budget_cost: float | None
    before: Explained
    after: Explained | None                 # None: nothing of the plan could be simulated
    before_names: frozenset[str]            # spec-level index names the plan uses now
    after_names: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChangeSim:
    key: int                                # position of the change in the plan
    action: Action
    table: str
    new_name: str | None                    # the index the change builds (create/replace/rebuild)
    old_name: str | None                    # the index the change removes (drop/replace)
    simulated: bool
    why_not: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action.parse(self.action))


def cost(c: float | None) -> str:
    if c is None:
        return "?"
    return f"{c:,.0f}" if c >= 100 else f"{c:,.2f}"


def regression_reasons(q: QueryState) -> list[str]:
    if q.after is None:
        return []
    out = []
    lost = [u for u in q.uses if u in q.before_names and u not in q.after_names]
    if lost:
        out.append(f"loses {', '.join(lost)} (listed in its uses)")
    if q.budget_cost is not None and q.after.cost > q.budget_cost >= q.before.cost:
        out.append(f"crosses its budget_cost {cost(q.budget_cost)}")
    if q.after.cost > q.before.cost * COST_GROWTH and q.after.cost - q.before.cost >= COST_MIN_DELTA:
        out.append(f"estimated cost ×{q.after.cost / max(q.before.cost, 0.01):,.1f}")
    return out


def effects_of(changes: list[ChangeSim], queries: list[QueryState]) -> dict[int, list[QueryEffect]]:
    out: dict[int, list[QueryEffect]] = {c.key: [] for c in changes}
    for q in queries:
        reasons = regression_reasons(q)
        tables = q.before.tables | (q.after.tables if q.after else frozenset())
        for c in changes:
            if c.action is Action.RENAME:
                continue
            eff = _effect(c, q, reasons, tables)
            if eff is not None:
                out[c.key].append(eff)
    return out


def _effect(c: ChangeSim, q: QueryState, reasons: list[str], tables: frozenset[str]) -> QueryEffect | None:
    b = q.before
    if not c.simulated:
        # the reason is said once, on the change (`unsimulated`)
        if c.old_name and c.old_name in q.before_names:
            if c.action is Action.DROP:
                return QueryEffect(q.name, q.where, f"uses {c.old_name} now (cost {cost(b.cost)}); its plan without "
                                   "it is unknown", b.cost, None, True)
            return QueryEffect(q.name, q.where, f"uses {c.old_name} now (cost {cost(b.cost)}); its plan with the new "
                               "definition is unknown", b.cost, None, False)
        if c.new_name and c.new_name in q.uses:
            return QueryEffect(q.name, q.where, f"lists {c.new_name} in uses; whether it will use it is unknown",
                               b.cost, None, False)
        return None
    a = q.after
    if a is None:
        return None
    move = f"cost {cost(b.cost)} → {cost(a.cost)}"
    now = "; ".join(x.describe() for x in a.accesses if x.table in tables) or "no table scan"
    stopped = c.old_name is not None and c.old_name in q.before_names and c.old_name not in q.after_names
    regression = bool(reasons) and (stopped or c.table in tables and not any(
        r.startswith("loses") for r in reasons))
    why = f" — {'; '.join(reasons)}" if regression else ""
    if c.new_name and c.new_name in q.after_names:
        verb = "will still use it" if c.new_name in q.before_names else "will use it"
        return QueryEffect(q.name, q.where, f"{verb} ({move}){why}", b.cost, a.cost, regression)
    if stopped:
        return QueryEffect(q.name, q.where, f"will stop using {c.old_name} ({move}; then: {now}){why}", b.cost, a.cost,
                           regression)
    if c.new_name and c.new_name in q.uses:
        return QueryEffect(q.name, q.where, f"lists {c.new_name} in uses but will not use it ({move}; then: {now})",
                           b.cost, a.cost, False)
    if regression:
        return QueryEffect(q.name, q.where, f"plan changes ({move}; then: {now}){why}", b.cost, a.cost, True)
    return None
