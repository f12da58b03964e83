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


_SEPARATORS = "_-."


def collapse(defs: Sequence[IndexDef], tables: Iterable[tuple[str, str]]) -> tuple[list[IndexDef], dict[str, str]]:
    """The way back (`import --collapse`): schemas whose indexes are the same but for the schema
    become one glob entry per index. A group of two or more identical schemas is collapsed only
    when some glob (their common prefix, cut after a separator, then `*`) matches exactly those
    schemas among all that have the group's tables, so expanding the glob gives back exactly
    the imported indexes. Returns the definitions (collapsed ones under the glob, once) and
    {schema: glob} for the schemas collapsed."""
    by_schema: dict[str, list[IndexDef]] = {}
    for d in defs:
        by_schema.setdefault(d.schema, []).append(d)
    having: dict[str, set[str]] = {}
    for s, t in tables:
        having.setdefault(t, set()).add(s)

    def key(items: list[IndexDef]) -> tuple:
        return tuple(sorted((d.table, d.name, d.comment or "", d.where_sql or "", d.relocated("")) for d in items))

    groups: dict[tuple, list[str]] = {}
    for s, items in by_schema.items():
        groups.setdefault(key(items), []).append(s)
    globs: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort()
        prefix = _common_prefix(members)
        cut = max(prefix.rfind(c) for c in _SEPARATORS) + 1
        candidates = [prefix[:cut], prefix] if 0 < cut < len(prefix) else [prefix]
        group_tables = {d.table for d in by_schema[members[0]]}
        reach = set().union(*(having.get(t, set()) for t in group_tables))
        for head in candidates:
            if not head or is_glob(head):
                continue
            glob = head + "*"
            rx = glob_regex(glob)
            if {s for s in reach if rx.fullmatch(s)} == set(members) and glob not in globs.values():
                globs.update({s: glob for s in members})
                break
    first: dict[str, str] = {}
    for s, g in sorted(globs.items()):
        first.setdefault(g, s)
    out: list[IndexDef] = []
    for d in defs:
        glob = globs.get(d.schema)
        if glob is None:
            out.append(d)
        elif first[glob] == d.schema:
            out.append(d.relocated(glob))
    return out, globs


def _common_prefix(names: Sequence[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
