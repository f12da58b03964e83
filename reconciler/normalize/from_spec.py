"""Spec entries → IndexDefs, every SQL fragment checked on the way; errors name file:line."""
from __future__ import annotations

from ..core.index import IndexDef, KeyPart
from ..errors import SQLFragmentError
from .compare import canonical_options
from .ddl import method_name
from .fragments import parse_fragment, volatile_functions
from .rules import bare_column

# The spec side


def spec_entry_to_def(entry, shapes: dict | None = None) -> IndexDef:
    """One spec entry (`spec.Entry`) → IndexDef; see `_entry_to_def`. A fragment that exhausts
    recursion or arithmetic while it is read (thousands of nested operators) is an error of
    that entry, with its file:line, like any other.

    `shapes` (a dict the caller keeps for one spec) holds the definitions already made, by
    everything of an entry but its schema, table and name: a spec repeats a few shapes on
    many tables (the same columns, predicate and options), and each shape's fragments are
    checked and normalized once. A shape that fails is never stored, so every entry of it
    fails with its own file:line."""
    try:
        if shapes is None:
            return _entry_to_def(entry)
        ix = entry.spec
        # option values by type and spelling: True == 1 == 1.0 as keys, not as WITH (...) text
        key = (tuple(ix.columns), ix.unique, ix.using, tuple(ix.include), ix.where, ix.nulls_not_distinct,
               tuple((k, type(v), repr(v)) for k, v in ix.with_.items()), ix.tablespace, ix.comment)
        made = shapes.get(key)
        if made is None:
            made = _entry_to_def(entry)
            shapes[key] = made
            return made
        return made.relocated(entry.schema, ix.table, ix.name)
    except (RecursionError, OverflowError, ValueError) as e:
        raise SQLFragmentError(f"{entry.where}: index {entry.name!r}: cannot read this entry's SQL "
                               f"({type(e).__name__}: it is nested too deeply or too large)") from None


def _entry_to_def(entry) -> IndexDef:
    """One spec entry (`spec.Entry`) → IndexDef, checking every SQL fragment on the way.

    Errors name the file, line, index and field: ``indexes.yaml:12: index 'x': where: ...``.
    """
    ix = entry.spec

    def fail(field_name: str, e: SQLFragmentError, *path) -> SQLFragmentError:
        where = entry.where_of(*path) if hasattr(entry, "where_of") else entry.where
        return SQLFragmentError(f"{where}: index {ix.name!r}: {field_name}: {e.message}", e.hint)

    keys = []
    for n, col in enumerate(ix.key_columns):
        desc = col.order == "desc"
        nulls_first = None if col.nulls is None else col.nulls == "first"
        if col.expression is not None:
            label = f"columns[{n}].expression"
            try:
                parse_fragment(col.expression, "expression")
                _refuse_volatile(col.expression, "expression")
            except SQLFragmentError as e:
                raise fail(label, e, "columns", n, "expression") from None
            bare = bare_column(col.expression)
            if bare is not None:
                keys.append(KeyPart(bare, False, col.collation, col.opclass, desc, nulls_first))
            else:
                text = col.expression.strip()
                keys.append(KeyPart(text, True, col.collation, col.opclass, desc, nulls_first, sql=text))
        else:
            keys.append(KeyPart(col.column, False, col.collation, col.opclass, desc, nulls_first))
    where = None
    if ix.where is not None:
        where = ix.where.strip()
        try:
            parse_fragment(where, "predicate")
            _refuse_volatile(where, "predicate")
        except SQLFragmentError as e:
            raise fail("where", e, "where") from None
    return IndexDef(schema=entry.schema, table=ix.table, keys=tuple(keys), unique=ix.unique,
                    method=method_name(ix.using), include=tuple(ix.include), where=where,
                    nulls_not_distinct=ix.nulls_not_distinct, options=canonical_options(ix.with_),
                    tablespace=ix.tablespace if ix.tablespace not in ("pg_default",) else None, name=ix.name,
                    comment=ix.comment)


def _refuse_volatile(text: str, what: str) -> None:
    bad = volatile_functions(text, what)
    if bad:
        where = "index predicate" if what == "predicate" else "index expression"
        raise SQLFragmentError(
            f"{what} {text!r} uses {', '.join(bad)}, which is not IMMUTABLE; PostgreSQL refuses it "
            f"(functions in {where} must be marked IMMUTABLE)",
            "an index cannot follow the clock: index the column itself (e.g. (workspaceId, createdAt DESC)) "
            "and keep the date condition in the query, or use a fixed date literal")


def normalize_spec(spec) -> list[IndexDef]:
    """Every entry of a merged `spec.Spec` → IndexDef (first error raised)."""
    shapes: dict = {}
    return [spec_entry_to_def(e, shapes) for e in spec.entries]
