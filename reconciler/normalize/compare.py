"""Whole definitions: canonical storage options, canonical IndexDefs, "same definition by text",
and the human reasons two definitions differ."""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable

from sqlglot import exp

from ..core.index import IndexDef, KeyPart
from ..errors import SQLFragmentError
from .fragments import parse_fragment
from .rules import bare_column, canonical, strip_parens

# Whole definitions.

_BOOL_TRUE = {"on", "true", "yes", "1"}
_BOOL_FALSE = {"off", "false", "no", "0"}
_BOOL_OPTIONS = {"fastupdate", "deduplicate_items", "buffering", "autosummarize"}


def canonical_options(options: dict | Iterable[str] | None) -> tuple[tuple[str, str], ...]:
    """Storage options as sorted (name, value) pairs with one spelling per value.

    PostgreSQL keeps reloptions as written (``fastupdate=off`` and ``fastupdate=false`` both
    stay), so booleans and quotes are folded here: ``{"FillFactor": 90}`` → ``(("fillfactor", "90"),)``.
    """
    if not options:
        return ()
    pairs: list[tuple[str, str]] = []
    items = options.items() if isinstance(options, dict) else (o.split("=", 1) for o in options)
    for k, v in items:
        key = str(k).strip().lower()
        if isinstance(v, bool):
            val = "on" if v else "off"
        else:
            val = str(v).strip().strip("'").lower()
        if key in _BOOL_OPTIONS or val in _BOOL_TRUE | _BOOL_FALSE and key != "pages_per_range":
            if val in _BOOL_TRUE:
                val = "on"
            elif val in _BOOL_FALSE:
                val = "off"
        pairs.append((key, val))
    return tuple(sorted(pairs))


# Default operator classes of the built-in types, per method. Only the loose (offline)
# comparison uses this list; with a server, PostgreSQL itself says what is default.
_DEFAULT_OPCLASSES = {
    "btree": {"int2_ops", "int4_ops", "int8_ops", "text_ops", "float4_ops", "float8_ops", "numeric_ops",
              "bool_ops", "char_ops", "name_ops", "oid_ops", "date_ops", "timestamp_ops", "timestamptz_ops",
              "time_ops", "timetz_ops", "interval_ops", "bytea_ops", "uuid_ops", "bpchar_ops", "money_ops",
              "inet_ops", "macaddr_ops", "bit_ops", "varbit_ops", "jsonb_ops", "array_ops", "enum_ops",
              "record_ops", "pg_lsn_ops", "oidvector_ops", "tid_ops", "range_ops", "multirange_ops"},
    "hash": {"int4_ops", "int8_ops", "text_ops", "bpchar_ops", "uuid_ops", "date_ops", "bool_ops", "char_ops",
             "name_ops", "oid_ops", "numeric_ops", "timestamp_ops", "timestamptz_ops", "bytea_ops", "jsonb_ops",
             "enum_ops", "array_ops", "interval_ops", "int2_ops", "float4_ops", "float8_ops"},
    "gin": {"array_ops", "jsonb_ops", "tsvector_ops"},
    "gist": {"box_ops", "circle_ops", "poly_ops", "point_ops", "inet_ops", "range_ops", "tsvector_ops",
             "tsquery_ops", "multirange_ops"},
    "spgist": {"kd_point_ops", "quad_point_ops", "range_ops", "text_ops", "box_ops", "poly_ops", "inet_ops"},
    "brin": set(),
}


def _loose_keypart(k: KeyPart, method: str) -> KeyPart:
    opclass = k.opclass
    if opclass:
        bare = opclass.split(".")[-1].strip('"').lower()
        if bare in _DEFAULT_OPCLASSES.get(method, ()) or bare.endswith("_minmax_ops"):
            opclass = None
    collation = None if k.collation in ("default",) else k.collation
    return replace(k, opclass=opclass, collation=collation)


def canonical_def(d: IndexDef, loose: bool = False, defaults: bool | None = None) -> IndexDef:
    """`d` with expressions and the predicate replaced by their comparison keys.

    Two definitions are the same index when their canonical_defs are equal (strict), or
    probably the same when only loose keys agree. `defaults` (default: `loose`) drops operator
    classes and collations that are the default of the built-in types, which only the loose
    comparison guesses.
    """
    defaults = loose if defaults is None else defaults
    keys = []
    for k in d.keys:
        if k.is_expression:
            k = _hoist_collation(k)
        if k.is_expression:
            col = bare_column(k.expr)
            if col is not None:
                k = replace(k, expr=col, is_expression=False)
            else:
                k = replace(k, expr=canonical(k.expr, loose))
        if k.opclass:
            k = replace(k, opclass=_canonical_opclass(k.opclass))
        if defaults:
            k = _loose_keypart(k, d.method)
        keys.append(k)
    where = canonical(d.where, loose, predicate=True) if d.where is not None else None
    return replace(d, keys=tuple(keys), where=where)


def _hoist_collation(k: KeyPart) -> KeyPart:
    """``((c1::text COLLATE "C"))`` as a key → expression ``c1::text`` with key collation "C":
    PostgreSQL stores a top-level COLLATE of a key expression as the key's collation."""
    tree = strip_parens(parse_fragment(k.expr).copy())
    if isinstance(tree, exp.Collate) and k.collation is None:
        coll = tree.expression
        name = coll.this if isinstance(coll, exp.Identifier) and coll.quoted else coll.name.lower() \
            if isinstance(coll, (exp.Identifier, exp.Column)) else str(coll.this if hasattr(coll, "this") else coll)
        return replace(k, expr=tree.this.sql("postgres"), collation=name)
    return k


def _canonical_opclass(text: str) -> str:
    """Fold an operator class reference: unquoted parts lowercase, whitespace out,
    ``pg_catalog.`` dropped (it is always on the search path)."""
    out = []
    for part in re.findall(r'"(?:[^"]|"")*"|[^".]+', text.split("(")[0].strip()):
        out.append(part[1:-1].replace('""', '"') if part.startswith('"') else part.strip().lower())
    params = ""
    if "(" in text:
        params = "(" + re.sub(r"\s+", "", text.split("(", 1)[1])
    if len(out) == 2 and out[0] == "pg_catalog":
        out = out[1:]
    return ".".join(out) + params


def same_definition(a: IndexDef, b: IndexDef, loose: bool = False, defaults: bool = False) -> bool:
    """True when `a` and `b` define the same index by text alone: equal as written, or equal
    after the strict (or, if asked, loose) rules. `defaults`: strict expressions, but default
    operator classes and collations guessed from the built-in types (for definitions whose
    expressions the server already printed, read-only)."""
    if a == b:
        return True
    if (a.schema, a.table, a.unique, a.method, a.include, a.nulls_not_distinct, a.options, a.tablespace,
            len(a.keys)) != (b.schema, b.table, b.unique, b.method, b.include, b.nulls_not_distinct,
                             b.options, b.tablespace, len(b.keys)) and not loose:
        return False
    try:
        # loose rules drop casts first, so that a typed constant loses the type its one
        # spelling depends on: what the strict rules call equal stays equal
        if canonical_def(a, defaults=defaults) == canonical_def(b, defaults=defaults):
            return True
        return loose and canonical_def(a, True) == canonical_def(b, True)
    except SQLFragmentError:
        return False


def definition_key(d: IndexDef) -> IndexDef:
    """What makes two spec entries (or imported indexes) the same index as far as `validate` is
    concerned: the loose canonical form (names and comments never count). Hashable."""
    return canonical_def(d, loose=True)


def differences(old: IndexDef, new: IndexDef, detect: IndexDef | None = None) -> list[str]:
    """Human reasons why `old` (live) is not `new` (desired): one line per attribute, in the
    words each side was written in. `detect`, when given, is `new` in the server's words and
    decides which attributes differ (casts the server adds are then no reason)."""
    reasons: list[str] = []
    co, cn = canonical_def(old), canonical_def(detect if detect is not None else new)
    if co.unique != cn.unique:
        reasons.append(f"unique {str(co.unique).lower()} → {str(cn.unique).lower()}")
    if co.method != cn.method:
        reasons.append(f"method {co.method} → {cn.method}")
    ordered = new.method == "btree"
    if len(co.keys) != len(cn.keys) or [(k.expr, k.is_expression) for k in co.keys] != \
            [(k.expr, k.is_expression) for k in cn.keys]:
        reasons.append(f"columns ({', '.join(k.ddl(ordered) for k in old.keys)}) → "
                       f"({', '.join(k.ddl(ordered) for k in new.keys)})")
    else:
        for i, (ko, kn) in enumerate(zip(co.keys, cn.keys)):
            label = old.keys[i].sql
            if (ko.desc, ko.nulls_first) != (kn.desc, kn.nulls_first):
                reasons.append(f"order of {label}: {_order(ko)} → {_order(kn)}")
            if ko.opclass != kn.opclass:
                reasons.append(f"operator class of {label}: {ko.opclass or 'default'} → {kn.opclass or 'default'}")
            if ko.collation != kn.collation:
                reasons.append(f"collation of {label}: {ko.collation or 'default'} → {kn.collation or 'default'}")
    if co.include != cn.include:
        reasons.append(f"include ({', '.join(old.include)}) → ({', '.join(new.include)})")
    if co.where != cn.where:
        reasons.append(f"predicate {_show(old.where_sql)} → {_show(new.where_sql)}")
    if co.nulls_not_distinct != cn.nulls_not_distinct:
        reasons.append("NULLS NOT DISTINCT " + ("added" if cn.nulls_not_distinct else "removed"))
    if co.options != cn.options:
        reasons.append(f"storage options {_opts(co.options)} → {_opts(cn.options)}")
    if co.tablespace != cn.tablespace:
        reasons.append(f"tablespace {co.tablespace or 'default'} → {cn.tablespace or 'default'}")
    return reasons


def _order(k: KeyPart) -> str:
    return ("DESC" if k.desc else "ASC") + (" NULLS FIRST" if k.nulls_first else " NULLS LAST")


def _show(text: str | None) -> str:
    return "(none)" if text is None else f"`{text}`"


def _opts(options: tuple[tuple[str, str], ...]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in options) + ")" if options else "(none)"
