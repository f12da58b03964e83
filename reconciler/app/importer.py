"""`reconciler import`: the live indexes (or a file of CREATE INDEX statements) as IndexDefs
ready for `spec.dump`."""
from __future__ import annotations

import fnmatch
from typing import Callable, Iterable

from ..core.index import IndexDef, LiveIndex
from ..errors import ReconcilerError, SQLFragmentError
from ..normalize import (
    attached_partition_index,
    create_index_statement,
    parse_create_index,
    split_statements,
    volatile_functions,
)
from ..spec.dump import dump_spec
from ..spec.files import read_input


def importable(x: LiveIndex) -> bool:
    """Constraint-backed indexes belong to their constraint, partition children to their parent."""
    return not x.constraint and not x.parent_index


def live_to_spec(indexes: Iterable[LiveIndex], header: str = "") -> str:
    chosen = sorted((x.definition for x in indexes if importable(x)), key=lambda d: (d.schema, d.table, d.name))
    return dump_spec(chosen, header)


def defs_from_sql(path: str, warn: Callable[[str], None]) -> list[IndexDef]:
    """The CREATE INDEX statements of a SQL file as IndexDefs (partition children left out, as
    `import` does); other statements are counted and reported through `warn`."""

    text = read_input(path, "SQL file")
    defs = []
    skipped = 0
    attached: set[tuple[str, str]] = set()   # partition indexes: implied by their parent, as in import
    for line, stmt in split_statements(text):
        partition_index = attached_partition_index(stmt)
        if partition_index is not None:
            attached.add(partition_index)
            continue
        if not create_index_statement(stmt):
            skipped += 1
            continue
        try:
            d = parse_create_index(stmt)
        except SQLFragmentError as e:
            raise ReconcilerError(f"{path}:{line}: {e.message}") from None
        if not d.name:
            raise ReconcilerError(f"{path}:{line}: CREATE INDEX without a name; the spec needs one")
        if d.where is not None:
            bad = volatile_functions(d.where, "predicate")
            if bad:
                warn(f"{path}:{line}: warning: index {d.name!r}: predicate uses {', '.join(bad)}, which is "
                          "not IMMUTABLE; PostgreSQL will refuse this index")
        defs.append(d)
    if skipped:
        warn(f"{path}: skipped {skipped} statement(s) that are not CREATE INDEX")
    return [d for d in defs if (d.schema, d.name) not in attached]


def live_defs(conn, schemas: Iterable[str], tables: Iterable[str]) -> tuple[list[IndexDef], list[str]]:
    """The importable live indexes of every user table (of `schemas` when given), sorted, and the
    `manage.tables` globs the import covered (so prune also covers tables left with no index)."""
    from ..pg import catalog

    snap = catalog.introspect(conn, None, schemas)
    defs = sorted((x.definition for x in snap.indexes if importable(x)), key=lambda d: (d.schema, d.table, d.name))
    managed = sorted({f"{s}.{g}" for s in (schemas or {t.schema for t in snap.tables}) for g in (tables or ["*"])})
    return defs, managed


def filter_defs(defs: list[IndexDef], schemas: Iterable[str], tables: Iterable[str]) -> list[IndexDef]:
    if schemas:
        defs = [d for d in defs if d.schema in schemas]
    if tables:
        defs = [d for d in defs if any(fnmatch.fnmatchcase(d.table, g) for g in tables)]
    return defs
