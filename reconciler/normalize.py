"""SQL fragments → canonical comparison keys, and CREATE INDEX text → `IndexDef`.

One job: decide, from text alone, whether two spellings of an expression, a predicate or a
whole index are the same. Everything here is pure (no database). The rules are a tuple of
small functions over sqlglot trees, applied in order, each with a docstring and an example
(the shape of sqlglot's own optimizer, `sqlglot/optimizer/optimizer.py`):

- STRICT_RULES only rewrite what PostgreSQL itself treats as identical (parentheses, identifier
  case folding, `IN (...)` vs `= ANY (ARRAY[...])`, `BETWEEN`, operand order of AND/OR). Two
  fragments with equal strict keys are the same; unequal keys are *unsure* (a cast PostgreSQL
  added may be the only difference) and the caller asks the server (`catalog.canonicalize`).
- LOOSE_RULES add cast stripping: used only when no server can be asked (offline `validate`,
  read-only replicas), and the caller says so.

This module must not import psycopg nor know about connections.
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Callable, Iterable

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from .errors import SQLFragmentError
from .model import IndexDef, KeyPart

_DIALECT = Postgres()

# Functions PostgreSQL would refuse in an index (not IMMUTABLE). sqlglot turns some of them
# into dedicated nodes (now() → CurrentTimestamp), the rest stay Anonymous.
_VOLATILE_NODES = {
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentTimestamp: "now()/CURRENT_TIMESTAMP",
    exp.CurrentTime: "CURRENT_TIME",
    exp.Rand: "random()",
}
for _name, _label in (("CurrentUser", "CURRENT_USER"), ("CurrentSchema", "CURRENT_SCHEMA"),
                      ("SessionUser", "SESSION_USER"), ("Localtime", "LOCALTIME"),
                      ("Localtimestamp", "LOCALTIMESTAMP"), ("CurrentTimestampLTZ", "CURRENT_TIMESTAMP"),
                      ("Uuid", "gen_random_uuid()")):  # sqlglot reads gen_random_uuid() as Uuid
    if hasattr(exp, _name):
        _VOLATILE_NODES[getattr(exp, _name)] = _label
_VOLATILE_FUNCTIONS = frozenset(
    """now clock_timestamp statement_timestamp transaction_timestamp timeofday random
    random_normal setseed gen_random_uuid uuid_generate_v1 uuid_generate_v4 uuidv4 uuidv7 nextval
    currval lastval current_setting localtime localtimestamp current_date current_time
    current_timestamp current_user session_user current_schema current_role txid_current
    pg_backend_pid inet_client_addr""".split()
)


def _fail(what: str, text: str, message: str, hint: str | None = None) -> SQLFragmentError:
    return SQLFragmentError(f"{what} {text!r}: {message}", hint)


@lru_cache(maxsize=65536)
def parse_fragment(text: str, what: str = "expression") -> exp.Expression:
    """Parse one SQL expression. Refuse statements, several expressions and comments.

    >>> parse_fragment('"deletedAt" IS NULL').sql("postgres")
    '"deletedAt" IS NULL'
    """
    try:
        tokens = _DIALECT.tokenize(text)
    except TokenError as e:
        raise _fail(what, text, f"cannot be read as SQL ({e})") from None
    if not tokens:
        raise _fail(what, text, "is empty")
    for tok in tokens:
        if tok.comments:
            raise _fail(what, text, "contains an SQL comment; a fragment must be one expression",
                        "remove the -- or /* */ comment")
        if tok.token_type == TokenType.SEMICOLON:
            raise _fail(what, text, "contains ';': a fragment must be one expression, not statements")
    try:
        trees = _DIALECT.parser().parse(tokens, text)
    except ParseError as e:
        msg = str(e).splitlines()[0]
        raise _fail(what, text, f"is not a valid SQL expression ({msg})") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise _fail(what, text, "must be exactly one SQL expression")
    tree = trees[0]
    if isinstance(tree, (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Set, exp.Use, exp.Alias)) or \
            type(tree).__name__ in {"Create", "Drop", "Insert", "Update", "Delete", "Alter", "Transaction"}:
        raise _fail(what, text, f"is a {type(tree).__name__.upper()} statement, not an expression")
    if tree.find(exp.Query):
        raise _fail(what, text, "contains a subquery; PostgreSQL does not allow subqueries in an index")
    return tree


def volatile_functions(text: str, what: str = "expression") -> list[str]:
    """Names of functions in `text` that are not IMMUTABLE (PostgreSQL refuses them in an index).

    >>> volatile_functions("createdAt >= CURRENT_DATE - INTERVAL '1 month'")
    ['CURRENT_DATE']
    """
    found: list[str] = []
    for node in parse_fragment(text, what).walk():
        label = _VOLATILE_NODES.get(type(node))
        if label is None and isinstance(node, exp.Anonymous) and str(node.this).lower() in _VOLATILE_FUNCTIONS:
            label = f"{str(node.this).lower()}()"
        if label is None and isinstance(node, exp.Column) and not node.table and \
                not node.this.quoted and node.name.lower() in ("current_date", "localtimestamp", "localtime",
                                                               "current_role", "current_catalog"):
            label = node.name.upper()
        if label and label not in found:
            found.append(label)
    return found


def column_references(text: str, what: str = "expression") -> list[tuple[str, bool]]:
    """Every column a fragment names, as (name as PostgreSQL resolves it, was it quoted)."""
    out = []
    for col in parse_fragment(text, what).find_all(exp.Column):
        ident = col.this
        if isinstance(ident, exp.Identifier):
            out.append((ident.this if ident.quoted else ident.this.lower(), bool(ident.quoted)))
    return out


# ---------------------------------------------------------------------------------------------
# Canonicalization rules: each takes and returns a sqlglot tree (already copied).


def strip_parens(tree: exp.Expression) -> exp.Expression:
    """Drop parentheses: the tree already holds the precedence.

    ``((a > 1))`` → ``a > 1``; PostgreSQL prints predicates wrapped in parentheses.
    """
    while isinstance(tree, exp.Paren):
        tree = tree.this
        tree.parent = None
    for paren in list(tree.find_all(exp.Paren)):
        paren.replace(paren.this)
    return tree


def in_to_any(tree: exp.Expression) -> exp.Expression:
    """``x IN (a, b)`` → ``x = ANY (ARRAY[a, b])``, ``x NOT IN (...)`` → ``x <> ALL (ARRAY[...])``.

    PostgreSQL stores IN lists as ScalarArrayOpExpr and prints them back as ``= ANY (ARRAY[...])``;
    a one-element list becomes a plain ``=``.
    """

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
            items = node.expressions
            if len(items) == 1:
                return exp.EQ(this=node.this, expression=items[0])
            return exp.EQ(this=node.this, expression=exp.Any(this=exp.Array(expressions=items)))
        if isinstance(node, exp.Not) and isinstance(node.this, exp.In) and node.this.expressions:
            inner = node.this
            if len(inner.expressions) == 1:
                return exp.NEQ(this=inner.this, expression=inner.expressions[0])
            return exp.NEQ(this=inner.this, expression=exp.All(this=exp.Array(expressions=inner.expressions)))
        if isinstance(node, exp.Anonymous) and str(node.this).upper() == "ALL" and len(node.expressions) == 1:
            return exp.All(this=node.expressions[0])
        if isinstance(node, (exp.Any, exp.All)) and isinstance(node.this, exp.Paren):
            return node.__class__(this=node.this.this)
        return node

    return tree.transform(rule, copy=False)


def between_to_range(tree: exp.Expression) -> exp.Expression:
    """``x BETWEEN a AND b`` → ``x >= a AND x <= b`` (how PostgreSQL stores and prints it)."""

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Between) and not node.args.get("symmetric"):
            return exp.And(this=exp.GTE(this=node.this.copy(), expression=node.args["low"]),
                           expression=exp.LTE(this=node.this.copy(), expression=node.args["high"]))
        return node

    return tree.transform(rule, copy=False)


def unqualify_columns(tree: exp.Expression) -> exp.Expression:
    """``onek2.stringu1`` → ``stringu1``: an index expression sees one table only, and
    PostgreSQL prints its columns unqualified."""
    for col in tree.find_all(exp.Column):
        if col.args.get("table") is not None and not col.args.get("db"):
            col.set("table", None)
    return tree


def not_is_null(tree: exp.Expression) -> exp.Expression:
    """``NOT (x IS NULL)`` → ``x IS NOT NULL``. PostgreSQL keeps the NOT as written, but for a
    scalar x both select the same rows, so the index is the same (for a composite x they differ;
    composite values in a partial-index predicate are not worth a false "changed")."""

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Not) and isinstance(node.this, exp.Is) and isinstance(node.this.expression, exp.Null):
            # sqlglot reads `x IS NOT NULL` as Is(negate=True): NOT flips the negation
            inner = node.this
            return exp.Is(this=inner.this, expression=inner.expression, negate=not inner.args.get("negate"))
        return node

    return tree.transform(rule, copy=False)


def strip_casts(tree: exp.Expression) -> exp.Expression:
    """(loose) ``(email)::text`` → ``email``, ``'A'::"Status"`` → ``'A'``.

    PostgreSQL adds these casts when it prints an expression over varchar or enum columns. They
    are only safe to ignore when the server cannot be asked; the strict rules keep them.
    """

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.Cast, exp.TryCast)) and isinstance(node.this, (exp.Column, exp.Literal, exp.Array, exp.Paren, exp.Cast)):
            return node.this
        return node

    return tree.transform(rule, copy=False)


STRICT_RULES: tuple[Callable[[exp.Expression], exp.Expression], ...] = (
    strip_parens,
    unqualify_columns,
    in_to_any,
    between_to_range,
    not_is_null,
)
LOOSE_RULES = (strip_casts,) + STRICT_RULES + (strip_casts,)


def _key(node) -> str:
    """A structural, unambiguous rendering of a tree: identifiers folded the PostgreSQL way,
    AND/OR operands flattened and sorted (both are commutative for an index predicate)."""
    if node is None:
        return "~"
    if isinstance(node, list):
        return "[" + ",".join(_key(n) for n in node) + "]"
    if not isinstance(node, exp.Expression):
        return repr(node.lower() if isinstance(node, str) else node)
    if isinstance(node, exp.Identifier):
        return '"' + (node.this if node.quoted else node.this.lower()) + '"'
    if isinstance(node, exp.Literal):
        return ("S" if node.is_string else "N") + repr(node.this)
    if isinstance(node, (exp.And, exp.Or)):
        operands = list(node.flatten())
        return type(node).__name__ + "{" + ",".join(sorted(_key(o) for o in operands)) + "}"
    if isinstance(node, exp.Anonymous):
        name = node.this
        if isinstance(name, exp.Identifier):
            fname = name.this if name.quoted else name.this.lower()
        else:
            fname = str(name).lower()
        return f"F:{fname}(" + ",".join(_key(a) for a in node.expressions) + ")"
    if isinstance(node, exp.DataType):
        return "T:" + node.sql("postgres").lower()
    parts = []
    for k in sorted(node.args):
        v = node.args[k]
        if v is None or v is False or v == []:
            continue
        parts.append(f"{k}={_key(v)}")
    return type(node).__name__ + "(" + ",".join(parts) + ")"


@lru_cache(maxsize=65536)
def canonical(text: str, loose: bool = False) -> str:
    """The comparison key of an expression or predicate; equal keys mean the same SQL.

    >>> canonical("status IN ('A', 'B')") == canonical("(status = ANY (ARRAY['A', 'B']))")
    True
    """
    tree = parse_fragment(text).copy()
    for rule in LOOSE_RULES if loose else STRICT_RULES:
        tree = rule(tree)
    return _key(tree)


def bare_column(text: str) -> str | None:
    """The column name when an expression is just a column reference (PostgreSQL stores
    ``(email)`` as a plain key column), else None."""
    tree = strip_parens(parse_fragment(text).copy())
    if isinstance(tree, exp.Column) and not tree.table and isinstance(tree.this, exp.Identifier):
        ident = tree.this
        return ident.this if ident.quoted else ident.this.lower()
    return None


# ---------------------------------------------------------------------------------------------
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


def canonical_def(d: IndexDef, loose: bool = False) -> IndexDef:
    """`d` with expressions and the predicate replaced by their comparison keys.

    Two definitions are the same index when their canonical_defs are equal (strict), or
    probably the same when only loose keys agree.
    """
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
        if loose:
            k = _loose_keypart(k, d.method)
        keys.append(k)
    where = canonical(d.where, loose) if d.where is not None else None
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


def same_definition(a: IndexDef, b: IndexDef, loose: bool = False) -> bool:
    """True when `a` and `b` define the same index by text alone: equal as written, or equal
    after the strict (or, if asked, loose) rules."""
    if a == b:
        return True
    if (a.schema, a.table, a.unique, a.method, a.include, a.nulls_not_distinct, a.options, a.tablespace,
            len(a.keys)) != (b.schema, b.table, b.unique, b.method, b.include, b.nulls_not_distinct,
                             b.options, b.tablespace, len(b.keys)) and not loose:
        return False
    try:
        return canonical_def(a, loose) == canonical_def(b, loose)
    except SQLFragmentError:
        return False


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


# ---------------------------------------------------------------------------------------------
# CREATE INDEX statements (for `import --from-sql` and for reading pg_get_indexdef's key list).

# PostgreSQL accepts these old method names and stores the new one.
_METHOD_ALIASES = {"rtree": "gist"}
_WORD = re.compile(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*', re.A)


def unquote(name: str) -> str:
    name = name.strip()
    if name.startswith('"') and name.endswith('"') and len(name) >= 2:
        return name[1:-1].replace('""', '"')
    return name.lower()


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses, brackets and quotes."""
    parts, depth, quote, start, i = [], 0, None, 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    i += 2
                    continue
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def matching_paren(text: str, open_pos: int) -> int:
    """Index of the ')' closing the '(' at open_pos (quotes respected), or -1."""
    depth, quote, i = 0, None, open_pos
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


_SUFFIX = re.compile(r"""
    \s*(?:COLLATE\s+(?P<coll>(?:"(?:[^"]|"")*"|[\w$]+)(?:\.(?:"(?:[^"]|"")*"|[\w$]+))?))?
    \s*(?P<opc>(?!(?:ASC|DESC|NULLS)\b)(?:"(?:[^"]|"")*"|[\w$]+)(?:\.(?:"(?:[^"]|"")*"|[\w$]+))?(?:\s*\((?P<params>.*)\))?)?
    \s*(?P<dir>ASC|DESC)?
    \s*(?:NULLS\s+(?P<nulls>FIRST|LAST))?\s*$""", re.I | re.X | re.S)


def parse_key_suffix(suffix: str) -> tuple[str | None, str | None, bool, bool | None]:
    """`` COLLATE "C" text_pattern_ops DESC NULLS LAST`` → (collation, opclass, desc, nulls_first)."""
    m = _SUFFIX.match(suffix)
    if not m:
        raise SQLFragmentError(f"cannot read index key options {suffix.strip()!r}")
    coll = m.group("coll")
    collation = None
    if coll:
        collation = ".".join(unquote(p) for p in _WORD.findall(coll))
        if collation.startswith("pg_catalog."):
            collation = collation[len("pg_catalog."):]
    opc = m.group("opc")
    opclass = re.sub(r"\s+", " ", opc.strip()) if opc else None
    desc = (m.group("dir") or "").upper() == "DESC"
    nulls = m.group("nulls")
    nulls_first = None if nulls is None else nulls.upper() == "FIRST"
    return collation, opclass, desc, nulls_first


def split_key_element(element: str) -> tuple[str, str]:
    """Split one key element of CREATE INDEX into (expression or column, option suffix).

    ``lower(email) text_pattern_ops DESC`` → (``lower(email)``, `` text_pattern_ops DESC``);
    ``"createdAt" DESC NULLS LAST`` → (``"createdAt"``, `` DESC NULLS LAST``).
    """
    s = element.strip()
    if s.startswith("("):
        end = matching_paren(s, 0)
        return s[: end + 1], s[end + 1:]
    m = re.match(r'(?:"(?:[^"]|"")*"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[\w$]+))*', s)
    if not m:
        raise SQLFragmentError(f"cannot read index key {element!r}")
    rest = s[m.end():]
    if rest.lstrip().startswith("("):  # a function call
        open_pos = m.end() + (len(rest) - len(rest.lstrip()))
        end = matching_paren(s, open_pos)
        return s[: end + 1], s[end + 1:]
    return s[: m.end()], rest


def keypart_from_element(element: str) -> KeyPart:
    expr, suffix = split_key_element(element)
    collation, opclass, desc, nulls_first = parse_key_suffix(suffix)
    if expr.startswith("("):
        inner = expr[1:-1].strip()
        col = bare_column(inner)
        if col is not None:
            return KeyPart(col, False, collation, opclass, desc, nulls_first)
        return KeyPart(inner, True, collation, opclass, desc, nulls_first, sql=inner)
    if re.fullmatch(r'"(?:[^"]|"")*"|[\w$]+', expr):
        return KeyPart(unquote(expr), False, collation, opclass, desc, nulls_first)
    return KeyPart(expr, True, collation, opclass, desc, nulls_first, sql=expr)


_CREATE = re.compile(r"""^\s*CREATE\s+(?P<unique>UNIQUE\s+)?INDEX\s+(?P<conc>CONCURRENTLY\s+)?
    (?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>(?!ON\b)(?:"(?:[^"]|"")*"|[\w$]+)\s+)?ON\s+(?P<only>ONLY\s+)?
    (?P<table>(?:"(?:[^"]|"")*"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[\w$]+))?)\s*
    (?:USING\s+(?P<method>[\w$]+)\s*)?\(""", re.I | re.X | re.S)


def parse_create_index(sql: str, default_schema: str = "public") -> IndexDef:
    """Read one CREATE INDEX statement (as a person writes it or as pg_get_indexdef prints it)."""
    text = sql.strip().rstrip(";").strip()
    m = _CREATE.match(text)
    if not m:
        raise SQLFragmentError(f"not a CREATE INDEX statement: {text[:80]!r}")
    open_pos = m.end() - 1
    close = matching_paren(text, open_pos)
    if close < 0:
        raise SQLFragmentError(f"unbalanced parentheses in {text[:80]!r}")
    keys = tuple(keypart_from_element(e) for e in split_top_level(text[open_pos + 1: close]))
    rest = text[close + 1:]
    include: tuple[str, ...] = ()
    nnd = False
    options: tuple[tuple[str, str], ...] = ()
    tablespace = None
    where = None
    while rest.strip():
        r = rest.lstrip()
        up = r.upper()
        if up.startswith("INCLUDE"):
            o = r.index("(")
            c = matching_paren(r, o)
            include = tuple(unquote(x) for x in split_top_level(r[o + 1: c]))
            rest = r[c + 1:]
        elif re.match(r"NULLS\s+NOT\s+DISTINCT", up):
            nnd = True
            rest = r[re.match(r"NULLS\s+NOT\s+DISTINCT", up).end():]
        elif re.match(r"NULLS\s+DISTINCT", up):
            rest = r[re.match(r"NULLS\s+DISTINCT", up).end():]
        elif up.startswith("WITH"):
            o = r.index("(")
            c = matching_paren(r, o)
            options = canonical_options({p.split("=", 1)[0]: p.split("=", 1)[1] if "=" in p else "true"
                                         for p in split_top_level(r[o + 1: c])})
            rest = r[c + 1:]
        elif up.startswith("TABLESPACE"):
            mm = re.match(r'TABLESPACE\s+("(?:[^"]|"")*"|[\w$]+)', r, re.I)
            tablespace = unquote(mm.group(1))
            rest = r[mm.end():]
        elif up.startswith("WHERE"):
            where = r[5:].strip()
            rest = ""
        else:
            raise SQLFragmentError(f"cannot read {r[:40]!r} in {text[:80]!r}")
    parts = [unquote(p) for p in _WORD.findall(m.group("table"))]
    schema, table = (parts[0], parts[1]) if len(parts) == 2 else (default_schema, parts[0])
    name = unquote(m.group("name")) if m.group("name") else ""
    if where is not None:
        parse_fragment(where, "predicate")
    for k in keys:
        if k.is_expression:
            parse_fragment(k.expr, "expression")
    return IndexDef(schema=schema, table=table, keys=keys, unique=bool(m.group("unique")),
                    method=_METHOD_ALIASES.get((m.group("method") or "btree").lower(), (m.group("method") or "btree").lower()), include=include, where=where,
                    nulls_not_distinct=nnd, options=options, tablespace=tablespace, name=name)


# ---------------------------------------------------------------------------------------------
# The spec side


def spec_entry_to_def(entry) -> IndexDef:
    """One spec entry (`spec.Entry`) → IndexDef, checking every SQL fragment on the way.

    Errors name the file, line, index and field: ``indexes.yaml:12: index 'x': where: ...``.
    """
    ix = entry.spec

    def fail(field_name: str, e: SQLFragmentError) -> SQLFragmentError:
        return SQLFragmentError(f"{entry.where}: index {ix.name!r}: {field_name}: {e.message}", e.hint)

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
                raise fail(label, e) from None
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
            raise fail("where", e) from None
    return IndexDef(schema=entry.schema, table=ix.table, keys=tuple(keys), unique=ix.unique,
                    method=_METHOD_ALIASES.get(ix.using, ix.using), include=tuple(ix.include), where=where,
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
    return [spec_entry_to_def(e) for e in spec.entries]
