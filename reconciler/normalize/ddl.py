"""CREATE INDEX text (as a person writes it or as pg_get_indexdef prints it) → IndexDef, and the
key-list pieces the catalog reader needs."""
from __future__ import annotations

import re

from ..core.index import IndexDef, KeyPart
from ..errors import SQLFragmentError
from .compare import canonical_options
from .fragments import parse_fragment
from .rules import bare_column

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
