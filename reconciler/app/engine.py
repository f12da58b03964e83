"""The library's front door: spec + database → comparison → plan. The CLI only calls this.

One job: wire the stages together in the one order that is safe:
  spec files → IndexDefs (every fragment checked) → catalog snapshot (READ ONLY) →
  server canonicalization of whatever text comparison was unsure about (always rolled back) →
  diff → plan.
Everything that can be refused is refused here, before anything is executed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace

import psycopg

from ..core.index import IndexDef, TableFacts
from ..core.suggest import nearest
from ..core.plan import Drift, Plan
from ..errors import ReconcilerError
from ..normalize import normalize_spec, same_definition
from ..pg import catalog
from ..pg.catalog import Snapshot
from ..reconcile.diff import diff_indexes
from ..reconcile.planner import Timeouts, build_plan
from ..reconcile.naming import is_leftover, leftover_of
from ..spec import Selection, Spec, glob_to_like
from .equivalence import Equivalence


@dataclass
class Comparison:
    spec: Spec
    desired: list[IndexDef]
    snapshot: Snapshot
    changes: list
    drift: list[Drift]
    warnings: list[str] = field(default_factory=list)
    canonicalized: int = 0          # how many desired indexes the server had to print


def fingerprint(snapshot: Snapshot) -> str:
    """A digest of the managed live indexes: a saved plan is stale when this moved."""
    items = sorted((x.schema, x.table, x.name, x.valid, x.definition.signature(), x.parent_index or "")
                   for x in snapshot.indexes)
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


def table_hint(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """``did you mean "reportExecution"?`` for a table that does not exist, or None."""
    near = nearest(table, catalog.table_names(conn, schema))
    return f'did you mean "{near}"?' if near is not None else None


def check_tables(conn: psycopg.Connection, desired: list[IndexDef], spec: Spec, snapshot: Snapshot) -> None:
    known = {(t.schema, t.name) for t in snapshot.tables}
    for d, e in zip(desired, spec.entries):
        if (d.schema, d.table) not in known:
            raise ReconcilerError(f"{e.where}: index {d.name!r}: table: {d.schema}.{d.table} does not exist "
                                  "(names are taken literally, case kept)", table_hint(conn, d.schema, d.table))


def select_changes(spec: Spec, selection: Selection, changes: list, drift: list[Drift]) -> tuple[list, list[Drift]]:
    """The one place `--select` applies (Terraform's -target): the whole spec was compared, only
    the changes of selected entries are kept. A change belongs to the spec entry of its index;
    a leftover of an interrupted replace to the entry it was derived from; an unlisted index
    (a prune drop, extra drift) is selected only by name= or table=."""
    if not selection.partial:
        return changes, drift
    entries = {(e.schema, e.name): e for e in spec.entries}
    names = [e.name for e in spec.entries]

    def chosen(schema: str, index: str, table: str) -> bool:
        owner = leftover_of(index, names) if is_leftover(index) else None
        e = entries.get((schema, owner or index))
        if e is not None:
            return selection.index(e.schema, e.name, e.table, e.tags)
        return selection.index(schema, index, table)

    return ([c for c in changes if chosen(c.schema, c.index, c.table)],
            [d for d in drift if chosen(d.schema, d.index, d.table)])


def compare(conn: psycopg.Connection, spec: Spec, *, use_server: bool = True,
            desired: list[IndexDef] | None = None, selection: Selection = Selection()) -> Comparison:
    """`desired` is `normalize_spec(spec)` when the caller already checked the spec offline."""
    if desired is None:
        desired = normalize_spec(spec)

    # sizes, scan counts and comments only matter for what changes: read them afterwards
    snapshot = catalog.introspect(conn, spec.tables, patterns=[glob_to_like(g) for g in spec.table_globs],
                                  stats=False)
    check_tables(conn, desired, spec, snapshot)
    warnings: list[str] = []
    if catalog.in_hot_standby(conn):
        warnings.append("connected to a hot standby: read-only, nothing is written here; apply must run on the "
                        "primary (the standby may lag it)")
    live_by_table: dict[tuple[str, str], list] = {}
    for x in snapshot.indexes:
        live_by_table.setdefault((x.schema, x.table), []).append(x)

    # Text first: an entry equal to some live index on its table needs no server. The index
    # of the same name is tried first: after an import it is equal as written, without parsing.
    by_name = {(x.schema, x.name): x for x in snapshot.indexes}

    def settled(d: IndexDef) -> bool:
        x = by_name.get((d.schema, d.name))
        if x is not None and x.table == d.table and x.definition == d:
            return True
        return any(same_definition(d, x.definition) for x in live_by_table.get((d.schema, d.table), ()))

    # Where text is unsure, the server prints the desired index in its own words: asked in
    # one batch, so that every definition it refuses is reported before anything else.
    eq = Equivalence(conn, use_server=use_server)
    unsure = [i for i, d in enumerate(desired) if not settled(d)]
    answers = eq.prefetch(desired[i] for i in unsure)
    errors = []
    for i in unsure:
        r = answers.get(desired[i])
        if r is not None and r.error:
            e = spec.entries[i]
            errors.append(f"{e.where}: index {desired[i].name!r}: PostgreSQL refuses it: {r.error}: {r.sql}")
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ReconcilerError(errors[0] + more, "run `reconciler validate` to see every problem")

    facts_cache: dict[tuple[str, str], TableFacts] = {}

    def table_facts(schema: str, table: str) -> TableFacts:
        key = (schema, table)
        if key not in facts_cache:
            t = snapshot.table(schema, table)
            if t is None:
                facts_cache[key] = TableFacts()
            else:
                parts = tuple(snapshot.partition_tree(schema, table)) if t.kind == "p" else ()
                facts_cache[key] = TableFacts(t.kind, t.rows, t.bytes, parts)
        return facts_cache[key]

    # Only indexes of managed tables take part: an ancestor read for a named partition's facts
    # is not managed, and its partitioned index (every partition's) is never touched from here.
    managed = {(t.schema, t.name) for t in snapshot.tables if t.managed}
    live = [x for x in snapshot.indexes if (x.schema, x.table) in managed]
    changes, drift = diff_indexes(desired, live, same=eq.same, reasons=eq.reasons, prune=spec.prune,
                                  ignored=spec.ignored, table_facts=table_facts)
    if eq.warning:
        warnings.append(eq.warning)
    changes, drift = select_changes(spec, selection, changes, drift)
    detailed = catalog.with_stats(conn, [c.live for c in changes if c.live is not None])
    changes = [replace(c, live=detailed.get(c.live.oid, c.live)) if c.live is not None else c for c in changes]
    if conn.info.transaction_status != 0 and not conn.autocommit:
        conn.rollback()
    return Comparison(spec, desired, snapshot, changes, drift, warnings, eq.asked)


def check_spec(spec: Spec) -> list[IndexDef]:
    """Everything that can be checked without a database (every SQL fragment, volatile
    functions): call it before connecting, so a bad spec is reported as such. Computed from
    the files every time: a cache of parsed specs on disk would be a way to plan something
    other than the spec (whoever can write the cache directory decides)."""
    return normalize_spec(spec)


def make_plan(conn: psycopg.Connection, spec: Spec, *, timeouts: Timeouts = Timeouts(),
              use_server: bool = True, desired: list[IndexDef] | None = None,
              selection: Selection = Selection()) -> tuple[Plan, Comparison]:
    cmp = compare(conn, spec, use_server=use_server, desired=desired, selection=selection)
    plan = build_plan(cmp.changes, cmp.drift, timeouts=timeouts, fingerprint=fingerprint(cmp.snapshot),
                      warnings=tuple(cmp.warnings))
    if selection.partial:
        plan = replace(plan, selection=tuple(str(x) for x in selection.selectors))
    return plan, cmp
