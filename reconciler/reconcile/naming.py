"""The one scheme for temporary index names: derived from the index name only, so a killed run
can be finished by the next one."""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

NAME_MAX = 63
_LEFTOVER = re.compile(r"_rc(old|new)_[0-9a-f]{8}$")


def temp_name(name: str, kind: str = "old") -> str:
    """The deterministic name an index is renamed to while its replacement is built.

    Derived from the index name only, so a run that was killed can be finished by the next one;
    kept within PostgreSQL's 63-byte limit (the tail of the name makes room for the hash).
    """
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    suffix = f"_rc{kind}_{digest}"
    head = name.encode()[: NAME_MAX - len(suffix)].decode("utf-8", "ignore")
    return head + suffix


def is_leftover(name: str) -> bool:
    return bool(_LEFTOVER.search(name))


def leftover_of(name: str, candidates: Iterable[str]) -> str | None:
    """The desired name a temporary name was derived from, if any."""
    for c in candidates:
        if temp_name(c, "old") == name or temp_name(c, "new") == name:
            return c
    return None
