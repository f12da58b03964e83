"""The server as an oracle of "same definition": PostgreSQL prints desired indexes in its own
words (temp table + CREATE INDEX inside a transaction that is always rolled back)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from ..core.ident import UnsafeSQLValue, qualified
from ..core.index import IndexDef
from ..errors import DatabaseError
from .catalog import index_def_from_row, plan_joins_as_written, read_index_rows, server_version
from .connection import execute_one


class ReadOnlySession(DatabaseError):
    """The session cannot create even a temporary table (hot standby, read-only role)."""


@dataclass(frozen=True)
class Canonicalized:
    """Result of asking the server: the definition in its own words, or its error."""

    definition: IndexDef | None
    error: str | None = None
    sql: str = ""


def canonicalize(conn: psycopg.Connection, defs: list[IndexDef]) -> dict[int, Canonicalized]:
    """Ask PostgreSQL to print each definition in its own words.

    Inside one transaction that is always rolled back: for each table a
    ``CREATE TEMP TABLE (LIKE table)`` (same column names, types and collations), then each
    index on it, each under its own savepoint so that one refusal (a non-IMMUTABLE function, an
    unknown operator class) does not hide the others. Returns {position in defs: result}.
    Raises ReadOnlySession when the session cannot or must not write (hot standby, a role or
    database configured read-only).

    The spec reaches the server here, during commands that promise not to change anything, so:
    every statement goes alone through the extended protocol (`execute_one`: a string of
    several is refused, so no `COMMIT` can end the rolled-back transaction), the DDL is built by
    `IndexDef.create_sql` (names quoted, operator classes and options rebuilt from checked
    parts, fragments checked lexically), and a read-only session (`connect(read_only=True)`)
    opens this one transaction READ WRITE: anything that escaped it would run read-only.
    """
    out: dict[int, Canonicalized] = {}
    if not defs:
        return out
    version = server_version(conn)
    _refuse_read_only(conn)
    if conn.info.transaction_status == TransactionStatus.INTRANS:
        # an implicit transaction of earlier reads: the probe needs a transaction of its own
        # (SET TRANSACTION READ WRITE must come first), and those reads changed nothing
        conn.rollback()
    temp_for: dict[tuple[str, str], str] = {}
    created: dict[int, str] = {}
    try:
        with conn.transaction(force_rollback=True):
            execute_one(conn, "SET TRANSACTION READ WRITE")
            if conn.execute("SHOW lock_timeout").fetchone()[0] == "0":
                # `plan` sets none; apply's own lock timeout (and its retries) prevail
                execute_one(conn, "SET LOCAL lock_timeout = '5s'")
            execute_one(conn, "SET LOCAL statement_timeout = '60s'")
            for i, d in enumerate(defs):
                key = (d.schema, d.table)
                try:
                    real_sql = d.create_sql(concurrently=False, name=f"rc_probe_{i}",
                                            table=qualified("pg_temp", temp_for.get(key) or _next_temp(key, temp_for)),
                                            with_tablespace=False)
                except UnsafeSQLValue as e:
                    out[i] = Canonicalized(None, str(e), "")
                    continue
                try:
                    if key not in temp_for:
                        # under a savepoint of its own: a refused index rolls back its savepoint,
                        # and must not take with it the table (and the session's first temp
                        # schema) the next index of the same table is tried on
                        with conn.transaction():
                            temp = _next_temp(key, temp_for)
                            execute_one(conn, f"CREATE TEMP TABLE {qualified('pg_temp', temp)} (LIKE {qualified(*key)})")
                        temp_for[key] = temp
                    with conn.transaction():
                        execute_one(conn, real_sql)
                        created[i] = real_sql
                except psycopg.errors.ReadOnlySqlTransaction as e:
                    raise ReadOnlySession(
                        "the server cannot canonicalize indexes in a read-only session",
                        "plan compares by text alone on a standby") from e
                except psycopg.errors.LockNotAvailable:
                    raise  # a lock held on the real table, not a refusal of the definition
                except psycopg.errors.QueryCanceled as e:
                    raise DatabaseError(f"could not read table {d.schema}.{d.table} to canonicalize index "
                                        f"{d.name!r}: {(e.diag.message_primary or str(e)).strip()}",
                                        "another session holds a lock on it; try again") from None
                except psycopg.Error as e:
                    msg = (e.diag.message_primary or str(e)).strip()
                    out[i] = Canonicalized(None, msg, d.create_sql(concurrently=False))
            if created:
                with conn.cursor(row_factory=dict_row) as cur:
                    plan_joins_as_written(cur)
                    cur.execute("SELECT c.oid FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema() "
                                "AND c.relname = ANY(%s)", ([t for t in temp_for.values()],))
                    oids = [r["oid"] for r in cur.fetchall()]
                    # no stats: a probe has no size, scans or comment to read (and planning the
                    # statistics view is a third of this read on a fresh backend)
                    rows = read_index_rows(cur, oids, version, stats=False)
                by_name = {r["name"]: r for r in rows}
                for i, sql in created.items():
                    r = by_name.get(f"rc_probe_{i}")
                    if r is None:
                        out[i] = Canonicalized(None, "the server did not keep the probe index", sql)
                        continue
                    d = defs[i]
                    got = index_def_from_row(r)
                    out[i] = Canonicalized(replace(got, schema=d.schema, table=d.table, name=d.name,
                                                   options=d.options, tablespace=d.tablespace, comment=d.comment),
                                           None, sql)
    except psycopg.errors.ReadOnlySqlTransaction as e:
        raise ReadOnlySession("the server cannot canonicalize indexes in a read-only session") from e
    except psycopg.errors.LockNotAvailable:
        raise
    except psycopg.OperationalError as e:
        raise DatabaseError(f"lost the connection while canonicalizing: {e}") from e
    return out


def _next_temp(key: tuple[str, str], temp_for: dict) -> str:
    """The probe table of `key` (schema, table) is named like the table itself, so that a
    predicate or expression that names its columns as `table.column` (PostgreSQL allows it)
    reads the same on the copy; another schema's table of the same name gets a made-up name."""
    return key[1] if key[1] not in temp_for.values() else f"rc_probe_t{len(temp_for)}"


def _refuse_read_only(conn: psycopg.Connection) -> None:
    """A standby cannot write at all; a role or database whose administrator made its
    transactions read-only by default (reset_val: the value before our session's SET) must not
    be made to write, even temp tables. Either way: compare by text alone."""
    recovery, configured = conn.execute(
        "SELECT pg_is_in_recovery(), (SELECT reset_val FROM pg_settings WHERE name = "
        "'default_transaction_read_only')").fetchone()
    if conn.info.transaction_status == TransactionStatus.INTRANS and not conn.autocommit:
        conn.rollback()
    if recovery:
        raise ReadOnlySession("the server cannot canonicalize indexes in a read-only session (a standby)",
                              "plan compares by text alone on a standby")
    if configured == "on":
        raise ReadOnlySession("the server cannot canonicalize indexes in a read-only session "
                              "(default_transaction_read_only is on for this role or database)")
