"""A SQL script → its statements with their line numbers (quotes, dollar quotes, comments and
psql meta-commands respected). Pure text; used by --schema-sql and import --from-sql."""
from __future__ import annotations

import re
from typing import Iterator

_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(text: str) -> Iterator[tuple[int, str]]:
    """(line, statement) for each statement of a SQL file: quotes, dollar quotes and comments
    respected, psql meta-commands (``\\connect``, ``\\restrict``) skipped."""
    i, n, start, has_code, line_start, line = 0, len(text), 0, False, True, 1
    start_line = 1
    while i < n:
        c = text[i]
        if line_start and c == "\\" and not has_code:
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "\n":
            line_start, i, line = True, i + 1, line + 1
            continue
        if c in " \t\r":
            i += 1
            continue
        line_start = False
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            line += text.count("\n", i, end)
            i = end
            continue
        if not has_code:
            has_code, start, start_line = True, i, line
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            line += text.count("\n", i, j)
            i = j + 1
            continue
        if c == "$":
            m = _DOLLAR.match(text, i)
            if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                j = text.find(m.group(0), m.end())
                end = n if j < 0 else j + len(m.group(0))
                line += text.count("\n", i, end)
                i = end
                continue
        if c == ";":
            yield start_line, text[start:i].strip()
            has_code = False
        i += 1
    if has_code and text[start:].strip():
        yield start_line, text[start:].strip()

