"""Where the database comes from: a DSN (flag, $DATABASE_URL, libpq's PG* variables) or a
throwaway embedded PostgreSQL loaded from a DDL file (`--schema-sql`).

One job: hand out psycopg connections, set up the way every command needs them, and turn
connection failures into one-line errors that never show a password. Nothing here reads or
changes indexes.

Every session gets standard_conforming_strings = on: our SQL text and the lexical checks of
spec fragments (`core.lexical`) assume it. A read-only session (plan, drift, validate, import)
also gets default_transaction_read_only = on, so that every transaction it opens is read-only
unless it says otherwise; only the canonicalization probe does (`pg.canonicalize`), for a
transaction that is always rolled back.
"""
from __future__ import annotations

import os

import psycopg

from ..core.redact import remember_dsn, scrub
from ..errors import DatabaseError

APPLICATION_NAME = "reconciler"

# Catalog reads of the read-only commands: a table held in ACCESS EXCLUSIVE (a migration, a
# VACUUM FULL) makes pg_table_size() and the probe's CREATE TEMP TABLE (LIKE ...) wait.
READ_LOCK_TIMEOUT_MS = 3000
READ_STATEMENT_TIMEOUT_MS = 60000


def resolve_dsn(database: str | None) -> str:
    """--database, else $DATABASE_URL, else "" (libpq then reads PGHOST, PGDATABASE, ...)."""
    if database:
        return database
    return os.environ.get("DATABASE_URL", "")


def describe(dsn: str) -> str:
    """A printable name for a DSN: host/port/dbname, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(an invalid connection string)"
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    db = info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or os.environ.get("PGUSER") or ""
    port = info.get("port") or os.environ.get("PGPORT") or ""
    return scrub(f"{db}@{host}" + (f":{port}" if port else ""))


def connect(dsn: str, *, autocommit: bool = False, application_name: str = APPLICATION_NAME,
            connect_timeout: int = 10, read_only: bool = False, lock_timeout_ms: int | None = None,
            statement_timeout_ms: int | None = None) -> psycopg.Connection:
    """A connection set up for reconciler (see the module docstring). With `read_only`, the
    session's transactions are read-only by default and catalog reads are bounded by the lock
    and statement timeouts (defaults READ_LOCK_TIMEOUT_MS / READ_STATEMENT_TIMEOUT_MS)."""
    remember_dsn(dsn)
    try:
        conn = psycopg.connect(dsn, autocommit=True, application_name=application_name,
                               connect_timeout=connect_timeout)
    except psycopg.ProgrammingError as e:
        raise DatabaseError(f"invalid connection string: {_dsn_problem(e)}",
                            "check --database / $DATABASE_URL (the text is not shown: it may hold a password)"
                            ) from None
    except psycopg.OperationalError as e:
        raise DatabaseError(f"cannot connect to {_target(dsn)}: {_first_line(e)}",
                            "check --database / $DATABASE_URL / PG* variables") from None
    conn.add_notice_handler(lambda diag: None)
    try:
        settings = {"standard_conforming_strings": "on"}
        if read_only:
            settings["default_transaction_read_only"] = "on"
            settings["lock_timeout"] = f"{READ_LOCK_TIMEOUT_MS if lock_timeout_ms is None else lock_timeout_ms}ms"
            statement = READ_STATEMENT_TIMEOUT_MS if statement_timeout_ms is None else statement_timeout_ms
            settings["statement_timeout"] = f"{statement}ms"
        # set_config(): names and values bound; one statement, one round trip, for all of them
        conn.execute("SELECT " + ", ".join(["set_config(%s, %s, false)"] * len(settings)),
                     [x for kv in settings.items() for x in kv])
        conn.autocommit = autocommit
    except psycopg.Error as e:
        conn.close()
        raise DatabaseError(f"cannot set up the session on {describe(dsn)}: {_first_line(e)}") from None
    return conn


def execute_one(conn: psycopg.Connection, sql: str, params=None):
    """Run one statement through the extended query protocol, which refuses a string of several
    ("cannot insert multiple commands into a prepared statement"): a fragment that somehow
    smuggled in `; COMMIT; ...` fails instead of running. Without parameters psycopg would use
    the simple protocol, so the result format is set to binary to force the extended one (the
    statements sent this way return no rows or only rows of built-in types)."""
    if params is not None:
        return conn.execute(sql, params, prepare=False)
    return conn.execute(sql, prepare=False, binary=True)


def _dsn_problem(e: Exception) -> str:
    """What libpq disliked in a connection string, with every quoted piece of the string left
    out: libpq quotes the offending text (`invalid percent-encoded token: "S3cr3t%zz"`,
    `missing "=" after "secret-part"`), and that text may be a password."""
    import re

    line = (str(e).strip().splitlines() or ["cannot be parsed"])[0]
    known = {"=", "host", "hostaddr", "port", "dbname", "user", "password", "sslmode", "options",
             "connect_timeout", "application_name", "passfile", "service", "target_session_attrs"}
    line = re.sub(r'"([^"]*)"', lambda m: m.group(0) if m.group(1) in known else '"…"', line)
    return scrub(line)


_PG_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


def _target(dsn: str) -> str:
    """What was tried, for the error: the DSN's host and database, or, when nothing said where
    to connect, that libpq fell back to its defaults (the socket path is in the reason)."""
    if dsn.strip() or any(os.environ.get(v) for v in _PG_VARIABLES):
        return describe(dsn)
    return "libpq's default server (no --database, $DATABASE_URL and PG* variables unset)"


def _first_line(e: Exception) -> str:
    """libpq's reason in one line: each attempt's `connection to server ... failed: REASON`
    (it names the socket path or the host and port it tried; psycopg prefixes
    "connection failed: "), without the "Is the server running ...?" lines that follow each."""
    lines = [ln.strip() for ln in scrub(str(e)).splitlines() if ln.strip()]
    attempts: list[str] = []
    for ln in lines:
        at = ln.find("connection to server ")
        if at >= 0 and ln[at:] not in attempts:
            attempts.append(ln[at:])
    if attempts:
        return "; ".join(attempts)
    return lines[-1] if lines else type(e).__name__


def target_dsn(base: str, keywords: dict[str, str]) -> str:
    """A fleet target's connection string: the DSN from its environment variable (or none) with
    the targets file's keywords over it (service, host, port, dbname, user, sslmode)."""
    try:
        return psycopg.conninfo.make_conninfo(base, **keywords)
    except psycopg.ProgrammingError as e:
        raise DatabaseError(f"invalid connection string: {_first_line(e)}",
                            "check the DSN in the target's environment variable") from None
