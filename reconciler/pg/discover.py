"""A targets file's `discover` query, run on its seed's connection: the databases it lists.

One job: run one statement the targets file wrote, read-only (a READ ONLY transaction that is
rolled back, a statement timeout, the extended protocol so that a string of several statements
is refused by the server) and hand back its column names and rows. What the rows mean is
`fleet.targets.discovered_targets`'s.
"""
from __future__ import annotations

import psycopg

from ..errors import DatabaseError

TIMEOUT_MS = 30000


def discover(conn: psycopg.Connection, sql: str, where: str) -> tuple[list[str], list[tuple]]:
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = '{TIMEOUT_MS}ms'")
            # binary results force the extended protocol (psycopg sends a query without
            # parameters by the simple one, which would run a string of several statements)
            cur = conn.execute(sql.strip().rstrip(";"), prepare=False, binary=True)
            if cur.description is None:
                raise DatabaseError(f"{where}: discover: the query returns no rows (it is not a SELECT)")
            rows = [tuple(v.decode("utf-8", "replace") if isinstance(v, (bytes, memoryview)) and not
                          isinstance(v, str) else v for v in r) for r in cur.fetchall()]
            return [c.name for c in cur.description], rows
    except psycopg.Error as e:
        msg = (e.diag.message_primary or str(e)).strip().splitlines()[0]
        raise DatabaseError(f"{where}: discover: the query failed: {msg}") from None
