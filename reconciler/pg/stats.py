"""Statistics for `health` and `maintain`: the set-based queries of `pg/sql/health_*.sql` → the
rows `reconciler.health` decides from.

One job: read, never a query per index. Everything runs in one READ ONLY transaction per node
with a `lock_timeout` and a `statement_timeout`, so a long DDL makes `health` skip a table or
fail in seconds instead of queueing behind it (PgHero issue 246): relations another session
holds or waits for an ACCESS EXCLUSIVE lock on are skipped up front (as pgwatch does), and a
lock taken between that look and the read ends in a lock timeout, after which the read is
retried. `--exact` calls pgstattuple's pgstatindex() once, for the flagged indexes only.
"""
from __future__ import annotations

import time
from dataclasses import replace
from importlib import resources
from typing import Callable, Iterable

import psycopg
from psycopg.rows import dict_row

from ..core.ident import quote_ident
from ..errors import DatabaseError
from ..health import (
    BloatInputs,
    ExactBloat,
    ForeignKey,
    IndexRow,
    NodeStats,
    ReplicaScans,
    StatsSnapshot,
    TableRow,
    comparison_candidates,
)
from .catalog import index_def_from_row, read_index_rows
from .connection import describe


def _sql(name: str) -> str:
    return resources.files("reconciler.pg").joinpath("sql", name).read_text()


def _last_scan(version: int, oid: str) -> str:
    # pg_stat_*_indexes.last_idx_scan and its function are PostgreSQL 16+
    return f"pg_stat_get_lastscan({oid})" if version >= 160000 else "NULL::timestamptz"


class _Bounded:
    """One READ ONLY transaction with this session's own lock and statement timeouts (SET
    LOCAL: nothing outlives the transaction, so a caller's autocommit connection is unchanged)."""

    def __init__(self, conn: psycopg.Connection, lock_timeout_ms: int, statement_timeout_ms: int):
        self.conn, self.lock_ms, self.stmt_ms = conn, lock_timeout_ms, statement_timeout_ms

    def __enter__(self):
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        self.conn.execute("SET TRANSACTION READ ONLY")
        self.conn.execute(f"SET LOCAL lock_timeout = '{int(self.lock_ms)}ms'")
        self.conn.execute(f"SET LOCAL statement_timeout = '{int(self.stmt_ms)}ms'")
        return self

    def __exit__(self, *exc):
        return self.tx.__exit__(*exc)


def _node(cur, name: str, role: str) -> tuple[NodeStats, dict]:
    cur.execute(_sql("health_node.sql"))
    r = cur.fetchone()
    resets = [(r["db_reset"], "database statistics reset"), (r["cluster_reset"], "cluster statistics reset"),
              (r["db_created"], "database creation")]
    known = [(ts, what) for ts, what in resets if ts is not None]
    since, source = max(known, key=lambda p: p[0]) if known else (None, "unknown")
    return NodeStats(name, role, r["now"], since, source, r["server_version"]), r


def read_stats(conn: psycopg.Connection, tables: Iterable[tuple[str, str]] | None = None, *,
               patterns: Iterable[str] = (), lock_timeout_ms: int = 2000, statement_timeout_ms: int = 60000,
               retries: int = 3, definitions: bool = True) -> StatsSnapshot:
    """The statistics of the given (schema, table) pairs and their partition trees (or of every
    user table when `tables` is None), in one READ ONLY transaction.

    `definitions`: read the definitions of the tables where a duplicate or a redundant prefix
    is possible (`health.comparison_candidates`); `maintain` does not need them."""
    attempt = 0
    while True:
        try:
            return _read(conn, tables, list(patterns), lock_timeout_ms, statement_timeout_ms, definitions)
        except psycopg.errors.LockNotAvailable as e:
            if conn.info.transaction_status != 0 and not conn.autocommit:
                conn.rollback()
            if attempt >= retries:
                raise DatabaseError(f"cannot read statistics: {(e.diag.message_primary or str(e)).strip()} (lock "
                                    "timeout); sessions keep taking ACCESS EXCLUSIVE locks on the tables",
                                    "try again later, or raise --lock-timeout") from None
            attempt += 1
            time.sleep(0.2 * attempt)
        except psycopg.errors.QueryCanceled as e:
            raise DatabaseError(f"reading statistics took longer than the statement timeout: "
                                f"{(e.diag.message_primary or str(e)).strip()}", "raise --statement-timeout") from None


def _read(conn, tables, patterns, lock_ms, stmt_ms, definitions) -> StatsSnapshot:
    pairs = list(tables) if tables is not None else []
    version = conn.info.server_version
    with _Bounded(conn, lock_ms, stmt_ms), conn.cursor(row_factory=dict_row) as cur:
        node, info = _node(cur, "primary", "primary")
        cur.execute(_sql("health_tables.sql"), {
            "all": tables is None, "schemas": [p[0] for p in pairs], "tables": [p[1] for p in pairs],
            "patterns": patterns})
        trows = cur.fetchall()
        skipped = tuple(f"{r['schema']}.{r['name']}" for r in trows if r["locked"])
        open_oids = [r["oid"] for r in trows if not r["locked"]]
        cur.execute(_sql("health_indexes.sql").replace("{last_scan}", _last_scan(version, "x.oid")),
                    {"oids": open_oids})
        irows = cur.fetchall()
        cur.execute(_sql("health_building.sql"))
        building = {r["oid"]: r["pid"] for r in cur.fetchall()}
        cur.execute(_sql("health_fks.sql"), {"oids": open_oids})
        fks = tuple(ForeignKey(r["oid"], r["name"], r["table_oid"], r["schema"], r["table"], tuple(r["attnums"]),
                               tuple(r["columns"]), r["ref_schema"], r["ref_table"]) for r in cur.fetchall())
        indexes = [_index_row(r, building.get(r["oid"])) for r in irows]
        if definitions:
            wanted = comparison_candidates(indexes)
            if wanted:
                defs = {r["oid"]: r for r in read_index_rows(cur, sorted(wanted), version, stats=False)}
                indexes = [replace(x, definition=index_def_from_row(defs[x.oid]), indexdef=defs[x.oid]["indexdef"])
                           if x.oid in defs else x for x in indexes]
    per_table: dict[int, list[IndexRow]] = {}
    for x in indexes:
        per_table.setdefault(x.table_oid, []).append(x)
    table_rows = tuple(_table_row(r, per_table.get(r["oid"], ())) for r in trows if not r["locked"])
    return StatsSnapshot(info["database"], node, table_rows, tuple(indexes), fks, (), skipped,
                         block_size=info["block_size"], maxalign=info["maxalign"])


def _index_row(r: dict, building_pid: int | None) -> IndexRow:
    nkey = r["nkey"]
    indkey = tuple(r["indkey"])
    bloat = None
    if r["data_width"] is not None:
        bloat = BloatInputs(r["relpages"], r["reltuples"], r["fillfactor"], r["data_width"], r["has_nulls"],
                            r["missing_stats"], r["name_typed"])
    return IndexRow(
        oid=r["oid"], table_oid=r["table_oid"], schema=r["schema"], table=r["table"], name=r["name"],
        method=r["method"], size_bytes=r["size_bytes"] or 0, scans=r["scans"] or 0,
        tuples_read=r["tuples_read"] or 0, tuples_fetched=r["tuples_fetched"] or 0,
        blocks_hit=r["blocks_hit"] or 0, blocks_read=r["blocks_read"] or 0, valid=r["valid"], ready=r["ready"],
        unique=r["is_unique"], primary=r["is_primary"], exclusion=r["is_exclusion"],
        replica_identity=r["is_replident"], constraint=r["constraint_name"], constraint_type=r["constraint_type"],
        partial=r["partial"], key_attnums=indkey[:nkey], include_attnums=indkey[nkey:],
        partitioned=r["partitioned"], parent_oid=r["parent_oid"], last_scan=r["last_scan"],
        being_built_by=building_pid, bloat=bloat)


def _table_row(r: dict, indexes: Iterable[IndexRow]) -> TableRow:
    # pg_stat_user_tables.idx_scan and pg_statio_user_tables.idx_blks_* are these same sums
    # over the table's indexes: add them up here instead of asking twice
    idx_scans = hit = read = size = 0
    for x in indexes:
        idx_scans += x.scans
        hit += x.blocks_hit
        read += x.blocks_read
        size += x.size_bytes
    return TableRow(oid=r["oid"], schema=r["schema"], name=r["name"], kind=r["kind"], live_rows=r["live_rows"] or 0,
                    dead_rows=r["dead_rows"] or 0, reltuples=r["reltuples"] or 0, seq_scans=r["seq_scans"] or 0,
                    index_scans=idx_scans, seq_tuples_read=r["seq_tuples_read"] or 0,
                    modified_since_analyze=r["modified_since_analyze"] or 0, last_analyze=r["last_analyze"],
                    last_vacuum=r["last_vacuum"], index_blocks_hit=hit, index_blocks_read=read,
                    size_bytes=r["size_bytes"] or 0, indexes_bytes=size, parent_oid=r["parent_oid"])


def read_replica(dsn: str, snap: StatsSnapshot, connect: Callable[[str], psycopg.Connection], *,
                 lock_timeout_ms: int = 2000, statement_timeout_ms: int = 60000) -> ReplicaScans:
    """A replica's scans of the snapshot's indexes (one query), and its statistics' age."""
    conn = connect(dsn)
    try:
        version = conn.info.server_version
        with _Bounded(conn, lock_timeout_ms, statement_timeout_ms), conn.cursor(row_factory=dict_row) as cur:
            node, _ = _node(cur, describe(dsn), "replica")
            cur.execute(_sql("health_replica_scans.sql").replace("{last_scan}", _last_scan(version, "c.oid")),
                        {"schemas": [x.schema for x in snap.indexes], "names": [x.name for x in snap.indexes]})
            rows = cur.fetchall()
    except psycopg.Error as e:
        raise DatabaseError(f"replica {describe(dsn)}: cannot read statistics: "
                            f"{(e.diag.message_primary or str(e)).strip()}") from None
    finally:
        conn.close()
    scans = {(r["schema"], r["name"]): (r["scans"], r["last_scan"]) for r in rows if r["found"]}
    missing = tuple(f"{r['schema']}.{r['name']}" for r in rows if not r["found"])
    return ReplicaScans(node, scans, missing)


def read_exact(conn: psycopg.Connection, oids: list[int], *, statement_timeout_ms: int = 300000,
               lock_timeout_ms: int = 2000) -> tuple[dict[int, ExactBloat], str | None]:
    """pgstatindex() of the given btree indexes, in one statement: ({oid: figures}, None), or
    ({}, why not) when pgstattuple is not installed or not granted. It reads every page of each
    index, so it runs only for what the estimate flagged."""
    if not oids:
        return {}, None
    try:
        with _Bounded(conn, lock_timeout_ms, statement_timeout_ms), conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
                        "WHERE e.extname = 'pgstattuple'")
            row = cur.fetchone()
            if row is None:
                return {}, ("--exact: the pgstattuple extension is not installed in this database "
                            "(CREATE EXTENSION pgstattuple); bloat figures are estimates")
            fn = f"{quote_ident(row['nspname'])}.pgstatindex"
            cur.execute("SELECT has_function_privilege(%s, 'EXECUTE') AS ok", (f"{fn}(regclass)",))
            if not cur.fetchone()["ok"]:
                return {}, (f"--exact: no EXECUTE privilege on {fn}(regclass) (GRANT pg_stat_scan_tables); "
                            "bloat figures are estimates")
            # only indexes that still exist: one dropped since the first read would fail them all
            cur.execute(f"SELECT x.oid, p.* FROM pg_class c JOIN unnest(%s::oid[]) AS x(oid) ON c.oid = x.oid "
                        f"AND c.relkind = 'i', LATERAL {fn}(x.oid::regclass) p", (oids,))
            out = {r["oid"]: ExactBloat(r["index_size"], r["leaf_pages"], r["internal_pages"], r["empty_pages"],
                                        r["deleted_pages"], _number(r["avg_leaf_density"]))
                   for r in cur.fetchall()}
    except psycopg.errors.LockNotAvailable:
        if conn.info.transaction_status != 0 and not conn.autocommit:
            conn.rollback()
        return {}, "--exact: an index was locked by another session (lock timeout); bloat figures are estimates"
    except psycopg.errors.QueryCanceled:
        if conn.info.transaction_status != 0 and not conn.autocommit:
            conn.rollback()
        return {}, "--exact: pgstatindex took longer than the statement timeout; bloat figures are estimates"
    return out, None


def _number(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f   # NaN: no leaf pages
