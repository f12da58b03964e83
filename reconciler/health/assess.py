"""Statistics rows → findings, each with its evidence and the spec edit that fixes it.

One job: decide. Everything here is pure: the rows come from `pg.stats`, the thresholds from
the spec, the clock from the server (`NodeStats.now`). The order of the checks matters and is
deliberate: duplicates first (pick the keeper), then unused, then redundant prefixes, so that
two recommendations never remove both an index and the only other index that could replace it
(nor the last index covering a foreign key).

Guards against a false "unused" (the union of what PgHero, pgwatch, pganalyze and
pg-index-health each do, see research/anchors-health-queries-fleet.md §1.2):
- primary key, unique, exclusion-constraint and replica-identity indexes are never unused;
- an index that is the only one covering a foreign key is reported as such, not as removable;
- scans on every replica given count (an index may serve only the read replicas);
- the evidence must be old enough: the youngest statistics reset on any node (and the cluster's
  own reset after a crash) at least `unused_min_stats_age` ago, or on PostgreSQL 16+ a last scan
  that long ago;
- a size floor (`min_unused_size`).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable

from ..core.ident import fit_name, qualified
from ..core.index import IndexDef, KeyPart
from ..errors import SQLFragmentError
from ..reconcile.naming import is_leftover
from . import bloat as bloat_math
from .model import (
    MIN_HIT_RATIO_BLOCKS,
    MIN_SEQ_SCAN_SAMPLE,
    Bloat,
    Finding,
    ForeignKey,
    HealthReport,
    IndexHealth,
    IndexRow,
    NodeStats,
    SpecEdit,
    StatsSnapshot,
    TableHealth,
    TableRow,
    Thresholds,
)

if TYPE_CHECKING:   # the spec (pydantic) is loaded only when a spec file is read, never for its type
    from ..spec import Spec


# ---- small helpers shared with render ----------------------------------------------------------


def human_bytes(n: float) -> str:
    """1536 → '1.5 kB' (powers of 1024, pg_size_pretty's units)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def human_age(seconds: float) -> str:
    """93784 → '1d 2h'; 300 → '5min'."""
    s = int(max(0, seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    if d:
        return f"{d}d {h}h" if h else f"{d}d"
    if h:
        return f"{h}h {m}min" if m else f"{h}h"
    return f"{m}min" if m else f"{s}s"


def leftover_origin(name: str) -> str:
    """Which tool's temporary name an INVALID index carries, as a reader would say it."""
    import re

    if re.search(r"_ccnew\d*$", name):
        return "REINDEX CONCURRENTLY's new copy (_ccnew)"
    if re.search(r"_ccold\d*$", name):
        return "REINDEX CONCURRENTLY's old copy (_ccold)"
    if re.fullmatch(r"index_\d+", name):
        return "pg_repack's index_<oid>"
    if is_leftover(name):
        return "reconciler's temporary name of a replace"
    if name.endswith("_pgschema_new"):
        return "pgschema's temporary name"
    return "a failed or cancelled CREATE INDEX CONCURRENTLY"


# ---- what needs definitions --------------------------------------------------------------------


def comparison_candidates(indexes: Iterable[IndexRow]) -> set[int]:
    """Indexes (oids) that may be a duplicate or a leading prefix of another valid index of their
    table: same method, both partial or both not, and one's keys (attnum, operator class,
    collation, ordering, from pg_index's arrays) a prefix of the other's. Only these definitions
    are read and compared: an exact superset of every duplicate and redundant pair, found
    without reading any definition text."""
    groups: dict[tuple, list[IndexRow]] = defaultdict(list)
    for x in indexes:
        if x.valid and x.ready and x.parent_oid is None and x.key_signature:
            groups[(x.table_oid, x.method, x.partial)].append(x)
    out: set[int] = set()
    for rows in groups.values():
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda r: len(r.key_signature))
        for i, a in enumerate(rows):
            n = len(a.key_signature)
            for b in rows[i + 1:]:
                if b.key_signature[:n] == a.key_signature:
                    out.add(a.oid)
                    out.add(b.oid)
    return out


def bloat_of(x: IndexRow, snap: StatsSnapshot) -> Bloat | None:
    """The index's bloat: exact when pgstatindex was read for it, else the estimate; None for
    methods other than btree and partitioned parents (they have no storage of their own)."""
    if x.method != "btree" or x.partitioned or x.bloat is None:
        return None
    if x.oid in snap.exact:
        return bloat_math.exact(snap.exact[x.oid], x.bloat.fillfactor, snap.block_size)
    return bloat_math.estimate(x.bloat, x.size_bytes, snap.block_size, snap.maxalign)


def bloat_flagged(b: Bloat | None, t: Thresholds) -> bool:
    return b is not None and b.ratio is not None and b.ratio > t.max_bloat_ratio and b.wasted_bytes >= t.min_bloat_size


def bloat_candidates(snap: StatsSnapshot, t: Thresholds) -> list[int]:
    """Oids the estimate flags: `--exact` reads pgstatindex for these only."""
    return [x.oid for x in snap.indexes if x.valid and bloat_flagged(bloat_of(x, snap), t)]


def stale(r: TableRow, t: Thresholds) -> bool:
    """Autovacuum's rule for ANALYZE: more rows changed than 50 + a share of the table."""
    return r.kind in ("r", "m") and r.modified_since_analyze > 50 + t.max_stale_ratio * r.rows


# ---- the assessment ----------------------------------------------------------------------------


def _spec_entries(spec: Spec | None, snap: StatsSnapshot) -> dict:
    """{(schema, index name): spec entry}; an entry with a schema glob (`tenant_*`) stands for
    its index in every schema the glob matches (a literal entry wins, as in the plan)."""
    if spec is None:
        return {}
    from ..reconcile.expand import glob_regex, is_glob

    out = {(e.schema, e.name): e for e in spec.entries if not is_glob(e.schema)}
    globs: dict[str, list] = defaultdict(list)
    for e in spec.entries:
        if is_glob(e.schema):
            globs[e.name].append(e)
    if globs:
        for x in snap.indexes:
            for e in globs.get(x.name, ()):
                if (x.schema, x.name) not in out and glob_regex(e.schema).fullmatch(x.schema):
                    out[(x.schema, x.name)] = e
    return out


_UNSET = object()


class _Context:
    def __init__(self, snap: StatsSnapshot, t: Thresholds, spec: Spec | None):
        self.snap, self.t, self.spec = snap, t, spec
        self.entries = _spec_entries(spec, snap)
        ignored: Callable[[str], bool] = spec.ignored if spec else (lambda n: False)
        self.all_indexes = snap.indexes
        self.indexes = [x for x in snap.indexes if not ignored(x.name)]
        self.listed = {x.oid for x in self.indexes}
        self.by_oid = {x.oid: x for x in snap.indexes}
        self.children: dict[int, list[IndexRow]] = defaultdict(list)
        for x in snap.indexes:
            if x.parent_oid is not None:
                self.children[x.parent_oid].append(x)
        self.by_table: dict[int, list[IndexRow]] = defaultdict(list)
        for x in snap.indexes:
            self.by_table[x.table_oid].append(x)
        self.removed: set[int] = set()       # oids a finding already recommends removing
        self.findings: list[Finding] = []
        self.notes: list[str] = []
        self.replica_scans = [r.scans for r in snap.replicas]
        self.names = {(x.schema, x.name) for x in snap.indexes}
        self._bloat: dict[int, Bloat | None] = {}

    # the whole partition tree under an index (itself included)
    def tree(self, x: IndexRow) -> list[IndexRow]:
        if x.oid not in self.children:
            return [x]
        out, todo = [], [x]
        while todo:
            y = todo.pop()
            out.append(y)
            todo.extend(self.children.get(y.oid, ()))
        return out

    def scans(self, x: IndexRow) -> tuple[int, list[tuple[int, datetime | None]]]:
        """Total scans of the index (its partition tree, every node) and per node and index
        (scans, last scan) pairs, for the last-scan rule."""
        if not self.replica_scans and x.oid not in self.children:
            return x.scans, [(x.scans, x.last_scan)]
        total, per = 0, []
        for y in self.tree(x):
            total += y.scans
            per.append((y.scans, y.last_scan))
            for rs in self.replica_scans:
                s, last = rs.get((y.schema, y.name), (0, None))
                total += s
                per.append((s, last))
        return total, per

    def node_scans(self, x: IndexRow) -> tuple[tuple[str, int], ...]:
        if not self.replica_scans and x.oid not in self.children:
            return ((self.snap.node.name, x.scans),)
        tree = self.tree(x)
        out = [(self.snap.node.name, sum(y.scans for y in tree))]
        for r in self.snap.replicas:
            out.append((r.node.name, sum(r.scans.get((y.schema, y.name), (0, None))[0] for y in tree)))
        return tuple(out)

    def size(self, x: IndexRow) -> int:
        if x.oid not in self.children:
            return x.size_bytes
        return sum(y.size_bytes for y in self.tree(x))

    def bloat(self, x: IndexRow) -> Bloat | None:
        b = self._bloat.get(x.oid, _UNSET)
        if b is _UNSET:
            b = self._bloat[x.oid] = bloat_of(x, self.snap)
        return b

    def definition(self, x: IndexRow) -> IndexDef | None:
        return self.snap.definitions.get(x.oid)

    def where(self, x: IndexRow) -> str | None:
        if not self.entries:
            return None
        e = self.entries.get((x.schema, x.name))
        return e.where if e else None

    def removal(self, x: IndexRow) -> tuple[SpecEdit | None, str | None, str | None]:
        """(spec edit, SQL, fix) that remove an index."""
        e = self.entries.get((x.schema, x.name))
        if e is not None:
            then = ("then `reconciler apply` drops it" if self.spec and self.spec.prune else
                    "then `reconciler apply` with manage.prune: true drops it")
            return SpecEdit("remove", x.name, e.file, e.line), None, then
        drop = f"DROP INDEX {'' if x.partitioned else 'CONCURRENTLY '}{qualified(x.schema, x.name)};"
        return None, drop, None


def assess(snap: StatsSnapshot, t: Thresholds = Thresholds(), spec: Spec | None = None,
           scope: str = "managed") -> HealthReport:
    """Every finding for one database's statistics."""
    cx = _Context(snap, t, spec)
    _invalid(cx)
    _duplicates(cx)
    _unused(cx)
    _redundant(cx)
    _bloated(cx)
    _foreign_keys(cx)
    tables = _tables(cx)
    _nodes_notes(cx)
    indexes = []
    primary = snap.node.name
    simple = not cx.replica_scans
    children, entries, bloats = cx.children, cx.entries, cx._bloat
    new = tuple.__new__   # IndexHealth's own __new__ is a Python function of 6 arguments: 12,000 calls
    for x in cx.indexes:
        if simple and x.oid not in children:   # the common case, 12,000 times: no sums to make
            b = bloats.get(x.oid, _UNSET)
            if b is _UNSET:
                b = cx.bloat(x)
            e = entries.get((x.schema, x.name)) if entries else None
            indexes.append(new(IndexHealth, (x, e is not None, e.where if e else None, x.scans, b,
                                             ((primary, x.scans),))))
            continue
        total, _ = cx.scans(x)
        indexes.append(IndexHealth(x, (x.schema, x.name) in cx.entries, cx.where(x), total, cx.bloat(x),
                                   cx.node_scans(x)))
    order = {"warning": 0, "info": 1}
    findings = sorted(cx.findings, key=lambda f: (order[f.severity], f.kind, f.schema, f.table, f.index or ""))
    nodes = (snap.node,) + tuple(r.node for r in snap.replicas)
    return HealthReport(snap.database, t, nodes, tuple(indexes), tuple(tables), tuple(findings), tuple(cx.notes),
                        scope)


def _invalid(cx: _Context) -> None:
    for x in cx.indexes:
        if x.valid and x.ready:
            continue
        cx.removed.add(x.oid)  # never a keeper nor a cover
        building = x.being_built_by or next((y.being_built_by for y in cx.tree(x) if y.being_built_by), None)
        ev = {"size_bytes": cx.size(x), "valid": x.valid, "ready": x.ready, "origin": leftover_origin(x.name)}
        if building:
            ev["pid"] = building
            cx.findings.append(Finding("invalid_building", "info", x.schema, x.table, x.name,
                                       f"INVALID while backend {building} builds it; left alone", ev))
            continue
        if (x.schema, x.name) in cx.entries:
            cx.findings.append(Finding(
                "invalid_abandoned", "warning", x.schema, x.table, x.name,
                f"INVALID and nobody is building it ({ev['origin']}); it is in the spec at {cx.where(x)}", ev,
                fix="`reconciler apply` rebuilds it (REINDEX INDEX CONCURRENTLY)"))
            continue
        drop = f"DROP INDEX {'' if x.partitioned else 'CONCURRENTLY '}{qualified(x.schema, x.name)};"
        cx.findings.append(Finding(
            "invalid_abandoned", "warning", x.schema, x.table, x.name,
            f"INVALID and nobody is building it: leftover of {ev['origin']}", ev, sql=drop,
            fix="`reconciler maintain` drops it (managed tables)"))


def _keeper_rank(cx: _Context, x: IndexRow) -> tuple:
    total, _ = cx.scans(x)
    return (not x.constraint_backed, (x.schema, x.name) not in cx.entries, -total, x.oid)


def _duplicates(cx: _Context) -> None:
    for table_oid, rows in cx.by_table.items():
        pool = [x for x in rows if x.oid not in cx.removed and x.parent_oid is None
                and x.oid in cx.snap.definitions and x.oid in cx.listed]
        groups: list[list[IndexRow]] = []
        for x in pool:
            d = cx.definition(x)
            for g in groups:
                if _same(cx.definition(g[0]), d):
                    g.append(x)
                    break
            else:
                groups.append([x])
        for g in groups:
            if len(g) < 2:
                continue
            g.sort(key=lambda y: _keeper_rank(cx, y))
            keeper = g[0]
            for x in g[1:]:
                total, _ = cx.scans(x)
                ev = {"same_as": keeper.name, "size_bytes": cx.size(x), "scans": total,
                      "definition": cx.snap.indexdefs.get(x.oid, ""),
                      "keeper_definition": cx.snap.indexdefs.get(keeper.oid, "")}
                if x.constraint_backed:
                    cx.findings.append(Finding(
                        "duplicate", "info", x.schema, x.table, x.name,
                        f"same definition as {keeper.name}, but both back a constraint ({x.constraint})", ev))
                    continue
                cx.removed.add(x.oid)
                edit, sql, then = cx.removal(x)
                cx.findings.append(Finding(
                    "duplicate", "warning", x.schema, x.table, x.name,
                    f"same definition as {keeper.name}; {human_bytes(ev['size_bytes'])} kept up on every write "
                    "for nothing", ev, edit, sql, then))


def _plain(d: IndexDef) -> bool:
    """Nothing in it that the core's canonical form rewrites: column keys without an operator
    class, no predicate. `normalize.canonical_def` returns such a definition unchanged, so two
    plain ones are the same index exactly when they are equal."""
    return d.where is None and not any(k.is_expression or k.opclass for k in d.keys)


def _same(a: IndexDef | None, b: IndexDef | None) -> bool:
    """Same index for the queries it serves: storage options and tablespace do not count."""
    if a is None or b is None:
        return False
    if (a.options, a.tablespace) != (b.options, b.tablespace):
        a = replace(a, options=(), tablespace=None)
        b = replace(b, options=(), tablespace=None)
    if a == b:
        return True
    if _plain(a) and _plain(b):
        return False   # what same_definition would say: their canonical forms are themselves
    from ..normalize import same_definition  # sqlglot: imported only when an expression must be read

    try:
        return same_definition(a, b)
    except SQLFragmentError:
        return False


def _canonical(d: IndexDef) -> IndexDef | None:
    if _plain(d):
        return d   # canonical_def would return it unchanged
    from ..normalize import canonical_def  # sqlglot: imported only when an expression must be read

    try:
        return canonical_def(d)
    except SQLFragmentError:
        return None


def _covers(x: IndexRow, fk: ForeignKey) -> bool:
    """Can the index serve the lookups of the foreign key's checks (`WHERE fkcols = ...` from a
    DELETE or key UPDATE on the referenced table)? Its leading key columns must be the
    foreign-key columns (in any order), with no predicate."""
    n = len(fk.attnums)
    if not (x.valid and x.ready) or x.partial or len(x.key_attnums) < n:
        return False
    if x.method == "hash":
        return n == 1 and len(x.key_attnums) == 1 and x.key_attnums[0] == fk.attnums[0]
    return x.method == "btree" and set(x.key_attnums[:n]) == set(fk.attnums)


def _fks_solely_covered_by(cx: _Context, x: IndexRow) -> list[ForeignKey]:
    out = []
    for fk in cx.snap.foreign_keys:
        if fk.table_oid != x.table_oid or not _covers(x, fk):
            continue
        others = [y for y in cx.by_table[x.table_oid] if y.oid != x.oid and y.oid not in cx.removed
                  and y.parent_oid is None and _covers(y, fk)]
        if not others:
            out.append(fk)
    return out


def _unused(cx: _Context) -> None:
    t, snap = cx.t, cx.snap
    since = [n.stats_since for n in (snap.node, *(r.node for r in snap.replicas))]
    youngest = None if any(s is None for s in since) else max(since)
    age = (snap.node.now - youngest).total_seconds() if youngest else 0.0
    young, small = [], 0
    for x in cx.indexes:
        if x.oid in cx.removed or x.parent_oid is not None or not (x.valid and x.ready):
            continue
        if x.constraint_backed or x.unique or x.replica_identity:
            continue
        total, per = cx.scans(x)
        last = None
        if total > 0:
            # PostgreSQL 16+: scanned, but not for a long time (on every node that scanned it)
            lasts = [lt for s, lt in per if s > 0]
            if not lasts or any(lt is None for lt in lasts):
                continue
            last = max(lasts)
            if (snap.node.now - last).total_seconds() < t.unused_min_stats_age:
                continue
        elif age < t.unused_min_stats_age:
            young.append(x.name)
            continue
        size = cx.size(x)
        if size < t.min_unused_size:
            small += 1
            continue
        ev = {"scans": total, "size_bytes": size, "stats_age_s": int(age),
              "nodes": [n.name for n in (snap.node, *(r.node for r in snap.replicas))]}
        if last is not None:
            ev["last_scan"] = last.isoformat()
        why = (f"last scanned {human_age((snap.node.now - last).total_seconds())} ago" if last is not None else
               f"no scans in {human_age(age)} of statistics on {len(ev['nodes'])} node(s)")
        fks = _fks_solely_covered_by(cx, x)
        if fks:
            ev["foreign_keys"] = [fk.name for fk in fks]
            cx.findings.append(Finding(
                "unused_fk_cover", "info", x.schema, x.table, x.name,
                f"{why}, but it is the only index covering foreign key {', '.join(fk.name for fk in fks)}: keep it",
                ev))
            continue
        cx.removed.add(x.oid)
        edit, sql, then = cx.removal(x)
        cx.findings.append(Finding("unused", "warning", x.schema, x.table, x.name,
                                   f"{why}; {human_bytes(size)}", ev, edit, sql, then))
    if young:
        cx.notes.append(f"{len(young)} index(es) with no scans are not called unused: the statistics cover only "
                        f"{human_age(age)} (unused_min_stats_age is {human_age(t.unused_min_stats_age)})")
    if small:
        cx.notes.append(f"{small} unused index(es) smaller than min_unused_size "
                        f"({human_bytes(t.min_unused_size)}) are not reported")


def _redundant(cx: _Context) -> None:
    for table_oid, rows in cx.by_table.items():
        live = [x for x in rows if x.oid not in cx.removed and x.parent_oid is None and x.valid and x.ready
                and x.method == "btree" and x.oid in cx.snap.definitions]
        if len(live) < 2:
            continue
        canon = {x.oid: _canonical(cx.definition(x)) for x in live}
        for a in live:
            if a.oid in cx.removed or a.unique or a.constraint_backed or a.replica_identity or a.oid not in cx.listed:
                continue
            ca = canon[a.oid]
            if ca is None:
                continue
            covering = [b for b in live if b.oid != a.oid and b.oid not in cx.removed and canon[b.oid] is not None
                        and _prefix_of(ca, canon[b.oid])]
            if not covering:
                continue
            b = min(covering, key=lambda y: (cx.size(y), y.oid))
            total, _ = cx.scans(a)
            bdef = cx.snap.indexdefs.get(b.oid, "")
            ev = {"covered_by": b.name, "size_bytes": cx.size(a), "covered_by_size_bytes": cx.size(b),
                  "scans": total, "definition": cx.snap.indexdefs.get(a.oid, ""), "covered_by_definition": bdef}
            cx.removed.add(a.oid)
            edit, sql, then = cx.removal(a)
            cx.findings.append(Finding(
                "redundant", "warning", a.schema, a.table, a.name,
                f"its keys lead {b.name} ({_keys_text(cx.definition(b))}), which "
                f"serves the same lookups; {human_bytes(ev['size_bytes'])}", ev, edit, sql, then))


def _keys_text(d: IndexDef | None) -> str:
    """`method (keys)` of a definition, printed from its parts: never cut out of the server's
    text, where a schema, table or index name may hold ` USING ` itself."""
    if d is None:
        return "same keys"
    try:
        return f"{d.method} ({', '.join(k.ddl() for k in d.keys)})"
    except (SQLFragmentError, ValueError):   # a part that cannot be printed as SQL (UnsafeSQLValue)
        return "same keys"


def _prefix_of(a: IndexDef, b: IndexDef) -> bool:
    """True when every lookup `a` serves, `b` serves too: a's keys lead b's (same expression,
    collation, operator class and ordering), same predicate, a's INCLUDE columns stored in b,
    and b adds something (more keys, INCLUDE columns, or uniqueness) — else they are equal."""
    if a.method != b.method or a.where != b.where or len(a.keys) > len(b.keys):
        return False
    if tuple(_key(k) for k in a.keys) != tuple(_key(k) for k in b.keys[: len(a.keys)]):
        return False
    stored_b = {k.expr for k in b.keys if not k.is_expression} | set(b.include)
    if not set(a.include) <= stored_b:
        return False
    return len(a.keys) < len(b.keys) or set(a.include) < set(b.include) or (b.unique and not a.unique) or \
        len(b.include) > len(a.include)


def _key(k: KeyPart) -> tuple:
    return (k.expr, k.is_expression, k.collation, k.opclass, k.desc, k.nulls_first)


def _bloated(cx: _Context) -> None:
    t, snap = cx.t, cx.snap
    unknown = 0
    for x in cx.indexes:
        if not (x.valid and x.ready) or x.oid in cx.removed:
            continue
        b = cx.bloat(x)
        if b is None:
            continue
        if b.ratio is None:
            unknown += x.size_bytes >= t.min_bloat_size
            continue
        if not bloat_flagged(b, t):
            continue
        ev = {"bloat_ratio": b.ratio, "wasted_bytes": b.wasted_bytes, "size_bytes": x.size_bytes, "method": b.method}
        how = "measured by pgstatindex" if b.method == "pgstatindex" else "estimated from statistics"
        msg = f"{b.ratio:.0%} of {human_bytes(x.size_bytes)} wasted ({human_bytes(b.wasted_bytes)}, {how})"
        if x.exclusion:
            cx.findings.append(Finding("bloated", "warning", x.schema, x.table, x.name,
                                       msg + "; an exclusion-constraint index cannot be reindexed concurrently",
                                       ev, fix="REINDEX INDEX (takes an ACCESS EXCLUSIVE lock) in a maintenance "
                                               "window"))
            continue
        cx.findings.append(Finding("bloated", "warning", x.schema, x.table, x.name, msg, ev,
                                   sql=f"REINDEX INDEX CONCURRENTLY {qualified(x.schema, x.name)};",
                                   fix=f"`reconciler maintain --index {qualified(x.schema, x.name)}` (or plain "
                                       "`reconciler maintain`, which rebuilds every bloated index)"))
    if unknown:
        cx.notes.append(f"{unknown} btree index(es) of at least {human_bytes(t.min_bloat_size)} have no bloat "
                        "estimate (their tables were never analyzed); `reconciler maintain` analyzes them")
    if snap.exact_note:
        cx.notes.append(snap.exact_note)


def _fk_index_name(fk: ForeignKey, taken: set[tuple[str, str]]) -> str:
    base = "_".join((fk.table, *fk.columns, "idx"))
    name = fit_name(base)
    n = 1
    while (fk.schema, name) in taken:
        name = fit_name(base, f"_{n}")
        n += 1
    return name


def _spec_file_for(cx: _Context, schema: str, table: str) -> str | None:
    if not cx.spec:
        return None
    counts: dict[str, int] = defaultdict(int)
    for e in cx.spec.entries:
        if (e.schema, e.table) == (schema, table):
            counts[e.file] += 1
    if counts:
        return max(counts, key=lambda f: counts[f])
    return cx.spec.files[0] if cx.spec.files else None


def _foreign_keys(cx: _Context) -> None:
    from ..spec.dump import entry_yaml   # the YAML of an entry to add: loaded only when there is one

    tables = {r.oid: r for r in cx.snap.tables}
    taken = set(cx.names) | set(cx.entries)
    for fk in cx.snap.foreign_keys:
        if fk.table_oid not in tables:
            continue
        if any(_covers(y, fk) and y.oid not in cx.removed for y in cx.by_table[fk.table_oid]
               if y.parent_oid is None):
            continue
        name = _fk_index_name(fk, taken)
        taken.add((fk.schema, name))
        d = IndexDef(fk.schema, fk.table, tuple(KeyPart(c) for c in fk.columns), name=name)
        default_schema = "public"
        edit = SpecEdit("add", name, _spec_file_for(cx, fk.schema, fk.table), None,
                        entry_yaml(d, default_schema, comment=f"covers foreign key {fk.name}"))
        row = tables[fk.table_oid]
        ev = {"foreign_key": fk.name, "columns": list(fk.columns), "references": f"{fk.ref_schema}.{fk.ref_table}",
              "table_rows": row.rows}
        cx.findings.append(Finding(
            "fk_unindexed", "warning", fk.schema, fk.table, None,
            f"foreign key {fk.name} ({', '.join(fk.columns)}) → {fk.ref_schema}.{fk.ref_table} has no index: "
            f"every DELETE or key UPDATE on {fk.ref_table} scans {fk.table}", ev, edit,
            sql=d.create_sql(concurrently=True) + ";", fix="add the entry, then `reconciler apply`"))


def _tables(cx: _Context) -> list[TableHealth]:
    t = cx.t
    out = []
    for r in cx.snap.tables:
        if r.kind not in ("r", "m"):
            continue
        blocks = r.index_blocks_hit + r.index_blocks_read
        hit = r.index_blocks_hit / blocks if blocks >= MIN_HIT_RATIO_BLOCKS else None
        scans = r.seq_scans + r.index_scans
        seq = r.seq_scans / scans if scans else None
        rows = r.rows
        judged_seq = seq is not None and rows >= t.min_table_rows and scans >= MIN_SEQ_SCAN_SAMPLE
        is_stale = stale(r, t)
        out.append(TableHealth(r, hit, seq, is_stale))
        if hit is not None and hit < t.min_index_hit_ratio:
            cx.findings.append(Finding(
                "low_hit_ratio", "warning", r.schema, r.name, None,
                f"index hit ratio {hit:.2%} < {t.min_index_hit_ratio:.0%} ({r.index_blocks_read:,} of {blocks:,} "
                "index blocks read from outside shared buffers)",
                {"hit_ratio": round(hit, 4), "blocks_hit": r.index_blocks_hit, "blocks_read": r.index_blocks_read,
                 "indexes_bytes": r.indexes_bytes},
                fix="more shared_buffers / memory, or fewer and smaller indexes on this table"))
        if judged_seq and seq > t.max_seq_scan_ratio:
            cx.findings.append(Finding(
                "seq_scan_heavy", "warning", r.schema, r.name, None,
                f"{seq:.1%} of {scans:,} scans are sequential (> {t.max_seq_scan_ratio:.0%}) on {rows:,} "
                f"rows; {r.seq_tuples_read:,} rows read by them",
                {"seq_scan_ratio": round(seq, 4), "seq_scans": r.seq_scans, "index_scans": r.index_scans,
                 "seq_tuples_read": r.seq_tuples_read, "rows": rows},
                fix="find the queries (pg_stat_statements) and add the index they need to the spec"))
        if is_stale:
            when = r.last_analyze.isoformat() if r.last_analyze else "never"
            cx.findings.append(Finding(
                "stale_statistics", "warning", r.schema, r.name, None,
                f"{r.modified_since_analyze:,} rows modified since the last ANALYZE ({when}) on "
                f"{r.rows:,} rows",
                {"modified_since_analyze": r.modified_since_analyze, "last_analyze": when, "rows": r.rows},
                sql=f"ANALYZE {qualified(r.schema, r.name)};", fix="`reconciler maintain` analyzes it"))
    unjudged = sum(1 for r in cx.snap.tables if r.kind in ("r", "m")
                   and r.rows < t.min_table_rows and r.seq_scans > 0)
    if unjudged:
        cx.notes.append(f"{unjudged} table(s) under min_table_rows ({t.min_table_rows:,} rows) are not judged on "
                        "sequential scans")
    return out


def _nodes_notes(cx: _Context) -> None:
    snap = cx.snap
    if snap.skipped:
        shown = ", ".join(snap.skipped[:5]) + (f" and {len(snap.skipped) - 5} more" if len(snap.skipped) > 5 else "")
        cx.notes.append(f"skipped {len(snap.skipped)} relation(s) another session holds (or waits for) an ACCESS "
                        f"EXCLUSIVE lock on: {shown}")
    for r in snap.replicas:
        if r.missing:
            cx.notes.append(f"replica {r.node.name} lacks {len(r.missing)} index(es) of the primary "
                            f"(e.g. {r.missing[0]}): their scans there count as 0")
    for n in (snap.node, *(r.node for r in snap.replicas)):
        if n.stats_since is None:
            cx.notes.append(f"{n.name}: the age of the statistics is unknown; no index is called unused")


def node_age(n: NodeStats) -> float | None:
    return (n.now - n.stats_since).total_seconds() if n.stats_since else None
