"""Queries as the application keeps them: a .sql file where each query starts with a
`-- name: ...` header (the RegreSQL / yesql / sqlc convention), optionally followed by
`-- uses:`, `-- params:`, `-- budget_ms:`, `-- budget_cost:` lines. Also `QueryEntry`, one
query with the file:line it came from, whichever way it was written. Pure text; no SQL parsing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..core.suggest import did_you_mean
from ..errors import SpecError


@dataclass(frozen=True)
class QueryEntry:
    name: str
    sql: str
    params: tuple[Any, ...] | None
    uses: tuple[str, ...]
    budget_ms: float | None
    budget_cost: float | None
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


_HEADER = re.compile(r"^\s*--\s*(?P<key>[A-Za-z_]+)\s*:\s*(?P<value>.*?)\s*$")
_KEYS = ("name", "uses", "params", "budget_ms", "budget_cost")


def read_queries_file(path: Path, referenced_at: str) -> list[QueryEntry]:
    from .files import read_input

    try:
        text = read_input(path, "queries file", error=SpecError)
    except SpecError as e:
        reason = e.message.removeprefix(f"{path}: ").removeprefix("cannot read the queries file: ")
        raise SpecError(f"{referenced_at}: queries_file: cannot read {path}: {reason}") from None
    return parse_queries_sql(text, str(path))


def parse_queries_sql(text: str, file: str) -> list[QueryEntry]:
    """Each `-- name:` header starts a query; header lines right after it set its other keys;
    the SQL runs to the next `-- name:` (a trailing `;` is dropped)."""
    out: list[QueryEntry] = []
    cur: dict | None = None
    lines = text.splitlines()

    def finish() -> None:
        if cur is None:
            return
        body = "\n".join(cur["body"]).strip()
        body = re.sub(r";\s*\Z", "", body)
        if not body:
            raise SpecError(f"{file}:{cur['line']}: query {cur['name']!r}: no SQL after the header")
        out.append(QueryEntry(cur["name"], body, cur.get("params"), tuple(cur.get("uses", ())), cur.get("budget_ms"),
                              cur.get("budget_cost"), file, cur["sql_line"] or cur["line"]))

    for no, raw in enumerate(lines, 1):
        m = _HEADER.match(raw)
        in_header = cur is not None and not cur["sql_line"]
        if m and m.group("key").lower() == "name":
            finish()
            name = m.group("value")
            if not name:
                raise SpecError(f"{file}:{no}: '-- name:' without a name")
            cur = {"name": name, "line": no, "body": [], "sql_line": 0}
            continue
        if cur is None:
            if raw.strip() and not raw.strip().startswith("--"):
                raise SpecError(f"{file}:{no}: SQL before the first '-- name:' header; start each query with "
                                "'-- name: NAME'")
            continue
        if m and in_header:
            key, value = m.group("key").lower(), m.group("value")
            if key in _KEYS:
                cur[key] = _header_value(key, value, f"{file}:{no}: query {cur['name']!r}: {key}")
                continue
            near = did_you_mean(key, _KEYS, cutoff=0.75)
            if near:  # `-- budgetms: 50` is a typo, not a comment
                raise SpecError(f"{file}:{no}: query {cur['name']!r}: unknown header {key!r}{near}")
        if not cur["sql_line"] and raw.strip() and not raw.strip().startswith("--"):
            cur["sql_line"] = no
        if cur["sql_line"]:
            cur["body"].append(raw)
    finish()
    if not out:
        raise SpecError(f"{file}:1: no query found; start each query with '-- name: NAME'")
    return out


def _header_value(key: str, value: str, where: str) -> Any:
    if key == "uses":
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if key in ("budget_ms", "budget_cost"):
        try:
            number = float(value)
        except ValueError:
            raise SpecError(f"{where}: {value!r} is not a number") from None
        if number <= 0:
            raise SpecError(f"{where}: must be greater than 0")
        return number
    try:
        params = yaml.safe_load(value)
    except yaml.YAMLError:
        params = None
    if not isinstance(params, list) or any(isinstance(p, (list, dict)) for p in params):
        raise SpecError(f"{where}: expected a flow list of values, e.g. [\"ws_42\", 10]")
    return tuple(params)
