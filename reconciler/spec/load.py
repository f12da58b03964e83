"""indexes.yaml text → a merged `Spec` whose entries know their file:line; every error names
file, line and key. YAML is read with line marks (libyaml when present). Must not import
sqlglot or psycopg.
"""
from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from ..core.suggest import did_you_mean
from ..errors import ReconcilerError, SpecError
from .files import MAX_INPUT_BYTES, read_input
from .models import ColumnSpec, Defaults, Health, IndexSpec, Manage, QuerySpec, SpecFile, split_table_glob
from .queries_file import QueryEntry, parse_queries_sql


@dataclass(frozen=True)
class Entry:
    """An IndexSpec with where it came from and its resolved schema."""

    source: IndexSpec
    schema: str
    file: str
    line: int
    # the line of each key inside the entry, by its path in it (("where",), ("columns", 0,
    # "expression")): a problem of one key is reported at that key, not at `- name:`. Pairs
    # (path, line): a tuple, or a view that reads them from the file's line map when iterated
    key_lines: Iterable = field(default=(), compare=False, repr=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def where_of(self, *path) -> str:
        """file:line of the key at `path` in the entry (or of the nearest key around it)."""
        lines = dict(self.key_lines)
        while path:
            if path in lines:
                return f"{self.file}:{lines[path]}"
            path = path[:-1]
        return self.where

    @property
    def spec(self) -> IndexSpec:
        return self.source

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def table(self) -> str:
        return self.source.table

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self.source.tags if isinstance(self.source, IndexSpec) else self.source.get("tags") or ())


@dataclass(frozen=True)
class Spec:
    """Several spec files merged."""

    entries: tuple[Entry, ...]
    prune: bool
    ignore: tuple[str, ...]
    files: tuple[str, ...]
    table_globs: tuple[str, ...] = ()
    queries: tuple[QueryEntry, ...] = ()
    health: Health = Health()
    digest: str = ""          # of the files' content (`content_digest`): a saved plan records it

    def ignored(self, index_name: str) -> bool:
        # asked for every desired and live index: most specs ignore nothing
        return bool(self.ignore) and any(fnmatch.fnmatchcase(index_name, g) for g in self.ignore)

    @property
    def tables(self) -> list[tuple[str, str]]:
        """The (schema, table) pairs the entries name literally (a schema glob's are patterns)."""
        seen: dict[tuple[str, str], None] = {}
        for e in self.entries:
            if not is_schema_glob(e.schema):
                seen[(e.schema, e.table)] = None
        return list(seen)

    def glob_entry_patterns(self) -> list[tuple[str, str]]:
        """The tables of schema-glob entries, as (schema, table) LIKE pairs (see `glob_to_like`;
        the catalog reads them with the other managed tables, in one query)."""
        seen: dict[tuple[str, str], None] = {}
        for e in self.entries:
            if is_schema_glob(e.schema):
                seen[(_like(e.schema), _like(e.table))] = None
        return list(seen)


class _EntryKeyLines:
    """The line of every key inside each index entry of one file, grouped by entry on first
    use: only a problem reported at a key needs them, and one pass serves every entry."""

    __slots__ = ("_lines", "_by_entry")

    def __init__(self, lines: dict):
        self._lines = lines
        self._by_entry: dict[int, tuple] | None = None

    def of(self, i: int) -> tuple:
        if self._by_entry is None:
            inside: dict[int, list] = {}   # one pass over the line map: linear in the file
            for k, v in self._lines.items():
                if len(k) > 2 and k[0] == "indexes":
                    inside.setdefault(k[1], []).append((k[2:], v))
            self._by_entry = {i: tuple(pairs) for i, pairs in inside.items()}
        return self._by_entry.get(i, ())


class _KeyLines:
    """`Entry.key_lines` of one entry: its (path in the entry, line) pairs, read when iterated."""

    __slots__ = ("_keys", "_i")

    def __init__(self, keys: _EntryKeyLines, i: int):
        self._keys, self._i = keys, i

    def __iter__(self):
        return iter(self._keys.of(self._i))


_new = object.__new__


def is_schema_glob(schema: str) -> bool:
    """`schema: "tenant_*"`: `*` any run of characters, `?` one (reconcile.expand)."""
    return "*" in schema or "?" in schema


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's safe loader with a shortcut in tag resolution, which libyaml asks of Python for
    every scalar (a third of a large spec's load time): a quoted scalar, or a plain one whose
    first character starts no implicit type (bool, int, float, null, timestamp, merge), is a
    string, exactly as the full Resolver decides."""

    _STARTERS = frozenset(k for k in yaml.SafeLoader.yaml_implicit_resolvers if k)
    _PLAIN_MEMO = 4096   # plain scalars that start like a bool or number: keys such as `name`

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and not self.yaml_path_resolvers and None not in self.yaml_implicit_resolvers:
            if not implicit[0] or (value and value[0] not in self._STARTERS):
                return self.DEFAULT_SCALAR_TAG
            # A plain scalar's tag depends on its text alone; a spec repeats `name:`, `table:`
            # on every entry, and the full Resolver tries a list of patterns for each.
            memo = self.__dict__.setdefault("_plain", {})
            tag = memo.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(memo) < self._PLAIN_MEMO:
                    memo[value] = tag
            return tag
        return super().resolve(kind, value, implicit)

MAX_DEPTH = 32   # a spec nests five levels; deeper is not a spec (and would exhaust recursion)


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION = object()   # an anchor on a mapping or sequence: an alias of it is refused


def _build(loader, file: str, lines: dict) -> Any:
    """The document's data, built straight from libyaml's events in one loop (no node tree:
    composing one cost more than the parse), remembering the line of every mapping key and
    sequence item, and refusing what a spec never needs: duplicate keys, aliases of mappings
    and sequences (nine aliases of nine make a billion nodes out of 600 bytes), merge keys,
    and nesting deeper than MAX_DEPTH. Strings (nearly every scalar) are taken as they are;
    other scalars go through PyYAML's safe constructor. Syntax errors are PyYAML's
    (YAMLError, with marks), raised as the parser meets them."""
    get = loader.get_event
    get()                                   # StreamStartEvent
    first = get()
    if isinstance(first, yaml.StreamEndEvent):
        return None
    quick = not loader.yaml_path_resolvers and None not in loader.yaml_implicit_resolvers
    starters = _FastLoader._STARTERS
    plain: dict[str, str] = {}              # a plain scalar's tag depends on its text alone
    anchors: dict[str, Any] = {}
    stack: list = []                        # the enclosing containers' (cur, is_map, key, path, want_key)
    cur: Any = None                         # the container being filled (None: the root is next)
    is_map = want_key = False
    key: Any = None
    path: tuple = ()
    root: Any = None
    while True:
        ev = get()
        kind = type(ev)
        line = ev.start_mark.line + 1
        if kind is yaml.ScalarEvent:
            value: Any = ev.value
            tag = ev.tag
            if tag is None or tag == "!":
                implicit = ev.implicit
                if not implicit[0] or (quick and value and value[0] not in starters):
                    tag = _STR_TAG
                elif quick and value in plain:      # `name:`, `table:` on every entry
                    tag = plain[value]
                else:
                    tag = loader.resolve(yaml.ScalarNode, value, implicit)
                    if quick and len(plain) < _FastLoader._PLAIN_MEMO:
                        plain[value] = tag
            if tag != _STR_TAG:
                if tag == _MERGE_TAG and cur is not None and is_map and want_key:
                    raise SpecError(f"{file}:{line}: {_dotted(path)}: YAML merge keys (<<: *alias) are not "
                                    "allowed in a spec; write the keys out")
                try:
                    value = loader.construct_object(yaml.ScalarNode(tag, value, ev.start_mark, ev.end_mark,
                                                                    ev.style))
                except (ValueError, OverflowError, TypeError) as e:   # e.g. !!timestamp 2024-13-45
                    raise SpecError(f"{file}:{line}: cannot read this value ({type(e).__name__}: "
                                    f"{str(e).splitlines()[0][:80] if str(e) else ''})") from None
            if ev.anchor is not None:
                _anchor(anchors, ev, value)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if cur is not None and is_map and want_key:
                raise SpecError(f"{file}:{line}: {_dotted(path)}: a key must be a plain value")
            value = {} if kind is yaml.MappingStartEvent else []
            if ev.anchor is not None:
                _anchor(anchors, ev, _COLLECTION)
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            if not stack:
                root = cur
                break
            cur, is_map, key, path, want_key = stack.pop()
            continue
        elif kind is yaml.AliasEvent:
            if ev.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {ev.anchor!r}",
                                                  ev.start_mark)
            value = anchors[ev.anchor][0]
            if value is _COLLECTION:
                at = path if cur is None else path + ((key,) if is_map else (len(cur),))
                raise SpecError(f"{file}:{line}: {_dotted(at)}: YAML aliases (*name) are not allowed in a spec; "
                                "write the value out")
            kind = yaml.ScalarEvent         # an alias of a scalar is that scalar's value
        else:   # pragma: no cover - libyaml's event grammar allows nothing else here
            raise yaml.composer.ComposerError(None, None, f"unexpected {kind.__name__}", ev.start_mark)

        if cur is None:                     # the document's root
            if kind is yaml.ScalarEvent:
                root = value
                break
            cur, is_map, key, path, want_key = value, kind is yaml.MappingStartEvent, None, (), True
            continue
        if is_map:
            if want_key:
                _check_key(cur, value, file, line, path)
                key, want_key = value, False
                lines[path + (value,)] = line
                continue
            sub = path + (key,)
            cur[key] = value
            want_key = True
        else:
            sub = path + (len(cur),)
            lines[sub] = line
            cur.append(value)
        if len(sub) > MAX_DEPTH:
            raise SpecError(f"{file}:{line}: nested more than {MAX_DEPTH} levels deep; not a reconciler spec")
        if kind is not yaml.ScalarEvent:
            stack.append((cur, is_map, key, path, want_key))
            cur, is_map, key, path, want_key = value, kind is yaml.MappingStartEvent, None, sub, True
    get()                                   # DocumentEndEvent
    after = get()
    if not isinstance(after, yaml.StreamEndEvent):
        raise yaml.composer.ComposerError("expected a single document in the stream", first.start_mark,
                                          "but found another document", after.start_mark)
    return root


def _check_key(mapping: dict, key: Any, file: str, line: int, path: tuple) -> None:
    """Refuse a key that cannot be one (unhashable) or that the mapping already has."""
    try:
        seen = key in mapping
    except TypeError:   # an unhashable key slipped through construct_object
        raise SpecError(f"{file}:{line}: {_dotted(path)}: a key must be a plain value") from None
    if seen:
        raise SpecError(f"{file}:{line}: {_dotted(path + (key,))}: key {key!r} appears twice")


def _anchor(anchors: dict, ev, value: Any) -> None:
    """Remember an anchor's value (scalars) or that it names a collection, as libyaml's
    composer would: a name used twice is an error."""
    if ev.anchor in anchors:
        raise yaml.composer.ComposerError("found duplicate anchor; first occurrence", anchors[ev.anchor][1],
                                          "second occurrence", ev.start_mark)
    anchors[ev.anchor] = (value, ev.start_mark)


def _dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top)"


def _line_for(path: tuple, lines: dict) -> int:
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return 1


def read_yaml(text: str, file: str, error: type[ReconcilerError] = SpecError) -> tuple[Any, dict]:
    """One YAML document of an input file → (its data, or None when empty; the line of every
    mapping key and sequence item), built safely (`_build`: no alias, merge key or deep
    nesting), every problem one `error` naming file:line."""
    if len(text) > MAX_INPUT_BYTES:
        raise error(f"{file}: {len(text):,} characters; an input file may hold at most {MAX_INPUT_BYTES:,} bytes")
    lines: dict = {}
    try:
        # One pass over libyaml's events (libyaml when available: a 12,000-index spec parses in
        # a third of a second instead of six)
        loader = _FastLoader(text)
        try:
            data = _build(loader, file, lines)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        context, context_mark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context and context_mark is not None and context_mark.line + 1 != line:
            if "end of stream" in problem or "<stream end>" in problem:
                # The end of the file is rarely where the mistake is: point at what was left open.
                line = context_mark.line + 1
                problem += f" ({context} that starts on this line)"
            else:
                problem += f" ({context} that starts on line {context_mark.line + 1})"
        raise error(f"{file}:{line}: YAML syntax error: {problem}") from None
    except SpecError as e:
        if error is SpecError:
            raise
        raise error(e.message, e.hint) from None
    return data, lines


def load_spec_text(text: str, file: str = "indexes.yaml",
                   problems: list[SpecError] | None = None) -> tuple[SpecFile | None, dict]:
    """Parse and validate one spec document. Returns the model and the line map. With
    `problems`, every validation problem of the document is added to it (model None) instead of
    the first being raised; a document that cannot be read at all still raises."""
    data, lines = read_yaml(text, file)
    if data is None:
        raise SpecError(f"{file}:1: the file is empty; expected 'version: 1' and 'indexes:'")
    if not isinstance(data, dict):
        raise SpecError(f"{file}:1: expected a mapping with 'version' and 'indexes', got {type(data).__name__}")
    if not set(data) & set(_KNOWN_KEYS["top"]):
        # not a spec at all (say, a link to /etc/shadow): say so without quoting its content
        raise SpecError(f"{file}:1: not a reconciler spec: no 'version', 'indexes', 'manage' or 'defaults' key")
    try:
        model = SpecFile.model_validate(data)
    except ValidationError as e:
        if problems is None:
            raise SpecError(_first_error(e, data, lines, file)) from None
        problems.extend(SpecError(m) for m in _all_errors(e, data, lines, file))
        return _without_bad_entries(data, lines, e)
    return model, lines


def _without_bad_entries(data: dict, lines: dict, e: ValidationError) -> tuple[SpecFile | None, dict]:
    """The document without the index and query entries pydantic refused (their problems are
    reported): the model of the rest, so that `validate` checks the good entries too, and the
    line map renumbered to match. None when a problem is outside the entries."""
    bad: dict[str, set] = {"indexes": set(), "queries": set()}
    for err in e.errors():
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] in bad and isinstance(loc[1], int):
            bad[loc[0]].add(loc[1])
        else:
            return None, lines
    kept = dict(data)
    renumbered = {k: v for k, v in lines.items() if not (k and k[0] in bad and len(k) > 1)}
    for key, drop in bad.items():
        items = data.get(key)
        if not isinstance(items, list):
            continue
        kept[key] = []
        for i, item in enumerate(items):
            if i in drop:
                continue
            j = len(kept[key])
            kept[key].append(item)
            renumbered.update({(key, j, *k[2:]): v for k, v in lines.items()
                               if len(k) > 1 and k[0] == key and k[1] == i})
    try:
        return SpecFile.model_validate(kept), renumbered
    except ValidationError:
        return None, lines


_TYPE_WORDS = {"bool_type": "a boolean", "int_type": "an integer", "float_type": "a number",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping"}


def _pick_error(errors: list) -> tuple[dict, str | None]:
    """The error to report, and a message replacing pydantic's when it reported one error per
    branch of a union (`columns: [str | ColumnSpec]`, `with: {name: bool|int|float|str}`): the
    first branch's complaint ("Input should be a valid string" for a mapping) is misleading."""
    first = errors[0]
    if first["type"] == "missing":
        # `tabel: t` is reported both as unknown and as `table` missing: the typo is the news
        typo = next((x for x in errors if x["type"] == "extra_forbidden" and x["loc"][:-1] == first["loc"][:-1]), None)
        if typo is not None:
            return typo, None
    branch = next((i for i, p in enumerate(first["loc"]) if isinstance(p, str) and (
        p.startswith("function-") or p in ("str", "ColumnSpec", "bool", "int", "float"))), None)
    if branch is None:
        return first, None
    at = first["loc"][:branch]
    same_place = [x for x in errors if x["loc"][:branch] == at]
    column_spec = [x for x in same_place if len(x["loc"]) > branch and "ColumnSpec" in str(x["loc"][branch])]
    if column_spec:
        value = first.get("input")
        if isinstance(value, dict):
            return column_spec[0], None   # meant as the long form: report what is wrong in it
        if not isinstance(value, str):
            return first, (f"expected a column name or a mapping with 'column' or 'expression', "
                           f"got {type(value).__name__}")
        return first, None
    kinds = [_TYPE_WORDS[x["type"]] for x in same_place if x["type"] in _TYPE_WORDS]
    if len(kinds) > 1 and len(kinds) == len(same_place):
        got = type(first.get("input")).__name__
        return first, f"expected {', '.join(kinds[:-1])} or {kinds[-1]}, got {got}"
    return first, None


def _first_error(e: ValidationError, data: dict, lines: dict, file: str) -> str:
    return _format_error(*_pick_error(e.errors()), data, lines, file)


_UNION_BRANCHES = ("str", "ColumnSpec", "bool", "int", "float")


def _all_errors(e: ValidationError, data: dict, lines: dict, file: str) -> list[str]:
    """Every problem pydantic found, one message each, in the order of the file: the errors of
    one place (a key, or an item whose union branches each complained) are one problem, told as
    `_pick_error` tells it; a required key reported missing next to an unknown key of the same
    mapping is the same typo, told once."""
    errors = e.errors()
    typo_parents = {tuple(x["loc"][:-1]) for x in errors if x["type"] == "extra_forbidden"}
    groups: dict[tuple, list] = {}
    for x in errors:
        if x["type"] == "missing" and tuple(x["loc"][:-1]) in typo_parents:
            continue
        loc = x["loc"]
        branch = next((i for i, p in enumerate(loc) if isinstance(p, str) and (
            p.startswith("function-") or p in _UNION_BRANCHES)), len(loc))
        groups.setdefault(tuple(loc[:branch]), []).append(x)
    out = [_format_error(*_pick_error(g), data, lines, file) for g in groups.values()]
    out = list(dict.fromkeys(out))

    def line_of(message: str) -> int:
        rest = message[len(file) + 1:]
        return int(rest.split(":", 1)[0]) if rest.split(":", 1)[0].isdigit() else 0

    return sorted(out, key=line_of)


def _format_error(err: dict, override: str | None, data: dict, lines: dict, file: str) -> str:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p.startswith("function-") or p in (
        "str", "ColumnSpec", "bool", "int", "float", "literal['asc','desc']"))))
    # pydantic adds union-branch names to loc: keep only real keys and indexes
    clean: list = []
    node: Any = data
    for p in loc:
        if isinstance(node, dict) and p in node or isinstance(node, list) and isinstance(p, int) and p < len(node):
            clean.append(p)
            node = node[p]
        elif isinstance(node, dict) and isinstance(p, str) and p not in node and err["type"] in (
                "extra_forbidden", "missing"):
            clean.append(p)
            break
    path = tuple(clean)
    line = _line_for(path, lines)
    label = _dotted(path)
    if len(path) >= 2 and path[0] == "indexes" and isinstance(path[1], int):
        entry = data["indexes"][path[1]]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label = f"index {entry['name']!r}: " + (_dotted(path[2:]) if len(path) > 2 else "entry")
    if len(path) >= 2 and path[0] == "queries" and isinstance(path[1], int):
        entry = data["queries"][path[1]]
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label = f"query {entry['name']!r}: " + (_dotted(path[2:]) if len(path) > 2 else "entry")
    msg = override or err["msg"]
    if err["type"] == "extra_forbidden":
        key = path[-1]
        shown_key = repr(key) if isinstance(key, str) and re.fullmatch(r"[\w -]{1,40}", key) else "(not shown)"
        msg = f"unknown key {shown_key}" + _suggest_key(path)
    elif err["type"] == "missing":
        msg = f"required key {path[-1]!r} is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{file}:{line}: {label}: {msg}"


def _keys(model) -> list[str]:
    """The keys a spec writes for a model: field aliases (`schema`, `with`) where they have one."""
    return [f.alias or name for name, f in model.model_fields.items()]


_KNOWN_KEYS = {
    "top": list(SpecFile.model_fields),
    "manage": _keys(Manage),
    "defaults": _keys(Defaults),
    "health": list(Health.model_fields),
    "index": list(IndexSpec.model_fields) + ["schema", "with"],
    "column": list(ColumnSpec.model_fields),
    "query": list(QuerySpec.model_fields),
}


def _suggest_key(path: tuple) -> str:

    key = str(path[-1])
    if len(path) == 1:
        pool = _KNOWN_KEYS["top"]
    elif path[0] in ("health", "manage", "defaults"):
        pool = _KNOWN_KEYS[path[0]]
    elif path[0] == "queries":
        pool = _KNOWN_KEYS["query"]
    else:
        pool = _KNOWN_KEYS["index"] if len(path) == 3 else _KNOWN_KEYS["column"]
    pool = [p for p in pool if not p.endswith("_")]
    return did_you_mean(key, pool) or f" (allowed: {', '.join(pool)})"


def load_spec(paths: list[str | Path], problems: list[SpecError] | None = None) -> Spec:
    """Read and merge spec files (a directory means every *.yaml / *.yml in it, sorted).

    The first problem is raised, unless `problems` is given (`validate`): then every problem of
    every file is added to it, in file order, and the result is the spec of what could be read
    (so that the entries of the files that loaded are checked too)."""

    def fail(err: SpecError) -> None:
        if problems is None:
            raise err
        problems.append(err)

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
            if not found:
                fail(SpecError(f"{p}: no *.yaml files in this directory"))
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            fail(SpecError(f"{p}: no such file"))
    entries: list[Entry] = []
    prune: bool | None = None
    prune_file = None
    ignore: list[str] = []
    globs: list[str] = []
    health: dict[str, tuple[object, str]] = {}   # threshold -> (value, file:line that set it)
    loaded: dict[Path, Path] = {}
    queries: list[QueryEntry] = []
    texts: list[str] = []
    for f in files:
        if f.resolve() in loaded:  # `-f . -f indexes.yaml`: one file, read once
            continue
        loaded[f.resolve()] = f
        try:
            text = read_input(f, "spec file", error=SpecError)
            texts.append(text)
            model, lines = load_spec_text(text, str(f), problems)
        except SpecError as e:
            fail(e)
            continue
        if model is None:   # its problems are in `problems`
            continue
        if "prune" in model.manage.model_fields_set:  # a file that does not say keeps the others' value
            if prune is not None and prune != model.manage.prune:
                fail(SpecError(f"{f}:{lines.get(('manage', 'prune'), 1)}: manage.prune is "
                               f"{str(model.manage.prune).lower()} here but {str(prune).lower()} in "
                               f"{prune_file}; the merged spec needs one value"))
            prune, prune_file = model.manage.prune, f
        ignore.extend(g for g in model.manage.ignore if g not in ignore)
        globs.extend(g for g in model.manage.tables if g not in globs)
        for key in sorted(model.health.model_fields_set):
            value, where = getattr(model.health, key), f"{f}:{lines.get(('health', key), 1)}"
            if key in health and health[key][0] != value:
                fail(SpecError(f"{where}: health.{key} is {value!r} here but {health[key][0]!r} at "
                               f"{health[key][1]}; the merged spec needs one value"))
            health.setdefault(key, (value, where))
        keys = _EntryKeyLines(lines)
        name, default_schema = str(f), model.defaults.schema_
        for i, ix in enumerate(model.indexes):
            # Entry(...) without the frozen dataclass's __init__ (one object.__setattr__ per
            # field): the same object, a third of the cost, for every entry of a large spec
            e = _new(Entry)
            e.__dict__.update(source=ix, schema=ix.schema_ or default_schema, file=name,
                              line=lines.get(("indexes", i), 1), key_lines=_KeyLines(keys, i))
            entries.append(e)
        for i, q in enumerate(model.queries):
            queries.append(QueryEntry(q.name, q.sql, tuple(q.params) if q.params is not None else None,
                                      tuple(q.uses), q.budget_ms, q.budget_cost, str(f),
                                      lines.get(("queries", i), 1)))
        qfiles = model.queries_file
        for j, qf in enumerate([qfiles] if isinstance(qfiles, str) else qfiles or []):
            key_line = lines.get(("queries_file", j)) or lines.get(("queries_file",), 1)
            qpath = f.parent / qf
            try:
                qtext = read_input(qpath, "queries file", error=SpecError)
            except SpecError as e:
                reason = e.message.removeprefix(f"{qpath}: ").removeprefix("cannot read the queries file: ")
                fail(SpecError(f"{f}:{key_line}: queries_file: cannot read {qpath}: {reason}"))
                continue
            texts.append(qtext)   # part of the spec's content (digest)
            try:
                queries.extend(parse_queries_sql(qtext, str(qpath)))
            except SpecError as e:
                fail(e)
    seen: dict[tuple[str, str], Entry] = {}
    for e in entries:
        key = (e.schema, e.name)
        if key in seen:
            fail(SpecError(f"{e.where}: index {e.name!r}: name already used at {seen[key].where} "
                           "(index names are unique per schema)"))
            continue
        seen[key] = e
    named: dict[str, QueryEntry] = {}
    for q in queries:
        if q.name in named:
            fail(SpecError(f"{q.where}: query {q.name!r}: name already used at {named[q.name].where} "
                           "(query names are unique)"))
            continue
        named[q.name] = q
    return Spec(tuple(entries), bool(prune), tuple(ignore), tuple(str(f) for f in loaded.values()), tuple(globs),
                tuple(queries), Health(**{k: v for k, (v, _) in health.items()}), content_digest(texts))


def query_reference_problems(spec: Spec) -> list[tuple[QueryEntry, str]]:
    """Every `uses` that names no index of the spec, as (query, message)."""
    names = {e.name for e in spec.entries}
    out = []
    for q in spec.queries:
        for u in q.uses:
            if u not in names:
                out.append((q, f"uses: {u!r} is not an index of the spec" + did_you_mean(u, sorted(names))))
    return out


def content_digest(texts) -> str:
    """A digest of a spec's content: its files' texts in load order, names left out (so that
    `-f ./indexes.yaml` and `-f indexes.yaml` are one spec)."""
    h = hashlib.sha256()
    for text in texts:
        h.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest().encode() + b"\n")
    return "sha256:" + h.hexdigest()


def glob_to_like(glob: str) -> tuple[str, str]:
    """A 'schema.table' glob (`manage.tables`) as two SQL LIKE patterns (escape character
    backslash), matched against the schema and the table apart: `public.*` does not match a
    table of schema "public.x". `*` is any run of characters, `?` one character; the rest is
    literal. A glob without a dot means the table in any schema."""
    schema, table = split_table_glob(glob)
    return _like(schema), _like(table)


def _like(glob: str) -> str:
    out = []
    for c in glob:
        out.append("%" if c == "*" else "_" if c == "?" else "\\" + c if c in "%_\\" else c)
    return "".join(out)
