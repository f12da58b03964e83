"""Identifiers and literals as PostgreSQL spells them: quoting, qualification, name limits, and
the few kinds of spec values that are pasted into DDL (operator classes, storage options).

Everything that reaches SQL text from outside (a spec, a name read from the catalog) goes
through here: identifiers are quoted as identifiers, literals as literals, and the rest is
parsed against a strict grammar and printed back from its parts, never pasted. Every output is
printable text: a name with a control character is written with Unicode escapes (`U&"..."`),
so a SQL script or a terminal shows exactly what the server reads.

Pure: no parsing beyond what quoting needs, no database.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Callable

NAME_MAX_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names


def fit_name(head: str, suffix: str = "") -> str:
    """`head + suffix` within PostgreSQL's name limit: the head is cut (on a character boundary,
    counting bytes as the server does) so the suffix always survives.

    >>> fit_name("a" * 70, "_1") == "a" * 61 + "_1"
    True
    >>> len(fit_name("é" * 40).encode())
    62
    """
    return head.encode()[: NAME_MAX_BYTES - len(suffix.encode())].decode("utf-8", "ignore") + suffix


class UnsafeSQLValue(ValueError):
    """A value that cannot be written into SQL as the kind of thing it claims to be."""


_PLAIN_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
# Unicode categories that must never be printed raw: controls (newline, ESC), format
# characters (bidi overrides, zero-width), line/paragraph separators, surrogates.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_hidden(ch: str) -> bool:
    """True for a character that would not show as itself on a terminal or in a file."""
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


# every character but printable ASCII: only these need their Unicode category looked up
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def has_hidden(text: str) -> bool:
    # a regex scan in C, then a category look-up per distinct candidate: a 1 MB spec or plan
    # is checked in milliseconds instead of a Python call per character
    return any(is_hidden(c) for c in set(_NOT_PRINTABLE_ASCII.findall(text)))


@lru_cache(maxsize=65536)
def quote_ident(name: str) -> str:
    """Quote an identifier the way PostgreSQL's quote_ident() does (only when needed).

    A name with a control or format character is written as a Unicode-escaped identifier
    (``U&"a\\000ab"``): the server reads the same name, and the text stays on one visible line.
    """
    if "\x00" in name:
        raise UnsafeSQLValue(f"identifier {name!r} contains a NUL byte")
    if _PLAIN_IDENT.fullmatch(name) and name.upper() not in _RESERVED:
        return name
    if has_hidden(name):
        return 'U&"' + _escaped(name, '"', _unicode_escape) + '"'
    return '"' + name.replace('"', '""') + '"'


def _escaped(text: str, quote: str, hidden: Callable[[int], str]) -> str:
    """`text` for the inside of an escaping quoted form (U&"..." or E'...'): the backslash,
    the escape character of both forms, doubled; the quote doubled; a hidden character
    written by `hidden(code point)` in the form's own escape syntax."""
    out = []
    for c in text:
        if c == "\\":
            out.append("\\\\")
        elif c == quote:
            out.append(quote * 2)
        elif is_hidden(c):
            out.append(hidden(ord(c)))
        else:
            out.append(c)
    return "".join(out)


def _unicode_escape(cp: int) -> str:
    """U&"..." syntax: \\XXXX or \\+XXXXXX."""
    return f"\\{cp:04x}" if cp <= 0xFFFF else f"\\+{cp:06x}"


def _c_escape(cp: int) -> str:
    """E'...' syntax: \\xHH, \\uXXXX or \\UXXXXXXXX."""
    return f"\\x{cp:02x}" if cp < 0x80 else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(text: str) -> str:
    """A string constant PostgreSQL reads as `text` whatever standard_conforming_strings says.

    Like the server's quote_literal(): quotes doubled, and when the text holds a backslash (or
    a character that must not be printed raw) the escape-string form ``E'...'`` with every
    backslash doubled, which reads the same under both settings (docs, "String Constants with
    C-Style Escapes"). A NUL cannot be stored in text and is refused.
    """
    if "\x00" in text:
        raise UnsafeSQLValue("a string containing a NUL byte cannot be written as an SQL literal")
    if "\\" not in text and not has_hidden(text):
        return "'" + text.replace("'", "''") + "'"
    return "E'" + _escaped(text, "'", _c_escape) + "'"


def dollar_quote(body: str, tag: str = "rc") -> str:
    """`body` between dollar quotes whose tag does not occur in it (so nothing in the body can
    end the quoted text early)."""
    n, t = 0, tag
    while f"${t}$" in body:
        n += 1
        t = f"{tag}{n}"
    return f"${t}${body}${t}$"


# -- names as a spec writes them ---------------------------------------------------------------

# One part of a SQL name: "quoted" (kept as is) or plain (folded to lower case, as PostgreSQL
# folds unquoted identifiers). Plain parts are ASCII words: anything else must be quoted.
_NAME_PART = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
_QUALIFIED = re.compile(rf"\s*({_NAME_PART})(?:\s*\.\s*({_NAME_PART}))?\s*")
_PARAM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('[^'\\]*'|[+-]?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*)\s*")


def _unquote_part(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def parse_qualified_name(text: str, what: str = "name") -> tuple[str, ...]:
    """``public.gin_trgm_ops`` → ('public', 'gin_trgm_ops'); ``"My Ops"`` → ('My Ops',).

    SQL's rules: unquoted parts fold to lower case, quoted parts are kept. At most one schema
    qualification. Raises UnsafeSQLValue for anything else (so nothing else reaches SQL)."""
    m = _QUALIFIED.fullmatch(text)
    if not m:
        raise UnsafeSQLValue(f"{text!r} is not a valid {what} (NAME or SCHEMA.NAME; quote unusual names "
                             'with double quotes)')
    parts = tuple(_unquote_part(p) for p in m.groups() if p is not None)
    for p in parts:
        _check_name(p, what)
    return parts


def _check_name(name: str, what: str) -> None:
    if not name:
        raise UnsafeSQLValue(f"empty {what}")
    if "\x00" in name:
        raise UnsafeSQLValue(f"{what} {name!r} contains a NUL byte")
    if len(name.encode()) > NAME_MAX_BYTES:
        raise UnsafeSQLValue(f"{what} {name!r} is {len(name.encode())} bytes; PostgreSQL names are at most "
                             f"{NAME_MAX_BYTES} bytes")


def check_identifier(name: str, what: str = "name") -> str:
    """A literal identifier (case kept) that PostgreSQL can hold without truncating it."""
    _check_name(name, what)
    return name


def opclass_sql(text: str) -> str:
    """An operator class reference as the spec or the catalog writes it (``text_pattern_ops``,
    ``public.gin_trgm_ops``, ``"My Ops"``, ``gist_trgm_ops(siglen = 32)``) → the SQL to print,
    rebuilt from its parsed parts. Raises UnsafeSQLValue for anything that is not one."""
    name, params = text, ""
    i = _params_start(text)
    if i >= 0:
        name, params = text[:i], text[i:]
    try:
        sql = ".".join(quote_ident(p) for p in parse_qualified_name(name, "operator class"))
    except UnsafeSQLValue:
        raise UnsafeSQLValue(f"{text!r} is not a valid operator class (NAME, SCHEMA.NAME or NAME(PARAM = VALUE); "
                             "quote unusual names with double quotes)") from None
    if params:
        inner = params.strip()
        if not (inner.startswith("(") and inner.endswith(")")):
            raise UnsafeSQLValue(f"{text!r} is not a valid operator class (parameters go in parentheses)")
        items = []
        for item in inner[1:-1].split(","):
            m = _PARAM.fullmatch(item)
            if not m:
                raise UnsafeSQLValue(f"{text!r}: operator class parameter {item.strip()!r} is not NAME = VALUE")
            key, value = m.group(1).lower(), m.group(2)
            if value.startswith("'"):
                value = quote_literal(value[1:-1])
            items.append(f"{quote_ident(key)} = {value}")
        sql += " (" + ", ".join(items) + ")"
    return sql


def _params_start(text: str) -> int:
    """Position of the '(' that opens operator class parameters (outside quoted name parts)."""
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c == "(" and not quoted:
            return i
    return -1


_OPTION_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_OPTION_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_option_name(name: str) -> str:
    """A storage option name (`fillfactor`): a plain word, nothing else."""
    if not _OPTION_WORD.fullmatch(name) or len(name) > NAME_MAX_BYTES:
        raise UnsafeSQLValue(f"{name!r} is not a storage option name (letters, digits and '_')")
    return name


def option_value_sql(value: str) -> str:
    """A storage option value: a number or a plain word (`on`, `auto`), printed as is; anything
    else is refused (PostgreSQL's index options take nothing else)."""
    if _OPTION_NUMBER.fullmatch(value) or _OPTION_WORD.fullmatch(value):
        return value
    raise UnsafeSQLValue(f"{value!r} is not a storage option value (a number or a word such as on/off/auto)")


def check_option_value(value: str) -> str:
    option_value_sql(value)
    return value


def options_sql(options) -> str:
    """``WITH (...)`` contents from (name, value) pairs, every part checked."""
    return ", ".join(f"{quote_ident(check_option_name(k).lower())} = {option_value_sql(v)}" for k, v in options)


# Keywords PostgreSQL's quote_ident() quotes (reserved and type/function-name keywords): a
# column named like one of them must be quoted in generated DDL.
_RESERVED = frozenset(
    """ALL ANALYSE ANALYZE AND ANY ARRAY AS ASC ASYMMETRIC AUTHORIZATION BETWEEN BIGINT BINARY BIT
    BOOLEAN BOTH CASE CAST CHAR CHARACTER CHECK COALESCE COLLATE COLLATION COLUMN CONCURRENTLY
    CONSTRAINT CREATE CROSS CURRENT_CATALOG CURRENT_DATE CURRENT_ROLE CURRENT_SCHEMA CURRENT_TIME
    CURRENT_TIMESTAMP CURRENT_USER DEC DECIMAL DEFAULT DEFERRABLE DESC DISTINCT DO ELSE END EXCEPT
    EXISTS EXTRACT FALSE FETCH FLOAT FOR FOREIGN FREEZE FROM FULL GRANT GREATEST GROUP GROUPING
    HAVING ILIKE IN INITIALLY INNER INOUT INT INTEGER INTERSECT INTERVAL INTO IS ISNULL JOIN
    JSON JSON_ARRAY JSON_ARRAYAGG JSON_EXISTS JSON_OBJECT JSON_OBJECTAGG JSON_QUERY JSON_SCALAR
    JSON_SERIALIZE JSON_TABLE JSON_VALUE LATERAL LEADING LEAST LEFT LIKE LIMIT LOCALTIME
    LOCALTIMESTAMP MERGE_ACTION NATIONAL NATURAL NCHAR NONE NORMALIZE NOT NOTNULL NULL NULLIF
    NUMERIC OFFSET ON ONLY OR ORDER OUT OUTER OVERLAPS OVERLAY PLACING POSITION PRECISION PRIMARY
    REAL REFERENCES RETURNING RIGHT ROW SELECT SESSION_USER SETOF SIMILAR SMALLINT SOME SUBSTRING
    SYMMETRIC SYSTEM_USER TABLE TABLESAMPLE THEN TIME TIMESTAMP TO TRAILING TREAT TRIM TRUE UNION
    UNIQUE USER USING VALUES VARCHAR VARIADIC VERBOSE WHEN WHERE WINDOW WITH XMLATTRIBUTES
    XMLCONCAT XMLELEMENT XMLEXISTS XMLFOREST XMLNAMESPACES XMLPARSE XMLPI XMLROOT XMLSERIALIZE
    XMLTABLE""".split()
)
