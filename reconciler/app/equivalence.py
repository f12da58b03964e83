"""The one "same index?" test the workflows use: text first, PostgreSQL's own words where the
text rules are unsure.

`same(desired, live_def)` compares by text (strict rules); when they differ, the server prints
`desired` in its own words (`pg.canonicalize`: a temp copy of the table, rolled back) and those
are compared instead. The server's words are kept by value, so a desired definition moved onto
a partition (what the diff asks when a new partitioned index would adopt an existing partition
index) is printed for that partition, once. Without a server (a read-only session), the loose
text rules decide, and `warning` says so.
"""
from __future__ import annotations

from typing import Iterable

from ..core.index import IndexDef
from ..normalize import differences, same_definition
from ..pg.canonicalize import Canonicalized, ReadOnlySession, canonicalize


class Equivalence:
    """`same` and `reasons` for one connection; the server is asked at most once per distinct
    desired definition (in one batch with `prefetch`, else when first needed)."""

    def __init__(self, conn, use_server: bool = True):
        self.conn = conn
        self.use_server = use_server
        self.loose = not use_server        # text alone, casts ignored
        self.warning: str | None = None
        self._words: dict[IndexDef, Canonicalized | None] = {}

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
            self.warning = f"{e.message}; compared by text alone (casts ignored)"
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
            return same_definition(desired, live_def, loose=True)
        server = self.words(desired)
        if server is not None:
            return same_definition(server, live_def)
        return self.loose and same_definition(desired, live_def, loose=True)

    def reasons(self, old: IndexDef, new: IndexDef) -> list[str]:
        """Why `old` (live) is not `new` (desired), with the server's words deciding what differs
        when it was asked."""
        return differences(old, new, detect=self.words(new, ask=False))
