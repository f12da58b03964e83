"""Citus facts from the catalog: is the `citus` extension here, is this the coordinator, which
tables are distributed and by which column. Read-only; nothing is read when `citus` is absent
(one query of pg_extension). The decisions are `reconcile.citus`'s."""
from __future__ import annotations

import psycopg

from ..errors import DatabaseError
from ..reconcile.citus import CitusFacts


def read_citus(conn: psycopg.Connection) -> CitusFacts | None:
    """The Citus facts, or None without the extension. Runs in its own transaction (committed
    or, on error, rolled back): the caller's connection is left as it was found, idle."""
    query = "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'"
    if conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        row = conn.execute(query).fetchone()   # a transaction of its own, without BEGIN and COMMIT
    else:
        with conn.transaction():
            row = conn.execute(query).fetchone()
    if row is None:
        return None
    try:
        with conn.transaction():
            group = conn.execute("SELECT groupid FROM pg_catalog.pg_dist_local_group").fetchone()
            rows = conn.execute(
                "SELECT n.nspname, c.relname, p.partmethod::text, CASE WHEN p.partkey IS NOT NULL THEN "
                "pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) END "
                "FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace").fetchall()
    except psycopg.Error as e:
        raise DatabaseError(f"the citus extension {row[0]} is installed but its metadata cannot be read: "
                            f"{(e.diag.message_primary or str(e)).strip()}",
                            "reconciler refuses to plan on Citus without knowing which tables are distributed") \
            from None
    return CitusFacts(row[0], group is None or group[0] == 0, {(s, t): (m, col) for s, t, m, col in rows})
