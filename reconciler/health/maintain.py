"""What `reconciler maintain` will do, decided from the same statistics rows as `health`: the
steps, in the order they run, each one statement with its timeouts (or a skip with its reason).

Order: drop abandoned invalid leftovers first (a `_ccnew` left by an earlier REINDEX would
otherwise be in the way of the next one), then REINDEX INDEX CONCURRENTLY, then ANALYZE (or
VACUUM (ANALYZE) with --vacuum): the last so that the statistics describe the rebuilt indexes.

Only managed tables are touched, except indexes named with --index. Never: an index another
backend is building, an INVALID index the spec lists (`apply` rebuilds it, its definition is
the spec's business), an exclusion-constraint index (PostgreSQL cannot reindex those
concurrently; a plain REINDEX would hold an ACCESS EXCLUSIVE lock), a name `manage.ignore`
covers. Pure: no database, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..core.ident import qualified
from ..core.kinds import OpKind
from ..core.plan import Operation
from ..reconcile.planner import Timeouts
from ..spec import Spec
from .assess import _spec_entries, bloat_flagged, bloat_of, human_bytes, leftover_origin, stale
from .model import IndexRow, StatsSnapshot, TableRow, Thresholds

STEP_ORDER = {"drop": 0, "reindex": 1, "analyze": 2, "vacuum": 2, "skip": 3}


@dataclass(frozen=True)
class MaintenanceStep:
    """One thing maintain does (or, `kind="skip"`, will not do, and why)."""

    kind: str                       # drop | reindex | analyze | vacuum | skip
    schema: str
    table: str
    index: str | None
    reason: str
    operation: Operation | None = None
    oid: int | None = None          # the index (drop, reindex) or table (analyze, vacuum)
    size_bytes: int = 0

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.index} on {self.table}" if self.index else f"{self.schema}.{self.table}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "schema": self.schema, "table": self.table, "index": self.index,
                "reason": self.reason, "sql": self.operation.sql if self.operation else None,
                "size_bytes": self.size_bytes}


def maintenance_plan(snap: StatsSnapshot, t: Thresholds = Thresholds(), spec: Spec | None = None, *,
                     named: Iterable[tuple[str, str]] = (), vacuum: bool = False,
                     timeouts: Timeouts = Timeouts(), managed: set[int] | None = None) -> list[MaintenanceStep]:
    """The steps for one database. `named`: (schema, index) pairs given with --index (rebuilt
    whatever their bloat); `managed`: oids of the tables maintain may touch on its own (default:
    every table of the snapshot)."""
    entries = set(_spec_entries(spec, snap))   # a schema-glob entry: its index in every matching schema
    ignored = spec.ignored if spec else (lambda name: False)
    tables = {r.oid: r for r in snap.tables}
    own = set(tables) if managed is None else managed
    wanted = set(named)
    steps: list[MaintenanceStep] = []
    for x in snap.indexes:
        explicit = (x.schema, x.name) in wanted
        if ignored(x.name) and not explicit:
            continue
        if x.table_oid not in own and not explicit:
            continue
        if not (x.valid and x.ready):
            steps.append(_leftover(x, entries, timeouts, explicit))
            continue
        b = bloat_of(x, snap)
        if explicit or bloat_flagged(b, t):
            steps.append(_reindex(x, b, timeouts, explicit))
    for r in snap.tables:
        if r.oid not in own or r.kind not in ("r", "m"):
            continue
        if vacuum:
            steps.append(_table_step("vacuum", r, "--vacuum: the weekly VACUUM (ANALYZE) of every managed table",
                                     timeouts))
        elif stale(r, t):
            when = r.last_analyze.isoformat(timespec="seconds") if r.last_analyze else "never analyzed"
            steps.append(_table_step("analyze", r, f"{r.modified_since_analyze:,} rows modified since the last "
                                                   f"ANALYZE ({when}) on {r.rows:,} rows", timeouts))
    found = {(x.schema, x.name) for x in snap.indexes}
    for schema, name in sorted(wanted - found):
        steps.append(MaintenanceStep("skip", schema, "", name, "--index: no such index on a table maintain can read"))
    steps.sort(key=lambda s: (STEP_ORDER[s.kind], s.schema, s.table, s.index or ""))
    return steps


def _leftover(x: IndexRow, entries: set, t: Timeouts, explicit: bool) -> MaintenanceStep:
    origin = leftover_origin(x.name)
    if x.being_built_by:
        return MaintenanceStep("skip", x.schema, x.table, x.name,
                               f"INVALID while backend {x.being_built_by} builds it: left alone", oid=x.oid)
    if (x.schema, x.name) in entries:
        return MaintenanceStep("skip", x.schema, x.table, x.name,
                               "INVALID, and the spec lists it: `reconciler apply` rebuilds it", oid=x.oid)
    if x.partitioned:
        # DROP INDEX CONCURRENTLY is refused on a partitioned index: a plain DROP takes ACCESS
        # EXCLUSIVE on the table tree for a moment, so the short lock timeout applies
        op = Operation(f"DROP INDEX {qualified(x.schema, x.name)}", OpKind.DROP, t.lock_ms, t.statement_ms, False,
                       x.name, qualified(x.schema, x.table))
    else:
        op = Operation(f"DROP INDEX CONCURRENTLY {qualified(x.schema, x.name)}", OpKind.DROP, t.lock_ms, t.build_ms,
                       True, x.name, qualified(x.schema, x.table))
    why = f"abandoned INVALID leftover of {origin}" + (" (--index)" if explicit else "")
    return MaintenanceStep("drop", x.schema, x.table, x.name, why, op, x.oid, x.size_bytes)


def _reindex(x: IndexRow, b, t: Timeouts, explicit: bool) -> MaintenanceStep:
    if b is not None and b.ratio is not None:
        how = "measured by pgstatindex" if b.method == "pgstatindex" else "estimated"
        why = f"bloat {b.ratio:.0%} ({human_bytes(b.wasted_bytes)} of {human_bytes(x.size_bytes)}, {how})"
    else:
        why = "bloat unknown"
    if explicit:
        why = "--index; " + why
    if x.exclusion:
        return MaintenanceStep("skip", x.schema, x.table, x.name,
                               f"{why}, but an exclusion-constraint index cannot be reindexed concurrently (a plain "
                               "REINDEX holds an ACCESS EXCLUSIVE lock): rebuild it in a maintenance window",
                               oid=x.oid, size_bytes=x.size_bytes)
    if x.partitioned:
        return MaintenanceStep("skip", x.schema, x.table, x.name,
                               f"{why}; a partitioned index has no storage of its own: its partitions' indexes are "
                               "rebuilt one by one (name them with --index)", oid=x.oid)
    # REINDEX CONCURRENTLY builds a copy, swaps it in and drops the old one; it waits for old
    # transactions like a concurrent build (the executor waits them out first): the build
    # timeout bounds it, the lock timeout bounds each lock wait
    op = Operation(f"REINDEX INDEX CONCURRENTLY {qualified(x.schema, x.name)}", OpKind.REINDEX, t.lock_ms,
                   t.build_ms, True, x.name, qualified(x.schema, x.table))
    return MaintenanceStep("reindex", x.schema, x.table, x.name, why, op, x.oid, x.size_bytes)


def _table_step(kind: str, r: TableRow, why: str, t: Timeouts) -> MaintenanceStep:
    # VACUUM and ANALYZE take SHARE UPDATE EXCLUSIVE: reads and writes go on; they conflict only
    # with other maintenance and DDL, which the lock timeout and its retries wait out
    sql = f"VACUUM (ANALYZE) {qualified(r.schema, r.name)}" if kind == "vacuum" else \
        f"ANALYZE {qualified(r.schema, r.name)}"
    op = Operation(sql, OpKind.VACUUM if kind == "vacuum" else OpKind.ANALYZE, t.lock_ms, t.build_ms, False, None,
                   qualified(r.schema, r.name))
    return MaintenanceStep(kind, r.schema, r.name, None, why, op, r.oid, r.size_bytes)
