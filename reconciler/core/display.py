"""Text from outside (names in the database, spec values, server messages) made safe to print:
every character that would not show as itself (a newline, ESC and other controls, bidi
overrides, zero-width characters) is written as a visible escape, so one item stays on one
line and a terminal, a SQL script or a pull-request comment shows what is really there. Pure.
"""
from __future__ import annotations

import re

from .ident import is_hidden

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def shown(text: object) -> str:
    """`text` on one visible line: hidden characters written as escapes (``\\n``, ``\\x1b``)."""
    s = str(text)
    if s.isascii() and s.isprintable():
        return s
    return "".join(_escape(c) if is_hidden(c) else c for c in s)


def shown_lines(text: str) -> str:
    """Several lines of text: each line made safe, the line breaks kept."""
    return "\n".join(shown(line) for line in text.split("\n"))


def json_safe(text: str) -> str:
    """JSON text (from json.dumps) with every hidden character inside its strings written as a
    \\u escape: json.dumps(ensure_ascii=False) leaves C1 controls, bidi overrides and line
    separators raw. Outside strings JSON has only ASCII punctuation and whitespace (the newlines
    and indents of an indented document, which stay). ASCII text (the usual case) is settled by two
    scans in C (a health report is megabytes); otherwise one regex scan finds the candidates and
    only the distinct ones get their category looked up."""
    if text.isascii() and "\x7f" not in text:   # C speed: json.dumps escapes C0 controls itself
        return text
    hidden = {c for c in set(_JSON_CANDIDATES.findall(text)) if is_hidden(c)}
    if not hidden:
        return text
    return _JSON_CANDIDATES.sub(lambda m: _json_escape(m.group()) if m.group() in hidden else m.group(), text)


# every character but printable ASCII and JSON's own whitespace
_JSON_CANDIDATES = re.compile(r"[^\x20-\x7e\n\t\r]")


def _json_escape(c: str) -> str:
    cp = ord(c)
    if cp > 0xFFFF:   # JSON's \\u holds 16 bits: a surrogate pair
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"
    return f"\\u{cp:04x}"
