"""`fmt`: the canonical layout of a spec file, comments kept.

One job: text in, text out, with the same meaning. Canonical means: top-level keys in the
order version, defaults, manage, indexes, queries; each entry's keys in the order of the
reference (name, schema, table, columns, ..., comment, tags); a long-form column written as the shorthand
(`createdAt DESC`) where the shorthand reads back to exactly the same column; lower-case
`order`, `nulls` and `using`; short lists of plain names in flow style (`[a, b DESC]`);
two-space indentation. Comments stay with the key they follow (a section comment after the
last key of an entry stays after the entry).

ruamel.yaml is used because it is the YAML library that round-trips comments; PyYAML drops
them. A file that is not a valid spec is refused (with file:line) before anything is
rewritten: reordering keys nobody knows would not be canonical.
"""
from __future__ import annotations

import io
import re
from typing import Any

from ..core.ident import has_hidden
from .load import load_spec_text
from .models import parse_shorthand

TOP_ORDER = ("version", "defaults", "manage", "indexes", "queries", "queries_file")
MANAGE_ORDER = ("prune", "ignore", "tables")
INDEX_ORDER = ("name", "schema", "table", "columns", "unique", "include", "where", "using", "nulls_not_distinct",
               "with", "tablespace", "comment", "tags")
QUERY_ORDER = ("name", "sql", "params", "uses", "budget_ms", "budget_cost")
COLUMN_ORDER = ("column", "expression", "order", "nulls", "opclass", "collation")

_PLAIN_NAME = re.compile(r"^[^\s()\",:#'\[\]{}&*!|>%@`\\]+$")   # safe unquoted in flow style and shorthand
_KEYWORDS = re.compile(r"^(asc|desc|nulls|first|last)$", re.I)
FLOW_MAX = 80


def _hidden_in(text: str) -> bool:
    # tabs and line breaks are layout in a block scalar (a query's SQL), not something hidden
    return has_hidden(text.replace("\n", "").replace("\t", ""))


def _emitter():
    from ruamel.yaml.emitter import Emitter

    class SafeTextEmitter(Emitter):
        """ruamel writes a bidi override or a zero-width character raw, even when the file had
        it as an escape ("\u202e"): fmt would turn a visible escape into an invisible character
        that reorders how the line reads. A scalar holding one is written double-quoted, with
        everything outside printable ASCII escaped."""

        def choose_scalar_style(self):
            # a block scalar (| or >) cannot hold an escape, so what it holds was raw in the file
            # already (and ruamel marks a folded scalar's folds with BEL characters)
            if self.event.style not in ("|", ">") and isinstance(self.event.value, str) \
                    and _hidden_in(self.event.value):
                if self.analysis is None:
                    self.analysis = self.analyze_scalar(self.event.value)
                return '"'
            return super().choose_scalar_style()

        def write_double_quoted(self, text, split=True):
            if self.event.style in ("|", ">") or not _hidden_in(text):
                return super().write_double_quoted(text, split)
            allow, self.allow_unicode = self.allow_unicode, False
            try:
                return super().write_double_quoted(text, split)
            finally:
                self.allow_unicode = allow

    return SafeTextEmitter


def _yaml():
    from ruamel.yaml import YAML

    y = YAML()  # round trip: comments, quotes and key positions are kept
    y.Emitter = _emitter()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 120
    return y


def format_spec(text: str, file: str = "indexes.yaml") -> str:
    """The canonical text of one spec document (raises SpecError for an invalid spec)."""
    load_spec_text(text, file)
    y = _yaml()
    data = y.load(text)
    data = _reorder(data, TOP_ORDER)
    if isinstance(data.get("manage"), dict):
        data["manage"] = _reorder(data["manage"], MANAGE_ORDER)
    indexes = data.get("indexes")
    if indexes is not None:
        for i, entry in enumerate(indexes):
            indexes[i] = _format_entry(entry)
    queries = data.get("queries")
    if queries is not None:
        for i, q in enumerate(queries):
            queries[i] = _reorder(q, QUERY_ORDER)
    out = io.StringIO()
    y.dump(data, out)
    result = out.getvalue().rstrip("\n") + "\n"
    if text.startswith("---") and not result.startswith("---"):
        result = "---\n" + result
    return result


def _format_entry(entry):
    if isinstance(entry.get("using"), str):
        entry["using"] = entry["using"].strip().lower()
    cols = entry.get("columns")
    if cols is not None:
        for j, c in enumerate(cols):
            if isinstance(c, dict):
                for k in ("order", "nulls"):
                    if isinstance(c.get(k), str):
                        c[k] = c[k].lower()
                short = _shorthand(c)
                if short is not None and not _has_comments(c):
                    cols[j] = short
                else:
                    cols[j] = _reorder(c, COLUMN_ORDER)
        _flow_if_short(cols)
    if entry.get("include") is not None:
        _flow_if_short(entry["include"])
    return _reorder(entry, INDEX_ORDER)


def _shorthand(c: dict) -> str | None:
    """`{column: x, order: desc}` → `x DESC`, only when the shorthand reads back the same."""
    if set(c) - {"column", "order", "nulls"} or not isinstance(c.get("column"), str):
        return None
    name = c["column"]
    if not _PLAIN_NAME.match(name) or _KEYWORDS.match(name):
        return None
    text = name + (f" {c['order'].upper()}" if c.get("order") else "") + (
        f" NULLS {c['nulls'].upper()}" if c.get("nulls") else "")
    back = parse_shorthand(text)
    if (back.column, back.order, back.nulls) != (name, c.get("order"), c.get("nulls")):
        return None
    return text


def _flow_if_short(seq) -> None:
    """Short lists of plain strings read best on one line, as `import` writes them."""
    if not hasattr(seq, "fa") or _has_comments(seq):
        return
    plain = all(isinstance(x, str) and (_PLAIN_NAME.match(x.split(" ")[0]) and re.fullmatch(
        r"[^\s]+(?: (?:ASC|DESC))?(?: NULLS (?:FIRST|LAST))?", x)) for x in seq)
    if plain and sum(len(x) + 2 for x in seq) <= FLOW_MAX:
        seq.fa.set_flow_style()
    elif not plain:
        seq.fa.set_block_style()


def _has_comments(node: Any) -> bool:
    ca = getattr(node, "ca", None)
    return bool(ca is not None and (ca.items or ca.comment))


def _is_block_scalar(v) -> bool:
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

    return isinstance(v, (FoldedScalarString, LiteralScalarString))


def _last_holder(m, key):
    """Where the comment lines after `m[key]` live: ruamel keeps them on the deepest last item
    of a block collection, so descend to it. Returns (container, key-or-index)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    holder, k = m, key
    while True:
        v = holder[k]
        if isinstance(v, (CommentedMap, CommentedSeq)) and len(v) and not v.fa.flow_style():
            holder, k = v, (list(v.keys())[-1] if isinstance(v, CommentedMap) else len(v) - 1)
            continue
        return holder, k


def _take_tail(m, key) -> str | None:
    """Remove and return the comment lines (and blank lines) that follow `m[key]` on lines of
    their own; an end-of-line comment stays."""
    holder, k = _last_holder(m, key)
    item = holder.ca.items.get(k)
    if not item or len(item) < 3 or item[2] is None:
        return None
    tok = item[2]
    if _is_block_scalar(holder[k]):          # a block scalar ends its own line: all of it follows
        item[2] = None
        return tok.value
    eol, sep, rest = tok.value.partition("\n")
    if not rest:
        return None
    tok.value = eol + sep
    if not eol.strip():
        item[2] = None
    return rest


def _put_tail(m, key, text: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    holder, k = _last_holder(m, key)
    item = holder.ca.items.setdefault(k, [None, None, None, None])
    while len(item) < 4:
        item.append(None)
    if item[2] is not None:
        item[2].value = item[2].value.rstrip("\n") + "\n" + text
    else:
        item[2] = CommentToken(text if _is_block_scalar(holder[k]) else "\n" + text, CommentMark(0), None)


def _reorder(m, order: tuple[str, ...]):
    """The same mapping with known keys in `order` (unknown ones after, as found), each key's
    comments moved with it; the lines after the old last key (blank lines, a section heading for
    what follows) move to the new last key."""
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(m, CommentedMap):
        return m
    keys = list(m.keys())
    new_keys = [k for k in order if k in m] + [k for k in keys if k not in order]
    if new_keys == keys:
        return m
    tail = _take_tail(m, keys[-1]) if keys[-1] != new_keys[-1] else None
    out = CommentedMap()
    for k in new_keys:
        out[k] = m[k]
    for k in new_keys:
        if k in m.ca.items:
            out.ca.items[k] = m.ca.items[k]
    if m.ca.comment is not None:
        out.ca.comment = m.ca.comment
    if m.fa.flow_style():
        out.fa.set_flow_style()
    if tail is not None:
        _put_tail(out, new_keys[-1], tail)
    return out
