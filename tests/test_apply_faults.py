"""`reconciler apply` under faults, on a real server: lock contention, the lock queue, a build
that cannot finish, and SIGKILL at random points. No mocks.
"""
from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from reconciler.app.apply import find_on_partition, verifier
from reconciler.app.engine import make_plan
from reconciler.errors import ApplyError
from reconciler.run import events as ev
from reconciler.run.executor import Executor
from reconciler.reconcile.planner import Timeouts
from reconciler.spec import load_spec

from support.cli import popen_cli, run_cli_when
from support.cli import run_cli as cli
from support.ddl import index_names, invalid_indexes, partitioned_table, small_table
from support.specs import one_index_spec


def builds_running(run_sql, dsn: str) -> list[tuple]:
    """Index builds still running in this database (any session)."""
    return run_sql(dsn, "SELECT pid, phase FROM pg_stat_progress_create_index WHERE datid = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())")


class LatencyProbe(threading.Thread):
    """Runs one statement again and again on its own connection; records how long each took."""

    def __init__(self, dsn: str, sql: str):
        super().__init__(daemon=True)
        self.dsn, self.sql = dsn, sql
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.pid = 0

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self.pid = conn.info.backend_pid
            self.ready.set()
            conn.execute("SET statement_timeout = '20s'")  # a queued probe must not hang the test
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    conn.execute(self.sql)
                except psycopg.Error as e:
                    self.errors.append(str(e))
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.02)

    def finish(self) -> float:
        self.stop.set()
        self.join(timeout=30)
        assert not self.errors, self.errors
        assert self.latencies, "the probe never ran"
        return max(self.latencies)


class LockWaits(threading.Thread):
    """Watches, from the server's side, whether some sessions wait for a lock: every 20 ms the
    locks they wait for (pg_locks, not granted) and for how long the server says they have
    waited (`waitstart`, PostgreSQL 14+). Measured by the server, not by the clock of a busy
    test process: a slow sample can only miss a wait, never lengthen one."""

    def __init__(self, dsn: str, pids: list[int]):
        super().__init__(daemon=True)
        self.dsn, self.pids = dsn, pids
        self.seen: list[tuple[int, str, float]] = []    # (pid, locktype, seconds waited so far)
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                self.seen += conn.execute(
                    "SELECT pid, locktype, coalesce(extract(epoch FROM clock_timestamp() - waitstart), 0)::float8 "
                    "FROM pg_locks WHERE NOT granted AND pid = ANY(%s)", (self.pids,)).fetchall()
                time.sleep(0.02)

    def finish(self) -> float:
        """The longest wait seen (0 when none)."""
        self.stop.set()
        self.join(timeout=30)
        return max((w for _, _, w in self.seen), default=0.0)


# ---------------------------------------------------------------------------------------------
# 4. lock contention

TABLE = small_table("t", 5000)
SPEC = one_index_spec("t_v_idx", "t", "v")


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "indexes.yaml"
    path.write_text(SPEC)
    return str(path)


def test_access_exclusive_holder_makes_apply_fail_cleanly_in_bounded_time(dsn, run_sql, spec_file):
    run_sql(dsn, TABLE)
    holder = psycopg.connect(dsn)  # a transaction stays open: the lock is held until rollback
    try:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        # the lock is held until the test ends: an apply that waited for it would never return
        # (subprocess.TimeoutExpired); 3 tries of 200ms plus backoff return at once
        res = cli("apply", "-f", spec_file, "--database", dsn, "--auto-approve", "--lock-timeout", "200ms",
                  "--retries", "2", timeout=120)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "lock timeout" in res.stderr
        assert res.stdout.count("retry in") == 2, res.stdout
    finally:
        holder.rollback()
        holder.close()
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey"]


def test_apply_succeeds_with_retries_once_the_lock_is_released(dsn, run_sql, spec_file):
    run_sql(dsn, TABLE)
    holder = psycopg.connect(dsn)
    try:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        # up to 8 retries (~50 s of backoff): the lock is released once apply has retried, however
        # slowly it started on a busy machine
        res = run_cli_when("retry in", holder.rollback, "apply", "-f", spec_file, "--database", dsn,
                           "--auto-approve", "--lock-timeout", "200ms", "--retries", "8")
    finally:
        holder.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "retry in" in res.stdout  # it did meet the lock, and retried
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey", "t_v_idx"]


def test_build_retries_behind_a_conflicting_lock_without_queueing_reads_and_writes(dsn, run_sql, spec_file):
    """A session holds SHARE UPDATE EXCLUSIVE (what VACUUM, ANALYZE or another CIC holds): the
    build's lock wait times out and is retried; meanwhile SELECT and INSERT never wait."""
    run_sql(dsn, TABLE)
    conn = psycopg.connect(dsn, autocommit=True)
    t = Timeouts(lock_ms=500, statement_ms=5000, build_ms=0)
    plan, _ = make_plan(conn, load_spec([spec_file]), timeouts=t)
    events: list[ev.Event] = []
    ex = Executor(conn, emit=events.append, retries=10, backoff_base=0.1, verify=verifier(conn),
                  find_on_partition=find_on_partition(conn))
    reads = LatencyProbe(dsn, "SELECT count(*) FROM t WHERE a = 3")
    writes = LatencyProbe(dsn, "INSERT INTO t SELECT max(id) + 1, 1, 'new' FROM t")
    holder = psycopg.connect(dsn)
    try:
        holder.execute("LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE")
        reads.start()
        writes.start()
        assert reads.ready.wait(30) and writes.ready.wait(30)
        waits = LockWaits(dsn, [reads.pid, writes.pid])
        waits.start()

        def release_once_retried(e: ev.Event) -> None:
            events.append(e)
            if isinstance(e, ev.Retry):
                holder.rollback()     # the build met the lock and will retry: let it through

        ex.emit = release_once_retried
        ex.execute(plan)
        longest_wait = waits.finish()
        reads.finish()
        writes.finish()
    finally:
        reads.stop.set()
        writes.stop.set()
        holder.close()
        conn.close()
    builds = [s for s in ex.sent if s.startswith("CREATE INDEX CONCURRENTLY t_v_idx")]
    assert len(builds) >= 2, ex.sent  # the first try timed out on the lock
    assert any(isinstance(e, ev.Retry) for e in events)
    assert len(reads.latencies) > 3 and len(writes.latencies) > 3    # they ran during the build
    # reads and writes never queued for a lock, however slowly this machine runs them
    assert waits.seen == [] and longest_wait == 0.0, waits.seen
    assert invalid_indexes(dsn) == []
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass") == [(True,)]


PARTITIONED = partitioned_table("p") + """
CREATE INDEX p_v_idx ON p (v);
CREATE INDEX p_at_idx ON p (at);
"""


def test_waiting_access_exclusive_request_queues_others_no_longer_than_the_lock_timeout(dsn, run_sql, tmp_path):
    """A partitioned index cannot be dropped CONCURRENTLY: its DROP asks for ACCESS EXCLUSIVE.
    While a long reader holds the table, that request waits -- and every later SELECT queues
    behind it. The lock timeout must bound that queue; apply gives up, nothing changes."""
    run_sql(dsn, PARTITIONED)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nmanage: {prune: true}\nindexes:\n"
                    "  - {name: p_at_idx, table: p, columns: [at]}\n")
    before = index_names(dsn, "p")
    reader = psycopg.connect(dsn)  # a report query in an open transaction
    probe = LatencyProbe(dsn, "SELECT count(*) FROM p WHERE v = 'v7'")
    try:
        reader.execute("SELECT count(*) FROM p").fetchone()
        probe.start()
        assert probe.ready.wait(30)
        waits = LockWaits(dsn, [probe.pid])
        waits.start()
        # the reader stays until apply returns: without a lock timeout the DROP (and the probe
        # queued behind it) would wait for it, and apply would never return (TimeoutExpired)
        res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", "--lock-timeout", "1s",
                  "--retries", "3", timeout=120)
        longest_wait = waits.finish()
        probe.finish()
    finally:
        probe.stop.set()
        reader.rollback()
        reader.close()
    assert res.returncode == 1, res.stdout + res.stderr
    assert "DROP INDEX public.p_v_idx" in res.stdout and "lock timeout" in res.stderr
    # the probe did queue behind the DROP (proof that the scenario bites: the server saw it wait
    # for a relation lock), but never beyond the DROP's lock timeout (1s) plus its cancellation
    assert any(kind == "relation" for _, kind, _ in waits.seen), "the probe never queued behind the DROP"
    assert longest_wait < 1.0 + 1.5, longest_wait
    assert index_names(dsn, "p") == before
    assert invalid_indexes(dsn) == []


def test_build_waiting_for_an_old_snapshot_is_bounded_by_the_build_timeout(dsn, run_sql, spec_file):
    """A transaction that never ends holds a build in "waiting for old snapshots": the build
    timeout (not the lock timeout) ends it, the error names the session, and its INVALID
    leftover, whose DROP also waits for that session (it holds a lock on the table), is left to
    the next apply, which finishes once the session is gone."""
    run_sql(dsn, TABLE)
    conn = psycopg.connect(dsn, autocommit=True)
    t = Timeouts(lock_ms=200, statement_ms=5000, build_ms=4000)
    plan, _ = make_plan(conn, load_spec([spec_file]), timeouts=t)
    events: list[ev.Event] = []
    ex = Executor(conn, emit=events.append, retries=2, backoff_base=0.05, monitor_dsn=dsn, verify=verifier(conn),
                  find_on_partition=find_on_partition(conn))
    reader = psycopg.connect(dsn)
    reader_pid = reader.info.backend_pid
    try:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot, and ACCESS SHARE on t
        failure: list[BaseException] = []

        def run() -> None:
            try:
                ex.execute(plan)
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                failure.append(e)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=120)  # an unbounded wait would hang here until the reader ends
        assert not worker.is_alive(), f"apply still waiting after 120s: {ex.sent[-3:]}"
        assert len(failure) == 1 and isinstance(failure[0], ApplyError), failure
        message = failure[0].message
        assert "statement timeout" in message and f"pid {reader_pid}" in message, message
        assert "the next apply removes it" in message, message
    finally:
        reader.rollback()
        reader.close()
        conn.close()
    # one build, never retried: waiting for the reader was not a lock timeout
    assert [s for s in ex.sent if s.startswith("CREATE INDEX")] == [plan.changes[0].operations[0].sql]
    assert not any(isinstance(e, ev.Retry) for e in events)
    waits = [e for e in events if isinstance(e, ev.Waiting)]
    assert waits and waits[0].sessions[0].pid == reader_pid, events
    res = cli("apply", "-f", spec_file, "--database", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey", "t_v_idx"]


OLD = """
CREATE TABLE o (id int, v text);
INSERT INTO o SELECT g, 'v' || g FROM generate_series(1, 2000) g;
-- IMMUTABLE by declaration only: the build's scan waits for the test's advisory lock 4343, so
-- the test can start a transaction while the build is under way (no race with apply's speed)
CREATE FUNCTION gated_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4343); RETURN i; END $$;
"""


def _events(lines: list[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_a_transaction_begun_during_the_build_is_waited_for_once_and_reported(dsn, run_sql, tmp_path):
    """The issue's case: a transaction begins while the build scans the table, so the build ends
    up "waiting for old snapshots" for it. The short lock timeout must not cancel that wait (it
    did: the table was scanned again, six times, then "another session held a conflicting
    lock"): one build, the session reported (pid, age, query) as the wait happens, no progress
    bar at 100 % while waiting, and the index VALID once the transaction ends."""
    run_sql(dsn, OLD)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: o_key_idx, table: o, columns: [{expression: gated_key(id)}]}\n")
    gate = psycopg.connect(dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4343)")
    old = psycopg.connect(dsn)
    proc = popen_cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", "--format", "json",
                     "--lock-timeout", "500ms", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if '"event": "statement"' in line and "CREATE INDEX CONCURRENTLY o_key_idx" in line:
                break
        deadline = time.monotonic() + 60
        while not run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'o'::regclass "
                               "AND phase LIKE 'building index%'"):
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        # the build is scanning (held at the gate): a transaction begins, with a snapshot
        old.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT txid_current()").fetchone()
        old_pid = old.info.backend_pid
        gate.execute("SELECT pg_advisory_unlock(4343)")
        for line in proc.stdout:
            lines.append(line)
            if '"event": "retry"' in line or ('"event": "waiting"' in line and f'"pid": {old_pid}' in line):
                break
        # the server says the build has waited for it far longer than the lock timeout
        deadline = time.monotonic() + 60
        while not run_sql(dsn, "SELECT 1 FROM pg_locks l JOIN pg_stat_progress_create_index p ON p.pid = l.pid "
                               "WHERE NOT l.granted AND l.locktype = 'virtualxid' "
                               "AND clock_timestamp() - l.waitstart > interval '2 seconds'"):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        old.commit()
        rest, err = proc.communicate(timeout=120)
        lines += rest.splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
        gate.close()
        old.close()
    events = _events(lines)
    out = "".join(lines)
    assert proc.returncode == 0, out + err
    builds = [e for e in events if e["event"] == "statement" and e["sql"].startswith("CREATE INDEX")]
    assert len(builds) == 1 and not [e for e in events if e["event"] == "retry"], out
    waits = [e for e in events if e["event"] == "waiting" and e.get("sessions")]
    assert any(w["sessions"][0]["pid"] == old_pid and "txid_current" in w["sessions"][0]["query"]
               and "old snapshots" in w["detail"] for w in waits), waits
    waiting_progress = [e for e in events if e["event"] == "progress" and e["phase"].startswith("waiting for")]
    assert waiting_progress and all(e["fraction"] is None for e in waiting_progress), waiting_progress
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'o_key_idx'::regclass") == [(True,)]
    assert invalid_indexes(dsn) == []


# ---------------------------------------------------------------------------------------------
# 6. kill -9 at random points

BIG = """
CREATE TABLE big (id bigint, a int, b text, c timestamptz, email text);
INSERT INTO big SELECT g, g % 100, md5(g::text), timestamptz '2024-01-01' + g * interval '1 second',
       'user' || g || '@Example' || (g % 50) || '.com'
FROM generate_series(1, 300000) g;
CREATE FUNCTION email_key(e text) RETURNS text LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN RETURN lower(split_part(e, '@', 2)) || ':' || lower(split_part(e, '@', 1)); END $$;
"""
BIG_ROWS = 300000

# before each round: one index whose predicate the spec changes (a replace), nothing else
BIG_START = "CREATE INDEX big_b_idx ON big (b) WHERE a > 10"

BIG_SPEC = """
version: 1
indexes:
  - name: big_a_idx
    table: big
    columns: [a]
  - name: big_c_idx
    table: big
    columns: ["c DESC"]
  - name: big_b_idx
    table: big
    columns: [b]
    where: "a > 50"
  - name: big_email_key_idx
    table: big
    columns:
      - expression: email_key(email)
"""

KILL_SEED = 20241125
MIN_MID_RUN_KILLS = 5
MAX_ROUNDS = 12


def _reset_big(dsn: str, run_sql) -> None:
    names = [r[0] for r in run_sql(dsn, "SELECT indexrelid::regclass::text FROM pg_index "
                                        "WHERE indrelid = 'big'::regclass")]
    for name in names:
        run_sql(dsn, f"DROP INDEX {name}")
    run_sql(dsn, BIG_START)


def _where_killed(stdout: str) -> str:
    """The last thing the killed apply reported (its events are unbuffered JSON lines)."""
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    statements = [e for e in events if e.get("event") == "statement"]
    if not statements:
        return "before the first statement"
    if any(e.get("event") == "info" and "Summary" in e.get("detail", "") for e in events):
        return "after the last change"
    return "during: " + statements[-1]["sql"][:70]


def test_sigkill_at_random_points_then_apply_again_converges(dsn, run_sql, tmp_path, pg_major):
    run_sql(dsn, BIG)
    run_sql(dsn, "VACUUM ANALYZE big")
    _reset_big(dsn, run_sql)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(BIG_SPEC)
    rng = random.Random(KILL_SEED + pg_major)
    seen: list[tuple[float, str]] = []
    mid_run = 0
    waited_for_lock = 0
    for round_no in range(MAX_ROUNDS):
        if mid_run >= MIN_MID_RUN_KILLS:
            break
        delay = rng.uniform(0.05, 2.0)
        proc = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--format", "json",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # the delay counts from the first event (apply has planned and starts its first change), not
        # from the spawn: on a busy machine starting Python alone can take longer than the delay
        first = proc.stdout.readline()
        time.sleep(delay)
        finished_first = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        session = round_no % 2 == 1  # every other round the apply's server sessions die with it
        if session:
            _terminate_apply_sessions(dsn)
        out, _ = proc.communicate(timeout=30)
        out = first + out
        where = "finished before the kill" if finished_first else _where_killed(out)
        if session:
            where += " (+ its sessions)"
        left = invalid_indexes(dsn)
        seen.append((round(delay, 2), where, f"not VALID right after the kill: {left}" if left else ""))
        if where.startswith("during"):
            mid_run += 1

        # The killed session's backend may still be building (and holds the apply lock until it
        # notices): the next apply waits for the lock, then for builds still running.
        res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", timeout=300)
        context = f"round {round_no} (seed {KILL_SEED + pg_major}, killed after {delay:.2f}s, {where}, {left})"
        assert res.returncode == 0, f"{context}\n{res.stdout}\n{res.stderr}"
        if "another apply holds the lock" in res.stdout:
            waited_for_lock += 1
        check = cli("plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode")
        assert check.returncode == 0, f"{context}\n{check.stdout}\n{check.stderr}"
        assert invalid_indexes(dsn) == [], context
        assert builds_running(run_sql, dsn) == [], context
        assert index_names(dsn, "big") == ["big_a_idx", "big_b_idx", "big_c_idx", "big_email_key_idx"], \
            context
        assert run_sql(dsn, "SELECT count(*) FROM big") == [(BIG_ROWS,)], context
        _reset_big(dsn, run_sql)
    print(f"kill points (seed {KILL_SEED + pg_major}, {waited_for_lock} reruns waited for the killed apply's "
          "lock):", *seen, sep="\n  ")
    assert len(seen) >= 5
    assert mid_run >= 3, f"too few kills landed mid-run to mean anything: {seen}"


# The random delays mostly land in the first builds; the steps of a replace come last. Kill
# right when apply reports each of them (plus a seeded jitter of up to 50ms). With `session`,
# the apply's server session dies too (a dropped connection, pg_terminate_backend): for a build,
# only once it is really building, so that it leaves an INVALID index behind.
KILL_STEPS = [
    ("RENAME TO big_b_idx_rcold_", False),                       # the old index being renamed aside
    ("CREATE INDEX CONCURRENTLY big_b_idx ON", False),           # the new one built under its name
    ("CREATE INDEX CONCURRENTLY big_b_idx ON", True),
    ("CREATE INDEX CONCURRENTLY big_email_key_idx ON", True),    # an expression index
    ("DROP INDEX CONCURRENTLY public.big_b_idx_rcold_", False),  # the old one being dropped
    ("DROP INDEX CONCURRENTLY public.big_b_idx_rcold_", True),
    ("ANALYZE public.big", False),                               # the statistics of the expression
]


def _terminate_apply_sessions(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND application_name LIKE 'reconciler%%' AND pid <> pg_backend_pid()")


def _wait_until_building(dsn: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            phase = c.execute("SELECT phase FROM pg_stat_progress_create_index WHERE relid = 'big'::regclass"
                              ).fetchone()
            if phase and phase[0].startswith("building index"):
                return
            time.sleep(0.01)
    raise AssertionError("the build never reached its building phase")


@pytest.mark.parametrize("step,session", KILL_STEPS, ids=lambda v: {True: "session", False: "client"}.get(v, v))
def test_sigkill_at_each_step_of_a_replace_then_apply_again_converges(dsn, run_sql, tmp_path, pg_major, step,
                                                                      session):
    run_sql(dsn, BIG)
    _reset_big(dsn, run_sql)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(BIG_SPEC)
    rng = random.Random(f"{KILL_SEED}-{pg_major}-{step}-{session}")
    proc = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--format", "json",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if step in line and '"event": "statement"' in line:
                if session and step.startswith("CREATE"):
                    _wait_until_building(dsn)
                else:
                    time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                if session:
                    _terminate_apply_sessions(dsn)
                break
        else:
            pytest.fail(f"apply never reached {step!r}:\n{''.join(seen)}")
        proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
    if session and step.startswith("CREATE"):
        # the fault did what it should: a build cut short leaves an INVALID index
        deadline = time.monotonic() + 10
        while not invalid_indexes(dsn):
            assert time.monotonic() < deadline, "the cancelled build left no INVALID index"
            time.sleep(0.1)

    res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    check = cli("plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode")
    assert check.returncode == 0, check.stdout + check.stderr
    assert invalid_indexes(dsn) == []
    assert builds_running(run_sql, dsn) == []
    assert index_names(dsn, "big") == ["big_a_idx", "big_b_idx", "big_c_idx", "big_email_key_idx"]
    assert run_sql(dsn, "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'big_b_idx'::regclass"
                   ) == [("(a > 50)",)]
    assert run_sql(dsn, "SELECT count(*) FROM big") == [(BIG_ROWS,)]


# ---------------------------------------------------------------------------------------------
# a build that another session (not an apply) is running

GATED = """
CREATE TABLE s (id int, v text);
INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 150) g;
-- IMMUTABLE by declaration only: each row waits for the test's advisory lock 4242, so the build
-- lasts exactly until the test lets it go (no race with how fast apply starts)
CREATE FUNCTION gated_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN i; END $$;
"""

GATED_SPEC = """
version: 1
indexes:
  - name: s_gated_idx
    table: s
    columns:
      - expression: gated_key(id)
"""


@pytest.mark.parametrize("outcome", ["finishes", "is_cancelled"])
def test_apply_waits_for_a_build_another_session_is_running(dsn, run_sql, tmp_path, outcome):
    """Another session builds the index the spec wants; apply waits for it (and says so) instead
    of touching it, then finishes the job: nothing to do when the build finished, a REINDEX of
    the INVALID leftover when it was cancelled. The other build is held by an advisory lock and
    let go only once apply reports that it waits: no timing window."""
    run_sql(dsn, GATED)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(GATED_SPEC)
    gate = psycopg.connect(dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4242)")
    other = psycopg.connect(dsn, autocommit=True)
    other_pid = other.info.backend_pid
    errors: list[Exception] = []

    def build() -> None:
        try:
            other.execute("CREATE INDEX CONCURRENTLY s_gated_idx ON s (gated_key(id))")
        except psycopg.Error as e:
            errors.append(e)

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    proc = None
    try:
        deadline = time.monotonic() + 60
        while run_sql(dsn, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 's'::regclass") != [(1,)]:
            assert time.monotonic() < deadline, "the other build never started"
            time.sleep(0.05)
        proc = popen_cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = []
        for line in proc.stdout:
            out.append(line)
            if "waiting for builds another session is running" in line:
                break
        assert any("waiting for builds another session is running: s_gated_idx" in x for x in out), "".join(out)
        if outcome == "is_cancelled":
            run_sql(dsn, f"SELECT pg_cancel_backend({other_pid})")
        gate.execute("SELECT pg_advisory_unlock(4242)")
        rest, err = proc.communicate(timeout=120)
        out = "".join(out) + rest
        # right when apply returns, the index is there and VALID: it waited instead of leaving it
        state = run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 's_gated_idx'::regclass")
        builder.join(timeout=60)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        gate.close()
        other.close()
    assert proc.returncode == 0, out + err
    assert state == [(True,)]
    if outcome == "finishes":
        assert not errors and "No changes" in out  # nothing left to do
    else:
        assert errors and "canceling statement" in str(errors[0])
        assert "REINDEX INDEX CONCURRENTLY public.s_gated_idx" in out  # the INVALID leftover, rebuilt
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "s") == ["s_gated_idx"]


# ---------------------------------------------------------------------------------------------
# Ctrl-C


SLOW_DDL = """
CREATE TABLE slow_t (id int);
INSERT INTO slow_t SELECT g FROM generate_series(1, 4000) g;
-- IMMUTABLE by declaration only: the build waits for the test's advisory lock 4343, so it is
-- still running whenever Ctrl-C comes (no race with a build that takes "long enough")
CREATE FUNCTION slow_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4343); RETURN i; END $$;
"""


def test_ctrl_c_cancels_the_build_removes_the_leftover_and_exits_1(dsn, run_sql, tmp_path):
    run_sql(dsn, SLOW_DDL)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n"
                    "  - {name: slow_t_key_idx, table: slow_t, columns: [{expression: slow_key(id)}]}\n")
    gate = psycopg.connect(dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4343)")
    try:
        p = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
        # wait until the build is really running on the server, then press Ctrl-C
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'slow_t'::regclass"):
                break
            time.sleep(0.05)
        else:
            p.kill()
            pytest.fail("the build never started")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        gate.close()   # the next build below runs at full speed
    assert p.returncode == 1, (out, err)
    assert "Interrupted" in out and "0 of 1 change(s) done" in out, out
    assert "Traceback" not in out + err
    # the statement was cancelled on the server and its INVALID leftover removed
    assert not run_sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX CONCURRENTLY%' "
                            "AND pid <> pg_backend_pid()")
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "slow_t") == []
    # and the next apply finishes the job
    assert cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", timeout=120).returncode == 0
    assert index_names(dsn, "slow_t") == ["slow_t_key_idx"]


REPLACED = """
CREATE TABLE r (id int, v text);
INSERT INTO r SELECT g, 'v' || g FROM generate_series(1, 500) g;
CREATE INDEX r_key_idx ON r (v);
-- IMMUTABLE by declaration only: the new build waits for the test's advisory lock 4444
CREATE FUNCTION gated_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4444); RETURN i; END $$;
"""


def test_ctrl_c_during_a_replace_says_what_was_left_and_going_back_renames_it_back(dsn, run_sql, tmp_path):
    """Ctrl-C while the new definition of a replaced index is being built: the old index stays
    renamed aside, and the summary says so (once, with the cleanup of the cancelled build said
    once). When the spec then goes back to the old definition, the plan is one rename of that
    index back to its name (it has exactly the wanted definition), not a build and a drop."""
    from reconciler.reconcile.naming import temp_name

    run_sql(dsn, REPLACED)
    old_spec = "version: 1\nindexes:\n  - {name: r_key_idx, table: r, columns: [v]}\n"
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: r_key_idx, table: r, columns: [{expression: gated_key(id)}]}\n")
    aside = temp_name("r_key_idx", "old")
    gate = psycopg.connect(dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4444)")
    try:
        p = popen_cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'r'::regclass"):
            assert time.monotonic() < deadline and p.poll() is None, "the new build never started"
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        gate.close()
    assert p.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    assert "Interrupted. Summary: 0 of 1 change(s) done." in out, out
    assert f"left: public.{aside}, the old r_key_idx renamed aside by its replace" in out, out
    assert out.count("cleanup:") == 1, out          # the cancelled build's leftover: said once
    assert index_names(dsn, "r") == [aside]
    assert invalid_indexes(dsn) == []

    spec.write_text(old_spec)
    plan = cli("plan", "-f", str(spec), "--database", dsn, "--format", "json")
    changes = [(c["action"], c["index"]) for c in json.loads(plan.stdout)["changes"]]
    assert changes == [("rename", "r_key_idx")], plan.stdout
    res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"ALTER INDEX public.{aside} RENAME TO r_key_idx" in res.stdout
    assert "CREATE INDEX" not in res.stdout
    assert index_names(dsn, "r") == ["r_key_idx"]
    assert run_sql(dsn, "SELECT pg_get_indexdef('r_key_idx'::regclass)") == [
        ("CREATE INDEX r_key_idx ON public.r USING btree (v)",)]
