"""How PostgreSQL splits SQL text into tokens: the one scanner every piece of SQL text handling
stands on (a fragment that must stay one expression, literals masked in another session's query,
the `$n` parameters of a statement, a script cut into statements, a bracket's match and a list's
top-level items in pg_get_indexdef's text).

Pure. It follows the server's lexer (`src/backend/parser/scan.l`) with standard_conforming_strings
on, which every session of ours sets:

- '...' ends at a quote that is not doubled; a backslash ends nothing. E'...' (also e'...') is the
  one string where a backslash escapes the next character. B'', X'', N'' and U&'' end like ''.
  A prefix counts only where a token starts: in `abe'x'` the string is plain.
- "..." (and U&"...") is a quoted identifier; "" inside is a quote.
- $tag$ ... $tag$ is opaque; the tag is a letter, '_' or any non-ASCII character, then those or
  digits (scan.l's dolq_start/dolq_cont: bytes 0x80-0xFF, so every non-ASCII character). A '$'
  that continues a word (`x$1$`) starts nothing; `$1` is a parameter.
- `--` runs to the end of the line (\\n or \\r); `/* ... */` nests, even inside an operator.
- A number ends where its digits end (`1e'x'` is the number 1 then an E'' string, as
  PostgreSQL 14 reads it; later versions refuse it, so reading it as a string is the safe side).

sqlglot parses fragments too, but reads a few of these rules differently; this scanner is the one
written to PostgreSQL's rules.
"""
from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from typing import Iterator, NamedTuple


class Kind(str, Enum):
    """What a token is. CODE is whatever else stands outside quotes and comments: blanks,
    operators, punctuation, a '$' that starts nothing."""
    CODE = "code"
    WORD = "word"                    # keyword or unquoted identifier (may hold '$' after its start)
    NUMBER = "number"
    PARAM = "param"                  # $1
    STRING = "string"                # '...', E'...', B'', X'', N'', U&'...' (prefix included)
    QUOTED_IDENT = "quoted_ident"    # "..." or U&"..."
    DOLLAR = "dollar"                # $tag$ ... $tag$
    LINE_COMMENT = "line_comment"    # -- up to, not including, the line break
    BLOCK_COMMENT = "block_comment"  # /* ... */, nested


COMMENTS = frozenset({Kind.LINE_COMMENT, Kind.BLOCK_COMMENT})


class Token(NamedTuple):
    """text[start:end] is one token; `closed` is False when the text ends inside a quote or a
    comment (the token then runs to the end). A tuple: a script has hundreds of thousands."""
    kind: Kind
    start: int
    end: int
    closed: bool = True


def _other_ascii(members: str) -> str:
    """The ASCII characters outside the class `[members]`, escaped for use inside a class.

    A class of `members` and every non-ASCII character is written `[^{_other_ascii(members)}]`,
    not with the range \\u0080-\\U0010ffff: sre's compiler walks such a range (10-25 ms per
    class), and these patterns are compiled at every start of the command."""
    inside = re.compile(f"[{members}]")
    return "".join(re.escape(chr(c)) for c in range(128) if not inside.match(chr(c)))


_WORD_START = f"[^{_other_ascii('A-Za-z_')}]"         # a letter, '_' or any non-ASCII character
_WORD = re.compile(f"{_WORD_START}[^{_other_ascii('A-Za-z0-9_$')}]*")
_DOLLAR_DELIM = re.compile(f"\\$(?:{_WORD_START}[^{_other_ascii('A-Za-z0-9_')}]*)?\\$")
_PARAM = re.compile(r"\$[0-9]+")
# scan.l's decinteger/hexinteger/octinteger/bininteger/numeric/real (underscores: PostgreSQL 16)
_DEC = r"[0-9](?:_?[0-9])*"
_NUMBER = re.compile(f"0[xX](?:_?[0-9A-Fa-f])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+"
                     f"|(?:{_DEC}(?:\\.(?:{_DEC})?)?|\\.{_DEC})(?:[Ee][-+]?{_DEC})?")
# characters that never start a token of their own (-, /, ., $ are looked at one by one)
_PLAIN = re.compile("[" + _other_ascii("-/.$'\"0-9A-Za-z_") + "]+")
_NEWLINE = re.compile(r"[\n\r]")
_STRING_PREFIXES = frozenset("EeBbXxNn")


def tokens(text: str, pos: int = 0) -> Iterator[Token]:
    """The tokens of text[pos:], in order, covering every character once."""
    n, i, code_from = len(text), pos, pos
    while i < n:
        c = text[i]
        tok: Token | None = None
        if c == "'":
            tok = _quoted(text, i, i + 1, Kind.STRING, "'")
        elif c == '"':
            tok = _quoted(text, i, i + 1, Kind.QUOTED_IDENT, '"')
        elif c == "-" and text.startswith("--", i):
            m = _NEWLINE.search(text, i)
            tok = Token(Kind.LINE_COMMENT, i, m.start() if m else n)
        elif c == "/" and text.startswith("/*", i):
            tok = _block_comment(text, i)
        elif c == "$":
            if m := _PARAM.match(text, i):
                tok = Token(Kind.PARAM, i, m.end())
            elif m := _DOLLAR_DELIM.match(text, i):
                # the same tag closes it; scan.l backs up to each '$' in between, as find() does
                j = text.find(m.group(), m.end())
                tok = Token(Kind.DOLLAR, i, j + len(m.group())) if j >= 0 else Token(Kind.DOLLAR, i, n, False)
        elif "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            if m := _NUMBER.match(text, i):
                tok = Token(Kind.NUMBER, i, m.end())
        elif m := _WORD.match(text, i):
            end = m.end()
            if end == i + 1 and c in _STRING_PREFIXES and text.startswith("'", end):
                tok = _quoted(text, i, end + 1, Kind.STRING, "'", backslash=c in "Ee")
            elif end == i + 1 and c in "Uu" and text.startswith("&'", end):
                tok = _quoted(text, i, end + 2, Kind.STRING, "'")
            elif end == i + 1 and c in "Uu" and text.startswith('&"', end):
                tok = _quoted(text, i, end + 2, Kind.QUOTED_IDENT, '"')
            else:
                tok = Token(Kind.WORD, i, end)
        if tok is None:
            m = _PLAIN.match(text, i)
            i = m.end() if m else i + 1
            continue
        if code_from < i:
            yield Token(Kind.CODE, code_from, i)
        yield tok
        i = code_from = tok.end
    if code_from < n:
        yield Token(Kind.CODE, code_from, n)


def _quoted(text: str, start: int, body: int, kind: Kind, quote: str, backslash: bool = False) -> Token:
    """The token from `start` whose quoted body begins at `body`: it ends after a `quote` that is
    not doubled (nor, in E'', escaped by a backslash)."""
    n, i = len(text), body
    while True:
        j = text.find(quote, i)
        if backslash:
            k = text.find("\\", i)
            if 0 <= k and (j < 0 or k < j):
                i = k + 2
                continue
        if j < 0:
            return Token(kind, start, n, False)
        if text.startswith(quote, j + 1):
            i = j + 2
            continue
        return Token(kind, start, j + 1)


def _block_comment(text: str, start: int) -> Token:
    depth, i, n = 1, start + 2, len(text)
    while depth:
        j = text.find("*/", i)
        if j < 0:
            return Token(Kind.BLOCK_COMMENT, start, n, False)
        k = text.find("/*", i, j)
        if k >= 0:
            depth, i = depth + 1, k + 2
        else:
            depth, i = depth - 1, j + 2
    return Token(Kind.BLOCK_COMMENT, start, i)


_UNCLOSED = {Kind.STRING: "has a string constant that is not closed",
             Kind.QUOTED_IDENT: "has a quoted identifier that is not closed",
             Kind.DOLLAR: "has a dollar-quoted string that is not closed"}


def fragment_problem(text: str) -> str | None:
    """Why `text` cannot be pasted into a statement as one expression, or None when it can: no
    ';', no comment, no quote or parenthesis left open, no ')' closing what the fragment did not
    open, no backslash outside a string constant, no NUL.

    >>> fragment_problem("lower(a) = E'it\\\\'s'") is None
    True
    >>> fragment_problem("a = 1); DROP TABLE t; SELECT (1")
    "contains ';': a fragment must be one expression, not statements"
    """
    depth = 0
    unbalanced = None   # reported last: a ';' or a comment says more about what went wrong
    for tok in tokens(text):
        if "\x00" in text[tok.start:tok.end]:
            return "contains a NUL byte"   # the server's lexer reads C strings: a NUL ends the text
        if tok.kind in COMMENTS:
            return "contains an SQL comment; a fragment must be one expression"
        if not tok.closed:
            return _UNCLOSED[tok.kind]
        if tok.kind is not Kind.CODE:
            continue
        for c in text[tok.start:tok.end]:
            if c == ";":
                return "contains ';': a fragment must be one expression, not statements"
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
    if unbalanced:
        return unbalanced
    if depth:
        return "has a '(' or '[' that is not closed"
    return None


# Text without these holds only '...' and "..." quotes ended by an undoubled quote (no dollar
# quote, no comment, no backslash for E'' to read): one regex then reads it exactly as `tokens`
# would, several times faster. pg_get_indexdef's key lists are read that way for every index
# of a database (health reads thousands).
_NEEDS_TOKENS = re.compile(r"\$|\\|--|/\*")
_PLAIN_QUOTED = r"""'[^']*(?:''[^']*)*'?|"[^"]*(?:""[^"]*)*"?"""


@lru_cache(maxsize=None)
def _quoted_or(wanted: str) -> re.Pattern:
    return re.compile(f"{_PLAIN_QUOTED}|(?P<c>[{re.escape(wanted)}])")


def _code_chars(text: str, pos: int, wanted: str) -> Iterator[tuple[int, str]]:
    """Each of the `wanted` characters that stands outside quotes and comments, with its offset."""
    if _NEEDS_TOKENS.search(text, pos):
        return ((i, text[i]) for tok in tokens(text, pos) if tok.kind is Kind.CODE
                for i in range(tok.start, tok.end) if text[i] in wanted)
    return ((m.start(), m.group()) for m in _quoted_or(wanted).finditer(text, pos) if m.lastgroup)


# Without a backslash or a comment, a statement holds words, numbers, $n, '...' and "..." ended by
# an undoubled quote (E'' then ends as '' does), dollar quotes and characters that stand alone:
# one regex, its alternatives in the order `tokens` tries them, reads every token there exactly
# where `tokens` would, in C. Only a parameter or a dollar quote's opening tag is captured; at
# the first dollar quote the text is left to `tokens`. `verify` reads the parameters of every
# query of the spec (200 queries: ~20 ms with `tokens`, under 1 ms this way).
_NEEDS_TOKENS_FOR_PARAMS = re.compile(r"\\|--|/\*")
_PARAMS_OR_DOLLAR = re.compile("|".join([
    r"(\$[0-9]+|" + _DOLLAR_DELIM.pattern + ")", f"(?:{_NUMBER.pattern})", f"(?:{_WORD.pattern})",
    f"(?:{_PLAIN_QUOTED})", f"(?:{_PLAIN.pattern})", "."]), re.S)


def param_numbers(text: str) -> list[int]:
    """The number of each `$n` parameter outside quotes, dollar quotes and comments, in order.

    >>> param_numbers("SELECT $2, '$3', $f$ $4 $f$ /* $5 */ FROM t WHERE a$6 = $1")
    [2, 1]
    """
    if "$" not in text:
        return []
    if not _NEEDS_TOKENS_FOR_PARAMS.search(text):
        hits = list(filter(None, _PARAMS_OR_DOLLAR.findall(text)))
        if not any(h.endswith("$") for h in hits):   # a parameter never ends with '$', a tag always
            return [int(h[1:]) for h in hits]
    return [int(text[t.start + 1:t.end]) for t in tokens(text) if t.kind is Kind.PARAM]


def matching_paren(text: str, open_pos: int) -> int:
    """Index of the ')' closing the '(' at `open_pos` (quotes and comments respected), or -1.

    >>> matching_paren("f(a, ')', (b)) + 1", 1)
    13
    """
    depth = 0
    for i, c in _code_chars(text, open_pos, "()"):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def wraps(text: str) -> bool:
    """True when the whole text is one parenthesized group: ``(a + b)``, not ``(a) + (b)``."""
    return text.startswith("(") and matching_paren(text, 0) == len(text) - 1


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on the one-character `sep` outside parentheses, brackets, quotes and comments; each
    part stripped.

    >>> split_top_level("a, f(b, c), 'x,y', [1, 2]")
    ['a', 'f(b, c)', "'x,y'", '[1, 2]']
    """
    parts, depth, start = [], 0, 0
    for i, c in _code_chars(text, 0, "()[]" + sep):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]
