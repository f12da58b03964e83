"""Schema globs: one spec entry for every tenant schema.

One job: turn the spec's desired definitions into one definition per concrete schema. An entry
whose schema (or `defaults.schema`) is a glob (`tenant_*`: `*` any run of characters, `?` one
character, everything else literal, case kept) stands for its index in every schema that
matches the glob and has the entry's table, as the catalog says right now: a schema created
after the spec was written is covered by the next run. Index names stay per schema.

An entry naming a schema literally wins over a glob entry for the same index name in that
schema (a per-tenant override); two glob entries giving one schema the same index name is an
error. Pure: decides from the definitions and the (schema, table) pairs it is handed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from ..core.index import IndexDef
from ..errors import SpecError


def is_glob(schema: str) -> bool:
    return "*" in schema or "?" in schema


@lru_cache(maxsize=1024)
def glob_regex(glob: str) -> re.Pattern:
    """`tenant_*` → a regex matching exactly what SQL `LIKE 'tenant\\_%'` matches."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob), re.S)


def glob_like(glob: str) -> str:
    """The glob as a LIKE pattern (escape character backslash), for the catalog read."""
    return "".join("%" if c == "*" else "_" if c == "?" else "\\" + c if c in "%_\\" else c for c in glob)


@dataclass(frozen=True)
class Expansion:
    desired: tuple[IndexDef, ...]     # one per (entry, schema)
    owners: tuple[int, ...]           # the spec entry (position) each desired definition comes from
    unmatched: tuple[int, ...] = ()   # glob entries that matched no schema with their table
    overridden: int = 0               # glob instances left out for a literal entry of the same name

    def matched_schemas(self, entry: int) -> list[str]:
        return sorted({d.schema for d, o in zip(self.desired, self.owners) if o == entry})


def expand(defs: Sequence[IndexDef], schemas: Sequence[str], wheres: Sequence[str],
           tables: Iterable[tuple[str, str]]) -> Expansion:
    """`defs[i]` is entry i's definition, `schemas[i]` its schema as written (maybe a glob),
    `wheres[i]` its file:line; `tables` the managed (schema, table) pairs of the catalog."""
    if not any(is_glob(s) for s in schemas):
        return Expansion(tuple(defs), tuple(range(len(defs))))
    by_table: dict[str, list[str]] = {}
    for s, t in tables:
        by_table.setdefault(t, []).append(s)
    for v in by_table.values():
        v.sort()
    literal = {(d.schema, d.name) for d, s in zip(defs, schemas) if not is_glob(s)}
    claimed: dict[tuple[str, str], int] = {}
    matches: dict[tuple[str, str], list[str]] = {}
    out: list[IndexDef] = []
    owners: list[int] = []
    unmatched: list[int] = []
    overridden = 0
    for i, (d, s) in enumerate(zip(defs, schemas)):
        if not is_glob(s):
            out.append(d)
            owners.append(i)
            continue
        key = (s, d.table)
        found = matches.get(key)
        if found is None:
            rx = glob_regex(s)
            found = matches[key] = [x for x in by_table.get(d.table, ()) if rx.fullmatch(x)]
        if not found:
            unmatched.append(i)
        for schema in found:
            k = (schema, d.name)
            if k in literal:
                overridden += 1
                continue
            j = claimed.get(k)
            if j is not None:
                raise SpecError(f"{wheres[i]}: index {d.name!r}: schema {s!r} matches {schema!r}, where the entry "
                                f"at {wheres[j]} (schema {schemas[j]!r}) already puts an index of this name",
                                "make the globs disjoint, or name the schema literally in one entry to override")
            claimed[k] = i
            out.append(d.relocated(schema))
            owners.append(i)
    return Expansion(tuple(out), tuple(owners), tuple(unmatched), overridden)
