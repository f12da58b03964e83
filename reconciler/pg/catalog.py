"""The live catalog → `LiveIndex` values (and the few other catalog facts plan and validate need).

One job: read. `introspect` is set-based: one query for the managed tables (and their partition
trees), one for all their indexes, one for the builds in progress, whatever the number of
tables (the SQL lives in `pg/sql/*.sql`); `with_stats`, `table_names` and `table_columns` are
one query each. Everything runs in a READ ONLY transaction, so nothing here can change the
database. The server's own words for a desired index are `pg.canonicalize`'s job.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from typing import Iterable

import psycopg
from psycopg.rows import dict_row

from ..core.index import IndexDef, KeyPart, LiveIndex, Partition
from ..normalize import (
    canonical_options,
    matching_paren,
    key_suffix,
    split_top_level,
)


def _sql(name: str) -> str:
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
        kids: dict[int, list[Table]] = {}
        for t in self.tables:
            if t.parent_oid is not None:
                kids.setdefault(t.parent_oid, []).append(t)
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
               schemas: Iterable[str] = (), patterns: Iterable[tuple[str, str]] = (), stats: bool = True) -> Snapshot:
    """Read managed tables (the given (schema, table) pairs and their partition trees, or every
    user table when `tables` is None, plus tables matching `patterns`: (schema, table) LIKE
    pairs) and all their indexes, in one READ ONLY transaction."""
    patterns = list(patterns)
    pairs = list(tables) if tables is not None else []
    version = server_version(conn)
    with _read_only(conn):
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_sql("tables.sql"), {
                "all": tables is None, "schemas": [p[0] for p in pairs], "tables": [p[1] for p in pairs],
                "schema_filter": list(schemas),
                "schema_likes": [p[0] for p in patterns], "table_likes": [p[1] for p in patterns]})
            trows = cur.fetchall()
            table_list = tuple(Table(r["oid"], r["nspname"], r["relname"], r["relkind"], max(r["reltuples"], 0),
                                     r["table_bytes"] or 0, r["parent_oid"], r["named"], r["managed"])
                               for r in trows)
            rows = read_index_rows(cur, [t.oid for t in table_list], version, stats)
            cur.execute("SELECT index_relid, pid FROM pg_stat_progress_create_index WHERE index_relid <> 0")
            building = tuple((r["index_relid"], r["pid"]) for r in cur.fetchall())
    by_name = {(t.schema, t.name): t for t in table_list}
    built = {oid for oid, _ in building}
    indexes = []
    for r in rows:
        d = index_def_from_row(r)
        t = by_name.get((r["schema"], r["table"]))
        indexes.append(LiveIndex(
            definition=d, oid=r["oid"], valid=r["valid"], ready=r["ready"], constraint=r["constraint_name"],
            constraint_type=r["constraint_type"], parent_index=r["parent_index"], partitioned=r["partitioned"],
            table_kind=r["table_kind"], size_bytes=r["size_bytes"] or 0, table_bytes=t.bytes if t else 0,
            table_rows=t.rows if t else 0, idx_scan=r["idx_scan"], comment=r["comment"], indexdef=r["indexdef"],
            being_built=r["oid"] in built,
            parent=(r["parent_schema"], r["parent_name"]) if r["parent_name"] is not None else None))
    return Snapshot(table_list, tuple(indexes), version, building)


_STATS = ("CASE WHEN ic.relkind = 'i' THEN pg_relation_size(i.indexrelid) ELSE 0 END AS size_bytes, "
          "s.idx_scan, obj_description(i.indexrelid, 'pg_class') AS comment")
_NO_STATS = "NULL::bigint AS size_bytes, NULL::bigint AS idx_scan, NULL::text AS comment"


def read_index_rows(cur, oids: list[int], version: int, stats: bool = True, of: str = "tables") -> list[dict]:
    """One row per index of the tables `oids` (`of="tables"`), or of the indexes `oids`
    (`of="indexes"`: health reads only those a comparison needs)."""
    sql = _sql("indexes.sql").replace(
        "{nulls_not_distinct}", "i.indnullsnotdistinct" if version >= 150000 else "false").replace(
        "{stats}", _STATS if stats else _NO_STATS).replace(
        "{stats_join}", "LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid\n" if stats else "")
    if of == "indexes":
        sql = sql.replace("WHERE i.indrelid = ANY (%(oids)s::oid[])", "WHERE i.indexrelid = ANY (%(oids)s::oid[])")
    cur.execute(sql, {"oids": oids})
    return cur.fetchall()


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
    """A READ ONLY transaction: `plan` and `drift` must not be able to change anything."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn

    def __enter__(self):
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        self.conn.execute("SET TRANSACTION READ ONLY")
        return self

    def __exit__(self, *exc):
        return self.tx.__exit__(*exc)


def index_def_from_row(r: dict) -> IndexDef:
    """Build the canonical IndexDef of one catalog row.

    The key list is cut out of pg_get_indexdef() using the per-key texts: what follows each key's
    text up to the next top-level comma is its COLLATE / opclass / ordering, printed only when
    not the default (PostgreSQL decides what "default" means, not us).
    """
    cols: list[str] = list(r["cols"])
    nkey = r["nkey"]
    indexdef: str = r["indexdef"]
    key_list = _key_list(indexdef, r["method"])
    elements = split_top_level(key_list) if key_list is not None else []
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
        collation, opclass, desc, nulls_first = key_suffix(suffix)
        if is_col:
            keys.append(KeyPart(_unquote_ident(text), False, collation, opclass, desc, nulls_first))
        else:
            expr = text[1:-1] if _wraps(text) else text
            keys.append(KeyPart(expr, True, collation, opclass, desc, nulls_first, sql=expr))
    include = tuple(_unquote_ident(c) for c in cols[nkey: r["natts"]])
    tablespace = r["tablespace"]
    if tablespace == "pg_default":
        tablespace = None
    pred = r["predicate"]
    return IndexDef(schema=r["schema"], table=r["table"], keys=tuple(keys), unique=r["is_unique"],
                    method=r["method"], include=include, where=pred, nulls_not_distinct=bool(r["nulls_not_distinct"]),
                    options=canonical_options(r["options"] or []), tablespace=tablespace, name=r["name"],
                    comment=r.get("comment"))


def _wraps(text: str) -> bool:
    """True when the whole text is one parenthesized group: ``(a + b)``, not ``(a) + (b)``."""
    return text.startswith("(") and matching_paren(text, 0) == len(text) - 1


def _key_list(indexdef: str, method: str) -> str | None:
    marker = f" USING {method} ("
    pos = indexdef.find(marker)
    if pos < 0:
        return None
    start = pos + len(marker) - 1
    end = matching_paren(indexdef, start)
    return indexdef[start + 1: end] if end > 0 else None


def _unquote_ident(text: str) -> str:
    if text.startswith('"') and text.endswith('"'):
        return text[1:-1].replace('""', '"')
    return text
