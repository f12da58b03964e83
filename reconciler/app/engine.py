"""The library's front door: spec + database → comparison → plan. The CLI only calls this.

One job: wire the stages together in the one order that is safe:
  spec files → IndexDefs (every fragment checked) → catalog snapshot (READ ONLY) →
  server canonicalization of whatever text comparison was unsure about (always rolled back) →
  diff → plan.
Everything that can be refused is refused here, before anything is executed.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import psycopg

from ..core.index import IndexDef, TableFacts
from ..core.lifetime import long_lived
from ..core.suggest import nearest
from ..core.plan import Drift, Plan
from ..errors import ReconcilerError
from ..normalize import normalize_spec
from ..pg import catalog
from ..pg.catalog import Snapshot
from ..reconcile.diff import diff_indexes
from ..reconcile.planner import Timeouts, build_plan
from ..reconcile.naming import is_leftover, leftover_of
from ..pg.citus import read_citus
from ..reconcile import expand as expand_mod
from ..reconcile.citus import unsafe_changes, worker_refusal
from ..spec import Selection, Spec, glob_to_like
from .equivalence import Equivalence, Sharing


@dataclass
class Comparison:
    spec: Spec
    desired: list[IndexDef]
    snapshot: Snapshot
    changes: list
    drift: list[Drift]
    warnings: list[str] = field(default_factory=list)
    canonicalized: int = 0          # how many desired indexes the server had to print
    schemas: tuple[str, ...] = ()   # the schemas of the managed tables


def fingerprint(snapshot: Snapshot) -> str:
    """A digest of the managed live indexes: a saved plan is stale when this moved. One
    signature per shape (indexes of a shape differ only in schema, table and name)."""
    sigs: dict[int, str] = {}

    def signature(x) -> str:
        shape = snapshot.shapes.get(x.oid)
        if shape is None:
            return x.definition.relocated("", "").signature()
        sig = sigs.get(shape)
        if sig is None:
            sig = sigs[shape] = x.definition.relocated("", "").signature()
        return sig

    h = hashlib.sha256()
    for item in sorted((d.schema, d.table, d.name, str(x.valid), signature(x), x.parent_index or "")
                       for x in snapshot.indexes for d in (x.definition,)):
        h.update("\0".join(item).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()[:16]


def table_hint(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """``did you mean "reportExecution"?`` for a table that does not exist, or None."""
    near = nearest(table, catalog.table_names(conn, schema))
    return f'did you mean "{near}"?' if near is not None else None


def check_tables(conn: psycopg.Connection, desired: list[IndexDef], entries, snapshot: Snapshot) -> None:
    """A literal schema.table that does not exist is an error (a glob only covers what exists)."""
    known = {(t.schema, t.name) for t in snapshot.tables}
    for d, e in zip(desired, entries):
        if (d.schema, d.table) not in known:
            raise ReconcilerError(f"{e.where}: index {d.name!r}: table: {d.schema}.{d.table} does not exist "
                                  "(names are taken literally, case kept)", table_hint(conn, d.schema, d.table))


def select_changes(spec: Spec, selection: Selection, changes: list, drift: list[Drift],
                   owners: dict | None = None) -> tuple[list, list[Drift]]:
    """The one place `--select` applies (Terraform's -target): the whole spec was compared, only
    the changes of selected entries are kept. A change belongs to the spec entry of its index;
    a leftover of an interrupted replace to the entry it was derived from; an unlisted index
    (a prune drop, extra drift) is selected only by name= or table=."""
    if not selection.partial:
        return changes, drift
    # `owners`: {(schema, index): entry} of the desired definitions (a glob entry once per schema)
    names = [e.name for e in spec.entries]
    entries = owners if owners is not None else {(e.schema, e.name): e for e in spec.entries}

    def chosen(schema: str, index: str, table: str) -> bool:
        owner = leftover_of(index, names) if is_leftover(index) else None
        e = entries.get((schema, owner or index))
        if e is not None:
            return selection.index(schema, e.name, e.table, e.tags)
        return selection.index(schema, index, table)

    return ([c for c in changes if chosen(c.schema, c.index, c.table)],
            [d for d in drift if chosen(d.schema, d.index, d.table)])


def compare(conn: psycopg.Connection, spec: Spec, *, use_server: bool = True,
            desired: list[IndexDef] | None = None, selection: Selection = Selection()) -> Comparison:
    """`desired` is `normalize_spec(spec)` when the caller already checked the spec offline."""
    if desired is None:
        desired = normalize_spec(spec)

    # sizes, scan counts and comments only matter for what changes: read them afterwards. The
    # tables of a schema-glob entry are read in the same set-based query, never per schema.
    patterns = [glob_to_like(g) for g in spec.table_globs] + spec.glob_entry_patterns()
    with long_lived():   # the snapshot lives as long as the comparison: most of a run
        snapshot = catalog.introspect(conn, spec.tables, patterns=patterns, stats=False, sizes=False)
    citus = read_citus(conn)   # None without the extension (docs/citus.md)
    if worker_refusal(citus):
        raise ReconcilerError(worker_refusal(citus), "see docs/citus.md")
    warnings: list[str] = []
    if catalog.in_hot_standby(conn):
        warnings.append("connected to a hot standby: read-only, nothing is written here; apply must run on the "
                        "primary (the standby may lag it)")
    expansion = expand_mod.expand(desired, [e.schema for e in spec.entries], [e.where for e in spec.entries],
                                  [(t.schema, t.name) for t in snapshot.tables if t.named])
    entries = [spec.entries[o] for o in expansion.owners]
    for i in expansion.unmatched:
        e = spec.entries[i]
        warnings.append(f"{e.where}: index {e.name!r}: schema {e.schema!r} matches no schema with a table "
                        f"{e.table!r}; nothing planned for it")
    desired = list(expansion.desired)
    check_tables(conn, desired, entries, snapshot)
    live_by_table: dict[tuple[str, str], list] = {}
    by_name = {}
    for x in snapshot.indexes:
        d = x.definition
        live_by_table.setdefault((d.schema, d.table), []).append(d)
        by_name[(d.schema, d.name)] = d

    # Work shared across schemas: a glob entry's definition meets live indexes of one shape in
    # every tenant schema (see Sharing).
    eq = Equivalence(conn, use_server=use_server, share=Sharing.of(snapshot, desired, expansion.owners))

    # Text first: an entry equal to some live index on its table needs no server. The index
    # of the same name is tried first: after an import it is equal as written, without parsing.
    def settled(d: IndexDef) -> bool:
        x = by_name.get((d.schema, d.name))
        if x is not None and x.table == d.table and eq.text_same(d, x):
            return True
        return any(eq.text_same(d, x) for x in live_by_table.get((d.schema, d.table), ()))

    def ask_server(positions: list[int]) -> None:
        """Where text is unsure, the server prints the desired index in its own words: asked in
        one batch, so that every definition it refuses is reported before anything else."""
        unsure = [i for i in positions if not settled(desired[i])]
        answers = eq.prefetch(desired[i] for i in unsure)
        errors = []
        for i in unsure:
            r = answers.get(desired[i])
            if r is not None and r.error and (not errors or not errors[-1].startswith(entries[i].where + ":")):
                e = entries[i]
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
    managed_live = [x for x in snapshot.indexes if (x.definition.schema, x.definition.table) in managed]

    def diff(schemas: set[str] | None) -> tuple[list, list]:
        at = [i for i, d in enumerate(desired) if schemas is None or d.schema in schemas]
        ask_server(at)
        live = [x for x in managed_live if schemas is None or x.definition.schema in schemas]
        return diff_indexes([desired[i] for i in at], live, same=eq.same, reasons=eq.reasons, prune=spec.prune,
                            ignored=spec.ignored, table_facts=table_facts)

    # Schemas alike (the same entries against live indexes of the same shapes) have the same
    # diff: one of each kind is compared first, and the others only when it differs.
    alike = _alike_schemas(snapshot, desired, expansion.owners)
    if alike is None:
        changes, drift = diff(None)
    else:
        first = {members[0] for members in alike}
        changes, drift = diff(first)
        differing = {c.schema for c in changes} | {d.schema for d in drift}
        rest = {s for members in alike if members[0] in differing for s in members[1:]}
        if rest:
            more_changes, more_drift = diff(rest)
            changes = sorted(changes + more_changes, key=lambda c: (c.schema, c.table, c.index, c.action))
            drift = sorted(drift + more_drift, key=lambda d: (d.schema, d.table, d.index, d.kind))
    if eq.warning:
        warnings.append(eq.warning)
    changes, drift = select_changes(spec, selection, changes, drift,
                                    {(d.schema, d.name): e for d, e in zip(desired, entries)})
    unsafe = unsafe_changes(citus, changes)
    if unsafe:
        more = f" (and {len(unsafe) - 1} more)" if len(unsafe) > 1 else ""
        raise ReconcilerError(f"refused on Citus {citus.version}: {unsafe[0]}{more}; nothing changed",
                              "docs/citus.md says what reconciler does and does not do on a Citus cluster")
    detailed = catalog.with_stats(conn, [c.live for c in changes if c.live is not None])
    changes = [replace(c, live=detailed.get(c.live.oid, c.live)) if c.live is not None else c for c in changes]
    changes = _with_table_sizes(conn, snapshot, changes)
    if conn.info.transaction_status != 0 and not conn.autocommit:
        conn.rollback()
    schemas = tuple(sorted({t.schema for t in snapshot.tables if t.named}))
    return Comparison(spec, desired, snapshot, changes, drift, warnings, eq.asked, schemas)


def _with_table_sizes(conn: psycopg.Connection, snapshot: Snapshot, changes: list) -> list:
    """The changes with their tables' sizes (the planner prints them beside a build): read
    here for the few changed tables, not for every table of the snapshot."""
    oids = {}
    for c in changes:
        t = snapshot.table(c.schema, c.table)
        if t is not None:
            oids[(c.schema, c.table)] = t.oid
    sizes = catalog.table_sizes(conn, oids.values())
    out = []
    for c in changes:
        size = sizes.get(oids.get((c.schema, c.table)))
        out.append(replace(c, table_facts=replace(c.table_facts, bytes=size)) if size is not None else c)
    return out


def _alike_schemas(snapshot: Snapshot, desired: list[IndexDef], owners) -> list[list[str]] | None:
    """Schemas grouped by what their diff depends on: for each desired definition its entry
    and name; for each live index its table, name, shape and catalog state. A schema with a
    partition, an index of unknown shape or a leftover name (whose diff may look beyond the
    schema) is a group of its own. None when nothing is shared (one schema per group)."""
    if len({d.schema for d in desired} | {x.definition.schema for x in snapshot.indexes}) < 2:
        return None   # one schema (or none): nothing to share, and nothing to sign
    sig: dict[str, list] = {}
    alone: set[str] = set()
    for d, o in zip(desired, owners):
        sig.setdefault(d.schema, []).append(("d", d.table, d.name, o))
    for t in snapshot.tables:
        if t.kind == "p" or t.parent_oid is not None:
            alone.add(t.schema)
    for x in snapshot.indexes:
        d = x.definition
        shape = snapshot.shapes.get(x.oid)
        if shape is None or x.parent_index or x.partitioned or is_leftover(d.name):
            alone.add(d.schema)
            continue
        sig.setdefault(d.schema, []).append(("x", d.table, d.name, shape, x.valid, x.ready, x.being_built,
                                              x.constraint or "", x.constraint_type or "", x.table_kind))
    groups: dict[object, list[str]] = {}
    for schema, items in sig.items():
        key = ("alone", schema) if schema in alone else frozenset(items)   # names are unique per schema
        groups.setdefault(key, []).append(schema)
    if len(groups) == len(sig):
        return None
    return [sorted(members) for members in groups.values()]


def check_spec(spec: Spec) -> list[IndexDef]:
    """Everything that can be checked without a database (every SQL fragment, volatile
    functions): call it before connecting, so a bad spec is reported as such. Computed from
    the files every time: a cache of parsed specs on disk would be a way to plan something
    other than the spec (whoever can write the cache directory decides)."""
    with long_lived():   # the definitions live to the end of the command
        return normalize_spec(spec)


def make_plan(conn: psycopg.Connection, spec: Spec, *, timeouts: Timeouts = Timeouts(),
              use_server: bool = True, desired: list[IndexDef] | None = None,
              selection: Selection = Selection()) -> tuple[Plan, Comparison]:
    cmp = compare(conn, spec, use_server=use_server, desired=desired, selection=selection)
    plan = build_plan(cmp.changes, cmp.drift, timeouts=timeouts, fingerprint=fingerprint(cmp.snapshot),
                      warnings=tuple(cmp.warnings))
    plan = replace(plan, schemas=cmp.schemas)
    if selection.partial:
        plan = replace(plan, selection=tuple(str(x) for x in selection.selectors))
    return plan, cmp
