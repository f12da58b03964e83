"""indexes.yaml → validated models with file:line, merged across files; and the way back (dump)."""
from __future__ import annotations

from .load import Entry, Spec, glob_to_regex, load_spec, load_spec_text
from .models import (
                     ColumnSpec,
                     Defaults,
                     IndexSpec,
                     Manage,
                     SpecFile,
                     json_schema,
                     parse_shorthand,
)

__all__ = ["ColumnSpec", "Defaults", "Entry", "IndexSpec", "Manage", "Spec", "SpecFile", "glob_to_regex",
           "json_schema", "load_spec", "load_spec_text", "parse_shorthand"]


