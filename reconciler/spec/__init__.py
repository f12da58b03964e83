"""indexes.yaml → validated models with file:line, merged across files; and the way back (dump)."""
from __future__ import annotations

from .load import Entry, Spec, glob_to_like, load_spec, load_spec_text, query_reference_problems
from .models import (
                     ColumnSpec,
                     Defaults,
                     Health,
                     IndexSpec,
                     Manage,
                     QuerySpec,
                     SpecFile,
                     json_schema,
                     parse_shorthand,
)
from .queries_file import QueryEntry, parse_queries_sql
from .select import Selection, parse_selection

__all__ = ["ColumnSpec", "Defaults", "Entry", "Health", "IndexSpec", "Manage", "QueryEntry", "QuerySpec", "Selection",
           "Spec", "SpecFile", "glob_to_like", "json_schema", "load_spec", "load_spec_text", "parse_queries_sql",
           "parse_selection", "query_reference_problems"]
