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
"""
from __future__ import annotations

from typing import Iterable

from dataclasses import replace

from ..core.index import IndexDef
from ..normalize import differences, same_definition
from ..pg.canonicalize import Canonicalized, ReadOnlySession, canonicalize
from ..pg.explain_words import Unreadable, explain_words


class Equivalence:
    """`same` and `reasons` for one connection; the server is asked at most once per distinct
    desired definition (in one batch with `prefetch`, else when first needed)."""

    def __init__(self, conn, use_server: bool = True):
        self.conn = conn
        self.use_server = use_server
        self.loose = not use_server        # text alone, casts ignored
        self.warning: str | None = None
        self._words: dict[IndexDef, Canonicalized | None] = {}
        self._read_only: str | None = None      # why the session may not write, once known
        self._explained: dict[tuple[str, str, str], str] = {}   # (schema, table, fragment) → server's words
        self.explained = 0                      # EXPLAINs sent (read-only sessions)
        self._unreadable: str | None = None

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
        try:
            results = canonicalize(self.conn, todo)
        except ReadOnlySession as e:
            self.loose = True
            self._read_only = e.message
            self.warning = (f"{e.message}; expressions and predicates compared in the server's words "
                            "(EXPLAIN, read-only), default operator classes by name")
            return {}
        got = {}
        for pos, d in enumerate(todo):
            r = results.get(pos)
            self._words[d] = r
            if r is not None:
                got[d] = r
        return got

    @property
    def asked(self) -> int:
        """How many definitions the server was asked to print."""
        return len(self._words)

    def words(self, d: IndexDef, *, ask: bool = True) -> IndexDef | None:
        """`d` in the server's words, or None (not asked, refused, or no server)."""
        if d not in self._words and ask:
            self.prefetch([d])
        r = self._words.get(d)
        return r.definition if r is not None and r.error is None else None

    def same(self, desired: IndexDef, live_def: IndexDef) -> bool:
        if same_definition(desired, live_def):
            return True
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
