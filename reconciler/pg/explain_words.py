"""The server's words of index expressions and predicates, read-only: `EXPLAIN (VERBOSE)`.

One job: hand fragments of SQL over one table to PostgreSQL and read back how it prints them,
on a session that must not write (a hot standby, a read-only role), where `canonicalize`
cannot make its temporary table. ``EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT (e1), (e2)
FROM ONLY schema.table`` plans without running anything and lists each output expression as
the server resolved it: the type of every constant decided by the column it meets (so
``"createdAt" >= '2024-01-01'`` comes back as ``... '2024-01-01 00:00:00'::timestamp without
time zone``), casts added, constant sub-expressions folded. Both sides of a comparison go
through the same door, so what the planner folds, it folds for both.

Each EXPLAIN runs alone in a READ ONLY transaction that is rolled back, under a statement and
a lock timeout; nothing is executed (no ANALYZE). The fragments were checked to be single
expressions before they get here (`normalize.parse_fragment`).
"""
from __future__ import annotations

import psycopg

from ..core.ident import qualified

LOCK_TIMEOUT_MS = 3000
STATEMENT_TIMEOUT_MS = 30000


class Unreadable(Exception):
    """The server would not print the fragments (an unknown function, a column typo, a lock
    held too long): the caller compares by text alone."""


def explain_words(conn: psycopg.Connection, schema: str, table: str, fragments: list[str]) -> list[str]:
    """Each fragment as PostgreSQL prints it when it evaluates it over `schema.table`."""
    if not fragments:
        return []
    targets = ", ".join(f"({f})" for f in fragments)
    sql = f"EXPLAIN (VERBOSE, COSTS OFF, FORMAT JSON) SELECT {targets} FROM ONLY {qualified(schema, table)}"
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION READ ONLY", prepare=False)
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'", prepare=False)
            conn.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT_MS}ms'", prepare=False)
            # binary results: the extended protocol, which runs one statement and no more
            doc = conn.execute(sql, prepare=False, binary=True).fetchone()[0]
    except psycopg.OperationalError:
        raise
    except psycopg.Error as e:
        raise Unreadable((e.diag.message_primary or str(e)).strip()) from None
    plan = (doc[0] if isinstance(doc, list) else doc)["Plan"]
    output = plan.get("Output") or []
    if len(output) != len(fragments):
        raise Unreadable(f"EXPLAIN listed {len(output)} outputs for {len(fragments)} fragments")
    return list(output)
