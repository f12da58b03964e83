"""The shape of indexes.yaml as pydantic models (`extra="forbid"`: a typo is an error), and
the JSON Schema editors read (`reconciler schema`). SQL fragments are checked by `normalize`,
the database by `app.validate`. Must not import sqlglot or psycopg.
"""
import math
import re
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..core.ident import (
    NAME_MAX_BYTES,
    UnsafeSQLValue,
    check_option_name,
    check_option_value,
    opclass_sql,
)

# Every value below reaches SQL or a terminal. Names are checked here, where the error can
# still name file:line: within PostgreSQL's 63-byte limit (longer names are silently
# truncated, so they would name something else), never a NUL (names and text are C strings
# on the server). SQL fragments are checked by `normalize`.


def _no_nul(v: Any) -> Any:
    if isinstance(v, str) and "\x00" in v:
        raise ValueError("contains a NUL byte, which PostgreSQL cannot store")
    return v


def _name(v: str) -> str:
    """A literal identifier, case kept."""
    _no_nul(v)
    if not v or not v.strip():
        raise ValueError("must not be empty")
    if len(v.encode()) > NAME_MAX_BYTES:
        raise ValueError(f"{v!r} is {len(v.encode())} bytes; PostgreSQL names are at most "
                         f"{NAME_MAX_BYTES} bytes (longer ones are silently truncated)")
    return v


def _opclass(v: str | None) -> str | None:
    if v is not None:
        _no_nul(v)
        try:
            opclass_sql(v)
        except UnsafeSQLValue as e:
            raise ValueError(str(e)) from None
    return v


# Default factories are plain functions, not `list`, `dict` or a model class: pydantic reads a
# factory's signature (does it take the validated data?), and for a builtin that means parsing
# its text signature with `tokenize`, whose first use compiles a large regex (~10 ms, paid at
# every start of every command), and for a model class building the class's signature.
def _no_items() -> list:
    return []


def _no_options() -> dict:
    return {}


Name = Annotated[str, AfterValidator(_name)]
Text = Annotated[str, AfterValidator(_no_nul)]


class ColumnSpec(BaseModel):
    """One key column in the long form: exactly one of `column` or `expression`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: Name | None = Field(None, description="column name, taken literally (case kept)")
    expression: Text | None = Field(None, description="SQL expression (SQL rules: quote \"camelCase\")")
    order: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None
    opclass: Annotated[str, AfterValidator(_opclass)] | None = Field(
        None, description="operator class, e.g. text_pattern_ops, gin_trgm_ops, public.gist_trgm_ops(siglen=32) "
                          "(SQL rules: unquoted names fold to lower case)")
    collation: Name | None = Field(None, description="collation name, taken literally, e.g. C")

    @field_validator("order", "nulls", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_of(self) -> "ColumnSpec":
        if (self.column is None) == (self.expression is None):
            raise ValueError("give exactly one of 'column' or 'expression'")
        for field_name in ("column", "expression"):
            v = getattr(self, field_name)
            if v is not None and not v.strip():
                raise ValueError(f"'{field_name}' is empty")
        return self


_SHORTHAND = re.compile(r"^\s*(?P<name>.+?)(?:\s+(?P<order>ASC|DESC))?(?:\s+NULLS\s+(?P<nulls>FIRST|LAST))?\s*$",
                        re.I | re.S)


_NOT_A_NAME = re.compile(r"[()\s,:]")


@lru_cache(maxsize=16384)
def parse_shorthand(text: str) -> ColumnSpec:
    """``createdAt DESC NULLS LAST`` → ColumnSpec(column='createdAt', order='desc', nulls='last').

    Once per distinct text (a spec names the same columns on table after table; ColumnSpec is
    frozen, so one instance serves them all), and validated as any ColumnSpec is."""
    m = _SHORTHAND.match(text)
    if not m or not m.group("name").strip():
        raise ValueError(f"cannot read column {text!r}; write NAME [ASC|DESC] [NULLS FIRST|LAST]")
    name = m.group("name").strip()
    if name.startswith('"') and name.endswith('"') and len(name) > 1:
        name = name[1:-1].replace('""', '"')
    elif _NOT_A_NAME.search(name):
        raise ValueError(f"{text!r} is not a column name; use '- expression: {name}' for an expression")
    _name(name)   # its own message, as the `columns` item's error (ColumnSpec's would be nested)
    return ColumnSpec(column=name, order=m.group("order"), nulls=m.group("nulls"))


OptionValue = Union[bool, int, float, str]
ParamValue = Union[bool, int, float, str, None]
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


class IndexSpec(BaseModel):
    """One index the spec wants."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Name = Field(description="index name (≤ 63 bytes), taken literally")
    table: Name = Field(description="table or materialized view, taken literally (case kept)")
    schema_: Name | None = Field(None, alias="schema", description="defaults to defaults.schema")
    columns: list[Union[str, ColumnSpec]] = Field(min_length=1, description="key columns, in order")
    unique: bool = False
    include: list[Name] = Field(default_factory=_no_items, description="INCLUDE columns (covering index)")
    where: Text | None = Field(None, description="partial index predicate, SQL")
    using: str = Field("btree", description="access method: btree|hash|gin|gist|brin|spgist")
    nulls_not_distinct: bool = False
    with_: dict[str, OptionValue] = Field(default_factory=_no_options, alias="with", description="storage options")
    tablespace: Name | None = None
    comment: Text | None = None
    tags: list[str] = Field(default_factory=_no_items, description="labels for `--select tag=NAME` (phased rollout)")

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not _TAG.fullmatch(t):
                raise ValueError(f"tag {t!r}: use letters, digits, '_', '-', '.', ':' (no spaces, no '=' or ',')")
        return v

    @field_validator("using", mode="before")
    @classmethod
    def _method(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", v) or len(v) > NAME_MAX_BYTES:
                raise ValueError(f"{v!r} is not an access method name")
        return v

    @field_validator("with_")
    @classmethod
    def _options(cls, v: dict) -> dict:
        # Storage options are printed into WITH (...): names are words, values numbers or words.
        for key, value in v.items():
            try:
                check_option_name(key)
                if isinstance(value, float) and not math.isfinite(value):
                    raise UnsafeSQLValue(f"{key}: {value!r} is not a storage option value")
                if not isinstance(value, bool):
                    check_option_value(str(value))
            except UnsafeSQLValue as e:
                raise ValueError(str(e)) from None
        return v

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [parse_shorthand(c) if isinstance(c, str) else c for c in v]
        return v

    @field_validator("where")
    @classmethod
    def _where(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("empty predicate; leave 'where' out for a full index")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "IndexSpec":
        if self.nulls_not_distinct and not self.unique:
            raise ValueError("nulls_not_distinct needs unique: true")
        return self

    @property
    def key_columns(self) -> list[ColumnSpec]:
        return [c if isinstance(c, ColumnSpec) else parse_shorthand(c) for c in self.columns]


class QuerySpec(BaseModel):
    """One query the indexes exist for: checked by `verify`, and by `plan` against each change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="a name for reports (unique in the spec)")
    sql: str = Field(description="one statement; $1, $2 ... for parameters")
    params: list[ParamValue] | None = Field(None, description="sample values for $1, $2 ...; without them the "
                                            "query is explained with a generic plan")
    uses: list[str] = Field(default_factory=_no_items, description="spec index names the plan must use")
    budget_ms: float | None = Field(None, gt=0, description="`verify --analyze`: median measured time must stay below")
    budget_cost: float | None = Field(None, gt=0, description="estimated plan cost must stay below (verify, plan)")

    @field_validator("name", "sql")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("must not be empty")
        return v


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_: Name = Field("public", alias="schema")


def _table_glob(v: str) -> str:
    _no_nul(v)
    split_table_glob(v)
    return v


def split_table_glob(glob: str) -> tuple[str, str]:
    """'schema.table' glob → (schema glob, table glob), split on the first dot outside double
    quotes; quotes only protect dots and are removed. No dot: the table in any schema."""
    parts, cur, quoted = [], "", False
    for c in glob:
        if c == '"':
            quoted = not quoted
        elif c == "." and not quoted and not parts:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if quoted:
        raise ValueError(f"{glob!r}: a double quote is not closed")
    parts.append(cur)
    if len(parts) == 1:
        return "*", parts[0]
    if not parts[0] or not parts[1]:
        raise ValueError(f"{glob!r} is not a 'schema.table' glob")
    return parts[0], parts[1]


class Manage(BaseModel):
    """Which live indexes the spec owns."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prune: bool = Field(False, description="drop indexes on managed tables that the spec does not list")
    ignore: list[Text] = Field(default_factory=_no_items, description="index-name globs never touched nor reported")
    tables: list[Annotated[str, AfterValidator(_table_glob)]] = Field(
        default_factory=_no_items, description="more managed tables, as 'schema.table' globs (e.g. 'public.*'; "
        "schema and table match apart, a glob without a dot means any schema; double-quote a name with a "
        "dot): managed even when no entry names them, so prune can empty them")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.I)
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.I)
_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4,
               "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


def parse_duration(v: Any) -> Any:
    """``30d`` / ``12h`` / ``90min`` / ``45s`` / a number of seconds → seconds (int)."""
    if isinstance(v, bool):
        raise ValueError("expected a duration such as 30d, 12h or 90min")
    if isinstance(v, (int, float)):
        seconds = v
    else:
        m = _DURATION.match(str(v))
        if not m:
            raise ValueError(f"cannot read duration {v!r} (examples: 30d, 12h, 90min, 45s)")
        seconds = float(m.group(1)) * _DURATION_UNITS[(m.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError("must not be negative")
    return int(seconds)


def parse_size(v: Any) -> Any:
    """``1MB`` / ``512kB`` / ``2GB`` / a number of bytes → bytes (int); units are powers of 1024,
    as PostgreSQL's pg_size_pretty prints them."""
    if isinstance(v, bool):
        raise ValueError("expected a size such as 1MB or 512kB")
    if isinstance(v, (int, float)):
        size = v
    else:
        m = _SIZE.match(str(v))
        if not m:
            raise ValueError(f"cannot read size {v!r} (examples: 1MB, 512kB, 2GB, 0)")
        size = float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    if size < 0:
        raise ValueError("must not be negative")
    return int(size)


Duration = Annotated[int, BeforeValidator(parse_duration),
                     WithJsonSchema({"anyOf": [{"type": "string", "pattern": _DURATION.pattern},
                                               {"type": "integer", "minimum": 0}]})]
Size = Annotated[int, BeforeValidator(parse_size),
                 WithJsonSchema({"anyOf": [{"type": "string", "pattern": _SIZE.pattern},
                                           {"type": "integer", "minimum": 0}]})]
Ratio = Annotated[float, Field(ge=0, le=1)]


class Health(BaseModel):
    """Thresholds of `reconciler health` (and of what `reconciler maintain` acts on). Crossing any
    of them makes `health` exit 2. The defaults are the indexing document's."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_index_hit_ratio: Ratio = Field(
        0.99, description="per table: index blocks found in shared buffers / all index blocks read; lower is a "
                          "finding (judged once a table's indexes had at least 1,000 block reads)")
    max_seq_scan_ratio: Ratio = Field(
        0.01, description="per table: sequential scans / all scans; higher is a finding (judged for tables with "
                          "at least min_table_rows rows and 100 scans)")
    unused_min_stats_age: Duration = Field(
        "30d", validate_default=True, description="an index with no scans is only called unused when the statistics cover at "
                                "least this long (since the last statistics reset, on every node): 30d, 12h, 90min")
    max_bloat_ratio: Ratio = Field(
        0.5, description="btree: estimated wasted space / index size; higher is a finding, and `maintain` "
                         "rebuilds it with REINDEX INDEX CONCURRENTLY")
    min_unused_size: Size = Field(
        "1MB", validate_default=True, description="unused indexes smaller than this are not reported (1MB, 512kB)")
    min_bloat_size: Size = Field(
        "1MB", validate_default=True, description="bloat wasting less than this is not reported, whatever its ratio (small indexes "
                               "carry natural slack)")
    min_table_rows: int = Field(
        10000, ge=0, description="tables with fewer live rows are not judged on sequential scans (a seq scan is "
                                 "the best plan for a small table)")
    max_stale_ratio: float = Field(
        0.1, ge=0, description="statistics are stale when the rows modified since the last ANALYZE exceed 50 + "
                               "this share of the table's rows (autovacuum's own rule); `maintain` ANALYZEs them")


def _defaults() -> "Defaults":
    return Defaults()


def _manage() -> "Manage":
    return Manage()


def _health() -> "Health":
    return Health()


class SpecFile(BaseModel):
    """The whole of indexes.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=_defaults)
    manage: Manage = Field(default_factory=_manage)
    health: Health = Field(default_factory=_health, description="thresholds of `reconciler health` and "
                           "`reconciler maintain`; the indexing document's values by default")
    indexes: list[IndexSpec] = Field(default_factory=_no_items)
    queries: list[QuerySpec] = Field(default_factory=_no_items)
    queries_file: Union[str, list[str], None] = Field(None, description=".sql file(s) of queries with `-- name:` "
                                                      "headers, relative to this file")


def json_schema() -> dict:
    """JSON Schema of indexes.yaml, for editors (yaml-language-server)."""
    schema = SpecFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "reconciler indexes.yaml"
    return schema
