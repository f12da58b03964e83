"""The only sqlglot importer. SQL fragments → canonical comparison keys, and CREATE INDEX text → `IndexDef`.

One job: decide, from text alone, whether two spellings of an expression, a predicate or a
whole index are the same. Everything here is pure (no database). The rules are a tuple of
small functions over sqlglot trees, applied in order, each with a docstring and an example
(the shape of sqlglot's own optimizer, `sqlglot/optimizer/optimizer.py`):

- STRICT_RULES only rewrite what PostgreSQL itself treats as identical (parentheses, identifier
  case folding, `IN (...)` vs `= ANY (ARRAY[...])`, `BETWEEN`, operand order of AND/OR and of
  commutative operators, boolean forms, one spelling per constant; PREDICATE_RULES add what
  holds only where truth counts, `x IS TRUE` vs `x`). Two
  fragments with equal strict keys are the same; unequal keys are *unsure* (a cast PostgreSQL
  added may be the only difference) and the caller asks the server (`pg.canonicalize`).
- LOOSE_RULES add cast stripping: used only when no server can be asked (offline `validate`,
  read-only replicas), and the caller says so.

This module must not import psycopg nor know about connections.
"""
from __future__ import annotations

from .compare import canonical_def, canonical_options, definition_key, differences, same_definition
from .ddl import (
                  attached_partition_index,
                  create_index_statement,
                  key_suffix,
                  method_name,
                  parse_create_index,
)
from .fragments import column_references, parse_fragment, volatile_functions
from .from_spec import normalize_spec, spec_entry_to_def
from .rules import LOOSE_RULES, PREDICATE_RULES, STRICT_RULES, bare_column, canonical
from ..core.lexical import matching_paren, split_top_level
from ..core.sqltext import placeholder_count
from .script import split_statements
from .statement import SIDE_EFFECT_FUNCTIONS, StatementInfo, classify_statement

__all__ = ["LOOSE_RULES", "PREDICATE_RULES", "SIDE_EFFECT_FUNCTIONS", "STRICT_RULES", "StatementInfo", "classify_statement",
           "placeholder_count", "bare_column", "canonical", "canonical_def", "canonical_options",
           "column_references", "definition_key", "differences", "attached_partition_index", "create_index_statement", "key_suffix",
           "matching_paren", "method_name", "normalize_spec", "parse_create_index", "parse_fragment",
           "same_definition", "spec_entry_to_def", "split_statements", "split_top_level", "volatile_functions"]


