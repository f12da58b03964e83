"""Remove secrets from text before it is shown: passwords in connection strings, passwords the
process was given (remembered when a connection string is used), and the literal values in
another session's query text. Pure (the remembered secrets live in this module)."""
from __future__ import annotations

import os
import re
from urllib.parse import unquote

from .lexical import _DOLLAR_DELIM

# key=value connection strings (password='a b', password=x) and URIs (scheme://user:pass@host,
# ...?password=x); the value ends where libpq would end it.
_KV_PASSWORD = re.compile(r"""(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]+)""", re.I)
_URI_USERINFO = re.compile(r"(\w[\w+.-]*://[^/?#@\s]*?:)([^\s]*)(@)")

_SECRETS: set[str] = set()
_MIN_SECRET = 3   # shorter "secrets" would blank out ordinary words; the patterns still apply


def remember_secret(secret: str | None) -> None:
    if secret and len(secret) >= _MIN_SECRET:
        _SECRETS.add(secret)


def remember_dsn(dsn: str | None) -> None:
    """Remember every password a connection string (or PGPASSWORD) holds, raw and decoded, so
    that no later message can show it, even a message about a string libpq could not parse."""
    remember_secret(os.environ.get("PGPASSWORD"))
    if not dsn:
        return
    for m in _KV_PASSWORD.finditer(dsn):
        value = m.group(2)
        remember_secret(value)
        if value.startswith("'"):
            remember_secret(value.strip("'").replace("\\'", "'").replace("\\\\", "\\"))
        remember_secret(_decoded(value))
    m = re.match(r"\w[\w+.-]*://([^/?#]*)", dsn)
    if m and "@" in m.group(1):
        userinfo = m.group(1).rsplit("@", 1)[0]
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            remember_secret(raw)
            remember_secret(_decoded(raw))


def _decoded(text: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


def scrub(text: str) -> str:
    """Remove any password from a message or DSN before it is shown."""
    text = _KV_PASSWORD.sub(lambda m: m.group(1) + "***", text)
    text = _URI_USERINFO.sub(lambda m: m.group(1) + "***" + m.group(3), text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def redact_query(sql: str, limit: int = 120) -> str:
    """Another session's query text with every constant replaced (strings → '…', numbers → ?)
    and comments removed: `ALTER ROLE app PASSWORD '…'`. What kind of statement waits is
    useful to show; its values (passwords, personal data) are not ours to print."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
            continue
        if c == "'" or (c in "EeBbXxNn" and sql.startswith("'", i + 1) and not _word_before(sql, i)):
            start = i + (0 if c == "'" else 1)
            j = _after_string(sql, start + 1, backslash=c in "Ee")
            out.append("'…'")
            i = j
            continue
        if c == "$":
            m = _DOLLAR_DELIM.match(sql, i)
            if m and not _word_before(sql, i):
                j = sql.find(m.group(0), m.end())
                out.append("'…'")
                i = n if j < 0 else j + len(m.group(0))
                continue
        if c.isdigit() and not _word_before(sql, i):
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            out.append("?")
            i = j
            continue
        out.append(c)
        i += 1
    text = re.sub(r"\s+", " ", "".join(out)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _word_before(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$\"")


def _after_string(sql: str, i: int, backslash: bool) -> int:
    n = len(sql)
    while i < n:
        if backslash and sql[i] == "\\":
            i += 2
            continue
        if sql[i] == "'":
            if i + 1 < n and sql[i + 1] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return n
