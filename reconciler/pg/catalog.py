"""The live catalog → `LiveIndex` values (and the few other catalog facts plan and validate need).

One job: read. `introspect` is set-based whatever the number of tables or schemas: one query for
the managed tables (and their partition trees), one for all their indexes without deparsing, one
for the words of one index per distinct shape, one for the builds in progress (the SQL lives in
`pg/sql/*.sql`); `with_stats`, `table_names` and `table_columns` are one query each. The reads
of `introspect` share one REPEATABLE READ, READ ONLY transaction, so nothing here can change the
database. The server's own words for a desired index are `pg.canonicalize`'s job.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, replace
from functools import lru_cache
from importlib import resources
from operator import itemgetter
from typing import Iterable

import psycopg
from psycopg.rows import dict_row

from ..core.index import IndexDef, KeyPart, LiveIndex, Partition
from ..core.lexical import matching_paren, split_top_level, wraps
from .deftext import UnexpectedDefinition, definition_tail, server_key_suffix, server_quote_ident


@lru_cache(maxsize=None)
def _sql(name: str) -> str:
    # read once per process: a fleet run reads the same few files for every target
    return resources.files("reconciler.pg").joinpath("sql", name).read_text()


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    kind: str                 # r, p, m
    rows: int
    bytes: int
    parent_oid: int | None    # partition parent
    named: bool               # named by the spec (vs. reached through a partition tree)
    managed: bool = True      # named or below a named table (an ancestor only read is not)


@dataclass(frozen=True)
class Snapshot:
    """What the catalog said, in one READ ONLY transaction."""

    tables: tuple[Table, ...]
    indexes: tuple[LiveIndex, ...]
    server_version: int
    building: tuple[tuple[int, int], ...] = ()   # (index oid, pid) of builds in progress
    # index oid -> shape number: indexes of one shape have one definition but for schema,
    # table and name (see index_shapes.sql), so what is decided about one holds for all
    shapes: dict[int, int] = field(default_factory=dict, compare=False, repr=False)
    # (schema, table) -> digest of its columns (names, types, collations), for tables with an
    # index: tables of one digest get the same words from the server for the same index
    digests: dict[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    def table(self, schema: str, name: str) -> Table | None:
        index = self.__dict__.get("_by_name")
        if index is None:
            index = {(t.schema, t.name): t for t in self.tables}
            object.__setattr__(self, "_by_name", index)
        return index.get((schema, name))

    def partition_tree(self, schema: str, name: str) -> list[Partition]:
        """Every table below a partitioned table, parents before their children, in name order."""
        root = self.table(schema, name)
        if root is None:
            return []
        kids = self.__dict__.get("_kids")
        if kids is None:   # once per snapshot: thousands of partitioned tenant tables ask
            kids = {}
            for t in self.tables:
                if t.parent_oid is not None:
                    kids.setdefault(t.parent_oid, []).append(t)
            object.__setattr__(self, "_kids", kids)
        out: list[Partition] = []

        def walk(t: Table) -> None:
            for c in sorted(kids.get(t.oid, ()), key=lambda c: (c.schema, c.name)):
                out.append(Partition(c.schema, c.name, t.schema, t.name, c.kind != "p"))
                if c.kind == "p":
                    walk(c)

        walk(root)
        return out


def server_version(conn: psycopg.Connection) -> int:
    # from the connection handshake: no query, so no transaction is opened by asking
    return conn.info.server_version


def in_hot_standby(conn: psycopg.Connection) -> bool:
    """Is this session on a hot standby (read-only, replaying the primary's WAL)? PostgreSQL 14+
    reports it in the handshake and on promotion (`in_hot_standby`); older ones are asked."""
    reported = conn.info.parameter_status("in_hot_standby")
    if reported is not None:
        return reported == "on"
    return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])


def introspect(conn: psycopg.Connection, tables: Iterable[tuple[str, str]] | None = None,
               schemas: Iterable[str] = (), patterns: Iterable[tuple[str, str]] = (), stats: bool = True,
               sizes: bool = True) -> Snapshot:
    """Read managed tables (the given (schema, table) pairs and their partition trees, or every
    user table when `tables` is None, plus tables matching `patterns`: (schema, table) LIKE
    pairs) and all their indexes, in one READ ONLY transaction. Without `sizes` every table's
    `bytes` is 0: the caller reads the few it needs with `table_sizes`."""
    patterns = list(patterns)
    pairs = list(tables) if tables is not None else []
    version = server_version(conn)
    with _read_only(conn, snapshot=True):
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_sql("tables.sql"), {
                "all": tables is None, "schemas": [p[0] for p in pairs], "tables": [p[1] for p in pairs],
                "schema_filter": list(schemas),
                "schema_likes": [p[0] for p in patterns], "table_likes": [p[1] for p in patterns],
                "sizes": sizes})
            trows = cur.fetchall()
            table_list = tuple(Table(r["oid"], r["nspname"], r["relname"], r["relkind"], max(r["reltuples"], 0),
                                     r["table_bytes"] or 0, r["parent_oid"], r["named"], r["managed"])
                               for r in trows)
            cur.execute("SELECT index_relid, pid FROM pg_stat_progress_create_index WHERE index_relid <> 0")
            building = tuple((r["index_relid"], r["pid"]) for r in cur.fetchall())
            plan_joins_as_written(cur)
            indexes, shapes, digests = read_indexes(cur, table_list, version, stats, {oid for oid, _ in building})
    return Snapshot(table_list, tuple(indexes), version, building, shapes, digests)


def plan_joins_as_written(cur) -> None:
    """For the rest of this transaction, the planner joins in the order the query names its
    relations. index_shapes.sql and indexes.sql join about ten catalogs, written in the order
    to run them (the indexes asked for first, then what each row needs): searching every join
    order took longer than running the query (7 of 18 ms of server CPU for a 765-index
    catalog), and each target's fresh backend plans them anew. The planner still picks each
    join's method and its sides."""
    cur.execute("SET LOCAL join_collapse_limit = 1")


_STATS = ("CASE WHEN ic.relkind = 'i' THEN pg_relation_size(i.indexrelid) ELSE 0 END AS size_bytes, "
          "s.idx_scan, obj_description(i.indexrelid, 'pg_class') AS comment")
_NO_STATS = "NULL::bigint AS size_bytes, NULL::bigint AS idx_scan, NULL::text AS comment"


def _fill(name: str, version: int, stats: bool, by_index: bool = False) -> str:
    return _sql(name).replace(
        "{nulls_not_distinct}", "i.indnullsnotdistinct" if version >= 150000 else "false").replace(
        "{stats}", _STATS if stats else _NO_STATS).replace(
        "{stats_join}", "LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid\n" if stats else "").replace(
        "{where}", "i.indexrelid = ANY (%(oids)s::oid[])" if by_index else "i.indrelid = ANY (%(oids)s::oid[])")


def read_index_rows(cur, oids: list[int], version: int, stats: bool = True, of: str = "tables",
                    by_index: bool = False) -> list[dict]:
    """One row per index of the tables `oids` (`of="tables"`), or of the indexes `oids`
    (`of="indexes"` or `by_index`: health reads only those a comparison needs), each deparsed."""
    cur.execute(_fill("indexes.sql", version, stats, by_index or of == "indexes"), {"oids": oids})
    rows = cur.fetchall()
    if rows and not isinstance(rows[0], dict):
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, r)) for r in rows]
    return rows


# The shape of an index: what its definition depends on besides schema, table and name.
_SHAPE = ("digest", "relam", "reltablespace", "options", "indisunique", "nulls_not_distinct", "indnkeyatts",
          "indnatts", "indkey", "indclass", "indcollation", "indoption", "indexprs", "indpred", "opclass_options",
          "partitioned")


def read_indexes(cur, tables: tuple[Table, ...], version: int, stats: bool = False,
                 building: set[int] = frozenset()) -> tuple[list[LiveIndex], dict[int, int], dict]:
    """The `LiveIndex`es of `tables`, deparsing one index per shape (index_shapes.sql) and
    giving the others its definition, moved to their schema, table and name. The words of each
    are the server's: the deparsed text after `CREATE [UNIQUE] INDEX name ON [ONLY] schema.table`
    is the same for every index of a shape, and that prefix is quoted by the server too. An
    index whose representative cannot be read that way (dropped meanwhile, a prefix not as
    expected) is deparsed on its own. Returns the indexes, {index oid: shape number} and
    {(schema, table): digest of its columns}."""
    oids = [t.oid for t in tables]
    if not oids:
        return [], {}, {}
    with cur.connection.cursor() as tuples:   # plain tuples: a dict per row costs more than the rest
        tuples.execute(_fill("index_shapes.sql", version, stats), {"oids": oids})
        rows = tuples.fetchall()
        col = {c.name: k for k, c in enumerate(tuples.description)}
    shape_of = itemgetter(*(col[n] for n in _SHAPE))
    groups: dict[tuple, list[tuple]] = {}
    for r in rows:
        groups.setdefault(shape_of(r), []).append(r)
    c_oid, c_unique, c_part = col["oid"], col["indisunique"], col["partitioned"]
    c_qname, c_qtable = col["quoted_name"], col["quoted_table"]

    def prefix(r: tuple) -> str:
        return (f"CREATE {'UNIQUE ' if r[c_unique] else ''}INDEX {r[c_qname]} ON "
                f"{'ONLY ' if r[c_part] else ''}{r[c_qtable]}")

    reps = {members[0][c_oid]: key for key, members in groups.items()}
    full = {fr["oid"]: fr for fr in read_index_rows(cur, list(reps), version, False, by_index=True)}
    shaped: list[tuple[tuple, IndexDef, str, int]] = []   # (row, template, tail, shape number)
    alone: list[int] = []
    for number, (key, members) in enumerate(groups.items()):
        fr = full.get(members[0][c_oid])
        head = prefix(members[0])
        if fr is None or not fr["indexdef"].startswith(head):
            alone.extend(m[c_oid] for m in members)
            continue
        template = index_def_from_row(fr)
        tail = fr["indexdef"][len(head):]
        shaped.extend((m, template, tail, number) for m in members)
    by_table = {(t.schema, t.name): t for t in tables}
    c_schema, c_table, c_name = col["schema"], col["table"], col["name"]
    c_valid, c_ready, c_con, c_contype = col["valid"], col["ready"], col["constraint_name"], col["constraint_type"]
    c_pschema, c_pname, c_kind = col["parent_schema"], col["parent_name"], col["table_kind"]
    c_size, c_scan, c_comment = col["size_bytes"], col["idx_scan"], col["comment"]
    c_digest = col["digest"]
    digests = {(r[c_schema], r[c_table]): r[c_digest] for r in rows if r[c_digest] is not None}
    out: list[LiveIndex] = []
    shapes: dict[int, int] = {}
    for r, template, tail, number in shaped:
        d = template.relocated(r[c_schema], r[c_table], r[c_name])
        if r[c_comment] is not None:
            d.__dict__["comment"] = r[c_comment]
        t = by_table.get((r[c_schema], r[c_table]))
        parent = (r[c_pschema], r[c_pname]) if r[c_pname] is not None else None
        out.append(_live(definition=d, oid=r[c_oid], valid=r[c_valid], ready=r[c_ready], constraint=r[c_con],
                         constraint_type=r[c_contype], parent_index=f"{parent[0]}.{parent[1]}" if parent else None,
                         partitioned=r[c_part], table_kind=r[c_kind], size_bytes=r[c_size] or 0,
                         table_bytes=t.bytes if t else 0, table_rows=t.rows if t else 0, idx_scan=r[c_scan],
                         comment=r[c_comment], indexdef=prefix(r) + tail, being_built=r[c_oid] in building,
                         parent=parent))
        shapes[r[c_oid]] = number
    if alone:
        for fr in read_index_rows(cur, alone, version, stats, by_index=True):
            t = by_table.get((fr["schema"], fr["table"]))
            out.append(LiveIndex(
                definition=index_def_from_row(fr), oid=fr["oid"], valid=fr["valid"], ready=fr["ready"],
                constraint=fr["constraint_name"], constraint_type=fr["constraint_type"],
                parent_index=fr["parent_index"], partitioned=fr["partitioned"], table_kind=fr["table_kind"],
                size_bytes=fr["size_bytes"] or 0, table_bytes=t.bytes if t else 0, table_rows=t.rows if t else 0,
                idx_scan=fr["idx_scan"], comment=fr["comment"], indexdef=fr["indexdef"],
                being_built=fr["oid"] in building,
                parent=(fr["parent_schema"], fr["parent_name"]) if fr["parent_name"] is not None else None))
        out.sort(key=lambda x: (x.schema, x.table, x.name))
    return out, shapes, digests


_LIVE_DEFAULTS = {f.name: f.default for f in fields(LiveIndex) if f.default is not MISSING}
_LIVE_REQUIRED = {f.name for f in fields(LiveIndex) if f.default is MISSING and f.default_factory is MISSING}


def _live(**values) -> LiveIndex:
    """`LiveIndex(**values)` without the frozen dataclass's __init__ (one object.__setattr__
    per field): a catalog of 120,000 indexes makes 120,000 of them."""
    x = object.__new__(LiveIndex)
    x.__dict__.update(_LIVE_DEFAULTS)
    x.__dict__.update(values)
    return x


assert all(f.default is not MISSING or f.name in _LIVE_REQUIRED for f in fields(LiveIndex)), \
    "_live cannot fill a default_factory field of LiveIndex"


def with_stats(conn: psycopg.Connection, indexes: list[LiveIndex]) -> dict[int, LiveIndex]:
    """Size, scans and comment for a few indexes (those a plan changes): {oid: LiveIndex}."""
    if not indexes:
        return {}
    rows = conn.execute(
        "SELECT c.oid, CASE WHEN c.relkind = 'i' THEN pg_relation_size(c.oid) ELSE 0 END, s.idx_scan, "
        "obj_description(c.oid, 'pg_class') FROM pg_class c LEFT JOIN pg_stat_all_indexes s ON "
        "s.indexrelid = c.oid WHERE c.oid = ANY(%s)", ([x.oid for x in indexes],)).fetchall()
    facts = {oid: (size or 0, scans, comment) for oid, size, scans, comment in rows}
    out = {}
    for x in indexes:
        if x.oid in facts:
            size, scans, comment = facts[x.oid]
            out[x.oid] = replace(x, size_bytes=size, idx_scan=scans, comment=comment)
    return out


def table_sizes(conn: psycopg.Connection, oids: Iterable[int]) -> dict[int, int]:
    """pg_table_size of a few tables (those a plan changes): {table oid: bytes}, one query. A
    table dropped since the snapshot is left out."""
    oids = sorted(set(oids))
    if not oids:
        return {}
    with _read_only(conn):
        rows = conn.execute("SELECT c.oid, pg_table_size(c.oid) FROM pg_class c WHERE c.oid = ANY(%s)",
                            (oids,)).fetchall()
    return {oid: size or 0 for oid, size in rows}


def table_names(conn: psycopg.Connection, schema: str) -> list[str]:
    """Every table, partitioned table and materialized view of `schema` (for "did you mean")."""
    with _read_only(conn):
        return [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm') ORDER BY 1", (schema,)).fetchall()]


def table_columns(conn: psycopg.Connection, tables: list[tuple[str, str]]) -> dict[tuple[str, str], list[str]]:
    """The columns of each table, in their order: one query for all of them."""
    with _read_only(conn):
        rows = conn.execute(
            "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE a.attnum > 0 AND NOT a.attisdropped "
            "AND (n.nspname, c.relname) IN (SELECT s, t FROM unnest(%s::text[], %s::text[]) AS m(s, t)) "
            "ORDER BY a.attnum", ([s for s, _ in tables], [t for _, t in tables])).fetchall()
    out: dict[tuple[str, str], list[str]] = {}
    for s, t, a in rows:
        out.setdefault((s, t), []).append(a)
    return out


class _read_only:
    """A READ ONLY transaction: `plan` and `drift` must not be able to change anything. With
    `snapshot`, REPEATABLE READ: the reads of one snapshot see one state of the catalog."""

    def __init__(self, conn: psycopg.Connection, snapshot: bool = False):
        self.conn = conn
        self.snapshot = snapshot

    def __enter__(self):
        # the isolation level can only be set first thing in a top-level transaction
        fresh = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY" if self.snapshot and fresh
                          else "SET TRANSACTION READ ONLY")
        return self

    def __exit__(self, *exc):
        return self.tx.__exit__(*exc)


def index_def_from_row(r: dict) -> IndexDef:
    """Build the canonical IndexDef of one catalog row.

    The key list is cut out of pg_get_indexdef() using the per-key texts: what follows each key's
    text up to the next top-level comma is its COLLATE / opclass / ordering, printed only when
    not the default (PostgreSQL decides what "default" means, not us). It is read only from the
    text after the server-quoted prefix (`definition_tail`): the names are never searched.
    """
    cols: list[str] = list(r["cols"])
    nkey = r["nkey"]
    key_list = _key_list(definition_tail(r), r)
    elements = split_top_level(key_list)
    keys = []
    for k in range(nkey):
        text = cols[k]
        is_col = r["indkey"][k] != 0
        suffix = ""
        if k < len(elements):
            el = elements[k]
            if el.startswith(text):
                suffix = el[len(text):]
            elif el.startswith("(" + text + ")"):
                suffix = el[len(text) + 2:]
        collation, opclass, desc, nulls_first = server_key_suffix(suffix)
        if is_col:
            keys.append(KeyPart(_unquote_ident(text), False, collation, opclass, desc, nulls_first))
        else:
            expr = text[1:-1] if wraps(text) else text
            keys.append(KeyPart(expr, True, collation, opclass, desc, nulls_first, sql=expr))
    include = tuple(_unquote_ident(c) for c in cols[nkey: r["natts"]])
    tablespace = r["tablespace"]
    if tablespace == "pg_default":
        tablespace = None
    pred = r["predicate"]
    options: tuple[tuple[str, str], ...] = ()
    if r["options"]:   # normalize (and sqlglot with it) is loaded only for an index with storage options
        from ..normalize import canonical_options

        options = canonical_options(r["options"])
    return IndexDef(schema=r["schema"], table=r["table"], keys=tuple(keys), unique=r["is_unique"],
                    method=r["method"], include=include, where=pred, nulls_not_distinct=bool(r["nulls_not_distinct"]),
                    options=options, tablespace=tablespace, name=r["name"],
                    comment=r.get("comment"))


def _key_list(tail: str, r: dict) -> str:
    end = matching_paren(tail, 0)
    if end <= 0:
        raise UnexpectedDefinition(f"index {server_quote_ident(r['schema'])}.{server_quote_ident(r['name'])}: "
                                   f"no closing parenthesis for the key list in pg_get_indexdef() text "
                                   f"{r['indexdef']!r}")
    return tail[1:end]


def _unquote_ident(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text
