"""What an index *is*: `KeyPart`, `IndexDef` (semantic equality and nothing else), `LiveIndex`
(the definition plus catalog facts), and the table facts the planner needs (`Partition`,
`TableFacts`). Plain frozen dataclasses so that 10,000 indexes stay cheap; no I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

from .ident import UnsafeSQLValue, opclass_sql, options_sql, qualified, quote_ident
from .lexical import fragment_problem, wraps


@dataclass(frozen=True)
class KeyPart:
    """One key column of an index.

    `expr` is the comparison form: the column's literal name when `is_expression` is false, else
    a canonical rendering of the expression. `sql` is the text to print in DDL (the user's words
    or the server's); it never takes part in equality. `nulls_first=None` is filled in with
    PostgreSQL's default (`DESC` implies `NULLS FIRST`), so two spellings of one key are equal.
    """

    expr: str
    is_expression: bool = False
    collation: str | None = None
    opclass: str | None = None
    desc: bool = False
    nulls_first: bool | None = None
    sql: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.nulls_first is None:
            object.__setattr__(self, "nulls_first", self.desc)
        if not self.sql:
            object.__setattr__(self, "sql", self.expr if self.is_expression else quote_ident(self.expr))

    def ddl(self, ordered: bool = True) -> str:
        """This key as it appears inside CREATE INDEX (...): names quoted, the operator class
        rebuilt from its parts, an expression only when it stays one expression."""
        if self.is_expression:
            _check_fragment(self.sql, "expression")
        text = self.sql if not self.is_expression or _is_parenthesized_call(self.sql) else f"({self.sql})"
        if self.collation:
            text += f" COLLATE {quote_ident(self.collation)}"
        if self.opclass:
            # rebuilt from its parsed parts: a spec value is never pasted into DDL
            text += f" {opclass_sql(self.opclass)}"
        if ordered:
            if self.desc:
                text += " DESC"
            if self.nulls_first != self.desc:
                text += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return text

    def describe(self) -> str:
        return self.ddl()


def _check_fragment(text: str, what: str) -> None:
    problem = fragment_problem(text)
    if problem:
        raise UnsafeSQLValue(f"{what} {text!r} {problem}")


def _is_parenthesized_call(sql: str) -> bool:
    """True when `sql` may stand bare in an index key: a function call `f(...)` or `(...)`."""
    s = sql.strip()
    if wraps(s):
        return True
    # name(...) with the call spanning the whole text
    i = 0
    while i < len(s) and (s[i].isalnum() or s[i] in '_."'):
        i += 1
    return 0 < i < len(s) and s[i] == "(" and wraps(s[i:])


@dataclass(frozen=True)
class IndexDef:
    """The canonical definition of one index. Equality = "PostgreSQL would build the same index"."""

    schema: str
    table: str
    keys: tuple[KeyPart, ...]
    unique: bool = False
    method: str = "btree"
    include: tuple[str, ...] = ()
    where: str | None = None
    nulls_not_distinct: bool = False
    options: tuple[tuple[str, str], ...] = ()
    tablespace: str | None = None
    name: str = field(default="", compare=False)
    where_sql: str | None = field(default=None, compare=False)
    comment: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.where is not None and self.where_sql is None:
            object.__setattr__(self, "where_sql", self.where)

    @property
    def qualified_table(self) -> str:
        return qualified(self.schema, self.table)

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)

    def renamed(self, name: str) -> "IndexDef":
        return replace(self, name=name)

    def relocated(self, schema: str, table: str | None = None, name: str | None = None) -> "IndexDef":
        """The same definition on a table of another schema (a schema glob's expansion, a catalog
        row shaped like one already read). A field copy without __init__: fleets make 100,000s."""
        new = object.__new__(IndexDef)
        fields = new.__dict__
        fields.update(self.__dict__)
        fields["schema"] = schema
        if table is not None:
            fields["table"] = table
        if name is not None:
            fields["name"] = name
        return new

    def create_sql(self, *, concurrently: bool = True, only: bool = False, name: str | None = None,
                   table: str | None = None, with_tablespace: bool = True) -> str:
        """CREATE INDEX for this definition. Never IF NOT EXISTS: with CONCURRENTLY it would keep
        an INVALID leftover as if it were the index (squawk issue 1230).

        Every name is quoted as an identifier, operator classes and storage options are printed
        back from their checked parts, and expressions and the predicate must each stay one
        expression (`core.lexical`); anything else raises UnsafeSQLValue instead of being sent."""
        ordered = self.method == "btree"
        parts = ["CREATE"]
        if self.unique:
            parts.append("UNIQUE")
        parts.append("INDEX")
        if concurrently:
            parts.append("CONCURRENTLY")
        idx_name = self.name if name is None else name
        if idx_name:
            parts.append(quote_ident(idx_name))
        parts.append("ON")
        if only:
            parts.append("ONLY")
        parts.append(table or self.qualified_table)
        if self.method != "btree":
            parts.append(f"USING {quote_ident(self.method)}")
        sql = " ".join(parts) + " (" + ", ".join(k.ddl(ordered) for k in self.keys) + ")"
        if self.include:
            sql += " INCLUDE (" + ", ".join(quote_ident(c) for c in self.include) + ")"
        if self.nulls_not_distinct:
            sql += " NULLS NOT DISTINCT"
        if self.options:
            sql += " WITH (" + options_sql(self.options) + ")"
        if self.tablespace and with_tablespace:
            sql += f" TABLESPACE {quote_ident(self.tablespace)}"
        if self.where is not None:
            _check_fragment(self.where_sql, "predicate")
            sql += f" WHERE {self.where_sql}"
        return sql

    def signature(self) -> str:
        """A short stable digest of the definition (used in fingerprints and temp names)."""
        return hashlib.sha1(repr(_eq_tuple(self)).encode()).hexdigest()[:12]


def _eq_tuple(d: IndexDef) -> tuple:
    return (d.schema, d.table, tuple((k.expr, k.is_expression, k.collation, k.opclass, k.desc, k.nulls_first)
            for k in d.keys), d.unique, d.method, d.include, d.where, d.nulls_not_distinct, d.options,
            d.tablespace)


@dataclass(frozen=True)
class LiveIndex:
    """An index as found in the catalog: its definition plus facts that are not part of it."""

    definition: IndexDef
    oid: int = 0
    valid: bool = True
    ready: bool = True
    constraint: str | None = None          # name of the PRIMARY KEY / UNIQUE / EXCLUDE constraint
    constraint_type: str | None = None     # 'p', 'u', 'x'
    parent_index: str | None = None        # "schema.name" of the partitioned index it is attached to
    partitioned: bool = False              # a partitioned (parent) index: relkind 'I'
    table_kind: str = "r"                  # 'r' table, 'p' partitioned table, 'm' materialized view
    size_bytes: int = 0
    table_bytes: int = 0
    table_rows: int = 0
    idx_scan: int | None = None
    comment: str | None = None
    indexdef: str = ""                     # pg_get_indexdef(), for display
    being_built: bool = False              # another backend is building it right now
    parent: tuple[str, str] | None = None  # (schema, name) of parent_index

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def parent_key(self) -> tuple[str, str] | None:
        """(schema, name) of the partitioned index this one is attached to."""
        return self.parent

    @property
    def schema(self) -> str:
        return self.definition.schema

    @property
    def table(self) -> str:
        return self.definition.table


@dataclass(frozen=True)
class Partition:
    """One table under a partitioned table: `leaf` holds rows, otherwise it is partitioned too."""

    schema: str
    table: str
    parent_schema: str
    parent_table: str
    leaf: bool = True

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.table)

    @property
    def parent_qualified(self) -> str:
        return qualified(self.parent_schema, self.parent_table)


@dataclass(frozen=True)
class TableFacts:
    """What the planner needs to know about a change's table."""

    kind: str = "r"                               # r, p (partitioned), m (materialized view)
    rows: int = 0
    bytes: int = 0
    partitions: tuple[Partition, ...] = ()        # every table below a partitioned one, parents first
