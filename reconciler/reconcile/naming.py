"""The one scheme for temporary index names: derived from the index name only, so a killed run
can be finished by the next one."""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from ..core.ident import fit_name

_LEFTOVER = re.compile(r"_rc(old|new)_[0-9a-f]{8}$")


def temp_name(name: str, kind: str = "old") -> str:
    """The deterministic name an index is renamed to while its replacement is built.

    Derived from the index name only, so a run that was killed can be finished by the next one;
    kept within PostgreSQL's 63-byte limit (the tail of the name makes room for the hash).
    """
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    suffix = f"_rc{kind}_{digest}"
    return fit_name(name, suffix)


def is_leftover(name: str) -> bool:
    return bool(_LEFTOVER.search(name))


def leftover_of(name: str, candidates: Iterable[str]) -> str | None:
    """The desired name a temporary name was derived from, if any."""
    for c in candidates:
        if temp_name(c, "old") == name or temp_name(c, "new") == name:
            return c
    return None


# -- names PostgreSQL chooses -------------------------------------------------------------------
# Cleanup after a failed or interrupted run may drop an INVALID index only when this run created
# it, or when its name is exactly one of the names PostgreSQL would have chosen for our
# statement (compared as text, on a managed table): never a pattern built from a name.

_NAMEDATALEN = 64


def _clip(name: str, nbytes: int) -> str:
    """The longest prefix of `name` within `nbytes` bytes, cut on a character boundary (the
    server's pg_mbcliplen, for a UTF-8 database)."""
    return name.encode()[:max(nbytes, 0)].decode("utf-8", "ignore")


def make_object_name(name1: str, name2: str | None, label: str | None) -> str:
    """PostgreSQL's makeObjectName(): name1[_name2][_label] within 63 bytes, the longer of
    name1 and name2 truncated first."""
    n1, n2 = len(name1.encode()), len(name2.encode()) if name2 else 0
    overhead = (1 if n2 > 0 else 0) + (len(label) + 1 if label else 0)
    avail = _NAMEDATALEN - 1 - overhead
    while n1 + n2 > avail:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    out = _clip(name1, n1)
    if name2 is not None:
        out += "_" + _clip(name2, n2)
    if label:
        out += "_" + label
    return out


def chosen_names(name1: str, name2: str | None, label: str, passes: int = 20) -> list[str]:
    """Every name ChooseRelationName() may pick: label, label1, label2, ... (the first one free)."""
    return [make_object_name(name1, name2, label if i == 0 else f"{label}{i}") for i in range(passes)]


def reindex_leftover_names(index: str) -> list[str]:
    """The names REINDEX CONCURRENTLY gives the copy it builds (`_ccnew`) and, once swapped, the
    old index (`_ccold`): what a failed REINDEX of `index` leaves behind."""
    return chosen_names(index, None, "ccnew") + chosen_names(index, None, "ccold")


def index_column_names(columns: Iterable[str | None]) -> list[str]:
    """ChooseIndexColumnNames(): each key or INCLUDE column by name, `expr` for an expression
    (None), made unique with a number."""
    out: list[str] = []
    for col in columns:
        orig = col if col is not None else "expr"
        cur, i = orig, 1
        while cur in out:
            suffix = str(i)
            cur = _clip(orig, _NAMEDATALEN - 1 - len(suffix)) + suffix
            i += 1
        out.append(cur)
    return out


def unnamed_index_names(table: str, columns: Iterable[str | None]) -> list[str]:
    """The names PostgreSQL chooses for `CREATE INDEX ON table (...)` without a name
    (ChooseIndexName with ChooseIndexNameAddition): `table_col1_col2_idx`, then idx1, ..."""
    addition = ""
    for name in index_column_names(columns):
        if addition:
            addition += "_"
        addition += _clip(name, _NAMEDATALEN - 1)
        if len(addition.encode()) >= _NAMEDATALEN:
            break
    return chosen_names(table, addition, "idx")
