"""`--select`: which spec entries a run is about (phased rollout, like Terraform's -target).

One job: parse selectors (`tag=NAME`, `name=GLOB`, `table=GLOB`; several are a union) and say
whether an index or a query is selected. The caller applies the selection in one place, after
the whole spec was validated. Pure.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterable

from ..errors import ReconcilerError

KINDS = ("tag", "name", "table")


@dataclass(frozen=True)
class Selector:
    kind: str
    pattern: str

    def __str__(self) -> str:
        return f"{self.kind}={self.pattern}"


@dataclass(frozen=True)
class Selection:
    """A union of selectors; the empty selection selects everything."""

    selectors: tuple[Selector, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.selectors)

    def describe(self) -> str:
        return " ".join(f"--select {s}" for s in self.selectors)

    def index(self, schema: str, name: str, table: str, tags: Iterable[str] = ()) -> bool:
        if not self.selectors:
            return True
        tags = tuple(tags)
        for s in self.selectors:
            if s.kind == "tag" and s.pattern in tags:
                return True
            if s.kind == "name" and (fnmatch.fnmatchcase(name, s.pattern)
                                     or fnmatch.fnmatchcase(f"{schema}.{name}", s.pattern)):
                return True
            if s.kind == "table" and (fnmatch.fnmatchcase(f"{schema}.{table}", s.pattern) if "." in s.pattern
                                      else fnmatch.fnmatchcase(table, s.pattern)):
                return True
        return False


def parse_selection(texts: Iterable[str], known_tags: Iterable[str] = ()) -> Selection:
    """`["tag=phase-1", "name=idx_*"]` → Selection. A tag no index carries is an error: a typo
    would otherwise select nothing and report "no changes"."""
    out = []
    tags = set(known_tags)
    for t in texts:
        kind, sep, pattern = t.partition("=")
        kind = kind.strip().lower()
        if not sep or kind not in KINDS or not pattern.strip():
            raise ReconcilerError(f"--select {t!r}: expected tag=NAME, name=GLOB or table=GLOB",
                                  "repeat --select for a union, e.g. --select tag=phase-1 --select name=idx_*")
        pattern = pattern.strip()
        if kind == "tag" and pattern not in tags:
            known = ", ".join(sorted(tags)) or "none"
            raise ReconcilerError(f"--select {t!r}: no index of the spec has tag {pattern!r} (tags: {known})")
        out.append(Selector(kind, pattern))
    return Selection(tuple(out))
