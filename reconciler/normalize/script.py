"""A SQL script → its statements with their line numbers (quotes, dollar quotes, comments and
psql meta-commands respected). Pure text, on the shared scanner of `core.lexical`; used by
--schema-sql and import --from-sql."""
from __future__ import annotations

from typing import Iterator

from ..core.lexical import COMMENTS, Kind, tokens


def split_statements(text: str) -> Iterator[tuple[int, str]]:
    """(line, statement) for each statement of a SQL file: quotes, dollar quotes and comments
    respected, psql meta-commands (``\\connect``, ``\\restrict``) skipped.

    A statement starts at its first character that is not a blank or a comment, on the line
    given; a ';' outside quotes ends it. A backslash first on a line between statements is a
    psql meta-command: the rest of its line is skipped unread (its arguments are psql's, not SQL).

    >>> list(split_statements("\\\\connect db\\nCREATE TABLE t (a text DEFAULT ';');\\n-- x\\nSELECT $é$;$é$"))
    [(2, "CREATE TABLE t (a text DEFAULT ';')"), (4, 'SELECT $é$;$é$')]
    """
    n, line = len(text), 1
    line_start = True   # only blanks so far on this line
    start = -1          # where the statement being read starts; -1 between statements
    start_line = 1
    scan = tokens(text)
    while (tok := next(scan, None)) is not None:
        if tok.kind is not Kind.CODE:
            if tok.kind not in COMMENTS and start < 0:
                start, start_line = tok.start, line
            line_start = False
            line += text.count("\n", tok.start, tok.end)
            continue
        for i in range(tok.start, tok.end):
            c = text[i]
            if c == "\\" and line_start and start < 0:
                j = text.find("\n", i)
                scan = tokens(text, n if j < 0 else j)   # read on after the meta-command's line
                break
            if c == "\n":
                line_start, line = True, line + 1
                continue
            if c in " \t\r":
                continue
            line_start = False
            if start < 0:
                start, start_line = i, line
            if c == ";":
                yield start_line, text[start:i].strip()
                start = -1
    if start >= 0 and text[start:].strip():
        yield start_line, text[start:].strip()
