"""Desired definitions vs live indexes → `Change`s and `Drift`, in a stable order.

One job: decide *what* must change. Pure: the caller passes `same(desired, live_def)`, the
equivalence test (text rules and, where they were unsure, the server's own words), so this
module never parses SQL nor talks to a database.

Rules (what a Terraform / pg-schema-diff user expects):
- matched by (schema, name); a changed definition is a `replace`, an INVALID one a `rebuild`;
- a desired index whose definition equals an unlisted live index on the same table is a
  `rename`, not drop + create;
- constraint-backed indexes (PRIMARY KEY, UNIQUE, EXCLUDE) are never dropped or replaced;
  partition children are implied by their parent; ignored names are invisible;
- unlisted indexes on managed tables are dropped only under prune, and always reported as drift;
- an index another backend is building right now is never touched;
- leftovers of an interrupted replace (our deterministic temporary names) are dropped, or
  renamed back when the spec wants exactly the definition they hold (the spec went back).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..core.index import IndexDef, LiveIndex, TableFacts
from ..core.kinds import Action, DriftKind
from ..core.plan import Change, Drift
from .naming import is_leftover, leftover_of

Same = Callable[[IndexDef, IndexDef], bool]
Reasons = Callable[[IndexDef, IndexDef], list[str]]


def diff_indexes(desired: list[IndexDef], live: list[LiveIndex], *, same: Same, reasons: Reasons,
                 prune: bool = False, ignored: Callable[[str], bool] = lambda n: False,
                 table_facts: Callable[[str, str], TableFacts] = lambda s, t: TableFacts()
                 ) -> tuple[list[Change], list[Drift]]:
    """Compute the changes that make `live` match `desired`.

    `live` must hold every index of the managed tables (the caller scopes it); `table_facts`
    gives a table's kind, size and partition tree, carried on changes for the planner.
    """
    visible = [x for x in live if not ignored(x.name)]
    by_name = {(x.schema, x.name): x for x in visible}
    desired_names = {(d.schema, d.name) for d in desired}
    changes: list[Change] = []
    drift: list[Drift] = []
    claimed: set[int] = set()
    unmatched: list[IndexDef] = []

    for d in desired:
        if ignored(d.name):
            drift.append(Drift(DriftKind.IGNORED, d.schema, d.table, d.name,
                               "listed in the spec but matches manage.ignore; left alone"))
            continue
        cur = by_name.get((d.schema, d.name))
        if cur is None:
            unmatched.append(d)
            continue
        claimed.add(cur.oid)
        # the table's facts ride on changes only (a no-op plan has none)
        if cur.being_built:
            drift.append(Drift(DriftKind.BEING_BUILT, cur.schema, cur.table, cur.name,
                               "another session is building this index right now; left alone"))
            continue
        if cur.constraint:
            if (cur.table != d.table) or not same(d, cur.definition):
                drift.append(Drift(DriftKind.CONSTRAINT, cur.schema, cur.table, cur.name,
                                   f"backs constraint {cur.constraint!r} and differs from the spec; "
                                   "constraint-backed indexes are never replaced (change the constraint)"))
            continue
        if cur.table != d.table:
            changes.append(Change(Action.REPLACE, d.schema, d.table, d.name,
                                  (f"the name belongs to an index on table {cur.table!r}; the spec puts it on "
                                   f"{d.table!r}",), d, cur, cur.name,
                                  table_facts(d.schema, d.table)))
            continue
        if cur.parent_index:
            changes.append(Change(Action.REPLACE, d.schema, d.table, d.name,
                                  (f"attached to partitioned index {cur.parent_index}; the spec wants it standalone",),
                                  d, cur, cur.name,
                                  table_facts(d.schema, d.table)))
            continue
        if not same(d, cur.definition):
            changes.append(Change(Action.REPLACE, d.schema, d.table, d.name,
                                  tuple(reasons(cur.definition, d)) or ("definition differs",), d, cur, cur.name,
                                  table_facts(d.schema, d.table)))
        elif not cur.valid or not cur.ready:
            why = ("partitioned index is INVALID: not every partition has its index attached" if cur.partitioned
                   else "index is INVALID (a failed or interrupted build); it is maintained but never used")
            changes.append(Change(Action.REBUILD, d.schema, d.table, d.name, (why,), d, cur, None,
                                  table_facts(d.schema, d.table)))

    # Extras: unclaimed, not constraint-backed, not partition children (implied by their parent).
    extras = [x for x in visible if x.oid not in claimed and not x.constraint and not x.parent_index]
    for d in unmatched:
        parts = table_facts(d.schema, d.table)
        # the old index of an interrupted replace of this very name, renamed aside, holding just
        # what the spec wants again: renaming it back is the whole change
        back = next((x for x in extras if x.schema == d.schema and x.table == d.table and x.valid
                     and not x.being_built and is_leftover(x.name) and leftover_of(x.name, [d.name]) == d.name
                     and same(d, x.definition)), None)
        if back is not None:
            extras.remove(back)
            changes.append(Change(Action.RENAME, d.schema, d.table, d.name,
                                  (f"{back.name!r} is the old index of an interrupted replace and has exactly this "
                                   "definition: renamed back",), d, back, back.name, parts))
            continue
        match = next((x for x in extras if x.schema == d.schema and x.table == d.table and x.valid
                      and (x.schema, x.name) not in desired_names and not x.being_built
                      and not is_leftover(x.name) and same(d, x.definition)), None)
        if match is not None:
            extras.remove(match)
            changes.append(Change(Action.RENAME, d.schema, d.table, d.name, (f"same definition as {match.name!r}",),
                                  d, match, match.name, parts))
        else:
            changes.append(Change(Action.CREATE, d.schema, d.table, d.name, ("not in the database",), d, None, None, parts))

    # An unlisted index on a partition that a new or incomplete partitioned index will adopt
    # (the executor attaches an equivalent index instead of building one) is not an extra.
    adopting = [c.desired for c in changes if c.action in (Action.CREATE, Action.REBUILD, Action.REPLACE)
                and c.table_facts.kind == "p" and c.desired is not None]

    def adopted(x: LiveIndex) -> bool:
        for d in adopting:
            parts = table_facts(d.schema, d.table).partitions
            if any((p.schema, p.table) == (x.schema, x.table) for p in parts) and x.valid and same(replace(d, schema=x.schema, table=x.table), x.definition):
                return True
        return False

    wanted = [d.name for d in desired]
    for x in extras:
        if adopting and adopted(x):
            drift.append(Drift(DriftKind.EXTRA, x.schema, x.table, x.name, "will be attached to its partitioned index"))
            continue
        if x.being_built:
            drift.append(Drift(DriftKind.BEING_BUILT, x.schema, x.table, x.name,
                               "another session is building this index right now; left alone"))
            continue
        origin = leftover_of(x.name, wanted) if is_leftover(x.name) else None
        if origin is not None:
            changes.append(Change(Action.DROP, x.schema, x.table, x.name,
                                  (f"leftover of an interrupted replace of {origin!r}",), None, x))
            continue
        state = "" if x.valid else " (INVALID)"
        drift.append(Drift(DriftKind.EXTRA, x.schema, x.table, x.name, f"not in the spec{state}"))
        if prune:
            changes.append(Change(Action.DROP, x.schema, x.table, x.name, (f"not in the spec{state}; prune is on",),
                                  None, x, None, table_facts(x.schema, x.table)))
    changes.sort(key=lambda c: (c.schema, c.table, c.index, c.action))
    drift.sort(key=lambda d: (d.schema, d.table, d.index, d.kind))
    return changes, drift
