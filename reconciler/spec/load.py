"""indexes.yaml text → a merged `Spec` whose entries know their file:line; every error names
file, line and key. YAML is read with line marks (libyaml when present). Must not import
sqlglot or psycopg.
"""
from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..core.suggest import did_you_mean
from ..errors import SpecError
from .models import ColumnSpec, Defaults, Health, IndexSpec, Manage, QuerySpec, SpecFile
from .queries_file import QueryEntry, read_queries_file


@dataclass(frozen=True)
class Entry:
    """An IndexSpec with where it came from and its resolved schema.

    `source` is the IndexSpec, or (a large spec read back from the cache) the dump of one that
    was validated: the model is then only built when something asks for `spec`."""

    source: "IndexSpec | dict"
    schema: str
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @cached_property
    def spec(self) -> IndexSpec:
        s = self.source
        if isinstance(s, IndexSpec):
            return s
        return IndexSpec.model_construct(**{**s, "columns": [ColumnSpec.model_construct(**c) for c in s["columns"]]})

    @property
    def name(self) -> str:
        return self.source.name if isinstance(self.source, IndexSpec) else self.source["name"]

    @property
    def table(self) -> str:
        return self.source.table if isinstance(self.source, IndexSpec) else self.source["table"]

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

    def ignored(self, index_name: str) -> bool:
        return any(fnmatch.fnmatchcase(index_name, g) for g in self.ignore)

    @property
    def tables(self) -> list[tuple[str, str]]:
        seen: dict[tuple[str, str], None] = {}
        for e in self.entries:
            seen[(e.schema, e.table)] = None
        return list(seen)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


class _LineLoader(yaml.SafeLoader):
    """A safe loader that also remembers the line of every mapping key and sequence item."""


_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

def _compose_lines(node: yaml.Node, path: tuple, lines: dict, file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for k, v in node.value:
            key = k.value
            if key in seen:
                raise SpecError(f"{file}:{k.start_mark.line + 1}: {_dotted(path + (key,))}: key {key!r} "
                                "appears twice")
            seen.add(key)
            lines[path + (key,)] = k.start_mark.line + 1
            _compose_lines(v, path + (key,), lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _compose_lines(item, path + (i,), lines, file)


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


def load_spec_text(text: str, file: str = "indexes.yaml") -> tuple[SpecFile, dict]:
    """Parse and validate one spec document. Returns the model and the line map."""
    try:
        # One pass: compose (keeps line marks) then construct from the same nodes, with libyaml
        # when available: a 12,000-index spec parses in under a second instead of six.
        loader = _FastLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
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
        raise SpecError(f"{file}:{line}: YAML syntax error: {problem}") from None
    lines: dict = {}
    if node is None:
        raise SpecError(f"{file}:1: the file is empty; expected 'version: 1' and 'indexes:'")
    _compose_lines(node, (), lines, file)
    if not isinstance(data, dict):
        raise SpecError(f"{file}:1: expected a mapping with 'version' and 'indexes', got {type(data).__name__}")
    try:
        model = SpecFile.model_validate(data)
    except ValidationError as e:
        raise SpecError(_first_error(e, data, lines, file)) from None
    return model, lines


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
    err, override = _pick_error(e.errors())
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
        msg = f"unknown key {path[-1]!r}" + _suggest_key(path)
    elif err["type"] == "missing":
        msg = f"required key {path[-1]!r} is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return f"{file}:{line}: {label}: {msg}"


_KNOWN_KEYS = {
    "top": list(SpecFile.model_fields),
    "health": list(Health.model_fields),
    "index": list(IndexSpec.model_fields) + ["schema", "with"],
    "column": list(ColumnSpec.model_fields),
    "query": list(QuerySpec.model_fields),
}


def _suggest_key(path: tuple) -> str:

    key = str(path[-1])
    if len(path) == 1:
        pool = _KNOWN_KEYS["top"]
    elif path[0] == "health":
        pool = _KNOWN_KEYS["health"]
    elif path[0] == "queries":
        pool = _KNOWN_KEYS["query"]
    else:
        pool = _KNOWN_KEYS["index"] if len(path) == 3 else _KNOWN_KEYS["column"]
    pool = [p for p in pool if not p.endswith("_")]
    return did_you_mean(key, pool) or f" (allowed: {', '.join(pool)})"


def _rebuild(data: dict) -> SpecFile:
    """A SpecFile from the dump of one that was validated (no second validation); its indexes
    stay dumps until an Entry needs the model."""
    health = data.get("health") or {}
    return SpecFile.model_construct(version=data["version"], defaults=Defaults.model_construct(**data["defaults"]),
                                    manage=Manage.model_construct(**data["manage"]), indexes=data["indexes"],
                                    health=Health.model_construct(_fields_set=set(health), **{
                                        **Health().model_dump(), **health}),
                                    queries=[QuerySpec.model_construct(**q) for q in data.get("queries") or []],
                                    queries_file=data.get("queries_file"))


def _cached_load(text: str, file: str) -> tuple[SpecFile, dict]:
    """load_spec_text, remembered for large files (see `cache`): YAML parsing dominates a no-op
    plan of a big spec even with libyaml."""
    from . import cache

    hit = cache.get("spec", (file, text))
    if hit is not cache.MISS:
        try:
            data, lines = hit
            return _rebuild(data), lines
        except Exception:  # noqa: BLE001 - an entry of another shape is a miss
            pass
    model, lines = load_spec_text(text, file)
    dump = model.model_dump(by_alias=True)
    dump["manage"] = model.manage.model_dump(exclude_unset=True)  # "prune not said" must survive
    dump["health"] = model.health.model_dump(exclude_unset=True)  # so must "threshold not said"
    cache.put("spec", (file, text), (dump, lines))
    return model, lines


def load_spec(paths: list[str | Path]) -> Spec:
    """Read and merge spec files (a directory means every *.yaml / *.yml in it, sorted)."""
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
            if not found:
                raise SpecError(f"{p}: no *.yaml files in this directory")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise SpecError(f"{p}: no such file")
    entries: list[Entry] = []
    prune: bool | None = None
    prune_file = None
    ignore: list[str] = []
    globs: list[str] = []
    health: dict[str, tuple[object, str]] = {}   # threshold -> (value, file:line that set it)
    loaded: dict[Path, Path] = {}
    queries: list[QueryEntry] = []
    for f in files:
        if f.resolve() in loaded:  # `-f . -f indexes.yaml`: one file, read once
            continue
        loaded[f.resolve()] = f
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"{f}: cannot read: {e}") from None
        model, lines = _cached_load(text, str(f))
        if "prune" in model.manage.model_fields_set:  # a file that does not say keeps the others' value
            if prune is not None and prune != model.manage.prune:
                raise SpecError(f"{f}:{lines.get(('manage', 'prune'), 1)}: manage.prune is "
                                f"{str(model.manage.prune).lower()} here but {str(prune).lower()} in "
                                f"{prune_file}; the merged spec needs one value")
            prune, prune_file = model.manage.prune, f
        ignore.extend(g for g in model.manage.ignore if g not in ignore)
        globs.extend(g for g in model.manage.tables if g not in globs)
        for key in sorted(model.health.model_fields_set):
            value, where = getattr(model.health, key), f"{f}:{lines.get(('health', key), 1)}"
            if key in health and health[key][0] != value:
                raise SpecError(f"{where}: health.{key} is {value!r} here but {health[key][0]!r} at "
                                f"{health[key][1]}; the merged spec needs one value")
            health.setdefault(key, (value, where))
        for i, ix in enumerate(model.indexes):
            schema = (ix.get("schema") if isinstance(ix, dict) else ix.schema_) or model.defaults.schema_
            entries.append(Entry(ix, schema, str(f), lines.get(("indexes", i), 1)))
        for i, q in enumerate(model.queries):
            queries.append(QueryEntry(q.name, q.sql, tuple(q.params) if q.params is not None else None,
                                      tuple(q.uses), q.budget_ms, q.budget_cost, str(f),
                                      lines.get(("queries", i), 1)))
        qfiles = model.queries_file
        for j, qf in enumerate([qfiles] if isinstance(qfiles, str) else qfiles or []):
            key_line = lines.get(("queries_file", j)) or lines.get(("queries_file",), 1)
            queries.extend(read_queries_file(f.parent / qf, f"{f}:{key_line}"))
    seen: dict[tuple[str, str], Entry] = {}
    for e in entries:
        key = (e.schema, e.name)
        if key in seen:
            raise SpecError(f"{e.where}: index {e.name!r}: name already used at {seen[key].where} "
                            "(index names are unique per schema)")
        seen[key] = e
    named: dict[str, QueryEntry] = {}
    for q in queries:
        if q.name in named:
            raise SpecError(f"{q.where}: query {q.name!r}: name already used at {named[q.name].where} "
                            "(query names are unique)")
        named[q.name] = q
    return Spec(tuple(entries), bool(prune), tuple(ignore), tuple(str(f) for f in loaded.values()), tuple(globs),
                tuple(queries), Health(**{k: v for k, (v, _) in health.items()}))


def query_reference_problems(spec: Spec) -> list[tuple[QueryEntry, str]]:
    """Every `uses` that names no index of the spec, as (query, message)."""
    names = {e.name for e in spec.entries}
    out = []
    for q in spec.queries:
        for u in q.uses:
            if u not in names:
                out.append((q, f"uses: {u!r} is not an index of the spec" + did_you_mean(u, sorted(names))))
    return out


def glob_to_regex(glob: str) -> str:
    """A 'schema.table' glob as a PostgreSQL regular expression over 'schema.table'
    (a glob without a dot means the table in any schema)."""
    if "." not in glob:
        glob = "*." + glob
    out = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return "^" + out + "$"
