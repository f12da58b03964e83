"""Query budgets, pure: EXPLAIN (FORMAT JSON) documents → access paths, verdicts against a
query's `uses` and budgets (`verify`), and the effect of a plan's changes on each query
(plan's what-if). Decides from the JSON and rows it is handed; `pg.explain` fetches them."""
from __future__ import annotations

from .explained import Access, Explained, parse_explain
from .verdict import Verdict, judge, median
from .whatif import QueryState, effects_of

__all__ = ["Access", "Explained", "QueryState", "Verdict", "effects_of", "judge", "median", "parse_explain"]
