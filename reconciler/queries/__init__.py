"""Query budgets, pure: EXPLAIN (FORMAT JSON) documents → access paths, verdicts against a
query's `uses` and budgets (`verify`), and the effect of a plan's changes on each query
(plan's what-if). Decides from the JSON and rows it is handed; `pg.explain` fetches them."""
from __future__ import annotations

from .explained import Access, Explained, parse_explain
from .verdict import Verdict, judge, median


def __getattr__(name: str):
    # whatif (and core.plan under it) loads only for plan's what-if: `verify` never needs it
    if name in ("QueryState", "effects_of"):
        from . import whatif

        return getattr(whatif, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Access", "Explained", "QueryState", "Verdict", "effects_of", "judge", "median", "parse_explain"]
