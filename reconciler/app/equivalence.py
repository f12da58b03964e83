"""The one "same index?" test the workflows use: text first, PostgreSQL's own words where the
text rules are unsure.

`same(desired, live_def)` compares by text (strict rules); when they differ, the server prints
`desired` in its own words (`pg.canonicalize`: a temp copy of the table, rolled back) and those
are compared instead. The server's words are kept by value, so a desired definition moved onto
a partition (what the diff asks when a new partitioned index would adopt an existing partition
index) is printed for that partition, once.

On a session that must not write (a hot standby, a read-only role) there is no temporary table:
the expressions and predicates of both sides are printed by the server through `EXPLAIN
(VERBOSE)` instead (`pg.explain_words`), and only the default operator classes and collations
are guessed from the built-in types. Where even that fails, the loose text rules decide. The
`warning` says which.

With schema globs one spec entry meets the same live index in every tenant schema. `Sharing`
says which questions have one answer: the text answer for an (entry, live index shape) pair,
and the server's words for an (entry, table columns) pair, moved to each schema. So a
thousand identical schemas cost the work of one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from ..core.index import IndexDef
from ..normalize import differences, same_definition
from ..pg.canonicalize import Canonicalized, ReadOnlySession, canonicalize
from ..pg.explain_words import Unreadable, explain_words


@dataclass(frozen=True)
class Sharing:
    """Which comparisons have one answer across schemas (see the module docstring).

    `owner`: id(desired definition) -> its spec entry; `shape`: id(live definition) -> its
    catalog shape (`pg.catalog`: indexes of one shape differ only in schema, table and name;
    the shape includes the table's columns); `digests`: (schema, table) -> digest of its columns."""

    owner: dict[int, int]
    shape: dict[int, int]
    digests: dict[tuple[str, str], str]

    @classmethod
    def of(cls, snapshot, desired: list[IndexDef], owners) -> "Sharing":
        return cls({id(d): o for d, o in zip(desired, owners)},
                   {id(x.definition): snapshot.shapes[x.oid] for x in snapshot.indexes if x.oid in snapshot.shapes},
                   snapshot.digests)

    def pair(self, desired: IndexDef, live_def: IndexDef) -> tuple | None:
        """The key of "is `desired` the same index as `live_def`" (same schema and table)."""
        o, shape = self.owner.get(id(desired)), self.shape.get(id(live_def))
        if o is None or shape is None or desired.schema != live_def.schema or desired.table != live_def.table:
            return None
        return (o, shape)

    def group(self, desired: IndexDef) -> tuple | None:
        """The key of "`desired` in the server's words": its entry and its table's columns."""
        o, digest = self.owner.get(id(desired)), self.digests.get((desired.schema, desired.table))
        return (o, digest) if o is not None and digest is not None else None


class Equivalence:
    """`same` and `reasons` for one connection; the server is asked at most once per distinct
    desired definition (in one batch with `prefetch`, else when first needed), and once per
    `share.group` when a Sharing is given."""

    def __init__(self, conn, use_server: bool = True, share: Sharing | None = None):
        self.conn = conn
        self.use_server = use_server
        self.loose = not use_server        # text alone, casts ignored
        self.warning: str | None = None
        self._words: dict[IndexDef, Canonicalized | None] = {}
        self._read_only: str | None = None      # why the session may not write, once known
        self._explained: dict[tuple[str, str, str], str] = {}   # (schema, table, fragment) → server's words
        self.explained = 0                      # EXPLAINs sent (read-only sessions)
        self._unreadable: str | None = None
        self.share = share
        self._text: dict[tuple, bool] = {}
        self._same: dict[tuple, bool] = {}
        self._asked = 0

    def text_same(self, desired: IndexDef, live_def: IndexDef) -> bool:
        """`same_definition` by text, answered once per `share.pair`."""
        if desired == live_def:   # equal fields: the common case, and cheaper than the pair's key
            return True
        k = self.share.pair(desired, live_def) if self.share is not None else None
        if k is None:
            return desired == live_def or same_definition(desired, live_def)
        got = self._text.get(k)
        if got is None:
            got = self._text[k] = desired == live_def or same_definition(desired, live_def)
        return got

    def prefetch(self, defs: Iterable[IndexDef]) -> dict[IndexDef, Canonicalized]:
        """Ask the server for every definition in `defs` not asked yet, in one transaction; the
        answers by definition (an answer may be the server's refusal: `.error`)."""
        todo = list(dict.fromkeys(d for d in defs if d not in self._words))
        if not todo:
            return {}
        if not self.use_server:
            self.warning = "compared by text alone (no server canonicalization); casts ignored"
            return {}
        if self.loose:
            return {}
        groups: dict[object, list[IndexDef]] = {}
        for n, d in enumerate(todo):
            k = self.share.group(d) if self.share is not None else None
            groups.setdefault(k if k is not None else ("alone", n), []).append(d)
        reps = [members[0] for members in groups.values()]
        try:
            results = canonicalize(self.conn, reps)
        except ReadOnlySession as e:
            self.loose = True
            self._read_only = e.message
            self.warning = (f"{e.message}; expressions and predicates compared in the server's words "
                            "(EXPLAIN, read-only), default operator classes by name")
            return {}
        self._asked += len(reps)
        got = {}
        for pos, members in enumerate(groups.values()):
            r = results.get(pos)
            for d in members:
                if r is not None and d is not members[0] and r.definition is not None:
                    mine = Canonicalized(r.definition.relocated(d.schema, d.table, d.name), r.error, r.sql)
                else:
                    mine = r
                self._words[d] = mine
                if mine is not None:
                    got[d] = mine
        return got

    @property
    def asked(self) -> int:
        """How many definitions the server was asked to print."""
        return self._asked

    def words(self, d: IndexDef, *, ask: bool = True) -> IndexDef | None:
        """`d` in the server's words, or None (not asked, refused, or no server)."""
        if d not in self._words and ask:
            self.prefetch([d])
        r = self._words.get(d)
        return r.definition if r is not None and r.error is None else None

    def same(self, desired: IndexDef, live_def: IndexDef) -> bool:
        if self.text_same(desired, live_def):
            return True
        k = self.share.pair(desired, live_def) if self.share is not None else None
        if k is None:
            return self._same_unsure(desired, live_def)
        got = self._same.get(k)
        if got is None:
            got = self._same[k] = self._same_unsure(desired, live_def)
        return got

    def _same_unsure(self, desired: IndexDef, live_def: IndexDef) -> bool:
        if self.loose:
            if self._read_only is not None:
                both = self._server_words(desired, live_def)
                if both is not None:
                    return same_definition(*both, defaults=True)
            return same_definition(desired, live_def, loose=True)
        server = self.words(desired)
        if server is not None:
            return same_definition(server, live_def)
        return self.loose and same_definition(desired, live_def, loose=True)

    def _server_words(self, desired: IndexDef, live_def: IndexDef) -> tuple[IndexDef, IndexDef] | None:
        """Both definitions with their expressions and predicates in the server's words
        (EXPLAIN, read-only), or None when the server would not print them."""
        if (desired.schema, desired.table) != (live_def.schema, live_def.table):
            return None
        key = (desired.schema, desired.table)
        fragments = [k.expr for d in (desired, live_def) for k in d.keys if k.is_expression]
        fragments += [d.where for d in (desired, live_def) if d.where is not None]
        todo = list(dict.fromkeys(f for f in fragments if (*key, f) not in self._explained))
        if todo:
            try:
                words = explain_words(self.conn, *key, todo)
            except Unreadable as e:
                self._unreadable = str(e)
                self.warning = (f"{self._read_only}; the server could not print {desired.name!r} read-only "
                                f"({e}): compared by text alone (casts ignored)")
                return None
            self.explained += 1
            self._explained.update({(*key, f): w for f, w in zip(todo, words)})

        def reworded(d: IndexDef) -> IndexDef:
            keys = tuple(replace(k, expr=self._explained[(*key, k.expr)]) if k.is_expression else k for k in d.keys)
            where = self._explained[(*key, d.where)] if d.where is not None else None
            return replace(d, keys=keys, where=where)

        return reworded(desired), reworded(live_def)

    def reasons(self, old: IndexDef, new: IndexDef) -> list[str]:
        """Why `old` (live) is not `new` (desired), with the server's words deciding what differs
        when it was asked."""
        return differences(old, new, detect=self.words(new, ask=False))
