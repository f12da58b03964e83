"""Remove secrets from text before it is shown: passwords in connection strings, passwords the
process was given (remembered when a connection string is used), and the literal values in
another session's query text. Pure (the remembered secrets live in this module)."""
from __future__ import annotations

import os
import re
from urllib.parse import unquote

from .lexical import Kind, tokens

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
    useful to show; its values (passwords, personal data) are not ours to print.

    >>> redact_query("UPDATE t SET pw = E'x\\\\'y', n = 42 /* why */ WHERE id = $1 AND t2.c = $q$z$q$")
    "UPDATE t SET pw = '…', n = ? WHERE id = $1 AND t2.c = '…'"
    """
    out: list[str] = []
    for tok in tokens(sql):
        if tok.kind is Kind.LINE_COMMENT:
            continue
        if tok.kind is Kind.BLOCK_COMMENT:
            out.append(" ")
        elif tok.kind is Kind.NUMBER:
            out.append("?")
        elif tok.kind in (Kind.STRING, Kind.DOLLAR):
            out.append("'…'")
        else:
            out.append(sql[tok.start:tok.end])
    text = re.sub(r"\s+", " ", "".join(out)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
