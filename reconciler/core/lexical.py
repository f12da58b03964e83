"""How PostgreSQL splits text into tokens, just far enough to tell whether a SQL fragment (an
index expression, a predicate) stays one expression wherever it is pasted: no ';', no comment,
no quote or parenthesis left open, no ')' closing what the fragment did not open, no
backslash outside a string constant.

Pure. It follows the server's lexer (`scan.l`) with standard_conforming_strings on, which
every session of ours sets: a backslash ends nothing in '...', escapes the next character in
E'...', and $tag$ ... $tag$ is opaque. sqlglot parses fragments too, but it reads a few of
these rules differently; this check is the one written to PostgreSQL's rules.
"""
from __future__ import annotations

import re

_DOLLAR_DELIM = re.compile(r"\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")


def _ident_start(c: str) -> bool:
    return c.isascii() and (c.isalpha() or c == "_") or ord(c) >= 0x80


def _ident_cont(c: str) -> bool:
    return _ident_start(c) or c.isdigit() or c == "$"


def fragment_problem(text: str) -> str | None:
    """Why `text` cannot be pasted into a statement as one expression, or None when it can."""
    i, n, depth = 0, len(text), 0
    unbalanced = None   # reported last: a ';' or a comment says more about what went wrong
    while i < n:
        c = text[i]
        if c == "\x00":
            return "contains a NUL byte"
        if c == ";":
            return "contains ';': a fragment must be one expression, not statements"
        if text.startswith("--", i) or text.startswith("/*", i):
            return "contains an SQL comment; a fragment must be one expression"
        if c == "\\":
            # not SQL outside a string constant, and psql would read it as a meta-command
            # (`\! ...` runs a shell command) in a script of the plan
            return "contains a backslash outside a string constant"
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth < 0:
                unbalanced = unbalanced or f"has a '{c}' that closes what it did not open"
                depth = 0
        elif c == "'":
            i = _string_end(text, i + 1, backslash=False)
            if i < 0:
                return "has a string constant that is not closed"
            continue
        elif c == '"':
            j = _quoted_end(text, i + 1)
            if j < 0:
                return "has a quoted identifier that is not closed"
            i = j
            continue
        elif c == "$":
            m = _DOLLAR_DELIM.match(text, i)
            if m:
                j = text.find(m.group(0), m.end())
                if j < 0:
                    return "has a dollar-quoted string that is not closed"
                i = j + len(m.group(0))
                continue
        elif _ident_start(c):
            j = i + 1
            while j < n and _ident_cont(text[j]):
                j += 1
            word = text[i:j]
            if word in ("E", "e") and j < n and text[j] == "'":
                k = _string_end(text, j + 1, backslash=True)
                if k < 0:
                    return "has a string constant that is not closed"
                i = k
                continue
            i = j
            continue
        i += 1
    if unbalanced:
        return unbalanced
    if depth:
        return "has a '(' or '[' that is not closed"
    return None


def _string_end(text: str, i: int, backslash: bool) -> int:
    """Position after the quote closing a string constant whose body starts at `i`, or -1."""
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\x00":
            return -1
        if backslash and c == "\\":
            i += 2
            continue
        if c == "'":
            if i + 1 < n and text[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return -1


def _quoted_end(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i] == "\x00":
            return -1
        if text[i] == '"':
            if i + 1 < n and text[i + 1] == '"':
                i += 2
                continue
            return i + 1
        i += 1
    return -1
