"""`Change`s → `Operation`s: the exact statements, their order, timeouts and hazards.

One job: decide *how* each change runs without blocking the application.
- Every build and drop is CONCURRENTLY (a plain CREATE INDEX holds a SHARE lock that stops all
  writes for the whole build); never IF NOT EXISTS (it would keep an INVALID leftover).
- replace = rename old aside → build new under the final name → drop old (pg-schema-diff
  `sql_generator.go`): the old index serves queries until the new one is VALID.
- Partitioned tables: CIC is impossible on the parent, so `CREATE INDEX ... ON ONLY parent`
  (instant, INVALID), then each partition CONCURRENTLY, then `ATTACH PARTITION`
  (PostgreSQL docs, "Partition Maintenance"). The executor resolves per-partition steps at run
  time so an interrupted run resumes per partition.
- Short statements (rename, ON ONLY, attach, drop of a partitioned index) get the short lock
  timeout: a waiting ACCESS EXCLUSIVE request would queue every later query behind it.
Pure: no database, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.ident import dollar_quote, qualified, quote_ident, quote_literal
from ..core.index import IndexDef
from ..core.hazards import Hazard, HazardCode
from ..core.kinds import Action, OpKind
from ..core.plan import Change, Drift, Operation, Plan, PlannedChange
from .naming import temp_name

# Builds before drops (pg-schema-diff): the old index serves queries until the new one is VALID.
EXECUTION_ORDER = {Action.RENAME: 0, Action.REBUILD: 1, Action.CREATE: 2, Action.REPLACE: 3, Action.DROP: 4}


@dataclass(frozen=True)
class Timeouts:
    lock_ms: int = 3000           # every statement's lock wait, per try
    statement_ms: int = 60000     # quick statements (rename, attach, ON ONLY, drops of parents)
    build_ms: int = 0             # one concurrent build or drop; 0 = no limit


def build_plan(changes: list[Change], drift: list[Drift] = (), *, timeouts: Timeouts = Timeouts(),
               fingerprint: str = "", warnings: tuple[str, ...] = ()) -> Plan:
    ordered = sorted(changes, key=lambda c: (EXECUTION_ORDER[c.action], c.schema, c.table, c.index))
    return Plan(tuple(plan_change(c, timeouts) for c in ordered), fingerprint, tuple(drift), tuple(warnings))


def plan_change(c: Change, t: Timeouts = Timeouts()) -> PlannedChange:
    ops: list[Operation] = []
    if c.action is Action.CREATE:
        ops += _build_ops(c.desired, c, t)
    elif c.action is Action.RENAME:
        ops.append(_rename(c.schema, c.old_name, c.index, c, t))
        ops += _comment_ops(c.desired, c, t)
    elif c.action is Action.DROP:
        ops.append(_drop(c.schema, c.index, c.live.partitioned, c, t))
    elif c.action is Action.REPLACE:
        old = c.live
        aside = temp_name(c.index, "old")
        if old.schema == c.schema:
            ops.append(_rename(c.schema, old.name, aside, c, t))
        if old.partitioned:
            # The new partition indexes take the names PostgreSQL chooses; the old ones must not
            # hold those names meanwhile (they go away with their parent at the end).
            ops.append(Operation(rename_children_sql(c.schema, aside), OpKind.RENAME_CHILDREN, t.lock_ms,
                                 t.statement_ms, False, aside, qualified(c.schema, c.table)))
        ops += _build_ops(c.desired, c, t)
        if old.parent_index:
            pass  # an attached partition index goes away with its parent (dropped under prune)
        elif old.schema == c.schema:
            ops.append(_drop(c.schema, aside, old.partitioned, c, t))
        else:
            ops.append(_drop(old.schema, old.name, old.partitioned, c, t))
    elif c.action is Action.REBUILD:
        if c.live.partitioned:
            ops += _partition_ops(c.desired, c, t)
        else:
            d = c.desired
            ops += _unique_check(d, c, t)
            ops.append(Operation(f"REINDEX INDEX CONCURRENTLY {qualified(c.schema, c.index)}", OpKind.REINDEX,
                                 t.lock_ms, t.build_ms, True, c.index, d.qualified_table))
    return PlannedChange(c, tuple(ops), tuple(hazards(c)))


def _build_ops(d: IndexDef, c: Change, t: Timeouts) -> list[Operation]:
    ops = _unique_check(d, c, t)
    if c.table_facts.kind == "p":
        ops.append(Operation(d.create_sql(concurrently=False, only=True), OpKind.BUILD_PARENT, t.lock_ms,
                             t.statement_ms, False, d.name, d.qualified_table))
        ops += _partition_ops(d, c, t)
    else:
        ops.append(Operation(d.create_sql(concurrently=True), OpKind.BUILD, t.lock_ms, t.build_ms, True, d.name,
                             d.qualified_table))
    if any(k.is_expression for k in d.keys):
        # The planner has no statistics on an expression until ANALYZE (docs: "Statistics Used by the Planner").
        ops.append(Operation(f"ANALYZE {d.qualified_table}", OpKind.ANALYZE, t.lock_ms, t.build_ms, False, d.name,
                             d.qualified_table))
    ops += _comment_ops(d, c, t)
    return ops


def _partition_ops(d: IndexDef, c: Change, t: Timeouts) -> list[Operation]:
    """For each table below the parent, parents first: its index (CONCURRENTLY on a leaf,
    ON ONLY on a sub-partitioned table), then ATTACH to the index on its parent. Indexes below
    the top are left unnamed so PostgreSQL names them as it would for CREATE INDEX on the parent;
    the executor finds an equivalent index already there (a resumed run) and attaches it instead."""
    ops = []
    for p in c.partitions:
        if p.leaf:
            ops.append(Operation(d.create_sql(concurrently=True, name="", table=p.qualified), OpKind.BUILD_PARTITION,
                                 t.lock_ms, t.build_ms, True, d.name, p.qualified, p.parent_qualified))
        else:
            ops.append(Operation(d.create_sql(concurrently=False, only=True, name="", table=p.qualified),
                                 OpKind.BUILD_SUBPARENT, t.lock_ms, t.statement_ms, False, d.name, p.qualified,
                                 p.parent_qualified))
        parent_index = qualified(d.schema, d.name) if p.parent_qualified == d.qualified_table else \
            f"<index on {p.parent_qualified}>"
        ops.append(Operation(f"ALTER INDEX {parent_index} ATTACH PARTITION <index on {p.qualified}>",
                             OpKind.ATTACH, t.lock_ms, t.statement_ms, False, d.name, p.qualified, p.parent_qualified))
    return ops


def rename_children_sql(schema: str, parent: str) -> str:
    """Rename every partition index under `parent` to `<name>_rcold_<md5 prefix>` in one
    statement (atomic, so a lock timeout retries it whole); names stay within 63 bytes."""
    # The name is inside a literal (quote_literal: E'' when needed, so it reads the same under
    # either standard_conforming_strings) inside a dollar-quoted body whose tag the name does
    # not contain: nothing in a name can end either early.
    regclass = quote_literal(qualified(schema, parent))
    body = (" DECLARE r record; base text; BEGIN "
            "FOR r IN SELECT n.nspname, c.relname FROM pg_partition_tree(" + regclass + "::regclass) t "
            "JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.level > 0 AND c.relname !~ '_rcold_[0-9a-f]{8}$' LOOP "
            "base := r.relname; WHILE octet_length(base) > 48 LOOP base := left(base, length(base) - 1); END LOOP; "
            "EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', r.nspname, r.relname, "
            "base || '_rcold_' || left(md5(r.relname), 8)); END LOOP; END ")
    return "DO " + dollar_quote(body)


def _unique_check(d: IndexDef, c: Change, t: Timeouts) -> list[Operation]:
    """A UNIQUE CIC fails only after a full scan; look for duplicate keys first, bounded."""
    if not d.unique:
        return []
    keys = [k.sql if k.is_expression else quote_ident(k.expr) for k in d.keys]
    conds = [] if d.nulls_not_distinct else [f"({k}) IS NOT NULL" for k in keys]
    if d.where is not None:
        conds.append(f"({d.where_sql})")
    sql = (f"SELECT {', '.join(f'({k})' for k in keys)}, count(*) FROM {d.qualified_table}"
           + (f" WHERE {' AND '.join(conds)}" if conds else "")
           + f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))} HAVING count(*) > 1 LIMIT 5")
    return [Operation(sql, OpKind.CHECK_UNIQUE, t.lock_ms, t.build_ms, False, d.name, d.qualified_table)]


def _rename(schema: str, old: str, new: str, c: Change, t: Timeouts) -> Operation:
    return Operation(f"ALTER INDEX {qualified(schema, old)} RENAME TO {quote_ident(new)}", OpKind.RENAME,
                     t.lock_ms, t.statement_ms, False, new, qualified(c.schema, c.table))


def _drop(schema: str, name: str, partitioned: bool, c: Change, t: Timeouts) -> Operation:
    if partitioned:
        # DROP INDEX CONCURRENTLY is refused on partitioned indexes; this one takes ACCESS
        # EXCLUSIVE on the table tree briefly, hence the short lock timeout and retries.
        return Operation(f"DROP INDEX {qualified(schema, name)}", OpKind.DROP, t.lock_ms, t.statement_ms, False, name,
                         qualified(c.schema, c.table))
    return Operation(f"DROP INDEX CONCURRENTLY {qualified(schema, name)}", OpKind.DROP, t.lock_ms, t.build_ms, True,
                     name, qualified(c.schema, c.table))


def _comment_ops(d: IndexDef | None, c: Change, t: Timeouts) -> list[Operation]:
    if d is None or not d.comment:
        return []
    return [Operation(f"COMMENT ON INDEX {qualified(d.schema, d.name)} IS {quote_literal(d.comment)}", OpKind.COMMENT,
                      t.lock_ms, t.statement_ms, False, d.name, d.qualified_table)]


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def hazards(c: Change) -> list[Hazard]:
    out: list[Hazard] = []
    live = c.live
    if c.action in (Action.CREATE, Action.REPLACE, Action.REBUILD):
        facts = c.table_facts
        where = f" ({_size(facts.bytes)}, ~{facts.rows:,} rows)"
        out.append(Hazard(HazardCode.INDEX_BUILD, f"builds an index on {c.table}{where} CONCURRENTLY: no write waits, "
                                         "but it scans the table twice and waits for older transactions"))
        if c.desired is not None and c.desired.unique:
            out.append(Hazard(HazardCode.UNIQUE_BUILD_MAY_FAIL, "a UNIQUE build fails on duplicate keys; apply checks for "
                                                       "duplicates first and stops with a sample"))
        if facts.kind == "p":
            out.append(Hazard(HazardCode.PARTITIONED_BUILD, f"partitioned table: ON ONLY parent, then "
                                                   f"{sum(p.leaf for p in c.partitions)} partition(s) one by "
                                                   "one, then ATTACH"))
    if c.action in (Action.DROP, Action.REPLACE) and live is not None:
        if live.partitioned:
            out.append(Hazard(HazardCode.ACQUIRES_ACCESS_EXCLUSIVE_LOCK, "a partitioned index cannot be dropped "
                                                                "CONCURRENTLY; DROP takes ACCESS EXCLUSIVE briefly "
                                                                "(bounded by the lock timeout)"))
        if c.action is Action.DROP:
            scans = live.idx_scan or 0
            out.append(Hazard(HazardCode.INDEX_DROPPED, f"drops {c.index} ({_size(live.size_bytes)}), not in the spec"))
            if scans > 0:
                out.append(Hazard(HazardCode.DROPS_USED_INDEX, f"{c.index} was used by {scans:,} scans since statistics "
                                                      "were reset; queries may slow down"))
    return out
