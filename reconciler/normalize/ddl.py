"""CREATE INDEX text (as a person writes it or as pg_get_indexdef prints it) → IndexDef, and the
option suffix of one key (`COLLATE "C" text_pattern_ops DESC NULLS LAST`), which the catalog
reader needs too.

sqlglot parses the statement and decides every part of it. Around it, an envelope only as large
as sqlglot's gaps (sqlglot 30), each named where it is handled and pinned by a test that fails
once an upgrade closes it (tests/test_normalize.py, `test_sqlglot_gap_*`):

- GAP_ON_ONLY: ``ON ONLY table`` (pg_get_indexdef prints it for every partitioned parent) is a
  parse error; the ONLY token is dropped before parsing (it says nothing about the index).
- GAP_NULLS_DISTINCT: ``NULLS [NOT] DISTINCT`` (PostgreSQL 15+) makes sqlglot fall back to an
  opaque Command; those tokens are read here and dropped before parsing.
- GAP_BARE_OPTION: a storage parameter without a value (``WITH (fastupdate)``, PostgreSQL reads
  it as true) is a parse error; ``= true`` is put after it before parsing.
- GAP_SOURCE_TEXT: sqlglot keeps no source span of an expression, and printing its tree again
  would change the words (``lower(x)`` → ``LOWER(x)``, casts rewritten); the SQL we send back to
  PostgreSQL and show in reasons must be the words as written. So the key list is cut into
  elements, each element into expression and option suffix, and the predicate out of the
  statement, on sqlglot's own tokens (quotes, comments and dollar quotes handled by its
  tokenizer), following PostgreSQL's grammar for an index element.
"""
from __future__ import annotations

import logging
import re
from functools import lru_cache

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from ..core.index import IndexDef, KeyPart
from ..errors import SQLFragmentError
from .compare import canonical_options
from .fragments import DIALECT, parse_fragment
from .rules import bare_column

# PostgreSQL accepts these old method names and stores the new one.
_METHOD_ALIASES = {"rtree": "gist"}


class _NoCommandFallback(logging.Filter):
    """sqlglot logs a warning when it falls back to an opaque Command; a statement we cannot read
    is reported as one error line instead, so the warning is noise on the user's terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_NoCommandFallback())


def method_name(using: str) -> str:
    """The access method as PostgreSQL stores it (``rtree`` is ``gist``)."""
    m = using.strip().lower()
    return _METHOD_ALIASES.get(m, m)


def _short(text: str) -> str:
    return repr(text[:80])


def _word(tok: Token) -> str:
    """An identifier token as PostgreSQL resolves it: quoted literally, unquoted folded."""
    return tok.text if tok.token_type == TokenType.IDENTIFIER else tok.text.lower()


def _is(tok: Token, *words: str) -> bool:
    return tok.token_type != TokenType.IDENTIFIER and tok.text.upper() in words


def _closing(tokens: list[Token], open_at: int) -> int:
    """Index of the token closing the parenthesis at `open_at`, or -1."""
    depth = 0
    for i in range(open_at, len(tokens)):
        t = tokens[i].token_type
        if t == TokenType.L_PAREN:
            depth += 1
        elif t == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _top_level(tokens: list[Token]) -> list[int]:
    """The paren depth before each token."""
    depths, depth = [], 0
    for t in tokens:
        if t.token_type == TokenType.R_PAREN:
            depth -= 1
        depths.append(depth)
        if t.token_type == TokenType.L_PAREN:
            depth += 1
    return depths


def _span(text: str, tokens: list[Token]) -> str:
    return text[tokens[0].start: tokens[-1].end + 1] if tokens else ""


def read_key_suffix(tokens: list[Token], text: str) -> tuple[str | None, str | None, bool, bool | None]:
    """The option tokens after one key's expression → (collation, opclass, desc, nulls_first):
    ``[COLLATE name] [opclass [(params)]] [ASC|DESC] [NULLS FIRST|LAST]`` (PostgreSQL's
    `index_elem`). `text` is what the tokens were read from (the opclass keeps its words)."""
    rest = list(tokens)
    nulls_first = None
    if len(rest) >= 2 and _is(rest[-2], "NULLS") and _is(rest[-1], "FIRST", "LAST"):
        nulls_first = _is(rest[-1], "FIRST")
        rest = rest[:-2]
    desc = False
    if rest and rest[-1].token_type in (TokenType.ASC, TokenType.DESC):
        desc = rest[-1].token_type == TokenType.DESC
        rest = rest[:-1]
    collation = None
    if rest and rest[0].token_type == TokenType.COLLATE:
        parts, i = [], 1
        while i < len(rest):
            parts.append(_word(rest[i]))
            i += 1
            if i < len(rest) and rest[i].token_type == TokenType.DOT:
                i += 1
                continue
            break
        if not parts:
            raise SQLFragmentError(f"cannot read index key options {_span(text, tokens)!r}")
        if len(parts) == 2 and parts[0] == "pg_catalog":
            parts = parts[1:]
        collation = ".".join(parts)
        rest = rest[i:]
    opclass = re.sub(r"\s+", " ", _span(text, rest)) or None
    return collation, opclass, desc, nulls_first


@lru_cache(maxsize=4096)   # a catalog repeats a few suffixes (" DESC") thousands of times
def key_suffix(suffix: str) -> tuple[str | None, str | None, bool, bool | None]:
    """``COLLATE "C" text_pattern_ops DESC NULLS LAST`` → (collation, opclass, desc, nulls_first).

    >>> key_suffix(' COLLATE "C" text_pattern_ops DESC')
    ('C', 'text_pattern_ops', True, None)
    """
    if not suffix.strip():
        return None, None, False, None
    try:
        tokens = DIALECT.tokenize(suffix)
    except TokenError:
        raise SQLFragmentError(f"cannot read index key options {suffix.strip()!r}") from None
    return read_key_suffix(tokens, suffix)


def _element_end(tokens: list[Token]) -> int:
    """Index of the last token of the expression an index element starts with, by PostgreSQL's
    grammar: ``( expression )``, or a (qualified) name, called when a parenthesis follows."""
    if tokens[0].token_type == TokenType.L_PAREN:
        return _closing(tokens, 0)
    i = 0
    while i + 2 < len(tokens) and tokens[i + 1].token_type == TokenType.DOT:
        i += 2
    if i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.L_PAREN:
        return _closing(tokens, i + 1)
    return i


def _keypart(text: str, tokens: list[Token], node: exp.Ordered) -> KeyPart:
    end = _element_end(tokens)
    if end < 0:
        raise SQLFragmentError(f"cannot read index key {_span(text, tokens)!r}")
    expr_tokens, suffix = tokens[: end + 1], tokens[end + 1:]
    collation, opclass, desc, nulls_first = read_key_suffix(suffix, text)
    # sqlglot read the same element: where it disagrees with the cut, the element is not one
    # PostgreSQL accepts (``a::text`` unparenthesized, ``$1``)
    inner = node.this
    has_opclass = isinstance(inner, exp.Opclass)
    if has_opclass:
        inner = inner.this
    if (bool(node.args.get("desc")) != desc or (nulls_first is not None and node.args.get("nulls_first") != nulls_first)
            or has_opclass != (opclass is not None) or isinstance(inner, exp.Collate) != (collation is not None)):
        raise SQLFragmentError(f"cannot read index key {_span(text, tokens)!r}")
    expr = _span(text, expr_tokens)
    if expr_tokens[0].token_type == TokenType.L_PAREN:
        expr = _span(text, expr_tokens[1:-1]).strip()
    elif len(expr_tokens) == 1:
        return KeyPart(_word(expr_tokens[0]), False, collation, opclass, desc, nulls_first)
    col = bare_column(expr)
    if col is not None:
        return KeyPart(col, False, collation, opclass, desc, nulls_first)
    return KeyPart(expr, True, collation, opclass, desc, nulls_first, sql=expr)


def _split(tokens: list[Token], depths: list[int], depth: int) -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    for t, d in zip(tokens, depths):
        if t.token_type == TokenType.COMMA and d == depth:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _name(node: exp.Expression | None) -> str:
    if not isinstance(node, exp.Identifier):
        return ""
    return node.this if node.quoted else node.this.lower()


def _option_value(v: exp.Expression | None) -> str:
    if v is None:
        return "true"
    if isinstance(v, exp.Literal):
        return str(v.this)
    if isinstance(v, exp.Boolean):
        return "true" if v.this else "false"
    return v.name or v.sql("postgres")


def parse_create_index(sql: str, default_schema: str = "public") -> IndexDef:
    """Read one CREATE INDEX statement (as a person writes it or as pg_get_indexdef prints it).

    >>> d = parse_create_index('CREATE INDEX "Ix" ON ONLY app.t USING btree (lower(email) DESC) WHERE a > 1')
    >>> d.name, d.schema, d.table, d.keys[0].sql, d.keys[0].desc, d.where
    ('Ix', 'app', 't', 'lower(email)', True, 'a > 1')
    """
    text = sql.strip()
    try:
        tokens = DIALECT.tokenize(text)
    except TokenError as e:
        raise SQLFragmentError(f"cannot read {_short(text)}: {e}") from None
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    if not (len(tokens) >= 2 and tokens[0].token_type == TokenType.CREATE
            and (tokens[1].token_type == TokenType.INDEX
                 or (tokens[1].token_type == TokenType.UNIQUE and len(tokens) > 2
                     and tokens[2].token_type == TokenType.INDEX))):
        raise SQLFragmentError(f"not a CREATE INDEX statement: {_short(text)}")
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise SQLFragmentError(f"{_short(text)} contains ';': one CREATE INDEX statement only")
    depths = _top_level(tokens)
    if depths[-1] + (tokens[-1].token_type == TokenType.L_PAREN) != 0 or min(depths) < 0:
        raise SQLFragmentError(f"unbalanced parentheses in {_short(text)}")

    on = next((i for i, (t, d) in enumerate(zip(tokens, depths)) if t.token_type == TokenType.ON and d == 0), None)
    if on is None:
        raise SQLFragmentError(f"cannot read {_short(text)}: no ON table")
    # GAP_ON_ONLY: sqlglot cannot parse ON ONLY
    drop = {on + 1} if on + 1 < len(tokens) and tokens[on + 1].token_type == TokenType.ONLY else set()
    open_at = next((i for i in range(on, len(tokens)) if tokens[i].token_type == TokenType.L_PAREN and depths[i] == 0),
                   None)
    if open_at is None:
        raise SQLFragmentError(f"cannot read {_short(text)}: no key list")
    close_at = _closing(tokens, open_at)
    # GAP_NULLS_DISTINCT: sqlglot falls back to a Command on NULLS [NOT] DISTINCT
    nulls_not_distinct = False
    for i in range(close_at + 1, len(tokens) - 1):
        if depths[i] == 0 and _is(tokens[i], "NULLS"):
            if tokens[i + 1].token_type == TokenType.DISTINCT:
                drop |= {i, i + 1}
            elif (tokens[i + 1].token_type == TokenType.NOT and i + 2 < len(tokens)
                  and tokens[i + 2].token_type == TokenType.DISTINCT):
                drop |= {i, i + 1, i + 2}
                nulls_not_distinct = True
            break
    # GAP_BARE_OPTION: sqlglot needs a value for every storage parameter
    bare: set[int] = set()
    with_at = next((i for i in range(close_at + 1, len(tokens) - 1) if depths[i] == 0
                    and tokens[i].token_type == TokenType.WITH and tokens[i + 1].token_type == TokenType.L_PAREN), None)
    if with_at is not None:
        i, end = with_at + 2, _closing(tokens, with_at + 1)
        for part in _split(tokens[i:end], depths[i:end], 1):
            if len(part) == 1:
                bare.add(tokens.index(part[0]))
    kept = []
    for i, t in enumerate(tokens):
        if i not in drop:
            kept.append(t)
        if i in bare:
            kept += [Token(TokenType.EQ, "=", start=t.end, end=t.end), Token(TokenType.TRUE, "true", start=t.end,
                                                                                end=t.end)]
    try:
        trees = [t for t in DIALECT.parser().parse(kept, text) if t is not None]
    except ParseError as e:
        raise SQLFragmentError(f"cannot read {_short(text)}: {str(e).splitlines()[0]}") from None
    tree = trees[0] if len(trees) == 1 else None
    index = tree.this if isinstance(tree, exp.Create) and tree.args.get("kind") == "INDEX" else None
    params = index.args.get("params") if isinstance(index, exp.Index) else None
    if params is None:
        tail = _span(text, tokens[close_at + 1:])
        raise SQLFragmentError(f"cannot read {_short(tail) if tail else 'it'} in {_short(text)}")

    table = index.args["table"]
    if table.args.get("catalog") is not None:
        raise SQLFragmentError(f"cannot read the table name in {_short(text)}: database.schema.table")
    schema = _name(table.args.get("db")) or default_schema
    columns = params.args.get("columns") or []
    elements = _split(tokens[open_at + 1: close_at], depths[open_at + 1: close_at], 1)
    if len(elements) != len(columns) or any(not e for e in elements):
        raise SQLFragmentError(f"cannot read the key list of {_short(text)}")
    keys = tuple(_keypart(text, e, node) for e, node in zip(elements, columns))
    for k in keys:
        if k.is_expression:
            parse_fragment(k.expr, "expression")

    where = None
    if params.args.get("where") is not None:
        at = next(i for i in range(close_at + 1, len(tokens)) if tokens[i].token_type == TokenType.WHERE
                  and depths[i] == 0)
        where = _span(text, tokens[at + 1:]).strip()
        parse_fragment(where, "predicate")   # refuses a comment inside it, as for a spec's where:
    using = params.args.get("using")
    options = canonical_options({p.name.lower(): _option_value(p.args.get("value"))
                                 for p in params.args.get("with_storage") or []})
    return IndexDef(schema=schema, table=_name(table.this), keys=keys, unique=bool(tree.args.get("unique")),
                    method=method_name(using.name if using is not None else "btree"),
                    include=tuple(_name(i) for i in params.args.get("include") or []), where=where,
                    nulls_not_distinct=nulls_not_distinct, options=options,
                    tablespace=_name(params.args.get("tablespace")) or None, name=_name(index.this))


def create_index_statement(stmt: str) -> bool:
    """True when `stmt` starts as CREATE [UNIQUE] INDEX (whether or not it parses)."""
    try:
        tokens = DIALECT.tokenize(stmt)
    except TokenError:
        return False
    types = [t.token_type for t in tokens[:3]]
    return types[:2] == [TokenType.CREATE, TokenType.INDEX] or types == [TokenType.CREATE, TokenType.UNIQUE,
                                                                          TokenType.INDEX]


def attached_partition_index(stmt: str, default_schema: str = "public") -> tuple[str, str] | None:
    """(schema, name) of the partition index that ``ALTER INDEX [IF EXISTS] parent ATTACH PARTITION
    name`` attaches (what pg_dump writes for every partition index), else None."""
    try:
        tokens = [t for t in DIALECT.tokenize(stmt) if t.token_type != TokenType.SEMICOLON]
    except TokenError:
        return None
    if len(tokens) < 5 or not (_is(tokens[0], "ALTER") and tokens[1].token_type == TokenType.INDEX):
        return None
    at = next((i for i in range(2, len(tokens) - 1) if _is(tokens[i], "ATTACH") and _is(tokens[i + 1], "PARTITION")),
              None)
    if at is None:
        return None
    name = tokens[at + 2:]
    if len(name) == 1:
        return default_schema, _word(name[0])
    if len(name) == 3 and name[1].token_type == TokenType.DOT:
        return _word(name[0]), _word(name[2])
    return None
