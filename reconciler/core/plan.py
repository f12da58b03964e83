"""What changes and what runs: `Change` (what must happen, with human reasons), `Operation`
(one executable statement with its timeouts), `PlannedChange`, `Drift`, `Plan`; hazards are in
`hazards`, the kinds in `kinds`. No I/O; a `Plan` is data that render and the executor read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .hazards import Hazard
from .index import IndexDef, LiveIndex, Partition, TableFacts
from .kinds import Action, DriftKind, OpKind

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Operation:
    """One statement to run, on its own autocommit round trip, with its own timeouts."""

    sql: str
    kind: OpKind
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    concurrent: bool = False
    target: str | None = None       # index name this statement produces or touches
    table: str | None = None        # qualified table, for progress reporting
    parent: str | None = None       # partition steps: the qualified parent table

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", OpKind.parse(self.kind))

    def to_dict(self) -> dict[str, Any]:
        return {"sql": self.sql, "kind": self.kind, "lock_timeout_ms": self.lock_timeout_ms,
                "statement_timeout_ms": self.statement_timeout_ms, "concurrent": self.concurrent,
                "target": self.target, "table": self.table, "parent": self.parent}


@dataclass(frozen=True)
class Change:
    """What must happen to one index, and why. `desired` is None for a drop; `live` is None for
    a create."""

    action: Action
    schema: str
    table: str
    index: str
    reasons: tuple[str, ...] = ()
    desired: IndexDef | None = None
    live: LiveIndex | None = None
    old_name: str | None = None            # rename / replace of an index under another name
    table_facts: TableFacts = field(default_factory=TableFacts)

    @property
    def partitions(self) -> tuple[Partition, ...]:
        return self.table_facts.partitions

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action.parse(self.action))


@dataclass(frozen=True)
class QueryEffect:
    """What one planned change does to one query of the spec (plan's what-if), in words and
    in estimated cost. `regression` marks the effects behind a QUERY_REGRESSION hazard."""

    query: str
    where: str                       # file:line of the query
    summary: str                     # "will use it (cost 48,000 → 12)"
    before_cost: float | None = None
    after_cost: float | None = None
    regression: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "where": self.where, "summary": self.summary, "before_cost": self.before_cost,
                "after_cost": self.after_cost, "regression": self.regression}


@dataclass(frozen=True)
class PlannedChange:
    change: Change
    operations: tuple[Operation, ...]
    hazards: tuple[Hazard, ...] = ()
    effects: tuple[QueryEffect, ...] = ()   # what-if on the spec's queries (empty: no queries)
    unsimulated: str = ""                   # why the effect on queries could not be simulated


@dataclass(frozen=True)
class Drift:
    """A difference `drift` reports that is not a change of the plan (an extra index kept
    because prune is off, a constraint-backed index that differs from the spec)."""

    kind: DriftKind
    schema: str
    table: str
    index: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", DriftKind.parse(self.kind))


@dataclass(frozen=True)
class Plan:
    """The changes in execution order, the drift left alone, and what the comparison warned
    about. `fingerprint` digests the live indexes it was made from (a saved plan is stale when
    it moved). No timestamps: the same inputs give the same plan, byte for byte."""

    changes: tuple[PlannedChange, ...]
    fingerprint: str = ""
    drift: tuple[Drift, ...] = ()
    warnings: tuple[str, ...] = ()
    format_version: int = PLAN_FORMAT_VERSION
    selection: tuple[str, ...] = ()  # selectors of a partial plan (`--select tag=x`, Terraform -target)
    schemas: tuple[str, ...] = ()    # the schemas of the managed tables (many with schema globs)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def drifted(self) -> bool:
        """Anything for `drift` to report: a change, or a difference left alone (an entry the
        spec lists but manage.ignore hides is not one)."""
        return not self.empty or any(d.kind is not DriftKind.IGNORED for d in self.drift)

    def schemas_changed(self) -> list[str]:
        return sorted({pc.change.schema for pc in self.changes})
