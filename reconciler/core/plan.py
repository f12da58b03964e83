"""What changes and what runs: `Change` (what must happen, with human reasons), `Operation`
(one executable statement with its timeouts), `Hazard`, `PlannedChange`, `Drift`, `Plan`.
No I/O; a `Plan` is data that render and the executor read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .index import IndexDef, LiveIndex, Partition, TableFacts

ACTIONS = ("create", "drop", "replace", "rename", "rebuild")
PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Hazard:
    """Something a reviewer should know before approving. `code` is stable: users type it in
    --allow-hazard. `blocking` hazards stop `apply` unless allowed."""

    code: str
    message: str
    blocking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "blocking": self.blocking}


@dataclass(frozen=True)
class Operation:
    """One statement to run, on its own autocommit round trip, with its own timeouts."""

    sql: str
    kind: str                       # build | drop | rename | reindex | attach | analyze | comment | check
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    concurrent: bool = False
    target: str | None = None       # index name this statement produces or touches
    table: str | None = None        # qualified table, for progress reporting
    parent: str | None = None       # partition steps: the qualified parent table

    def to_dict(self) -> dict[str, Any]:
        return {"sql": self.sql, "kind": self.kind, "lock_timeout_ms": self.lock_timeout_ms,
                "statement_timeout_ms": self.statement_timeout_ms, "concurrent": self.concurrent,
                "target": self.target, "table": self.table, "parent": self.parent}


@dataclass(frozen=True)
class Change:
    """What must happen to one index, and why. `desired` is None for a drop; `live` is None for
    a create."""

    action: str
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
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")


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

    kind: str                # extra | constraint | being_built
    schema: str
    table: str
    index: str
    message: str


@dataclass(frozen=True)
class Plan:
    changes: tuple[PlannedChange, ...]
    fingerprint: str = ""
    drift: tuple[Drift, ...] = ()
    warnings: tuple[str, ...] = ()
    format_version: int = PLAN_FORMAT_VERSION
    selection: tuple[str, ...] = ()  # selectors of a partial plan (`--select tag=x`, Terraform -target)

    @property
    def empty(self) -> bool:
        return not self.changes
