"""Canonicalization rules: a tuple of small sqlglot Expr → Expr functions, each with a docstring
and an example (the shape of sqlglot's optimizer), and the comparison key they produce.

Every strict rule is a general fact about PostgreSQL, never a special case of one spelling:
two fragments whose strict keys are equal select the same rows (a predicate) or compute the
same values (an expression) on every table they can be written for. Where a rule needs a
type to be sure (a literal PostgreSQL reads by the column it meets), it does not fire and the
caller asks the server."""
from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Callable

from sqlglot import exp

from .fragments import parse_fragment

# Canonicalization rules: each takes and returns a sqlglot tree (already copied).


def _bottom_up(node: exp.Expression, fn: Callable[[exp.Expression], exp.Expression]) -> exp.Expression:
    """Apply `fn` to every node, children first (sqlglot's `transform` does not descend into a
    node a rule has just built, so rules that build nodes from rewritten parts need this)."""
    if isinstance(node, exp.DataType):
        return node     # a type's modifiers (numeric(10,2)) are not values
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _bottom_up(value, fn))
        elif isinstance(value, list):
            node.set(key, [_bottom_up(v, fn) if isinstance(v, exp.Expression) else v for v in value])
    return fn(node)


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


# -- literals: one spelling per value -----------------------------------------------------------

_UNICODE_ESCAPE = r"{e}(?:{e}|\+([0-9A-Fa-f]{{6}})|([0-9A-Fa-f]{{4}}))"


def _unicode_value(node: exp.UnicodeString) -> str | None:
    """The value of ``U&'d\\0061t'`` (``UESCAPE`` honoured), or None when it is malformed."""
    esc = node.args.get("escape")
    char = esc.this if isinstance(esc, exp.Literal) else "\\"
    if len(char) != 1:
        return None
    text = node.this
    pattern = re.compile(_UNICODE_ESCAPE.format(e=re.escape(char)))

    def one(m: re.Match) -> str:
        code = m.group(1) or m.group(2)
        return chr(int(code, 16)) if code else char

    out = pattern.sub(one, text)
    # a lone escape character left over is an error in PostgreSQL: do not guess
    return None if char in pattern.sub("", text) else out


def string_spellings(tree: exp.Expression) -> exp.Expression:
    """``E'it\\'s'``, ``$$it's$$``, ``U&'it\\0027s'`` → ``'it''s'``: one value, one literal.

    PostgreSQL reads all of them into the same constant and prints it as a plain quoted string.
    """

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.ByteString, exp.RawString)) and isinstance(node.this, str) \
                and not node.args.get("is_bytes"):
            return exp.Literal.string(node.this)
        if isinstance(node, exp.UnicodeString):
            value = _unicode_value(node)
            return exp.Literal.string(value) if value is not None else node
        return node

    return tree.transform(rule, copy=False)


_INT_RANGES = {"int2": (-(2 ** 15), 2 ** 15 - 1), "int4": (-(2 ** 31), 2 ** 31 - 1), "int8": (-(2 ** 63), 2 ** 63 - 1)}
_INT_TYPES = {exp.DataType.Type.SMALLINT: "int2", exp.DataType.Type.INT: "int4", exp.DataType.Type.BIGINT: "int8"}
_TYPE_OF = {"int2": exp.DataType.Type.SMALLINT, "int4": exp.DataType.Type.INT, "int8": exp.DataType.Type.BIGINT,
            "numeric": exp.DataType.Type.DECIMAL}
_BOOL_WORDS = {**{w: True for w in ("t", "tr", "tru", "true", "y", "ye", "yes", "on", "1")},
               **{w: False for w in ("f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0")}}
_INTEGER = re.compile(r"\s*([+-]?)\s*(\d+)\s*\Z")
_DECIMAL = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*\Z")
_DATE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})\s*\Z")
_TIMESTAMP = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?\s*\Z")


def _typed(value: str, type_name: str) -> exp.Cast:
    """The one spelling of a constant of a built-in type: ``'<canonical text>'::type``."""
    return exp.Cast(this=exp.Literal.string(value), to=exp.DataType(this=_TYPE_OF[type_name]))


def _number(text: str) -> exp.Expression | None:
    """A numeric literal as PostgreSQL types it: an integer that fits in int4 is int4, else
    int8, else numeric; anything with a point or an exponent is numeric (scale kept: ``1.50``
    and ``1.5`` print differently, and ``(x * 1.50)::text`` is not ``(x * 1.5)::text``)."""
    m = _INTEGER.match(text)
    if m:
        value = int(m.group(1) + m.group(2))
        for name in ("int4", "int8"):
            low, high = _INT_RANGES[name]
            if low <= value <= high:
                return _typed(str(value), name)
        return _typed(str(value), "numeric")
    if _DECIMAL.match(text):
        try:
            return _typed(format(Decimal(text.strip()), "f"), "numeric")
        except InvalidOperation:
            return None
    return None




def _array_items(text: str) -> list[str | None] | None:
    """The elements of a one-dimensional array literal ``'{a,"b c",NULL}'``, or None when it is
    anything more (nested, bounds, malformed): then the rule does not fire."""
    body = text.strip()
    if len(body) < 2 or body[0] != "{" or body[-1] != "}":
        return None
    body = body[1:-1]
    if not body.strip():
        return None        # an empty array has no element to type it by
    items: list[str | None] = []
    i, n = 0, len(body)
    while True:
        while i < n and body[i].isspace():
            i += 1
        if i < n and body[i] == '"':
            i += 1
            buf = []
            while i < n and body[i] != '"':
                if body[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(body[i])
                i += 1
            if i >= n:
                return None
            i += 1
            items.append("".join(buf))
        else:
            start = i
            while i < n and body[i] not in ',"{}\\':
                i += 1
            word = body[start:i].strip()
            if not word or (i < n and body[i] in '"{}\\'):
                return None
            items.append(None if word.upper() == "NULL" else word)
        while i < n and body[i].isspace():
            i += 1
        if i >= n:
            return items
        if body[i] != ",":
            return None
        i += 1


def _constant(text: str | None, to: exp.DataType) -> exp.Expression | None:
    """``'<text>'::to`` in its one spelling, or None when this rule cannot be sure of the value
    (a type with a modifier, a time zone, a format that depends on a setting)."""
    if text is None:
        return None
    kind = to.this
    if to.expressions and kind is not exp.DataType.Type.ARRAY:
        return None        # timestamp(3), numeric(10,2): the modifier rounds the value
    if kind in _INT_TYPES:
        m = _INTEGER.match(text)
        if not m:
            return None
        value, name = int(m.group(1) + m.group(2)), _INT_TYPES[kind]
        low, high = _INT_RANGES[name]
        if not low <= value <= high:
            return None
        return _typed(str(value), name)
    if kind is exp.DataType.Type.DECIMAL:
        m = _INTEGER.match(text)
        if m:
            return _typed(str(int(m.group(1) + m.group(2))), "numeric")
        return _number(text) if _DECIMAL.match(text) else None
    if kind is exp.DataType.Type.BOOLEAN:
        value = _BOOL_WORDS.get(text.strip().lower())
        return None if value is None else exp.Boolean(this=value)
    if kind is exp.DataType.Type.DATE:
        m = _DATE.match(text)
        try:
            day = datetime.date(*map(int, m.groups())) if m else None
        except ValueError:
            return None
        return exp.Cast(this=exp.Literal.string(day.isoformat()), to=to.copy()) if day else None
    if kind is exp.DataType.Type.TIMESTAMP:
        m = _TIMESTAMP.match(text)
        if not m:
            return None
        y, mo, d, h, mi, s, frac = m.groups()
        try:
            at = datetime.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                                   int((frac or "0").ljust(6, "0")))
        except ValueError:
            return None
        shown = at.strftime("%Y-%m-%d %H:%M:%S") + (f".{at.microsecond:06d}".rstrip("0") if at.microsecond else "")
        return exp.Cast(this=exp.Literal.string(shown), to=to.copy())
    if kind is exp.DataType.Type.ARRAY and len(to.expressions) == 1:
        element = to.expressions[0]
        items = _array_items(text)
        if items is None or not isinstance(element, exp.DataType):
            return None
        out = []
        for item in items:
            if item is None:
                out.append(exp.Cast(this=exp.Null(), to=element.copy()))
                continue
            one = _constant(item, element) or exp.Cast(this=exp.Literal.string(item), to=element.copy())
            out.append(one)
        return exp.Array(expressions=out)
    return None


def typed_literals(tree: exp.Expression) -> exp.Expression:
    """Constants of built-in types in one spelling each: ``5``, ``'5'::integer`` and
    ``CAST('5' AS int4)`` are one int4 constant (PostgreSQL prints ``5``); ``-1`` is
    ``'-1'::integer`` (how it prints negative constants); ``'t'::boolean`` is ``true``;
    ``DATE '2024-01-01'`` is ``'2024-01-01'::date``; ``TIMESTAMP '2024-01-01'`` is
    ``'2024-01-01 00:00:00'::timestamp without time zone``; ``'{1,2}'::integer[]`` is
    ``ARRAY[1, 2]``. A literal without a type (``'2024-01-01'`` against a column) takes the
    column's type in PostgreSQL, which text alone does not know: it is left as it is.
    """

    def negative(node: exp.Expression) -> exp.Expression:
        # PostgreSQL's grammar folds a minus into the number it precedes (doNegate): `-1` is one
        # int4 constant, printed '-1'::integer; a minus before anything else is an operator
        if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string \
                and not str(node.this.this).startswith("-"):
            return exp.Literal(this="-" + str(node.this.this), is_string=False)
        return node

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Cast) and isinstance(node.to, exp.DataType):
            inner = node.this
            if isinstance(inner, exp.Boolean) and node.to.this is exp.DataType.Type.BOOLEAN:
                return inner
            if _is_constant(inner) and node.to == inner.to:
                return inner      # 5::integer: the constant already has the type
            text = str(inner.this) if isinstance(inner, exp.Literal) else _constant_text(inner)
            return _constant(text, node.to) or node
        if isinstance(node, exp.Literal) and not node.is_string:
            return _number(str(node.this)) or node
        return node

    tree = tree.transform(negative, copy=False)
    return _bottom_up(tree, rule)


_NUMERIC_TYPES = (exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT,
                  exp.DataType.Type.DECIMAL)


def _is_constant(node: exp.Expression) -> bool:
    return isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string


def _constant_text(node: exp.Expression) -> str | None:
    """The text of a constant in its one spelling (``'5'::integer`` → ``5``), else None."""
    if _is_constant(node) and node.to.this in _NUMERIC_TYPES:
        return str(node.this.this)
    return None


def boolean_forms(tree: exp.Expression) -> exp.Expression:
    """``x = true`` → ``x``, ``x = false`` and ``x <> true`` → ``NOT x``, ``x <> false`` → ``x``,
    ``NOT NOT x`` → ``x``: for a boolean x they are one value, NULL included (NULL = true is
    NULL). PostgreSQL keeps each as written, so a spec's ``where: is_deleted`` meets a live
    ``(is_deleted = true)``."""

    def rule(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.EQ, exp.NEQ)):
            left, right = node.this, node.expression
            if isinstance(left, exp.Boolean) and not isinstance(right, exp.Boolean):
                left, right = right, left
            if isinstance(right, exp.Boolean) and not isinstance(left, exp.Boolean):
                keep = right.this if isinstance(node, exp.EQ) else not right.this
                return left if keep else exp.Not(this=left)
        if isinstance(node, exp.Not) and isinstance(node.this, exp.Not):
            return node.this.this
        return node

    return _bottom_up(tree, rule)


def truth_tests(tree: exp.Expression) -> exp.Expression:
    """(predicates only) ``x IS TRUE`` → ``x``, ``x IS FALSE`` → ``NOT x`` where only truth
    counts: at the top of a partial-index predicate and through its AND/OR, a row is in the
    index when the predicate is true, and ``x IS TRUE`` is true exactly when ``x`` is. Inside
    anything else (NOT, a function, an expression) NULL makes them differ, so they stay."""

    def visit(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.And, exp.Or)):
            node.set("this", visit(node.this))
            node.set("expression", visit(node.expression))
            return node
        if isinstance(node, exp.Is) and isinstance(node.expression, exp.Boolean) and not node.args.get("negate"):
            return node.this if node.expression.this else exp.Not(this=node.this)
        return node

    return boolean_forms(visit(tree))


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
        if _is_constant(node) and node.to.this in _NUMERIC_TYPES:
            # a number stays a number (`a = 1` is not `a = '1'`), whatever its one spelling
            return exp.Literal(this=node.this.this, is_string=False)
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
    string_spellings,
    typed_literals,
    boolean_forms,
)
PREDICATE_RULES: tuple[Callable[[exp.Expression], exp.Expression], ...] = (truth_tests,)
LOOSE_RULES = (strip_casts,) + STRICT_RULES + (strip_casts,)

# Operators whose two operands may be swapped (PostgreSQL's built-in ones are declared their own
# commutators): ``a = b`` is ``b = a``. Only one node at a time: ``(a + b) + c`` is not
# regrouped, since the order of evaluation decides where an integer overflows.
_SYMMETRIC = (exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.Add, exp.Mul, exp.BitwiseAnd, exp.BitwiseOr,
              exp.BitwiseXor, exp.ArrayOverlaps)
# Operators whose commutator is another one: ``a < b`` is ``b > a``, ``a @> b`` is ``b <@ a``.
_MIRRORED = {exp.GT: exp.LT, exp.LT: exp.GT, exp.GTE: exp.LTE, exp.LTE: exp.GTE,
             exp.ArrayContainsAll: exp.ArrayContainedBy, exp.ArrayContainedBy: exp.ArrayContainsAll}
# Comparisons: a numeric constant compared is compared by value (``price > 1.50`` selects what
# ``price > 1.5`` selects), while elsewhere its scale is part of the result.
_COMPARISONS = (exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _key(node, compared: bool = False) -> str:
    """A structural, unambiguous rendering of a tree: identifiers folded the PostgreSQL way,
    AND/OR operands flattened and sorted (both are commutative for an index predicate), the
    operands of commutative operators in one order, mirrored comparisons in one direction.

    >>> canonical("A > 1 AND b") == canonical('b AND "a" > 1'), canonical('"A" > 1') == canonical("a > 1")
    (True, False)
    >>> canonical("a < b") == canonical("b > a"), canonical("a - b") == canonical("b - a")
    (True, False)
    """
    if node is None:
        return "~"
    if isinstance(node, list):
        return "[" + ",".join(_key(n, compared) for n in node) + "]"
    if not isinstance(node, exp.Expression):
        return repr(node.lower() if isinstance(node, str) else node)
    if isinstance(node, exp.Identifier):
        return '"' + (node.this if node.quoted else node.this.lower()) + '"'
    if isinstance(node, exp.Literal):
        return ("S" if node.is_string else "N") + repr(node.this)
    if compared and _is_constant(node) and node.to.this is exp.DataType.Type.DECIMAL:
        try:
            return "V" + repr(str(Decimal(node.this.this).normalize()))
        except InvalidOperation:
            pass
    if isinstance(node, (exp.And, exp.Or)):
        operands = list(node.flatten())
        return type(node).__name__ + "{" + ",".join(sorted(_key(o) for o in operands)) + "}"
    if isinstance(node, _SYMMETRIC) or type(node) in _MIRRORED:
        cmp = isinstance(node, _COMPARISONS)
        left, right = _key(node.this, cmp), _key(node.expression, cmp)
        kind = type(node)
        if left > right or (left == right and _MIRRORED.get(kind, kind).__name__ < kind.__name__):
            left, right = right, left
            kind = _MIRRORED.get(kind, kind)
        return f"{kind.__name__}({left},{right})"
    if isinstance(node, (exp.Any, exp.All, exp.Array)) and compared:
        inner = node.expressions if isinstance(node, exp.Array) else node.this
        return type(node).__name__ + "(" + _key(inner, True) + ")"
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
def canonical(text: str, loose: bool = False, predicate: bool = False) -> str:
    """The comparison key of an expression or (with `predicate`) a partial-index predicate;
    equal keys mean the same SQL.

    >>> canonical("status IN ('A', 'B')") == canonical("(status = ANY (ARRAY['A', 'B']))")
    True
    >>> canonical("is_deleted", predicate=True) == canonical("(is_deleted = true)", predicate=True)
    True
    """
    tree = parse_fragment(text).copy()
    for rule in LOOSE_RULES if loose else STRICT_RULES:
        tree = rule(tree)
    if predicate:
        for rule in PREDICATE_RULES:
            tree = rule(tree)
    return _key(tree)


def bare_column(text: str) -> str | None:
    """The column name when an expression is just a column reference (PostgreSQL stores
    ``(email)`` as a plain key column), else None.

    >>> bare_column("(email)"), bare_column('"Email"'), bare_column("lower(email)")
    ('email', 'Email', None)
    """
    tree = parse_fragment(text)
    while isinstance(tree, exp.Paren):   # read, never changed: no copy of the cached tree
        tree = tree.this
    if isinstance(tree, exp.Column) and not tree.table and isinstance(tree.this, exp.Identifier):
        ident = tree.this
        return ident.this if ident.quoted else ident.this.lower()
    return None
