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
from importlib import resources
from typing import Callable, Iterable

import psycopg
from psycopg.rows import dict_row

from ..core.ident import quote_ident
from ..core.index import IndexDef
from ..errors import DatabaseError, ReconcilerError
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
from .deftext import definition_tail
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
               patterns: Iterable[tuple[str, str]] = (), lock_timeout_ms: int = 2000, statement_timeout_ms: int = 60000,
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


_INDEX_COLUMNS = ("oid", "table_oid", "schema", "table", "name", "method", "partitioned", "is_unique",
                  "is_primary", "is_exclusion", "is_replident", "valid", "ready", "nkey", "indkey", "indclass",
                  "indcollation", "indoption", "partial", "constraint_name", "constraint_type", "parent_oid",
                  "size_bytes", "scans", "tuples_read", "tuples_fetched", "blocks_hit", "blocks_read", "last_scan",
                  "relpages", "reltuples", "fillfactor")
_TABLE_COLUMNS = ("oid", "schema", "name", "kind", "locked", "parent_oid", "reltuples", "size_bytes", "live_rows",
                  "dead_rows", "seq_scans", "seq_tuples_read", "modified_since_analyze", "last_analyze", "last_vacuum")


def _fetch(cur, expected: tuple[str, ...]) -> list[tuple]:
    """Rows as plain tuples (12,000 dicts cost more than the query), in the order the SQL file
    declares them: checked here, so an edit of the .sql cannot silently shift a field."""
    got = tuple(d.name for d in cur.description)
    if got != expected:  # pragma: no cover - a mismatch between a .sql file and this module
        raise AssertionError(f"statistics query returns {got}, expected {expected}")
    return cur.fetchall()


def _read(conn, tables, patterns, lock_ms, stmt_ms, definitions) -> StatsSnapshot:
    pairs = list(tables) if tables is not None else []
    version = conn.info.server_version
    with _Bounded(conn, lock_ms, stmt_ms), conn.cursor(row_factory=dict_row) as dcur, conn.cursor() as cur:
        node, info = _node(dcur, "primary", "primary")
        cur.execute(_sql("health_tables.sql"), {
            "all": tables is None, "schemas": [p[0] for p in pairs], "tables": [p[1] for p in pairs],
            "schema_likes": [p[0] for p in patterns], "table_likes": [p[1] for p in patterns]})
        trows = _fetch(cur, _TABLE_COLUMNS)
        skipped = tuple(f"{r[1]}.{r[2]}" for r in trows if r[4])
        open_oids = [r[0] for r in trows if not r[4]]
        cur.execute(_sql("health_indexes.sql").replace("{last_scan}", _last_scan(version, "x.oid")),
                    {"oids": open_oids})
        irows = _fetch(cur, _INDEX_COLUMNS)
        dcur.execute(_sql("health_building.sql"))
        building = {r["oid"]: r["pid"] for r in dcur.fetchall()}
        dcur.execute(_sql("health_fks.sql"), {"oids": open_oids})
        fks = tuple(ForeignKey(r["oid"], r["name"], r["table_oid"], r["schema"], r["table"], tuple(r["attnums"]),
                               tuple(r["columns"]), r["ref_schema"], r["ref_table"]) for r in dcur.fetchall())
        widths = _bloat_widths(cur, open_oids)
        indexes = [_index_row(r, building.get(r[0]), widths.get(r[0])) for r in irows]
        defs: dict[int, IndexDef] = {}
        texts: dict[int, str] = {}
        if definitions:
            wanted = comparison_candidates(indexes)
            if wanted:
                # catalog reads definitions through normalize (sqlglot): imported only when needed
                from .catalog import index_def_from_row, read_index_rows

                shapes: dict[tuple, IndexDef] = {}
                for r in read_index_rows(dcur, sorted(wanted), version, stats=False, of="indexes"):
                    defs[r["oid"]] = _definition(r, shapes, index_def_from_row)
                    texts[r["oid"]] = r["indexdef"]
    per_table: dict[int, list[IndexRow]] = {}
    for x in indexes:
        per_table.setdefault(x.table_oid, []).append(x)
    table_rows = tuple(_table_row(r, per_table.get(r[0], ())) for r in trows if not r[4])
    return StatsSnapshot(info["database"], node, table_rows, tuple(indexes), fks, (), skipped,
                         block_size=info["block_size"], maxalign=info["maxalign"], definitions=defs, indexdefs=texts)


def _definition(r: dict, shapes: dict[tuple, IndexDef], parse: Callable[[dict], IndexDef]) -> IndexDef:
    """`parse(r)` (catalog.index_def_from_row), once per shape: indexes whose rows agree on
    everything that function reads except schema, table and name get the first one's definition,
    moved to their own (a tenant layout repeats one shape per schema or table; each parse costs
    more than the row). The deparsed text is keyed from the opening parenthesis of its key list
    on (`definition_tail`: the server-quoted prefix holding schema, table and name is checked
    and cut, never searched), so a name can neither split a shape nor hide one."""
    tail = definition_tail(r)
    cols, nkey = r["cols"], r["nkey"]
    key = (tail, r["method"], tuple(cols), nkey, r["natts"], tuple(a != 0 for a in r["indkey"][:nkey]),
           r["is_unique"], r["nulls_not_distinct"], tuple(r["options"] or ()), r["tablespace"], r["predicate"],
           r.get("comment"))
    template = shapes.get(key)
    if template is None:
        template = shapes[key] = parse(r)
    return template.relocated(r["schema"], r["table"], r["name"])


def _bloat_widths(cur, table_oids: list[int]) -> dict[int, tuple[float, bool, bool, bool]]:
    """{btree index oid: (data width, has nulls, a column lacks statistics, a `name` column)}:
    the sum over its stored columns of (1 - null_frac) * avg_width, as the estimate needs.
    Two reads matched here by name (see health_index_columns.sql for why not in SQL)."""
    cur.execute(_sql("health_index_columns.sql"), {"oids": table_oids})
    cols = _fetch(cur, ("oid", "schema", "stats_rel", "column", "name_typed"))
    if not cols:
        return {}
    cur.execute(_sql("health_column_stats.sql"), {"schemas": sorted({c[1] for c in cols}),
                                                  "rels": sorted({c[2] for c in cols})})
    known = {(schema, rel, col): (null_frac or 0.0, width)
             for schema, rel, col, null_frac, width in _fetch(cur, ("schema", "rel", "column", "null_frac", "avg_width"))}
    out: dict[int, list] = {}
    for oid, schema, rel, col, name_typed in cols:
        acc = out.get(oid)
        if acc is None:
            acc = out[oid] = [0.0, False, False, False]
        st = known.get((schema, rel, col))
        if st is None or st[1] is None:
            acc[2] = True
        else:
            null_frac, width = st
            acc[0] += (1 - null_frac) * width
            acc[1] = acc[1] or null_frac > 0
        acc[3] = acc[3] or name_typed
    return {oid: tuple(v) for oid, v in out.items()}


def _index_row(r: tuple, building_pid: int | None, widths: tuple | None) -> IndexRow:
    (oid, table_oid, schema, table, name, method, partitioned, is_unique, is_primary, is_exclusion, is_replident,
     valid, ready, nkey, indkey, indclass, indcollation, indoption, partial, constraint_name, constraint_type,
     parent_oid, size_bytes, scans, tuples_read, tuples_fetched, blocks_hit, blocks_read, last_scan, relpages,
     reltuples, fillfactor) = r
    bloat = None
    if widths is not None:
        data_width, has_nulls, missing, name_typed = widths
        bloat = BloatInputs(relpages, reltuples, fillfactor, data_width, has_nulls, missing, name_typed)
    indkey = tuple(indkey)
    signature = tuple(zip(indkey[:nkey], indclass[:nkey], indcollation[:nkey], indoption[:nkey]))
    # positional, in IndexRow's field order: 12,000 keyword calls cost more than the query
    return IndexRow(oid, table_oid, schema, table, name, method, size_bytes or 0, scans or 0, tuples_read or 0,
                    tuples_fetched or 0, blocks_hit or 0, blocks_read or 0, valid, ready, is_unique, is_primary,
                    is_exclusion, is_replident, constraint_name, constraint_type, partial, indkey[:nkey],
                    indkey[nkey:], signature, partitioned, parent_oid, last_scan, building_pid, bloat)


def _table_row(r: tuple, indexes: Iterable[IndexRow]) -> TableRow:
    (oid, schema, name, kind, _locked, parent_oid, reltuples, size_bytes, live_rows, dead_rows, seq_scans,
     seq_tuples_read, modified_since_analyze, last_analyze, last_vacuum) = r
    # pg_stat_user_tables.idx_scan and pg_statio_user_tables.idx_blks_* are these same sums
    # over the table's indexes: add them up here instead of asking twice
    idx_scans = hit = read = size = 0
    for x in indexes:
        idx_scans += x.scans
        hit += x.blocks_hit
        read += x.blocks_read
        size += x.size_bytes
    return TableRow(oid=oid, schema=schema, name=name, kind=kind, live_rows=live_rows or 0, dead_rows=dead_rows or 0,
                    reltuples=reltuples or 0, seq_scans=seq_scans or 0, index_scans=idx_scans,
                    seq_tuples_read=seq_tuples_read or 0, modified_since_analyze=modified_since_analyze or 0,
                    last_analyze=last_analyze, last_vacuum=last_vacuum, index_blocks_hit=hit, index_blocks_read=read,
                    size_bytes=size_bytes or 0, indexes_bytes=size, parent_oid=parent_oid)


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


def resolve_indexes(conn: psycopg.Connection, names: Iterable[tuple[str | None, str]]) -> list[tuple[str, str, str, str]]:
    """(schema or None, index) as given on the command line → (schema, index, table schema,
    table). An unqualified name may be in any schema, but only in one. Raises ReconcilerError
    naming the index when there is none, or more than one."""
    out = []
    for schema, name in names:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, tn.nspname, t.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_index i ON i.indexrelid = c.oid "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace "
            "WHERE c.relname = %s AND (%s::text IS NULL OR n.nspname = %s) ORDER BY 1",
            (name, schema, schema)).fetchall()
        shown = f"{schema}.{name}" if schema else name
        if not rows:
            raise ReconcilerError(f"--index {shown}: no such index")
        if len(rows) > 1:
            raise ReconcilerError(f"--index {shown}: several schemas have one ({', '.join(r[0] for r in rows)})",
                                  f"qualify it: --index {rows[0][0]}.{name}")
        out.append(tuple(rows[0]))
    return out
