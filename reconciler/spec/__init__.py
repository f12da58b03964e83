"""indexes.yaml → validated models with file:line, merged across files; and the way back (dump)."""
from __future__ import annotations

from typing import TYPE_CHECKING

# Names are loaded on first use (PEP 562): `spec.dump` (the YAML of one entry, which `health`
# prints for a finding) must not load pydantic's models, which only reading a spec needs.
_EXPORTS = {
    **dict.fromkeys(("Entry", "Spec", "glob_to_like", "load_spec", "load_spec_text", "query_reference_problems"),
                    "load"),
    **dict.fromkeys(("ColumnSpec", "Defaults", "Health", "IndexSpec", "Manage", "QuerySpec", "SpecFile",
                     "json_schema", "parse_shorthand"), "models"),
    **dict.fromkeys(("QueryEntry", "parse_queries_sql"), "queries_file"),
    **dict.fromkeys(("Selection", "parse_selection"), "select"),
}

if TYPE_CHECKING:
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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
