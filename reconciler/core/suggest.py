""""Did you mean": the name a user most likely meant, for every error that names an unknown one
(a spec key, a table, a column, a hazard code, an index in `uses`). Pure.
"""
from __future__ import annotations

from typing import Iterable


def nearest(name: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate equal to `name` but for case (an unquoted SQL name folded to lowercase is
    the usual mistake), else the closest spelling above `cutoff`, else None.

    >>> nearest("reportexecution", ["report", "reportExecution"]), nearest("uniqe", ["unique", "using"])
    ('reportExecution', 'unique')
    >>> nearest("zzzz", ["unique"]) is None
    True
    """
    pool = list(candidates)
    folded = [c for c in pool if c.lower() == name.lower() and c != name]
    if folded:
        return folded[0]
    import difflib   # only when an error names an unknown name: not at every start

    near = difflib.get_close_matches(name, pool, n=1, cutoff=cutoff)
    return near[0] if near else None


def did_you_mean(name: str, candidates: Iterable[str], *, cutoff: float = 0.6, quote: str = "'") -> str:
    """`` (did you mean 'x'?)`` for the nearest candidate, or "".

    >>> did_you_mean("indexs", ["indexes", "version"])
    " (did you mean 'indexes'?)"
    """
    near = nearest(name, candidates, cutoff=cutoff)
    return f" (did you mean {quote}{near}{quote}?)" if near is not None else ""
