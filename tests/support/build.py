"""Index values for unit tests, without a database: `idx` builds an IndexDef from column names,
`live` wraps one as a LiveIndex (a fresh oid each), the `Change` helpers make one change."""
from __future__ import annotations

import itertools

from reconciler.core.index import IndexDef, KeyPart, LiveIndex, TableFacts
from reconciler.core.plan import Change

_oids = itertools.count(10_000)


def idx(name: str, *cols: str | KeyPart, table: str = "orders", schema: str = "public", **kw) -> IndexDef:
    """``idx("orders_created_idx", "created_at")``: keys given as column names or KeyParts."""
    keys = tuple(c if isinstance(c, KeyPart) else KeyPart(c) for c in cols)
    return IndexDef(schema=schema, table=table, keys=keys, name=name, **kw)


def live(d: IndexDef, **kw) -> LiveIndex:
    """`d` as found in a catalog: a fresh oid unless given, other facts as keywords."""
    return LiveIndex(definition=d, oid=kw.pop("oid", next(_oids)), **kw)


def create(d: IndexDef, facts: TableFacts = TableFacts()) -> Change:
    return Change("create", d.schema, d.table, d.name, ("not in the database",), d, None, None, facts)


def drop(d: IndexDef, **live_kw) -> Change:
    return Change("drop", d.schema, d.table, d.name, ("not in the spec; prune is on",), None, LiveIndex(d, **live_kw))


def replace_change(old: IndexDef, new: IndexDef, facts: TableFacts = TableFacts(), **live_kw) -> Change:
    return Change("replace", new.schema, new.table, new.name, ("changed",), new, LiveIndex(old, **live_kw), old.name,
                  facts)
