"""Facts about SQL text that need no parser: which `$n` parameters a statement uses.

Pure (the shared scanner of `core.lexical`), kept out of `normalize` so that reading a query's
parameters does not load sqlglot.
"""
from __future__ import annotations

from .lexical import param_numbers


def placeholder_count(sql: str) -> int:
    """The highest `$n` parameter a statement uses, outside quotes, dollar quotes and comments
    (`EXECUTE name(NULL, ...)` needs one value per parameter).

    >>> placeholder_count("SELECT $2, '$3', $f$ $4 $f$ /* $5 */ FROM t WHERE a$6 = $1")
    2
    """
    return max(param_numbers(sql), default=0)
