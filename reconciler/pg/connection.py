"""Where the database comes from: a DSN (flag, $DATABASE_URL, libpq's PG* variables) or a
throwaway embedded PostgreSQL loaded from a DDL file (`--schema-sql`).

One job: hand out psycopg connections and turn connection failures into one-line errors that
never show a password. Nothing here reads or changes indexes.
"""
from __future__ import annotations

import os

import psycopg

from ..core.redact import scrub
from ..errors import DatabaseError

APPLICATION_NAME = "reconciler"


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
        return scrub(dsn)
    host = info.get("host") or os.environ.get("PGHOST") or "localhost"
    db = info.get("dbname") or os.environ.get("PGDATABASE") or info.get("user") or os.environ.get("PGUSER") or ""
    port = info.get("port") or os.environ.get("PGPORT") or ""
    return f"{db}@{host}" + (f":{port}" if port else "")


def connect(dsn: str, *, autocommit: bool = False, application_name: str = APPLICATION_NAME,
            connect_timeout: int = 10) -> psycopg.Connection:
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, application_name=application_name,
                               connect_timeout=connect_timeout)
    except psycopg.ProgrammingError as e:
        raise DatabaseError(f"invalid connection string: {scrub(str(e)).splitlines()[0]}") from None
    except psycopg.OperationalError as e:
        raise DatabaseError(f"cannot connect to {describe(dsn)}: {_first_line(e)}",
                            "check --database / $DATABASE_URL / PG* variables") from None
    conn.add_notice_handler(lambda diag: None)
    return conn


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in scrub(str(e)).splitlines() if ln.strip()]
    # libpq prefixes every attempt; the last line holds the reason (FATAL: ...)
    return lines[-1] if lines else type(e).__name__
