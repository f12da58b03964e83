"""IndexDefs → indexes.yaml a person would have written: shorthand columns where they fit,
long form otherwise, defaults left out (used by `import`). Planning the written spec against
the same database must show no change, so the texts are the server's own words.
"""
from __future__ import annotations

import re
from typing import Iterable

import yaml

from ..core.ident import has_hidden, is_hidden
from ..core.index import IndexDef, KeyPart

_SHORTHAND_SAFE = re.compile(r"^[^\s()\",:#'\[\]{}&*!|>%@`]+$")
_KEYWORD_TAIL = re.compile(r"^(asc|desc|nulls|first|last)$", re.I)


def key_entry(k: KeyPart, ordered: bool) -> str | dict:
    order = "desc" if k.desc else None
    nulls = None
    if ordered and k.nulls_first != k.desc:
        nulls = "first" if k.nulls_first else "last"
    if not ordered:
        order = None
    if not k.is_expression and not k.opclass and not k.collation and _SHORTHAND_SAFE.match(k.expr) \
            and not _KEYWORD_TAIL.match(k.expr):
        text = k.expr
        if order:
            text += " DESC"
        if nulls:
            text += f" NULLS {nulls.upper()}"
        return text
    out: dict = {"expression": k.sql or k.expr} if k.is_expression else {"column": k.expr}
    if order:
        out["order"] = order
    if nulls:
        out["nulls"] = nulls
    if k.opclass:
        out["opclass"] = k.opclass
    if k.collation:
        out["collation"] = k.collation
    return out


def _option_value(v: str):
    return int(v) if re.fullmatch(r"-?\d+", v) else v


def entry(d: IndexDef, default_schema: str = "public", comment: str | None = None) -> dict:
    e: dict = {"name": d.name, "table": d.table}
    if d.schema != default_schema:
        e["schema"] = d.schema
    e["columns"] = [key_entry(k, d.method == "btree") for k in d.keys]
    if d.unique:
        e["unique"] = True
    if d.include:
        e["include"] = list(d.include)
    if d.where is not None:
        e["where"] = d.where_sql or d.where
    if d.method != "btree":
        e["using"] = d.method
    if d.nulls_not_distinct:
        e["nulls_not_distinct"] = True
    if d.options:
        e["with"] = {k: _option_value(v) for k, v in d.options}
    if d.tablespace:
        e["tablespace"] = d.tablespace
    if comment or d.comment:
        e["comment"] = comment or d.comment
    return e


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as `fmt` writes them (PyYAML's default is not)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _list_repr(dumper: yaml.SafeDumper, data: list):
    flow = all(isinstance(x, str) and len(x) < 60 for x in data) and sum(len(x) for x in data) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list_repr)


class _FastDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter when present
    pass


_FastDumper.add_representer(list, _list_repr)


def _str_repr(dumper: yaml.SafeDumper, data: str):
    # a name read from the database may hold a newline, an escape code or a bidi override:
    # written double-quoted, where every such character becomes an escape (see dump_spec)
    if has_hidden(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _str_repr)
_FastDumper.add_representer(str, _str_repr)


def _escape_hidden(text: str) -> str:
    """Every hidden character of the YAML text as a double-quoted escape: they only occur in
    the double-quoted scalars `_str_repr` chose, where YAML reads \\uXXXX as the character."""
    if not has_hidden(text.replace("\n", "")):
        return text
    out = []
    for c in text:
        if c != "\n" and is_hidden(c):
            cp = ord(c)
            out.append(f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
        else:
            out.append(c)
    return "".join(out)


def dump_spec(defs: Iterable[IndexDef], header: str = "", default_schema: str = "public",
              managed: list[str] | None = None, ignore: list[str] | None = None) -> str:
    entries = [entry(d, default_schema) for d in defs]
    doc: dict = {"version": 1}
    if ignore:
        doc["manage"] = {"ignore": ignore}
    if managed:
        # the tables the import looked at, so that prune also covers tables left with no index
        doc.setdefault("manage", {})["tables"] = managed
    doc["indexes"] = entries
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
    return header + _escape_hidden(text)


def entry_yaml(d: IndexDef, default_schema: str = "public", comment: str | None = None) -> str:
    """One spec entry as a YAML list item, ready to paste under `indexes:` (used by `health`
    for the entry a finding asks to add)."""
    return _escape_hidden(yaml.dump([entry(d, default_schema, comment)], Dumper=_FastDumper, sort_keys=False,
                                    allow_unicode=True, width=120, default_flow_style=False))
