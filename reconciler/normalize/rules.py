"""Canonicalization rules: a tuple of small sqlglot Expr → Expr functions, each with a docstring
and an example (the shape of sqlglot's optimizer), and the comparison key they produce."""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from sqlglot import exp

from .fragments import parse_fragment

# Canonicalization rules: each takes and returns a sqlglot tree (already copied).


def strip_parens(tree: exp.Expression) -> exp.Expression:
    """Drop parentheses: the tree already holds the precedence.

    ``((a > 1))`` → ``a > 1``; PostgreSQL prints predicates wrapped in parentheses.

    >>> canonical("((a > 1))") == canonical("a > 1")
    True
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

    >>> canonical("x IN ('a', 'b')") == canonical("(x = ANY (ARRAY['a', 'b']))")
    True
    >>> canonical("x NOT IN (1, 2)") == canonical("x <> ALL (ARRAY[1, 2])"), canonical("x IN (1)") == canonical("x = 1")
    (True, True)
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
    """``x BETWEEN a AND b`` → ``x >= a AND x <= b`` (how PostgreSQL stores and prints it).

    >>> canonical("x BETWEEN 1 AND 5") == canonical("((x >= 1) AND (x <= 5))")
    True
    """

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Between) and not node.args.get("symmetric"):
            return exp.And(this=exp.GTE(this=node.this.copy(), expression=node.args["low"]),
                           expression=exp.LTE(this=node.this.copy(), expression=node.args["high"]))
        return node

    return tree.transform(rule, copy=False)


def unqualify_columns(tree: exp.Expression) -> exp.Expression:
    """``onek2.stringu1`` → ``stringu1``: an index expression sees one table only, and
    PostgreSQL prints its columns unqualified.

    >>> canonical("onek2.stringu1 > 0") == canonical("stringu1 > 0")
    True
    """
    for col in tree.find_all(exp.Column):
        if col.args.get("table") is not None and not col.args.get("db"):
            col.set("table", None)
    return tree


def not_is_null(tree: exp.Expression) -> exp.Expression:
    """``NOT (x IS NULL)`` → ``x IS NOT NULL``. PostgreSQL keeps the NOT as written, but for a
    scalar x both select the same rows, so the index is the same (for a composite x they differ;
    composite values in a partial-index predicate are not worth a false "changed").

    >>> canonical("NOT (x IS NULL)") == canonical("x IS NOT NULL")
    True
    """

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

    >>> canonical("(email)::text = 'A'", loose=True) == canonical("email = 'A'", loose=True)
    True
    >>> canonical("(email)::text = 'A'") == canonical("email = 'A'")
    False
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
    AND/OR operands flattened and sorted (both are commutative for an index predicate).

    >>> canonical("A > 1 AND b") == canonical('b AND "a" > 1'), canonical('"A" > 1') == canonical("a > 1")
    (True, False)
    """
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
    ``(email)`` as a plain key column), else None.

    >>> bare_column("(email)"), bare_column('"Email"'), bare_column("lower(email)")
    ('email', 'Email', None)
    """
    tree = strip_parens(parse_fragment(text).copy())
    if isinstance(tree, exp.Column) and not tree.table and isinstance(tree.this, exp.Identifier):
        ident = tree.this
        return ident.this if ident.quoted else ident.this.lower()
    return None
